//! `pftrack backfill FILE...`: read syslog files oldest first and store what they say.
//!
//! Resumable and idempotent: each file is known by a hash of its first line (which
//! survives renaming and compression during rotation) and its read position is
//! committed in the same transaction as the rows of the lines before it. A re-run
//! resumes every file where it stopped, so nothing is read twice.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pftrack_extract::{
    Batch, ExtractStats, Extractor, MAX_OPEN_MESSAGES, NOQUEUE_OCCURRENCE_WINDOW, Noqueue,
    PrimeEntry,
};
use pftrack_input::{Checkpoint, FileIdentity, FileReader, ReaderOptions};
use pftrack_store::{HostSpan, IndexMode, InputCheckpoint, PositionBase, Store};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::exclusive::{HostSpans, WhenBusy, lock_inputs};
use crate::ingest::{
    IngestCounts, PostfixFilter, configured_classifier, count_event, reader_options,
};
use crate::writer::{self, CHANNEL_CAPACITY, WorkItem};

/// Lines per transaction during a backfill: large enough to amortise the round trips,
/// small enough to keep memory low (a batch holds its merged rows, and up to five
/// batches are in flight between reader, encoder and writer). 16 000 since batches
/// carry the attempt history too: 20 000 then peaked at 60–62 MiB of the 64 allowed.
pub const BACKFILL_BATCH_LINES: u64 = 16_000;

/// How long a backfill keeps retrying a database that went away before giving up.
pub const BACKFILL_RETRY_LIMIT: Duration = Duration::from_secs(120);

/// Progress is updated every this many lines.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Arguments of `pftrack backfill`.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// Log files or directories (a rotated set is read oldest first).
    #[arg(required_unless_present = "journal")]
    paths: Vec<PathBuf>,
    /// Load from the journal instead of files, up to its end, then exit.
    #[arg(long, conflicts_with = "paths")]
    pub journal: bool,
    /// With --journal: read the journal files in this directory.
    #[arg(long, value_name = "DIR", requires = "journal")]
    journal_dir: Option<PathBuf>,
    /// With --journal: read these journal files.
    #[arg(long, value_name = "FILE", requires = "journal")]
    journal_file: Vec<PathBuf>,
    /// With --journal: where to start when no cursor is stored (`7d`, RFC 3339, `now`).
    #[arg(long, requires = "journal")]
    since: Option<String>,
    /// With --journal: stop at the first entry after this RFC 3339 time.
    #[arg(long, requires = "journal")]
    until: Option<String>,
    /// Year of each file's first yearless stamp (default: inferred from its mtime).
    #[arg(long)]
    year: Option<i32>,
    /// Zone of stamps without an offset (local, UTC, +01:00, Europe/Prague).
    #[arg(long)]
    timezone: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Lines per transaction.
    #[arg(long, default_value_t = BACKFILL_BATCH_LINES)]
    batch_lines: u64,
    /// When to build secondary indexes once at the end instead of row by row: `auto`
    /// (into an empty database, or to continue an interrupted bulk load), `always`,
    /// `never`.
    #[arg(long, value_enum, default_value_t = DeferIndexes::Auto)]
    pub defer_indexes: DeferIndexes,
    /// When another pftrack is loading one of these inputs, exit at once (code 3)
    /// instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

/// `--defer-indexes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeferIndexes {
    /// Into an empty database, or to continue an interrupted bulk load.
    Auto,
    /// Whatever the database holds.
    Always,
    /// Maintain indexes row by row.
    Never,
}

impl From<DeferIndexes> for IndexMode {
    fn from(d: DeferIndexes) -> Self {
        match d {
            DeferIndexes::Auto => IndexMode::Auto,
            DeferIndexes::Always => IndexMode::Always,
            DeferIndexes::Never => IndexMode::Never,
        }
    }
}

impl BackfillArgs {
    /// The journal to read with `--journal`.
    pub fn journal_args(&self) -> crate::follow::JournalArgs {
        crate::follow::JournalArgs {
            journal_dir: self.journal_dir.clone(),
            journal_file: self.journal_file.clone(),
            since: self.since.clone(),
        }
    }

    /// `--until` as a time.
    pub fn until_time(&self) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.until
            .as_deref()
            .map(|u| {
                chrono::DateTime::parse_from_rfc3339(u)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .with_context(|| format!("--until {u:?} is not an RFC 3339 time"))
            })
            .transpose()
    }
}

