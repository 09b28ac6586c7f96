//! Incremental export into a directory: each record exactly once, across crashes.
//!
//! State, in the database (migration V11): per directory (`export_target`) the
//! watermark — every record stored by a transaction older than it is in a file — and
//! per file (`export_file`) its state (`open`: in the directory, appended to by later
//! runs; `archived`: finished, moved to the archive directory) and its committed
//! length.
//!
//! A run, holding the directory's advisory lock:
//! 1. Reconciles the directory with the database: an open file longer than its
//!    committed length has the tail of a run that never committed: it is cut back; a
//!    file named like ours that the database does not know was created by such a run:
//!    it is deleted; a file recorded as archived but still in the directory is moved.
//! 2. Opens a REPEATABLE READ transaction. Its snapshot's xmin is the horizon: every
//!    transaction below it has ended, so the rows stored by transactions in
//!    [watermark, horizon) are all visible now and no other can appear later.
//! 3. Archives open files past their age (or written with other fields or format),
//!    appends the window's records to one open file per type (a new file when the
//!    next record would pass the size limit), fsyncs the files and the directory.
//! 4. Records every file's length and state and the new watermark (the horizon) in the
//!    same transaction, and commits.
//! 5. Moves the files it archived into the archive directory (renames, fsynced).
//!
//! A crash before 4 leaves the watermark where it was: the next run cuts the files
//! back and writes the same records again. A crash after 4 leaves at most renames to
//! do, which step 1 finishes. Either way every record is in exactly one file.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use pftrack_store::Store;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::Type;

use crate::record::{Field, RecordType, Value};
use crate::{Counts, ExportError, Format, Selection, WRITE_BUFFER, query};

/// How long a run waits for the transactions that were running when it started.
pub const HORIZON_WAIT: Duration = Duration::from_secs(10);
/// How often it looks while it waits.
const HORIZON_POLL: Duration = Duration::from_millis(50);

/// Name of the archive directory inside the export directory when none is given.
pub const DEFAULT_ARCHIVE_DIR: &str = "archive";

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct DirOptions {
    /// The export directory (created if missing).
    pub dir: PathBuf,
    /// Where finished files go (default `DIR/archive`); on the same file system, so
    /// that moving a file is an atomic rename.
    pub archive: Option<PathBuf>,
    /// Records, fields, format.
    pub selection: Selection,
    /// Start a new file before one would grow past this many bytes (a single record
    /// larger than that gets a file of its own).
    pub rotate_size: u64,
    /// Archive an open file at the first run after it has been open this long.
    pub rotate_interval: Duration,
    /// Test knob: sleep this long after each record and around the commit, so that a
    /// test can kill the exporter at any point.
    pub pace: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// The directory's canonical path (its key in the database).
    pub target: String,
    /// Records written, per type.
    pub counts: Counts,
    /// Transactions in `[from, to)` were exported.
    pub watermark_from: i64,
    /// The new watermark.
    pub watermark_to: i64,
    /// Files written to (names).
    pub written: Vec<String>,
    /// Files moved to the archive directory (names).
    pub archived: Vec<String>,
    /// Leftovers of an interrupted run: files deleted, files cut back to their
    /// committed length.
    pub repaired: Vec<String>,
}

/// One file of the directory as the database knows it.
#[derive(Debug, Clone)]
struct KnownFile {
    name: String,
    rtype: String,
    format: String,
    fields: String,
    open: bool,
    bytes: i64,
    records: i64,
    opened_at: DateTime<Utc>,
}

/// A file being appended to in this run.
struct Writer {
    name: String,
    rtype: RecordType,
    file: File,
    path: PathBuf,
    /// Length including what this run appended (flushed or buffered).
    bytes: u64,
    records: u64,
    /// Records it had when this run opened it.
    records_before: u64,
    opened_at: DateTime<Utc>,
    buf: Vec<u8>,
}

