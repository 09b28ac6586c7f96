//! The writer task: takes batches in order and commits each with its input positions,
//! retrying transient database errors with exponential backoff.
//!
//! A retry never commits a batch twice: when a commit fails in a way that leaves it
//! unknown whether the server committed (the connection broke during `COMMIT`), the
//! stored input positions are read back before the next attempt, and a batch whose
//! positions are already stored counts as committed. (Re-applying it would add its
//! attempts and NOQUEUE counts a second time.)

use std::time::Duration;

use anyhow::Context;
use pftrack_classify::Classifier;
use pftrack_events::EventRules;
use pftrack_extract::Batch;
use pftrack_store::{EncodedBatch, InputCheckpoint, Store, StoreError, WriteStats};
use tokio::sync::{mpsc, watch};

/// Batches queued between the reader and the writer. Small: when PostgreSQL is slow
/// the reader waits (and the input, a file or the journal, is the buffer).
pub const CHANNEL_CAPACITY: usize = 2;

/// First wait after a transient database error.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Once a stop is requested, how long a failing commit is still retried before the
/// writer gives up. What it gives up is only uncommitted: the input position was not
/// stored either, so the next start reads those records again. Well below systemd's
/// default `TimeoutStopSec` (90 s).
pub const STOP_RETRY_LIMIT: Duration = Duration::from_secs(10);

/// One unit of commit.
#[derive(Debug)]
pub struct WorkItem {
    /// The merged rows, encoded for COPY.
    pub rows: EncodedBatch,
    /// Where the inputs stand after the lines of this batch.
    pub checkpoints: Vec<InputCheckpoint>,
    /// Lines the batch covers (for progress).
    pub lines: u64,
}

impl WorkItem {
    /// Encode `batch` (on the caller's thread, so that the database never waits for
    /// it), its failures classified by `classifier`, together with the positions it
    /// brings its inputs to.
    /// The outbox rows of the facts that `events` select go with them; SASL failures
    /// carry what `geo` says of their client address.
    pub fn new(
        batch: &Batch,
        checkpoints: Vec<InputCheckpoint>,
        lines: u64,
        classifier: &Classifier,
        events: Option<&EventRules>,
        geo: Option<&pftrack_geo::Geo>,
    ) -> Result<WorkItem, StoreError> {
        Ok(WorkItem {
            rows: EncodedBatch::encode_with_geo(batch, classifier, events, geo)?,
            checkpoints,
            lines,
        })
    }
}

/// The event rules of `config`, `None` when events are disabled. With events
/// enabled, records when that first happened (the default start of events).
pub async fn event_rules(
    config: &crate::config::Config,
    store: &Store,
) -> anyhow::Result<Option<EventRules>> {
    if !config.events.enabled {
        return Ok(None);
    }
    let enabled_at = store.events_enabled_at().await?;
    let rules = config.events.rules(enabled_at)?;
    tracing::info!(
        since = ?rules.since,
        "events enabled: facts since then go into the outbox"
    );
    Ok(Some(rules))
}

/// What the writer committed.
#[derive(Debug, Default, Clone)]
pub struct WriterTotals {
    /// Batches committed.
    pub batches: u64,
    /// Lines (or journal records) covered by the committed batches.
    pub lines: u64,
    /// Rows written.
    pub rows: WriteStats,
}

/// Hears about commits and failures (for the daemon's `STATUS=`).
pub trait Observer: Send {
    /// `item` was committed.
    fn committed(&mut self, _item: &WorkItem, _stats: &WriteStats) {}
    /// A commit failed transiently; the next attempt follows after `retry_in`.
    /// `attempt` counts the failures of this batch (1 for the first).
    fn retrying(&mut self, _error: &StoreError, _retry_in: Duration, _attempt: u32) {}
    /// A commit attempt succeeded after `took` (metrics, issue 15).
    fn commit_took(&mut self, _took: Duration) {}
}