/// The summary printed at the end.
#[derive(Debug, Default, Serialize)]
struct Summary {
    files: u64,
    files_failed: u64,
    #[serde(flatten)]
    counts: IngestCounts,
    messages: u64,
    recipients: u64,
    noqueue: u64,
    /// SASL authentication failures read.
    auth_failures: u64,
    rows_written: u64,
    /// Secondary indexes built at the end of a bulk load.
    indexes_built: usize,
    /// Time spent building them (included in `seconds`).
    index_build_seconds: f64,
    seconds: f64,
    lines_per_second: f64,
}

struct ReaderOutcome {
    counts: IngestCounts,
    extract: ExtractStats,
    files: u64,
    files_failed: u64,
    lines: u64,
}

/// Run the backfill.
pub async fn run(args: BackfillArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = reader_options(args.timezone.as_deref(), args.year, config)?;
    let classifier = configured_classifier(config)?;
    let files = pftrack_input::rotation::expand_and_order(&args.paths)?;
    // Each file is known by the hash of its first line: its lock and its position.
    let files: Vec<(PathBuf, Result<FileIdentity, pftrack_input::InputError>)> = files
        .into_iter()
        .map(|path| {
            let identity = FileIdentity::of(&path);
            (path, identity)
        })
        .collect();
    let names: HashMap<String, String> = files
        .iter()
        .filter_map(|(path, identity)| {
            let hash = identity.as_ref().ok()?.first_line_hash?;
            Some((file_source(hash), path.display().to_string()))
        })
        .collect();
    let sources: Vec<String> = names.keys().cloned().collect();

    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    store.migrate().await?;
    store.sync_host_aliases(&config.fleet.host_aliases).await?;
    // Before anything that depends on what is stored: another loader of these inputs
    // may be moving their positions on until it lets go.
    let when_busy = if args.no_wait {
        WhenBusy::Refuse
    } else {
        WhenBusy::Wait
    };
    let name_of = |source: &str| {
        names
            .get(source)
            .cloned()
            .unwrap_or_else(|| source.to_owned())
    };
    let locks = lock_inputs(&store, &sources, &name_of, "backfill", when_busy).await?;
    let events = writer::event_rules(config, &store).await?;
    let load = store.begin_load(args.defer_indexes.into()).await?;
    let positions = store.positions("file").await?;
    let prime = store.prime_entries(MAX_OPEN_MESSAGES).await?;
    // A file loaded part-way (or to its end, and grown since) goes on numbering
    // identical NOQUEUE decisions and SASL failures of the instants it had reached.
    let resume_at = positions
        .iter()
        .filter(|(source, _)| names.contains_key(*source))
        .filter_map(|(_, p)| p.last_timestamp)
        .min();
    let noqueue_prime = match resume_at {
        Some(t) => store.noqueue_prime(t - NOQUEUE_OCCURRENCE_WINDOW).await?,
        None => Vec::new(),
    };
    let bruteforce = config.auth.bruteforce.rule()?;
    let auth_prime = crate::sasl::prime(&store, resume_at, bruteforce).await?;
    let mut geo = config.geoip.open()?;

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };

    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let writer = tokio::spawn(writer::run(store.clone(), rx, Some(BACKFILL_RETRY_LIMIT)));
    let filter = PostfixFilter::new(&config.journal.identifiers);
    let batch_lines = args.batch_lines.max(1);
    // Encoding a batch for COPY is a stage of its own, so that the reader (the slowest
    // stage but PostgreSQL) goes on with the next batch meanwhile.
    let (raw_tx, mut raw_rx) = mpsc::channel::<(Batch, Vec<InputCheckpoint>, u64)>(1);
    let encoder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        while let Some((batch, checkpoints, lines)) = raw_rx.blocking_recv() {
            geo.refresh();
            let item = WorkItem::new(
                &batch,
                checkpoints,
                lines,
                &classifier,
                events.as_ref(),
                Some(&geo),
            )?;
            drop(batch);
            if tx.blocking_send(item).is_err() {
                // The writer stopped with an error; it reports it.
                break;
            }
        }
        Ok(())
    });
    let bar = progress.clone();
    let tag_headers = config.tags.headers.clone();
    let reader = tokio::task::spawn_blocking(move || {
        read_files(
            files,
            options,
            positions,
            (prime, noqueue_prime, auth_prime, bruteforce),
            filter,
            batch_lines,
            raw_tx,
            bar.as_ref(),
            tag_headers,
        )
    });

    let reader_result = reader.await.context("the reader thread failed")?;
    let encoder_result = encoder.await.context("the encoder thread failed")?;
    let writer_result = writer.await.context("the writer task failed")?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let totals = writer_result?;
    encoder_result?;
    let outcome = reader_result?;
    let built = load.finish(&store).await?;
    if locks.as_ref().is_some_and(|l| !l.is_held()) {
        tracing::warn!(
            "The connection holding the input locks broke during the load (PostgreSQL \
             restarted?); the positions' compare-and-set kept the load exact."
        );
    }
    drop(locks);

    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        files: outcome.files,
        files_failed: outcome.files_failed,
        counts: outcome.counts,
        messages: outcome.extract.messages,
        recipients: outcome.extract.recipient_events,
        noqueue: outcome.extract.noqueue,
        auth_failures: outcome.extract.auth_failures,
        rows_written: totals.rows.messages
            + totals.rows.recipients
            + totals.rows.noqueue
            + totals.rows.auth_failures,
        indexes_built: built.indexes,
        index_build_seconds: built.elapsed.as_secs_f64(),
        seconds,
        lines_per_second: if seconds > 0.0 {
            outcome.lines as f64 / seconds
        } else {
            0.0
        },
    };
    print_summary(&summary, args.json)?;
    Ok(if outcome.files_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        println!(
            "backfill: {} file(s) ({} failed), {} records ({} postfix: {} recognized, {} unknown), \
             {} malformed lines; {} messages, {} recipient events, {} NOQUEUE, {} SASL failures; {} rows written{} \
             in {:.2} s ({:.0} lines/s)",
            s.files,
            s.files_failed,
            s.counts.records,
            s.counts.postfix,
            s.counts.recognized,
            s.counts.unknown,
            s.counts.malformed,
            s.messages,
            s.recipients,
            s.noqueue,
            s.auth_failures,
            s.rows_written,
            if s.indexes_built > 0 {
                format!(
                    ", {} deferred index(es) built in {:.2} s",
                    s.indexes_built, s.index_build_seconds
                )
            } else {
                String::new()
            },
            s.seconds,
            s.lines_per_second
        );
    }
    Ok(())
}

