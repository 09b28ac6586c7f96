//! Retention: delete messages, their recipients (with their attempt history), NOQUEUE
//! rows and SASL authentication failures older than a limit,
//! in bounded batches, never touching a message still in flight.
//!
//! **Old**: a message that arrived before `now − older_than` (by the database's
//! clock); a NOQUEUE row logged before it.
//!
//! **In flight**: a message whose life has not ended (`removed_at` and `rejected_at`
//! are both NULL) and that was seen (`last_seen_at`) within
//! [`pftrack_extract::MAX_MESSAGE_IDLE`] (7 days) of now. The extractor still attaches
//! new lines to such a message, so deleting it would leave a row that the next line
//! re-creates with half its history. `message_status.in_flight` is the same test.
//!
//! **Families**: an old message is also kept while its parent or one of its children
//! (notification, content-filter re-injection, forwarding) is in flight, so a live
//! message's timeline keeps its links; it goes in a later purge. A kept message's old
//! parent may go, which leaves its `parent_queue_id` pointing at no row.
//!
//! **Locks**: each batch is one statement (one transaction) that locks at most `batch`
//! message rows with `FOR UPDATE SKIP LOCKED`, deletes their recipient rows by key (no
//! foreign key does it) and then the messages. Rows a writer holds are skipped (and
//! counted as kept), and a writer waits at most for one batch: no long locks on a live
//! database.
//!
//! **Whole months first** (migration V14): a monthly partition entirely older than
//! the limit, holding nothing in flight and no family of something in flight, is
//! dropped whole — instant, and without the dead rows a `DELETE` leaves behind. What
//! remains old (the month at the edge, a month holding something still in flight, the
//! legacy partition of a converted database until all of it is old) is purged row by
//! row as follows. See `partition`.
//!
//! **Order**: the old range is worked through one UTC day at a time, through the
//! `utc_day()` indexes of migration V2 (the time indexes of V1 are BRIN, which cannot
//! hand out "the next few thousand rows"), so a batch reads about `batch` rows whether
//! the table holds a thousand or a hundred million.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::{Store, StoreError};

/// Messages deleted per transaction: large enough to amortise round trips, small
/// enough that a batch holds its row locks for well under a second.
pub const PURGE_BATCH_MESSAGES: usize = 5_000;

/// NOQUEUE rows deleted per transaction, relative to the message batch: a NOQUEUE row
/// is one row, a message is about three (itself and its recipients).
pub const NOQUEUE_ROWS_PER_MESSAGE: usize = 3;

/// Times a batch is retried after a transient error (deadlock, lost connection).
const BATCH_RETRIES: u32 = 5;

/// Wait before retrying a batch; doubled each time.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// What a purge deleted and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Message rows (`delivery_from`) deleted.
    pub messages: u64,
    /// Recipient rows (`delivery_to`) deleted.
    pub recipients: u64,
    /// Rows of the attempt history (`delivery_attempt`) deleted.
    pub attempts: u64,
    /// NOQUEUE rows deleted.
    pub noqueue: u64,
    /// SASL authentication failures (`auth_failure`) deleted.
    pub auth_failures: u64,
    /// Old messages kept because they or their family are in flight (or a writer held
    /// them during the purge).
    pub kept: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Monthly partitions dropped whole (tables: a month of messages is three).
    pub partitions_dropped: u64,
    /// Rows those partitions held, as the planner's statistics estimate them (they
    /// are not counted: counting would read what dropping avoids reading).
    pub partition_rows_estimate: u64,
}

impl PurgeCounts {
    /// All rows deleted.
    pub fn rows(&self) -> u64 {
        self.messages + self.recipients + self.attempts + self.noqueue + self.auth_failures
    }
}

