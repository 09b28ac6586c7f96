//! `pftrack reclassify`: the current rules re-applied to the failures already stored.
//!
//! Three tables carry a verdict (`failure_reason`, `hard`, `failure_rule`, migration
//! V5): `delivery_attempt` (one per failed attempt), `delivery_to` (the verdict of its
//! latest event) and `noqueue`. Each is walked in primary key order, one page at a time
//! (keyset pagination: the page after the last key seen, never `OFFSET`, so every page
//! costs the same however far the walk has got). A page is read without locks,
//! classified here with the same helpers the load uses (`encode::recipient_verdict`,
//! `encode::noqueue_verdict`), so a stored row gets exactly the verdict a fresh load
//! would give it, and only the rows whose verdict differs are written, in one
//! `UPDATE … FROM unnest(…)` statement with bound arrays: its own short transaction.
//!
//! Loaders keep running meanwhile. The update is a compare-and-set: a row is written
//! only if it still holds what was read (the old verdict and, for `delivery_to`, the
//! event it was classified from), and rows another transaction has locked are skipped
//! (`FOR UPDATE SKIP LOCKED`) instead of waited for. So reclassify never waits for a
//! loader's batch, a loader waits at most for one reclassify statement, the two
//! cannot deadlock, and a row a loader changed in between is never overwritten with a
//! verdict on its old contents. Skipped rows are counted; the loader writes its own
//! verdict on them, and running reclassify again picks up any left behind. Running it
//! twice changes nothing the second time: it is idempotent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pftrack_classify::{Classifier, Verdict};
use pftrack_extract::RecipientStatus;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::encode::{noqueue_verdict, recipient_verdict};
use crate::{Store, StoreError};

/// Rows read and classified per page when the caller does not say.
pub const DEFAULT_RECLASSIFY_BATCH: usize = 5_000;

/// The largest page: bounds the memory of one page and the duration of one update
/// statement (its row locks are held until it ends).
pub const MAX_RECLASSIFY_BATCH: usize = 100_000;

/// Every recipient status, to read a stored status word back.
const ALL_STATUSES: [RecipientStatus; 7] = [
    RecipientStatus::Sent,
    RecipientStatus::Deferred,
    RecipientStatus::Bounced,
    RecipientStatus::Expired,
    RecipientStatus::Rejected,
    RecipientStatus::Discarded,
    RecipientStatus::Deleted,
];

/// The statuses the load classifies (`recipient_verdict` gives them a verdict, the
/// others none; a unit test keeps the two in step). Only rows with these are read.
const FAILURE_STATUSES: [&str; 4] = ["deferred", "bounced", "expired", "rejected"];

/// A table whose stored failures are reclassified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReclassifyTable {
    /// `delivery_attempt`: every failed attempt.
    Attempts,
    /// `delivery_to`: the latest event of each recipient.
    Recipients,
    /// `noqueue`: rejects before a queue file existed.
    Noqueue,
}

impl ReclassifyTable {
    /// Every table, in the order `pftrack reclassify` walks them.
    pub const ALL: [ReclassifyTable; 3] = [
        ReclassifyTable::Attempts,
        ReclassifyTable::Recipients,
        ReclassifyTable::Noqueue,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            ReclassifyTable::Attempts => "delivery_attempt",
            ReclassifyTable::Recipients => "delivery_to",
            ReclassifyTable::Noqueue => "noqueue",
        }
    }
}

/// Where the walk of one table has got to: the primary key of the last row read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReclassifyCursor(Key);

/// A primary key of one of the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Attempt {
        arrived_at: DateTime<Utc>,
        host: String,
        queue_id: String,
        recipient: String,
        orig_recipient: String,
        attempt_at: DateTime<Utc>,
        status: String,
    },
    Recipient {
        arrived_at: DateTime<Utc>,
        host: String,
        queue_id: String,
        recipient: String,
        orig_recipient: String,
    },
    Noqueue {
        host: String,
        logged_at: DateTime<Utc>,
        fingerprint: i64,
    },
}

/// What to reclassify and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReclassifyOptions {
    /// Only failures at or after this time (attempt time, the recipient's status time,
    /// the NOQUEUE log time); all when `None`.
    pub since: Option<DateTime<Utc>>,
    /// Rows per page, 1 to [`MAX_RECLASSIFY_BATCH`] (clamped).
    pub batch: usize,
    /// Count what would change, write nothing.
    pub dry_run: bool,
}

