//! Reading the systemd journal: [`JournalReader`] turns journal entries whose
//! `SYSLOG_IDENTIFIER` starts with one of a few prefixes (`postfix` by default) into
//! [`Record`]s, and follows the journal as it grows.
//!
//! # Fields
//!
//! | [`Record`] field | journal field |
//! |---|---|
//! | `timestamp` | `__REALTIME_TIMESTAMP` (µs since the epoch, UTC) |
//! | `host` | `_HOSTNAME` (empty when absent) |
//! | `identifier` | `SYSLOG_IDENTIFIER` |
//! | `pid` | `SYSLOG_PID`, else `_PID` (the sender's pid as journald saw it) |
//! | `message` | `MESSAGE`, as raw bytes (it may be binary and is never made lossy) |
//! | `position` | [`Position::Journal`] with the entry's cursor |
//!
//! Each entry's fields are scanned once, without building a map of them: the few
//! needed are copied into reused buffers and the scan stops as soon as the identifier
//! rules the entry out, so the loading phase steps over a few hundred thousand
//! entries per CPU-second.
//! Journal matches are exact-only, so the identifier prefix is tested here, in code,
//! on every entry. (`SYSLOG_FACILITY=2` would be a tempting pre-filter, but Postfix's
//! `syslog_facility` is configurable, so it is not used.)
//!
//! Entries are never fatal: an entry without `SYSLOG_IDENTIFIER` is counted in
//! [`JournalStats::unidentified`], one with a non-matching identifier in
//! [`JournalStats::filtered`], and a matching one that cannot be made into a record (no
//! `MESSAGE`, a timestamp out of range) or has a field libsystemd cannot read in
//! [`JournalStats::skipped`]. Only errors of the journal as a whole (opening it,
//! stepping to the next entry, waiting) are returned as [`InputError`].
//!
//! # Following and resuming
//!
//! A cursor names one entry: its journal file's sequence-number id, its sequence
//! number, boot id, monotonic and realtime timestamps, and a hash of its contents. The
//! cursor of every record is in its [`Position`]; a caller that has durably stored
//! everything up to a record stores that record's cursor and resumes with
//! [`JournalStart::AfterCursor`]:
//!
//! - The reader seeks to the cursor, steps onto the nearest entry and checks with
//!   `sd_journal_test_cursor` that it is *that* entry; reading then resumes with the
//!   entry after it, so nothing is read twice.
//! - libsystemd seeks to the *nearest* entry when the cursor's entry is gone
//!   (vacuumed, lost with a volatile journal at reboot, renumbered when journald
//!   flushes `/run/log/journal` to `/var/log/journal` at boot, or the cursor comes from
//!   another machine or journal), so seeking alone would silently resume at the wrong
//!   place. When the check fails, the
//!   reader seeks to the `fallback` time instead (the caller passes the timestamp of
//!   its last stored record, so at worst a few records are read again and the
//!   idempotent store absorbs them), or to the head of the journal without one, and
//!   [`JournalReader::fell_back`] returns true so the caller can log a warning. It never
//!   falls back to the tail: that would lose records silently.
//! - [`JournalStart::Since`] starts at the first entry at or after a time,
//!   [`JournalStart::Head`] at the oldest entry, [`JournalStart::Tail`] after the newest
//!   one at opening (only entries written later are read).
//!
//! Following is a pull loop on the caller's thread: call [`JournalReader::next_record`]
//! until it returns `Ok(None)` (no matching entry right now), then
//! [`JournalReader::wait`] (which blocks until the journal changes or the timeout
//! passes), and again. Rotation and vacuuming are handled by libsystemd: the reader
//! keeps its place across them.
//!
//! Which cursor to store: the one of the last record stored. Entries after it that
//! matched no prefix are stepped over again on resume, which costs little;
//! [`JournalReader::current_cursor`] names the last entry stepped over, matching or
//! not, for a caller that wants to store that once all records before it are stored.
//!
//! # Threads
//!
//! A libsystemd journal handle must stay on the thread that opened it, so
//! [`JournalReader`] is neither `Send` nor `Sync`: open it on the thread that reads it
//! (pass the [`JournalOptions`], which are `Send`, to that thread) and send the
//! [`Record`]s (which are `Send`) elsewhere.
//!
//! ```no_run
//! use std::time::Duration;
//! use pftrack_input::journal::{JournalOptions, JournalReader, JournalSource, JournalStart};
//!
//! let options = JournalOptions::new(JournalSource::System, JournalStart::Tail);
//! let (tx, rx) = std::sync::mpsc::sync_channel(1024);
//! std::thread::spawn(move || -> Result<(), pftrack_input::InputError> {
//!     // Opened here: the reader cannot move between threads.
//!     let mut reader = JournalReader::open(&options)?;
//!     if !reader.has_files() {
//!         eprintln!("no readable journal files: is this user in group systemd-journal?");
//!     }
//!     loop {
//!         match reader.next_record()? {
//!             Some(record) => {
//!                 if tx.send(record).is_err() {
//!                     return Ok(()); // the receiver is gone: stop
//!                 }
//!             }
//!             None => reader.wait(Duration::from_secs(1))?,
//!         }
//!     }
//! });
//! for record in rx {
//!     println!("{} {}: {}", record.position, record.identifier, record.message.escape_ascii());
//! }
//! ```
//!
//! # What this module is not
//!
//! It does not parse Postfix messages, store cursors (the caller does, together with
//! the data they cover), write to the journal, or run an async runtime. It reads the
//! default journal namespace only, and does not filter by unit, boot or priority.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use systemd::journal::{Journal, OpenDirectoryOptions, OpenFilesOptions, OpenOptions};