/// One batch of messages. `candidates`: up to `$3` old messages of the UTC day `$4`,
/// from the `utc_day(arrived_at)` index. `victims`: those not in flight and without an
/// in-flight parent or child, locked (rows a writer holds are skipped). Their
/// recipients are deleted by key, then they. Returns the message and recipient rows
/// deleted and the number of candidates (fewer than `$3`: the day is done).
const PURGE_MESSAGES_SQL: &str = "\
WITH candidates AS MATERIALIZED (
    SELECT queue_id, host, arrived_at
    FROM delivery_from
    WHERE utc_day(arrived_at) = $4 AND arrived_at < $1
    LIMIT $3
), victims AS (
    SELECT f.queue_id, f.host, f.arrived_at
    FROM candidates k
    JOIN delivery_from f
      ON f.queue_id = k.queue_id AND f.host = k.host AND f.arrived_at = k.arrived_at
    WHERE NOT (f.removed_at IS NULL AND f.rejected_at IS NULL AND f.last_seen_at >= $2)
      AND NOT EXISTS (
          SELECT 1 FROM delivery_from p
          WHERE f.parent_queue_id IS NOT NULL
            AND p.queue_id = f.parent_queue_id AND p.host = f.host
            AND p.arrived_at = f.parent_arrived_at
            AND p.removed_at IS NULL AND p.rejected_at IS NULL AND p.last_seen_at >= $2)
      AND NOT EXISTS (
          SELECT 1 FROM delivery_from c
          WHERE c.host = f.host AND c.parent_queue_id = f.queue_id
            AND c.parent_arrived_at = f.arrived_at
            AND c.removed_at IS NULL AND c.rejected_at IS NULL AND c.last_seen_at >= $2)
    FOR UPDATE OF f SKIP LOCKED
), gone_attempts AS (
    DELETE FROM delivery_attempt a USING victims v
    WHERE a.arrived_at = v.arrived_at AND a.host = v.host AND a.queue_id = v.queue_id
    RETURNING 1
), gone_to AS (
    DELETE FROM delivery_to t USING victims v
    WHERE t.queue_id = v.queue_id AND t.host = v.host AND t.arrived_at = v.arrived_at
    RETURNING 1
), gone_from AS (
    DELETE FROM delivery_from f USING victims v
    WHERE f.queue_id = v.queue_id AND f.host = v.host AND f.arrived_at = v.arrived_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone_from), (SELECT count(*) FROM gone_to),
       (SELECT count(*) FROM candidates), (SELECT count(*) FROM gone_attempts)";

/// The next UTC day after `$1`, up to `$2`, on which a message arrived.
const NEXT_MESSAGE_DAY_SQL: &str = "\
SELECT min(utc_day(arrived_at)) FROM delivery_from
WHERE utc_day(arrived_at) > $1 AND utc_day(arrived_at) <= $2";

/// One batch of NOQUEUE rows of the UTC day `$3` logged before `$1`, at most `$2`, by
/// physical row address (a TID scan: no second index walk). The rows are locked
/// first, so their addresses cannot change before the delete. Returns the rows deleted.
///
/// A row address is only unique within one partition: the delete is restricted to the
/// day's time range (one UTC day lies in one monthly partition, so that is the one
/// partition the victims came from) and the victims' own condition.
const PURGE_NOQUEUE_SQL: &str = "\
WITH victims AS MATERIALIZED (
    SELECT ctid FROM noqueue
    WHERE utc_day(logged_at) = $3 AND logged_at < $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM noqueue
    WHERE logged_at >= $3::timestamp AT TIME ZONE 'UTC'
      AND logged_at < ($3 + 1)::timestamp AT TIME ZONE 'UTC'
      AND utc_day(logged_at) = $3 AND logged_at < $1
      AND ctid = ANY (ARRAY(SELECT ctid FROM victims))
    RETURNING 1
)
SELECT count(*) FROM gone";

/// The next UTC day after `$1`, up to `$2`, with NOQUEUE rows.
const NEXT_NOQUEUE_DAY_SQL: &str = "\
SELECT min(utc_day(logged_at)) FROM noqueue
WHERE utc_day(logged_at) > $1 AND utc_day(logged_at) <= $2";

/// [`PURGE_NOQUEUE_SQL`] for SASL failures.
const PURGE_AUTH_SQL: &str = "\
WITH victims AS MATERIALIZED (
    SELECT ctid FROM auth_failure
    WHERE utc_day(logged_at) = $3 AND logged_at < $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM auth_failure
    WHERE logged_at >= $3::timestamp AT TIME ZONE 'UTC'
      AND logged_at < ($3 + 1)::timestamp AT TIME ZONE 'UTC'
      AND utc_day(logged_at) = $3 AND logged_at < $1
      AND ctid = ANY (ARRAY(SELECT ctid FROM victims))
    RETURNING 1
)
SELECT count(*) FROM gone";

