//! Grammar elements shared by several daemons: queue ids, peers, addresses, SMTP
//! replies and the `from=<…> to=<…> proto=… helo=<…>` trailer.
//!
//! Every function is a nom parser over `&str` with the complete-input semantics: the
//! message is one whole line, never a stream.

use nom::bytes::complete::{tag, take_till, take_while, take_while_m_n, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::event::Peer;

/// The parser result type used throughout the crate (nom's default error, which
/// never allocates).
pub(crate) type Res<'a, O> = IResult<&'a str, O>;

/// Shortest short queue id accepted: Postfix writes five hex digits of
/// microseconds followed by the inode number in hex, so real ids have at least six
/// characters; five is accepted because test suites use such ids.
pub(crate) const SHORT_QID_MIN: usize = 5;

/// Number of base-52 time characters before the `z` of a long queue id: six or more
/// for the seconds and exactly four for the microseconds (`MQID_LG_TIME_PAD` in
/// Postfix's `mail_queue.h`).
pub(crate) const LONG_QID_TIME_MIN: usize = 10;

/// Longest token considered as a queue id at all; anything longer is text. Postfix
/// bounds queue file names by the hostname length limit (255).
pub(crate) const QID_MAX: usize = 255;

/// True for a short queue id: upper-case hex, at least [`SHORT_QID_MIN`] long.
///
/// A run of `X` after the hex digits is tolerated: a public anonymised corpus
/// (FgForrest's Postfix-Deliverability-Analytics) appends `XXXX` to every queue id,
/// and since `X` is not a hex digit no real short id or ordinary word is read
/// differently because of it.
fn is_short_qid(s: &str) -> bool {
    let hex = s.trim_end_matches('X');
    hex.len() >= SHORT_QID_MIN
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// True for a long queue id (`enable_long_queue_ids = yes`): at least
/// [`LONG_QID_TIME_MIN`] alphanumerics of time, a `z`, then at least one
/// alphanumeric of inode number that contains no `z` (so the separator is the last
/// `z`). Postfix's alphabet has no vowels, but anonymised test data often does, so
/// any ASCII alphanumeric is accepted.
fn is_long_qid(s: &str) -> bool {
    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    match s.rfind('z') {
        Some(z) => z >= LONG_QID_TIME_MIN && z + 1 < s.len(),
        None => false,
    }
}

/// True when `s` is a Postfix queue id, short or long (`NOQUEUE` is not).
pub fn is_queue_id(s: &str) -> bool {
    s.len() <= QID_MAX && (is_short_qid(s) || is_long_qid(s))
}

/// A queue id (short or long form); never `NOQUEUE` and never an ordinary word.
pub(crate) fn queue_id(i: &str) -> Res<'_, &str> {
    let (rest, word) = take_while1(|c: char| c.is_ascii_alphanumeric())(i)?;
    if is_queue_id(word) {
        Ok((rest, word))
    } else {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )))
    }
}

/// `QID: ` at the start of a message (or `QID:` ending it); returns the queue id.
pub(crate) fn qid_prefix(i: &str) -> Res<'_, &str> {
    let (rest, qid) = queue_id(i)?;
    if rest == ":" {
        return Ok(("", qid));
    }
    let (rest, _) = tag(": ")(rest)?;
    Ok((rest, qid))
}

/// A decimal number that fits in `T`.
pub(crate) fn number<T: std::str::FromStr>(i: &str) -> Res<'_, T> {
    let (rest, digits) = digit1(i)?;
    match digits.parse() {
        Ok(n) => Ok((rest, n)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Digit,
        ))),
    }
}

/// A decimal fraction as Postfix formats delays: `0.16`, `35`, `1e-05` is not
/// produced, but a leading `.` is tolerated.
pub(crate) fn seconds(i: &str) -> Res<'_, f32> {
    let (rest, s) = take_while1(|c: char| c.is_ascii_digit() || c == '.')(i)?;
    match s.parse() {
        Ok(f) => Ok((rest, f)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Float,
        ))),
    }
}

/// A remote peer: `name[addr]`, `name[addr]:port` or `[addr]:port` (postscreen).
/// The name holds no space and no `[`; the address is whatever the brackets hold
/// (IPv4, IPv6, or a socket path such as `private/dovecot-lmtp`).
pub(crate) fn peer(i: &str) -> Res<'_, Peer<'_>> {
    let (rest, name) = take_till(|c: char| c == '[' || c == ' ' || c == ']')(i)?;
    let (rest, _) = char('[')(rest)?;
    let (rest, addr) = take_till(|c: char| c == ']')(rest)?;
    let (rest, _) = char(']')(rest)?;
    let (rest, port) = opt(port).parse(rest)?;
    Ok((rest, Peer { name, addr, port }))
}

