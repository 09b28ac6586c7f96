//! Writing a batch and its input positions in one transaction.

use bytes::Bytes;
use futures_util::SinkExt;

use crate::encode::{
    ATTEMPT_COLUMNS, AUTH_COLUMNS, CopyData, EVENT_COLUMNS, EncodedBatch, FROM_COLUMNS,
    NOQUEUE_COLUMNS, TO_COLUMNS,
};
use crate::{InputCheckpoint, InputOverlap, PositionBase, Store, StoreError};

/// What one batch wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Message rows upserted.
    pub messages: u64,
    /// Recipient rows upserted.
    pub recipients: u64,
    /// NOQUEUE rows upserted.
    pub noqueue: u64,
    /// SASL authentication failures stored for the first time.
    pub auth_failures: u64,
    /// Events recorded in the outbox for the first time.
    pub events: u64,
    /// Other inputs that brought the same hosts' records over the same times.
    pub overlaps: Vec<crate::InputOverlap>,
}

const UPSERT_MESSAGES: &str = "\
INSERT INTO delivery_from AS t (host, queue_id, arrived_at, last_seen_at, origin, client_name,
    client_addr, sasl_method, sasl_username, pickup_uid, message_id, sender, size, nrcpt,
    removed_at, expired_at, deleted_at, rejected_at, held_at, released_at, parent_queue_id,
    parent_arrived_at, parent_kind, tags)
SELECT host, queue_id, arrived_at, last_seen_at, origin, client_name, client_addr, sasl_method,
    sasl_username, pickup_uid, message_id, sender, size, nrcpt, removed_at, expired_at,
    deleted_at, rejected_at, held_at, released_at, parent_queue_id, parent_arrived_at,
    parent_kind, tags
FROM pftrack_stage_from
ORDER BY queue_id, host, arrived_at
ON CONFLICT (queue_id, host, arrived_at) DO UPDATE SET
    last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at),
    origin = COALESCE(EXCLUDED.origin, t.origin),
    client_name = COALESCE(EXCLUDED.client_name, t.client_name),
    client_addr = COALESCE(EXCLUDED.client_addr, t.client_addr),
    sasl_method = COALESCE(EXCLUDED.sasl_method, t.sasl_method),
    sasl_username = COALESCE(EXCLUDED.sasl_username, t.sasl_username),
    pickup_uid = COALESCE(EXCLUDED.pickup_uid, t.pickup_uid),
    message_id = COALESCE(EXCLUDED.message_id, t.message_id),
    sender = COALESCE(EXCLUDED.sender, t.sender),
    size = COALESCE(EXCLUDED.size, t.size),
    nrcpt = COALESCE(EXCLUDED.nrcpt, t.nrcpt),
    removed_at = COALESCE(EXCLUDED.removed_at, t.removed_at),
    expired_at = COALESCE(EXCLUDED.expired_at, t.expired_at),
    deleted_at = COALESCE(EXCLUDED.deleted_at, t.deleted_at),
    rejected_at = COALESCE(EXCLUDED.rejected_at, t.rejected_at),
    held_at = COALESCE(EXCLUDED.held_at, t.held_at),
    released_at = COALESCE(EXCLUDED.released_at, t.released_at),
    parent_queue_id = COALESCE(EXCLUDED.parent_queue_id, t.parent_queue_id),
    parent_arrived_at = COALESCE(EXCLUDED.parent_arrived_at, t.parent_arrived_at),
    parent_kind = COALESCE(EXCLUDED.parent_kind, t.parent_kind),
    -- Per tag name, the later value wins; other names are kept.
    tags = CASE WHEN EXCLUDED.tags IS NULL THEN t.tags
        ELSE COALESCE(t.tags, '{}') || EXCLUDED.tags END";

