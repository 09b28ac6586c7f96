//! Reading one syslog file, plain or gzip, as [`Record`]s.
//!
//! [`FileReader`] detects gzip by its magic bytes (`1f 8b`), never by the name, reads
//! lines as bytes through one large buffer, parses each header in place when the line
//! lies whole in the buffer, and yields `Result<Record, InputError>`. A line that is
//! not a syslog record, or is longer than [`MAX_LINE_LEN`], is reported as
//! [`InputError::Malformed`] and reading goes on; an I/O error ends the iteration
//! after it is yielded. Empty lines are skipped silently (they are counted in line
//! numbers).
//!
//! Reading can resume from a [`Checkpoint`] (byte offset and line number of the
//! decompressed stream): plain files seek, gzip files are decompressed and skipped.
//! [`FileIdentity`] (device, inode, size, mtime and a stable hash of the first line)
//! lets a caller check that a checkpoint still belongs to the same file.

use std::fs::File;
use std::hash::Hasher;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use flate2::read::MultiGzDecoder;
use memchr::memchr;

use crate::intern::Interner;
use crate::syslog;
use crate::year::{Reference, Timestamper};
use crate::zone::Zone;
use crate::{InputError, Position, Record};

/// Size of the read buffer. Large enough that nearly every line is parsed in place
/// without being copied, and that a read system call moves many lines at once.
pub const READ_BUFFER_SIZE: usize = 256 * 1024;

/// Longest line kept, in bytes (without the `\n`). A longer line is skipped and
/// reported as malformed; it is never held in memory beyond this many bytes, so
/// memory stays bounded whatever the input. Postfix itself truncates log records far
/// below this (`line_length_limit`, 2 KiB by default in smtpd; syslog daemons cut at
/// 8 KiB or so).
pub const MAX_LINE_LEN: usize = 1024 * 1024;

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// FNV-1a 64-bit hash: stable across runs, platforms and Rust versions (unlike
/// `std`'s `RandomState`), so it can be stored and compared later.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::default();
    h.write(bytes);
    h.finish()
}

/// FNV-1a 64 as a [`Hasher`].
#[derive(Debug, Clone, Copy)]
struct Fnv1a64(u64);

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(FNV_OFFSET)
    }
}

impl Hasher for Fnv1a64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// Who a file is, to tell whether a checkpoint still applies to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size on disk in bytes (compressed size for gzip).
    pub size: u64,
    /// Last modification time, when the file system reports one.
    pub mtime: Option<DateTime<Utc>>,
    /// Whether the content is gzip (by magic bytes).
    pub gzip: bool,
    /// [`fnv1a64`] of the first line's bytes (decompressed, without `\n`, at most
    /// [`MAX_LINE_LEN`] bytes); `None` for an empty file. It is the same for a file
    /// and its gzipped rotation, so it follows a file through `mail.log.1` →
    /// `mail.log.2.gz`.
    pub first_line_hash: Option<u64>,
}

impl FileIdentity {
    /// The identity of the file at `path`.
    pub fn of(path: &Path) -> Result<FileIdentity, InputError> {
        let io = |source| InputError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (file, gzip) = open_detect(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let mut reader = BufReader::new(decoder(file, gzip)).take(MAX_LINE_LEN as u64);
        let mut first = Vec::new();
        reader.read_until(b'\n', &mut first).map_err(io)?;
        if first.last() == Some(&b'\n') {
            first.pop();
        }
        let first_line_hash = if first.is_empty() && meta.len() == 0 {
            None
        } else {
            Some(fnv1a64(&first))
        };
        Ok(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.modified().ok().map(DateTime::<Utc>::from),
            gzip,
            first_line_hash,
        })
    }
}

/// Where to go on reading a file: after `line` lines, at byte `offset` of the
/// (decompressed) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Byte offset of the next line's start.
    pub offset: u64,
    /// Number of lines before it (the next line is numbered `line + 1`).
    pub line: u64,
    /// Latest local time resolved before the checkpoint, if known. Resuming with it
    /// keeps the year of yearless stamps what a front-to-back read gives, even across
    /// a New Year; without it the year is inferred afresh from the reference.
    pub latest_local: Option<NaiveDateTime>,
}