impl Default for ReclassifyOptions {
    fn default() -> Self {
        ReclassifyOptions {
            since: None,
            batch: DEFAULT_RECLASSIFY_BATCH,
            dry_run: false,
        }
    }
}

/// A change of reason (a change of hard/soft or rule alone has the same old and new).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonChange {
    /// The stored reason (`None`: none was stored).
    pub old: Option<String>,
    /// The reason now.
    pub new: Option<String>,
}

/// What one page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclassifyPage {
    /// Rows read and classified.
    pub examined: u64,
    /// Rows whose stored verdict differs from the current one.
    pub differing: u64,
    /// Rows written (0 in a dry run). Fewer than `differing` when a loader held or
    /// changed some meanwhile: those are left to the loader, or to the next run.
    pub changed: u64,
    /// Per reason change, the rows written (in a dry run: the rows that differ).
    pub changes: HashMap<ReasonChange, u64>,
    /// Where the next page starts; `None` when the table is done.
    pub next: Option<ReclassifyCursor>,
}

/// A verdict as stored: failure_reason, hard, failure_rule.
type Stored = (Option<String>, Option<bool>, Option<String>);

/// One row read: its key, what it stores, what it should store, and (for
/// `delivery_to`) the event it was classified from, for the compare-and-set.
struct Candidate {
    key: Key,
    old: Stored,
    new: Stored,
    event: Option<Event>,
}

/// The columns of a `delivery_to` row its verdict is computed from.
struct Event {
    status: String,
    status_at: DateTime<Utc>,
    dsn: Option<String>,
    relay: Option<String>,
    response: Option<String>,
}

/// The first page of failed attempts. With `--since`, the walk starts at the earliest
/// arrival among the rows wanted (found through the BRIN index on `attempt_at`), not
/// at the start of the key: the later pages follow from there.
const ATTEMPTS_FIRST: &str = "\
SELECT arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status, dsn, relay,
    response, failure_reason, hard, failure_rule
FROM delivery_attempt
WHERE status = ANY($1::text[]) AND ($2::timestamptz IS NULL OR attempt_at >= $2)
  AND ($2::timestamptz IS NULL OR arrived_at >= (
    SELECT min(arrived_at) FROM delivery_attempt
    WHERE status = ANY($1::text[]) AND attempt_at >= $2))
ORDER BY arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status
LIMIT $3";

const ATTEMPTS_AFTER: &str = "\
SELECT arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status, dsn, relay,
    response, failure_reason, hard, failure_rule
FROM delivery_attempt
WHERE status = ANY($1::text[]) AND ($2::timestamptz IS NULL OR attempt_at >= $2)
  AND (arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status)
    > ($4, $5, $6, $7, $8, $9, $10)
ORDER BY arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status
LIMIT $3";

/// The first page of failed recipients; with `--since`, from the earliest arrival among
/// the rows wanted, like [`ATTEMPTS_FIRST`].
const RECIPIENTS_FIRST: &str = "\
SELECT arrived_at, host, queue_id, recipient, orig_recipient, status, status_at, dsn, relay,
    response, failure_reason, hard, failure_rule
FROM delivery_to
WHERE status = ANY($1::text[]) AND ($2::timestamptz IS NULL OR status_at >= $2)
  AND ($2::timestamptz IS NULL OR arrived_at >= (
    SELECT min(arrived_at) FROM delivery_to
    WHERE status = ANY($1::text[]) AND status_at >= $2))
ORDER BY arrived_at, host, queue_id, recipient, orig_recipient
LIMIT $3";

const RECIPIENTS_AFTER: &str = "\
SELECT arrived_at, host, queue_id, recipient, orig_recipient, status, status_at, dsn, relay,
    response, failure_reason, hard, failure_rule
FROM delivery_to
WHERE status = ANY($1::text[]) AND ($2::timestamptz IS NULL OR status_at >= $2)
  AND (arrived_at, host, queue_id, recipient, orig_recipient) > ($4, $5, $6, $7, $8)
ORDER BY arrived_at, host, queue_id, recipient, orig_recipient
LIMIT $3";

