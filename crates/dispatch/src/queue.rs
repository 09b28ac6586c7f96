//! The dispatcher's statements on `event_sink` and `event_delivery` (migration V8).

use chrono::{DateTime, Utc};

use crate::DispatchError;
use crate::config::Sink;

/// A claimed delivery.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub(crate) event_id: String,
    pub(crate) ty: String,
    /// Attempts including this one.
    pub(crate) attempts: i32,
    pub(crate) retry_since: DateTime<Utc>,
    pub(crate) payload: String,
}

/// The state to record after an attempt.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) event_id: String,
    /// `pending`, `delivered` or `failed`.
    pub(crate) state: &'static str,
    /// Pending: when to try again.
    pub(crate) next_at: Option<DateTime<Utc>>,
    pub(crate) error: Option<String>,
}

const UPSERT_SINK: &str = "\
INSERT INTO event_sink AS s (name, kind, target, types, reasons, active, updated_at)
VALUES ($1, $2, $3, $4, $5, true, now())
ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, target = EXCLUDED.target,
    types = EXCLUDED.types, reasons = EXCLUDED.reasons, active = true, updated_at = now(),
    -- A new endpoint is a new chance after a 410.
    disabled_at = CASE WHEN s.target = EXCLUDED.target THEN s.disabled_at END,
    disabled_reason = CASE WHEN s.target = EXCLUDED.target THEN s.disabled_reason END";

const DEACTIVATE_OTHERS: &str = "\
UPDATE event_sink SET active = false, updated_at = now()
WHERE active AND NOT (name = ANY ($1))
RETURNING name";

/// Register `sinks` (their filters decide which events get delivery rows); sinks no
/// longer configured stop getting new rows. Returns the names deactivated.
pub(crate) async fn sync_sinks(
    client: &mut deadpool_postgres::Object,
    sinks: &[Sink],
) -> Result<Vec<String>, DispatchError> {
    let tx = client
        .transaction()
        .await
        .map_err(DispatchError::query("registering the sinks"))?;
    for s in sinks {
        tx.execute(
            UPSERT_SINK,
            &[
                &s.name,
                &s.kind().as_str(),
                &s.target_text(),
                &s.types,
                &s.reasons,
            ],
        )
        .await
        .map_err(DispatchError::query("registering the sinks"))?;
    }
    let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
    let gone = tx
        .query(DEACTIVATE_OTHERS, &[&names])
        .await
        .map_err(DispatchError::query("registering the sinks"))?;
    tx.commit()
        .await
        .map_err(DispatchError::query("registering the sinks"))?;
    Ok(gone.iter().map(|r| r.get(0)).collect())
}

/// Claim up to `limit` due deliveries of `sink` (not of a disabled sink), leasing
/// them for `lease_secs`.
const CLAIM: &str = "\
WITH due AS (
    SELECT d.event_id FROM event_delivery d
    WHERE d.sink = $1 AND d.state = 'pending' AND d.next_attempt_at <= now()
        AND NOT EXISTS (SELECT 1 FROM event_sink s WHERE s.name = $1 AND s.disabled_at IS NOT NULL)
    ORDER BY d.next_attempt_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE event_delivery d
SET attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => $3), leased_by = $4
FROM due, event_outbox o
WHERE d.sink = $1 AND d.event_id = due.event_id AND o.id = d.event_id
RETURNING d.event_id, o.type, d.attempts, d.retry_since, o.payload::text, o.occurred_at";

pub(crate) async fn claim(
    client: &deadpool_postgres::Object,
    sink: &str,
    limit: i64,
    lease_secs: f64,
    me: &str,
) -> Result<Vec<Claimed>, DispatchError> {
    let stmt = client
        .prepare_cached(CLAIM)
        .await
        .map_err(DispatchError::query("claiming deliveries"))?;
    let rows = client
        .query(&stmt, &[&sink, &limit, &lease_secs, &me])
        .await
        .map_err(DispatchError::query("claiming deliveries"))?;
    let mut claimed: Vec<(DateTime<Utc>, Claimed)> = rows
        .iter()
        .map(|r| {
            (
                r.get(5),
                Claimed {
                    event_id: r.get(0),
                    ty: r.get(1),
                    attempts: r.get(2),
                    retry_since: r.get(3),
                    payload: r.get(4),
                },
            )
        })
        .collect();
    // Oldest facts first, as far as concurrency keeps an order at all.
    claimed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.event_id.cmp(&b.1.event_id)));
    Ok(claimed.into_iter().map(|(_, c)| c).collect())
}

