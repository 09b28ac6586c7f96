-- pftrack schema, version 3: bulk loading (secondary indexes set aside while loading,
-- recipient keys in time order).
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

-- Recipient rows keyed in time order: rows arrive in time order, so new keys go to the
-- right edge of the index (cheap, densely packed) instead of anywhere in it. Lookups
-- come from delivery_from with all of host, queue_id and arrived_at, which any order
-- of these columns serves.
ALTER TABLE delivery_to
    DROP CONSTRAINT delivery_to_pkey,
    ADD CONSTRAINT delivery_to_pkey
        PRIMARY KEY (arrived_at, host, queue_id, recipient, orig_recipient);
