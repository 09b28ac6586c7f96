-- Generator of a large fleet database for scripts/bench-fleet (part 3), in SQL: rows in
-- the shape the loader writes for the fleet of `pftrack-loggen --fleet` (compare a
-- loaded fleet: mx hosts relay to store hosts with `queued as`, stores deliver over
-- LMTP or bounce with a notification that travels back through the mx; submission
-- hosts relay to a smarthost that delivers outside, now and then after a deferral).
--
-- One "unit" is one mail through two hosts:
--   * inbound (70 %): mxK (client outside) → storeS (client mxK) → LMTP; the first
--     recipient of 4 % of the units bounces at the store (mailbox full), and the
--     store's non-delivery notification goes back through mxK to the sender;
--   * outbound (30 %): submitK (SASL) → smarthost1 → an outside MX; 5 % of the units
--     are deferred once (connection timed out) and sent 15 minutes later.
-- 1 to 3 recipients each, from a skewed pool (a few addresses get much of the mail).
-- Rows per unit: 2 messages and ~4 recipients (+2 and +2 with a notification), one
-- attempt row per recipient (+1 per deferral).
--
-- Objects live in the schema bench_gen (dropped by bench-fleet when done). The caller
-- sets psql variables: units (how many), months (over how many whole months, ending
-- with the last complete month), setaside (true: create the months' partitions and set
-- the indexes aside; false: only the functions, to add rows to a database as it is).
--
-- Size, measured at 5 M recipient rows: 930 bytes per recipient row with everything
-- (delivery_to 414 with its indexes, delivery_attempt 327, delivery_from 186), 600
-- without the attempt rows.

CREATE SCHEMA bench_gen;

CREATE TABLE bench_gen.params AS
SELECT date_trunc('month', now()) - make_interval(months => :months) AS start,
       date_trunc('month', now()) AS finish,
       :units::bigint AS units;

-- A uniform number in [0, 1) from (k, salt): deterministic, so a re-run writes the same.
CREATE FUNCTION bench_gen.u(k bigint, salt bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashint8extended(k, salt) & 9007199254740991)::float8 / 9007199254740992
$$;

