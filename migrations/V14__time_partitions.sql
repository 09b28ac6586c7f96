-- pftrack schema, version 14: the delivery tables, their attempt history, NOQUEUE
-- decisions and SASL failures partitioned by month (issue 16).
--
-- Why: at tens of millions of rows, retention by DELETE is slow and bloats the tables,
-- and every index grows without bound. With monthly partitions a month past retention
-- is dropped whole (instant, no bloat), and lookups and merges work in the partitions
-- of the months they touch.
--
-- Partition key: the message's arrival (`arrived_at`) for delivery_from, delivery_to
-- and delivery_attempt — every primary key already contains it, so the loader's
-- upserts work unchanged and all rows of one message live in one partition; the time
-- logged (`logged_at`, also in their keys) for noqueue and auth_failure. Months are
-- UTC months.
--
-- Partitions are created by `pftrack_time_partitions(months)` below: by the loader for
-- the months a batch brings, before it writes it (so a backfill of last year's logs
-- creates last year's months), and ahead of time on start and daily. There is no
-- DEFAULT partition: a row it caught would stop its month's partition from ever being
-- created.
--
-- Conversion in place: the existing tables are not copied. Each becomes the first
-- partition of its new parent, `<table>_legacy`, holding every row from the beginning
-- of time up to the end of the month of the newest row of any of them (`FOR VALUES
-- FROM (MINVALUE)`; one bound for all, so months line up across the tables); later
-- months get monthly partitions. Nothing is rewritten (the migration reads each
-- table once, for its newest row), so it takes seconds at any size and cannot lose a
-- row. Retention purges the legacy partition row by row as before, and drops it
-- whole once all of it is past the limit. A database without rows simply gets new
-- tables. Views that read these tables are re-created on the new
-- parents with their grants (their definitions are read back from the catalog, so they
-- are exactly the ones V1–V13 left).

-- The partitioned tables: what they are partitioned by and how their partitions are
-- built.
CREATE TABLE time_partitioned (
    parent      text    PRIMARY KEY,
    key_column  text    NOT NULL,
    -- storage parameter of each partition (a partitioned parent has none of its own):
    -- room for HOT updates where rows are updated as a message's later lines arrive
    fillfactor  integer NOT NULL
);
INSERT INTO time_partitioned VALUES
    ('delivery_from',    'arrived_at', 85),
    ('delivery_to',      'arrived_at', 85),
    ('delivery_attempt', 'arrived_at', 100),
    ('noqueue',          'logged_at',  100),
    ('auth_failure',     'logged_at',  100);

-- Every partition pftrack made, with its range (`from_at` NULL: from the beginning of
-- time, the legacy partition). Read by the loader (which months exist) and by
-- retention (which partitions are wholly past the limit).
CREATE TABLE time_partition (
    partition   text        PRIMARY KEY,
    parent      text        NOT NULL REFERENCES time_partitioned,
    from_at     timestamptz,
    until_at    timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX time_partition_parent ON time_partition (parent, until_at);

-- The UTC month starting at or before `at`.
CREATE FUNCTION utc_month(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';

-- Create, for each partitioned table, the monthly partitions of the UTC months that
-- `months` fall in (any instants; NULLs ignored), unless a partition already covers
-- them. Returns how many partitions were created. Safe to call from several loaders at
-- once: they queue on one transaction-level advisory lock and find the work done.
-- A partition is built as a table of its own and then attached: attaching needs only
-- a SHARE UPDATE EXCLUSIVE lock on the parent, so loaders writing other months go on.
CREATE FUNCTION pftrack_time_partitions(months timestamptz[]) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    m        timestamptz;
    next_m   timestamptz;
    t        record;
    name     text;
    created  integer := 0;
BEGIN
    -- "pftrack\3", distinct from the other advisory lock keys (crates/store/src/partition.rs)
    PERFORM pg_advisory_xact_lock(8099289014481414915);
    FOR m IN SELECT DISTINCT utc_month(x) FROM unnest(months) AS x WHERE x IS NOT NULL
    LOOP
        next_m := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        FOR t IN SELECT * FROM time_partitioned ORDER BY parent LOOP
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM time_partition p
                WHERE p.parent = t.parent
                  AND (p.from_at IS NULL OR p.from_at <= m) AND p.until_at > m);
            name := t.parent || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
            EXECUTE format(
                'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED '
                'INCLUDING STORAGE) WITH (fillfactor = %s)',
                name, t.parent, t.fillfactor);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                t.parent, name, m, next_m);
            INSERT INTO time_partition (partition, parent, from_at, until_at)
                VALUES (name, t.parent, m, next_m);
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- The conversion.
DO $$
DECLARE
    tables   text[] := ARRAY['delivery_from', 'delivery_to', 'delivery_attempt',
                             'noqueue', 'auth_failure'];
    tbl      text;
    legacy   text;
    key_col  text;
    newest   timestamptz;
    latest   timestamptz := '-infinity';
    any_rows boolean := false;
    until_m  timestamptz;
    nrows    bigint;
    v        record;
    i        record;
    g        record;
    pending  integer;
    rounds   integer := 0;
BEGIN
    -- 1. The views reading these tables, directly or through other views, with what
    --    re-creating them needs.
    CREATE TEMP TABLE v14_view ON COMMIT DROP AS
    WITH RECURSIVE dep(oid) AS (
        SELECT DISTINCT r.ev_class
        FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
        WHERE d.classid = 'pg_rewrite'::regclass
          AND d.refobjid = ANY (SELECT to_regclass(x)::oid FROM unnest(tables) x)
        UNION
        SELECT r.ev_class
        FROM dep JOIN pg_depend d ON d.refobjid = dep.oid AND d.classid = 'pg_rewrite'::regclass
        JOIN pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> dep.oid
    )
    SELECT c.oid, c.relname::text AS name, pg_get_viewdef(c.oid) AS definition,
           c.reloptions, obj_description(c.oid, 'pg_class') AS comment, c.relacl
    FROM dep JOIN pg_class c ON c.oid = dep.oid
    WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace;
    CREATE TEMP TABLE v14_column_comment ON COMMIT DROP AS
    SELECT w.name, a.attname::text AS column_name, col_description(w.oid, a.attnum) AS comment
    FROM v14_view w JOIN pg_attribute a ON a.attrelid = w.oid
    WHERE a.attnum > 0 AND col_description(w.oid, a.attnum) IS NOT NULL;
    FOR v IN SELECT name FROM v14_view LOOP
        EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', v.name);
    END LOOP;

    -- 2. One bound for every table's legacy partition, so that a month's partitions
    --    line up across the tables (retention drops a month's messages, recipients
    --    and attempts together): the end of the month of the newest row — of now, if
    --    a row claims to be from the future. With any row anywhere, every table gets
    --    its legacy partition (possibly empty); a database without rows gets none.
    FOREACH tbl IN ARRAY tables LOOP
        SELECT key_column INTO key_col FROM time_partitioned WHERE parent = tbl;
        EXECUTE format('SELECT max(%I) FROM %I', key_col, tbl) INTO newest;
        IF newest IS NOT NULL THEN
            any_rows := true;
            latest := GREATEST(latest, LEAST(newest, now()));
        END IF;
    END LOOP;
    until_m := ((utc_month(latest) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';

    -- 3. Each table: set aside as <table>_legacy, a partitioned parent in its place
    --    with the same columns, keys, indexes, triggers and grants, then the old table
    --    attached as its first partition (or dropped when empty).
    FOREACH tbl IN ARRAY tables LOOP
        legacy := tbl || '_legacy';
        SELECT key_column INTO key_col FROM time_partitioned WHERE parent = tbl;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, legacy);
        -- The old names go to the parent's indexes; the legacy ones get a suffix.
        CREATE TEMP TABLE v14_index ON COMMIT DROP AS
        SELECT c.relname::text AS name, pg_get_indexdef(x.indexrelid) AS definition,
               con.conname::text AS constraint_name,
               pg_get_constraintdef(con.oid) AS constraint_def
        FROM pg_index x
        JOIN pg_class c ON c.oid = x.indexrelid
        LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid
            AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u')
        WHERE x.indrelid = legacy::regclass;
        FOR i IN SELECT * FROM v14_index LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', i.name, i.name || '_legacy');
        END LOOP;
        EXECUTE format(
            'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED '
            'INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (%I)',
            tbl, legacy, key_col);
        FOR i IN SELECT * FROM v14_index ORDER BY constraint_name IS NULL, name LOOP
            IF i.constraint_name IS NOT NULL THEN
                EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s',
                    tbl, i.constraint_name, i.constraint_def);
            ELSE
                -- "CREATE INDEX n ON public.t …" read back from the legacy table
                EXECUTE regexp_replace(i.definition, ' ON \S+ USING ',
                    format(' ON %I USING ', tbl));
            END IF;
        END LOOP;
        DROP TABLE v14_index;
        -- The table's comment and grants.
        EXECUTE format('COMMENT ON TABLE %I IS %L', tbl,
            obj_description(legacy::regclass, 'pg_class'));
        FOR g IN
            SELECT a.privilege_type, a.grantee
            FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = legacy::regclass AND a.grantee <> c.relowner
        LOOP
            EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, tbl,
                CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
        END LOOP;
        -- Row triggers move to the parent (partitions inherit them from it).
        FOR i IN
            SELECT tgname::text AS name, pg_get_triggerdef(oid) AS definition
            FROM pg_trigger WHERE tgrelid = legacy::regclass AND NOT tgisinternal
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %I', i.name, legacy);
            EXECUTE regexp_replace(i.definition, ' ON \S+ ', format(' ON %I ', tbl));
        END LOOP;

        IF NOT any_rows THEN
            EXECUTE format('DROP TABLE %I', legacy);
            RAISE NOTICE 'V14: % is partitioned by month (it was empty)', tbl;
        ELSE
            -- Rows stamped after the bound (a clock ahead) wait in a temporary table
            -- and go to their monthly partitions below.
            EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT * FROM %I WHERE %I >= %L',
                'v14_future_' || tbl, legacy, key_col, until_m);
            EXECUTE format('DELETE FROM %I WHERE %I >= %L', legacy, key_col, until_m);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                tbl, legacy, until_m);
            INSERT INTO time_partition (partition, parent, from_at, until_at)
                VALUES (legacy, tbl, NULL, until_m);
            RAISE NOTICE 'V14: % is partitioned by month; its existing rows stay where they are, as partition % (before %)',
                tbl, legacy, until_m;
        END IF;
    END LOOP;

    -- Rows stamped after the legacy range, into their months.
    IF any_rows THEN
        FOREACH tbl IN ARRAY tables LOOP
            SELECT key_column INTO key_col FROM time_partitioned WHERE parent = tbl;
            EXECUTE format('SELECT pftrack_time_partitions(ARRAY(SELECT DISTINCT %I FROM %I))',
                key_col, 'v14_future_' || tbl);
            EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl, 'v14_future_' || tbl);
            GET DIAGNOSTICS nrows = ROW_COUNT;
            IF nrows > 0 THEN
                RAISE NOTICE 'V14: % row(s) of % stamped after % went to their monthly partitions',
                    nrows, tbl, until_m;
            END IF;
        END LOOP;
    END IF;

    -- 4. The views again, in an order that works (a view needs the views it reads).
    LOOP
        pending := 0;
        FOR v IN SELECT * FROM v14_view WHERE to_regclass(quote_ident(name)) IS NULL LOOP
            BEGIN
                EXECUTE format('CREATE VIEW %I %s AS %s', v.name,
                    CASE WHEN v.reloptions IS NULL THEN ''
                         ELSE 'WITH (' || array_to_string(v.reloptions, ', ') || ')' END,
                    v.definition);
            EXCEPTION WHEN undefined_table THEN
                pending := pending + 1;
            END;
        END LOOP;
        EXIT WHEN pending = 0;
        rounds := rounds + 1;
        IF rounds > 20 THEN
            RAISE EXCEPTION 'V14: could not re-create % view(s) on the partitioned tables', pending;
        END IF;
    END LOOP;
    FOR v IN SELECT * FROM v14_view LOOP
        IF v.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW %I IS %L', v.name, v.comment);
        END IF;
        FOR g IN
            SELECT a.privilege_type, a.grantee
            FROM aclexplode(v.relacl) a
            WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = to_regclass(quote_ident(v.name)))
        LOOP
            EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, v.name,
                CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
        END LOOP;
    END LOOP;
    FOR v IN SELECT * FROM v14_column_comment LOOP
        EXECUTE format('COMMENT ON COLUMN %I.%I IS %L', v.name, v.column_name, v.comment);
    END LOOP;
END
$$;

-- This month and the next two, so a new database is ready before its first batch.
SELECT pftrack_time_partitions(ARRAY[now(), now() + interval '1 month',
                                     now() + interval '2 months']);
