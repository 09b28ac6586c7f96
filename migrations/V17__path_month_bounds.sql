-- pftrack schema, version 17: delivery_path() reads only the months a hop can be in
-- (issue 16: status lookups at 50 M recipients, tables partitioned by month since V14).
--
-- The same host's continuation (a content filter's re-injection, a local forward) was
-- looked up by its parent's key alone, with no bound on its own arrival: on the monthly
-- partitions of V14 that is a probe of every month's index, this month's and the empty
-- months created ahead included, once per hop of every path. The continuation is made
-- while its parent is delivered — it arrives after the parent and before the parent's
-- "queued as" line — so its arrival lies between the two (with the same tolerance as a
-- cross-host hop for clocks), and the lookup reads one month (two at a month's edge).
-- Every path is the same as before. The rest of V16's body is unchanged.

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
          -- made while the message was delivered: bounds the months to read
          AND c.arrived_at >= cur.arrived_at
          AND c.arrived_at <= cur.status_at + fleet_link_tolerance()
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