/// How a [`FileReader`] interprets stamps and file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderOptions {
    /// Zone of stamps without an offset.
    pub zone: Zone,
    /// Year of the file's first yearless stamp; `None` infers it from the mtime.
    pub year: Option<i32>,
    /// Leave a last line without `\n` unread (it may still be being written): the
    /// [`FileReader::checkpoint`] stays before it. Off, it is read as a full line.
    pub hold_incomplete_line: bool,
}

/// Result of reading one line.
enum Step {
    Record(Result<Record, InputError>),
    Skip,
    Eof,
}

/// Reads one syslog file; see the [module docs](self).
pub struct FileReader {
    path: Arc<Path>,
    identity: FileIdentity,
    reader: BufReader<Box<dyn Read + Send>>,
    stamps: Timestamper,
    hosts: Interner,
    idents: Interner,
    /// A line that did not lie whole in the read buffer, at most [`MAX_LINE_LEN`].
    line_buf: Vec<u8>,
    offset: u64,
    line: u64,
    hold_incomplete_line: bool,
    done: bool,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// Open `path` and tell whether it starts with the gzip magic; the file is left at
/// offset 0.
fn open_detect(path: &Path) -> io::Result<(File, bool)> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok((file, got == 2 && magic == GZIP_MAGIC))
}

fn decoder(file: File, gzip: bool) -> Box<dyn Read + Send> {
    if gzip {
        // Multi-member: `cat a.gz b.gz` and some rotators produce several members.
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    }
}

impl FileReader {
    /// Open `path` to read from its start.
    pub fn open(
        path: impl Into<PathBuf>,
        options: ReaderOptions,
    ) -> Result<FileReader, InputError> {
        FileReader::open_at(path, options, Checkpoint::default())
    }

    /// Open `path` to read from `checkpoint`. The caller checks first, with
    /// [`FileIdentity`], that the checkpoint belongs to this file; an offset past the
    /// end simply yields nothing.
    pub fn open_at(
        path: impl Into<PathBuf>,
        options: ReaderOptions,
        checkpoint: Checkpoint,
    ) -> Result<FileReader, InputError> {
        let path: PathBuf = path.into();
        let io = |source| InputError::Io {
            path: path.clone(),
            source,
        };
        let identity = FileIdentity::of(&path)?;
        let (mut file, gzip) = open_detect(&path).map_err(io)?;
        let mut offset = 0;
        if !gzip && checkpoint.offset > 0 {
            file.seek(SeekFrom::Start(checkpoint.offset)).map_err(io)?;
            offset = checkpoint.offset;
        }
        let mut reader = BufReader::with_capacity(READ_BUFFER_SIZE, decoder(file, gzip));
        if gzip && checkpoint.offset > 0 {
            offset = skip(&mut reader, checkpoint.offset).map_err(io)?;
        }
        let reference = match (options.year, identity.mtime) {
            (Some(y), _) => Reference::Year(y),
            (None, Some(t)) => Reference::Time(t),
            (None, None) => Reference::Time(Utc::now()),
        };
        let mut stamps = Timestamper::new(options.zone, reference);
        if let Some(latest) = checkpoint.latest_local {
            stamps.set_latest_local(latest);
        }
        Ok(FileReader {
            path: Arc::from(path.as_path()),
            identity,
            reader,
            stamps,
            hosts: Interner::default(),
            idents: Interner::default(),
            line_buf: Vec::new(),
            offset,
            line: checkpoint.line,
            hold_incomplete_line: options.hold_incomplete_line,
            done: false,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's identity, taken when it was opened.
    pub fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// Where reading would resume after the records yielded so far.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            offset: self.offset,
            line: self.line,
            latest_local: self.stamps.latest_local(),
        }
    }

    /// Capacity of the buffer that holds lines which did not fit the read buffer; it
    /// never exceeds [`MAX_LINE_LEN`].
    pub fn line_buffer_capacity(&self) -> usize {
        self.line_buf.capacity()
    }

    fn io_error(&self, source: io::Error) -> InputError {
        InputError::Io {
            path: self.path.to_path_buf(),
            source,
        }
    }

    fn read_one(&mut self) -> Step {
        let start = self.offset;
        self.line_buf.clear();
        let mut consumed = 0usize;
        let mut too_long = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Step::Record(Err(self.io_error(e))),
            };
            if buf.is_empty() {
                if consumed == 0 || self.hold_incomplete_line {
                    return Step::Eof;
                }
                break;
            }
            match memchr(b'\n', buf) {
                Some(i) if consumed == 0 => {
                    // The whole line is in the buffer: parse it in place.
                    let line = self.line + 1;
                    let step = make_step(
                        &buf[..i],
                        &self.path,
                        line,
                        start,
                        &mut self.stamps,
                        &mut self.hosts,
                        &mut self.idents,
                    );
                    self.reader.consume(i + 1);
                    self.offset += (i + 1) as u64;
                    self.line = line;
                    return step;
                }
                Some(i) => {
                    too_long |= append_bounded(&mut self.line_buf, &buf[..i]);
                    self.reader.consume(i + 1);
                    consumed += i + 1;
                    break;
                }
                None => {
                    let n = buf.len();
                    too_long |= append_bounded(&mut self.line_buf, buf);
                    self.reader.consume(n);
                    consumed += n;
                }
            }
        }
        self.offset += consumed as u64;
        self.line += 1;
        if too_long {
            return Step::Record(Err(InputError::Malformed {
                position: Position::File {
                    path: Arc::clone(&self.path),
                    line: self.line,
                    offset: start,
                },
                reason: "line longer than the limit",
            }));
        }
        make_step(
            &self.line_buf,
            &self.path,
            self.line,
            start,
            &mut self.stamps,
            &mut self.hosts,
            &mut self.idents,
        )
    }
}