/// Merges staged recipients. Their staged events go into the attempt history first,
/// each only if it is not stored yet; a recipient's `attempts` grows by the attempts
/// stored for the first time, so an event loaded twice (a copy of the log, a re-read)
/// is never counted twice. Everything else merges idempotently (latest status wins,
/// min/max of times).
const UPSERT_RECIPIENTS: &str = "\
WITH stored_attempts AS (
    INSERT INTO delivery_attempt (host, queue_id, arrived_at, recipient, orig_recipient, status,
        attempt_at, dsn, relay, response, delay, delay_before_qmgr, delay_in_qmgr,
        delay_conn_setup, delay_transmission, queued_as, is_attempt, failure_reason, hard,
        failure_rule)
    SELECT host, queue_id, arrived_at, recipient, orig_recipient, status, attempt_at, dsn, relay,
        response, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup, delay_transmission,
        queued_as, is_attempt, failure_reason, hard, failure_rule
    FROM pftrack_stage_attempt
    ORDER BY arrived_at, host, queue_id, recipient, orig_recipient, attempt_at, status
    ON CONFLICT DO NOTHING
    RETURNING arrived_at, host, queue_id, recipient, orig_recipient, is_attempt
), new_attempts AS (
    SELECT arrived_at, host, queue_id, recipient, orig_recipient,
        (count(*) FILTER (WHERE is_attempt))::integer AS n
    FROM stored_attempts
    GROUP BY arrived_at, host, queue_id, recipient, orig_recipient
)
INSERT INTO delivery_to AS t (host, queue_id, arrived_at, recipient, orig_recipient, status,
    status_at, dsn, relay, response, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup,
    delay_transmission, queued_as, attempts, first_attempt_at, last_attempt_at, failure_reason,
    hard, failure_rule)
SELECT s.host, s.queue_id, s.arrived_at, s.recipient, s.orig_recipient, s.status, s.status_at,
    s.dsn, s.relay, s.response, s.delay, s.delay_before_qmgr, s.delay_in_qmgr,
    s.delay_conn_setup, s.delay_transmission, s.queued_as, coalesce(n.n, 0),
    s.first_attempt_at, s.last_attempt_at, s.failure_reason, s.hard, s.failure_rule
FROM pftrack_stage_to s
LEFT JOIN new_attempts n USING (arrived_at, host, queue_id, recipient, orig_recipient)
ORDER BY s.arrived_at, s.host, s.queue_id, s.recipient, s.orig_recipient
ON CONFLICT (arrived_at, host, queue_id, recipient, orig_recipient) DO UPDATE SET
    attempts = t.attempts + EXCLUDED.attempts,
    first_attempt_at = LEAST(t.first_attempt_at, EXCLUDED.first_attempt_at),
    last_attempt_at = GREATEST(t.last_attempt_at, EXCLUDED.last_attempt_at),
    status = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.status ELSE t.status END,
    dsn = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.dsn ELSE t.dsn END,
    relay = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.relay ELSE t.relay END,
    response = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.response ELSE t.response END,
    delay = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.delay ELSE t.delay END,
    delay_before_qmgr = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.delay_before_qmgr ELSE t.delay_before_qmgr END,
    delay_in_qmgr = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.delay_in_qmgr ELSE t.delay_in_qmgr END,
    delay_conn_setup = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.delay_conn_setup ELSE t.delay_conn_setup END,
    delay_transmission = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.delay_transmission ELSE t.delay_transmission END,
    queued_as = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.queued_as ELSE t.queued_as END,
    failure_reason = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.failure_reason ELSE t.failure_reason END,
    hard = CASE WHEN EXCLUDED.status_at >= t.status_at THEN EXCLUDED.hard ELSE t.hard END,
    failure_rule = CASE WHEN EXCLUDED.status_at >= t.status_at
        THEN EXCLUDED.failure_rule ELSE t.failure_rule END,
    status_at = GREATEST(t.status_at, EXCLUDED.status_at)";

const UPSERT_NOQUEUE: &str = "\
INSERT INTO noqueue AS t (host, logged_at, fingerprint, daemon, action, stage, client_name,
    client_addr, code, dsn, reason, sender, recipient, helo, proto, count, failure_reason, hard,
    failure_rule)
SELECT host, logged_at, fingerprint, daemon, action, stage, client_name, client_addr, code, dsn,
    reason, sender, recipient, helo, proto, count, failure_reason, hard, failure_rule
