-- pftrack schema, version 8: delivering the event outbox to sinks (issue 12).
--
-- A sink (a webhook, a command, a NOTIFY channel) is registered in `event_sink` by the
-- dispatcher from its configuration, with its filter. Every event inserted into
-- `event_outbox` gets one `event_delivery` row per active sink whose filter it
-- passes, by a trigger, so in the same transaction as the event (and so as the facts
-- and the input position): a delivery is never forgotten. The trigger also sends a
-- NOTIFY on `pftrack_outbox`, delivered at commit: the dispatchers' wake-up.
--
-- Dispatchers claim due rows with `FOR UPDATE SKIP LOCKED` and take a lease by moving
-- `next_attempt_at` past the delivery's time limit; a dispatcher killed mid-delivery
-- leaves the row to be claimed again when the lease runs out, with the same event id.

CREATE TABLE event_sink (
    name            text PRIMARY KEY,
    -- webhook, exec or notify
    kind            text NOT NULL,
    -- the URL without credentials or query, the command, or the channel
    target          text NOT NULL,
    -- only these event types (NULL: every type)
    types           text[],
    -- only events whose data.reason is one of these (NULL: every reason); events
    -- without a reason pass
    reasons         text[],
    -- false when no dispatcher's configuration names the sink any more: new events
    -- get no delivery row for it
    active          boolean NOT NULL DEFAULT true,
    -- set when the endpoint answered 410 Gone: nothing is sent until it is enabled
    -- again (`pftrack events retry SINK --enable`)
    disabled_at     timestamptz,
    disabled_reason text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_delivery (
    event_id        text NOT NULL REFERENCES event_outbox (id) ON DELETE CASCADE,
    sink            text NOT NULL REFERENCES event_sink (name) ON DELETE CASCADE,
    -- pending (to be sent, or being sent under a lease), delivered, failed
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    -- attempts started (a claim counts, even when its dispatcher died)
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- start of the current retry window (`retry_for` counts from here; an operator's
    -- retry or replay starts a new one)
    retry_since     timestamptz NOT NULL DEFAULT now(),
    -- pending: when it may be claimed (in the future while a dispatcher holds it)
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- the dispatcher holding the lease (NULL when none)
    leased_by       text,
    last_attempt_at timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (event_id, sink)
);

-- The claim: due pending rows of one sink, oldest due first.
CREATE INDEX event_delivery_due ON event_delivery (sink, next_attempt_at)
    WHERE state = 'pending';
-- Operators: failed rows of a sink (retry), counts per state.
CREATE INDEX event_delivery_sink_state ON event_delivery (sink, state);

-- One delivery row per matching active sink, and the wake-up, with every new event:
-- once per statement over the rows it inserted (a transition table; the rows that
-- ON CONFLICT DO NOTHING skipped are not in it), half the cost of a row trigger.
CREATE FUNCTION event_outbox_fan_out() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_delivery (event_id, sink)
    SELECT n.id, s.name
    FROM new_events n
    JOIN event_sink s ON s.active
        AND (s.types IS NULL OR n.type = ANY (s.types))
        AND (s.reasons IS NULL OR n.payload #>> '{data,reason}' IS NULL
             OR n.payload #>> '{data,reason}' = ANY (s.reasons))
    ORDER BY n.id, s.name
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('pftrack_outbox', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_outbox_fan_out AFTER INSERT ON event_outbox
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_outbox_fan_out();

-- Every event with its state per sink, for operators.
CREATE VIEW event_delivery_status AS
SELECT o.id, o.type, o.occurred_at, o.recorded_at, d.sink, d.state, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_error, d.delivered_at
FROM event_outbox o
JOIN event_delivery d ON d.event_id = o.id;
