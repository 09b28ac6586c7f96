//! Log input for pftrack: turns syslog files (plain or gzip) and the systemd journal
//! ([`journal`]) into one owned [`Record`] type.
//!
//! This crate is **not** a Postfix parser: it splits records into timestamp, host,
//! syslog identifier, pid and message bytes, and knows where each record came from
//! ([`Position`]). It does no I/O beyond reading its inputs and holds no async runtime.
//!
//! Main types:
//! - [`Record`]: one log record with its [`Position`].
//! - `FileReader` (module [`file`]): reads one syslog file, plain or gzip (by magic
//!   bytes), yielding `Result<Record, InputError>`; lines that are not syslog records
//!   are reported as [`InputError::Malformed`] and reading goes on.
//! - [`syslog`]: the header parser (classic BSD stamps, RFC 3339, Postfix `maillog_file`).
//! - [`year`]: year inference for yearless stamps; [`zone`]: the zone of zone-less ones.
//! - [`rotation`]: expanding directories and ordering rotated sets oldest first.

pub mod file;
mod intern;
pub mod journal;
pub mod rotation;
pub mod syslog;
pub mod year;
pub mod zone;

pub use file::{Checkpoint, FileIdentity, FileReader, ReaderOptions};
pub use zone::Zone;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One log record, owned, independent of where it was read from.
///
/// `host` and `identifier` are shared (`Arc<str>`) because they repeat on nearly
/// every line; readers intern them so a record costs one allocation (its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the record was logged, in UTC.
    pub timestamp: DateTime<Utc>,
    /// Hostname from the syslog header or `_HOSTNAME` of a journal entry.
    pub host: Arc<str>,
    /// The full syslog identifier, e.g. `postfix/submission/smtpd` or `postfix-out/smtp`.
    pub identifier: Arc<str>,
    /// Process id, when the record carries one.
    pub pid: Option<u32>,
    /// The message bytes after `ident[pid]: `; may be invalid UTF-8.
    pub message: Vec<u8>,
    /// Where the record was read.
    pub position: Position,
}

impl Record {
    /// The daemon: the last `/`-separated component of the identifier (`smtpd` for
    /// `postfix/submission/smtpd`).
    pub fn daemon(&self) -> &str {
        daemon_of(&self.identifier)
    }

    /// The message as text: borrowed when it is valid UTF-8 (nearly always), else a
    /// copy with U+FFFD for each invalid sequence — the same text as
    /// `String::from_utf8_lossy(&record.message)`, at a fraction of the cost:
    /// `from_utf8_lossy` walks the bytes one at a time, while `str::from_utf8`
    /// checks ASCII a word at a time (about 1,070 → 180 instructions on a
    /// 138-byte line, callgrind).
    ///
    /// A NUL byte (never logged by Postfix, but found in damaged files) becomes U+FFFD
    /// too: PostgreSQL's text cannot hold it, and one such line must not stop a load.
    pub fn message_text(&self) -> Cow<'_, str> {
        let text = match std::str::from_utf8(&self.message) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&self.message),
        };
        if memchr::memchr(0, text.as_bytes()).is_some() {
            return Cow::Owned(text.replace('\0', "\u{fffd}"));
        }
        text
    }

    /// The service part: everything before the daemon (`postfix/submission` for
    /// `postfix/submission/smtpd`), or the whole identifier when it has no `/`.
    pub fn service(&self) -> &str {
        service_of(&self.identifier)
    }
}

/// The last `/`-separated component of a syslog identifier.
pub fn daemon_of(identifier: &str) -> &str {
    // A byte scan: identifiers are a dozen bytes, and `rsplit` sets up a char searcher
    // on every call (this runs once per record). `/` is ASCII, so the cut falls on a
    // character boundary.
    match last_slash(identifier) {
        Some(i) => &identifier[i + 1..],
        None => identifier,
    }
}

/// Index of the last `/` of `identifier`.
#[inline]
fn last_slash(identifier: &str) -> Option<usize> {
    identifier.bytes().rposition(|b| b == b'/')
}

/// Everything before the last `/` of a syslog identifier, or all of it without one.
pub fn service_of(identifier: &str) -> &str {
    match last_slash(identifier) {
        Some(i) => &identifier[..i],
        None => identifier,
    }
}

/// Where a record was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A line of a log file.
    File {
        /// The file's path as given by the user.
        path: Arc<Path>,
        /// 1-based line number.
        line: u64,
        /// Byte offset of the line's start in the (decompressed) stream.
        offset: u64,
    },
    /// A journal entry.
    Journal {
        /// The entry's cursor.
        cursor: String,
    },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::File { path, line, .. } => write!(f, "{}:{}", path.display(), line),
            Position::Journal { cursor } => write!(f, "journal cursor {cursor}"),
        }
    }
}

/// Errors of the input crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a syslog record; reading goes on after it.
    #[error("{position}: not a syslog record ({reason})")]
    Malformed {
        /// Where the line is.
        position: Position,
        /// Why it was not recognised.
        reason: &'static str,
    },
}

impl InputError {
    /// True for a line that could not be split; the reader can go on.
    pub fn is_malformed(&self) -> bool {
        matches!(self, InputError::Malformed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_is_the_lossy_text() {
        let record = |message: &[u8]| Record {
            timestamp: DateTime::<Utc>::default(),
            host: Arc::from("h"),
            identifier: Arc::from("postfix/smtpd"),
            pid: None,
            message: message.to_vec(),
            position: Position::Journal {
                cursor: String::new(),
            },
        };
        for m in [
            &b""[..],
            b"connect from a[1.2.3.4]",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"bad \xff\xfe bytes",
            b"cut \xe2\x82",
        ] {
            let r = record(m);
            assert_eq!(r.message_text(), String::from_utf8_lossy(m));
            assert_eq!(
                matches!(r.message_text(), Cow::Borrowed(_)),
                std::str::from_utf8(m).is_ok()
            );
        }
        // NUL bytes, which PostgreSQL's text cannot hold, become U+FFFD.
        assert_eq!(record(b"a\0b").message_text(), "a\u{fffd}b");
        assert_eq!(record(b"\0\xff").message_text(), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn daemon_and_service() {
        assert_eq!(daemon_of("postfix/submission/smtpd"), "smtpd");
        assert_eq!(service_of("postfix/submission/smtpd"), "postfix/submission");
        assert_eq!(daemon_of("postfix-out/smtp"), "smtp");
        assert_eq!(daemon_of("dovecot"), "dovecot");
        assert_eq!(service_of("dovecot"), "dovecot");
        assert_eq!(daemon_of("postfix/"), "");
        assert_eq!(service_of("postfix/"), "postfix");
        assert_eq!(daemon_of("/smtpd"), "smtpd");
        assert_eq!(service_of("/smtpd"), "");
        assert_eq!(daemon_of("pöstfix/smtpd"), "smtpd");
        assert_eq!(daemon_of(""), "");
    }
}
