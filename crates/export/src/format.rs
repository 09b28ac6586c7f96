//! The three file formats: pure functions from values to bytes.
//!
//! * `tsv` — a header line of field names, then one line per record, fields separated
//!   by a tab, lines ended by `\n`. A value never contains a raw tab or line break:
//!   backslash, tab, line feed and carriage return are written `\\`, `\t`, `\n`, `\r`
//!   (the escaping of PostgreSQL's `COPY … TEXT`, read back by `COPY FROM`, and by
//!   splitting on tabs and lines then undoing the four escapes). An unknown value and
//!   an empty one are both empty.
//! * `csv` — RFC 4180: a header line, CRLF line ends, a field quoted with `"` when it
//!   holds a comma, a quote, CR or LF, with quotes inside doubled. Values are written
//!   as they are (no spreadsheet-formula defusing: these files are for programs).
//! * `jsonl` — one JSON object per line, keys in field order, `null` for an unknown
//!   value, numbers and booleans unquoted.
//!
//! Text from the database is always valid UTF-8 (bytes that were not are stored as
//! U+FFFD by the loader), so every format is valid UTF-8 too.

use std::io::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::ExportError;
use crate::record::{Field, Value};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated, backslash escapes, a header line.
    Tsv,
    /// RFC 4180 comma-separated values, a header line.
    Csv,
    /// JSON Lines.
    Jsonl,
}

impl Format {
    /// The name in `--format`, and the file name extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tsv => "tsv",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    /// From [`Format::name`].
    pub fn parse(name: &str) -> Result<Format, ExportError> {
        match name {
            "tsv" => Ok(Format::Tsv),
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            other => Err(ExportError::Usage(format!(
                "unknown format {other:?}; known: tsv, csv, jsonl"
            ))),
        }
    }