use crate::intern::Interner;
use crate::{InputError, Position, Record};

/// The identifier prefix used when [`JournalOptions::identifier_prefixes`] is empty:
/// it covers `postfix/smtpd`, multi-instance names like `postfix-out/smtp` and
/// `postfix/submission/smtpd`.
pub const DEFAULT_IDENTIFIER_PREFIX: &str = "postfix";

/// Fields longer than this may come back truncated from libsystemd (its own default is
/// 64 KiB, set here explicitly). Postfix writes far shorter lines: its messages are cut
/// at `line_length_limit` (2 KiB by default) and syslog at 8 KiB or so.
pub const FIELD_SIZE_LIMIT: usize = 64 * 1024;

/// The longest single [`JournalReader::wait`]: longer timeouts are cut to this, since
/// libsystemd rejects huge ones and a caller should wake now and then anyway (for
/// shutdown, say).
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The journal fields read, as the `NAME=` prefix of the data `sd_journal_enumerate_data`
/// returns.
const FIELD_IDENTIFIER: &[u8] = b"SYSLOG_IDENTIFIER=";
/// See [`FIELD_IDENTIFIER`].
const FIELD_MESSAGE: &[u8] = b"MESSAGE=";
/// See [`FIELD_IDENTIFIER`].
const FIELD_HOSTNAME: &[u8] = b"_HOSTNAME=";
/// See [`FIELD_IDENTIFIER`].
const FIELD_SYSLOG_PID: &[u8] = b"SYSLOG_PID=";
/// See [`FIELD_IDENTIFIER`].
const FIELD_PID: &[u8] = b"_PID=";

/// Which journal files to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalSource {
    /// The system journal (`/var/log/journal`, `/run/log/journal`): entries of system
    /// services and the kernel, not of user sessions (`SD_JOURNAL_SYSTEM`).
    System,
    /// Every journal file in a directory (for example a copied `/var/log/journal/<id>`).
    Directory(PathBuf),
    /// These journal files only.
    Files(Vec<PathBuf>),
}

/// Where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalStart {
    /// After the entry with this cursor; when it is not in the journal, at `fallback`
    /// (or the head without one) and [`JournalReader::fell_back`] is set.
    AfterCursor {
        /// The cursor of the last entry already processed.
        cursor: String,
        /// Where to start when the cursor is not found: normally the timestamp of the
        /// last stored record.
        fallback: Option<DateTime<Utc>>,
    },
    /// At the first entry at or after this time.
    Since(DateTime<Utc>),
    /// At the oldest entry.
    Head,
    /// After the newest entry at opening: only entries written later are read.
    Tail,
}