/// The next UTC day after `$1`, up to `$2`, with SASL failures.
const NEXT_AUTH_DAY_SQL: &str = "\
SELECT min(utc_day(logged_at)) FROM auth_failure
WHERE utc_day(logged_at) > $1 AND utc_day(logged_at) <= $2";

/// Planner settings of a purge transaction. Every access in it is either the next few
/// thousand rows in index order (by arrival or logging time) or a lookup by primary
/// key: index scans and nested loops are always right, and they make a batch cost the
/// same on a table of a thousand rows and of a hundred million. Left to itself, the
/// planner may sort every old row to find the oldest few thousand, or hash-join a
/// whole table, once per batch.
const BATCH_SETTINGS: &str = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
     SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off";

/// Old messages still present after a purge.
const KEPT_SQL: &str = "SELECT count(*) FROM delivery_from WHERE arrived_at < $1";

/// Before the first day with rows (no Postfix log is older).
const BEFORE_ALL: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Delete rows older than `older_than` in transactions of at most `batch` messages
/// (and `batch × NOQUEUE_ROWS_PER_MESSAGE` NOQUEUE rows); see the module doc for what
/// is kept.
pub async fn purge(
    store: &Store,
    older_than: TimeDelta,
    batch: usize,
) -> Result<PurgeCounts, StoreError> {
    purge_with_progress(store, older_than, batch, |_| {}).await
}

