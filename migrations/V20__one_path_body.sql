-- pftrack schema, version 20: one body for the path rules. delivery_path() (one
-- recipient; what the views' final_* call for each row read) becomes delivery_paths()
-- (V19: every recipient of many messages, what `pftrack status` reads) restricted to
-- that recipient. Until now the same rules were written twice, delivery_path()'s loop
-- (V12, V16, V17) and delivery_paths()'s recursive query, kept equal by a test.
--
-- delivery_paths() gains two optional arguments, the recipient and original recipient
-- to start from (NULL: every recipient of the messages, as before); a new signature,
-- so the V19 function is dropped and created again (nothing stores a reference to it:
-- views call delivery_path(), pftrack calls delivery_paths() by name).
--
-- Its query is planned generically, always (plan_cache_mode, a setting of the
-- function): the keys are arrays and each hop's partitions are pruned when the hop is
-- read, so a plan made for the values would be no better, and planning it (about 4 ms
-- over the monthly partitions) for each of a view's rows would be the whole cost.
-- Measured on 1,000 random recipients of the 50 M database of scripts/bench-fleet
-- (1,988 path rows, the same md5 over all of them), warm sessions on an idle machine:
-- 478-520 ms with V17's delivery_path(), 211-226 ms with this one.
--
-- The rules are unchanged (V19's header states them); only the start is filtered.

DROP FUNCTION delivery_paths(text[], text[], timestamptz[]);

CREATE FUNCTION delivery_paths(p_hosts text[], p_queue_ids text[], p_arrived_at timestamptz[],
                               p_recipient text DEFAULT NULL,
                               p_orig_recipient text DEFAULT NULL)
RETURNS TABLE (start_host text, start_queue_id text, start_arrived_at timestamptz,
               start_recipient text, start_orig_recipient text,
               hop integer, host text, queue_id text, arrived_at timestamptz,
               recipient text, orig_recipient text, status text, status_at timestamptz,
               dsn text, relay text, response text, queued_as text, link text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, public
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH RECURSIVE p AS (
        SELECT t.host AS s_host, t.queue_id AS s_queue_id, t.arrived_at AS s_arrived_at,
               t.recipient AS s_recipient, t.orig_recipient AS s_orig_recipient,
               0 AS hop, t.host, t.queue_id, t.arrived_at, t.recipient, t.orig_recipient,
               effective_status(t.status, t.status_at, f.expired_at, f.deleted_at) AS status,
               t.status_at, t.dsn, t.relay, t.response, t.queued_as, NULL::text AS link,
               ARRAY[t.host || ' ' || t.queue_id || ' ' || t.arrived_at::text] AS visited
        FROM unnest(p_hosts, p_queue_ids, p_arrived_at) AS k(host, queue_id, arrived_at)
        JOIN delivery_to t
          ON t.queue_id = k.queue_id AND t.host = k.host AND t.arrived_at = k.arrived_at
        JOIN delivery_from f
          ON f.queue_id = t.queue_id AND f.host = t.host AND f.arrived_at = t.arrived_at
        WHERE p_recipient IS NULL
           OR (t.recipient = p_recipient AND t.orig_recipient = coalesce(p_orig_recipient, ''))
      UNION ALL
        SELECT p.s_host, p.s_queue_id, p.s_arrived_at, p.s_recipient, p.s_orig_recipient,
               p.hop + 1, nx.host, nx.queue_id, nx.arrived_at,
               CASE WHEN nr.host IS NULL THEN p.recipient ELSE nr.recipient END,
               CASE WHEN nr.host IS NULL THEN p.orig_recipient ELSE nr.orig_recipient END,
               CASE WHEN nr.host IS NULL THEN 'unknown' ELSE nr.status END,
               nr.status_at, nr.dsn, nr.relay, nr.response, nr.queued_as, nx.kind,
               p.visited || (nx.host || ' ' || nx.queue_id || ' ' || nx.arrived_at::text)
        FROM p
        CROSS JOIN LATERAL (
            (SELECT c.host, c.queue_id, c.arrived_at, c.parent_kind AS kind,
                    c.expired_at, c.deleted_at
             FROM delivery_from c
             WHERE c.host = p.host AND c.parent_queue_id = p.queue_id
               AND c.parent_arrived_at = p.arrived_at
               AND c.parent_kind IN ('reinjection', 'forward')
               AND c.queue_id = p.queued_as
               AND c.arrived_at >= p.arrived_at
               AND c.arrived_at <= p.status_at + fleet_link_tolerance()
             LIMIT 1)
            UNION ALL
            (SELECT r.host, r.queue_id, r.arrived_at, 'relay', r.expired_at, r.deleted_at
             FROM delivery_from r
             WHERE r.queue_id = p.queued_as
               AND r.host <> p.host
               AND r.arrived_at >= p.status_at - fleet_link_tolerance()
               AND r.arrived_at <= p.status_at + fleet_link_tolerance()
               AND (fleet_host_named(r.host, relay_name(p.relay))
                    OR fleet_host_named(p.host, r.client_name)
                    OR fleet_host_is(r.host, relay_name(p.relay), relay_addr(p.relay))
                    OR fleet_host_is(p.host, r.client_name, r.client_addr))
             ORDER BY abs(extract(epoch FROM r.arrived_at - p.status_at)), r.host
             LIMIT 1)
            LIMIT 1
        ) nx
        LEFT JOIN LATERAL (
            SELECT n.host, n.recipient, n.orig_recipient,
                   effective_status(n.status, n.status_at, nx.expired_at, nx.deleted_at)
                       AS status,
                   n.status_at, n.dsn, n.relay, n.response, n.queued_as
            FROM delivery_to n
            WHERE n.queue_id = nx.queue_id AND n.host = nx.host AND n.arrived_at = nx.arrived_at
              AND (lower(n.recipient) = lower(p.recipient)
                   OR lower(n.orig_recipient) = lower(p.recipient)
                   OR (p.orig_recipient <> '' AND lower(n.orig_recipient) = lower(p.orig_recipient))
                   OR NOT EXISTS (SELECT 1 FROM delivery_to o
                                  WHERE o.queue_id = n.queue_id AND o.host = n.host
                                    AND o.arrived_at = n.arrived_at
                                    AND (o.recipient, o.orig_recipient)
                                        <> (n.recipient, n.orig_recipient)))
            ORDER BY lower(n.recipient) = lower(p.recipient) DESC,
                     lower(n.orig_recipient) = lower(p.recipient) DESC,
                     n.recipient, n.orig_recipient
            LIMIT 1
        ) nr ON true
        WHERE p.hop < fleet_max_hops() AND p.status = 'sent' AND p.queued_as IS NOT NULL
          AND NOT (nx.host || ' ' || nx.queue_id || ' ' || nx.arrived_at::text) = ANY (p.visited)
    )
    SELECT p.s_host, p.s_queue_id, p.s_arrived_at, p.s_recipient, NULLIF(p.s_orig_recipient, ''),
           p.hop, p.host, p.queue_id, p.arrived_at, p.recipient, NULLIF(p.orig_recipient, ''),
           p.status, p.status_at, p.dsn, p.relay, p.response, p.queued_as, p.link
    FROM p
    ORDER BY p.s_host, p.s_queue_id, p.s_arrived_at, p.s_recipient, p.s_orig_recipient, p.hop;
END
$$;

-- The path of one recipient: V12's contract (hop 0 is the recipient itself; no row when
-- the recipient is not in the database), now delivery_paths() started from that
-- recipient alone. SECURITY DEFINER and the fixed search_path as in V13.
CREATE OR REPLACE FUNCTION delivery_path(p_host text, p_queue_id text, p_arrived_at timestamptz,
                                         p_recipient text, p_orig_recipient text)
RETURNS TABLE (hop integer, host text, queue_id text, arrived_at timestamptz,
               recipient text, orig_recipient text, status text, status_at timestamptz,
               dsn text, relay text, response text, queued_as text, link text)
LANGUAGE sql STABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT p.hop, p.host, p.queue_id, p.arrived_at, p.recipient, p.orig_recipient, p.status,
           p.status_at, p.dsn, p.relay, p.response, p.queued_as, p.link
    FROM delivery_paths(ARRAY[p_host], ARRAY[p_queue_id], ARRAY[p_arrived_at],
                        p_recipient, coalesce(p_orig_recipient, '')) p
    ORDER BY p.hop
$$;
