//! Writing a batch and its input positions in one transaction.

use chrono::{DateTime, Utc};
use pftrack_extract::{Batch, MessageKey, MessageRow, Noqueue, RecipientKey, RecipientRow};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::{InputCheckpoint, Store, StoreError};

/// What one batch wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Message rows upserted.
    pub messages: u64,
    /// Recipient rows upserted.
    pub recipients: u64,
    /// NOQUEUE rows upserted.
    pub noqueue: u64,
}

const UPSERT_MESSAGES: &str = "\
INSERT INTO delivery_from AS t (host, queue_id, arrived_at, last_seen_at, origin, client_name,
    client_addr, sasl_method, sasl_username, pickup_uid, message_id, sender, size, nrcpt,
    removed_at, expired_at, deleted_at, rejected_at, held_at, released_at, parent_queue_id,
    parent_arrived_at, parent_kind)
SELECT host, queue_id, arrived_at, last_seen_at, origin, client_name, client_addr, sasl_method,
    sasl_username, pickup_uid, message_id, sender, size, nrcpt, removed_at, expired_at,
    deleted_at, rejected_at, held_at, released_at, parent_queue_id, parent_arrived_at,
    parent_kind
FROM pftrack_stage_from
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
    parent_kind = COALESCE(EXCLUDED.parent_kind, t.parent_kind)";

const UPSERT_RECIPIENTS: &str = "\
INSERT INTO delivery_to AS t (host, queue_id, arrived_at, recipient, orig_recipient, status,
    status_at, dsn, relay, response, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup,
    delay_transmission, queued_as, attempts, first_attempt_at, last_attempt_at)
SELECT host, queue_id, arrived_at, recipient, orig_recipient, status, status_at, dsn, relay,
    response, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup, delay_transmission,
    queued_as, attempts, first_attempt_at, last_attempt_at
FROM pftrack_stage_to
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
    status_at = GREATEST(t.status_at, EXCLUDED.status_at)";

const UPSERT_NOQUEUE: &str = "\
INSERT INTO noqueue AS t (host, logged_at, fingerprint, daemon, action, stage, client_name,
    client_addr, code, dsn, reason, sender, recipient, helo, proto, count)
SELECT host, logged_at, fingerprint, daemon, action, stage, client_name, client_addr, code, dsn,
    reason, sender, recipient, helo, proto, count
FROM pftrack_stage_noqueue
ON CONFLICT (host, logged_at, fingerprint) DO UPDATE SET count = t.count + EXCLUDED.count";

const UPSERT_POSITION: &str = "\
INSERT INTO input_position AS t (source, kind, path, device, inode, byte_offset, line, cursor,
    last_timestamp, complete, latest_local, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
ON CONFLICT (source) DO UPDATE SET kind = EXCLUDED.kind, path = EXCLUDED.path,
    device = EXCLUDED.device, inode = EXCLUDED.inode, byte_offset = EXCLUDED.byte_offset,
    line = EXCLUDED.line, cursor = EXCLUDED.cursor, last_timestamp = EXCLUDED.last_timestamp,
    complete = EXCLUDED.complete, latest_local = EXCLUDED.latest_local, updated_at = now()";

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
    /// Either everything is committed or nothing is.
    pub async fn write_batch(
        &self,
        batch: &Batch,
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
        batch: &Batch,
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
        tx.batch_execute(CREATE_STAGING)
            .await
            .map_err(|e| StoreError::query("creating the staging tables", e))?;
        let stats = WriteStats {
            messages: write_messages(&tx, batch, placement).await?,
            recipients: write_recipients(&tx, batch, placement).await?,
            noqueue: write_noqueue(&tx, batch).await?,
        };
        if !checkpoints.is_empty() {
            let stmt = tx
                .prepare_cached(UPSERT_POSITION)
                .await
                .map_err(|e| StoreError::query("preparing the position update", e))?;
            for cp in checkpoints {
                tx.execute(
                    &stmt,
                    &[
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
                    ],
                )
                .await
                .map_err(|e| StoreError::query("recording the input position", e))?;
            }
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing a batch", e))?;
        Ok(stats)
    }
}

/// Staging tables, one per session: rows are COPYed into them and merged into the real
/// tables with one `INSERT … SELECT … ON CONFLICT`. COPY is far cheaper for PostgreSQL
/// than unpacking the same rows from many array parameters with `unnest`. (NOQUEUE rows
/// always go this way: identical decisions in the same instant add up.)
const CREATE_STAGING: &str = "\
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_from (LIKE delivery_from) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_to (LIKE delivery_to) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS pftrack_stage_noqueue (LIKE noqueue) ON COMMIT DELETE ROWS";

