-- pftrack schema, version 6: message tags (per-client attribution).
--
-- Senders that name their client application in a header (`Client-ID: acme`) are
-- attributed through a header_checks INFO (or WARN) action, which cleanup logs as
-- `QID: info: header client-id: acme from …`. For the header names listed in the
-- configuration (`tags: headers:`), pftrack stores the value as a tag of the message:
-- delivery_from.tags is a jsonb object, header name (lower-case) → value as logged
-- (at most 200 bytes), NULL when the message has no tag. A later line for the same
-- name replaces the value, other names are kept: `tags || new` (the loader merges the
-- same way within a batch).
--
-- No index on tags: failure and attempt queries select by time (the BRIN indexes on
-- attempt_at/arrived_at) and reach a message by its primary key, where the tag is
-- read, not searched. An expression index (say on tags->>'client-id') can be added by
-- the administrator when "every message of one client, ever" becomes a frequent
-- question; a backfill into an empty database sets it aside and rebuilds it like the
-- other secondary indexes (V3).
ALTER TABLE delivery_from ADD COLUMN tags jsonb;

-- One row per tag of a message.
CREATE VIEW message_tags AS
SELECT f.host, f.queue_id, f.arrived_at, t.key AS name, t.value
FROM delivery_from f
CROSS JOIN LATERAL jsonb_each_text(f.tags) t
WHERE f.tags IS NOT NULL;

-- delivery_status gains the message's tags (columns are only ever added at the end):
-- `WHERE tags->>'client-id' = 'acme'`.
CREATE OR REPLACE VIEW delivery_status AS
SELECT
    t.queue_id,
    t.host,
    f.message_id,
    f.sender,
    t.recipient,
    NULLIF(t.orig_recipient, '') AS orig_recipient,
    effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status,
    t.dsn,
    t.relay,
    t.response,
    t.attempts,
    t.delay,
    f.arrived_at,
    t.first_attempt_at,
    t.last_attempt_at,
    t.queued_as,
    f.client_name,
    f.client_addr,
    f.sasl_username,
    f.origin,
    f.parent_queue_id,
    f.parent_arrived_at,
    f.parent_kind,
    c.queue_id   AS continued_as_queue_id,
    c.arrived_at AS continued_as_arrived_at,
    f.removed_at,
    t.status_at,
    CASE WHEN effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) = 'expired'
         THEN 'expired' ELSE t.failure_reason END AS failure_reason,
    CASE WHEN effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) = 'expired'
         THEN true ELSE t.hard END AS hard,
    t.failure_rule,
    f.tags
FROM delivery_to t
JOIN delivery_from f USING (host, queue_id, arrived_at)
LEFT JOIN LATERAL (
    SELECT c.queue_id, c.arrived_at
    FROM delivery_from c
    WHERE c.host = t.host
      AND c.parent_queue_id = t.queue_id
      AND c.parent_arrived_at = t.arrived_at
      AND c.parent_kind IN ('reinjection', 'forward')
      AND c.queue_id = t.queued_as
    LIMIT 1
) c ON true;

-- failure_reasons_daily per message tag: failed attempts (deferrals count each time,
-- like failure_reasons_daily) of tagged messages per UTC day, tag name and value,
-- reason, hard/soft and status. A message with two tags counts under each; messages
-- without tags and NOQUEUE rejects (no message, hence no header) are not in it.
CREATE VIEW failure_reasons_by_tag_daily AS
SELECT utc_day(a.attempt_at) AS day, t.key AS tag_name, t.value AS tag_value,
    a.failure_reason AS reason, a.hard, a.status, count(*)::bigint AS count
FROM delivery_attempt a
JOIN delivery_from f USING (host, queue_id, arrived_at)
CROSS JOIN LATERAL jsonb_each_text(f.tags) t
WHERE a.failure_reason IS NOT NULL
  AND f.tags IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
