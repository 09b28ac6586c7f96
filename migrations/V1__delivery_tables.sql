-- pftrack schema, version 1: messages, recipients, NOQUEUE decisions, input positions.
-- A message is keyed by (host, queue_id, arrived_at): short queue ids are reused, so
-- the queue id alone never identifies a message.
-- Identifiers and addresses use the "C" collation: byte order is what they need, and
-- it makes index maintenance several times cheaper than a linguistic collation.

CREATE TABLE delivery_from (
    host               text COLLATE "C"        NOT NULL,
    queue_id           text COLLATE "C"        NOT NULL,
    arrived_at         timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    origin             text,
    client_name        text,
    client_addr        text COLLATE "C",
    sasl_method        text,
    sasl_username      text,
    pickup_uid         bigint,
    message_id         text COLLATE "C",
    sender             text COLLATE "C",
    size               bigint,
    nrcpt              integer,
    removed_at         timestamptz,
    expired_at         timestamptz,
    deleted_at         timestamptz,
    rejected_at        timestamptz,
    held_at            timestamptz,
    released_at        timestamptz,
    parent_queue_id    text COLLATE "C",
    parent_arrived_at  timestamptz,
    parent_kind        text,
    -- queue_id first: the key also serves lookups by queue id alone
    PRIMARY KEY (queue_id, host, arrived_at)
) WITH (fillfactor = 85);  -- room for HOT updates as a message's later lines arrive

CREATE INDEX delivery_from_sender ON delivery_from (lower(sender));
CREATE INDEX delivery_from_message_id ON delivery_from (message_id);
-- BRIN: rows arrive in time order, so a block-range index serves time ranges at almost
-- no cost per insert.
CREATE INDEX delivery_from_arrived_at ON delivery_from USING brin (arrived_at);
CREATE INDEX delivery_from_parent ON delivery_from (host, parent_queue_id, parent_arrived_at)
    WHERE parent_queue_id IS NOT NULL;
-- No index serves the start-up read of open messages: it runs once per start, and an
-- index on columns that change as a message progresses would make every update of
-- its row a non-HOT one (every index rewritten).

CREATE TABLE delivery_to (
    host                text COLLATE "C"        NOT NULL,
    queue_id            text COLLATE "C"        NOT NULL,
    arrived_at          timestamptz NOT NULL,
    recipient           text COLLATE "C"        NOT NULL,
    -- empty string when Postfix logged no orig_to (part of the key, so never NULL)
    orig_recipient      text COLLATE "C"        NOT NULL DEFAULT '',
    status              text        NOT NULL,
    status_at           timestamptz NOT NULL,
    dsn                 text,
    relay               text,
    response            text,
    delay               real,
    delay_before_qmgr   real,
    delay_in_qmgr       real,
    delay_conn_setup    real,
    delay_transmission  real,
    queued_as           text,
    attempts            integer     NOT NULL DEFAULT 0,
    first_attempt_at    timestamptz,
    last_attempt_at     timestamptz,
    -- Every recipient row has its delivery_from row: the store writes both in the same
    -- transaction, message rows first. No FOREIGN KEY: its per-row check costs a
    -- quarter of the insert time, and purging deletes both tables explicitly.
    PRIMARY KEY (queue_id, host, arrived_at, recipient, orig_recipient)
) WITH (fillfactor = 85);

CREATE INDEX delivery_to_recipient ON delivery_to (lower(recipient));
CREATE INDEX delivery_to_orig_recipient ON delivery_to (lower(orig_recipient))
    WHERE orig_recipient <> '';

CREATE TABLE noqueue (
    host         text COLLATE "C"        NOT NULL,
    logged_at    timestamptz NOT NULL,
    -- stable 64-bit hash of every other column, so identical decisions in the same
    -- instant share a row and count
    fingerprint  bigint      NOT NULL,
    daemon       text        NOT NULL,
    action       text        NOT NULL,
    stage        text        NOT NULL,
    client_name  text,
    client_addr  text COLLATE "C",
    code         integer,
    dsn          text,
    reason       text        NOT NULL,
    sender       text COLLATE "C",
    recipient    text COLLATE "C",
    helo         text,
    proto        text,
    count        integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (host, logged_at, fingerprint)
);

CREATE INDEX noqueue_logged_at ON noqueue USING brin (logged_at);
CREATE INDEX noqueue_client_addr ON noqueue (client_addr);
CREATE INDEX noqueue_recipient ON noqueue (lower(recipient));
CREATE INDEX noqueue_sender ON noqueue (lower(sender));

-- How far each input has been read; written in the same transaction as the rows.
CREATE TABLE input_position (
    source          text        PRIMARY KEY,
    kind            text        NOT NULL,
    path            text,
    device          bigint,
    inode           bigint,
    byte_offset     bigint,
    line            bigint,
    cursor          text,
    last_timestamp  timestamptz,
    -- latest local (zone-less) stamp read, so yearless stamps keep their year on resume
    latest_local    timestamp,
    complete        boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per (message, recipient): the answer to "what happened to my mail?".
CREATE VIEW delivery_status AS
SELECT
    t.queue_id,
    t.host,
    f.message_id,
    f.sender,
    t.recipient,
    NULLIF(t.orig_recipient, '') AS orig_recipient,
    CASE
        WHEN t.status = 'deferred' AND f.expired_at IS NOT NULL
             AND f.expired_at >= t.status_at THEN 'expired'
        WHEN t.status = 'deferred' AND f.deleted_at IS NOT NULL
             AND f.deleted_at >= t.status_at THEN 'deleted'
        ELSE t.status
    END AS status,
    t.dsn,
    t.relay,
    t.response,
    t.attempts,
    t.delay,
    f.arrived_at,
    t.first_attempt_at,
    t.last_attempt_at,
    t.queued_as,
    f.client_name,
    f.client_addr,
    f.sasl_username,
    f.origin,
    f.parent_queue_id,
    f.parent_arrived_at,
    f.parent_kind,
    c.queue_id   AS continued_as_queue_id,
    c.arrived_at AS continued_as_arrived_at,
    f.removed_at
FROM delivery_to t
JOIN delivery_from f USING (host, queue_id, arrived_at)
LEFT JOIN LATERAL (
    SELECT c.queue_id, c.arrived_at
    FROM delivery_from c
    WHERE c.host = t.host
      AND c.parent_queue_id = t.queue_id
      AND c.parent_arrived_at = t.arrived_at
      AND c.parent_kind IN ('reinjection', 'forward')
      AND c.queue_id = t.queued_as
    LIMIT 1
) c ON true;