/// Columns of a message row, in the order rows are COPYed.
const FROM_COLUMNS: &str = "(host, queue_id, arrived_at, last_seen_at,
    origin, client_name, client_addr, sasl_method, sasl_username, pickup_uid, message_id, sender,
    size, nrcpt, removed_at, expired_at, deleted_at, rejected_at, held_at, released_at,
    parent_queue_id, parent_arrived_at, parent_kind)";

const STAGE_FROM_TYPES: [Type; 23] = [
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
];

/// Columns of a recipient row, in the order rows are COPYed.
const TO_COLUMNS: &str = "(host, queue_id, arrived_at, recipient,
    orig_recipient, status, status_at, dsn, relay, response, delay, delay_before_qmgr,
    delay_in_qmgr, delay_conn_setup, delay_transmission, queued_as, attempts, first_attempt_at,
    last_attempt_at)";

const STAGE_TO_TYPES: [Type; 19] = [
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::TEXT,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];

async fn write_messages(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &Batch,
    placement: Placement,
) -> Result<u64, StoreError> {
    if batch.messages.is_empty() {
        return Ok(0);
    }
    // A stable row order keeps concurrent writers from deadlocking on each other.
    let mut rows: Vec<_> = batch.messages.iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let (new, known): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|(_, row)| placement == Placement::InsertNew && row.starts_life);
    let mut written = 0;
    if !new.is_empty() {
        let copy = |e| StoreError::query("copying new messages", e);
        written += copy_messages(tx, "delivery_from", &new)
            .await
            .map_err(copy)?;
    }
    if !known.is_empty() {
        let copy = |e| StoreError::query("copying messages to the staging table", e);
        copy_messages(tx, "pftrack_stage_from", &known)
            .await
            .map_err(copy)?;
        let stmt = tx
            .prepare_cached(UPSERT_MESSAGES)
            .await
            .map_err(|e| StoreError::query("preparing the message upsert", e))?;
        written += tx
            .execute(&stmt, &[])
            .await
            .map_err(|e| StoreError::query("writing messages", e))?;
    }
    Ok(written)
}