/// Skip `n` bytes of `reader`; returns how many were there.
fn skip(reader: &mut impl BufRead, n: u64) -> io::Result<u64> {
    io::copy(&mut reader.take(n), &mut io::sink())
}

/// Append `chunk` to `buf` without letting `buf` pass [`MAX_LINE_LEN`] bytes of
/// content or capacity; returns true when something was cut.
fn append_bounded(buf: &mut Vec<u8>, chunk: &[u8]) -> bool {
    let room = MAX_LINE_LEN.saturating_sub(buf.len());
    let take = chunk.len().min(room);
    let needed = buf.len() + take;
    if needed > buf.capacity() {
        // Grow geometrically, but never past the limit (Vec's own growth could).
        let target = (buf.capacity() * 2).max(needed).min(MAX_LINE_LEN);
        buf.reserve_exact(target - buf.len());
    }
    buf.extend_from_slice(&chunk[..take]);
    take < chunk.len()
}

#[allow(clippy::too_many_arguments)]
fn make_step(
    line: &[u8],
    path: &Arc<Path>,
    line_no: u64,
    offset: u64,
    stamps: &mut Timestamper,
    hosts: &mut Interner,
    idents: &mut Interner,
) -> Step {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Step::Skip;
    }
    let position = || Position::File {
        path: Arc::clone(path),
        line: line_no,
        offset,
    };
    let malformed = |reason| {
        Step::Record(Err(InputError::Malformed {
            position: position(),
            reason,
        }))
    };
    let header = match syslog::split(line) {
        Ok(h) => h,
        Err(reason) => return malformed(reason),
    };
    let timestamp = match stamps.to_utc(&header.stamp) {
        Ok(t) => t,
        Err(reason) => return malformed(reason),
    };
    Step::Record(Ok(Record {
        timestamp,
        host: hosts.get(header.host),
        identifier: idents.get(header.ident),
        pid: header.pid,
        message: header.message.to_vec(),
        position: position(),
    }))
}