/// `:port` after a bracketed address. A number too big for a port is still consumed
/// but not returned, so the peer keeps its text boundaries.
fn port(i: &str) -> Res<'_, u16> {
    let (rest, _) = char(':')(i)?;
    let (rest, digits) = digit1(rest)?;
    match digits.parse() {
        Ok(p) => Ok((rest, p)),
        Err(_) => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Digit,
        ))),
    }
}

/// An address in angle brackets, `<…>`, returning the inside (possibly empty).
/// The first `>` ends it: Postfix logs addresses unquoted, and a `>` inside an
/// address is too rare to justify guessing.
pub(crate) fn angle(i: &str) -> Res<'_, &str> {
    let (rest, _) = char('<')(i)?;
    let (rest, inner) = take_till(|c: char| c == '>')(rest)?;
    let (rest, _) = char('>')(rest)?;
    Ok((rest, inner))
}

/// An address as a value of `to=`, `from=`, `orig_to=`: in angle brackets, or bare
/// (some Postfix builds and hand-made logs omit them), in which case it ends at a
/// `,` or a space.
pub(crate) fn address(i: &str) -> Res<'_, &str> {
    if i.starts_with('<') {
        angle(i)
    } else {
        take_till(|c: char| c == ',' || c == ' ')(i)
    }
}

/// A three-digit SMTP reply code (`2xx`..`5xx`) followed by a space, a `-` or the
/// end of the text.
pub(crate) fn smtp_code(i: &str) -> Res<'_, u16> {
    let (rest, digits) = take_while_m_n(3, 3, |c: char| c.is_ascii_digit())(i)?;
    let ok_next = rest.is_empty() || rest.starts_with(' ') || rest.starts_with('-');
    let first = digits.as_bytes()[0];
    if !ok_next || !(b'2'..=b'5').contains(&first) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let code = digits.parse().unwrap_or(0);
    Ok((rest, code))
}

/// An enhanced status code `class.subject.detail` (RFC 3463): `5.7.1`, `4.4.1`,
/// `2.0.0`, followed by a space, `,`, `)` or the end.
pub(crate) fn dsn_code(i: &str) -> Res<'_, &str> {
    let start = i;
    let (rest, _) = take_while_m_n(1, 1, |c: char| matches!(c, '2' | '4' | '5'))(i)?;
    let (rest, _) = char('.')(rest)?;
    let (rest, _) = take_while_m_n(1, 3, |c: char| c.is_ascii_digit())(rest)?;
    let (rest, _) = char('.')(rest)?;
    let (rest, _) = take_while_m_n(1, 3, |c: char| c.is_ascii_digit())(rest)?;
    if !(rest.is_empty() || rest.starts_with([' ', ',', ')', ';'])) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((rest, &start[..start.len() - rest.len()]))
}

/// An SMTP reply as smtpd and cleanup log it: optional code, optional enhanced code,
/// then free text (all of the rest).
pub(crate) fn reply(i: &str) -> (Option<u16>, Option<&str>, &str) {
    let (rest, code) = match smtp_code(i) {
        Ok((rest, code)) => (rest.strip_prefix(' ').unwrap_or(rest), Some(code)),
        Err(_) => (i, None),
    };
    let (rest, dsn) = match dsn_code(rest) {
        Ok((rest, dsn)) => (rest.strip_prefix(' ').unwrap_or(rest), Some(dsn)),
        Err(_) => (rest, None),
    };
    (code, dsn, rest)
}

/// The context fields that smtpd, cleanup and postscreen append after a `;`:
/// `from=<…> to=<…> proto=… helo=<…>` and the SASL fields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub sasl_method: Option<&'a str>,
    pub sasl_username: Option<&'a str>,
    pub sasl_sender: Option<&'a str>,
}

/// The field names a trailer can start with; used to find where the free text ends.
const TRAILER_KEYS: [&str; 7] = [
    "from=",
    "to=",
    "proto=",
    "helo=",
    "sasl_method=",
    "sasl_username=",
    "sasl_sender=",
];

/// True when `s` (the text after a `;`) looks like the start of a trailer: empty,
/// or a known field name after optional spaces.
pub(crate) fn starts_trailer(s: &str) -> bool {
    let s = s.trim_start_matches(' ');
    s.is_empty() || TRAILER_KEYS.iter().any(|k| s.starts_with(k))
}