    /// The line a file starts with (`None` for `jsonl`).
    pub fn header(self, fields: &[Field]) -> Option<Vec<u8>> {
        let names = fields.iter().map(|f| Value::Str(f.name()));
        let mut out = Vec::new();
        match self {
            Format::Jsonl => return None,
            Format::Tsv => {
                for (i, v) in names.enumerate() {
                    if i > 0 {
                        out.push(b'\t');
                    }
                    tsv_value(&mut out, &v);
                }
                out.push(b'\n');
            }
            Format::Csv => {
                for (i, v) in names.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    csv_value(&mut out, &v);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        Some(out)
    }

    /// Append one record (`values` in the order of `fields`) to `out`.
    pub fn record(self, out: &mut Vec<u8>, fields: &[Field], values: &[Value<'_>]) {
        match self {
            Format::Tsv => {
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(b'\t');
                    }
                    tsv_value(out, v);
                }
                out.push(b'\n');
            }
            Format::Csv => {
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    csv_value(out, v);
                }
                out.extend_from_slice(b"\r\n");
            }
            Format::Jsonl => {
                out.push(b'{');
                for (i, (f, v)) in fields.iter().zip(values).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string(out, f.name());
                    out.push(b':');
                    json_value(out, v);
                }
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// Numbers, booleans and times in their text form (shared by TSV and CSV); `false`
/// for a string or null (written by the caller).
fn scalar(out: &mut Vec<u8>, v: &Value<'_>) -> bool {
    match v {
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Value::Float(_) => {}
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Time(t) => rfc3339(out, t),
        Value::Null | Value::Str(_) => return false,
    }
    true
}

fn tsv_value(out: &mut Vec<u8>, v: &Value<'_>) {
    if scalar(out, v) {
        return;
    }
    let Value::Str(s) = v else { return };
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn csv_value(out: &mut Vec<u8>, v: &Value<'_>) {
    if scalar(out, v) {
        return;
    }
    let Value::Str(s) = v else { return };
    if !s.contains([',', '"', '\r', '\n']) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for part in s.split('"').enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.1.as_bytes());
    }
    out.push(b'"');
}

fn json_value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Str(s) => json_string(out, s),
        Value::Time(t) => {
            out.push(b'"');
            rfc3339(out, t);
            out.push(b'"');
        }
        Value::Float(x) if !x.is_finite() => out.extend_from_slice(b"null"),
        other => {
            scalar(out, other);
        }
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Most values need no escape: copy them; serde_json escapes the others (quotes,
    // backslashes, control characters). Writing into a Vec cannot fail.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// `n` as exactly `width` decimal digits (leading zeros; `n` < 10^width).
fn digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `2025-03-14T12:50:59Z`, with the fraction when there is one (`.250Z`, `.123456Z`).
/// Written digit by digit: `write!` would cost more than the rest of a record.
fn rfc3339(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    match u32::try_from(t.year()) {
        Ok(y) if y < 10_000 => digits(out, y, 4),
        _ => {
            let _ = write!(out, "{:04}", t.year());
        }
    }
    out.push(b'-');
    digits(out, t.month(), 2);
    out.push(b'-');
    digits(out, t.day(), 2);
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        out.push(b'.');
        if nanos.is_multiple_of(1_000_000) {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 12, 50, 59)
            .single()
            .unwrap_or_default()
    }

    const FIELDS: [Field; 5] = [
        Field::Type,
        Field::LoggedAt,
        Field::Response,
        Field::Size,
        Field::Hard,
    ];

    fn line(format: Format, response: &str) -> String {
        let mut out = Vec::new();
        format.record(
            &mut out,
            &FIELDS,
            &[
                Value::Str("bounced"),
                Value::Time(t()),
                Value::Str(response),
                Value::Int(1234),
                Value::Bool(true),
            ],
        );
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn tsv_escapes_what_would_break_a_line() {
        assert_eq!(
            line(Format::Tsv, "550 a\tb\nc\\d\re"),
            "bounced\t2025-03-14T12:50:59Z\t550 a\\tb\\nc\\\\d\\re\t1234\ttrue\n"
        );
        let header = Format::Tsv.header(&FIELDS).unwrap_or_default();
        assert_eq!(header, b"type\tlogged_at\tresponse\tsize\thard\n");
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(
            line(Format::Csv, "550 5.1.1 <a@b>: \"no\", said he\r\nbye"),
            "bounced,2025-03-14T12:50:59Z,\"550 5.1.1 <a@b>: \"\"no\"\", said he\r\nbye\",1234,true\r\n"
        );
        assert_eq!(
            line(Format::Csv, "plain text"),
            "bounced,2025-03-14T12:50:59Z,plain text,1234,true\r\n"
        );
        assert_eq!(
            Format::Csv.header(&FIELDS).unwrap_or_default(),
            b"type,logged_at,response,size,hard\r\n"
        );
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let l = line(Format::Jsonl, "a\"b\n\u{1}\u{fffd}");
        assert!(l.ends_with("}\n") && l.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
        assert_eq!(v["response"], "a\"b\n\u{1}\u{fffd}");
        assert_eq!(v["size"], 1234);
        assert_eq!(v["hard"], true);
        assert_eq!(v["logged_at"], "2025-03-14T12:50:59Z");
        assert!(Format::Jsonl.header(&FIELDS).is_none());
        let mut out = Vec::new();
        Format::Jsonl.record(
            &mut out,
            &[Field::Dsn, Field::Delay],
            &[Value::Null, Value::Float(0.3)],
        );
        assert_eq!(out, b"{\"dsn\":null,\"delay\":0.3}\n");
    }

    #[test]
    fn times_and_strings_written_by_hand_agree_with_the_libraries() {
        for t in [
            t(),
            t() + chrono::Duration::nanoseconds(7),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .unwrap_or_default(),
        ] {
            let mut out = Vec::new();
            rfc3339(&mut out, &t);
            let want = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
        for s in [
            "plain",
            "",
            "a\"b",
            "back\\slash",
            "tab\t",
            "\u{7f}\u{fffd}é",
            "\u{1}",
        ] {
            let mut out = Vec::new();
            json_string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap_or_default(), "{s:?}");
        }
    }

    #[test]
    fn fractions_of_seconds() {
        let mut out = Vec::new();
        rfc3339(&mut out, &(t() + chrono::Duration::milliseconds(250)));
        out.push(b' ');
        rfc3339(&mut out, &(t() + chrono::Duration::microseconds(123_456)));
        assert_eq!(out, b"2025-03-14T12:50:59.250Z 2025-03-14T12:50:59.123456Z");
    }
}
