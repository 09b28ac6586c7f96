-- pftrack schema, version 7: the event outbox (issue 12).
--
-- Facts that systems outside pftrack must react to (a recipient that failed hard for
-- a reason of its own, a message that expired) are written here as events, in the
-- same transaction as the delivery rows and the input position. The id is derived
-- only from the fact (crates/events), so a re-run, a resume or the same lines through
-- a second input insert nothing new: `INSERT … ON CONFLICT (id) DO NOTHING`.
-- Dispatch to sinks (webhooks, exec, NOTIFY) is not built yet; it will read this table.
CREATE TABLE event_outbox (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL
);

-- Rows are appended in time order: a BRIN index finds the recent ones.
CREATE INDEX event_outbox_recorded_at ON event_outbox USING brin (recorded_at);

-- `enabled_at`: the first time a loader ran with events enabled. Facts before it do
-- not become events (a backfill of history does not fire) unless the configuration's
-- `events.since` says otherwise.
CREATE TABLE event_state (
    key   text PRIMARY KEY,
    value timestamptz
);
