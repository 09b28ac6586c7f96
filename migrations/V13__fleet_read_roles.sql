-- pftrack schema, version 13: readers of the views see the cross-host fates (issue 16).
--
-- A view reads its tables with its owner's rights, but the functions it calls run
-- with the caller's: a role allowed to read delivery_status and message_status and
-- nothing else (pftrack_reader, the web UI's pftrack_web_read) would be refused
-- host_alias, or the tables, when final_* follows a path. delivery_path() and
-- fleet_host_is() only read, so they run with their owner's rights, with a fixed
-- search_path (a caller's schema cannot put its own tables in their way).
--
-- (V13 was reserved for time partitioning, which is not built: docs/scaling.md has its
-- design; it will take the next free number.)
ALTER FUNCTION delivery_path(text, text, timestamptz, text, text)
    SECURITY DEFINER SET search_path = pg_catalog, public;
ALTER FUNCTION fleet_host_is(text, text, text)
    SECURITY DEFINER SET search_path = pg_catalog, public;

-- The read-only roles read the new view and table like the others.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_reader') THEN
        GRANT SELECT ON host_alias, host_identity TO pftrack_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pftrack_web_read') THEN
        GRANT SELECT ON host_alias, host_identity TO pftrack_web_read;
    END IF;
END
$$;
