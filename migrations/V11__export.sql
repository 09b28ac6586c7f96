-- pftrack schema, version 11: incremental accounting export (`pftrack export --output DIR`,
-- issue 14, crates/export).
--
-- Exported tables: delivery_attempt, noqueue, auth_failure (and the expiries on
-- delivery_from, below).
--
-- Which rows has an export directory seen? Not a time (a backfill of old logs inserts
-- old times later) and not a sequence (loaders commit concurrently, so a smaller value
-- can become visible after a larger one was exported): the transaction that stored the
-- row. `loaded_xid` is the 64-bit id of that transaction (`pg_current_xact_id()`, as a
-- bigint so that a BRIN index can serve it; PostgreSQL 15 has no BRIN class for xid8).
-- An exporter reads, in one REPEATABLE READ snapshot, the rows whose transaction is at
-- or after its stored watermark and before `pg_snapshot_xmin(pg_current_snapshot())`:
-- every transaction before that horizon has ended, so no row below it can still
-- appear, and each row is in exactly one window [watermark, horizon). The new
-- watermark is stored in the same transaction that records the finished file.
--
-- Rows stored before this version have no loaded_xid (NULL): the first export of a
-- directory takes them along with everything else.
--
-- Adding a column without a default is a catalog change only (no table rewrite); the
-- default then applies to new rows. Rows reach these tables through COPY or INSERT with
-- explicit column lists (crates/store/src/write.rs), so the default is always applied.
ALTER TABLE delivery_attempt ADD COLUMN loaded_xid bigint;
ALTER TABLE delivery_attempt
    ALTER COLUMN loaded_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
-- Rows arrive in transaction order: a block-range index costs almost nothing per row.
CREATE INDEX delivery_attempt_loaded_xid ON delivery_attempt USING brin (loaded_xid);

-- SASL authentication failures (V9) are immutable like attempts.
ALTER TABLE auth_failure ADD COLUMN loaded_xid bigint;
ALTER TABLE auth_failure
    ALTER COLUMN loaded_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX auth_failure_loaded_xid ON auth_failure USING brin (loaded_xid);

-- NOQUEUE rows count identical decisions of one instant, and a later batch can raise
-- the count of a stored row (the same instant's lines split over two transactions).
-- Each rise is a step: `count_steps` (the counts) and `count_step_xids` (the
-- transactions that stored them), NULL while the row was never raised; `loaded_xid` is
-- the latest step's transaction. An exporter takes the occurrences of the steps in
-- its window: occurrences (previous step's count, step's count].
ALTER TABLE noqueue
    ADD COLUMN loaded_xid bigint,
    ADD COLUMN count_steps integer[],
    ADD COLUMN count_step_xids bigint[];
ALTER TABLE noqueue ALTER COLUMN loaded_xid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX noqueue_loaded_xid ON noqueue USING brin (loaded_xid);

-- A trigger rather than a change of the loader's upsert: it fires only when a stored
-- row is updated (a rise of the count, a reclassification), never on the insert path
-- that bulk loads take.
CREATE FUNCTION noqueue_count_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.count > OLD.count THEN
        NEW.count_steps := coalesce(OLD.count_steps, ARRAY[OLD.count]) || NEW.count;
        NEW.count_step_xids := coalesce(OLD.count_step_xids, ARRAY[OLD.loaded_xid])
            || pg_current_xact_id()::text::bigint;
        NEW.loaded_xid := pg_current_xact_id()::text::bigint;
    ELSE
        -- Only a rise makes new occurrences; everything else keeps the row's steps.
        NEW.loaded_xid := OLD.loaded_xid;
        NEW.count_steps := OLD.count_steps;
        NEW.count_step_xids := OLD.count_step_xids;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER noqueue_count_step BEFORE UPDATE ON noqueue
    FOR EACH ROW EXECUTE FUNCTION noqueue_count_step();

-- Recipients still deferred when their message expired ("status=expired, returned to
-- sender") are bounces too, but the expiry is a line about the message, stored on its
-- row (delivery_from.expired_at), not an attempt. An exporter finds expiries it has
-- not exported through this partial index (a few rows: only expired messages) and
-- records each message it exported in export_expired, in the same transaction as its
-- watermark.
CREATE INDEX delivery_from_expired_at ON delivery_from (expired_at) WHERE expired_at IS NOT NULL;

-- One row per export directory (its canonical path): the watermark, and what the
-- files are written in.
CREATE TABLE export_target (
    target      text PRIMARY KEY,
    -- every record stored by a transaction before this one is in a file of the target
    watermark   bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at timestamptz
);

-- Every file an export directory has written: `open` (in the directory, appended to
-- by the next runs; `bytes` is how much of it is committed, a longer file has a tail
-- of a run that did not commit and is cut back) or `archived` (finished, moved to the
-- archive directory).
CREATE TABLE export_file (
    target      text        NOT NULL REFERENCES export_target ON DELETE CASCADE,
    name        text        NOT NULL,
    type        text        NOT NULL,
    format      text        NOT NULL,
    fields      text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('open', 'archived')),
    bytes       bigint      NOT NULL,
    records     bigint      NOT NULL,
    opened_at   timestamptz NOT NULL,
    archived_at timestamptz,
    PRIMARY KEY (target, name)
);
CREATE UNIQUE INDEX export_file_open ON export_file (target, type) WHERE state = 'open';

-- The expired messages an export directory has written the bounces of.
CREATE TABLE export_expired (
    target      text        NOT NULL REFERENCES export_target ON DELETE CASCADE,
    host        text COLLATE "C" NOT NULL,
    queue_id    text COLLATE "C" NOT NULL,
    arrived_at  timestamptz NOT NULL,
    PRIMARY KEY (target, queue_id, host, arrived_at)
);