/// What [`JournalReader::open`] opens and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// Which journal files to read.
    pub source: JournalSource,
    /// An entry is read when its `SYSLOG_IDENTIFIER` starts with one of these (byte
    /// prefix, case-sensitive); empty means [`DEFAULT_IDENTIFIER_PREFIX`].
    pub identifier_prefixes: Vec<String>,
    /// Where reading starts.
    pub start: JournalStart,
}

impl JournalOptions {
    /// Options with the default identifier prefix.
    pub fn new(source: JournalSource, start: JournalStart) -> JournalOptions {
        JournalOptions {
            source,
            identifier_prefixes: vec![DEFAULT_IDENTIFIER_PREFIX.to_owned()],
            start,
        }
    }
}

/// Counts of the entries a [`JournalReader`] has stepped over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Entries stepped over, whatever became of them.
    pub entries: u64,
    /// Entries returned as records.
    pub records: u64,
    /// Entries whose identifier matched no prefix (other programs' entries).
    pub filtered: u64,
    /// Entries without `SYSLOG_IDENTIFIER` (kernel-internal, some native clients).
    pub unidentified: u64,
    /// Entries with a matching identifier that could not be made into a record (no
    /// `MESSAGE`, a timestamp out of range, no cursor), and entries with a field
    /// libsystemd could not read (corruption), whatever their identifier. Worth a
    /// warning when it grows.
    pub skipped: u64,
}

/// Reads Postfix entries from the systemd journal; see the [module docs](self).
///
/// Not `Send`: open it on the thread that uses it.
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<pftrack_input::journal::JournalReader>();
/// ```
pub struct JournalReader {
    journal: Journal,
    /// Names the journal in errors.
    label: PathBuf,
    prefixes: Vec<Box<[u8]>>,
    hosts: Interner,
    idents: Interner,
    fell_back: bool,
    stats: JournalStats,
    scratch: Scratch,
}

/// Buffers for one entry's fields, reused from entry to entry: the data
/// `sd_journal_enumerate_data` returns lives only until the next call.
#[derive(Debug, Default)]
struct Scratch {
    message: Vec<u8>,
    host: Vec<u8>,
}

impl fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalReader")
            .field("label", &self.label)
            .field("fell_back", &self.fell_back)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What became of one entry.
enum Entry {
    /// A record to return.
    Record(Record),
    /// No `SYSLOG_IDENTIFIER`.
    Unidentified,
    /// An identifier matching no prefix.
    Filtered,
    /// A matching entry that cannot be made into a record.
    Skipped,
}

impl JournalReader {
    /// Opens the journal and positions the reader as `options.start` says.
    pub fn open(options: &JournalOptions) -> Result<JournalReader, InputError> {
        let label = label_of(&options.source);
        let opened = match &options.source {
            JournalSource::System => OpenOptions::default().system(true).open(),
            JournalSource::Directory(dir) => {
                let dir = c_path(dir)?;
                OpenDirectoryOptions::default().open_directory(&dir)
            }
            JournalSource::Files(files) => {
                let files = files
                    .iter()
                    .map(|p| c_path(p))
                    .collect::<Result<Vec<_>, _>>()?;
                OpenFilesOptions::default().open_files(&files)
            }
        };
        let mut journal = opened.map_err(|e| journal_error(&label, e))?;
        journal
            .set_data_threshold(FIELD_SIZE_LIMIT)
            .map_err(|e| journal_error(&label, e))?;
        // Set up the inotify watches now rather than at the first wait(), so that
        // changes between opening and that wait are noticed. A failure here shows
        // again, as an error, at the first wait().
        let _ = journal.fd();
        let prefixes: Vec<Box<[u8]>> = if options.identifier_prefixes.is_empty() {
            vec![DEFAULT_IDENTIFIER_PREFIX.as_bytes().into()]
        } else {
            options
                .identifier_prefixes
                .iter()
                .map(|p| p.as_bytes().into())
                .collect()
        };
        let mut reader = JournalReader {
            journal,
            label,
            prefixes,
            hosts: Interner::default(),
            idents: Interner::default(),
            fell_back: false,
            stats: JournalStats::default(),
            scratch: Scratch::default(),
        };
        reader.seek_start(&options.start)?;
        Ok(reader)
    }

