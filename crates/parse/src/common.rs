//! Grammar elements shared by several daemons: queue ids, peers, addresses, SMTP
//! replies and the `from=<…> to=<…> proto=… helo=<…>` trailer.
//!
//! Every function is a nom parser over `&str` with the complete-input semantics: the
//! message is one whole line, never a stream.

use nom::bytes::complete::tag;
use nom::character::complete::char;
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::event::Peer;

/// The parser result type used throughout the crate (nom's default error, which
/// never allocates).
pub(crate) type Res<'a, O> = IResult<&'a str, O>;

/// Like nom's `take_while1`, but over bytes: `pred` must accept only ASCII bytes, so
/// the split always falls on a character boundary. Byte tests are much cheaper than
/// decoding characters, and every delimiter in Postfix's formats is ASCII.
pub(crate) fn ascii_while1(pred: impl Fn(u8) -> bool) -> impl Fn(&str) -> Res<'_, &str> {
    move |i: &str| {
        let n = i.bytes().position(|b| !pred(b)).unwrap_or(i.len());
        if n == 0 {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::TakeWhile1,
            )));
        }
        Ok((&i[n..], &i[..n]))
    }
}

/// Like nom's `take_while`, over bytes: `pred` must accept only ASCII bytes.
pub(crate) fn ascii_while(pred: impl Fn(u8) -> bool) -> impl Fn(&str) -> Res<'_, &str> {
    move |i: &str| {
        let n = i.bytes().position(|b| !pred(b)).unwrap_or(i.len());
        Ok((&i[n..], &i[..n]))
    }
}

/// Like nom's `take_till`, over bytes: `stop` must match only ASCII bytes.
pub(crate) fn ascii_till(stop: impl Fn(u8) -> bool) -> impl Fn(&str) -> Res<'_, &str> {
    move |i: &str| {
        let n = i.bytes().position(&stop).unwrap_or(i.len());
        Ok((&i[n..], &i[..n]))
    }
}

/// Like nom's `take_till1`, over bytes: `stop` must match only ASCII bytes.
pub(crate) fn ascii_till1(stop: impl Fn(u8) -> bool) -> impl Fn(&str) -> Res<'_, &str> {
    move |i: &str| {
        let n = i.bytes().position(&stop).unwrap_or(i.len());
        if n == 0 {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::TakeTill1,
            )));
        }
        Ok((&i[n..], &i[..n]))
    }
}

/// Everything up to the first `stop` byte (ASCII), found with memchr, or all of it.
pub(crate) fn till_byte(i: &str, stop: u8) -> (&str, &str) {
    let n = memchr::memchr(stop, i.as_bytes()).unwrap_or(i.len());
    (&i[n..], &i[..n])
}

/// First occurrence of `needle` (non-empty, ASCII first byte) in `hay`: memchr on the
/// first byte, then a compare. Cheaper than `str::find` for the short needles and
/// lines here, which builds a Two-Way searcher on every call.
pub(crate) fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let first = *n.first()?;
    memchr::memchr_iter(first, h).find(|&at| h[at..].starts_with(n))
}

/// Last occurrence of `needle` in `hay` (see [`find`]).
pub(crate) fn rfind(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let first = *n.first()?;
    memchr::memrchr_iter(first, h).find(|&at| h[at..].starts_with(n))
}

/// Shortest short queue id accepted: Postfix writes five hex digits of
/// microseconds followed by the inode number in hex, so real ids have at least six
/// characters; five is accepted because test suites use such ids.
pub const SHORT_QID_MIN: usize = 5;

/// Number of base-52 time characters before the `z` of a long queue id: six or more
/// for the seconds and exactly four for the microseconds (`MQID_LG_TIME_PAD` in
/// Postfix's `mail_queue.h`).
pub const LONG_QID_TIME_MIN: usize = 10;

/// Longest token considered as a queue id at all; anything longer is text. Postfix
/// bounds queue file names by the hostname length limit (255).
pub(crate) const QID_MAX: usize = 255;

/// What one pass over a token says about it being a queue id.
struct QidScan {
    /// Length of the alphanumeric token.
    len: usize,
    /// Length of its leading run of upper-case hex digits.
    hex: usize,
    /// True when everything after the hex run is `X`.
    x_tail: bool,
    /// Index of the last `z`.
    last_z: Option<usize>,
}

/// Byte class: ASCII letter or digit.
const ALNUM: u8 = 1;
/// Byte class: upper-case hex digit (`0-9A-F`).
const UPPER_HEX: u8 = 2;

