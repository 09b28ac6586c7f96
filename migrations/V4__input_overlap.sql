-- pftrack schema, version 4: which hosts each input has brought, over which time span.
--
-- The same host's log loaded through two inputs (the daemon follows the journal while
-- someone backfills /var/log/mail.log of the same host) brings the same events twice.
-- Every batch records, per input and host, the span of record times it covered; a batch
-- whose span overlaps another input's span for the same host makes the loader warn
-- (once per pair of inputs). See docs/operation.md, "Two loaders".
CREATE TABLE input_host_span (
    source    text        NOT NULL,
    host      text        COLLATE "C" NOT NULL,
    -- the input's path or journal, as last given, for the warning
    path      text,
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (source, host)
);
CREATE INDEX input_host_span_host ON input_host_span (host, first_at);

-- Which process committed an input's position last (a random id per process): after a
-- commit whose outcome is unknown (the connection broke during COMMIT), a loader tells
-- its own commit from another loader's commit of the same position.
ALTER TABLE input_position ADD COLUMN loaded_by text;
