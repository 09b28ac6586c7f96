//! The writer task: takes batches in order and commits each with its input positions,
//! retrying transient database errors with exponential backoff.

use std::time::Duration;

use anyhow::Context;
use pftrack_extract::Batch;
use pftrack_store::{InputCheckpoint, Store, WriteStats};
use tokio::sync::mpsc;

/// Batches queued between the reader and the writer. Small: when PostgreSQL is slow
/// the reader waits (and the input, a file or the journal, is the buffer).
pub const CHANNEL_CAPACITY: usize = 2;

/// First wait after a transient database error.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One unit of commit.
#[derive(Debug)]
pub struct WorkItem {
    /// The merged rows.
    pub batch: Batch,
    /// Where the inputs stand after the lines of this batch.
    pub checkpoints: Vec<InputCheckpoint>,
    /// Lines the batch covers (for progress).
    pub lines: u64,
}

/// What the writer committed.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterTotals {
    /// Batches committed.
    pub batches: u64,
    /// Lines (or journal records) covered by the committed batches.
    pub lines: u64,
    /// Rows written.
    pub rows: WriteStats,
}

/// Commit items until the channel closes. Transient errors are retried until
/// `give_up_after` has passed since the first failure of that batch (forever when
/// `None`); anything else ends the writer with the error.
pub async fn run(
    store: Store,
    rx: mpsc::Receiver<WorkItem>,
    give_up_after: Option<Duration>,
) -> anyhow::Result<WriterTotals> {
    run_with(store, rx, give_up_after, |_, _| {}).await
}

/// Like [`run`], calling `on_commit` after each commit.
pub async fn run_with(
    store: Store,
    mut rx: mpsc::Receiver<WorkItem>,
    give_up_after: Option<Duration>,
    mut on_commit: impl FnMut(&WorkItem, &WriteStats),
) -> anyhow::Result<WriterTotals> {
    let mut totals = WriterTotals::default();
    while let Some(item) = rx.recv().await {
        let stats = write_with_retry(&store, &item, give_up_after).await?;
        on_commit(&item, &stats);
        totals.lines += item.lines;
        totals.batches += 1;
        totals.rows.messages += stats.messages;
        totals.rows.recipients += stats.recipients;
        totals.rows.noqueue += stats.noqueue;
    }
    Ok(totals)
}

async fn write_with_retry(
    store: &Store,
    item: &WorkItem,
    give_up_after: Option<Duration>,
) -> anyhow::Result<WriteStats> {
    let started = tokio::time::Instant::now();
    let mut backoff = BACKOFF_MIN;
    loop {
        match store.write_batch(&item.batch, &item.checkpoints).await {
            Ok(stats) => return Ok(stats),
            Err(e) if e.is_transient() => {
                if give_up_after.is_some_and(|limit| started.elapsed() >= limit) {
                    return Err(e).with_context(|| {
                        format!(
                            "giving up on the database {} after retrying",
                            store.target()
                        )
                    });
                }
                tracing::warn!(
                    database = store.target(),
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "Database unavailable; the batch will be retried, nothing is lost."
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("writing to the database {}", store.target()));
            }
        }
    }
}