/// Class bits of every byte, for the queue id scan.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() {
            t[c] |= ALNUM;
        }
        if b.is_ascii_digit() || (b >= b'A' && b <= b'F') {
            t[c] |= UPPER_HEX;
        }
        c += 1;
    }
    t
};

/// Scan the alphanumeric token at the start of `b` in one pass: the upper-case hex
/// run, then a run of `X`, then the rest of the token (the only place a `z` can be,
/// since `z` is neither hex nor `X`), with a class table instead of per-byte branches.
fn scan_qid(b: &[u8]) -> QidScan {
    let mut i = 0;
    while i < b.len() && CLASS[usize::from(b[i])] & UPPER_HEX != 0 {
        i += 1;
    }
    let hex = i;
    while i < b.len() && b[i] == b'X' {
        i += 1;
    }
    let x_end = i;
    let mut last_z = None;
    while i < b.len() && CLASS[usize::from(b[i])] & ALNUM != 0 {
        if b[i] == b'z' {
            last_z = Some(i);
        }
        i += 1;
    }
    QidScan {
        len: i,
        hex,
        x_tail: x_end == i,
        last_z,
    }
}

impl QidScan {
    /// A short queue id: upper-case hex, at least [`SHORT_QID_MIN`] long.
    ///
    /// A run of `X` after the hex digits is tolerated: a public anonymised corpus
    /// (FgForrest's Postfix-Deliverability-Analytics) appends `XXXX` to every queue
    /// id, and since `X` is not a hex digit no real short id or ordinary word is read
    /// differently because of it.
    fn is_short(&self) -> bool {
        self.hex >= SHORT_QID_MIN && self.x_tail
    }

    /// A long queue id (`enable_long_queue_ids = yes`): at least
    /// [`LONG_QID_TIME_MIN`] alphanumerics of time, a `z`, then at least one
    /// alphanumeric of inode number that contains no `z` (so the separator is the
    /// last `z`). Postfix's alphabet has no vowels, but anonymised test data often
    /// does, so any ASCII alphanumeric is accepted.
    fn is_long(&self) -> bool {
        self.last_z
            .is_some_and(|z| z >= LONG_QID_TIME_MIN && z + 1 < self.len)
    }

    fn is_qid(&self) -> bool {
        self.len <= QID_MAX && (self.is_short() || self.is_long())
    }
}

/// True when `s` is a Postfix queue id: short (upper-case hex, at least
/// [`SHORT_QID_MIN`] characters; a trailing run of `X` from an anonymiser is
/// tolerated) or long (`enable_long_queue_ids`: at least [`LONG_QID_TIME_MIN`]
/// alphanumerics, the `z` separator, then the inode part). `NOQUEUE` and ordinary
/// words are not.
pub fn is_queue_id(s: &str) -> bool {
    let scan = scan_qid(s.as_bytes());
    scan.len == s.len() && scan.is_qid()
}

/// A queue id (short or long form); never `NOQUEUE` and never an ordinary word.
pub(crate) fn queue_id(i: &str) -> Res<'_, &str> {
    let scan = scan_qid(i.as_bytes());
    if scan.len > 0 && scan.is_qid() {
        Ok((&i[scan.len..], &i[..scan.len]))
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

/// Most digits [`number`] reads: a `u64` holds any 19-digit number.
const MAX_NUMBER_DIGITS: usize = 19;

/// A decimal number that fits in `T` (accumulated from bytes; no `str::parse`).
pub(crate) fn number<T: TryFrom<u64>>(i: &str) -> Res<'_, T> {
    let b = i.as_bytes();
    let n = b.iter().take_while(|d| d.is_ascii_digit()).count();
    let fail = || {
        Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Digit,
        )))
    };
    if n == 0 || n > MAX_NUMBER_DIGITS {
        return fail();
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    match T::try_from(v) {
        Ok(v) => Ok((&i[n..], v)),
        Err(_) => fail(),
    }
}

/// Most significant digits the fast path of [`seconds`] handles exactly: the value
/// `m / 10^k` with `m < 10^7` is exact in `f64` and rounds correctly to `f32`.
const FAST_FLOAT_DIGITS: usize = 7;

/// Powers of ten for the fast path of [`seconds`].
const POW10: [f64; FAST_FLOAT_DIGITS + 1] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];