/// What the reader's extractor starts from: stored messages, NOQUEUE counts and SASL
/// failures to replay, and the brute-force rule.
type ReaderPrime = (
    Vec<PrimeEntry>,
    Vec<(Noqueue, i32)>,
    Vec<(pftrack_extract::AuthFailure, i32)>,
    Option<pftrack_extract::BruteforceRule>,
);

/// The sync half: read, parse, extract, batch; hand batches to the encoder.
#[allow(clippy::too_many_arguments)]
fn read_files(
    files: Vec<(PathBuf, Result<FileIdentity, pftrack_input::InputError>)>,
    options: ReaderOptions,
    mut positions: HashMap<String, InputCheckpoint>,
    (prime, noqueue_prime, auth_prime, bruteforce): ReaderPrime,
    filter: PostfixFilter,
    batch_lines: u64,
    tx: mpsc::Sender<(Batch, Vec<InputCheckpoint>, u64)>,
    progress: Option<&ProgressBar>,
    tag_headers: Vec<String>,
) -> anyhow::Result<ReaderOutcome> {
    let mut extractor =
        crate::sasl::with_rule(Extractor::new().with_tag_headers(tag_headers), bruteforce);
    extractor.prime(prime);
    extractor.prime_noqueue(noqueue_prime);
    extractor.prime_auth(auth_prime);
    let mut out = ReaderOutcome {
        counts: IngestCounts::default(),
        extract: ExtractStats::default(),
        files: 0,
        files_failed: 0,
        lines: 0,
    };
    let mut batch = Batch::new();
    let mut batch_lines_now = 0u64;
    // Positions of files finished since the last send, committed with the next batch.
    let mut done_checkpoints: Vec<InputCheckpoint> = Vec::new();
    let started = Instant::now();

    for (path, identity) in files {
        let identity = match identity {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read a file; going on with the others.");
                eprintln!("pftrack: error: {e}");
                out.files_failed += 1;
                continue;
            }
        };
        out.files += 1;
        let Some(hash) = identity.first_line_hash else {
            tracing::info!(path = %path.display(), "Skipping an empty file.");
            continue;
        };
        let source = file_source(hash);
        // The position this file's next checkpoint moves on from: what is stored (or
        // was committed for the same file met earlier in this run).
        let mut base = positions
            .get(&source)
            .map_or(PositionBase::Absent, |p| p.base.clone());
        let mut spans = HostSpans::default();
        let start = positions
            .get(&source)
            .map_or_else(Checkpoint::default, |p| Checkpoint {
                offset: p
                    .byte_offset
                    .and_then(|o| u64::try_from(o).ok())
                    .unwrap_or(0),
                line: p.line.and_then(|l| u64::try_from(l).ok()).unwrap_or(0),
                latest_local: p.latest_local,
            });
        if start.line > 0 {
            tracing::info!(path = %path.display(), line = start.line, "Resuming after the stored position.");
        }
        let mut reader = match FileReader::open_at(&path, options, start) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read a file; going on with the others.");
                eprintln!("pftrack: error: {e}");
                out.files_failed += 1;
                continue;
            }
        };
        let shown_path: Arc<str> = Arc::from(path.display().to_string());
        let mut last_timestamp = None;
        let mut failed = false;
        // Not a `for` loop: the body needs the reader too (for its checkpoint).
        #[allow(clippy::while_let_on_iterator)]
        while let Some(item) = reader.next() {
            out.lines += 1;
            batch_lines_now += 1;
            match item {
                Ok(record) => {
                    out.counts.records += 1;
                    last_timestamp = Some(record.timestamp);
                    spans.add(&record.host, record.timestamp);
                    if filter.matches(&record) {
                        out.counts.postfix += 1;
                        let text = record.message_text();
                        let daemon = record.daemon();
                        let event = pftrack_parse::parse(daemon, &text);
                        count_event(&mut out.counts, &event);
                        extractor.process_logged(
                            &record.host,
                            record.timestamp,
                            &record.identifier,
                            &event,
                            &mut |f| batch.add(f),
                        );
                    }
                }
                Err(e) if e.is_malformed() => {
                    out.counts.malformed += 1;
                    tracing::debug!(error = %e, "Skipped a line that is not a syslog record.");
                }
                Err(e) => {
                    tracing::error!(error = %e, "Reading stopped; going on with the other files.");
                    eprintln!("pftrack: error: {e}");
                    out.files_failed += 1;
                    failed = true;
                    break;
                }
            }
            if out.lines.is_multiple_of(PROGRESS_EVERY)
                && let Some(bar) = progress
            {
                let rate = out.lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{shown_path}: {} lines ({rate:.0} lines/s)",
                    out.lines
                ));
            }
            if batch_lines_now >= batch_lines {
                let mut checkpoints = std::mem::take(&mut done_checkpoints);
                checkpoints.push(file_checkpoint(
                    &source,
                    &reader,
                    &identity,
                    last_timestamp,
                    false,
                    &mut base,
                    spans.take(),
                ));
                let item = (std::mem::take(&mut batch), checkpoints, batch_lines_now);
                batch_lines_now = 0;
                if tx.blocking_send(item).is_err() {
                    // The writer stopped with an error; it reports it.
                    return Ok(finish(out, &extractor));
                }
            }
        }
        let done = file_checkpoint(
            &source,
            &reader,
            &identity,
            last_timestamp,
            !failed,
            &mut base,
            spans.take(),
        );
        positions.insert(source, done.clone());
        done_checkpoints.push(done);
    }
    if !batch.is_empty() || !done_checkpoints.is_empty() {
        let _ = tx.blocking_send((batch, done_checkpoints, batch_lines_now));
    }
    Ok(finish(out, &extractor))
}