impl Writer {
    fn flush(&mut self) -> Result<(), ExportError> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(ExportError::io("writing", &self.path))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn append(&mut self, line: &[u8]) -> Result<(), ExportError> {
        self.buf.extend_from_slice(line);
        self.bytes += line.len() as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Everything written and on disk.
    fn sync(&mut self) -> Result<(), ExportError> {
        self.flush()?;
        self.file
            .sync_all()
            .map_err(ExportError::io("syncing", &self.path))
    }
}

/// A file's row as it is to be recorded at commit.
struct FileRow {
    name: String,
    rtype: RecordType,
    open: bool,
    bytes: u64,
    records: u64,
    opened_at: DateTime<Utc>,
}

/// Export what is new into `opts.dir`. `application_name` names this exporter to
/// others (shown when the directory is busy).
pub async fn export_incremental(
    store: &Store,
    opts: &DirOptions,
    application_name: &str,
) -> Result<RunSummary, ExportError> {
    let (dir, archive) = prepare_dirs(opts)?;
    let target = dir.to_string_lossy().into_owned();
    let mut locks = store
        .input_locks(&[format!("export:{target}")], application_name)
        .await?;
    if let Some(busy) = locks.try_acquire().await? {
        return Err(ExportError::Busy {
            dir: dir.clone(),
            holder: busy
                .holder
                .map_or_else(|| "another session".to_owned(), |h| h.to_string()),
        });
    }

    let mut client = store.connection().await?;
    client
        .execute(
            "INSERT INTO export_target (target) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&target],
        )
        .await
        .map_err(ExportError::query("registering the export directory"))?;
    let mut summary = RunSummary {
        target: target.clone(),
        ..RunSummary::default()
    };
    let known = reconcile(&client, &target, &dir, &archive, &mut summary).await?;
    let waited = std::time::Instant::now();
    wait_for_horizon(&client).await?;
    tracing::debug!(
        seconds = waited.elapsed().as_secs_f64(),
        "Waited for the horizon."
    );

    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(ExportError::query("starting the export transaction"))?;
    tx.batch_execute(query::SESSION)
        .await
        .map_err(ExportError::query("setting up the export session"))?;
    // The first query takes the snapshot; the horizon is that snapshot's xmin.
    let row = tx
        .query_one(
            "SELECT t.watermark, pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             FROM export_target t WHERE t.target = $1",
            &[&target],
        )
        .await
        .map_err(ExportError::query("reading the export watermark"))?;
    let watermark: i64 = row.get(0);
    let horizon: i64 = row.get(1);
    summary.watermark_from = watermark;
    summary.watermark_to = horizon.max(watermark);
    let now = Utc::now();

    let sel = &opts.selection;
    let fields_name = Field::list_name(&sel.fields);
    let mut rows_to_record: Vec<FileRow> = Vec::new();
    let mut writers: BTreeMap<RecordType, Writer> = BTreeMap::new();
    let mut taken: HashSet<String> = known.iter().map(|k| k.name.clone()).collect();
    let mut to_archive: Vec<String> = Vec::new();

    // Open files: archive the old ones and those of another layout; keep the others.
    for k in known.iter().filter(|k| k.open) {
        let Ok(rtype) = RecordType::parse(&k.rtype) else {
            continue;
        };
        let age = (now - k.opened_at).to_std().unwrap_or_default();
        let same_layout = k.format == sel.format.name() && k.fields == fields_name;
        let bytes = u64::try_from(k.bytes).unwrap_or(0);
        let records = u64::try_from(k.records).unwrap_or(0);
        if age >= opts.rotate_interval || !same_layout || !sel.types.contains(&rtype) {
            rows_to_record.push(FileRow {
                name: k.name.clone(),
                rtype,
                open: false,
                bytes,
                records,
                opened_at: k.opened_at,
            });
            to_archive.push(k.name.clone());
            continue;
        }
        let path = dir.join(&k.name);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(ExportError::io("opening", &path))?;
        file.seek(SeekFrom::Start(bytes))
            .map_err(ExportError::io("seeking in", &path))?;
        writers.insert(
            rtype,
            Writer {
                name: k.name.clone(),
                rtype,
                file,
                path,
                bytes,
                records,
                records_before: records,
                opened_at: k.opened_at,
                buf: Vec::with_capacity(WRITE_BUFFER + 4096),
            },
        );
    }

    let mut created_any = false;
    {
        let statement = query::window(&sel.types, watermark == 0);
        // Typed: `$4` is unused when no bounces are asked for.
        let prepared = tx
            .prepare_typed(
                &statement.sql,
                &[Type::TEXT_ARRAY, Type::INT8, Type::INT8, Type::TEXT],
            )
            .await
            .map_err(ExportError::query("preparing the selection of records"))?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&statement.statuses, &watermark, &horizon, &target];
        let rows = tx
            .query_raw(&prepared, params)
            .await
            .map_err(ExportError::query("selecting the records to export"))?;
        futures_util::pin_mut!(rows);
        let mut line = Vec::with_capacity(4096);
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(ExportError::query("reading the records to export"))?
        {
            let Some(rtype) = query::record_type(&row) else {
                continue;
            };
            line.clear();
            let values: Vec<Value<'_>> =
                sel.fields.iter().map(|f| query::value(&row, *f)).collect();
            sel.format.record(&mut line, &sel.fields, &values);
            let full = writers
                .get(&rtype)
                .is_some_and(|w| w.records > 0 && w.bytes + line.len() as u64 > opts.rotate_size);
            if full && let Some(mut w) = writers.remove(&rtype) {
                w.sync()?;
                rows_to_record.push(FileRow {
                    name: w.name.clone(),
                    rtype,
                    open: false,
                    bytes: w.bytes,
                    records: w.records,
                    opened_at: w.opened_at,
                });
                to_archive.push(w.name.clone());
                summary.written.push(w.name);
            }
            let w = match writers.entry(rtype) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    created_any = true;
                    e.insert(create_file(&dir, &archive, rtype, sel, &mut taken)?)
                }
            };
            w.append(&line)?;
            w.records += 1;
            summary.counts.add(rtype);
            if let Some(pace) = opts.pace {
                tokio::time::sleep(pace).await;
            }
        }
    }

    tracing::debug!(
        seconds = waited.elapsed().as_secs_f64(),
        records = summary.counts.total(),
        "Records written."
    );
    for w in writers.values_mut() {
        w.sync()?;
    }
    if created_any {
        sync_dir(&dir)?;
    }
    for w in writers.values() {
        rows_to_record.push(FileRow {
            name: w.name.clone(),
            rtype: w.rtype,
            open: true,
            bytes: w.bytes,
            records: w.records,
            opened_at: w.opened_at,
        });
        if !summary.written.contains(&w.name) && w.records > w.records_before {
            summary.written.push(w.name.clone());
        }
    }
    if let Some(pace) = opts.pace {
        tokio::time::sleep(pace * 20).await;
    }

    // Archived rows first: a type's new open file may replace its old one, and only
    // one file per type can be open.
    rows_to_record.sort_by_key(|r| r.open);
    let record = tx
        .prepare(
            "INSERT INTO export_file AS f (target, name, type, format, fields, state, bytes,
                 records, opened_at, archived_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $6 = 'archived' THEN now() END)
             ON CONFLICT (target, name) DO UPDATE SET state = EXCLUDED.state,
                 bytes = EXCLUDED.bytes, records = EXCLUDED.records,
                 archived_at = EXCLUDED.archived_at",
        )
        .await
        .map_err(ExportError::query("preparing to record the files"))?;
    for r in &rows_to_record {
        let state = if r.open { "open" } else { "archived" };
        let bytes = i64::try_from(r.bytes).unwrap_or(i64::MAX);
        let records = i64::try_from(r.records).unwrap_or(i64::MAX);
        tx.execute(
            &record,
            &[
                &target,
                &r.name,
                &r.rtype.name(),
                &sel.format.name(),
                &fields_name,
                &state,
                &bytes,
                &records,
                &r.opened_at,
            ],
        )
        .await
        .map_err(ExportError::query("recording the files"))?;
    }
    if sel.types.contains(&RecordType::Bounced) {
        tx.execute(query::RECORD_EXPIRIES, &[&target])
            .await
            .map_err(ExportError::query("recording the expiries exported"))?;
    }
    tx.execute(
        "UPDATE export_target SET watermark = $2, last_run_at = now() WHERE target = $1",
        &[&target, &summary.watermark_to],
    )
    .await
    .map_err(ExportError::query("advancing the export watermark"))?;
    tx.commit()
        .await
        .map_err(ExportError::query("committing the export"))?;
    tracing::debug!(seconds = waited.elapsed().as_secs_f64(), "Committed.");
    if let Some(pace) = opts.pace {
        tokio::time::sleep(pace * 20).await;
    }

    for name in &to_archive {
        move_to_archive(&dir, &archive, name)?;
    }
    if !to_archive.is_empty() {
        sync_dir(&archive)?;
        sync_dir(&dir)?;
    }
    summary.archived = to_archive;
    drop(locks);
    Ok(summary)
}