impl Observer for () {}

/// The writer's error when a stop was requested while the database was unavailable:
/// the batches not committed are not lost (their input position was not stored
/// either), so the caller may exit successfully after saying so.
#[derive(Debug)]
pub struct StoppedWhileUnavailable {
    /// The database, without password.
    pub target: String,
    /// Records of the batch given up (not counting those still queued).
    pub lines: u64,
    /// The last error.
    pub source: StoreError,
}

impl std::fmt::Display for StoppedWhileUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the database {} was still unavailable {:?} after the stop request; {} record(s) \
             were not committed and will be read again at the next start",
            self.target, STOP_RETRY_LIMIT, self.lines
        )
    }
}

impl std::error::Error for StoppedWhileUnavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Commit items until the channel closes. Transient errors are retried until
/// `give_up_after` has passed since the first failure of that batch (forever when
/// `None`); anything else ends the writer with the error.
pub async fn run(
    store: Store,
    rx: mpsc::Receiver<WorkItem>,
    give_up_after: Option<Duration>,
) -> anyhow::Result<WriterTotals> {
    run_with(store, rx, give_up_after, None, ()).await
}

/// Like [`run`], telling `observer` about commits and retries. When `stop` turns
/// true, a failing commit is retried for [`STOP_RETRY_LIMIT`] more at most, then the
/// writer ends with [`StoppedWhileUnavailable`] (dropping the receiver, so
/// a reader blocked on a full channel is released).
pub async fn run_with(
    store: Store,
    mut rx: mpsc::Receiver<WorkItem>,
    give_up_after: Option<Duration>,
    mut stop: Option<watch::Receiver<bool>>,
    mut observer: impl Observer,
) -> anyhow::Result<WriterTotals> {
    let mut totals = WriterTotals::default();
    let mut overlaps = OverlapWarnings::default();
    while let Some(item) = rx.recv().await {
        let stats =
            write_with_retry(&store, &item, give_up_after, stop.as_mut(), &mut observer).await?;
        overlaps.warn(&stats.overlaps);
        observer.committed(&item, &stats);
        totals.lines += item.lines;
        totals.batches += 1;
        totals.rows.messages += stats.messages;
        totals.rows.recipients += stats.recipients;
        totals.rows.noqueue += stats.noqueue;
        totals.rows.auth_failures += stats.auth_failures;
    }
    Ok(totals)
}

/// Warns once per pair of inputs found to bring the same host's records over the same
/// times (the same log loaded through two inputs).
#[derive(Debug, Default)]
struct OverlapWarnings {
    warned: std::collections::HashSet<(String, String)>,
}

impl OverlapWarnings {
    fn warn(&mut self, overlaps: &[pftrack_store::InputOverlap]) {
        for o in overlaps {
            if !self
                .warned
                .insert((o.source.clone(), o.other_source.clone()))
            {
                continue;
            }
            let this = o.path.as_deref().unwrap_or(&o.source);
            let other = o.other_path.as_deref().unwrap_or(&o.other_source);
            tracing::warn!(
                host = %o.host,
                input = this,
                other_input = other,
                from = %o.from.format("%Y-%m-%d %H:%M:%S UTC"),
                to = %o.to.format("%Y-%m-%d %H:%M:%S UTC"),
                "Two inputs bring the same host's records over the same time: {this} and \
                 {other} both hold {}'s log from {} to {}. They are most likely the same \
                 events (the journal and its syslog copy, or a log under two identities); \
                 each line is stored as often as it is loaded (attempts and NOQUEUE counts \
                 add up). Load each host's log through one input only; see \
                 docs/operation.md, \"Two loaders\".",
                o.host,
                o.from.format("%Y-%m-%d %H:%M:%S"),
                o.to.format("%Y-%m-%d %H:%M:%S")
            );
        }
    }
}