FROM pftrack_stage_noqueue
ORDER BY host, logged_at, fingerprint
ON CONFLICT (host, logged_at, fingerprint) DO UPDATE SET count = GREATEST(t.count, EXCLUDED.count),
    failure_reason = EXCLUDED.failure_reason, hard = EXCLUDED.hard,
    failure_rule = EXCLUDED.failure_rule";

/// SASL failures: each once, whoever brings its line first (the key holds the
/// occurrence number, so a line read again matches its stored row).
const INSERT_AUTH_FAILURES: &str = "\
INSERT INTO auth_failure (host, logged_at, fingerprint, occurrence, service, client_name,
    client_addr, client_port, reverse_dns, sasl_method, sasl_username, reason, aborted, country,
    asn, as_org)
SELECT host, logged_at, fingerprint, occurrence, service, client_name, client_addr, client_port,
    reverse_dns, sasl_method, sasl_username, reason, aborted, country, asn, as_org
FROM pftrack_stage_auth
ORDER BY host, logged_at, fingerprint, occurrence
ON CONFLICT DO NOTHING";

/// Outbox rows: each event once, whoever brings its fact first. The message's sender
/// and Message-ID, logged on other lines, are joined from `delivery_from` (written
/// earlier in the same transaction) into the payload's data when it names a message.
/// One primary-key lookup per event (LATERAL … LIMIT 1): the staging table has no
/// statistics, and a plain join gets planned as a hash join over all of
/// `delivery_from` in every batch.
const INSERT_EVENTS: &str = "\
INSERT INTO event_outbox (id, type, occurred_at, payload)
SELECT s.id, s.type, s.occurred_at,
    CASE WHEN m.found IS NULL THEN s.payload
    ELSE jsonb_set(s.payload, '{data}',
        jsonb_build_object('sender', m.sender, 'message_id', m.message_id) || (s.payload -> 'data'))
    END
FROM pftrack_stage_event s
LEFT JOIN LATERAL (
    SELECT true AS found, f.sender, f.message_id FROM delivery_from f
    WHERE f.queue_id = s.payload #>> '{data,queue_id}'
        AND f.host = s.payload #>> '{data,host}'
        AND f.arrived_at = (s.payload #>> '{data,arrived_at}')::timestamptz
    LIMIT 1
) m ON true
ORDER BY s.id
ON CONFLICT (id) DO NOTHING";

/// The first time a loader ran with events enabled: recorded once, read back.
const EVENTS_ENABLED_AT: &str = "\
WITH recorded AS (
    INSERT INTO event_state (key, value) VALUES ('enabled_at', now())
    ON CONFLICT (key) DO NOTHING
    RETURNING value
)
SELECT value FROM recorded
UNION ALL
SELECT value FROM event_state WHERE key = 'enabled_at'";

/// The first position of an input: only when none is stored (compare-and-set against
/// "absent"; a concurrent first insert waits for the other's commit, then does nothing).
const INSERT_POSITION: &str = "\
INSERT INTO input_position (source, kind, path, device, inode, byte_offset, line, cursor,
    last_timestamp, complete, latest_local, loaded_by, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
ON CONFLICT (source) DO NOTHING";

/// A later position: only from the one this loader read or committed (compare-and-set;
/// a concurrent update waits for the other's commit, then finds the row moved).
const ADVANCE_POSITION: &str = "\
UPDATE input_position SET kind = $2, path = $3, device = $4, inode = $5, byte_offset = $6,
    line = $7, cursor = $8, last_timestamp = $9, complete = $10, latest_local = $11,
    loaded_by = $12, updated_at = now()
WHERE source = $1 AND byte_offset IS NOT DISTINCT FROM $13 AND line IS NOT DISTINCT FROM $14
    AND cursor IS NOT DISTINCT FROM $15 AND complete = $16";

/// What is stored for an input, for the message when the compare-and-set fails.
const STORED_POSITION: &str =
    "SELECT byte_offset, line, cursor, complete FROM input_position WHERE source = $1";

