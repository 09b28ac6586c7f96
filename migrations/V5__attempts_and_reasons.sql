-- pftrack schema, version 5: every delivery attempt kept, every failure classified.
--
-- delivery_attempt holds one row per event of a recipient (deferred, bounced, sent,
-- expired, …) in the order Postfix logged them: the attempt history. Its key is the
-- event itself (recipient row key, time, status), so the same line loaded twice — a
-- re-run, a resumed load, a copy of the log under another name — is one row, and
-- delivery_to.attempts counts only attempts stored for the first time: it cannot be
-- inflated by loading a line again. Keyed in time order like delivery_to (rows arrive
-- in time order: new keys go to the right edge of the index), which also serves the
-- lookups of one message's attempts.
--
-- failure_reason / hard / failure_rule: the classifier's verdict (crates/classify):
-- a reason of sisimai's taxonomy, hard (permanent) or soft, and the rule that decided
-- (`builtin:<line>:<name>`, `<user file>:<line>:<name>`, `postfix:<name>`). NULL for
-- events that are not failures (sent, discarded, deleted). `pftrack reclassify`
-- re-applies the current rules to stored rows.
CREATE TABLE delivery_attempt (
    host                text COLLATE "C"        NOT NULL,
    queue_id            text COLLATE "C"        NOT NULL,
    arrived_at          timestamptz NOT NULL,
    recipient           text COLLATE "C"        NOT NULL,
    orig_recipient      text COLLATE "C"        NOT NULL DEFAULT '',
    attempt_at          timestamptz NOT NULL,
    status              text        NOT NULL,
    -- false for events that are no delivery attempt (a recipient deleted by postsuper)
    is_attempt          boolean     NOT NULL,
    dsn                 text,
    relay               text,
    response            text,
    delay               real,
    delay_before_qmgr   real,
    delay_in_qmgr       real,
    delay_conn_setup    real,
    delay_transmission  real,
    queued_as           text,
    failure_reason      text,
    hard                boolean,
    failure_rule        text,
    PRIMARY KEY (arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status)
);
CREATE INDEX delivery_attempt_at ON delivery_attempt USING brin (attempt_at);

ALTER TABLE delivery_to
    ADD COLUMN failure_reason text,
    ADD COLUMN hard boolean,
    ADD COLUMN failure_rule text;

ALTER TABLE noqueue
    ADD COLUMN failure_reason text,
    ADD COLUMN hard boolean,
    ADD COLUMN failure_rule text;

-- Recipients stored before this version have no attempt history: one row per
-- recipient for its latest event, so that every recipient has at least its fate.
INSERT INTO delivery_attempt (host, queue_id, arrived_at, recipient, orig_recipient,
    attempt_at, status, is_attempt, dsn, relay, response, delay, delay_before_qmgr,
    delay_in_qmgr, delay_conn_setup, delay_transmission, queued_as)
SELECT host, queue_id, arrived_at, recipient, orig_recipient, status_at, status,
    attempts > 0, dsn, relay, response, delay, delay_before_qmgr, delay_in_qmgr,
    delay_conn_setup, delay_transmission, queued_as
FROM delivery_to
ON CONFLICT DO NOTHING;

-- delivery_status gains the verdict (columns are only ever added at the end). A
-- recipient still deferred when its message expired is `expired`, hard.
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
    t.failure_rule
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

-- A failure text with what varies between occurrences masked (addresses, IP
-- addresses, queue ids and other long hex or mixed ids, numbers), so that one wording
-- groups into one line of unclassified_failures.
CREATE FUNCTION failure_text_pattern(text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
        left(text, 2000),
        '<?[^\s<>@()\[\]"'',;:]+@[^\s<>()\[\]"'',;:]+>?', '<address>', 'g'),
        '\[?(\d{1,3}\.){3}\d{1,3}\]?|\[(ipv6:)?[0-9a-f]*:[0-9a-f:.]*\]', '<ip>', 'gi'),
        '\m[0-9A-Za-z]*\d[0-9A-Za-z]*[A-Za-z][0-9A-Za-z]*\M|\m[0-9A-Za-z]*[A-Za-z][0-9A-Za-z]*\d[0-9A-Za-z]*\M',
        '<id>', 'g'),
        '\d+', '<n>', 'g'),
        '(<id>[.-]?)+', '<id>', 'g')
$$;

-- Failures no rule classified (reason onhold or undefined): the list to work down
-- (docs/classification.md). One line per masked wording, most frequent first.
CREATE VIEW unclassified_failures AS
SELECT pattern, sum(n)::bigint AS count, min(first_seen) AS first_seen,
    max(last_seen) AS last_seen, (array_agg(example ORDER BY last_seen DESC))[1] AS example,
    array_agg(DISTINCT kind ORDER BY kind) AS seen_in
FROM (
    SELECT failure_text_pattern(response) AS pattern, count(*) AS n,
        min(attempt_at) AS first_seen, max(attempt_at) AS last_seen,
        max(response) AS example, 'attempt' AS kind
    FROM delivery_attempt
    WHERE failure_reason IN ('onhold', 'undefined')
    GROUP BY 1
    UNION ALL
    SELECT failure_text_pattern(reason), sum(count), min(logged_at), max(logged_at),
        max(reason), 'noqueue'
    FROM noqueue
    WHERE failure_reason IN ('onhold', 'undefined')
    GROUP BY 1
) u
GROUP BY pattern
ORDER BY count DESC, pattern;

-- Failures per UTC day, reason, hard/soft, recipient domain and relay host: every
-- failed attempt (deferrals count each time) and every NOQUEUE reject.
CREATE VIEW failure_reasons_daily AS
SELECT utc_day(a.attempt_at) AS day, a.failure_reason AS reason, a.hard,
    address_domain(a.recipient) AS recipient_domain,
    NULLIF(split_part(split_part(a.relay, '[', 1), ':', 1), 'none') AS relay_host,
    a.status, count(*)::bigint AS count
FROM delivery_attempt a
WHERE a.failure_reason IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT utc_day(n.logged_at), n.failure_reason, n.hard, address_domain(n.recipient),
    NULL, 'rejected', sum(n.count)::bigint
FROM noqueue n
WHERE n.failure_reason IS NOT NULL
GROUP BY 1, 2, 3, 4;