/// A decimal fraction as Postfix formats delays: `0.16`, `35`, `.5`. Short values
/// (the usual case) are computed from their digits in one pass; longer ones go
/// through `str::parse`.
pub(crate) fn seconds(i: &str) -> Res<'_, f32> {
    let b = i.as_bytes();
    // Integer digits, then an optional `.` and fraction digits. The mantissa wraps
    // past 19 digits, but only values of at most FAST_FLOAT_DIGITS digits use it.
    let mut mantissa = 0u64;
    let mut at = 0;
    while let Some(&c) = b.get(at)
        && c.is_ascii_digit()
    {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        at += 1;
    }
    let int_digits = at;
    let mut decimals = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(&c) = b.get(at)
            && c.is_ascii_digit()
        {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            at += 1;
        }
        decimals = at - start;
    }
    let digits = int_digits + decimals;
    if digits == 0 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Float,
        )));
    }
    let (text, rest) = i.split_at(at);
    if digits <= FAST_FLOAT_DIGITS {
        return Ok((rest, (mantissa as f64 / POW10[decimals]) as f32));
    }
    match text.parse() {
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
    let (rest, name) = ascii_till(|c: u8| c == b'[' || c == b' ' || c == b']')(i)?;
    let (rest, _) = char('[')(rest)?;
    let (rest, addr) = till_byte(rest, b']');
    let (rest, _) = char(']')(rest)?;
    let (rest, port) = opt(port).parse(rest)?;
    Ok((rest, Peer { name, addr, port }))
}

/// `:port` after a bracketed address. A number too big for a port is still consumed
/// but not returned, so the peer keeps its text boundaries.
fn port(i: &str) -> Res<'_, u16> {
    let (rest, _) = char(':')(i)?;
    number::<u16>(rest)
}

/// An address in angle brackets, `<…>`, returning the inside (possibly empty).
/// The first `>` ends it: Postfix logs addresses unquoted, and a `>` inside an
/// address is too rare to justify guessing.
pub(crate) fn angle(i: &str) -> Res<'_, &str> {
    let (rest, _) = char('<')(i)?;
    let (rest, inner) = till_byte(rest, b'>');
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
        ascii_till(|c: u8| c == b',' || c == b' ')(i)
    }
}

/// A three-digit SMTP reply code (`2xx`..`5xx`) followed by a space, a `-` or the
/// end of the text.
pub(crate) fn smtp_code(i: &str) -> Res<'_, u16> {
    let b = i.as_bytes();
    let ok = b.len() >= 3
        && (b'2'..=b'5').contains(&b[0])
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && matches!(b.get(3), None | Some(b' ' | b'-'));
    if !ok {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        )));
    }
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    Ok((&i[3..], code))
}

/// Up to `max` ASCII digits (at least one) at the start of `b`; their count.
fn digits_upto(b: &[u8], max: usize) -> Option<usize> {
    let n = b
        .iter()
        .take(max)
        .take_while(|d| d.is_ascii_digit())
        .count();
    (n > 0).then_some(n)
}

