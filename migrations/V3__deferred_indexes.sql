-- pftrack schema, version 3: secondary indexes set aside during a bulk load.
--
-- A backfill into an empty database drops the secondary indexes of the delivery
-- tables and builds them once at the end (building an index by sorting costs a
-- fraction of maintaining it row by row). Each dropped index's definition is kept here,
-- in the same transaction that drops it, and removed in the transaction that builds it
-- again, so a load that dies leaves a record of what to rebuild: the next backfill
-- continues the bulk load, any other start (`pftrack run`, `pftrack migrate`) builds
-- them. See docs/operation.md.
CREATE TABLE deferred_index (
    name         text        PRIMARY KEY,
    table_name   text        NOT NULL,
    -- pg_get_indexdef() of the dropped index
    definition   text        NOT NULL,
    deferred_at  timestamptz NOT NULL DEFAULT now()
);
