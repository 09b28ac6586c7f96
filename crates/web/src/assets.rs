//! The stylesheet and script, compiled in and served under content-hashed names with
//! `immutable` caching: no CDN, nothing fetched from elsewhere.

use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

/// The assets with their hashed paths.
#[derive(Debug, Clone)]
pub struct Assets {
    css_path: String,
    js_path: String,
}

fn hashed(name: &str, ext: &str, body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/static/{name}-{hex}.{ext}")
}

impl Default for Assets {
    fn default() -> Self {
        Assets {
            css_path: hashed("app", "css", CSS),
            js_path: hashed("app", "js", JS),
        }
    }
}

impl Assets {
    /// `/static/app-<hash>.css`.
    pub fn css_path(&self) -> &str {
        &self.css_path
    }

    /// `/static/app-<hash>.js`.
    pub fn js_path(&self) -> &str {
        &self.js_path
    }

    /// The asset at `path`, with its content type.
    pub fn get(&self, path: &str) -> Option<(&'static str, &'static str)> {
        if path == self.css_path {
            Some(("text/css; charset=utf-8", CSS))
        } else if path == self.js_path {
            Some(("text/javascript; charset=utf-8", JS))
        } else {
            None
        }
    }
}