/// Record the span of times an input brought for a host, and return other inputs'
/// spans of the same host that overlap it by more than the tolerance ($6 seconds).
const RECORD_HOST_SPAN: &str = "\
WITH recorded AS (
    INSERT INTO input_host_span AS t (source, host, path, first_at, last_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (source, host) DO UPDATE SET path = COALESCE(EXCLUDED.path, t.path),
        first_at = LEAST(t.first_at, EXCLUDED.first_at),
        last_at = GREATEST(t.last_at, EXCLUDED.last_at)
)
SELECT o.source, o.path, GREATEST(o.first_at, $4), LEAST(o.last_at, $5)
FROM input_host_span o
WHERE o.host = $2 AND o.source <> $1
    AND o.first_at < $5 - make_interval(secs => $6)
    AND o.last_at > $4 + make_interval(secs => $6)
ORDER BY o.source";

/// Two inputs' spans of one host must overlap by more than this to count as the same
/// log loaded twice: the last lines of a rotated file and the first of its successor
/// can share a second (or two, when syslog writes them out of order).
pub const OVERLAP_TOLERANCE_SECS: f64 = 2.0;

/// How a batch's rows reach their tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Rows of lives started in the batch are COPYed straight into their tables (they
    /// cannot exist yet); the others are merged through the staging tables.
    InsertNew,
    /// Every row is merged: the fallback when a row thought new already existed
    /// (another input wrote the same message, or a queue id was reused within a second
    /// across a restart).
    MergeAll,
}

impl Store {
    /// Write `batch` and the positions it brings its inputs to, in one transaction.
    /// Either everything is committed or nothing is. The monthly partitions the batch
    /// needs are created first, in a transaction of their own (see `partition`).
    pub async fn write_batch(
        &self,
        batch: &EncodedBatch,
        checkpoints: &[InputCheckpoint],
    ) -> Result<WriteStats, StoreError> {
        self.ensure_partitions(&batch.months).await?;
        match self.write_batch_placed(batch, checkpoints).await {
            // A month this process knew was dropped meanwhile (a purge of old data
            // while old logs are loaded): create it again, once.
            Err(e) if e.is_missing_partition() => {
                tracing::info!("{e}; creating the partitions again");
                self.known_months.clear();
                self.ensure_partitions(&batch.months).await?;
                self.write_batch_placed(batch, checkpoints).await
            }
            other => other,
        }
    }

    async fn write_batch_placed(
        &self,
        batch: &EncodedBatch,
        checkpoints: &[InputCheckpoint],
    ) -> Result<WriteStats, StoreError> {
        match self
            .write_batch_as(batch, checkpoints, Placement::InsertNew)
            .await
        {
            Err(e) if e.is_unique_violation() => {
                tracing::debug!(
                    "a row of a new message was already stored ({e}); merging the batch instead"
                );
                self.write_batch_as(batch, checkpoints, Placement::MergeAll)
                    .await
            }
            other => other,
        }
    }

    async fn write_batch_as(
        &self,
        batch: &EncodedBatch,
        checkpoints: &[InputCheckpoint],
        placement: Placement,
    ) -> Result<WriteStats, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting a transaction", e))?;
        // Not waiting for the WAL flush is safe here: the input position is in the same
        // transaction, so a commit that a PostgreSQL crash takes back takes its position
        // back too, and those lines are simply read again. It makes commits cheap.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await
            .map_err(|e| StoreError::query("starting a transaction", e))?;
        // Positions first: the row lock on each input's position keeps a second loader
        // of the same input waiting until this transaction ends, and then finding the
        // position moved — before it writes a single row.
        let mut overlaps = Vec::new();
        for cp in checkpoints {
            advance_position(&tx, cp, &self.loader_id).await?;
            overlaps.extend(record_host_spans(&tx, cp).await?);
        }
        tx.batch_execute(CREATE_STAGING)
            .await
            .map_err(|e| StoreError::query("creating the staging tables", e))?;
        let stats = WriteStats {
            overlaps,
            messages: write_table(
                &tx,
                &MESSAGES,
                &batch.messages_new,
                &batch.messages_known,
                placement,
            )
            .await?,
            recipients: {
                // The attempt history before the recipients: new lives' events straight
                // into their table, the others staged for the recipient merge.
                write_attempts(&tx, batch, placement).await?;
                write_table(
                    &tx,
                    &RECIPIENTS,
                    &batch.recipients_new,
                    &batch.recipients_known,
                    placement,
                )
                .await?
            },
            noqueue: write_noqueue(&tx, batch).await?,
            auth_failures: write_auth_failures(&tx, batch, placement).await?,
            events: write_events(&tx, batch).await?,
        };
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing a batch", e))?;
        Ok(stats)
    }
}