/// One `key=value` of a trailer; unknown keys fail so the caller stops.
fn trailer_field<'a>(i: &'a str, t: &mut Trailer<'a>) -> Res<'a, ()> {
    let (rest, key) = take_while1(|c: char| c.is_ascii_lowercase() || c == '_')(i)?;
    let (rest, _) = char('=')(rest)?;
    // Values in angle brackets may be empty (`helo=` with nothing is also seen).
    let bare = |s| take_till(|c: char| c == ' ' || c == ',')(s);
    let (rest, value) = match key {
        "from" | "to" | "helo" => {
            if rest.starts_with('<') {
                angle(rest)?
            } else {
                bare(rest)?
            }
        }
        // A protocol name is one word; cleanup may put `: text` right after it.
        "proto" => take_till(|c: char| c == ' ' || c == ',' || c == ':' || c == ';')(rest)?,
        "sasl_method" | "sasl_username" | "sasl_sender" => bare(rest)?,
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )));
        }
    };
    match key {
        "from" => t.from = Some(value),
        "to" => t.to = Some(value),
        "helo" => t.helo = Some(value),
        "proto" => t.proto = Some(value),
        "sasl_method" => t.sasl_method = Some(value),
        "sasl_username" => t.sasl_username = Some(value),
        _ => t.sasl_sender = Some(value),
    }
    Ok((rest, ()))
}

/// The trailer fields, separated by a space (smtpd, cleanup) or `, ` (postscreen).
/// Stops at the first thing that is not a known field and returns it as the rest
/// (e.g. `: text` after a cleanup header check).
pub(crate) fn trailer(i: &str) -> Res<'_, Trailer<'_>> {
    let mut t = Trailer::default();
    let mut rest = i;
    loop {
        let (r, _) = take_while(|c: char| c == ' ' || c == ',')(rest)?;
        match trailer_field(r, &mut t) {
            Ok((r, ())) => rest = r,
            Err(_) => break,
        }
    }
    Ok((rest, t))
}

/// Split `text; trailer` at the `;` that starts the trailer: the last `;` followed
/// by a known field (or by nothing), so `;` inside the reply text stays in the text.
/// Returns the text and the trailer source (after the `;`), or `None` for the
/// trailer when there is no such `;` (truncated lines).
pub(crate) fn split_trailer(s: &str) -> (&str, Option<&str>) {
    let mut end = s.len();
    while let Some(pos) = memchr::memrchr(b';', &s.as_bytes()[..end]) {
        let after = &s[pos + 1..];
        if starts_trailer(after) {
            return (&s[..pos], Some(after));
        }
        end = pos;
    }
    (s, None)
}

/// Everything inside the outer parentheses of `(text)` at the end of a line; the text
/// may hold nested parentheses. A line cut short (no closing parenthesis) yields the
/// rest of the line; trailing garbage after the last `)` is ignored.
pub(crate) fn paren_tail(i: &str) -> &str {
    let inner = i.strip_prefix('(').unwrap_or(i);
    match inner.rfind(')') {
        Some(end) => &inner[..end],
        None => inner,
    }
}