const NOQUEUE_FIRST: &str = "\
SELECT host, logged_at, fingerprint, dsn, code, reason, failure_reason, hard, failure_rule
FROM noqueue
WHERE ($1::timestamptz IS NULL OR logged_at >= $1)
ORDER BY host, logged_at, fingerprint
LIMIT $2";

const NOQUEUE_AFTER: &str = "\
SELECT host, logged_at, fingerprint, dsn, code, reason, failure_reason, hard, failure_rule
FROM noqueue
WHERE ($1::timestamptz IS NULL OR logged_at >= $1)
  AND (host, logged_at, fingerprint) > ($3, $4, $5)
ORDER BY host, logged_at, fingerprint
LIMIT $2";

/// Writes the new verdicts of attempts whose stored verdict is still the one read,
/// skipping rows a loader holds; returns the old and new reason of each row written.
const ATTEMPTS_UPDATE: &str = "\
WITH v AS (
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::timestamptz[], $7::text[], $8::text[], $9::boolean[], $10::text[], $11::text[],
        $12::boolean[], $13::text[])
        AS v(arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status,
            old_reason, old_hard, old_rule, new_reason, new_hard, new_rule)
), locked AS (
    SELECT t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient, t.attempt_at,
        t.status, v.old_reason, v.new_reason, v.new_hard, v.new_rule
    FROM delivery_attempt t
    JOIN v ON (t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient, t.attempt_at,
        t.status) = (v.arrived_at, v.host, v.queue_id, v.recipient, v.orig_recipient,
        v.attempt_at, v.status)
    WHERE t.failure_reason IS NOT DISTINCT FROM v.old_reason
      AND t.hard IS NOT DISTINCT FROM v.old_hard
      AND t.failure_rule IS NOT DISTINCT FROM v.old_rule
    ORDER BY t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient, t.attempt_at,
        t.status
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE delivery_attempt t
SET failure_reason = l.new_reason, hard = l.new_hard, failure_rule = l.new_rule
FROM locked l
WHERE (t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient, t.attempt_at, t.status)
    = (l.arrived_at, l.host, l.queue_id, l.recipient, l.orig_recipient, l.attempt_at, l.status)
RETURNING l.old_reason, l.new_reason";

/// Like [`ATTEMPTS_UPDATE`] for recipients, which a loader may also move on to a later
/// event: the event read must still be the row's.
const RECIPIENTS_UPDATE: &str = "\
WITH v AS (
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[],
        $12::boolean[], $13::text[], $14::text[], $15::boolean[], $16::text[])
        AS v(arrived_at, host, queue_id, recipient, orig_recipient, status, status_at, dsn,
            relay, response, old_reason, old_hard, old_rule, new_reason, new_hard, new_rule)
), locked AS (
    SELECT t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient, v.old_reason,
        v.new_reason, v.new_hard, v.new_rule
    FROM delivery_to t
    JOIN v ON (t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient)
        = (v.arrived_at, v.host, v.queue_id, v.recipient, v.orig_recipient)
    WHERE t.status = v.status AND t.status_at = v.status_at
      AND t.dsn IS NOT DISTINCT FROM v.dsn
      AND t.relay IS NOT DISTINCT FROM v.relay
      AND t.response IS NOT DISTINCT FROM v.response
      AND t.failure_reason IS NOT DISTINCT FROM v.old_reason
      AND t.hard IS NOT DISTINCT FROM v.old_hard
      AND t.failure_rule IS NOT DISTINCT FROM v.old_rule
    ORDER BY t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE delivery_to t
SET failure_reason = l.new_reason, hard = l.new_hard, failure_rule = l.new_rule
FROM locked l
WHERE (t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient)
    = (l.arrived_at, l.host, l.queue_id, l.recipient, l.orig_recipient)
RETURNING l.old_reason, l.new_reason";

/// Like [`ATTEMPTS_UPDATE`] for NOQUEUE rows (what they are classified from is part of
/// their fingerprint: it cannot change).
const NOQUEUE_UPDATE: &str = "\
WITH v AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[],
        $5::boolean[], $6::text[], $7::text[], $8::boolean[], $9::text[])
        AS v(host, logged_at, fingerprint, old_reason, old_hard, old_rule, new_reason,
            new_hard, new_rule)
), locked AS (
    SELECT t.host, t.logged_at, t.fingerprint, v.old_reason, v.new_reason, v.new_hard,
        v.new_rule
    FROM noqueue t
    JOIN v ON (t.host, t.logged_at, t.fingerprint) = (v.host, v.logged_at, v.fingerprint)
    WHERE t.failure_reason IS NOT DISTINCT FROM v.old_reason
      AND t.hard IS NOT DISTINCT FROM v.old_hard
      AND t.failure_rule IS NOT DISTINCT FROM v.old_rule
    ORDER BY t.host, t.logged_at, t.fingerprint
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE noqueue t
SET failure_reason = l.new_reason, hard = l.new_hard, failure_rule = l.new_rule
FROM locked l
WHERE (t.host, t.logged_at, t.fingerprint) = (l.host, l.logged_at, l.fingerprint)
RETURNING l.old_reason, l.new_reason";

/// A verdict as its three columns.
fn stored(verdict: Option<&Verdict>) -> Stored {
    (
        verdict.map(|v| v.reason.as_str().to_owned()),
        verdict.and_then(|v| v.hard),
        verdict.map(|v| v.rule.as_str().to_owned()),
    )
}

fn stored_of(row: &Row, first: usize) -> Stored {
    (row.get(first), row.get(first + 1), row.get(first + 2))
}

fn status_of(word: &str) -> Option<RecipientStatus> {
    ALL_STATUSES.into_iter().find(|s| s.as_str() == word)
}

impl Store {
    /// Reclassify one page of `table`: the `options.batch` rows after `after` (from the
    /// start when `None`) are read and classified with `classifier`, and those whose
    /// stored verdict differs are updated (unless `options.dry_run`) in one statement.
    /// Call again with the returned `next` until it is `None`.
    pub async fn reclassify_page(
        &self,
        table: ReclassifyTable,
        classifier: &Classifier,
        options: &ReclassifyOptions,
        after: Option<&ReclassifyCursor>,
    ) -> Result<ReclassifyPage, StoreError> {
        let batch = options.batch.clamp(1, MAX_RECLASSIFY_BATCH);
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let candidates = read_page(&client, table, classifier, options, limit, after).await?;
        let mut page = ReclassifyPage {
            examined: candidates.len() as u64,
            next: if candidates.len() == batch {
                candidates.last().map(|c| ReclassifyCursor(c.key.clone()))
            } else {
                None
            },
            ..ReclassifyPage::default()
        };
        let differing: Vec<&Candidate> = candidates.iter().filter(|c| c.old != c.new).collect();
        page.differing = differing.len() as u64;
        if differing.is_empty() {
            return Ok(page);
        }
        if options.dry_run {
            for c in &differing {
                *page
                    .changes
                    .entry(ReasonChange {
                        old: c.old.0.clone(),
                        new: c.new.0.clone(),
                    })
                    .or_default() += 1;
            }
            return Ok(page);
        }
        let rows = write_page(&client, table, &differing).await?;
        page.changed = rows.len() as u64;
        for r in rows {
            *page
                .changes
                .entry(ReasonChange {
                    old: r.get(0),
                    new: r.get(1),
                })
                .or_default() += 1;
        }
        Ok(page)
    }
}

/// Read and classify one page.
async fn read_page(
    client: &deadpool_postgres::Object,
    table: ReclassifyTable,
    classifier: &Classifier,
    options: &ReclassifyOptions,
    limit: i64,
    after: Option<&ReclassifyCursor>,
) -> Result<Vec<Candidate>, StoreError> {
    let statuses: Vec<&str> = FAILURE_STATUSES.to_vec();
    let since = options.since;
    let rows = match (table, after.map(|c| &c.0)) {
        (ReclassifyTable::Attempts, None) => {
            client
                .query(ATTEMPTS_FIRST, &[&statuses, &since, &limit])
                .await
        }
        (
            ReclassifyTable::Attempts,
            Some(Key::Attempt {
                arrived_at,
                host,
                queue_id,
                recipient,
                orig_recipient,
                attempt_at,
                status,
            }),
        ) => {
            client
                .query(
                    ATTEMPTS_AFTER,
                    &[
                        &statuses,
                        &since,
                        &limit,
                        arrived_at,
                        host,
                        queue_id,
                        recipient,
                        orig_recipient,
                        attempt_at,
                        status,
                    ],
                )
                .await
        }
        (ReclassifyTable::Recipients, None) => {
            client
                .query(RECIPIENTS_FIRST, &[&statuses, &since, &limit])
                .await
        }
        (
            ReclassifyTable::Recipients,
            Some(Key::Recipient {
                arrived_at,
                host,
                queue_id,
                recipient,
                orig_recipient,
            }),
        ) => {
            client
                .query(
                    RECIPIENTS_AFTER,
                    &[
                        &statuses,
                        &since,
                        &limit,
                        arrived_at,
                        host,
                        queue_id,
                        recipient,
                        orig_recipient,
                    ],
                )
                .await
        }
        (ReclassifyTable::Noqueue, None) => client.query(NOQUEUE_FIRST, &[&since, &limit]).await,
        (
            ReclassifyTable::Noqueue,
            Some(Key::Noqueue {
                host,
                logged_at,
                fingerprint,
            }),
        ) => {
            client
                .query(
                    NOQUEUE_AFTER,
                    &[&since, &limit, host, logged_at, fingerprint],
                )
                .await
        }
        // A cursor of another table: nothing after it in this one.
        (_, Some(_)) => return Ok(Vec::new()),
    }
    .map_err(|e| StoreError::query("reading stored failures to reclassify", e))?;

    let mut scratch = Vec::new();
    Ok(match table {
        ReclassifyTable::Attempts => rows
            .iter()
            .map(|r| {
                let status: String = r.get(6);
                let new = status_of(&status).and_then(|s| {
                    recipient_verdict(classifier, &mut scratch, s, r.get(7), r.get(9), r.get(8))
                });
                Candidate {
                    key: Key::Attempt {
                        arrived_at: r.get(0),
                        host: r.get(1),
                        queue_id: r.get(2),
                        recipient: r.get(3),
                        orig_recipient: r.get(4),
                        attempt_at: r.get(5),
                        status,
                    },
                    old: stored_of(r, 10),
                    new: stored(new.as_ref()),
                    event: None,
                }
            })
            .collect(),
        ReclassifyTable::Recipients => rows
            .iter()
            .map(|r| {
                let event = Event {
                    status: r.get(5),
                    status_at: r.get(6),
                    dsn: r.get(7),
                    relay: r.get(8),
                    response: r.get(9),
                };
                let new = status_of(&event.status).and_then(|s| {
                    recipient_verdict(
                        classifier,
                        &mut scratch,
                        s,
                        event.dsn.as_deref(),
                        event.response.as_deref(),
                        event.relay.as_deref(),
                    )
                });
                Candidate {
                    key: Key::Recipient {
                        arrived_at: r.get(0),
                        host: r.get(1),
                        queue_id: r.get(2),
                        recipient: r.get(3),
                        orig_recipient: r.get(4),
                    },
                    old: stored_of(r, 10),
                    new: stored(new.as_ref()),
                    event: Some(event),
                }
            })
            .collect(),
        ReclassifyTable::Noqueue => rows
            .iter()
            .map(|r| {
                let reason: String = r.get(5);
                let new = noqueue_verdict(classifier, &mut scratch, r.get(3), r.get(4), &reason);
                Candidate {
                    key: Key::Noqueue {
                        host: r.get(0),
                        logged_at: r.get(1),
                        fingerprint: r.get(2),
                    },
                    old: stored_of(r, 6),
                    new: stored(Some(&new)),
                    event: None,
                }
            })
            .collect(),
    })
}

/// Columns of the rows to write, as arrays for `unnest`.
#[derive(Default)]
struct Columns<'a> {
    arrived_at: Vec<DateTime<Utc>>,
    host: Vec<&'a str>,
    queue_id: Vec<&'a str>,
    recipient: Vec<&'a str>,
    orig_recipient: Vec<&'a str>,
    at: Vec<DateTime<Utc>>,
    status: Vec<&'a str>,
    fingerprint: Vec<i64>,
    dsn: Vec<Option<&'a str>>,
    relay: Vec<Option<&'a str>>,
    response: Vec<Option<&'a str>>,
    old_reason: Vec<Option<&'a str>>,
    old_hard: Vec<Option<bool>>,
    old_rule: Vec<Option<&'a str>>,
    new_reason: Vec<Option<&'a str>>,
    new_hard: Vec<Option<bool>>,
    new_rule: Vec<Option<&'a str>>,
}