/// COPY message rows into `table` (the real one or the staging one).
async fn copy_messages(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    rows: &[(&MessageKey, &MessageRow)],
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx
        .copy_in(&format!("COPY {table} {FROM_COLUMNS} FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &STAGE_FROM_TYPES);
    tokio::pin!(writer);
    for (key, row) in rows {
        let MessageKey {
            host,
            queue_id,
            arrived_at,
        } = key;
        let u = &row.update;
        let parent_queue_id = u.parent.as_ref().map(|p| &*p.queue_id);
        let parent_arrived_at = u.parent.as_ref().map(|p| p.arrived_at);
        let parent_kind = u.parent.as_ref().map(|p| p.kind.as_str());
        let origin = u.origin.map(|o| o.as_str());
        writer
            .as_mut()
            .write(&[
                &&**host,
                &&**queue_id,
                arrived_at,
                &row.last_seen_at,
                &origin,
                &u.client_name,
                &u.client_addr,
                &u.sasl_method,
                &u.sasl_username,
                &u.pickup_uid,
                &u.message_id,
                &u.sender,
                &u.size,
                &u.nrcpt,
                &u.removed_at,
                &u.expired_at,
                &u.deleted_at,
                &u.rejected_at,
                &u.held_at,
                &u.released_at,
                &parent_queue_id,
                &parent_arrived_at,
                &parent_kind,
            ])
            .await?;
    }
    writer.finish().await
}

async fn write_recipients(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &Batch,
    placement: Placement,
) -> Result<u64, StoreError> {
    if batch.recipients.is_empty() {
        return Ok(0);
    }
    // In primary key order (time first): new keys then go to the right edge of the
    // index, and concurrent writers lock rows in one order.
    let mut rows: Vec<_> = batch.recipients.iter().collect();
    rows.sort_unstable_by(|(a, _), (b, _)| primary_key_order(a).cmp(&primary_key_order(b)));
    let (new, known): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(key, _)| {
        placement == Placement::InsertNew && batch.message_starts_life(&key.message)
    });
    let mut written = 0;
    if !new.is_empty() {
        let copy = |e| StoreError::query("copying recipients of new messages", e);
        written += copy_recipients(tx, "delivery_to", &new)
            .await
            .map_err(copy)?;
    }
    if !known.is_empty() {
        let copy = |e| StoreError::query("copying recipients to the staging table", e);
        copy_recipients(tx, "pftrack_stage_to", &known)
            .await
            .map_err(copy)?;
        let stmt = tx
            .prepare_cached(UPSERT_RECIPIENTS)
            .await
            .map_err(|e| StoreError::query("preparing the recipient upsert", e))?;
        written += tx
            .execute(&stmt, &[])
            .await
            .map_err(|e| StoreError::query("writing recipients", e))?;
    }
    Ok(written)
}

/// A recipient row's primary key, in its column order.
fn primary_key_order(k: &RecipientKey) -> (DateTime<Utc>, &str, &str, &str, &str) {
    (
        k.message.arrived_at,
        &k.message.host,
        &k.message.queue_id,
        &k.recipient,
        &k.orig_recipient,
    )
}

/// COPY recipient rows into `table` (the real one or the staging one).
async fn copy_recipients(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    rows: &[(&RecipientKey, &RecipientRow)],
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx
        .copy_in(&format!("COPY {table} {TO_COLUMNS} FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &STAGE_TO_TYPES);
    tokio::pin!(writer);
    for (key, row) in rows {
        let RecipientKey {
            message,
            recipient,
            orig_recipient,
        } = key;
        let e = &row.latest;
        let d = |i: usize| e.delays.map(|d| d[i]);
        let (d0, d1, d2, d3) = (d(0), d(1), d(2), d(3));
        let status = e.status.as_str();
        writer
            .as_mut()
            .write(&[
                &&*message.host,
                &&*message.queue_id,
                &message.arrived_at,
                recipient,
                orig_recipient,
                &status,
                &e.at,
                &e.dsn,
                &e.relay,
                &e.response,
                &e.delay,
                &d0,
                &d1,
                &d2,
                &d3,
                &e.queued_as,
                &row.attempts,
                &row.first_attempt_at,
                &row.last_attempt_at,
            ])
            .await?;
    }
    writer.finish().await
}

async fn write_noqueue(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &Batch,
) -> Result<u64, StoreError> {
    if batch.noqueue.is_empty() {
        return Ok(0);
    }
    let mut rows: Vec<(&Noqueue, i64, i32)> = batch
        .noqueue
        .iter()
        .map(|(n, c)| (n, fingerprint(n), *c))
        .collect();
    rows.sort_unstable_by(|a, b| (&*a.0.host, a.0.at, a.1).cmp(&(&*b.0.host, b.0.at, b.1)));
    let copy = |e| StoreError::query("copying NOQUEUE rows to the staging table", e);
    let sink = tx.copy_in(COPY_STAGE_NOQUEUE).await.map_err(copy)?;
    let writer = BinaryCopyInWriter::new(sink, &STAGE_NOQUEUE_TYPES);
    tokio::pin!(writer);
    for (nq, fp, count) in rows {
        let (daemon, action, stage) = (nq.daemon.as_str(), nq.action.as_str(), nq.stage.as_str());
        writer
            .as_mut()
            .write(&[
                &&*nq.host,
                &nq.at,
                &fp,
                &daemon,
                &action,
                &stage,
                &nq.client_name,
                &nq.client_addr,
                &nq.code,
                &nq.dsn,
                &nq.reason,
                &nq.sender,
                &nq.recipient,
                &nq.helo,
                &nq.proto,
                &count,
            ])
            .await
            .map_err(copy)?;
    }
    writer.finish().await.map_err(copy)?;
    let stmt = tx
        .prepare_cached(UPSERT_NOQUEUE)
        .await
        .map_err(|e| StoreError::query("preparing the NOQUEUE upsert", e))?;
    tx.execute(&stmt, &[])
        .await
        .map_err(|e| StoreError::query("writing NOQUEUE rows", e))
}

const COPY_STAGE_NOQUEUE: &str = "COPY pftrack_stage_noqueue (host, logged_at, fingerprint, \
    daemon, action, stage, client_name, client_addr, code, dsn, reason, sender, recipient, helo, \
    proto, count) FROM STDIN BINARY";

const STAGE_NOQUEUE_TYPES: [Type; 16] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
];

/// A stable 64-bit FNV-1a hash of every NOQUEUE column but host and time (which are
/// key columns of their own). Stable across runs and versions: it is part of the key.
fn fingerprint(n: &Noqueue) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |s: Option<&str>| {
        // A tag byte keeps None, "" and field boundaries apart.
        let bytes = s.map(str::as_bytes);
        for b in std::iter::once(if bytes.is_some() { 1u8 } else { 0u8 })
            .chain(bytes.unwrap_or_default().iter().copied())
            .chain(std::iter::once(0xffu8))
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    let code = n.code.map(|c| c.to_string());
    feed(Some(&n.daemon));
    feed(Some(&n.action));
    feed(Some(&n.stage));
    feed(n.client_name.as_deref());
    feed(n.client_addr.as_deref());
    feed(code.as_deref());
    feed(n.dsn.as_deref());
    feed(Some(&n.reason));
    feed(n.sender.as_deref());
    feed(n.recipient.as_deref());
    feed(n.helo.as_deref());
    feed(n.proto.as_deref());
    h as i64
}