/// Wait (at most [`HORIZON_WAIT`]) until every transaction that had started when the
/// run began has ended, so that a run exports everything committed before it started.
/// A transaction that stays open longer (anywhere in the cluster: transaction ids are
/// the cluster's) holds the horizon back; its records and all later ones are then
/// exported by a later run, never lost.
async fn wait_for_horizon(client: &tokio_postgres::Client) -> Result<(), ExportError> {
    let started = std::time::Instant::now();
    let want: i64 = client
        .query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await
        .map_err(ExportError::query("reading the transaction horizon"))?
        .get(0);
    loop {
        let xmin: i64 = client
            .query_one(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
                &[],
            )
            .await
            .map_err(ExportError::query("reading the transaction horizon"))?
            .get(0);
        if xmin >= want {
            return Ok(());
        }
        if started.elapsed() >= HORIZON_WAIT {
            tracing::warn!(
                waiting_for = want,
                horizon = xmin,
                "A long transaction holds the export horizon back; what it and later \
                 transactions stored is exported by a later run."
            );
            return Ok(());
        }
        tokio::time::sleep(HORIZON_POLL).await;
    }
}

/// Create the directories; return the export directory's canonical path and the
/// archive's. They must be on one file system (renames).
fn prepare_dirs(opts: &DirOptions) -> Result<(PathBuf, PathBuf), ExportError> {
    std::fs::create_dir_all(&opts.dir).map_err(ExportError::io("creating", &opts.dir))?;
    let dir = opts
        .dir
        .canonicalize()
        .map_err(ExportError::io("resolving", &opts.dir))?;
    let archive = opts
        .archive
        .clone()
        .unwrap_or_else(|| dir.join(DEFAULT_ARCHIVE_DIR));
    std::fs::create_dir_all(&archive).map_err(ExportError::io("creating", &archive))?;
    let archive = archive
        .canonicalize()
        .map_err(ExportError::io("resolving", &archive))?;
    if archive == dir {
        return Err(ExportError::Usage(format!(
            "the archive directory {} must differ from the export directory",
            archive.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.dev())
                .map_err(ExportError::io("reading", p))
        };
        if dev(&dir)? != dev(&archive)? {
            return Err(ExportError::Usage(format!(
                "the archive directory {} is on another file system than {}: finished \
                 files are moved by rename, which must be atomic",
                archive.display(),
                dir.display()
            )));
        }
    }
    Ok((dir, archive))
}

/// Bring the directory in line with the database (step 1 of a run); returns the files
/// the database knows.
async fn reconcile(
    client: &tokio_postgres::Client,
    target: &str,
    dir: &Path,
    archive: &Path,
    summary: &mut RunSummary,
) -> Result<Vec<KnownFile>, ExportError> {
    let rows = client
        .query(
            "SELECT name, type, format, fields, state = 'open', bytes, records, opened_at
             FROM export_file WHERE target = $1 ORDER BY name",
            &[&target],
        )
        .await
        .map_err(ExportError::query("reading the export's files"))?;
    let mut known: Vec<KnownFile> = rows
        .iter()
        .map(|r| KnownFile {
            name: r.get(0),
            rtype: r.get(1),
            format: r.get(2),
            fields: r.get(3),
            open: r.get(4),
            bytes: r.get(5),
            records: r.get(6),
            opened_at: r.get(7),
        })
        .collect();
    let names: HashSet<&str> = known.iter().map(|k| k.name.as_str()).collect();

    // Files this exporter names, created by a run that never recorded them.
    let mut leftovers = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(ExportError::io("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(ExportError::io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_export_name(&name) && !names.contains(name.as_str()) {
            leftovers.push(name);
        }
    }
    for name in leftovers {
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(ExportError::io("deleting the leftover", &path))?;
        tracing::warn!(file = %path.display(), "Deleted a file an interrupted export created but never recorded.");
        summary.repaired.push(format!("deleted {name}"));
    }

    let mut vanished = Vec::new();
    let mut moved = false;
    for k in &known {
        let path = dir.join(&k.name);
        if k.open {
            let committed = u64::try_from(k.bytes).unwrap_or(0);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() > committed => {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(ExportError::io("opening", &path))?;
                    file.set_len(committed)
                        .map_err(ExportError::io("cutting back", &path))?;
                    file.sync_all().map_err(ExportError::io("syncing", &path))?;
                    tracing::warn!(file = %path.display(), bytes = m.len() - committed,
                        "Cut back what an interrupted export appended after its last commit.");
                    summary
                        .repaired
                        .push(format!("cut {} back to {committed} bytes", k.name));
                }
                Ok(m) if m.len() < committed => {
                    return Err(ExportError::Tampered {
                        path,
                        reason: format!(
                            "{} bytes, but {committed} were exported into it: it was changed \
                             outside pftrack. Move it away (its records are not exported \
                             again) and run the export again",
                            m.len()
                        ),
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(file = %path.display(),
                        "An open export file is gone (moved by hand?); it counts as archived.");
                    vanished.push(k.name.clone());
                }
                Err(e) => return Err(ExportError::io("reading", &path)(e)),
            }
        } else if path.exists() {
            // Recorded as archived, not moved yet: the run crashed after its commit.
            move_to_archive(dir, archive, &k.name)?;
            summary.repaired.push(format!("archived {}", k.name));
            moved = true;
        }
    }
    if moved {
        sync_dir(archive)?;
        sync_dir(dir)?;
    }
    for name in vanished {
        client
            .execute(
                "UPDATE export_file SET state = 'archived', archived_at = now()
                 WHERE target = $1 AND name = $2",
                &[&target, &name],
            )
            .await
            .map_err(ExportError::query("recording a vanished file as archived"))?;
        if let Some(k) = known.iter_mut().find(|k| k.name == name) {
            k.open = false;
        }
    }
    Ok(known)
}

/// A new open file for `rtype`: `PREFIX.YYYY-MM-DD-HHMMSS.EXT` (UTC), with `-N` added
/// when that name is taken; the header line written.
fn create_file(
    dir: &Path,
    archive: &Path,
    rtype: RecordType,
    sel: &Selection,
    taken: &mut HashSet<String>,
) -> Result<Writer, ExportError> {
    let opened_at = Utc::now();
    let stamp = opened_at.format("%Y-%m-%d-%H%M%S");
    let ext = sel.format.name();
    let mut n = 0u32;
    let name = loop {
        let name = if n == 0 {
            format!("{}.{stamp}.{ext}", rtype.prefix())
        } else {
            format!("{}.{stamp}-{n}.{ext}", rtype.prefix())
        };
        if !taken.contains(&name) && !dir.join(&name).exists() && !archive.join(&name).exists() {
            break name;
        }
        n += 1;
    };
    taken.insert(name.clone());
    let path = dir.join(&name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(ExportError::io("creating", &path))?;
    let mut w = Writer {
        name,
        rtype,
        file,
        path,
        bytes: 0,
        records: 0,
        records_before: 0,
        opened_at,
        buf: Vec::with_capacity(WRITE_BUFFER + 4096),
    };
    if let Some(header) = sel.format.header(&sel.fields) {
        w.append(&header)?;
    }
    Ok(w)
}

/// Whether `name` is one this exporter creates: `PREFIX.YYYY-MM-DD-HHMMSS[-N].EXT`.
fn is_export_name(name: &str) -> bool {
    let mut parts = name.splitn(3, '.');
    let (Some(prefix), Some(stamp), Some(ext)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if !RecordType::ALL.iter().any(|t| t.prefix() == prefix) {
        return false;
    }
    if Format::parse(ext).is_err() {
        return false;
    }
    let (time, counter) = match stamp.get(17..) {
        Some(rest) if !rest.is_empty() => (&stamp[..17], Some(rest)),
        _ => (stamp, None),
    };
    let shape_ok = time.len() == 17
        && time.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let counter_ok = counter.is_none_or(|c| {
        c.len() > 1 && c.starts_with('-') && c[1..].bytes().all(|b| b.is_ascii_digit())
    });
    shape_ok && counter_ok
}

fn move_to_archive(dir: &Path, archive: &Path, name: &str) -> Result<(), ExportError> {
    let from = dir.join(name);
    let to = archive.join(name);
    if to.exists() {
        return Err(ExportError::Tampered {
            path: to,
            reason: format!(
                "already exists, and {} is to be archived under that name; move one of \
                 them away and run the export again",
                from.display()
            ),
        });
    }
    std::fs::rename(&from, &to).map_err(ExportError::io("moving to the archive", &from))
}

fn sync_dir(dir: &Path) -> Result<(), ExportError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ExportError::io("syncing the directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names() {
        assert!(is_export_name("d.2025-03-14-125059.tsv"));
        assert!(is_export_name("df.2025-03-14-125059-2.csv"));
        assert!(is_export_name("r.2025-03-14-125059.jsonl"));
        assert!(!is_export_name("d.2025-03-14-125059.txt"));
        assert!(!is_export_name("x.2025-03-14-125059.tsv"));
        assert!(!is_export_name("d.2025-03-14-12505.tsv"));
        assert!(!is_export_name("d.2025-03-14-125059-.tsv"));
        assert!(!is_export_name("d.2025-03-14-125059-a.tsv"));
        assert!(!is_export_name("README"));
        assert!(!is_export_name("archive"));
    }
}