/// Like [`purge`], calling `progress` with the running totals after each batch.
pub async fn purge_with_progress(
    store: &Store,
    older_than: TimeDelta,
    batch: usize,
    mut progress: impl FnMut(&PurgeCounts),
) -> Result<PurgeCounts, StoreError> {
    let batch = batch.max(1);
    let (cutoff, seen_since) = {
        let client = store.client().await?;
        let row = client
            .query_one("SELECT now()", &[])
            .await
            .map_err(|e| StoreError::query("reading the database clock", e))?;
        let now: DateTime<Utc> = row.get(0);
        // The limits are fixed once, so every batch purges by the same rule.
        (
            now.checked_sub_signed(older_than)
                .unwrap_or(DateTime::UNIX_EPOCH),
            now - pftrack_extract::MAX_MESSAGE_IDLE,
        )
    };
    let last_day = cutoff.date_naive();
    let mut counts = PurgeCounts::default();

    let drops = store.drop_old_partitions(cutoff, seen_since).await?;
    if !drops.dropped.is_empty() {
        tracing::info!(
            "dropped {} monthly partition(s) whole (about {} rows): {}",
            drops.dropped.len(),
            drops.estimated_rows,
            drops.dropped.join(", ")
        );
    }
    if !drops.kept.is_empty() {
        tracing::info!(
            "kept {} old month(s) holding messages still in flight (or their families); \
             their old rows are purged one by one: {}",
            drops.kept.len(),
            drops.kept.join(", ")
        );
    }
    counts.partitions_dropped = drops.dropped.len() as u64;
    counts.partition_rows_estimate = drops.estimated_rows;
    progress(&counts);

    let message_limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut day = BEFORE_ALL;
    while let Some(d) = next_day(store, NEXT_MESSAGE_DAY_SQL, day, last_day).await? {
        day = d;
        loop {
            let row = with_retries(store, "purging messages", move |client| {
                Box::pin(async move {
                    let tx = client.transaction().await?;
                    tx.batch_execute(BATCH_SETTINGS).await?;
                    // Not prepared: each batch is planned with its own values.
                    let row = tx
                        .query_one(
                            PURGE_MESSAGES_SQL,
                            &[&cutoff, &seen_since, &message_limit, &day],
                        )
                        .await?;
                    tx.commit().await?;
                    Ok(row)
                })
            })
            .await?;
            let (messages, recipients, candidates, attempts): (i64, i64, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            counts.messages += messages as u64;
            counts.recipients += recipients as u64;
            counts.attempts += attempts as u64;
            counts.batches += 1;
            progress(&counts);
            // Fewer candidates than asked for: the day is done. A full batch of
            // nothing but kept messages would come back unchanged: give up the day.
            if candidates < message_limit || messages == 0 {
                break;
            }
        }
    }

    let row_limit =
        i64::try_from(batch.saturating_mul(NOQUEUE_ROWS_PER_MESSAGE)).unwrap_or(i64::MAX);
    // Rows that stand alone (no message, no family): by day, in batches.
    let tables: [(&'static str, &'static str, &'static str); 2] = [
        (
            NEXT_NOQUEUE_DAY_SQL,
            PURGE_NOQUEUE_SQL,
            "purging NOQUEUE rows",
        ),
        (NEXT_AUTH_DAY_SQL, PURGE_AUTH_SQL, "purging SASL failures"),
    ];
    for (i, (next_sql, purge_sql, what)) in tables.into_iter().enumerate() {
        let mut day = BEFORE_ALL;
        while let Some(d) = next_day(store, next_sql, day, last_day).await? {
            day = d;
            loop {
                let deleted: i64 = with_retries(store, what, move |client| {
                    Box::pin(async move {
                        let tx = client.transaction().await?;
                        tx.batch_execute(BATCH_SETTINGS).await?;
                        let row = tx
                            .query_one(purge_sql, &[&cutoff, &row_limit, &day])
                            .await?;
                        tx.commit().await?;
                        Ok(row.get(0))
                    })
                })
                .await?;
                if i == 0 {
                    counts.noqueue += deleted as u64;
                } else {
                    counts.auth_failures += deleted as u64;
                }
                counts.batches += 1;
                progress(&counts);
                if deleted < row_limit {
                    break;
                }
            }
        }
    }
    let client = store.client().await?;
    let kept: i64 = client
        .query_one(KEPT_SQL, &[&cutoff])
        .await
        .map_err(|e| StoreError::query("counting kept messages", e))?
        .get(0);
    counts.kept = kept as u64;
    Ok(counts)
}

/// The first day after `after`, up to `last`, on which the table of `sql` has rows.
async fn next_day(
    store: &Store,
    sql: &'static str,
    after: NaiveDate,
    last: NaiveDate,
) -> Result<Option<NaiveDate>, StoreError> {
    with_retries(store, "finding the next day to purge", move |client| {
        Box::pin(async move {
            let row = client.query_one(sql, &[&after, &last]).await?;
            Ok(row.get(0))
        })
    })
    .await
}

type BatchFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// Run one batch transaction, retrying transient failures (a deadlock with a writer, a
/// dropped connection) a few times with a growing pause.
async fn with_retries<T>(
    store: &Store,
    what: &'static str,
    mut f: impl for<'c> FnMut(&'c mut deadpool_postgres::Client) -> BatchFuture<'c, T>,
) -> Result<T, StoreError> {
    let mut wait = RETRY_BACKOFF;
    let mut attempt = 0;
    loop {
        let result = match store.client().await {
            Ok(mut client) => f(&mut client).await.map_err(|e| StoreError::query(what, e)),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < BATCH_RETRIES => {
                attempt += 1;
                tracing::warn!("{e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_idle_limit_matches_the_view() {
        // message_status.in_flight (migration V2) hard-codes 7 days; a change of the
        // extractor's limit needs a migration redefining the view.
        assert_eq!(pftrack_extract::MAX_MESSAGE_IDLE, TimeDelta::days(7));
        let v2 = include_str!("../../../migrations/V2__query_views.sql");
        assert!(v2.contains("f.last_seen_at >= now() - interval '7 days'"));
    }

    #[test]
    fn counts_add_up() {
        let c = PurgeCounts {
            messages: 2,
            recipients: 3,
            attempts: 5,
            noqueue: 4,
            auth_failures: 6,
            kept: 1,
            batches: 2,
            partitions_dropped: 3,
            partition_rows_estimate: 100,
        };
        assert_eq!(c.rows(), 20);
    }
}
