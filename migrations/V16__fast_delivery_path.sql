-- pftrack schema, version 16: delivery_path() decides the usual hand-off without
-- planning fleet_host_is() again at every hop (issue 16: status lookups ≤ 50 ms p99).
--
-- fleet_host_is() has sub-queries (and, since V13, SECURITY DEFINER), so the planner
-- never inlines it: each execution of the query that calls it plans its body again,
-- about 0.5 ms, once per hop of every path followed. That was most of `pftrack status`
-- for an address with many relayed messages (65 paths: 41 of 56 ms, EXPLAIN ANALYZE of
-- the path read; a warm session followed 4454 paths in 10.0 s before, 0.75 s after).
--
-- The usual hand-off — the relay names the next host by its syslog name or by a fully
-- qualified name whose first label is the syslog name (relay=store1.example.internal,
-- host store1), or the receiving smtpd's client names the sender so — is now decided by
-- fleet_host_named(), a plain expression the planner inlines, before fleet_host_is() is
-- called (OR is evaluated left to right and stops at the first true).
-- fleet_host_named(h, n) is exactly the first two terms of fleet_host_is(h, n, a), so
-- every path is the same as before; only aliases and learned myhostnames still go
-- through fleet_host_is(). Nothing else of delivery_path() changes (V12's body).

-- Whether `name` is host `host` by name alone: the syslog name, or the first label of
-- a fully qualified name when the syslog name is short (fleet_host_is's first two
-- terms; no table read, so it can be inlined).
CREATE FUNCTION fleet_host_named(host text, name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(lower($2) = lower($1), false)
        OR coalesce(strpos($1, '.') = 0 AND lower(split_part($2, '.', 1)) = lower($1), false)
$$;

-- V12's delivery_path() with the check above first; SECURITY DEFINER and the fixed
-- search_path of V13 are kept (CREATE OR REPLACE would otherwise drop them).
CREATE OR REPLACE FUNCTION delivery_path(p_host text, p_queue_id text, p_arrived_at timestamptz,
                              p_recipient text, p_orig_recipient text)
RETURNS TABLE (hop integer, host text, queue_id text, arrived_at timestamptz,
               recipient text, orig_recipient text, status text, status_at timestamptz,
               dsn text, relay text, response text, queued_as text, link text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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
              AND (fleet_host_named(r.host, relay_name(cur.relay))
                   OR fleet_host_named(cur.host, r.client_name)
                   OR fleet_host_is(r.host, relay_name(cur.relay), relay_addr(cur.relay))
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
