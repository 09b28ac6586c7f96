//! Masking the variable parts of a failure text, so that the same failure from
//! different recipients, hosts and days groups into one line of the unclassified list.

/// Longest text normalised, in bytes; the rest is dropped (grouping needs the start).
pub const MAX_NORMALIZED_INPUT: usize = 1024;

/// Characters that end a token besides whitespace: brackets and quotes stay in the
/// output so that `<addr>` and `[ip]` keep their shape.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | ',' | ';' | '"' | '\'' | '='
        )
}

/// Normalise a failure text for grouping: lower-case, whitespace collapsed, and
///
/// - mail addresses → `<addr>`,
/// - IPv4/IPv6 addresses → `<ip>`,
/// - host names with a digit → `<host>` (names without digits are kept: they are
///   usually the provider, which is worth seeing),
/// - queue ids and other mixed letter/digit tokens → `<id>`,
/// - other numbers → `<n>`,
///
/// while keeping reply codes (`550`) and enhanced status codes (`5.1.1`), which say
/// what the failure is.
///
/// ```
/// assert_eq!(
///     pftrack_classify::normalize(
///         "host mx7.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: \
///          Recipient address rejected: User unknown (in reply to RCPT TO command)"
///     ),
///     "host <host>[<ip>] said: 550 5.1.1 <<addr>>: recipient address rejected: \
///      user unknown (in reply to rcpt to command)"
/// );
/// ```
pub fn normalize(text: &str) -> String {
    let text = {
        let mut end = text.len().min(MAX_NORMALIZED_INPUT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut pending_space = false;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if is_delimiter(c) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = rest.find(is_delimiter).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        // Trailing punctuation is not part of the token.
        let core = token.trim_end_matches(['.', ':', '!', '?']);
        let tail = &token[core.len()..];
        // A leading '#' (`#5.1.1`) or ':' (`]:25`) stays outside too.
        let head_len = core.len() - core.trim_start_matches(['#', ':']).len();
        let (head, core) = core.split_at(head_len);
        out.push_str(head);
        match mask(core) {
            Some(m) => out.push_str(m),
            None => out.extend(core.chars().flat_map(char::to_lowercase)),
        }
        out.push_str(tail);
    }
    out
}

/// The mask for a token, or `None` to keep it (lower-cased).
fn mask(t: &str) -> Option<&'static str> {
    if t.is_empty() {
        return None;
    }
    if let Some((local, domain)) = t.rsplit_once('@')
        && !local.is_empty()
        && domain.contains('.')
    {
        return Some("<addr>");
    }
    let has_digit = t.bytes().any(|b| b.is_ascii_digit());
    if !has_digit {
        return is_ipv6(t).then_some("<ip>");
    }
    if is_reply_code(t) || is_dsn(t) {
        return None;
    }
    if is_ipv4(t) || is_ipv6(t) {
        return Some("<ip>");
    }
    if t.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b',' || b == b'-' || b == b'/' || b == b':'
    }) {
        return Some("<n>");
    }
    if t.contains('.')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Some("<host>");
    }
    if t.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/' || b == b'+' || b == b':'
    }) {
        return Some("<id>");
    }
    None
}

fn is_reply_code(t: &str) -> bool {
    let b = t.as_bytes();
    // `550` or `550-` (continuation lines).
    let b = b.strip_suffix(b"-").unwrap_or(b);
    b.len() == 3 && matches!(b[0], b'2' | b'4' | b'5') && b[1..].iter().all(u8::is_ascii_digit)
}

fn is_dsn(t: &str) -> bool {
    let t = t
        .split_once('-')
        .filter(|(code, _)| is_reply_code(code))
        .map_or(t, |(_, dsn)| dsn);
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_ipv4(t: &str) -> bool {
    let t = t.split_once(':').map_or(t, |(a, _)| a);
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_ipv6(t: &str) -> bool {
    let t = t
        .strip_prefix("IPv6:")
        .or_else(|| t.strip_prefix("ipv6:"))
        .unwrap_or(t);
    t.matches(':').count() >= 2
        && t.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn similar_texts_group() {
        let a = normalize("connect to mx1.example.com[192.0.2.1]:25: Connection timed out");
        let b = normalize("connect to mx22.example.com[198.51.100.7]:25: Connection timed out");
        assert_eq!(a, b);
        assert_eq!(a, "connect to <host>[<ip>]:<n>: connection timed out");
    }

    #[test]
    fn masks() {
        assert_eq!(
            normalize("said: 450 4.2.0 <b@x.cz>: Greylisted for 300 seconds"),
            "said: 450 4.2.0 <<addr>>: greylisted for <n> seconds"
        );
        assert_eq!(normalize("queued as 4ABC12DEF3"), "queued as <id>");
        assert_eq!(normalize("from [2001:db8::1] ok"), "from [<ip>] ok");
        assert_eq!(normalize("550-5.7.26 This"), "550-5.7.26 this");
        assert_eq!(normalize("(#5.1.1)"), "(#5.1.1)");
        assert_eq!(normalize("  a \n\t b  "), "a b");
        assert_eq!(
            normalize("Name service error for name=mail.example.com type=MX"),
            "name service error for name=mail.example.com type=mx"
        );
    }

    #[test]
    fn long_and_non_ascii_input() {
        let s = "é".repeat(2000);
        assert!(normalize(&s).len() <= super::MAX_NORMALIZED_INPUT);
        assert_eq!(normalize("ÉCHEC 42"), "échec <n>");
    }
}
