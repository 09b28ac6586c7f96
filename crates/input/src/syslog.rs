//! Zero-copy splitting of one syslog line into timestamp, host, identifier, pid and
//! message.
//!
//! Recognised layouts (the line is given without its line terminator):
//!
//! | layout | example |
//! |---|---|
//! | classic BSD | `Jul  2 06:25:01 mx1 postfix/smtpd[123]: connect from …` |
//! | classic, unpadded day, fraction | `Jul 2 06:25:01.123 mx1 …` |
//! | Postfix `maillog_file` (postlogd) | `Jul 02 06:25:01 mx1 postfix/smtpd[123]: …` |
//! | leading year (FgForrest) | `2013 Jun 16 16:05:06.123 mx1 …` |
//! | RFC 3339 | `2025-03-14T06:25:01.123456+01:00 mx1 …` (also `Z`, no fraction) |
//!
//! Postfix's own `maillog_file` writer formats its stamp with `strftime("%b %d %H:%M:%S ")`
//! and the host's first label (`src/util/msg_logger.c`), so it is the classic layout
//! with a zero-padded day and needs no case of its own.
//!
//! After the stamp come the host (one word) and the identifier, optionally with
//! `[pid]`, then `: ` and the message. Accepted variants: no `[pid]`
//! (`postfix/smtpd: …`), no colon after `[pid]` (a syslog-ng template seen in real
//! logs), and the Solaris `[ID 197553 mail.info] ` tag in front of the message, which
//! is removed. An optional `<PRI>` prefix is skipped.
//!
//! The parser does no allocation and no validation that needs a calendar (`Feb 30`
//! passes here; [`crate::year`] rejects it when it builds the date).

use memchr::memchr;

/// A timestamp as written in a header, not yet placed in a year or a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The year, when the stamp has one (RFC 3339, leading-year BSD).
    pub year: Option<i32>,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, 1–31 (not checked against the month).
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59; a leap second `60` is stored as 59 with `nanos` ≥ 1 000 000 000,
    /// the way chrono represents it.
    pub second: u8,
    /// Fraction of the second in nanoseconds (digits past the ninth are ignored).
    pub nanos: u32,
    /// Offset from UTC in seconds, when the stamp carries one (`Z` is 0).
    pub offset: Option<i32>,
}

/// The parts of one syslog line; every slice borrows from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The timestamp.
    pub stamp: Stamp,
    /// The host name field.
    pub host: &'a [u8],
    /// The syslog identifier (`postfix/submission/smtpd`).
    pub ident: &'a [u8],
    /// The pid in brackets after the identifier, if any.
    pub pid: Option<u32>,
    /// The message after `ident[pid]: ` (and after a Solaris `[ID n facility.level]` tag).
    pub message: &'a [u8],
}

/// Longest `<PRI>` prefix accepted, in digits (syslog priorities are at most 191).
const MAX_PRI_DIGITS: usize = 3;

/// Split one line (without its `\n`) into its header parts.
///
/// The error is a short static reason, for [`crate::InputError::Malformed`].
pub fn split(line: &[u8]) -> Result<Header<'_>, &'static str> {
    let line = skip_pri(line);
    let first = *line.first().ok_or("empty line")?;
    let (stamp, rest) = if first.is_ascii_digit() {
        match line.get(4) {
            Some(b'-') => parse_rfc3339(line)?,
            Some(b' ') => {
                let year = digits(line, 0, 4).ok_or("bad year")? as i32;
                let (mut stamp, rest) = parse_bsd(&line[5..])?;
                stamp.year = Some(year);
                (stamp, rest)
            }
            _ => return Err("unrecognised timestamp"),
        }
    } else {
        parse_bsd(line)?
    };
    split_after_stamp(stamp, rest)
}

/// Skip an optional `<PRI>` prefix.
fn skip_pri(line: &[u8]) -> &[u8] {
    if line.first() == Some(&b'<') {
        let end = line
            .iter()
            .take(MAX_PRI_DIGITS + 2)
            .position(|&b| b == b'>');
        if let Some(end) = end
            && end > 1
            && line[1..end].iter().all(u8::is_ascii_digit)
        {
            return &line[end + 1..];
        }
    }
    line
}