/// Move `cp`'s input from its base to `cp`, or fail with
/// [`StoreError::PositionMoved`] when the stored position is not the base.
async fn advance_position(
    tx: &deadpool_postgres::Transaction<'_>,
    cp: &InputCheckpoint,
    loader_id: &str,
) -> Result<(), StoreError> {
    let values: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
        &cp.source,
        &cp.kind,
        &cp.path,
        &cp.device,
        &cp.inode,
        &cp.byte_offset,
        &cp.line,
        &cp.cursor,
        &cp.last_timestamp,
        &cp.complete,
        &cp.latest_local,
        &loader_id,
    ];
    let moved = match &cp.base {
        PositionBase::Absent => {
            let stmt = tx
                .prepare_cached(INSERT_POSITION)
                .await
                .map_err(|e| StoreError::query("preparing the position update", e))?;
            tx.execute(&stmt, &values)
                .await
                .map_err(|e| StoreError::query("recording the input position", e))?
        }
        PositionBase::At {
            byte_offset,
            line,
            cursor,
            complete,
        } => {
            let stmt = tx
                .prepare_cached(ADVANCE_POSITION)
                .await
                .map_err(|e| StoreError::query("preparing the position update", e))?;
            let mut params = values.to_vec();
            params.extend_from_slice(&[byte_offset, line, cursor, complete]);
            tx.execute(&stmt, &params)
                .await
                .map_err(|e| StoreError::query("recording the input position", e))?
        }
    };
    if moved == 1 {
        return Ok(());
    }
    let found = tx
        .query_opt(STORED_POSITION, &[&cp.source])
        .await
        .map_err(|e| StoreError::query("reading the stored input position", e))?
        .map_or(PositionBase::Absent, |r| PositionBase::At {
            byte_offset: r.get(0),
            line: r.get(1),
            cursor: r.get(2),
            complete: r.get(3),
        });
    Err(StoreError::PositionMoved {
        input: cp.path.clone().unwrap_or_else(|| cp.source.clone()),
        expected: cp.base.to_string(),
        found: found.to_string(),
    })
}

/// Record `cp`'s host spans; return the other inputs that overlap them.
async fn record_host_spans(
    tx: &deadpool_postgres::Transaction<'_>,
    cp: &InputCheckpoint,
) -> Result<Vec<InputOverlap>, StoreError> {
    let mut overlaps = Vec::new();
    if cp.hosts.is_empty() {
        return Ok(overlaps);
    }
    let stmt = tx
        .prepare_cached(RECORD_HOST_SPAN)
        .await
        .map_err(|e| StoreError::query("preparing the host span update", e))?;
    for span in &cp.hosts {
        let rows = tx
            .query(
                &stmt,
                &[
                    &cp.source,
                    &span.host,
                    &cp.path,
                    &span.first,
                    &span.last,
                    &OVERLAP_TOLERANCE_SECS,
                ],
            )
            .await
            .map_err(|e| StoreError::query("recording the hosts an input brought", e))?;
        overlaps.extend(rows.iter().map(|r| InputOverlap {
            host: span.host.clone(),
            source: cp.source.clone(),
            path: cp.path.clone(),
            other_source: r.get(0),
            other_path: r.get(1),
            from: r.get(2),
            to: r.get(3),
        }));
    }
    Ok(overlaps)
}

/// Staging tables, one per session: rows are COPYed into them and merged into the real
/// tables with one `INSERT … SELECT … ON CONFLICT`. COPY is far cheaper for PostgreSQL
/// than unpacking the same rows from many array parameters with `unnest`. (NOQUEUE rows
/// always go this way: identical decisions in the same instant add up.)
const CREATE_STAGING: &str = "\
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_from (LIKE delivery_from) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_to (LIKE delivery_to) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_attempt (LIKE delivery_attempt) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_noqueue (LIKE noqueue) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_auth (LIKE auth_failure) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_event (LIKE event_outbox INCLUDING DEFAULTS)
    ON COMMIT DELETE ROWS";