    /// The next matching entry, or `Ok(None)` when there is none right now (call
    /// [`wait`](Self::wait), then try again).
    pub fn next_record(&mut self) -> Result<Option<Record>, InputError> {
        loop {
            let stepped = self
                .journal
                .next()
                .map_err(|e| journal_error(&self.label, e))?;
            if stepped == 0 {
                return Ok(None);
            }
            self.stats.entries += 1;
            match self.read_entry() {
                Entry::Record(record) => {
                    self.stats.records += 1;
                    return Ok(Some(record));
                }
                Entry::Unidentified => self.stats.unidentified += 1,
                Entry::Filtered => self.stats.filtered += 1,
                Entry::Skipped => self.stats.skipped += 1,
            }
        }
    }

    /// Blocks until the journal changes (entries appended, files added or removed) or
    /// `timeout` passes (at most [`MAX_WAIT`]). A change need not bring a matching entry.
    pub fn wait(&mut self, timeout: Duration) -> Result<(), InputError> {
        self.journal
            .wait(Some(timeout.min(MAX_WAIT)))
            .map(|_| ())
            .map_err(|e| journal_error(&self.label, e))
    }

    /// True when [`JournalStart::AfterCursor`]'s cursor was not found and the reader
    /// started at the fallback time (or the head, without one) instead.
    pub fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// True when the reader could open at least one journal file that holds entries.
    ///
    /// Opening the system journal without permission to read it (not root, not in
    /// group `systemd-journal` or `adm`) succeeds, finds no file and then reads nothing,
    /// forever and silently; a caller should check this after opening and warn.
    /// (An empty directory, or a system journal whose files are all empty, also gives
    /// false.)
    pub fn has_files(&self) -> bool {
        // libsystemd notes runtime (/run) and persistent (/var) files of the system
        // journal; files elsewhere are only seen through the entries they hold.
        self.journal.has_runtime_files().unwrap_or(false)
            || self.journal.has_persistent_files().unwrap_or(false)
            || matches!(self.journal.cutoff_realtime_usec(), Ok(Some(_)))
    }

    /// Counts of the entries stepped over so far.
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// Matching entries skipped so far for lack of a message or a usable timestamp
    /// (same as `stats().skipped`).
    pub fn skipped(&self) -> u64 {
        self.stats.skipped
    }

    /// The cursor of the entry the reader stands on: the last one stepped over,
    /// matching or not, or the one a cursor or tail start positioned it on. `None`
    /// before the first entry.
    ///
    /// Resuming after it skips the non-matching entries already stepped over; store it
    /// only once every record returned so far is stored too.
    pub fn current_cursor(&self) -> Option<String> {
        self.journal.cursor().ok()
    }

    /// Positions the journal so that the next `next()` steps onto the first entry to read.
    fn seek_start(&mut self, start: &JournalStart) -> Result<(), InputError> {
        match start {
            JournalStart::AfterCursor { cursor, fallback } => {
                if !self.stand_on_cursor(cursor)? {
                    self.fell_back = true;
                    match fallback {
                        Some(t) => self.seek_time(*t)?,
                        None => self.seek_head()?,
                    }
                }
                Ok(())
            }
            JournalStart::Since(t) => self.seek_time(*t),
            JournalStart::Head => self.seek_head(),
            JournalStart::Tail => {
                self.journal
                    .seek_tail()
                    .map_err(|e| journal_error(&self.label, e))?;
                // After seeking to the tail, libsystemd has not placed the reader on any
                // entry, and the next `next()` would return the *last* entry of each
                // file (an old one). Stepping back onto the last entry makes `next()`
                // return only entries appended later.
                let stepped = self
                    .journal
                    .previous()
                    .map_err(|e| journal_error(&self.label, e))?;
                if stepped == 0 {
                    // An empty journal has no last entry to stand on, and from the
                    // tail position `next()` would skip to the last entry of a file
                    // that appears later, losing the ones before it. Every entry of an
                    // empty journal is written after opening: read from the head.
                    self.seek_head()?;
                }
                Ok(())
            }
        }
    }