fn finish(mut out: ReaderOutcome, extractor: &Extractor) -> ReaderOutcome {
    out.extract = extractor.stats();
    out
}

/// The source key of a file: the hash of its first line.
fn file_source(first_line_hash: u64) -> String {
    format!("file:{first_line_hash:016x}")
}

/// The checkpoint of a file where `reader` stands, moving on from `base` (which then
/// becomes this checkpoint).
#[allow(clippy::too_many_arguments)]
fn file_checkpoint(
    source: &str,
    reader: &FileReader,
    identity: &FileIdentity,
    last_timestamp: Option<chrono::DateTime<chrono::Utc>>,
    complete: bool,
    base: &mut PositionBase,
    hosts: Vec<HostSpan>,
) -> InputCheckpoint {
    let cp = reader.checkpoint();
    let checkpoint = InputCheckpoint {
        source: source.to_owned(),
        kind: "file",
        path: Some(reader.path().display().to_string()),
        device: i64::try_from(identity.dev).ok(),
        inode: i64::try_from(identity.ino).ok(),
        byte_offset: i64::try_from(cp.offset).ok(),
        line: i64::try_from(cp.line).ok(),
        cursor: None,
        last_timestamp,
        latest_local: cp.latest_local,
        complete,
        loaded_by: None,
        base: std::mem::take(base),
        hosts,
    };
    *base = checkpoint.as_base();
    checkpoint
}