/// Where one table's rows go and what to call the steps in errors.
struct TableWrite {
    table: &'static str,
    staging: &'static str,
    columns: &'static str,
    upsert: &'static str,
    copying_new: &'static str,
    staging_rows: &'static str,
    preparing: &'static str,
    merging: &'static str,
}

const MESSAGES: TableWrite = TableWrite {
    table: "delivery_from",
    staging: "pftrack_stage_from",
    columns: FROM_COLUMNS,
    upsert: UPSERT_MESSAGES,
    copying_new: "copying new messages",
    staging_rows: "copying messages to the staging table",
    preparing: "preparing the message upsert",
    merging: "writing messages",
};

const RECIPIENTS: TableWrite = TableWrite {
    table: "delivery_to",
    staging: "pftrack_stage_to",
    columns: TO_COLUMNS,
    upsert: UPSERT_RECIPIENTS,
    copying_new: "copying recipients of new messages",
    staging_rows: "copying recipients to the staging table",
    preparing: "preparing the recipient upsert",
    merging: "writing recipients",
};

/// Write one table's rows: `new` ones straight into the table (unless every row is to
/// be merged), the others COPYed into its staging table and merged. Returns the rows
/// written.
async fn write_table(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &TableWrite,
    new: &CopyData,
    known: &CopyData,
    placement: Placement,
) -> Result<u64, StoreError> {
    let mut written = 0;
    let mut staged = known.rows;
    if placement == Placement::InsertNew {
        copy(tx, w.table, w.columns, new)
            .await
            .map_err(|e| StoreError::query(w.copying_new, e))?;
        written += new.rows;
    } else {
        copy(tx, w.staging, w.columns, new)
            .await
            .map_err(|e| StoreError::query(w.staging_rows, e))?;
        staged += new.rows;
    }
    copy(tx, w.staging, w.columns, known)
        .await
        .map_err(|e| StoreError::query(w.staging_rows, e))?;
    if staged > 0 {
        let stmt = tx
            .prepare_cached(w.upsert)
            .await
            .map_err(|e| StoreError::query(w.preparing, e))?;
        written += tx
            .execute(&stmt, &[])
            .await
            .map_err(|e| StoreError::query(w.merging, e))?;
    }
    Ok(written)
}

/// The attempt history of the batch: events of lives started in it straight into
/// `delivery_attempt` (they cannot be there yet), the others into the staging table,
/// where the recipient merge picks them up.
async fn write_attempts(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &EncodedBatch,
    placement: Placement,
) -> Result<(), StoreError> {
    let (direct, staged): (&[&CopyData], &[&CopyData]) = match placement {
        Placement::InsertNew => (&[&batch.attempts_new], &[&batch.attempts_known]),
        Placement::MergeAll => (&[], &[&batch.attempts_new, &batch.attempts_known]),
    };
    for data in direct {
        copy(tx, "delivery_attempt", ATTEMPT_COLUMNS, data)
            .await
            .map_err(|e| StoreError::query("copying the attempts of new messages", e))?;
    }
    for data in staged {
        copy(tx, "pftrack_stage_attempt", ATTEMPT_COLUMNS, data)
            .await
            .map_err(|e| StoreError::query("copying attempts to the staging table", e))?;
    }
    Ok(())
}

async fn write_noqueue(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &EncodedBatch,
) -> Result<u64, StoreError> {
    if batch.noqueue.rows == 0 {
        return Ok(0);
    }
    copy(tx, "pftrack_stage_noqueue", NOQUEUE_COLUMNS, &batch.noqueue)
        .await
        .map_err(|e| StoreError::query("copying NOQUEUE rows to the staging table", e))?;
    let stmt = tx
        .prepare_cached(UPSERT_NOQUEUE)
        .await
        .map_err(|e| StoreError::query("preparing the NOQUEUE upsert", e))?;
    tx.execute(&stmt, &[])
        .await
        .map_err(|e| StoreError::query("writing NOQUEUE rows", e))
}

