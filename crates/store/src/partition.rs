//! Monthly partitions of the delivery tables, attempts, NOQUEUE rows and SASL failures
//! (migration V14): created before the rows that need them, and dropped whole when all
//! of a month is past retention.
//!
//! **Creating.** Every batch knows the UTC months its rows fall in
//! ([`MonthSet`], filled while encoding). Before the batch's transaction the loader asks
//! `pftrack_time_partitions()` for any month it has not seen yet in this process;
//! the function creates what is missing under an advisory lock, so loaders racing for
//! the same month find it done. Doing it outside the batch's transaction matters: the
//! lock the function takes on each parent would otherwise be held until the batch
//! commits, and two loaders each waiting for the other's parent would deadlock. The
//! months ahead (this one and the next [`MONTHS_AHEAD`]) are created on start and once
//! a day by the daemon, so a live loader never waits for DDL at midnight.
//!
//! **Dropping.** A month goes whole when its end is before the retention limit and
//! nothing in it is still needed — the same rule as the row purge (`purge`): none of
//! its messages is in flight, and no message in flight has a parent or child in it. A
//! month that fails the test stays and its old rows are purged row by row, keeping what
//! is in flight. The three delivery tables' partitions of a month are dropped in one
//! transaction, so a message never loses its recipients or attempts alone.
//!
//! This module does **not** decide retention (the caller passes the limits) and does
//! not move rows between partitions.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::{Store, StoreError};

/// Months created ahead of the current one (on start and daily), so the first batch
/// of a new month finds its partitions.
pub const MONTHS_AHEAD: u32 = 2;

/// How long dropping a partition may wait for its parent's lock. Dropping needs the
/// parent to itself for an instant; a request that waits also holds up every reader
/// and writer queued behind it, so after this the month is left for the next purge.
pub const PARTITION_DROP_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The partitioned tables whose rows belong to a message (dropped together).
const MESSAGE_TABLES: [&str; 3] = ["delivery_attempt", "delivery_to", "delivery_from"];

/// Tables whose rows stand alone (no message, no family): a month goes when it is old.
const STANDALONE_TABLES: [&str; 2] = ["noqueue", "auth_failure"];

/// A UTC month as a count of months since year 0 (so months order and compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    /// The UTC month `at` falls in.
    pub fn of(at: DateTime<Utc>) -> Month {
        Month(at.year() * 12 + at.month0() as i32)
    }

    /// The instant the month starts (UTC); `None` outside chrono's range.
    pub fn start(self) -> Option<DateTime<Utc>> {
        let year = self.0.div_euclid(12);
        let month0 = self.0.rem_euclid(12) as u32;
        Utc.with_ymd_and_hms(year, month0 + 1, 1, 0, 0, 0).single()
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }
}

/// The UTC months a batch's rows fall in. Rows come in long runs of one month, so the
/// last month noted is checked first and the set is touched once per run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthSet {
    months: BTreeSet<Month>,
    last: Option<Month>,
}

impl MonthSet {
    /// Note the month of `at`.
    pub fn note(&mut self, at: DateTime<Utc>) {
        let month = Month::of(at);
        if self.last != Some(month) {
            self.months.insert(month);
            self.last = Some(month);
        }
    }

    /// The months noted, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Month> + '_ {
        self.months.iter().copied()
    }

    /// Whether no month was noted.
    pub fn is_empty(&self) -> bool {
        self.months.is_empty()
    }
}

/// Months this process knows to have partitions (shared by the clones of a [`Store`]).
#[derive(Debug, Default)]
pub(crate) struct KnownMonths(Mutex<BTreeSet<Month>>);

impl KnownMonths {
    fn missing(&self, months: impl Iterator<Item = Month>) -> Vec<Month> {
        match self.0.lock() {
            Ok(known) => months.filter(|m| !known.contains(m)).collect(),
            Err(_) => months.collect(),
        }
    }

    fn add(&self, months: &[Month]) {
        if let Ok(mut known) = self.0.lock() {
            known.extend(months.iter().copied());
        }
    }

