//! The report as a mail: a multipart/alternative message (text, then HTML) for the
//! local sendmail. Only the composition; handing it to sendmail is the binary's job.

use std::hash::{BuildHasher, Hasher};

use chrono::Utc;

/// A random MIME boundary (std's hasher keys are random per process).
fn boundary() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let a = h.finish();
    let b = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("=_pftrack_{a:016x}{b:016x}")
}

/// A multipart/alternative message (text, then HTML), both parts base64 so no line is
/// longer than 76 characters whatever the report holds. Lines end in LF, as the local
/// sendmail expects (it writes CRLF on the wire).
pub fn mime_message(
    subject: &str,
    from: Option<&str>,
    to: &[String],
    text: &str,
    html: &str,
) -> String {
    let b = boundary();
    let mut m = String::new();
    if let Some(f) = from {
        m.push_str(&format!("From: {f}\n"));
    }
    m.push_str(&format!("To: {}\n", to.join(", ")));
    m.push_str(&format!("Subject: {}\n", encode_header(subject)));
    m.push_str(&format!("Date: {}\n", Utc::now().to_rfc2822()));
    m.push_str("MIME-Version: 1.0\n");
    m.push_str("Auto-Submitted: auto-generated\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative;\n boundary=\"{b}\"\n\n"
    ));
    m.push_str("This is a multi-part message in MIME format.\n");
    for (ctype, body) in [("text/plain", text), ("text/html", html)] {
        m.push_str(&format!("\n--{b}\n"));
        m.push_str(&format!("Content-Type: {ctype}; charset=utf-8\n"));
        m.push_str("Content-Transfer-Encoding: base64\n\n");
        m.push_str(&base64_lines(body.as_bytes()));
    }
    m.push_str(&format!("\n--{b}--\n"));
    m
}

/// RFC 2047 for a subject that is not plain ASCII.
fn encode_header(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        s.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64_lines(s.as_bytes()).replace('\n', "")
        )
    }
}

fn base64_lines(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 4);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(char::from(T[((v >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
        col += 4;
        if col >= 76 {
            out.push('\n');
            col = 0;
        }
    }
    if col > 0 {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known() {
        assert_eq!(base64_lines(b"Man"), "TWFu\n");
        assert_eq!(base64_lines(b"Ma"), "TWE=\n");
        assert_eq!(base64_lines(b"M"), "TQ==\n");
        let long = base64_lines(&[0u8; 200]);
        assert!(long.split("\n").all(|l| l.len() <= 76));
    }

    #[test]
    fn mime_shape() {
        let m = mime_message("r", None, &["a@example.org".into()], "t", "<p>h</p>");
        assert!(m.contains("MIME-Version: 1.0\n"));
        assert!(m.contains("Content-Type: multipart/alternative;\n boundary="));
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(m.contains("Content-Type: text/html; charset=utf-8"));
        assert!(m.contains("Date: "));
        assert!(m.trim_end().ends_with("--"));
        assert_ne!(boundary(), boundary());
    }
}