/// `n` ASCII digits at `at` as a number, or `None`.
#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Three-letter English month abbreviation (as `strftime("%b")` writes it in the C
/// locale) to 1–12. Lower- and upper-case spellings are accepted too.
#[inline]
fn month(m: &[u8]) -> Option<u8> {
    let m = [
        m.first()?.to_ascii_lowercase(),
        m.get(1)?.to_ascii_lowercase(),
        m.get(2)?.to_ascii_lowercase(),
    ];
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// `Mmm dd HH:MM:SS[.frac] ` (day space-padded, zero-padded or unpadded). Returns the
/// stamp and what follows the space after it.
fn parse_bsd(s: &[u8]) -> Result<(Stamp, &[u8]), &'static str> {
    let month = month(s).ok_or("unrecognised timestamp")?;
    if s.get(3) != Some(&b' ') {
        return Err("unrecognised timestamp");
    }
    // Day: " d", "d", "dd" or "0d", then a space.
    let mut i = 4;
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    let (day, day_len) = match (s.get(i), s.get(i + 1)) {
        (Some(a), Some(b' ')) if a.is_ascii_digit() => (a - b'0', 1),
        (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
            ((a - b'0') * 10 + (b - b'0'), 2)
        }
        _ => return Err("bad day"),
    };
    i += day_len;
    if s.get(i) != Some(&b' ') || !(1..=31).contains(&day) {
        return Err("bad day");
    }
    i += 1;
    let (hour, minute, second, nanos, end) = parse_time(s, i)?;
    let rest = match s.get(end) {
        Some(b' ') => &s[end + 1..],
        None => return Err("no host"),
        Some(_) => return Err("bad time"),
    };
    Ok((
        Stamp {
            year: None,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset: None,
        },
        rest,
    ))
}

