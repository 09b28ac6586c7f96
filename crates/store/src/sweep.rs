//! The sweep for events about time passing (issue 12): recipients still deferred
//! after a configured age (`recipient.deferred_long`) and mailboxes full for a
//! configured time (`recipient.failed`, reason `mailboxfull`). No log line states
//! these facts, so `pftrack run` looks for them periodically (and `pftrack events
//! sweep` once). The ids come from `pftrack_events::lasting`, derived only from the
//! fact and the age; rows go in with `ON CONFLICT DO NOTHING`, so each fact is one
//! event however often the sweep runs.

use chrono::{DateTime, TimeDelta, Utc};
use pftrack_events::lasting::{Lasting, SweepRules};

use crate::{Store, StoreError};

/// How far before the age's threshold the sweep looks: a message is forgotten (and
/// expires in Postfix) long before; this bounds each sweep's scan.
pub const SWEEP_LOOKBACK: TimeDelta = TimeDelta::days(7);

/// Most events one sweep inserts (the next sweep goes on).
pub const SWEEP_LIMIT: i64 = 10_000;

/// Recipients deferred at `$2` after their message arrived: still queued (not removed,
/// expired or deleted).
const DEFERRED_LONG: &str = "\
SELECT t.host, t.queue_id, t.arrived_at, t.recipient, t.orig_recipient, t.arrived_at,
    t.attempts, t.last_attempt_at, t.dsn, t.relay, t.response, t.failure_reason,
    f.sender, f.message_id
FROM delivery_to t
JOIN delivery_from f USING (queue_id, host, arrived_at)
WHERE t.arrived_at >= $1 AND t.arrived_at <= $2
    AND t.status = 'deferred'
    AND f.removed_at IS NULL AND f.expired_at IS NULL AND f.deleted_at IS NULL
ORDER BY t.arrived_at
LIMIT $3";

/// Recipients whose latest attempt was a mailbox-full deferral and whose first
/// mailbox-full deferral was at or before `$2`.
const MAILBOX_FULL_HELD: &str = "\
SELECT t.host, t.queue_id, t.arrived_at, t.recipient, t.orig_recipient, m.first_full,
    t.attempts, t.last_attempt_at, t.dsn, t.relay, t.response, t.failure_reason,
    f.sender, f.message_id
FROM delivery_to t
JOIN delivery_from f USING (queue_id, host, arrived_at)
CROSS JOIN LATERAL (
    SELECT min(a.attempt_at) AS first_full FROM delivery_attempt a
    WHERE a.arrived_at = t.arrived_at AND a.host = t.host AND a.queue_id = t.queue_id
        AND a.recipient = t.recipient AND a.orig_recipient = t.orig_recipient
        AND a.failure_reason = 'mailboxfull'
) m
WHERE t.arrived_at >= $1 AND t.arrived_at <= $2
    AND t.status = 'deferred' AND t.failure_reason = 'mailboxfull'
    AND m.first_full <= $2 AND m.first_full >= $4
    AND f.removed_at IS NULL AND f.expired_at IS NULL AND f.deleted_at IS NULL
ORDER BY t.arrived_at
LIMIT $3";

const INSERT_SWEPT: &str = "\
INSERT INTO event_outbox (id, type, occurred_at, payload)
SELECT i, t, o, p::jsonb FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS u(i, t, o, p)
ORDER BY i
ON CONFLICT (id) DO NOTHING";

/// Which kind of lasting fact.
#[derive(Clone, Copy)]
enum Kind {
    DeferredLong,
    MailboxFullHeld,
}

impl Store {
    /// Look for lasting facts as of `now` and record their events; returns how many
    /// were recorded for the first time.
    pub async fn sweep_lasting(
        &self,
        rules: &SweepRules,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut recorded = 0;
        if let Some(age) = rules.deferred_long_after {
            recorded += self
                .sweep_one(Kind::DeferredLong, age, rules.since, now)
                .await?;
        }
        if let Some(age) = rules.mailbox_full_held {
            recorded += self
                .sweep_one(Kind::MailboxFullHeld, age, rules.since, now)
                .await?;
        }
        Ok(recorded)
    }