-- A 10-character upper-case hexadecimal queue id.
CREATE FUNCTION bench_gen.qid(k bigint, salt text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT upper(substr(md5(salt || k::text), 1, 10))
$$;

CREATE FUNCTION bench_gen.outside_domain(k bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY['example.net', 'bigmail.example', 'shop.test', 'univ.example',
                  'news.invalid', 'isp.test', 'corp.example', 'mail.example.org'])
           [1 + floor(8 * bench_gen.u(k, 11))::int]
$$;

-- The units: one row each, with what its rows are made of.
CREATE FUNCTION bench_gen.unit_rows(lo bigint, hi bigint)
RETURNS TABLE (i bigint, t timestamptz, outbound boolean, a text, b text, a_num int,
               b_num int, qa text, qb text, qn text, qm text, sender text,
               sender_domain text, message_id text, n int, bounce boolean,
               deferral boolean, size bigint)
LANGUAGE sql STABLE AS $$
    SELECT i, t, outbound,
           CASE WHEN outbound THEN 'submit' || a_num ELSE 'mx' || a_num END,
           CASE WHEN outbound THEN 'smarthost1' ELSE 'store' || b_num END,
           a_num, b_num,
           bench_gen.qid(i, 'a'), bench_gen.qid(i, 'b'), bench_gen.qid(i, 'n'),
           bench_gen.qid(i, 'm'),
           sender_local || '@' || sender_domain, sender_domain,
           substr(md5('m' || i), 1, 16) || '@' || sender_domain,
           1 + (i % 3)::int,
           NOT outbound AND bench_gen.u(i, 5) < 0.04,
           outbound AND bench_gen.u(i, 17) < 0.05,
           2000 + floor(200000 * bench_gen.u(i, 19) ^ 2)::bigint
    FROM (
        SELECT i, p.start + (p.finish - p.start) * (i::float8 / p.units) AS t, outbound,
               CASE WHEN outbound THEN 1 + (i % 4)::int ELSE 1 + (i % 5)::int END AS a_num,
               CASE WHEN outbound THEN 1 ELSE 1 + ((i / 5) % 10)::int END AS b_num,
               CASE WHEN outbound THEN 'user' || floor(100000 * bench_gen.u(i, 13) ^ 2)::bigint
                    ELSE 'sender' || floor(200000 * bench_gen.u(i, 13) ^ 2)::bigint END
                   AS sender_local,
               CASE WHEN outbound THEN 'corp.fleet.example'
                    ELSE bench_gen.outside_domain(i) END AS sender_domain
        FROM bench_gen.params p,
             LATERAL (SELECT i, bench_gen.u(i, 7) < 0.3 AS outbound
                      FROM generate_series(lo, hi - 1) i) s
    ) s
$$;

-- Write units [lo, hi): their messages, recipients and (with_attempts) attempts.
-- Returns the number of recipient rows.
CREATE FUNCTION bench_gen.write_units(lo bigint, hi bigint, with_attempts boolean)
RETURNS bigint
LANGUAGE sql VOLATILE AS $$
WITH m AS MATERIALIZED (
    SELECT * FROM bench_gen.unit_rows(lo, hi)
),
rcpt AS MATERIALIZED (
    -- Distinct recipients of each unit (the same address drawn twice is one).
    SELECT DISTINCT ON (m.i, addr) m.*, j, addr
    FROM m
    CROSS JOIN LATERAL generate_series(1, m.n) j
    CROSS JOIN LATERAL (
        SELECT CASE WHEN m.outbound
                    THEN 'contact' || floor(500000 * bench_gen.u(m.i * 4 + j, 3) ^ 3)::bigint
                         || '@' || bench_gen.outside_domain(m.i * 4 + j)
                    ELSE 'user' || floor(2000000 * bench_gen.u(m.i * 4 + j, 3) ^ 3)::bigint
                         || '@users.fleet.example' END AS addr
    ) x
    ORDER BY m.i, addr, j
),
msg AS (
    -- hop 0: the first host; hop 1: the next; NDR at the store (2) and at the mx (3).
    SELECT m.t AS sort_t, m.a AS host, m.qa AS queue_id, m.t AS arrived_at,
           m.t + interval '500 ms' AS last_seen_at, 'smtpd' AS origin,
           CASE WHEN m.outbound THEN 'client' || (m.i % 250) || '.isp.test'
                ELSE 'mail' || (m.i % 97) || '.' || m.sender_domain END AS client_name,
           CASE WHEN m.outbound THEN '203.0.113.' || (m.i % 250)
                ELSE '198.51.100.' || (m.i % 250) END AS client_addr,
           CASE WHEN m.outbound THEN 'PLAIN' END AS sasl_method,
           CASE WHEN m.outbound THEN m.sender END AS sasl_username,
           m.message_id, m.sender, m.size, m.n AS nrcpt,
           m.t + interval '500 ms' AS removed_at,
           NULL::text AS parent_queue_id, NULL::timestamptz AS parent_arrived_at,
           NULL::text AS parent_kind
    FROM m
    UNION ALL
    SELECT m.t, m.b, m.qb, m.t + interval '300 ms',
           CASE WHEN m.deferral THEN m.t + interval '15 min' ELSE m.t + interval '900 ms' END,
           'smtpd', m.a || '.fleet.example',
           CASE WHEN m.outbound THEN '10.0.3.' || m.a_num ELSE '10.0.0.' || m.a_num END,
           NULL, NULL, m.message_id, m.sender, m.size + 600, m.n,
           CASE WHEN m.deferral THEN m.t + interval '15 min' ELSE m.t + interval '900 ms' END,
           NULL, NULL, NULL
    FROM m
    UNION ALL
    SELECT m.t, m.b, m.qn, m.t + interval '700 ms', m.t + interval '1 s', 'notification',
           NULL, NULL, NULL, NULL,
           to_char((m.t + interval '700 ms') AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') || '.'
               || m.qn || '@' || m.b || '.fleet.internal',
           '', 3000 + m.size / 10, 1, m.t + interval '1 s',
           m.qb, m.t + interval '300 ms', 'non_delivery'
    FROM m WHERE m.bounce
    UNION ALL
    SELECT m.t, m.a, m.qm, m.t + interval '900 ms', m.t + interval '1400 ms', 'smtpd',
           m.b || '.fleet.example', '10.0.1.' || m.b_num, NULL, NULL,
           to_char((m.t + interval '700 ms') AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') || '.'
               || m.qn || '@' || m.b || '.fleet.internal',
           '', 3000 + m.size / 10 + 600, 1, m.t + interval '1400 ms', NULL, NULL, NULL
    FROM m WHERE m.bounce
),
ins_from AS (
    INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, origin, client_name,
        client_addr, sasl_method, sasl_username, message_id, sender, size, nrcpt,
        removed_at, parent_queue_id, parent_arrived_at, parent_kind)
    SELECT host, queue_id, arrived_at, last_seen_at, origin, client_name, client_addr,
           sasl_method, sasl_username, message_id, sender, size, nrcpt, removed_at,
           parent_queue_id, parent_arrived_at, parent_kind
    FROM msg
    ORDER BY sort_t, arrived_at
    RETURNING 1
),
rows AS MATERIALIZED (
    -- hop 0: relayed to the next host with `queued as`.
    SELECT r.t AS sort_t, r.a AS host, r.qa AS queue_id, r.t AS arrived_at,
           r.addr AS recipient, 'sent' AS status, r.t + interval '400 ms' AS status_at,
           '2.0.0' AS dsn,
           CASE WHEN r.outbound THEN 'smarthost1.fleet.internal[10.0.2.1]:25'
                ELSE r.b || '.fleet.internal[10.0.1.' || r.b_num || ']:25' END AS relay,
           '250 2.0.0 Ok: queued as ' || r.qb AS response,
           0.4::real AS delay, 0.1::real AS d_bq, 0.01::real AS d_iq, 0.1::real AS d_cs,
           0.19::real AS d_tx, r.qb AS queued_as, 1 AS attempts,
           r.t + interval '400 ms' AS first_attempt_at,
           NULL::text AS failure_reason, NULL::boolean AS hard, NULL::text AS failure_rule,
           false AS deferred_first
    FROM rcpt r
    UNION ALL
    -- hop 1: delivered (LMTP or outside), bounced, or deferred first.
    SELECT r.t, r.b, r.qb, r.t + interval '300 ms', r.addr,
           CASE WHEN r.bounce AND r.j = 1 THEN 'bounced' ELSE 'sent' END,
           CASE WHEN r.deferral THEN r.t + interval '15 min' ELSE r.t + interval '600 ms' END,
           CASE WHEN r.bounce AND r.j = 1 THEN '5.2.2' ELSE '2.0.0' END,
           CASE WHEN r.outbound
                THEN 'mx.' || split_part(r.addr, '@', 2) || '[192.0.2.' || (r.i % 200) || ']:25'
                ELSE r.b || '.fleet.internal[private/dovecot-lmtp]' END,
           CASE WHEN r.outbound THEN '250 2.0.0 Ok: queued as ' || bench_gen.qid(r.i * 4 + r.j, 'x')
                WHEN r.bounce AND r.j = 1
                THEN 'host ' || r.b || '.fleet.internal[private/dovecot-lmtp] said: 552 5.2.2 <'
                     || r.addr || '> Mailbox is full / Blocks or inodes quota exceeded (in reply to end of DATA command)'
                ELSE '250 2.0.0 <' || r.addr || '> Saved' END,
           CASE WHEN r.deferral THEN 900.3 ELSE 0.3 END::real, 0.1::real, 0.01::real,
           0.05::real, 0.14::real,
           CASE WHEN r.outbound THEN bench_gen.qid(r.i * 4 + r.j, 'x') END,
           CASE WHEN r.deferral THEN 2 ELSE 1 END,
           r.t + interval '600 ms',
           CASE WHEN r.bounce AND r.j = 1 THEN 'mailboxfull' END,
           CASE WHEN r.bounce AND r.j = 1 THEN true END,
           CASE WHEN r.bounce AND r.j = 1 THEN 'builtin:53:mailbox-full' END,
           r.deferral
    FROM rcpt r
    UNION ALL
    -- The store's notification to the sender, relayed back through the mx …
    SELECT m.t, m.b, m.qn, m.t + interval '700 ms', m.sender, 'sent',
           m.t + interval '800 ms', '2.0.0',
           m.a || '.fleet.example[10.0.0.' || m.a_num || ']:25',
           '250 2.0.0 Ok: queued as ' || m.qm, 0.1, 0.05, 0.01, 0.02, 0.02, m.qm, 1,
           m.t + interval '800 ms', NULL, NULL, NULL, false
    FROM m WHERE m.bounce
    UNION ALL
    -- … which sends it outside.
    SELECT m.t, m.a, m.qm, m.t + interval '900 ms', m.sender, 'sent',
           m.t + interval '1400 ms', '2.0.0',
           'mx.' || m.sender_domain || '[192.0.2.' || (m.i % 200) || ']:25',
           '250 2.0.0 Ok: queued as ' || bench_gen.qid(m.i, 'y'), 0.5, 0.1, 0.01, 0.1, 0.29,
           bench_gen.qid(m.i, 'y'), 1, m.t + interval '1400 ms', NULL, NULL, NULL, false
    FROM m WHERE m.bounce
),
ins_to AS (
    INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, orig_recipient, status,
        status_at, dsn, relay, response, delay, delay_before_qmgr, delay_in_qmgr,
        delay_conn_setup, delay_transmission, queued_as, attempts, first_attempt_at,
        last_attempt_at, failure_reason, hard, failure_rule)
    SELECT host, queue_id, arrived_at, recipient, '', status, status_at, dsn, relay,
           response, delay, d_bq, d_iq, d_cs, d_tx, queued_as, attempts,
           first_attempt_at, status_at, failure_reason, hard, failure_rule
    FROM rows
    ORDER BY sort_t, arrived_at
    RETURNING 1
),
ins_attempt AS (
    INSERT INTO delivery_attempt (host, queue_id, arrived_at, recipient, orig_recipient,
        attempt_at, status, is_attempt, dsn, relay, response, delay, delay_before_qmgr,
        delay_in_qmgr, delay_conn_setup, delay_transmission, queued_as, failure_reason,
        hard, failure_rule)
    SELECT host, queue_id, arrived_at, recipient, '', attempt_at, status, true, dsn, relay,
           response, delay, d_bq, d_iq, d_cs, d_tx, queued_as, failure_reason, hard,
           failure_rule
    FROM (
        SELECT sort_t, host, queue_id, arrived_at, recipient, status_at AS attempt_at,
               status, dsn, relay, response, delay, d_bq, d_iq, d_cs, d_tx, queued_as,
               failure_reason, hard, failure_rule
        FROM rows
        UNION ALL
        SELECT sort_t, host, queue_id, arrived_at, recipient, first_attempt_at, 'deferred',
               '4.4.1', split_part(relay, '[', 1) || '[' || split_part(split_part(relay, '[', 2), ']', 1) || ']:25',
               'connect to ' || split_part(relay, '[', 1) || '[' || split_part(split_part(relay, '[', 2), ']', 1)
                   || ']:25: Connection timed out',
               0.3, 0.1, 0.01, 0.19, 0, NULL, 'networkerror', false, 'postfix:connect-timeout'
        FROM rows WHERE deferred_first
    ) a
    WHERE with_attempts
    ORDER BY sort_t, arrived_at, attempt_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins_to) + 0 * (SELECT count(*) FROM ins_from)
       + 0 * (SELECT count(*) FROM ins_attempt)
$$;

\if :setaside
-- The months' partitions (migration V14), created as the loader creates them, before
-- the indexes are set aside (a partition attached later gets the parent's indexes).
SELECT pftrack_time_partitions(ARRAY(
    SELECT generate_series(p.start, p.finish - interval '1 day', interval '1 month')
    FROM bench_gen.params p)) AS partitions_created;

-- Set the indexes of the delivery tables aside (their definitions kept in
-- bench_gen.saved_index, primary keys first when built again), as a bulk load does:
-- building each once by sorting is far cheaper than maintaining it row by row. On a
-- partitioned table the parent's index or key goes, with its partitions' ones.
CREATE TABLE bench_gen.saved_index AS
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)) AS ddl,
       1 AS phase, c.conrelid::regclass::text AS table_name, c.conname::text AS name
FROM pg_constraint c
WHERE c.contype = 'p'
  AND c.conrelid::regclass::text IN ('delivery_from', 'delivery_to', 'delivery_attempt')
UNION ALL
SELECT replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '), 2,
       i.indrelid::regclass::text, i.indexrelid::regclass::text
FROM pg_index i
WHERE i.indrelid::regclass::text IN ('delivery_from', 'delivery_to', 'delivery_attempt')
  AND NOT i.indisprimary;

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM bench_gen.saved_index ORDER BY phase DESC LOOP
        IF r.phase = 1 THEN
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.table_name, r.name);
        ELSE
            EXECUTE format('DROP INDEX %s', r.name);
        END IF;
    END LOOP;
END
$$;
\endif