    /// Forget everything (a partition was dropped, by this process or another).
    pub(crate) fn clear(&self) {
        if let Ok(mut known) = self.0.lock() {
            known.clear();
        }
    }
}

/// One partition as `time_partition` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePartition {
    /// The partition's table name.
    pub name: String,
    /// The partitioned table it belongs to.
    pub parent: String,
    /// Where its range starts; `None`: from the beginning of time (the `_legacy`
    /// partition of a database converted by V14).
    pub from: Option<DateTime<Utc>>,
    /// Where its range ends (exclusive).
    pub until: DateTime<Utc>,
}

/// What dropping whole months did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionDrops {
    /// Partitions dropped (tables, not months).
    pub dropped: Vec<String>,
    /// Rows they held (from the planner's statistics, not counted: counting would read
    /// what dropping avoids reading).
    pub estimated_rows: u64,
    /// Months past the limit kept because something in them is still needed; their
    /// old rows are left to the row purge.
    pub kept: Vec<String>,
}

impl Store {
    /// Make sure every month of `months` has its partitions, creating what is missing.
    /// Cheap when this process has seen the months before (no round trip).
    pub async fn ensure_partitions(&self, months: &MonthSet) -> Result<usize, StoreError> {
        let missing = self.known_months.missing(months.iter());
        if missing.is_empty() {
            return Ok(0);
        }
        let starts: Vec<DateTime<Utc>> = missing.iter().filter_map(|m| m.start()).collect();
        let client = self.client().await?;
        let created: i32 = client
            .query_one("SELECT pftrack_time_partitions($1)", &[&starts])
            .await
            .map_err(|e| StoreError::query("creating monthly partitions", e))?
            .get(0);
        self.known_months.add(&missing);
        if created > 0 {
            tracing::info!(
                "created {created} monthly partition(s) for {}",
                describe_months(&missing)
            );
        }
        Ok(usize::try_from(created).unwrap_or(0))
    }