impl Iterator for FileReader {
    type Item = Result<Record, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.read_one() {
                Step::Record(r) => {
                    if matches!(r, Err(InputError::Io { .. })) {
                        self.done = true;
                    }
                    return Some(r);
                }
                Step::Skip => {}
                Step::Eof => {
                    self.done = true;
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn opts() -> ReaderOptions {
        ReaderOptions {
            zone: Zone::Utc,
            year: Some(2025),
            hold_incomplete_line: false,
        }
    }

    const THREE: &[u8] = b"Mar  1 10:00:00 mx1 postfix/smtpd[1]: one\n\
Mar  1 10:00:01 mx1 postfix/qmgr[2]: two\n\
Mar  1 10:00:02 mx1 postfix/smtpd[1]: three\n";

    fn messages(r: FileReader) -> Vec<String> {
        r.map(|r| String::from_utf8(r.unwrap().message).unwrap())
            .collect()
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn plain_records_positions_and_interning() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "mail.log", THREE);
        let recs: Vec<Record> = FileReader::open(&p, opts())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].identifier.as_ref(), "postfix/qmgr");
        assert_eq!(recs[1].pid, Some(2));
        assert_eq!(recs[2].timestamp.to_rfc3339(), "2025-03-01T10:00:02+00:00");
        assert!(Arc::ptr_eq(&recs[0].host, &recs[2].host));
        assert!(Arc::ptr_eq(&recs[0].identifier, &recs[2].identifier));
        let Position::File { line, offset, .. } = &recs[2].position else {
            panic!()
        };
        assert_eq!((*line, *offset), (3, 83));
        assert_eq!(&THREE[83..88], b"Mar  ");
    }

    #[test]
    fn gzip_by_magic_not_name() {
        let dir = tempfile::tempdir().unwrap();
        // Named .gz but plain.
        let fake = write(&dir, "mail.log.1.gz", THREE);
        let r = FileReader::open(&fake, opts()).unwrap();
        assert!(!r.identity().gzip);
        assert_eq!(messages(r), ["one", "two", "three"]);
        // Gzip without the name, two members.
        let mut two = gzip(&THREE[..42]);
        two.extend(gzip(&THREE[42..]));
        let real = write(&dir, "mail.log.2", &two);
        let r = FileReader::open(&real, opts()).unwrap();
        assert!(r.identity().gzip);
        assert_eq!(messages(r), ["one", "two", "three"]);
        // Same first-line hash for the plain file and its gzip.
        assert_eq!(
            FileIdentity::of(&fake).unwrap().first_line_hash,
            FileIdentity::of(&real).unwrap().first_line_hash
        );
        assert_eq!(
            FileIdentity::of(&fake).unwrap().first_line_hash,
            Some(fnv1a64(&THREE[..41]))
        );
    }

    #[test]
    fn resume_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("plain", THREE.to_vec()), ("gz", gzip(THREE))] {
            let p = write(&dir, name, &bytes);
            let mut r = FileReader::open(&p, opts()).unwrap();
            let first = r.next().unwrap().unwrap();
            assert_eq!(first.message, b"one");
            let cp = r.checkpoint();
            assert_eq!((cp.offset, cp.line), (42, 1));
            let mut resumed = FileReader::open_at(&p, opts(), cp).unwrap();
            let second = resumed.next().unwrap().unwrap();
            assert_eq!(second.message, b"two", "{name}");
            assert_eq!(
                second.position,
                Position::File {
                    path: Arc::from(p.as_path()),
                    line: 2,
                    offset: 42
                }
            );
            assert_eq!(messages(resumed), ["three"]);
        }
    }

    #[test]
    fn resume_keeps_year_across_new_year() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            b"Dec 31 23:59:00 h p[1]: a\nJan  1 00:00:01 h p[1]: b\nJan  1 00:00:02 h p[1]: c\n";
        let p = write(&dir, "f", text);
        let mut r = FileReader::open(&p, opts()).unwrap();
        r.next();
        r.next();
        let cp = r.checkpoint();
        let rec = FileReader::open_at(&p, opts(), cp)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(rec.timestamp.to_rfc3339(), "2026-01-01T00:00:02+00:00");
    }

    #[test]
    fn crlf_empty_lines_invalid_utf8_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"Mar  1 10:00:00 mx1 p[1]: crlf\r\n\n\
garbage line\n\
Mar  1 10:00:01 mx\xff1 p\xfe[2]: caf\xe9\n\
Mar  1 10:00:02 mx1 p[1]: no newline at end";
        let p = write(&dir, "f", text);
        let all: Vec<_> = FileReader::open(&p, opts()).unwrap().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].as_ref().unwrap().message, b"crlf");
        match &all[1] {
            Err(InputError::Malformed {
                position: Position::File { line, .. },
                reason,
            }) => assert_eq!((*line, *reason), (3, "unrecognised timestamp")),
            other => panic!("{other:?}"),
        }
        let r = all[2].as_ref().unwrap();
        assert_eq!(r.message, b"caf\xe9");
        assert_eq!(r.host.as_ref(), "mx\u{fffd}1");
        assert_eq!(r.identifier.as_ref(), "p\u{fffd}");
        assert_eq!(all[3].as_ref().unwrap().message, b"no newline at end");
    }

    #[test]
    fn hold_incomplete_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "f",
            b"Mar  1 10:00:00 h p[1]: a\nMar  1 10:00:01 h p[1]: partial",
        );
        let mut o = opts();
        o.hold_incomplete_line = true;
        let mut r = FileReader::open(&p, o).unwrap();
        assert_eq!(r.next().unwrap().unwrap().message, b"a");
        assert!(r.next().is_none());
        assert_eq!(r.checkpoint().offset, 26);
        assert_eq!(r.checkpoint().line, 1);
    }

    #[test]
    fn one_megabyte_line_is_kept_and_longer_is_skipped_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let head = b"Mar  1 10:00:00 h p[1]: ";
        let mut fits = head.to_vec();
        fits.resize(MAX_LINE_LEN, b'x');
        let mut huge = head.to_vec();
        huge.resize(5 * 1024 * 1024, b'y');
        let mut text = Vec::new();
        for part in [&fits[..], &huge[..], b"Mar  1 10:00:01 h p[1]: after"] {
            text.extend_from_slice(part);
            text.push(b'\n');
        }
        let p = write(&dir, "f", &text);
        let mut r = FileReader::open(&p, opts()).unwrap();
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.message.len(), MAX_LINE_LEN - head.len());
        match r.next().unwrap() {
            Err(InputError::Malformed { reason, .. }) => {
                assert_eq!(reason, "line longer than the limit")
            }
            other => panic!("{other:?}"),
        }
        assert!(r.line_buffer_capacity() <= MAX_LINE_LEN);
        let after = r.next().unwrap().unwrap();
        assert_eq!(after.message, b"after");
        let Position::File { line, offset, .. } = after.position else {
            panic!()
        };
        assert_eq!(line, 3);
        assert_eq!(offset as usize, fits.len() + 1 + huge.len() + 1);
        assert!(r.next().is_none());
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let err = FileReader::open("/nonexistent/pftrack/mail.log", opts()).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/pftrack/mail.log"),
            "{err}"
        );
    }

    #[test]
    fn truncated_gzip_ends_with_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = Vec::new();
        for i in 0..20_000 {
            big.extend_from_slice(format!("Mar  1 10:00:00 h p[1]: line {i}\n").as_bytes());
        }
        let gz = gzip(&big);
        let p = write(&dir, "f.gz", &gz[..gz.len() / 2]);
        let results: Vec<_> = FileReader::open(&p, opts()).unwrap().collect();
        assert!(matches!(results.last(), Some(Err(InputError::Io { .. }))));
        assert!(results.len() > 1);
    }

    #[test]
    fn mtime_is_the_year_reference() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "f", b"Dec  5 10:00:00 h p[1]: a\n");
        // mtime 2025-11-20: December lines are from 2024.
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_763_640_000);
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let o = ReaderOptions {
            year: None,
            ..opts()
        };
        let rec = FileReader::open(&p, o).unwrap().next().unwrap().unwrap();
        assert_eq!(rec.timestamp.to_rfc3339(), "2024-12-05T10:00:00+00:00");
    }
}