    /// Seeks to `cursor` and steps onto the nearest entry; true when that entry is
    /// the cursor's own (the reader then stands on it), false when the cursor is not
    /// in this journal or is not a cursor at all.
    fn stand_on_cursor(&mut self, cursor: &str) -> Result<bool, InputError> {
        let Ok(c) = CString::new(cursor) else {
            return Ok(false);
        };
        match self.journal.seek_cursor(&c) {
            Ok(()) => {}
            // A malformed cursor (EINVAL) is as absent as a vacuumed one.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Ok(false),
            Err(e) => return Err(journal_error(&self.label, e)),
        }
        let stepped = self
            .journal
            .next()
            .map_err(|e| journal_error(&self.label, e))?;
        if stepped == 0 {
            return Ok(false);
        }
        match self.journal.test_cursor(&c) {
            Ok(same) => Ok(same),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(false),
            Err(e) => Err(journal_error(&self.label, e)),
        }
    }

    fn seek_head(&mut self) -> Result<(), InputError> {
        self.journal
            .seek_head()
            .map_err(|e| journal_error(&self.label, e))
    }

    fn seek_time(&mut self, t: DateTime<Utc>) -> Result<(), InputError> {
        // Times before the epoch have no journal entries; start at the oldest.
        let usec = u64::try_from(t.timestamp_micros()).unwrap_or(0);
        self.journal
            .seek_realtime_usec(usec)
            .map_err(|e| journal_error(&self.label, e))
    }

    /// Turns the entry the journal stands on into a record.
    ///
    /// One pass over the entry's fields (`sd_journal_enumerate_data`), copying out only
    /// the few needed into reused buffers, and stopping as soon as the identifier
    /// shows the entry is not wanted or every needed field is in. Measured on 25-field
    /// entries, this is about 1.4 times as fast as one `sd_journal_get_data` per field,
    /// since each of those scans the entry's fields again.
    fn read_entry(&mut self) -> Entry {
        let scratch = &mut self.scratch;
        scratch.message.clear();
        scratch.host.clear();
        let mut identifier: Option<Arc<str>> = None;
        let mut have_message = false;
        let mut have_host = false;
        let mut syslog_pid: Option<u32> = None;
        let mut pid: Option<u32> = None;
        self.journal.restart_data();
        loop {
            let field = match self.journal.enumerate_data() {
                Ok(Some(field)) => field,
                Ok(None) => break,
                // A data object libsystemd cannot read (corruption): the entry cannot
                // be trusted, whoever wrote it.
                Err(_) => return Entry::Skipped,
            };
            let data = field.data();
            // The first occurrence of a field wins, as with sd_journal_get_data.
            if let Some(v) = data.strip_prefix(FIELD_IDENTIFIER) {
                if identifier.is_none() {
                    if !self.prefixes.iter().any(|p| v.starts_with(p)) {
                        return Entry::Filtered;
                    }
                    identifier = Some(self.idents.get(v));
                }
            } else if let Some(v) = data.strip_prefix(FIELD_MESSAGE) {
                if !have_message {
                    scratch.message.extend_from_slice(v);
                    have_message = true;
                }
            } else if let Some(v) = data.strip_prefix(FIELD_HOSTNAME) {
                if !have_host {
                    scratch.host.extend_from_slice(v);
                    have_host = true;
                }
            } else if let Some(v) = data.strip_prefix(FIELD_SYSLOG_PID) {
                if syslog_pid.is_none() {
                    syslog_pid = parse_pid(v);
                }
            } else if let Some(v) = data.strip_prefix(FIELD_PID)
                && pid.is_none()
            {
                pid = parse_pid(v);
            }
            // `_PID` matters only without a usable `SYSLOG_PID`.
            if identifier.is_some() && have_message && have_host && syslog_pid.is_some() {
                break;
            }
        }
        let Some(identifier) = identifier else {
            return Entry::Unidentified;
        };
        if !have_message {
            return Entry::Skipped;
        }
        let Some(timestamp) = self
            .journal
            .timestamp_usec()
            .ok()
            .and_then(|us| i64::try_from(us).ok())
            .and_then(DateTime::from_timestamp_micros)
        else {
            return Entry::Skipped;
        };
        let Ok(cursor) = self.journal.cursor() else {
            return Entry::Skipped;
        };
        Entry::Record(Record {
            timestamp,
            host: self.hosts.get(&scratch.host),
            identifier,
            pid: syslog_pid.or(pid),
            // One allocation of the message's exact size; the scratch buffer stays.
            message: scratch.message.clone(),
            position: Position::Journal { cursor },
        })
    }
}

