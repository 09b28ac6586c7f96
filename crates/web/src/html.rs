//! HTML building blocks: escaping, URL segments, times, and the page layout. Pages
//! are rendered in Rust with every interpolated value escaped here; no inline script
//! or style anywhere (the CSP forbids them).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::auth::Auth;
use crate::state::AppState;

/// Escape text for HTML content and double- or single-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode one path segment (everything but unreserved characters).
pub fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs.
pub fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// A `<time>`: UTC in the text and the title; the served script shows it in the
/// browser's zone and keeps UTC in the title.
pub fn time(t: DateTime<Utc>) -> String {
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let shown = t.format("%Y-%m-%d %H:%M:%S UTC");
    format!("<time datetime=\"{iso}\" title=\"{shown}\">{shown}</time>")
}

/// An optional time, `–` when absent.
pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "–".to_owned(), time)
}

/// Optional text, escaped, `–` when absent.
pub fn opt(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => esc(s),
        _ => "–".to_owned(),
    }
}

/// A status badge (colour from the stylesheet's `status-*` classes).
pub fn status(s: &str) -> String {
    let class: String = s
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    format!("<span class=\"status status-{class}\">{}</span>", esc(s))
}

/// The whole page around `body`.
pub fn layout(state: &AppState, title: &str, auth: Option<&Auth>, body: &str) -> Response {
    let assets = state.assets();
    let nav = match auth {
        Some(a) => format!(
            "<nav aria-label=\"main\"><a href=\"/search\">Search</a> <a href=\"/overview\">Overview</a> \
             <a href=\"/api/v1/openapi.json\">API</a>\
             <span class=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Log out</button></form></nav>",
            esc(&a.name),
            esc(&a.role),
            esc(a.csrf.as_deref().unwrap_or(""))
        ),
        None => String::new(),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · pftrack</title>\
         <link rel=\"stylesheet\" href=\"{}\">\
         <script src=\"{}\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/\">pftrack</a>{nav}</header>\
         <main id=\"main\">{body}</main></body></html>\n",
        esc(title),
        assets.css_path(),
        assets.js_path()
    );
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>\u{0}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{FFFD}"
        );
        assert_eq!(url_segment("a b/c%<"), "a%20b%2Fc%25%3C");
        assert_eq!(
            status("sent\"><x"),
            "<span class=\"status status-sentx\">sent&quot;&gt;&lt;x</span>"
        );
    }
}
