-- pftrack schema, version 2: views answering "what happened to my mail?".
--
-- * effective_status(): the one definition of a recipient's status (a deferred
--   recipient of a message that later expired or was deleted is 'expired'/'deleted');
--   delivery_status is redefined on it, unchanged but for one appended column.
-- * message_status:       one row per message, recipients counted by status, outcome.
-- * problem_recipients:   bounced, expired, and deferred for over an hour.
-- * recipient_domain_daily: per (UTC day, recipient domain) counts and delays.
-- * noqueue_daily:        NOQUEUE decisions per (UTC day, client, stage, code, class).
--
-- Views carry no data and take no locks beyond their tables'; the read-only role needs
-- nothing but SELECT on them (see the grants at the end and docs/queries.md).

-- A recipient's status, given its stored status and its message's end times. Inlined
-- by the planner (a plain SQL expression), so it costs nothing in a query.
CREATE FUNCTION effective_status(status text, status_at timestamptz,
                                 expired_at timestamptz, deleted_at timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN $1 = 'deferred' AND $3 IS NOT NULL AND $3 >= $2 THEN 'expired'
        WHEN $1 = 'deferred' AND $4 IS NOT NULL AND $4 >= $2 THEN 'deleted'
        ELSE $1
    END
$$;

-- The domain of an address, lower-cased; NULL for a bare local name such as "root".
CREATE FUNCTION address_domain(address text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN strpos($1, '@') > 0 THEN lower(split_part($1, '@', -1)) END
$$;

-- What kind of refusal a NOQUEUE reason is, for summaries. Order matters: the first
-- match wins (a postscreen DNSBL reply also says "Service unavailable").
CREATE FUNCTION noqueue_reason_class(reason text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN $1 ~* 'blocked using|listed (at|by|in)|\mRBL\M|\mDNSBL\M' THEN 'dnsbl'
        WHEN $1 ~* 'relay access denied' THEN 'relay_denied'
        WHEN $1 ~* 'user unknown|unknown user|mailbox unavailable|no such user|address rejected: undeliverable'
            THEN 'unknown_recipient'
        WHEN $1 ~* 'greylist' THEN 'greylisted'
        WHEN $1 ~* 'cannot find your (reverse )?hostname' THEN 'no_reverse_dns'
        WHEN $1 ~* 'helo command rejected' THEN 'helo'
        WHEN $1 ~* 'sender address rejected' THEN 'sender'
        WHEN $1 ~* 'recipient address rejected' THEN 'recipient'
        WHEN $1 ~* 'client host rejected' THEN 'client'
        WHEN $1 ~* 'message size exceeds|message too large' THEN 'size'
        WHEN $1 ~* 'improper use of smtp command pipelining' THEN 'pipelining'
        WHEN $1 ~* 'too many|rate limit|try again later' THEN 'rate_limit'
        WHEN $1 ~* 'policy|spf' THEN 'policy'
        WHEN $1 ~* 'access denied' THEN 'access_denied'
        ELSE 'other'
    END
$$;

-- delivery_status, on effective_status(); the columns of version 1 keep their order
-- and meaning, status_at (time of the latest status) is added at the end.
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
    t.status_at
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

-- One row per message. The recipient counts use effective_status(), as delivery_status
-- does, so the two views always agree. outcome:
--   sent           every recipient sent
--   deferred       some recipient still deferred (the message is in the queue)
--   partial        some sent, the others failed (bounced, expired, rejected, …)
--   bounced        none sent, none deferred, at least one bounced or expired
--   rejected / discarded / deleted / expired
--                  every recipient has that status
--   failed         none sent, a mix of rejected, discarded and deleted
--   no_recipients  no recipient was logged: rejected (rejected_at), deleted
--                  (deleted_at) or an abandoned submission (client went away)
-- in_flight: the message's life has not ended (not removed, not rejected) and it was
-- seen in the last 7 days (the extractor's MAX_MESSAGE_IDLE); `pftrack purge` never
-- deletes such a message.
CREATE VIEW message_status AS
SELECT
    f.host,
    f.queue_id,
    f.arrived_at,
    f.sender,
    f.message_id,
    f.origin,
    f.client_name,
    f.client_addr,
    f.sasl_method,
    f.sasl_username,
    f.pickup_uid,
    f.size,
    f.nrcpt,
    r.recipients,
    r.sent,
    r.deferred,
    r.bounced,
    r.expired,
    r.rejected,
    r.discarded,
    r.deleted,
    CASE
        WHEN r.recipients = 0 THEN
            CASE
                WHEN f.rejected_at IS NOT NULL THEN 'rejected'
                WHEN f.deleted_at IS NOT NULL THEN 'deleted'
                ELSE 'no_recipients'
            END
        WHEN r.deferred > 0 THEN 'deferred'
        WHEN r.sent = r.recipients THEN 'sent'
        WHEN r.sent > 0 THEN 'partial'
        WHEN r.rejected = r.recipients THEN 'rejected'
        WHEN r.discarded = r.recipients THEN 'discarded'
        WHEN r.deleted = r.recipients THEN 'deleted'
        WHEN r.expired = r.recipients THEN 'expired'
        WHEN r.bounced + r.expired > 0 THEN 'bounced'
        ELSE 'failed'
    END AS outcome,
    (f.removed_at IS NULL AND f.rejected_at IS NULL
        AND f.last_seen_at >= now() - interval '7 days') AS in_flight,
    r.first_attempt_at,
    r.last_attempt_at,
    f.last_seen_at,
    f.removed_at,
    f.expired_at,
    f.deleted_at,
    f.rejected_at,
    f.held_at,
    f.released_at,
    f.parent_queue_id,
    f.parent_arrived_at,
    f.parent_kind,
    ch.children
FROM delivery_from f
CROSS JOIN LATERAL (
    SELECT
        count(*) AS recipients,
        count(*) FILTER (WHERE s.status = 'sent') AS sent,
        count(*) FILTER (WHERE s.status = 'deferred') AS deferred,
        count(*) FILTER (WHERE s.status = 'bounced') AS bounced,
        count(*) FILTER (WHERE s.status = 'expired') AS expired,
        count(*) FILTER (WHERE s.status = 'rejected') AS rejected,
        count(*) FILTER (WHERE s.status = 'discarded') AS discarded,
        count(*) FILTER (WHERE s.status = 'deleted') AS deleted,
        min(s.first_attempt_at) AS first_attempt_at,
        max(s.last_attempt_at) AS last_attempt_at
    FROM (
        SELECT effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status,
               t.first_attempt_at, t.last_attempt_at
        FROM delivery_to t
        WHERE t.queue_id = f.queue_id AND t.host = f.host AND t.arrived_at = f.arrived_at
    ) s
) r
CROSS JOIN LATERAL (
    -- Notifications about this message and the messages continuing it (content
    -- filter re-injection, forwarding), oldest first.
    SELECT jsonb_agg(jsonb_build_object('queue_id', c.queue_id,
                                        'arrived_at', c.arrived_at,
                                        'kind', c.parent_kind)
                     ORDER BY c.arrived_at, c.queue_id) AS children
    FROM delivery_from c
    WHERE c.host = f.host AND c.parent_queue_id = f.queue_id
      AND c.parent_arrived_at = f.arrived_at
) ch;

-- Recipients that did not get their mail, or not yet after an hour: bounced, expired,
-- and deferred ones whose message arrived over an hour ago. failure is 'hard' for a
-- 5.x.x DSN (permanent: retrying will not help), 'soft' for 4.x.x.
CREATE VIEW problem_recipients AS
SELECT
    t.host,
    t.queue_id,
    f.arrived_at,
    f.sender,
    f.message_id,
    t.recipient,
    NULLIF(t.orig_recipient, '') AS orig_recipient,
    address_domain(t.recipient) AS recipient_domain,
    s.status,
    CASE
        WHEN t.dsn LIKE '5.%' THEN 'hard'
        WHEN t.dsn LIKE '4.%' THEN 'soft'
    END AS failure,
    t.dsn,
    t.relay,
    t.response,
    t.attempts,
    t.first_attempt_at,
    t.last_attempt_at,
    t.status_at,
    f.client_name,
    f.client_addr,
    f.sasl_username,
    f.removed_at
FROM delivery_to t
JOIN delivery_from f USING (host, queue_id, arrived_at)
CROSS JOIN LATERAL (
    SELECT effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status
) s
WHERE s.status IN ('bounced', 'expired')
   OR (s.status = 'deferred' AND f.arrived_at < now() - interval '1 hour');

-- Address lookups newest first (`pftrack status`): V1's expression indexes extended by
-- arrived_at, so that "the newest 50 messages of a busy address" reads about 50 index
-- entries instead of every one of that address. They replace V1's indexes (same names,
-- same use), so writes maintain no more indexes than before; arrived_at never changes,
-- so updates stay HOT.
DROP INDEX delivery_to_recipient;
CREATE INDEX delivery_to_recipient ON delivery_to (lower(recipient), arrived_at);
DROP INDEX delivery_to_orig_recipient;
CREATE INDEX delivery_to_orig_recipient ON delivery_to (lower(orig_recipient), arrived_at)
    WHERE orig_recipient <> '';
DROP INDEX delivery_from_sender;
CREATE INDEX delivery_from_sender ON delivery_from (lower(sender), arrived_at);

-- Day of a time in UTC, immutable so that it can be indexed and a view's "day" column
-- filtered through an index.
CREATE FUNCTION utc_day(at timestamptz)
RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ($1 AT TIME ZONE 'UTC')::date
$$;

-- Serve "WHERE day = …" on the daily views. delivery_from.arrived_at never changes, so
-- this index does not cost HOT updates; noqueue rows are only inserted (and counted).
CREATE INDEX delivery_from_utc_day ON delivery_from (utc_day(arrived_at));
CREATE INDEX noqueue_utc_day ON noqueue (utc_day(logged_at));

-- Per UTC day of arrival and recipient domain: recipients by status, how many failed
-- hard (5.x.x), the delivery delay of the sent ones, and the latest problem reply.
CREATE VIEW recipient_domain_daily AS
SELECT
    utc_day(f.arrived_at) AS day,
    address_domain(t.recipient) AS recipient_domain,
    count(*) AS recipients,
    count(*) FILTER (WHERE s.status = 'sent') AS sent,
    count(*) FILTER (WHERE s.status = 'deferred') AS deferred,
    count(*) FILTER (WHERE s.status = 'bounced') AS bounced,
    count(*) FILTER (WHERE s.status = 'expired') AS expired,
    count(*) FILTER (WHERE s.status = 'rejected') AS rejected,
    count(*) FILTER (WHERE s.status = 'discarded') AS discarded,
    count(*) FILTER (WHERE s.status = 'deleted') AS deleted,
    count(*) FILTER (WHERE s.status IN ('bounced', 'expired') AND t.dsn LIKE '5.%')
        AS hard_failures,
    sum(t.attempts) AS attempts,
    round(avg(t.delay) FILTER (WHERE s.status = 'sent')::numeric, 2) AS avg_delay_sent,
    max(t.delay) FILTER (WHERE s.status = 'sent') AS max_delay_sent,
    (array_agg(t.response ORDER BY t.status_at DESC)
        FILTER (WHERE s.status IN ('deferred', 'bounced', 'expired')))[1]
        AS last_problem_response
FROM delivery_to t
JOIN delivery_from f USING (host, queue_id, arrived_at)
CROSS JOIN LATERAL (
    SELECT effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status
) s
GROUP BY 1, 2;

-- NOQUEUE decisions per UTC day, host, client address, stage, action, code, DSN and
-- reason class: how many times, how many distinct recipients and senders, when first
-- and last, and one reason text as an example.
CREATE VIEW noqueue_daily AS
SELECT
    utc_day(n.logged_at) AS day,
    n.host,
    n.client_addr,
    n.stage,
    n.action,
    n.code,
    n.dsn,
    noqueue_reason_class(n.reason) AS reason_class,
    sum(n.count) AS events,
    count(DISTINCT lower(n.recipient)) AS recipients,
    count(DISTINCT lower(n.sender)) AS senders,
    min(n.logged_at) AS first_at,
    max(n.logged_at) AS last_at,
    min(n.client_name) AS client_name,
    min(n.reason) AS example_reason
FROM noqueue n
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;

-- The read-only role of the Ansible role (ansible/roles/pftrack, pftrack_database_reader,
-- default pftrack_reader) gets new views through the default privileges set for the
-- owner role; this grant covers databases set up without them. See docs/queries.md.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_reader') THEN
        GRANT SELECT ON delivery_status, message_status, problem_recipients,
                        recipient_domain_daily, noqueue_daily TO pftrack_reader;
        GRANT EXECUTE ON FUNCTION effective_status(text, timestamptz, timestamptz, timestamptz),
                                  address_domain(text), noqueue_reason_class(text),
                                  utc_day(timestamptz) TO pftrack_reader;
    END IF;
END
$$;