/// Update the rows of `differing` in one statement; the rows it returns hold the old
/// and new reason of each row written.
async fn write_page(
    client: &deadpool_postgres::Object,
    table: ReclassifyTable,
    differing: &[&Candidate],
) -> Result<Vec<Row>, StoreError> {
    let mut c = Columns::default();
    for d in differing {
        match &d.key {
            Key::Attempt {
                arrived_at,
                host,
                queue_id,
                recipient,
                orig_recipient,
                attempt_at,
                status,
            } => {
                c.arrived_at.push(*arrived_at);
                c.host.push(host);
                c.queue_id.push(queue_id);
                c.recipient.push(recipient);
                c.orig_recipient.push(orig_recipient);
                c.at.push(*attempt_at);
                c.status.push(status);
            }
            Key::Recipient {
                arrived_at,
                host,
                queue_id,
                recipient,
                orig_recipient,
            } => {
                c.arrived_at.push(*arrived_at);
                c.host.push(host);
                c.queue_id.push(queue_id);
                c.recipient.push(recipient);
                c.orig_recipient.push(orig_recipient);
            }
            Key::Noqueue {
                host,
                logged_at,
                fingerprint,
            } => {
                c.host.push(host);
                c.at.push(*logged_at);
                c.fingerprint.push(*fingerprint);
            }
        }
        if let Some(e) = &d.event {
            c.status.push(&e.status);
            c.at.push(e.status_at);
            c.dsn.push(e.dsn.as_deref());
            c.relay.push(e.relay.as_deref());
            c.response.push(e.response.as_deref());
        }
        c.old_reason.push(d.old.0.as_deref());
        c.old_hard.push(d.old.1);
        c.old_rule.push(d.old.2.as_deref());
        c.new_reason.push(d.new.0.as_deref());
        c.new_hard.push(d.new.1);
        c.new_rule.push(d.new.2.as_deref());
    }
    let verdicts: [&(dyn ToSql + Sync); 6] = [
        &c.old_reason,
        &c.old_hard,
        &c.old_rule,
        &c.new_reason,
        &c.new_hard,
        &c.new_rule,
    ];
    let (sql, keys): (&str, Vec<&(dyn ToSql + Sync)>) = match table {
        ReclassifyTable::Attempts => (
            ATTEMPTS_UPDATE,
            vec![
                &c.arrived_at,
                &c.host,
                &c.queue_id,
                &c.recipient,
                &c.orig_recipient,
                &c.at,
                &c.status,
            ],
        ),
        ReclassifyTable::Recipients => (
            RECIPIENTS_UPDATE,
            vec![
                &c.arrived_at,
                &c.host,
                &c.queue_id,
                &c.recipient,
                &c.orig_recipient,
                &c.status,
                &c.at,
                &c.dsn,
                &c.relay,
                &c.response,
            ],
        ),
        ReclassifyTable::Noqueue => (NOQUEUE_UPDATE, vec![&c.host, &c.at, &c.fingerprint]),
    };
    let params: Vec<&(dyn ToSql + Sync)> = keys.into_iter().chain(verdicts).collect();
    client
        .query(sql, &params)
        .await
        .map_err(|e| StoreError::query("writing reclassified verdicts", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses read are exactly those the load gives a verdict.
    #[test]
    fn failure_statuses_are_the_classified_ones() {
        let classifier = Classifier::builder().build().unwrap();
        let mut scratch = Vec::new();
        for status in ALL_STATUSES {
            let classified =
                recipient_verdict(&classifier, &mut scratch, status, None, Some("x"), None)
                    .is_some();
            assert_eq!(
                classified,
                FAILURE_STATUSES.contains(&status.as_str()),
                "{}",
                status.as_str()
            );
            assert_eq!(status_of(status.as_str()), Some(status));
        }
    }

    #[test]
    fn tables_have_their_names() {
        let names: Vec<&str> = ReclassifyTable::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["delivery_attempt", "delivery_to", "noqueue"]);
    }
}