    /// Create the partitions of this month and the next [`MONTHS_AHEAD`] (by the
    /// database's clock). Run on start and daily.
    pub async fn ensure_partitions_ahead(&self) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let now: DateTime<Utc> = client
            .query_one("SELECT now()", &[])
            .await
            .map_err(|e| StoreError::query("reading the database clock", e))?
            .get(0);
        drop(client);
        let mut months = MonthSet::default();
        let mut month = Month::of(now);
        for _ in 0..=MONTHS_AHEAD {
            if let Some(start) = month.start() {
                months.note(start);
            }
            month = month.next();
        }
        self.ensure_partitions(&months).await
    }

    /// The partitions pftrack made, by parent and range.
    pub async fn time_partitions(&self) -> Result<Vec<TimePartition>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT partition, parent, from_at, until_at FROM time_partition
                 ORDER BY parent, until_at",
                &[],
            )
            .await
            .map_err(|e| StoreError::query("listing partitions", e))?;
        Ok(rows
            .iter()
            .map(|r| TimePartition {
                name: r.get(0),
                parent: r.get(1),
                from: r.get(2),
                until: r.get(3),
            })
            .collect())
    }

    /// Drop every partition whose whole range is before `cutoff` and that holds
    /// nothing still needed (see the module docs): in flight means not ended and seen
    /// at or after `seen_since`.
    pub(crate) async fn drop_old_partitions(
        &self,
        cutoff: DateTime<Utc>,
        seen_since: DateTime<Utc>,
    ) -> Result<PartitionDrops, StoreError> {
        let mut drops = PartitionDrops::default();
        let partitions = self.time_partitions().await?;
        let old = |table: &str| -> Vec<&TimePartition> {
            partitions
                .iter()
                .filter(|p| p.parent == table && p.until <= cutoff)
                .collect()
        };
        // Messages: by month of delivery_from; the other two tables' partitions of the
        // same range go with it.
        for month in old("delivery_from") {
            let needed = self
                .month_still_needed(&month.name, month.from, month.until, seen_since)
                .await?;
            if needed {
                drops.kept.push(month.name.clone());
                continue;
            }
            let same_range: Vec<&TimePartition> = MESSAGE_TABLES
                .iter()
                .filter_map(|t| {
                    partitions
                        .iter()
                        .find(|p| p.parent == *t && p.from == month.from && p.until == month.until)
                })
                .collect();
            // The three tables' partitions are made together with the same ranges; if
            // one is missing (made by hand?), dropping the others could leave
            // recipients without their message: leave the month to the row purge.
            if same_range.len() != MESSAGE_TABLES.len() {
                tracing::warn!(
                    "{} has no partition of the same range in each of {}; its old rows \
                     are purged one by one instead",
                    month.name,
                    MESSAGE_TABLES.join(", ")
                );
                drops.kept.push(month.name.clone());
                continue;
            }
            self.drop_partitions(&same_range, &mut drops).await?;
        }
        for table in STANDALONE_TABLES {
            for p in old(table) {
                self.drop_partitions(&[p], &mut drops).await?;
            }
        }
        if !drops.dropped.is_empty() {
            self.known_months.clear();
        }
        Ok(drops)
    }

    /// Whether the message partition `name` (range `from`..`until`) holds a message in
    /// flight, the parent of one, or the child of one. Reads the partition once
    /// (sequentially: it is old and nobody keeps an index on these columns); the
    /// children of its messages arrived before their parents were last seen, so they
    /// are looked for only up to then.
    async fn month_still_needed(
        &self,
        name: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        seen_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        // The legacy partition starts at the beginning of time; no Postfix log is older
        // than this.
        let from = from.unwrap_or(DateTime::UNIX_EPOCH);
        let sql = format!(
            "WITH m AS MATERIALIZED (
                 SELECT bool_or(removed_at IS NULL AND rejected_at IS NULL
                                AND last_seen_at >= $1) AS in_flight,
                        max(last_seen_at) AS last_seen
                 FROM {partition}
             )
             SELECT m.in_flight
                 OR EXISTS (
                     -- a message of this month whose parent (older) is in flight
                     SELECT 1 FROM {partition} f
                     JOIN delivery_from p ON p.queue_id = f.parent_queue_id
                         AND p.host = f.host AND p.arrived_at = f.parent_arrived_at
                     WHERE f.parent_queue_id IS NOT NULL AND f.parent_arrived_at < $2
                       AND p.removed_at IS NULL AND p.rejected_at IS NULL
                       AND p.last_seen_at >= $1)
                 OR EXISTS (
                     -- a child in flight, arrived after this month but before its
                     -- parent here was last seen (a day of slack for clocks)
                     SELECT 1 FROM delivery_from c
                     WHERE c.arrived_at >= $3 AND c.arrived_at <= m.last_seen + interval '1 day'
                       AND c.parent_arrived_at >= $2 AND c.parent_arrived_at < $3
                       AND c.removed_at IS NULL AND c.rejected_at IS NULL
                       AND c.last_seen_at >= $1)
             FROM m",
            partition = quote_ident(name)
        );
        let row = client
            .query_one(&sql, &[&seen_since, &from, &until])
            .await
            .map_err(|e| StoreError::query("checking a month before dropping it", e))?;
        Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
    }

    /// Drop `partitions` in one transaction, forgetting them in `time_partition`.
    /// Gives up (leaving them for the next purge) when a parent's lock is not granted
    /// within [`PARTITION_DROP_LOCK_TIMEOUT`].
    async fn drop_partitions(
        &self,
        partitions: &[&TimePartition],
        drops: &mut PartitionDrops,
    ) -> Result<(), StoreError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting a partition drop", e))?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}",
            PARTITION_DROP_LOCK_TIMEOUT.as_millis()
        ))
        .await
        .map_err(|e| StoreError::query("starting a partition drop", e))?;
        let names: Vec<&str> = partitions.iter().map(|p| p.name.as_str()).collect();
        let estimate: f64 = tx
            .query_one(
                "SELECT COALESCE(sum(GREATEST(reltuples, 0)), 0)::float8 FROM pg_class
                 WHERE relname = ANY($1) AND relnamespace = current_schema()::regnamespace",
                &[&names],
            )
            .await
            .map_err(|e| StoreError::query("reading partition sizes", e))?
            .get(0);
        for name in &names {
            let dropped = tx
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_ident(name)))
                .await;
            match dropped {
                Ok(()) => {}
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
                {
                    tracing::warn!(
                        "partition {name} is busy (no lock within {} s); it is dropped by a later purge",
                        PARTITION_DROP_LOCK_TIMEOUT.as_secs()
                    );
                    return Ok(());
                }
                Err(e) => return Err(StoreError::query("dropping a partition", e)),
            }
        }
        tx.execute(
            "DELETE FROM time_partition WHERE partition = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| StoreError::query("forgetting dropped partitions", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing a partition drop", e))?;
        drops.dropped.extend(names.iter().map(|n| n.to_string()));
        drops.estimated_rows += estimate as u64;
        Ok(())
    }
}