    async fn sweep_one(
        &self,
        kind: Kind,
        age: TimeDelta,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let threshold = now - age;
        // The fact happens when the age is reached: at or after `since`.
        let earliest = since.map_or(DateTime::<Utc>::MIN_UTC, |s| s - age);
        let from = (threshold - SWEEP_LOOKBACK).max(earliest);
        let err = |e| StoreError::query("sweeping for lasting deferrals", e);
        let rows = match kind {
            Kind::DeferredLong => client
                .query(DEFERRED_LONG, &[&from, &threshold, &SWEEP_LIMIT])
                .await
                .map_err(err)?,
            Kind::MailboxFullHeld => client
                .query(
                    MAILBOX_FULL_HELD,
                    &[&from, &threshold, &SWEEP_LIMIT, &earliest],
                )
                .await
                .map_err(err)?,
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let (mut ids, mut types, mut times, mut payloads) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in &rows {
            let host: String = r.get(0);
            let queue_id: String = r.get(1);
            let recipient: String = r.get(3);
            let orig_recipient: String = r.get(4);
            let dsn: Option<String> = r.get(8);
            let relay: Option<String> = r.get(9);
            let response: Option<String> = r.get(10);
            let reason: Option<String> = r.get(11);
            let l = Lasting {
                host: &host,
                queue_id: &queue_id,
                arrived_at: r.get(2),
                recipient: &recipient,
                orig_recipient: &orig_recipient,
                since: r.get(5),
                age_secs: age.num_seconds(),
                attempts: r.get(6),
                last_attempt_at: r.get(7),
                dsn: dsn.as_deref(),
                relay: relay.as_deref(),
                response: response.as_deref(),
                reason: reason.as_deref(),
            };
            let (id, ty, mut payload) = match kind {
                Kind::DeferredLong => {
                    let id = l.deferred_long_id();
                    let p = l.deferred_long_payload(&id);
                    (id, pftrack_events::EventType::RecipientDeferredLong, p)
                }
                Kind::MailboxFullHeld => {
                    let id = l.mailbox_full_held_id();
                    let p = l.mailbox_full_held_payload(&id);
                    (id, pftrack_events::EventType::RecipientFailed, p)
                }
            };
            let sender: Option<String> = r.get(12);
            let message_id: Option<String> = r.get(13);
            payload["data"]["sender"] = serde_json::json!(sender);
            payload["data"]["message_id"] = serde_json::json!(message_id);
            ids.push(id);
            types.push(ty.as_str());
            times.push(l.occurred_at());
            payloads.push(payload.to_string());
        }
        client
            .execute(INSERT_SWEPT, &[&ids, &types, &times, &payloads])
            .await
            .map_err(|e| StoreError::query("recording swept events", e))
    }
}

/// Events recorded and happened before `$1` whose deliveries are all settled
/// (delivered or failed; none pending), at most `$2`.
const PURGE_EVENTS: &str = "\
WITH victims AS (
    SELECT o.id FROM event_outbox o
    WHERE o.recorded_at < $1 AND o.occurred_at < $1
        AND NOT EXISTS (SELECT 1 FROM event_delivery d
                        WHERE d.event_id = o.id AND d.state = 'pending')
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM event_outbox o USING victims v WHERE o.id = v.id";

impl Store {
    /// Retention of the outbox: delete events older than `before` (by the fact and
    /// by when recorded) that no sink still waits for, with their delivery rows, in
    /// batches of `batch`. Returns how many. Pending deliveries keep their events.
    pub async fn purge_events(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut deleted = 0;
        loop {
            let n = client
                .execute(PURGE_EVENTS, &[&before, &batch])
                .await
                .map_err(|e| StoreError::query("purging old events", e))?;
            deleted += n;
            if n < batch as u64 {
                return Ok(deleted);
            }
        }
    }
}
