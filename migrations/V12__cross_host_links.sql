-- pftrack schema, version 12: one mail traced across the hosts it passed (issue 16).
--
-- Host A's delivery `relay=store1.example.internal[10.0.0.5]:25 … 250 2.0.0 Ok: queued
-- as 7C2D9A41F3` hands the recipient to host B's message 7C2D9A41F3. The link is made
-- at query time, from what is stored, never written at load time: whichever host's
-- lines are loaded first, and however far apart the loads are, the link exists as soon
-- as both messages are in the database, and a re-run or a purge cannot leave a stale
-- link behind.
--
-- A delivery continues as B's message when all of these hold:
--   * the recipient was sent, with a `queued as`/`forwarded as` id (delivery_to.queued_as);
--   * B's message has that queue id and arrived within fleet_link_tolerance() of the
--     send (queue ids are reused, so the id alone is not enough; the nearest wins);
--   * B is another host, and either the relay names B or B's smtpd client names A
--     (fleet_host_is: the syslog host name, its first label, the host's myhostname as
--     seen in the Message-IDs Postfix generated on it, or the host_alias map).
-- The same host's content-filter re-injections and forwards keep their stored link
-- (delivery_from.parent_*), which is tried first.
--
-- delivery_path() follows a recipient hop by hop (at most fleet_max_hops(), never
-- visiting a message twice); delivery_status and message_status gain the fate at the
-- end of that path (final_status, final_host, final_queue_id, final_arrived_at),
-- appended after their existing columns so that every reader keeps working.

-- Longest path followed from a recipient (MX → filter → store → … is 3-4 hops).
CREATE FUNCTION fleet_max_hops() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 8 $$;

-- How far apart the sender's `status=sent` and the receiver's arrival of the message
-- may be: the SMTP session between them (a large message on a slow link) plus the
-- clock skew between the hosts.
CREATE FUNCTION fleet_link_tolerance() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT interval '5 minutes' $$;

-- Names and addresses under which a host is known, besides the names learned from the
-- logs: filled by pftrack from the configuration (`fleet.host_aliases`), replaced as a
-- whole on every start. alias is lower-case: a host name or an IP address.
CREATE TABLE host_alias (
    alias  text COLLATE "C" PRIMARY KEY,
    host   text COLLATE "C" NOT NULL
);

-- The name and the address of a relay= value: `name[addr]:port` → name, addr
-- (lower-case; NULL when absent, e.g. relay=local, relay=none).
CREATE FUNCTION relay_name(relay text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT NULLIF(lower(split_part($1, '[', 1)), '')
$$;

CREATE FUNCTION relay_addr(relay text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos($1, '[') > 0
                THEN NULLIF(lower(split_part(split_part($1, '[', 2), ']', 1)), '') END
$$;

-- A Message-ID Postfix generated on the host that logged it: cleanup writes
-- `YYYYMMDDHHMMSS.QUEUEID@myhostname` for mail without one (notifications, pickup),
-- with the message's own queue id. The part after `@` is that host's myhostname.
-- Indexed (partially: only such messages, a small share), so that learning a host's
-- myhostname reads a few index entries.
CREATE INDEX delivery_from_own_message_id
    ON delivery_from (host, lower(split_part(message_id, '@', 2)))
    WHERE message_id LIKE '%.' || queue_id || '@%';

-- Names learned from the logs: each host's myhostname (above). A view, so it is never
-- stale; `SELECT * FROM host_identity` lists what pftrack knows.
CREATE VIEW host_identity AS
SELECT DISTINCT host, lower(split_part(message_id, '@', 2)) AS identity, 'myhostname' AS source
FROM delivery_from
WHERE message_id LIKE '%.' || queue_id || '@%'
  AND message_id ~ '^[0-9]{14}\.'
UNION
SELECT host, alias, 'alias' FROM host_alias;

-- Whether `name` or `addr` (a relay's, or a client's as smtpd logged it) is host
-- `host`: its syslog name, the first label of a fully qualified name when the syslog
-- name is short (syslog writes `store1`, the relay says store1.example.internal), its
-- myhostname, or an alias of it.
CREATE FUNCTION fleet_host_is(host text, name text, addr text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(lower($2) = lower($1), false)
        OR coalesce(strpos($1, '.') = 0 AND lower(split_part($2, '.', 1)) = lower($1), false)
        OR EXISTS (SELECT 1 FROM host_alias a
                   WHERE a.host = $1 AND a.alias IN (lower($2), lower($3)))
        OR ($2 IS NOT NULL AND $2 <> 'unknown' AND EXISTS (
                SELECT 1 FROM delivery_from g
                WHERE g.host = $1
                  AND lower(split_part(g.message_id, '@', 2)) = lower($2)
                  AND g.message_id LIKE '%.' || g.queue_id || '@%'))
$$;

-- The path of one recipient, hop 0 being the recipient itself: each following hop is
-- the message its delivery continued as (same host: content filter, forward; another
-- host: relay) and the recipient there (same address, or the address it was rewritten
-- to: orig_to; a message of one recipient continues with it whatever its address).
-- A hop reaching a message with no delivery of the recipient logged (yet) has status
-- 'unknown'. link says how the hop was reached: NULL for hop 0, then 'reinjection',
-- 'forward' or 'relay'.
CREATE FUNCTION delivery_path(p_host text, p_queue_id text, p_arrived_at timestamptz,
                              p_recipient text, p_orig_recipient text)
RETURNS TABLE (hop integer, host text, queue_id text, arrived_at timestamptz,
               recipient text, orig_recipient text, status text, status_at timestamptz,
               dsn text, relay text, response text, queued_as text, link text)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
#variable_conflict use_column
DECLARE
    cur record;
    nxt record;
    visited text[] := '{}';
BEGIN
    SELECT t.host, t.queue_id, t.arrived_at, t.recipient, t.orig_recipient,
           effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status,
           t.status_at, t.dsn, t.relay, t.response, t.queued_as
    INTO cur
    FROM delivery_to t
    JOIN delivery_from f
      ON f.queue_id = t.queue_id AND f.host = t.host AND f.arrived_at = t.arrived_at
    WHERE t.queue_id = p_queue_id AND t.host = p_host AND t.arrived_at = p_arrived_at
      AND t.recipient = p_recipient AND t.orig_recipient = coalesce(p_orig_recipient, '');
    IF NOT FOUND THEN
        RETURN;
    END IF;
    hop := 0;
    link := NULL;
    LOOP
        host := cur.host; queue_id := cur.queue_id; arrived_at := cur.arrived_at;
        recipient := cur.recipient; orig_recipient := NULLIF(cur.orig_recipient, '');
        status := cur.status; status_at := cur.status_at; dsn := cur.dsn;
        relay := cur.relay; response := cur.response; queued_as := cur.queued_as;
        RETURN NEXT;
        visited := visited || (cur.host || ' ' || cur.queue_id || ' ' || cur.arrived_at::text);
        EXIT WHEN hop >= fleet_max_hops() OR cur.status IS DISTINCT FROM 'sent'
               OR cur.queued_as IS NULL;

        -- The same host's continuation (stored by the extractor) first.
        SELECT c.host, c.queue_id, c.arrived_at, c.parent_kind AS kind
        INTO nxt
        FROM delivery_from c
        WHERE c.host = cur.host AND c.parent_queue_id = cur.queue_id
          AND c.parent_arrived_at = cur.arrived_at
          AND c.parent_kind IN ('reinjection', 'forward')
          AND c.queue_id = cur.queued_as
        LIMIT 1;
        IF NOT FOUND THEN
            -- Another host's message with that queue id, arrived about when it was sent.
            SELECT r.host, r.queue_id, r.arrived_at, 'relay' AS kind
            INTO nxt
            FROM delivery_from r
            WHERE r.queue_id = cur.queued_as
              AND r.host <> cur.host
              AND r.arrived_at >= cur.status_at - fleet_link_tolerance()
              AND r.arrived_at <= cur.status_at + fleet_link_tolerance()
              AND (fleet_host_is(r.host, relay_name(cur.relay), relay_addr(cur.relay))
                   OR fleet_host_is(cur.host, r.client_name, r.client_addr))
            ORDER BY abs(extract(epoch FROM r.arrived_at - cur.status_at)), r.host
            LIMIT 1;
            EXIT WHEN NOT FOUND;
        END IF;
        EXIT WHEN (nxt.host || ' ' || nxt.queue_id || ' ' || nxt.arrived_at::text) = ANY (visited);

        hop := hop + 1;
        link := nxt.kind;
        SELECT n.host, n.queue_id, n.arrived_at, n.recipient, n.orig_recipient,
               effective_status(n.status, n.status_at, g.expired_at, g.deleted_at) AS status,
               n.status_at, n.dsn, n.relay, n.response, n.queued_as
        INTO cur
        FROM delivery_to n
        JOIN delivery_from g
          ON g.queue_id = n.queue_id AND g.host = n.host AND g.arrived_at = n.arrived_at
        WHERE n.queue_id = nxt.queue_id AND n.host = nxt.host AND n.arrived_at = nxt.arrived_at
          AND (lower(n.recipient) = lower(cur.recipient)
               OR lower(n.orig_recipient) = lower(cur.recipient)
               OR (cur.orig_recipient <> '' AND lower(n.orig_recipient) = lower(cur.orig_recipient))
               OR NOT EXISTS (SELECT 1 FROM delivery_to o
                              WHERE o.queue_id = n.queue_id AND o.host = n.host
                                AND o.arrived_at = n.arrived_at
                                AND (o.recipient, o.orig_recipient)
                                    <> (n.recipient, n.orig_recipient)))
        ORDER BY lower(n.recipient) = lower(cur.recipient) DESC,
                 lower(n.orig_recipient) = lower(cur.recipient) DESC,
                 n.recipient, n.orig_recipient
        LIMIT 1;
        IF NOT FOUND THEN
            host := nxt.host; queue_id := nxt.queue_id; arrived_at := nxt.arrived_at;
            status := 'unknown'; status_at := NULL; dsn := NULL; relay := NULL;
            response := NULL; queued_as := NULL;
            RETURN NEXT;
            EXIT;
        END IF;
    END LOOP;
END
$$;

-- The end of a recipient's path, when it has one: only a sent recipient with a
-- `queued as` id is looked up (the others end where they are).
CREATE FUNCTION delivery_final(p_host text, p_queue_id text, p_arrived_at timestamptz,
                               p_recipient text, p_orig_recipient text)
RETURNS TABLE (host text, queue_id text, arrived_at timestamptz, status text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p.host, p.queue_id, p.arrived_at, p.status
    FROM delivery_path($1, $2, $3, $4, $5) p
    ORDER BY p.hop DESC
    LIMIT 1
$$;

-- delivery_status gains the fate at the end of the path (columns are only ever added
-- at the end): final_status, final_host, final_queue_id, final_arrived_at. A recipient
-- that did not continue anywhere is its own end.
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
    f.tags,
    coalesce(fin.status,
             effective_status(t.status, t.status_at, f.expired_at, f.deleted_at)) AS final_status,
    coalesce(fin.host, t.host) AS final_host,
    coalesce(fin.queue_id, t.queue_id) AS final_queue_id,
    coalesce(fin.arrived_at, t.arrived_at) AS final_arrived_at
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
) c ON true
LEFT JOIN LATERAL (
    -- Aggregated to exactly one row, so that a query not reading final_* never calls
    -- delivery_final (the planner removes the join); only sent recipients with a
    -- `queued as` id can continue.
    SELECT (array_agg(d.status))[1] AS status, (array_agg(d.host))[1] AS host,
           (array_agg(d.queue_id))[1] AS queue_id, (array_agg(d.arrived_at))[1] AS arrived_at
    FROM delivery_final(t.host, t.queue_id, t.arrived_at, t.recipient, t.orig_recipient) d
    WHERE t.queued_as IS NOT NULL AND t.status = 'sent'
) fin ON true;

-- message_status gains the fate of the message at the end of its recipients' paths
-- (columns only added at the end): final_status is its outcome computed from those
-- statuses ('unknown' when a path ends in a message with no delivery of the recipient
-- logged yet), final_host/final_queue_id/final_arrived_at the message they all end in.
CREATE OR REPLACE VIEW message_status AS
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
    ch.children,
    CASE
        WHEN fr.recipients = 0 THEN
            CASE
                WHEN f.rejected_at IS NOT NULL THEN 'rejected'
                WHEN f.deleted_at IS NOT NULL THEN 'deleted'
                ELSE 'no_recipients'
            END
        WHEN fr.deferred > 0 THEN 'deferred'
        WHEN fr.unknown > 0 THEN 'unknown'
        WHEN fr.sent = fr.recipients THEN 'sent'
        WHEN fr.sent > 0 THEN 'partial'
        WHEN fr.rejected = fr.recipients THEN 'rejected'
        WHEN fr.discarded = fr.recipients THEN 'discarded'
        WHEN fr.deleted = fr.recipients THEN 'deleted'
        WHEN fr.expired = fr.recipients THEN 'expired'
        WHEN fr.bounced + fr.expired > 0 THEN 'bounced'
        ELSE 'failed'
    END AS final_status,
    CASE WHEN fr.recipients = 0 THEN f.host
         WHEN fr.ends = 1 THEN fr.host END AS final_host,
    CASE WHEN fr.recipients = 0 THEN f.queue_id
         WHEN fr.ends = 1 THEN fr.queue_id END AS final_queue_id,
    CASE WHEN fr.recipients = 0 THEN f.arrived_at
         WHEN fr.ends = 1 THEN fr.arrived_at END AS final_arrived_at
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
) ch
LEFT JOIN LATERAL (
    -- The recipients counted by the status at the end of their paths, and the message
    -- they end in when it is one for all (final_host/final_queue_id; NULL when the
    -- recipients' paths end in different messages). A query not reading final_*
    -- never computes this (one row: the planner removes the join).
    SELECT
        count(*) AS recipients,
        count(*) FILTER (WHERE e.status = 'sent') AS sent,
        count(*) FILTER (WHERE e.status = 'deferred') AS deferred,
        count(*) FILTER (WHERE e.status = 'bounced') AS bounced,
        count(*) FILTER (WHERE e.status = 'expired') AS expired,
        count(*) FILTER (WHERE e.status = 'rejected') AS rejected,
        count(*) FILTER (WHERE e.status = 'discarded') AS discarded,
        count(*) FILTER (WHERE e.status = 'deleted') AS deleted,
        count(*) FILTER (WHERE e.status = 'unknown') AS unknown,
        count(DISTINCT (e.host, e.queue_id, e.arrived_at)) AS ends,
        min(e.host) AS host,
        min(e.queue_id) AS queue_id,
        min(e.arrived_at) AS arrived_at
    FROM delivery_to t
    CROSS JOIN LATERAL (
        SELECT coalesce(d.status,
                        effective_status(t.status, t.status_at, f.expired_at, f.deleted_at))
                   AS status,
               coalesce(d.host, t.host) AS host,
               coalesce(d.queue_id, t.queue_id) AS queue_id,
               coalesce(d.arrived_at, t.arrived_at) AS arrived_at
        FROM (SELECT 1) one
        LEFT JOIN LATERAL (
            SELECT * FROM delivery_final(t.host, t.queue_id, t.arrived_at, t.recipient,
                                         t.orig_recipient)
            WHERE t.queued_as IS NOT NULL AND t.status = 'sent'
        ) d ON true
    ) e
    WHERE t.queue_id = f.queue_id AND t.host = f.host AND t.arrived_at = f.arrived_at
) fr ON true;