/// True when a stop has been requested.
fn stopping(stop: &Option<&mut watch::Receiver<bool>>) -> bool {
    stop.as_ref().is_some_and(|s| *s.borrow())
}

async fn write_with_retry(
    store: &Store,
    item: &WorkItem,
    give_up_after: Option<Duration>,
    mut stop: Option<&mut watch::Receiver<bool>>,
    observer: &mut impl Observer,
) -> anyhow::Result<WriteStats> {
    let started = tokio::time::Instant::now();
    let mut backoff = BACKOFF_MIN;
    let mut attempt: u32 = 0;
    let mut stop_deadline: Option<tokio::time::Instant> = None;
    loop {
        if attempt > 0 && already_committed(store, item).await {
            tracing::info!(
                database = store.target(),
                "The last commit went through after all (its input position is stored); \
                 not writing the batch again."
            );
            return Ok(WriteStats::default());
        }
        let attempt_started = std::time::Instant::now();
        let error = match store.write_batch(&item.rows, &item.checkpoints).await {
            Ok(stats) => {
                observer.commit_took(attempt_started.elapsed());
                if attempt > 0 {
                    tracing::info!(
                        database = store.target(),
                        failures = attempt,
                        "Database available again; the batch is committed."
                    );
                }
                return Ok(stats);
            }
            Err(e) if e.is_transient() => e,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("writing to the database {}", store.target()));
            }
        };
        attempt = attempt.saturating_add(1);
        if give_up_after.is_some_and(|limit| started.elapsed() >= limit) {
            return Err(error).with_context(|| {
                format!(
                    "giving up on the database {} after retrying",
                    store.target()
                )
            });
        }
        if stopping(&stop) {
            let deadline = *stop_deadline
                .get_or_insert_with(|| tokio::time::Instant::now() + STOP_RETRY_LIMIT);
            if tokio::time::Instant::now() >= deadline {
                return Err(StoppedWhileUnavailable {
                    target: store.target().to_owned(),
                    lines: item.lines,
                    source: error,
                }
                .into());
            }
        }
        tracing::warn!(
            database = store.target(),
            error = %error,
            failures = attempt,
            retry_in_ms = backoff.as_millis() as u64,
            "Database unavailable; the batch will be retried, nothing is lost \
             (its input position is not stored until it commits)."
        );
        observer.retrying(&error, backoff, attempt);
        let wait = match stop_deadline {
            Some(deadline) => {
                backoff.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
            }
            None => backoff,
        };
        match stop.as_deref_mut() {
            // A stop request cuts a long backoff short, so the last attempts come soon.
            Some(s) if !*s.borrow() => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    changed = s.changed() => {
                        // The sender is gone: no stop can come any more; just wait.
                        if changed.is_err() {
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
            }
            _ => tokio::time::sleep(wait).await,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if stopping(&stop) {
            // Retries after a stop are quick: the point is to commit before exiting.
            backoff = backoff.min(BACKOFF_MIN * 5);
        }
    }
}

/// After a failed commit: true when every input position of `item` is stored as the
/// item would store it, so the failed commit did commit. False when the item carries
/// no position, or the positions cannot be read (the database is still away).
async fn already_committed(store: &Store, item: &WorkItem) -> bool {
    if item.checkpoints.is_empty() {
        return false;
    }
    let mut kinds: Vec<&str> = item.checkpoints.iter().map(|c| c.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let Ok(stored) = store.positions(kind).await else {
            return false;
        };
        for cp in item.checkpoints.iter().filter(|c| c.kind == kind) {
            let same = stored.get(&cp.source).is_some_and(|s| {
                // Stored by this process: another loader may have committed the very
                // same position (same input, same batch size).
                s.loaded_by.as_deref() == Some(store.loader_id())
                    && s.cursor == cp.cursor
                    && s.byte_offset == cp.byte_offset
                    && s.line == cp.line
                    && s.complete == cp.complete
            });
            if !same {
                return false;
            }
        }
    }
    true
}