/// The batch's SASL failures, each only if it is not stored yet. Returns the failures
/// stored for the first time.
///
/// A loader never reads a line twice (its position moves with the rows, and identical
/// failures go on being numbered after a resume), so the rows go straight into the
/// table; a row that exists after all — the same lines through another input — fails
/// the transaction with a duplicate key, and the batch is written again with every
/// row merged ([`Placement::MergeAll`]: through the staging table, `ON CONFLICT DO
/// NOTHING`).
async fn write_auth_failures(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &EncodedBatch,
    placement: Placement,
) -> Result<u64, StoreError> {
    if batch.auth_failures.rows == 0 {
        return Ok(0);
    }
    if placement == Placement::InsertNew {
        copy(tx, "auth_failure", AUTH_COLUMNS, &batch.auth_failures)
            .await
            .map_err(|e| StoreError::query("copying SASL failures", e))?;
        return Ok(batch.auth_failures.rows);
    }
    copy(tx, "pftrack_stage_auth", AUTH_COLUMNS, &batch.auth_failures)
        .await
        .map_err(|e| StoreError::query("copying SASL failures to the staging table", e))?;
    let stmt = tx
        .prepare_cached(INSERT_AUTH_FAILURES)
        .await
        .map_err(|e| StoreError::query("preparing the SASL failure insert", e))?;
    tx.execute(&stmt, &[])
        .await
        .map_err(|e| StoreError::query("writing SASL failures", e))
}

/// The batch's events into the outbox, each only if its id is not there yet (a
/// re-run, a resume or a second input bringing the same fact). Returns the events
/// recorded for the first time.
async fn write_events(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &EncodedBatch,
) -> Result<u64, StoreError> {
    if batch.events.rows == 0 {
        return Ok(0);
    }
    copy(tx, "pftrack_stage_event", EVENT_COLUMNS, &batch.events)
        .await
        .map_err(|e| StoreError::query("copying events to the staging table", e))?;
    let stmt = tx
        .prepare_cached(INSERT_EVENTS)
        .await
        .map_err(|e| StoreError::query("preparing the event insert", e))?;
    tx.execute(&stmt, &[])
        .await
        .map_err(|e| StoreError::query("writing events", e))
}

impl Store {
    /// When events were first enabled: recorded now if this is the first time (a
    /// concurrent first call waits for the other's commit and reads its value).
    pub async fn events_enabled_at(&self) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        let client = self.client().await?;
        let err = |e| StoreError::query("recording when events were enabled", e);
        let row = match client
            .query_opt(EVENTS_ENABLED_AT, &[])
            .await
            .map_err(err)?
        {
            Some(row) => row,
            // A concurrent first call committed after this statement's snapshot.
            None => client
                .query_one(
                    "SELECT value FROM event_state WHERE key = 'enabled_at'",
                    &[],
                )
                .await
                .map_err(err)?,
        };
        Ok(row.get(0))
    }
}

/// Events of the outbox, oldest first: since a time, of one type, at most a number.
const LIST_EVENTS: &str = "\
SELECT id, type, occurred_at, recorded_at, payload::text FROM event_outbox
WHERE ($1::timestamptz IS NULL OR occurred_at >= $1)
    AND ($2::text IS NULL OR type = $2)
ORDER BY occurred_at, id
LIMIT $3";

/// An event as `pftrack events list` shows it: id, type, when the fact happened, when
/// it was recorded, the JSON payload.
pub type OutboxRow = (
    String,
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    String,
);

impl Store {
    /// Up to `limit` events of the outbox whose facts happened at or after `since`,
    /// of type `ty` when given, oldest first.
    pub async fn list_events(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        ty: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(LIST_EVENTS, &[&since, &ty, &limit])
            .await
            .map_err(|e| StoreError::query("listing events", e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }
}

/// Stream an encoded payload into `table` (nothing when it has no rows).
async fn copy(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    columns: &str,
    data: &CopyData,
) -> Result<(), tokio_postgres::Error> {
    if data.rows == 0 {
        return Ok(());
    }
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {table} {columns} FROM STDIN BINARY"))
        .await?;
    tokio::pin!(sink);
    sink.send(data.payload.clone()).await?;
    sink.finish().await?;
    Ok(())
}