/// A word of upper-case letters, digits and `-` (an SMTP stage such as
/// `END-OF-MESSAGE`, `RCPT`, `CONNECT`).
pub(crate) fn upper_word(i: &str) -> Res<'_, &str> {
    take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids() {
        for ok in [
            "838FC8A5F",
            "1234567890A",
            "DEADBEEF",
            "ABCDE",
            "3bZLDk1V50z37Dv",
            "3mPVKl0Mhjz7sXv",
            "44JCRG5tYPzCqt2",
            "28DF8C2C113XXXX",
        ] {
            assert!(is_queue_id(ok), "{ok}");
        }
        for bad in [
            "NOQUEUE",
            "hostname",
            "warning",
            "statistics",
            "ABCD",
            "abcdef",
            "3bZLDk1V50z",
            "3bZLz37Dv",
            "838fc8a5f",
            "XXXXXXX",
            "ABXXXX",
            "",
        ] {
            assert!(!is_queue_id(bad), "{bad}");
        }
    }

    #[test]
    fn queue_id_parser() {
        assert_eq!(
            queue_id("838FC8A5F: removed"),
            Ok((": removed", "838FC8A5F"))
        );
        assert!(queue_id("NOQUEUE: reject").is_err());
        assert_eq!(
            qid_prefix("838FC8A5F: removed"),
            Ok(("removed", "838FC8A5F"))
        );
        assert!(qid_prefix("838FC8A5F removed").is_err());
        assert_eq!(qid_prefix("838FC8A5F:"), Ok(("", "838FC8A5F")));
    }

    #[test]
    fn numbers() {
        assert_eq!(number::<u32>("42 x"), Ok((" x", 42)));
        assert!(number::<u8>("300").is_err());
        assert_eq!(seconds("0.16, x"), Ok((", x", 0.16)));
        assert_eq!(seconds("35/"), Ok(("/", 35.0)));
        assert!(seconds("x").is_err());
    }

    #[test]
    fn peers() {
        assert_eq!(
            peer("mail.example.com[192.0.2.1]:25: x"),
            Ok((
                ": x",
                Peer {
                    name: "mail.example.com",
                    addr: "192.0.2.1",
                    port: Some(25)
                }
            ))
        );
        assert_eq!(
            peer("unknown[2001:db8::1]: 554"),
            Ok((
                ": 554",
                Peer {
                    name: "unknown",
                    addr: "2001:db8::1",
                    port: None
                }
            ))
        );
        assert_eq!(
            peer("[192.0.2.7]:51234"),
            Ok((
                "",
                Peer {
                    name: "",
                    addr: "192.0.2.7",
                    port: Some(51234)
                }
            ))
        );
        assert_eq!(
            peer("mail.example.com[private/dovecot-lmtp]"),
            Ok((
                "",
                Peer {
                    name: "mail.example.com",
                    addr: "private/dovecot-lmtp",
                    port: None
                }
            ))
        );
        assert!(peer("no brackets").is_err());
        assert!(peer("open[1.2.3.4").is_err());
    }

    #[test]
    fn angles_and_addresses() {
        assert_eq!(angle("<a@b>, x"), Ok((", x", "a@b")));
        assert_eq!(angle("<>"), Ok(("", "")));
        assert!(angle("a@b").is_err());
        assert_eq!(address("a@b, relay"), Ok((", relay", "a@b")));
        assert_eq!(address("<a@b>, relay"), Ok((", relay", "a@b")));
    }

    #[test]
    fn codes() {
        assert_eq!(smtp_code("554 5.7.1 x"), Ok((" 5.7.1 x", 554)));
        assert!(smtp_code("5541").is_err());
        assert!(smtp_code("123 1.2.3").is_err());
        assert_eq!(dsn_code("5.7.1 x"), Ok((" x", "5.7.1")));
        assert_eq!(dsn_code("4.7.25 x"), Ok((" x", "4.7.25")));
        assert!(dsn_code("5.7 x").is_err());
        assert!(dsn_code("5.7.1x").is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply("554 5.7.1 <a@b>: Relay access denied"),
            (Some(554), Some("5.7.1"), "<a@b>: Relay access denied")
        );
        assert_eq!(
            reply("4.7.1 Greylisting"),
            (None, Some("4.7.1"), "Greylisting")
        );
        assert_eq!(reply("550 <x>: Helo"), (Some(550), None, "<x>: Helo"));
        assert_eq!(
            reply("too many connections"),
            (None, None, "too many connections")
        );
    }

    #[test]
    fn trailers() {
        let (rest, t) = trailer(" from=<a@b> to=<c@d> proto=ESMTP helo=<h>").unwrap();
        assert_eq!(rest, "");
        assert_eq!(t.from, Some("a@b"));
        assert_eq!(t.to, Some("c@d"));
        assert_eq!(t.proto, Some("ESMTP"));
        assert_eq!(t.helo, Some("h"));
        // postscreen separates with ", ".
        let (_, t) = trailer(" from=<a@b>, to=<c@d>, proto=ESMTP, helo=<h>").unwrap();
        assert_eq!((t.to, t.helo), (Some("c@d"), Some("h")));
        // helo= without brackets, sasl fields, trailing text.
        let (rest, t) = trailer(" from=<> proto=ESMTP helo= sasl_method=PLAIN x").unwrap();
        assert_eq!(
            (t.from, t.helo, t.sasl_method),
            (Some(""), Some(""), Some("PLAIN"))
        );
        assert_eq!(rest, " x");
        let (rest, t) = trailer(" from=<a> proto=ESMTP: text").unwrap();
        assert_eq!((t.proto, rest), (Some("ESMTP"), ": text"));
        let (rest, t) = trailer(" from=<a> helo=<h>: 5.7.1 text").unwrap();
        assert_eq!((t.helo, rest), (Some("h"), ": 5.7.1 text"));
    }

    #[test]
    fn trailer_split() {
        assert_eq!(
            split_trailer("554 5.7.1 a; b; from=<x> to=<y>"),
            ("554 5.7.1 a; b", Some(" from=<x> to=<y>"))
        );
        assert_eq!(
            split_trailer("text; proto=SMTP"),
            ("text", Some(" proto=SMTP"))
        );
        assert_eq!(split_trailer("text;"), ("text", Some("")));
        assert_eq!(
            split_trailer("no trailer; here"),
            ("no trailer; here", None)
        );
    }

    #[test]
    fn parens() {
        assert_eq!(paren_tail("(250 ok (x) y)"), "250 ok (x) y");
        assert_eq!(paren_tail("(cut short"), "cut short");
        assert_eq!(paren_tail("(a),,,,"), "a");
    }

    #[test]
    fn upper_words() {
        assert_eq!(
            upper_word("END-OF-MESSAGE from"),
            Ok((" from", "END-OF-MESSAGE"))
        );
        assert!(upper_word("rcpt").is_err());
    }
}