/// Parses a decimal pid; journald stores them as ASCII digits.
fn parse_pid(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// A path as a C string for libsystemd.
fn c_path(path: &Path) -> Result<CString, InputError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| InputError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })
}

/// How the journal is named in errors.
fn label_of(source: &JournalSource) -> PathBuf {
    match source {
        JournalSource::System => PathBuf::from("the system journal"),
        JournalSource::Directory(dir) => dir.clone(),
        JournalSource::Files(files) => match files.as_slice() {
            [one] => one.clone(),
            _ => PathBuf::from(format!("{} journal files", files.len())),
        },
    }
}

/// A libsystemd error as an [`InputError`], keeping the failed call's name.
fn journal_error(label: &Path, e: systemd::Error) -> InputError {
    InputError::Io {
        path: label.to_path_buf(),
        source: e.into_io_error_with_context(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids() {
        assert_eq!(parse_pid(b"1234"), Some(1234));
        assert_eq!(parse_pid(b" 7\n"), Some(7));
        assert_eq!(parse_pid(b"abc"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"99999999999"), None);
        assert_eq!(parse_pid(b"\xff"), None);
    }

    #[test]
    fn interner_shares_and_is_lossy() {
        let mut i = Interner::default();
        let a = i.get(b"postfix/smtpd");
        let b = i.get(b"postfix/qmgr");
        let c = i.get(b"postfix/smtpd");
        assert!(Arc::ptr_eq(&a, &c));
        assert_eq!(&*b, "postfix/qmgr");
        assert_eq!(&*i.get(b"caf\xe9"), "caf\u{fffd}");
    }

    #[test]
    fn labels() {
        assert_eq!(
            label_of(&JournalSource::Files(vec![PathBuf::from("/x/a.journal")])),
            PathBuf::from("/x/a.journal")
        );
        assert_eq!(
            label_of(&JournalSource::Files(vec![PathBuf::new(), PathBuf::new()])),
            PathBuf::from("2 journal files")
        );
    }

    #[test]
    fn nul_in_path_is_an_error_not_a_panic() {
        let options = JournalOptions::new(
            JournalSource::Directory(PathBuf::from("/tmp/a\0b")),
            JournalStart::Head,
        );
        assert!(JournalReader::open(&options).is_err());
    }

    #[test]
    fn empty_prefixes_mean_postfix() {
        let dir = tempfile::tempdir().unwrap();
        let options = JournalOptions {
            source: JournalSource::Directory(dir.path().to_path_buf()),
            identifier_prefixes: Vec::new(),
            start: JournalStart::Head,
        };
        // An ordinary directory without journal files opens as an empty journal.
        if let Ok(reader) = JournalReader::open(&options) {
            assert_eq!(reader.prefixes, vec![Box::from(&b"postfix"[..])]);
        }
    }
}
