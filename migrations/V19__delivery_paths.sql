-- pftrack schema, version 19: delivery_paths(), the paths of every recipient of many
-- messages in one statement (issue 16: status lookups at 50 M recipients).
--
-- `pftrack status` followed each shown recipient's path with one delivery_path() call:
-- four queries per hop, each run through PL/pgSQL with a plan over every monthly
-- partition (V14) whose partitions are locked at every execution. For an address with
-- 50 messages (57 relayed recipients) that was 12.5 ms of a 39 ms lookup with every
-- page cached. delivery_paths() follows all of them at once, as a recursive query: each
-- step takes every path one hop further, with the same queries delivery_path() runs
-- for one (V17's body) as lateral sub-queries, planned and locked once per call.
--
-- Its rows are delivery_path()'s for each recipient of the given messages, hop 0
-- included, prefixed by the recipient they start from (start_*). The rules are
-- delivery_path()'s, line for line:
--   * a hop follows a recipient `sent` with a `queued as` id, at most fleet_max_hops()
--     hops, never to a message already on the path;
--   * the same host's continuation (reinjection, forward) first — the first arm of the
--     UNION ALL under LIMIT 1: PostgreSQL's Append runs its arms in order and the limit
--     stops it at the first row, as delivery_path's IF NOT FOUND does — else another
--     host's message with that queue id, arrived within fleet_link_tolerance() of the
--     sending, its host named by the relay or naming the sender, the nearest in time;
--   * the recipient there: the same address, the address it was rewritten to, or the
--     message's only recipient; none: one last hop with status 'unknown' and the
--     previous hop's addresses. Its effective status reads the message's expiry and
--     deletion from the row that found the hop (delivery_path() reads that row again).
-- tests/fleet.rs checks that both give the same rows on every fleet fixture.
-- delivery_path() stays: the views' final_* call it for the rows a query reads.

CREATE FUNCTION delivery_paths(p_hosts text[], p_queue_ids text[], p_arrived_at timestamptz[])
RETURNS TABLE (start_host text, start_queue_id text, start_arrived_at timestamptz,
               start_recipient text, start_orig_recipient text,
               hop integer, host text, queue_id text, arrived_at timestamptz,
               recipient text, orig_recipient text, status text, status_at timestamptz,
               dsn text, relay text, response text, queued_as text, link text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
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