/// An enhanced status code `class.subject.detail` (RFC 3463): `5.7.1`, `4.4.1`,
/// `2.0.0`, followed by a space, `,`, `)`, `;` or the end.
pub(crate) fn dsn_code(i: &str) -> Res<'_, &str> {
    let b = i.as_bytes();
    let len = (|| {
        if !matches!(b.first(), Some(b'2' | b'4' | b'5')) || b.get(1) != Some(&b'.') {
            return None;
        }
        let s = digits_upto(&b[2..], 3)?;
        let dot = 2 + s;
        if b.get(dot) != Some(&b'.') {
            return None;
        }
        let d = digits_upto(&b[dot + 1..], 3)?;
        let end = dot + 1 + d;
        matches!(b.get(end), None | Some(b' ' | b',' | b')' | b';')).then_some(end)
    })();
    match len {
        Some(end) => Ok((&i[end..], &i[..end])),
        None => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Verify,
        ))),
    }
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
    let (rest, key) = ascii_while1(|c: u8| c.is_ascii_lowercase() || c == b'_')(i)?;
    let (rest, _) = char('=')(rest)?;
    // Values in angle brackets may be empty (`helo=` with nothing is also seen).
    let bare = |s| ascii_till(|c: u8| c == b' ' || c == b',')(s);
    let (rest, value) = match key {
        "from" | "to" | "helo" => {
            if rest.starts_with('<') {
                angle(rest)?
            } else {
                bare(rest)?
            }
        }
        // A protocol name is one word; cleanup may put `: text` right after it.
        "proto" => ascii_till(|c: u8| c == b' ' || c == b',' || c == b':' || c == b';')(rest)?,
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
        let (r, _) = ascii_while(|c: u8| c == b' ' || c == b',')(rest)?;
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
    ascii_while1(|c: u8| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'_')(i)
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

    /// The scan as it was written first (four passes), to check the one-pass scan.
    fn scan_qid_reference(b: &[u8]) -> (usize, usize, bool, Option<usize>) {
        let len = b
            .iter()
            .position(|&c| !c.is_ascii_alphanumeric())
            .unwrap_or(b.len());
        let token = &b[..len];
        let hex = token
            .iter()
            .position(|&c| !(c.is_ascii_digit() || (b'A'..=b'F').contains(&c)))
            .unwrap_or(len);
        (
            len,
            hex,
            token[hex..].iter().all(|&c| c == b'X'),
            token.iter().rposition(|&c| c == b'z'),
        )
    }

    /// `seconds` as it was written first (one loop with a dot state).
    fn seconds_reference(i: &str) -> Res<'_, f32> {
        let b = i.as_bytes();
        let (mut mantissa, mut digits, mut dot, mut len) = (0u64, 0usize, None, 0usize);
        for (at, &c) in b.iter().enumerate() {
            match c {
                b'0'..=b'9' => {
                    mantissa = mantissa
                        .saturating_mul(10)
                        .saturating_add(u64::from(c - b'0'));
                    digits += 1;
                }
                b'.' if dot.is_none() => dot = Some(at),
                _ => break,
            }
            len = at + 1;
        }
        if digits == 0 {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Float,
            )));
        }
        let (text, rest) = i.split_at(len);
        if digits <= FAST_FLOAT_DIGITS {
            let decimals = dot.map_or(0, |d| len - d - 1);
            return Ok((rest, (mantissa as f64 / POW10[decimals]) as f32));
        }
        match text.parse() {
            Ok(f) => Ok((rest, f)),
            Err(_) => Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Float,
            ))),
        }
    }

    /// Same value bits, same rest, same error.
    fn same_seconds(s: &str) -> bool {
        match (seconds(s), seconds_reference(s)) {
            (Ok((r1, v1)), Ok((r2, v2))) => r1 == r2 && v1.to_bits() == v2.to_bits(),
            (a, b) => a == b,
        }
    }

    #[test]
    fn seconds_like_the_first_version() {
        for s in [
            "",
            ".",
            "..",
            "5",
            "5.",
            ".5",
            "0.16",
            "35",
            "1.2.3",
            "5.x",
            "12345678",
            "1234.5678",
            "99999999999999999999999",
            "0.0000001",
            "0.00000001",
            "x1",
            "-1",
            "1e5",
            "0.16/0.01",
            "3.4, delays",
        ] {
            assert!(same_seconds(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn seconds_matches_reference(s in "[0-9.]{0,24}[/, ex]?[0-9.]{0,3}") {
            proptest::prop_assert!(same_seconds(&s), "{:?}", s);
        }

        #[test]
        fn one_pass_qid_scan_matches_reference(
            s in "[0-9A-FXzZa-y:. \u{e9}]{0,24}"
        ) {
            let b = s.as_bytes();
            let q = scan_qid(b);
            proptest::prop_assert_eq!((q.len, q.hex, q.x_tail, q.last_z), scan_qid_reference(b));
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
        assert!(seconds(".").is_err());
        assert_eq!(seconds("1.2.3"), Ok((".3", 1.2)));
        assert_eq!(seconds(".5"), Ok(("", 0.5)));
        assert_eq!(seconds("123456.789"), Ok(("", 123456.79)));
        assert_eq!(
            number::<u64>("12345678901234567890"),
            Err(nom::Err::Error(nom::error::Error::new(
                "12345678901234567890",
                nom::error::ErrorKind::Digit
            )))
        );
    }

    #[test]
    fn fast_seconds_match_std_parse() {
        // The fast path must give the same f32 as `str::parse` for the values Postfix
        // prints (two significant digits, or whole seconds).
        for i in 0..200_000u32 {
            for text in [
                format!("{}", i),
                format!("{}.{:02}", i / 100, i % 100),
                format!("0.{:03}", i % 1000),
            ] {
                let fast = seconds(&text).map(|(_, f)| f);
                let std: f32 = text.parse().unwrap();
                assert_eq!(fast, Ok(std), "{text}");
            }
        }
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