const RECORD: &str = "\
UPDATE event_delivery d SET
    state = r.state,
    next_attempt_at = coalesce(r.next_at, now()),
    last_error = r.error,
    delivered_at = CASE WHEN r.state = 'delivered' THEN now() ELSE d.delivered_at END,
    leased_by = NULL
FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS r(event_id, state, next_at, error)
WHERE d.sink = $1 AND d.event_id = r.event_id AND d.state = 'pending'";

/// Record the outcomes of a round.
pub(crate) async fn record(
    client: &deadpool_postgres::Object,
    sink: &str,
    results: &[Recorded],
) -> Result<(), DispatchError> {
    let ids: Vec<&str> = results.iter().map(|r| r.event_id.as_str()).collect();
    let states: Vec<&str> = results.iter().map(|r| r.state).collect();
    let next: Vec<Option<DateTime<Utc>>> = results.iter().map(|r| r.next_at).collect();
    let errors: Vec<Option<&str>> = results.iter().map(|r| r.error.as_deref()).collect();
    let stmt = client
        .prepare_cached(RECORD)
        .await
        .map_err(DispatchError::query("recording deliveries"))?;
    client
        .execute(&stmt, &[&sink, &ids, &states, &next, &errors])
        .await
        .map_err(DispatchError::query("recording deliveries"))?;
    Ok(())
}

/// Disable `sink` (410 Gone); true when it was enabled until now.
pub(crate) async fn disable_sink(
    client: &deadpool_postgres::Object,
    sink: &str,
    reason: &str,
) -> Result<bool, DispatchError> {
    let n = client
        .execute(
            "UPDATE event_sink SET disabled_at = now(), disabled_reason = $2, updated_at = now() \
             WHERE name = $1 AND disabled_at IS NULL",
            &[&sink, &reason],
        )
        .await
        .map_err(DispatchError::query("disabling a sink"))?;
    Ok(n > 0)
}

/// When `sink` was disabled and why, when it is.
pub(crate) async fn disabled(
    client: &deadpool_postgres::Object,
    sink: &str,
) -> Result<Option<(DateTime<Utc>, String)>, DispatchError> {
    let row = client
        .query_opt(
            "SELECT disabled_at, coalesce(disabled_reason, '') FROM event_sink \
             WHERE name = $1 AND disabled_at IS NOT NULL",
            &[&sink],
        )
        .await
        .map_err(DispatchError::query("reading a sink"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Pending deliveries, counted up to `limit + 1` (cheap however many there are).
pub(crate) async fn pending_at_least(
    client: &deadpool_postgres::Object,
    limit: i64,
) -> Result<i64, DispatchError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM event_delivery WHERE state = 'pending' \
             LIMIT $1 + 1) p",
            &[&limit],
        )
        .await
        .map_err(DispatchError::query("counting pending deliveries"))?;
    Ok(row.get(0))
}

/// Mark the oldest pending deliveries beyond `keep` failed; returns how many.
pub(crate) async fn fail_excess(
    client: &deadpool_postgres::Object,
    keep: i64,
) -> Result<u64, DispatchError> {
    client
        .execute(
            "UPDATE event_delivery d SET state = 'failed', leased_by = NULL, \
                 last_error = 'the outbox size limit (events.dispatch.max_pending) was reached: \
                 not delivered; `pftrack events retry` queues it again' \
             FROM (SELECT event_id, sink FROM event_delivery WHERE state = 'pending' \
                   ORDER BY created_at DESC, event_id OFFSET $1) x \
             WHERE d.event_id = x.event_id AND d.sink = x.sink",
            &[&keep],
        )
        .await
        .map_err(DispatchError::query("enforcing the outbox size limit"))
}