/// "2025-03" or "2025-03 … 2025-05 (3 months)", for log lines.
fn describe_months(months: &[Month]) -> String {
    let label = |m: &Month| {
        m.start().map_or_else(
            || format!("month {}", m.0),
            |s| s.format("%Y-%m").to_string(),
        )
    };
    match months {
        [] => String::new(),
        [one] => label(one),
        [first, .., last] => format!(
            "{} … {} ({} months)",
            label(first),
            label(last),
            months.len()
        ),
    }
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The shared set of known months, for [`Store`].
pub(crate) fn known_months() -> Arc<KnownMonths> {
    Arc::new(KnownMonths::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// Key of the transaction-level advisory lock `pftrack_time_partitions()` takes
    /// (a literal in migration V14): distinct from pftrack's other lock keys.
    const PARTITION_LOCK_KEY: i64 = 0x7066_7472_6163_6b03; // "pftrack\3"

    #[test]
    fn migration_takes_the_partition_lock() {
        let v14 = include_str!("../../../migrations/V14__time_partitions.sql");
        assert!(v14.contains(&format!("pg_advisory_xact_lock({PARTITION_LOCK_KEY})")));
        assert_ne!(PARTITION_LOCK_KEY, crate::MIGRATION_LOCK_KEY);
    }

    #[test]
    fn months_are_utc_months() {
        let m = Month::of(at("2026-12-31T23:59:59+00:00"));
        assert_eq!(m.start(), Some(at("2026-12-01T00:00:00+00:00")));
        assert_eq!(m.next().start(), Some(at("2027-01-01T00:00:00+00:00")));
        // 00:30 on 1 January in UTC+01:00 is still December in UTC.
        assert_eq!(Month::of(at("2027-01-01T00:30:00+01:00")), m);
    }

    #[test]
    fn month_set_keeps_each_month_once_in_order() {
        let mut set = MonthSet::default();
        assert!(set.is_empty());
        for s in [
            "2026-03-05T00:00:00Z",
            "2026-03-06T00:00:00Z",
            "2026-01-31T23:00:00Z",
            "2026-03-07T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ] {
            set.note(at(s));
        }
        let starts: Vec<_> = set.iter().filter_map(Month::start).collect();
        assert_eq!(
            starts,
            vec![at("2026-01-01T00:00:00Z"), at("2026-03-01T00:00:00Z")]
        );
    }

    #[test]
    fn known_months_report_what_is_missing() {
        let known = KnownMonths::default();
        let jan = Month::of(at("2026-01-10T00:00:00Z"));
        let feb = jan.next();
        assert_eq!(known.missing([jan, feb].into_iter()), vec![jan, feb]);
        known.add(&[jan]);
        assert_eq!(known.missing([jan, feb].into_iter()), vec![feb]);
        known.clear();
        assert_eq!(known.missing([jan].into_iter()), vec![jan]);
    }

    #[test]
    fn month_descriptions() {
        let jan = Month::of(at("2026-01-10T00:00:00Z"));
        assert_eq!(describe_months(&[jan]), "2026-01");
        assert_eq!(
            describe_months(&[jan, jan.next(), jan.next().next()]),
            "2026-01 … 2026-03 (3 months)"
        );
    }
}