/// `HH:MM:SS[.frac]` at `i`; returns the fields and the index after them.
#[inline]
fn parse_time(s: &[u8], i: usize) -> Result<(u8, u8, u8, u32, usize), &'static str> {
    // One bounds check for the eight bytes, then fixed positions.
    let Some(&[h1, h2, b':', m1, m2, b':', s1, s2]) = s.get(i..i + 8) else {
        return Err("bad time");
    };
    let pair = |a: u8, b: u8| {
        (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
    };
    let (Some(hour), Some(minute), Some(second)) = (pair(h1, h2), pair(m1, m2), pair(s1, s2))
    else {
        return Err("bad time");
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err("bad time");
    }
    let mut end = i + 8;
    let mut nanos = 0u32;
    if matches!(s.get(end), Some(b'.') | Some(b',')) {
        end += 1;
        let start = end;
        let mut scale = 100_000_000u32;
        while let Some(&b) = s.get(end) {
            if !b.is_ascii_digit() {
                break;
            }
            nanos += u32::from(b - b'0') * scale;
            scale /= 10;
            end += 1;
        }
        if end == start {
            return Err("bad time");
        }
    }
    // chrono's leap second: 59 with a fraction of one second or more.
    let (second, nanos) = if second == 60 {
        (59, nanos + 1_000_000_000)
    } else {
        (second, nanos)
    };
    Ok((hour, minute, second, nanos, end))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM|±HHMM] ` (a space instead of `T` is accepted).
fn parse_rfc3339(s: &[u8]) -> Result<(Stamp, &[u8]), &'static str> {
    let year = digits(s, 0, 4).ok_or("bad year")? as i32;
    let month = digits(s, 5, 2).ok_or("bad date")?;
    let day = digits(s, 8, 2).ok_or("bad date")?;
    if s.get(7) != Some(&b'-') || !matches!(s.get(10), Some(b'T') | Some(b't') | Some(b' ')) {
        return Err("bad date");
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err("bad date");
    }
    let (hour, minute, second, nanos, mut end) = parse_time(s, 11)?;
    let offset = match s.get(end) {
        Some(b'Z') | Some(b'z') => {
            end += 1;
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s, end + 1, 2).ok_or("bad offset")?;
            let (om, len) = if s.get(end + 3) == Some(&b':') {
                (digits(s, end + 4, 2).ok_or("bad offset")?, 6)
            } else {
                (digits(s, end + 3, 2).ok_or("bad offset")?, 5)
            };
            if oh > 23 || om > 59 {
                return Err("bad offset");
            }
            end += len;
            let secs = (oh * 3600 + om * 60) as i32;
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };
    let rest = match s.get(end) {
        Some(b' ') => &s[end + 1..],
        None => return Err("no host"),
        Some(_) => return Err("bad time"),
    };
    Ok((
        Stamp {
            year: Some(year),
            month: month as u8,
            day: day as u8,
            hour,
            minute,
            second,
            nanos,
            offset,
        },
        rest,
    ))
}

/// Host, identifier, pid and message after the stamp.
fn split_after_stamp(stamp: Stamp, rest: &[u8]) -> Result<Header<'_>, &'static str> {
    // Host names are short: a plain scan beats a memchr call.
    let host_end = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or("no identifier")?;
    let host = &rest[..host_end];
    if host.is_empty() {
        return Err("no host");
    }
    let rest = &rest[host_end + 1..];
    // The identifier ends at '[' (pid follows), ':' (no pid) or a space (not a record).
    let i = rest
        .iter()
        .position(|&b| IDENT_STOP[usize::from(b)])
        .ok_or("no identifier")?;
    let stop = rest[i];
    let ident = &rest[..i];
    if ident.is_empty() {
        return Err("no identifier");
    }
    let (pid, after) = match stop {
        b'[' => {
            let (pid, close) = bracketed_pid(&rest[i + 1..]).ok_or("bad pid")?;
            let after = &rest[i + 1 + close + 1..];
            match after.first() {
                // `ident[pid]: msg` or `ident[pid]:` at the end of the line.
                Some(b':') => (Some(pid), after.get(1..).unwrap_or_default()),
                // `ident[pid] msg` (syslog-ng template without the colon).
                Some(b' ') | None => (Some(pid), after),
                Some(_) => return Err("bad pid"),
            }
        }
        b':' => (None, &rest[i + 1..]),
        _ => return Err("no identifier"),
    };
    let message = after.strip_prefix(b" ").unwrap_or(after);
    Ok(Header {
        stamp,
        host,
        ident,
        pid,
        message: strip_solaris_tag(message),
    })
}

/// Largest pid accepted, in digits (`u32` holds nine digits without overflow).
const MAX_PID_DIGITS: usize = 9;

/// Bytes that end a syslog identifier: `[` (pid follows), `:` (no pid), space.
static IDENT_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'[' as usize] = true;
    t[b':' as usize] = true;
    t[b' ' as usize] = true;
    t
};

/// The pid after `[`: one to [`MAX_PID_DIGITS`] digits, then `]`. Returns the pid
/// and the index of the `]`. One pass; the same answer as finding the first `]` and
/// requiring digits before it.
fn bracketed_pid(s: &[u8]) -> Option<(u32, usize)> {
    let mut v = 0u32;
    for (at, &b) in s.iter().enumerate().take(MAX_PID_DIGITS + 1) {
        match b {
            b'0'..=b'9' if at < MAX_PID_DIGITS => v = v * 10 + u32::from(b - b'0'),
            b']' if at > 0 => return Some((v, at)),
            _ => return None,
        }
    }
    None
}

/// Remove a Solaris `[ID 197553 mail.info] ` tag from the front of a message.
fn strip_solaris_tag(message: &[u8]) -> &[u8] {
    if let Some(tag) = message.strip_prefix(b"[ID ")
        && let Some(close) = memchr(b']', tag)
    {
        let inner = &tag[..close];
        let plausible = inner.split(|&b| b == b' ').count() == 2
            && inner.first().is_some_and(u8::is_ascii_digit);
        if plausible {
            let after = &tag[close + 1..];
            return after.strip_prefix(b" ").unwrap_or(after);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Header<'_> {
        match split(line.as_bytes()) {
            Ok(h) => h,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    #[test]
    fn classic_padded_day() {
        let h = ok("Jul  2 06:25:01 mx1 postfix/smtpd[123]: connect from a[1.2.3.4]");
        assert_eq!(h.stamp.year, None);
        assert_eq!((h.stamp.month, h.stamp.day), (7, 2));
        assert_eq!((h.stamp.hour, h.stamp.minute, h.stamp.second), (6, 25, 1));
        assert_eq!(h.stamp.nanos, 0);
        assert_eq!(h.stamp.offset, None);
        assert_eq!(h.host, b"mx1");
        assert_eq!(h.ident, b"postfix/smtpd");
        assert_eq!(h.pid, Some(123));
        assert_eq!(h.message, b"connect from a[1.2.3.4]");
    }

    #[test]
    fn classic_unpadded_day_and_fraction() {
        let h = ok("Jul 2 06:25:01.123 mx1 postfix/qmgr[9]: x");
        assert_eq!((h.stamp.month, h.stamp.day), (7, 2));
        assert_eq!(h.stamp.nanos, 123_000_000);
        assert_eq!(h.message, b"x");
        let h = ok("Dec 31 23:59:59.123456789123 h p[1]: y");
        assert_eq!((h.stamp.month, h.stamp.day), (12, 31));
        assert_eq!(h.stamp.nanos, 123_456_789);
    }

    #[test]
    fn maillog_file_zero_padded_day() {
        // Postfix msg_logger: strftime("%b %d %H:%M:%S ") + first host label.
        let h = ok("Mar 04 09:05:07 mail postfix/postlog[77]: warning: hello");
        assert_eq!((h.stamp.month, h.stamp.day), (3, 4));
        assert_eq!(h.host, b"mail");
        assert_eq!(h.message, b"warning: hello");
    }

    #[test]
    fn leading_year_bsd() {
        let h =
            ok("2013 Jun 16 16:05:06.123 gds39d postfix/smtpd[7052]: 3bZLDk1V50z37Dv: client=x");
        assert_eq!(h.stamp.year, Some(2013));
        assert_eq!((h.stamp.month, h.stamp.day, h.stamp.hour), (6, 16, 16));
        assert_eq!(h.stamp.nanos, 123_000_000);
        assert_eq!(h.host, b"gds39d");
        assert_eq!(h.pid, Some(7052));
    }

    #[test]
    fn rfc3339_variants() {
        let h = ok("2025-03-14T06:25:01.123456+01:00 mx1 postfix/smtp[5]: m");
        assert_eq!(h.stamp.year, Some(2025));
        assert_eq!((h.stamp.month, h.stamp.day), (3, 14));
        assert_eq!(h.stamp.nanos, 123_456_000);
        assert_eq!(h.stamp.offset, Some(3600));
        let h = ok("2025-03-14T06:25:01Z mx1 postfix/smtp[5]: m");
        assert_eq!(h.stamp.offset, Some(0));
        assert_eq!(h.stamp.nanos, 0);
        let h = ok("2025-03-14T06:25:01-0530 mx1 postfix/smtp[5]: m");
        assert_eq!(h.stamp.offset, Some(-(5 * 3600 + 30 * 60)));
        let h = ok("2025-03-14T06:25:01.5 mx1 postfix/smtp[5]: m");
        assert_eq!(h.stamp.offset, None);
        assert_eq!(h.stamp.nanos, 500_000_000);
    }

    #[test]
    fn ident_without_pid() {
        let h = ok("Jan  1 00:00:00 h postfix/smtpd: warning: x");
        assert_eq!(h.ident, b"postfix/smtpd");
        assert_eq!(h.pid, None);
        assert_eq!(h.message, b"warning: x");
    }

    #[test]
    fn no_colon_after_pid() {
        let h = ok(
            "2021-12-03T06:27:32.797930+01:00 smtp01.example.org postfix/smtpd[50419] connect from x",
        );
        assert_eq!(h.pid, Some(50419));
        assert_eq!(h.message, b"connect from x");
    }

    #[test]
    fn solaris_tag_removed() {
        let h = ok(
            "Jan 26 00:57:38 relay.cs.tcd.ie postfix/smtpd[9779]: [ID 197553 mail.info] 9F2183652: client=localhost[127.0.0.1]",
        );
        assert_eq!(h.ident, b"postfix/smtpd");
        assert_eq!(h.message, b"9F2183652: client=localhost[127.0.0.1]");
        // A message that merely starts with "[ID" is left alone.
        let h = ok("Jan 26 00:57:38 h p[1]: [ID card] x");
        assert_eq!(h.message, b"[ID card] x");
    }

    #[test]
    fn pri_prefix_and_empty_message() {
        let h = ok("<22>Jan  1 00:00:00 h postfix/smtpd[1]:");
        assert_eq!(h.message, b"");
        assert_eq!(h.pid, Some(1));
    }

    #[test]
    fn leap_second() {
        let h = ok("2016-12-31T23:59:60Z h p[1]: x");
        assert_eq!(h.stamp.second, 59);
        assert_eq!(h.stamp.nanos, 1_000_000_000);
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let mut line = b"Jan  1 00:00:00 h\xff p[1]: caf\xe9".to_vec();
        let h = split(&line).map(|h| (h.host.to_vec(), h.message.to_vec()));
        assert_eq!(h, Ok((b"h\xff".to_vec(), b"caf\xe9".to_vec())));
        line.truncate(3);
        assert!(split(&line).is_err());
    }

    #[test]
    fn malformed() {
        for (line, why) in [
            ("", "empty line"),
            ("hello world", "unrecognised timestamp"),
            ("Jul 32 06:25:01 h p[1]: x", "bad day"),
            ("Jul  2 24:25:01 h p[1]: x", "bad time"),
            ("Jul  2 06:25 h p[1]: x", "bad time"),
            ("Jul  2 06:25:01", "no host"),
            ("Jul  2 06:25:01 host", "no identifier"),
            (
                "Jul  2 06:25:01 host last message repeated 3 times",
                "no identifier",
            ),
            ("Jul  2 06:25:01 host p[12x]: y", "bad pid"),
            ("Jul  2 06:25:01 host p[1234567890]: y", "bad pid"),
            ("2025-13-01T00:00:00Z h p[1]: x", "bad date"),
            ("2025-01-01T00:00:00+25:00 h p[1]: x", "bad offset"),
            (
                "021-02-06T09:58:59.184925+01:00 h p[1]: x",
                "unrecognised timestamp",
            ),
        ] {
            assert_eq!(split(line.as_bytes()), Err(why), "{line:?}");
        }
    }

    #[test]
    fn pids() {
        assert_eq!(bracketed_pid(b"123]: x"), Some((123, 3)));
        assert_eq!(bracketed_pid(b"999999999]"), Some((999_999_999, 9)));
        assert_eq!(bracketed_pid(b"4294967295]"), None);
        assert_eq!(bracketed_pid(b"9999999999]"), None);
        assert_eq!(bracketed_pid(b"]"), None);
        assert_eq!(bracketed_pid(b"12"), None);
        assert_eq!(bracketed_pid(b"1a]"), None);
        assert_eq!(bracketed_pid(b""), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = split(&bytes);
        }

        #[test]
        fn mutated_lines_never_panic(cut in 0usize..80, byte in proptest::num::u8::ANY, at in 0usize..80) {
            let base = b"2025-03-14T06:25:01.123456+01:00 mx1 postfix/smtpd[123]: connect";
            let mut line = base.to_vec();
            if at < line.len() { line[at] = byte; }
            line.truncate(cut.min(line.len()));
            let _ = split(&line);
            let mut classic = b"Jul  2 06:25:01 mx1 postfix/smtpd[123]: x".to_vec();
            if at < classic.len() { classic[at] = byte; }
            classic.truncate(cut.min(classic.len()));
            let _ = split(&classic);
        }
    }
}
