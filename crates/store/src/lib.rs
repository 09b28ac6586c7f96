//! PostgreSQL persistence for pftrack.
//!
//! [`Store`] owns a connection pool (deadpool-postgres over tokio-postgres), applies the
//! refinery migrations embedded from the top-level `migrations/` directory, and writes a
//! [`pftrack_extract::Batch`] together with the input positions it covers in **one
//! transaction** ([`Store::write_batch`]), so a crash never leaves rows without their
//! position or a position without its rows. Rows of messages whose life started in the
//! batch are COPYed (binary) straight into their tables; the others are COPYed into
//! per-session staging tables and merged with prepared `INSERT … SELECT … ON CONFLICT DO
//! UPDATE` statements (NOQUEUE rows always), whose merge rules are the ones
//! `Batch` uses in memory. Should a "new" row exist after all (another input stored the
//! same message), the transaction fails on the duplicate key and the batch is merged.
//! A load into an empty database defers the secondary indexes and builds them once at
//! the end (`bulk`).
//!
//! It also answers the lookups of `pftrack status` (`query`), deletes rows past the
//! retention limit in bounded batches (`purge`), re-applies the current failure rules
//! to stored rows (`reclassify`), and connects over TLS (rustls) with
//! libpq's `sslmode` semantics.
//!
//! This crate does **not** parse logs or decide what a line means; it only stores
//! facts and positions and reads back what a restart or a lookup needs.

mod bulk;
mod encode;
mod error;
mod fleet;
mod listen;
mod lock;
mod partition;
mod pool;
mod purge;
mod query;
mod reclassify;
mod sweep;
mod tls;
mod write;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use pftrack_extract::{MessageKey, Origin, PrimeEntry};

pub use bulk::{BULK_LOCK_TIMEOUT, BulkLoad, INDEX_BUILD_CONNECTIONS, IndexBuild, IndexMode};
pub use encode::EncodedBatch;
pub use error::{StoreError, redact_url};
pub use fleet::{MAX_ALIAS_LEN, alias_rows};
pub use listen::{Listener, Notification};
pub use lock::{APPLICATION_NAME_MAX, Busy, InputLocks, LockHolder, input_lock_key};
pub use partition::{
    MONTHS_AHEAD, Month, MonthSet, PARTITION_DROP_LOCK_TIMEOUT, PartitionDrops, TimePartition,
};
pub use pool::build_pool;
pub use purge::{
    NOQUEUE_ROWS_PER_MESSAGE, PURGE_BATCH_MESSAGES, PurgeCounts, purge, purge_with_progress,
};
pub use query::{
    ADDRESS_KEYS_SQL, ADDRESS_KEYS_TAGGED_SQL, Found, Hop, Lookup, MESSAGE_ID_KEYS_SQL,
    MessageLink, MessageRecord, QUEUE_ID_KEYS_SQL, RecipientRecord, StatusCounts, Window,
    find_messages_on,
};
pub use reclassify::{
    DEFAULT_RECLASSIFY_BATCH, MAX_RECLASSIFY_BATCH, ReasonChange, ReclassifyCursor,
    ReclassifyOptions, ReclassifyPage, ReclassifyTable,
};
pub use sweep::{SWEEP_LIMIT, SWEEP_LOOKBACK};
pub use write::{OVERLAP_TOLERANCE_SECS, WriteStats};

/// Connections kept in the pool: one writer, one reader, spare for status lookups.
pub const POOL_SIZE: usize = 4;

/// Key of the advisory lock that serialises migrations of concurrent pftrack processes.
const MIGRATION_LOCK_KEY: i64 = 0x7066_7472_6163_6b00; // "pftrack\0"

/// The schema version that partitions the delivery tables by month.
const PARTITIONS_SINCE: u32 = 14;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Where an input has been read to; stored with the rows it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputCheckpoint {
    /// Stable identity of the input (`file:<hash of first line>` or `journal:<machine>`).
    pub source: String,
    /// `file` or `journal`.
    pub kind: &'static str,
    /// Path as last given, for people reading the table.
    pub path: Option<String>,
    /// Device of the file.
    pub device: Option<i64>,
    /// Inode of the file.
    pub inode: Option<i64>,
    /// Byte offset just after the last line covered.
    pub byte_offset: Option<i64>,
    /// Number of lines covered.
    pub line: Option<i64>,
    /// Journal cursor of the last entry covered.
    pub cursor: Option<String>,
    /// Timestamp of the last record covered.
    pub last_timestamp: Option<DateTime<Utc>>,
    /// Latest local time of a yearless stamp read, to keep inferring the same years.
    pub latest_local: Option<chrono::NaiveDateTime>,
    /// Whether the whole input has been read.
    pub complete: bool,
    /// Read back only: the [`Store::loader_id`] of the process that committed the
    /// stored position (ignored when writing: the writing store's id is stored).
    pub loaded_by: Option<String>,
    /// The stored position this one moves on from: a batch commits only when the
    /// stored position still is this one (compare-and-set), so two loaders of one
    /// input can never both count the same lines.
    pub base: PositionBase,
    /// Per host, the span of record times this input brought since `base`, to notice
    /// the same host's log loaded through two inputs.
    pub hosts: Vec<HostSpan>,
}

impl InputCheckpoint {
    /// This position as the base of the input's next checkpoint.
    pub fn as_base(&self) -> PositionBase {
        PositionBase::At {
            byte_offset: self.byte_offset,
            line: self.line,
            cursor: self.cursor.clone(),
            complete: self.complete,
        }
    }
}

/// What a batch expects the stored position of an input to be before it moves it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PositionBase {
    /// No position is stored for the input yet.
    #[default]
    Absent,
    /// The stored position, as read at start or as last committed by this loader.
    At {
        /// Byte offset (files).
        byte_offset: Option<i64>,
        /// Lines read (files).
        line: Option<i64>,
        /// Journal cursor (journals).
        cursor: Option<String>,
        /// Whether the input had been read to its end.
        complete: bool,
    },
}

impl std::fmt::Display for PositionBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PositionBase::Absent => write!(f, "nothing stored"),
            PositionBase::At {
                line: Some(line), ..
            } => write!(f, "line {line}"),
            PositionBase::At {
                cursor: Some(cursor),
                ..
            } => write!(f, "cursor {cursor}"),
            PositionBase::At { .. } => write!(f, "an empty position"),
        }
    }
}

/// The span of record times one input brought for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpan {
    /// The host named by the records.
    pub host: String,
    /// The earliest record time.
    pub first: DateTime<Utc>,
    /// The latest record time.
    pub last: DateTime<Utc>,
}

/// Another input that brought records of the same host over an overlapping time: the
/// same log loaded twice under two identities (see `docs/operation.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOverlap {
    /// The host.
    pub host: String,
    /// The input of this batch (its source key).
    pub source: String,
    /// Its path or journal, when known.
    pub path: Option<String>,
    /// The other input's source key.
    pub other_source: String,
    /// The other input's path or journal, when known.
    pub other_path: Option<String>,
    /// Where the two overlap: from.
    pub from: DateTime<Utc>,
    /// Where the two overlap: to.
    pub to: DateTime<Utc>,
}

/// A connection pool to the pftrack database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The URL without its password, for messages.
    target: String,
    /// This process's id as a loader, stored with every position it commits.
    loader_id: std::sync::Arc<str>,
    /// How to open a connection outside the pool (LISTEN needs its own).
    direct: std::sync::Arc<listen::Direct>,
    /// UTC months known to have their partitions (see `partition`).
    known_months: std::sync::Arc<partition::KnownMonths>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connect to `url` (a `postgresql://` URL or a libpq `key=value` string) and check
    /// that the server answers.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, None).await
    }

    /// Connect like [`Store::connect`], with `ca_file` as the trusted CA for
    /// `sslmode=verify-ca|verify-full` (else the URL's `sslrootcert`, else the system's
    /// roots).
    pub async fn connect_with(
        url: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Store, StoreError> {
        let store = Store::pool_for(url, ca_file)?;
        // Fail early, with a clear message, when the server cannot be reached.
        let _probe = store.client().await?;
        Ok(store)
    }

    /// Connect like [`Store::connect_with`] for one short series of lookups
    /// (`pftrack status`, see [`Store::find_messages`]): both sessions it uses at once.
    /// Nothing is set for the session: `delivery_paths()` plans its query generically by
    /// a setting of its own (migration V20). So no startup option is sent either, which
    /// a connection pooler in front of the server could refuse (PgBouncer does, unless
    /// told to ignore `options`).
    pub async fn connect_for_lookups(
        url: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Store, StoreError> {
        let store = Store::pool_for(url, ca_file)?;
        // Both sessions a lookup uses (see `Store::find_messages`) are opened at once;
        // the first must open, the second is only a help.
        let (first, _second) = tokio::join!(store.client(), store.client());
        let _probe = first?;
        Ok(store)
    }

    /// The store, its pool not connected yet.
    fn pool_for(url: &str, ca_file: Option<&std::path::Path>) -> Result<Store, StoreError> {
        let target = redact_url(url);
        let tls_params = tls::TlsParams::extract(url);
        let mut config: tokio_postgres::Config =
            tls_params
                .url_for_driver
                .parse()
                .map_err(|source| StoreError::Config {
                    target: target.clone(),
                    source,
                })?;
        apply_libpq_defaults(&mut config);
        let connector = tls::make_connector(&tls_params, ca_file)?;
        let direct = std::sync::Arc::new(listen::Direct {
            config: config.clone(),
            connector: connector.clone(),
        });
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Pool {
                target: target.clone(),
                reason: e.to_string(),
                transient: false,
            })?;
        let store = Store {
            pool,
            target,
            loader_id: new_loader_id().into(),
            direct,
            known_months: partition::known_months(),
        };
        Ok(store)
    }

    /// The database URL without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The id stored with every position this process commits (see
    /// [`InputCheckpoint::loaded_by`]).
    pub fn loader_id(&self) -> &str {
        &self.loader_id
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::from_pool(&self.target, e))
    }

    /// Apply pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.migrate_up_to(None).await
    }

    /// Apply pending migrations up to schema version `version` only: a database as an
    /// older release left it, for upgrade tests.
    pub async fn migrate_to(&self, version: u32) -> Result<usize, StoreError> {
        self.migrate_up_to(Some(version)).await
    }

    async fn migrate_up_to(&self, target: Option<u32>) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(|e| StoreError::query("taking the migration lock", e))?;
        let converting = partition_conversion_pending(&client, target).await?;
        if converting {
            tracing::info!(
                "migration V14 partitions the delivery tables by month, in place: their rows \
                 stay where they are (each table is read once, nothing is copied)"
            );
        }
        let result = match apply_out_of_order(&mut client).await {
            Ok(()) => {
                let mut runner = embedded::migrations::runner();
                if let Some(version) = target {
                    runner = runner.set_target(refinery::Target::Version(
                        i32::try_from(version).unwrap_or(i32::MAX),
                    ));
                }
                runner.run_async(&mut **client).await
            }
            Err(e) => {
                let _ = client
                    .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
                    .await;
                return Err(e);
            }
        };
        // Unlock even when migrating failed; the session ends anyway if this fails.
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await;
        let report = result.map_err(|e| StoreError::Migrate {
            reason: e.to_string(),
        })?;
        if converting {
            report_partition_conversion(&client).await?;
        }
        // Every start migrates: this month's and the next months' partitions are
        // created here, before the first batch needs them.
        if target.is_none_or(|v| v >= PARTITIONS_SINCE) {
            self.ensure_partitions_ahead().await?;
        }
        Ok(report.applied_migrations().len())
    }

    /// Stored positions of all inputs of `kind` (`file` or `journal`), by source.
    pub async fn positions(
        &self,
        kind: &str,
    ) -> Result<HashMap<String, InputCheckpoint>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT source, path, device, inode, byte_offset, line, cursor, last_timestamp, \
                 complete, latest_local, loaded_by FROM input_position WHERE kind = $1",
                &[&kind],
            )
            .await
            .map_err(|e| StoreError::query("reading input positions", e))?;
        let kind: &'static str = if kind == "journal" { "journal" } else { "file" };
        Ok(rows
            .into_iter()
            .map(|r| {
                let cp = InputCheckpoint {
                    source: r.get(0),
                    kind,
                    path: r.get(1),
                    device: r.get(2),
                    inode: r.get(3),
                    byte_offset: r.get(4),
                    line: r.get(5),
                    cursor: r.get(6),
                    last_timestamp: r.get(7),
                    complete: r.get(8),
                    latest_local: r.get(9),
                    loaded_by: r.get(10),
                    base: PositionBase::Absent,
                    hosts: Vec::new(),
                };
                let cp = InputCheckpoint {
                    base: cp.as_base(),
                    ..cp
                };
                (cp.source.clone(), cp)
            })
            .collect())
    }

    /// Messages the extractor must know about to go on where it stopped: open ones
    /// (newest first, at most `limit`) and those closed within the grace period.
    pub async fn prime_entries(&self, limit: usize) -> Result<Vec<PrimeEntry>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let grace = pftrack_extract::CLOSED_GRACE.num_seconds() as f64;
        let rows = client
            .query(
                "(SELECT host, queue_id, arrived_at, last_seen_at, origin, message_id IS NOT NULL, \
                         NULL::timestamptz AS closed_at \
                  FROM delivery_from WHERE removed_at IS NULL AND rejected_at IS NULL \
                  ORDER BY last_seen_at DESC LIMIT $1) \
                 UNION ALL \
                 (SELECT f.host, f.queue_id, f.arrived_at, f.last_seen_at, f.origin, \
                         f.message_id IS NOT NULL, COALESCE(f.removed_at, f.rejected_at) \
                  FROM delivery_from f \
                  JOIN (SELECT host, max(COALESCE(removed_at, rejected_at)) AS latest \
                        FROM delivery_from \
                        WHERE removed_at IS NOT NULL OR rejected_at IS NOT NULL \
                        GROUP BY host) l ON l.host = f.host \
                  WHERE COALESCE(f.removed_at, f.rejected_at) \
                        >= l.latest - make_interval(secs => $2))",
                &[&limit, &grace],
            )
            .await
            .map_err(|e| StoreError::query("reading open messages", e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let host: String = r.get(0);
                let queue_id: String = r.get(1);
                let origin: Option<String> = r.get(4);
                PrimeEntry {
                    key: MessageKey {
                        host: host.into(),
                        queue_id: queue_id.into(),
                        arrived_at: r.get(2),
                    },
                    last_seen_at: r.get(3),
                    origin: origin.as_deref().and_then(parse_origin),
                    message_id_seen: r.get(5),
                    closed_at: r.get(6),
                }
            })
            .collect())
    }

    /// SASL failures stored at or after `since`, in time order with their occurrence
    /// numbers: what [`pftrack_extract::Extractor::prime_auth`] replays when an input
    /// resumes (identical failures go on being numbered; the brute-force window holds
    /// what it held).
    pub async fn auth_prime(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(pftrack_extract::AuthFailure, i32)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT host, logged_at, service, client_name, client_addr, client_port, \
                 sasl_method, sasl_username, reason, aborted, occurrence \
                 FROM auth_failure WHERE logged_at >= $1 \
                 ORDER BY logged_at, host, occurrence, fingerprint",
                &[&since],
            )
            .await
            .map_err(|e| StoreError::query("reading SASL failures to resume their counts", e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let host: String = r.get(0);
                let port: Option<i32> = r.get(5);
                (
                    pftrack_extract::AuthFailure {
                        host: host.into(),
                        at: r.get(1),
                        service: r.get(2),
                        client_name: r.get(3),
                        client_addr: r.get(4),
                        client_port: port.and_then(|p| u16::try_from(p).ok()),
                        method: r.get(6),
                        username: r.get(7),
                        reason: r.get(8),
                        aborted: r.get(9),
                    },
                    r.get(10),
                )
            })
            .collect())
    }

    /// NOQUEUE rows logged at or after `since`, with their counts: for
    /// `Extractor::prime_noqueue`, when an input resumes at `since`.
    pub async fn noqueue_prime(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(pftrack_extract::Noqueue, i32)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT host, logged_at, daemon, action, stage, client_name, client_addr, code, \
                 dsn, reason, sender, recipient, helo, proto, count \
                 FROM noqueue WHERE logged_at >= $1",
                &[&since],
            )
            .await
            .map_err(|e| StoreError::query("reading NOQUEUE rows to resume their counts", e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let host: String = r.get(0);
                (
                    pftrack_extract::Noqueue {
                        host: host.into(),
                        at: r.get(1),
                        daemon: r.get(2),
                        action: r.get(3),
                        stage: r.get(4),
                        client_name: r.get(5),
                        client_addr: r.get(6),
                        code: r.get(7),
                        dsn: r.get(8),
                        reason: r.get(9),
                        sender: r.get(10),
                        recipient: r.get(11),
                        helo: r.get(12),
                        proto: r.get(13),
                    },
                    r.get(14),
                )
            })
            .collect())
    }

    /// Run a read-only query for the CLI and tests.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        client
            .query(sql, params)
            .await
            .map_err(|e| StoreError::query("running a query", e))
    }
}

/// Migration numbers are reserved per feature and may land out of order: a database
/// migrated to V12 may lack V10. refinery refuses such a gap (`MissingVersion`), so
/// such migrations are applied here first, in order, each in a transaction with its
/// history row in refinery's format (so refinery sees them as applied and unchanged).
async fn apply_out_of_order(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading the migration history", e))?
        .get(0);
    if !exists {
        return Ok(());
    }
    let applied: Vec<i32> = client
        .query("SELECT version FROM refinery_schema_history", &[])
        .await
        .map_err(|e| StoreError::query("reading the migration history", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let Some(&latest) = applied.iter().max() else {
        return Ok(());
    };
    let runner = embedded::migrations::runner();
    let mut gaps: Vec<_> = runner
        .get_migrations()
        .iter()
        .filter(|m| m.version() < latest && !applied.contains(&m.version()))
        .collect();
    gaps.sort_by_key(|m| m.version());
    for m in gaps {
        let version = m.version();
        tracing::info!(
            version,
            name = m.name(),
            "Applying a migration that landed after later ones."
        );
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting a migration", e))?;
        tx.batch_execute(m.sql().unwrap_or(""))
            .await
            .map_err(|e| StoreError::Migrate {
                reason: format!("V{version}__{}: {e}", m.name()),
            })?;
        tx.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES ($1, $2, $3, $4)",
            &[
                &version,
                &m.name(),
                &Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                &m.checksum().to_string(),
            ],
        )
        .await
        .map_err(|e| StoreError::query("recording a migration", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::query("committing a migration", e))?;
    }
    Ok(())
}

/// Whether this migration run converts a database with rows to partitioned tables
/// (V14 pending, the target past it, and `delivery_from` not yet partitioned).
async fn partition_conversion_pending(
    client: &deadpool_postgres::Object,
    target: Option<u32>,
) -> Result<bool, StoreError> {
    if target.is_some_and(|v| v < PARTITIONS_SINCE) {
        return Ok(false);
    }
    let row = client
        .query_one(
            "SELECT COALESCE((SELECT c.relkind = 'r' FROM pg_class c
                              WHERE c.oid = to_regclass('delivery_from')), false)",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading the schema", e))?;
    Ok(row.get(0))
}

/// Say, per table, what the V14 conversion did with the rows it found.
async fn report_partition_conversion(client: &deadpool_postgres::Object) -> Result<(), StoreError> {
    let rows = client
        .query(
            "SELECT parent, partition, until_at FROM time_partition
             WHERE from_at IS NULL ORDER BY parent",
            &[],
        )
        .await
        .map_err(|e| StoreError::query("reading the partitions", e))?;
    for row in &rows {
        let (parent, partition, until): (String, String, DateTime<Utc>) =
            (row.get(0), row.get(1), row.get(2));
        // The name comes from time_partition (written by V14), quoted all the same.
        let count: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\"",
                    partition.replace('"', "\"\"")
                ),
                &[],
            )
            .await
            .map_err(|e| StoreError::query("counting a converted table", e))?
            .get(0);
        tracing::info!(
            "{parent}: partitioned by month; its {count} rows are kept in place as partition \
             {partition} (everything before {})",
            until.format("%Y-%m-%d")
        );
    }
    if rows.is_empty() {
        tracing::info!("the delivery tables were empty; they are partitioned by month");
    }
    Ok(())
}

/// A process-unique loader id: pid, start time and a little of the address space's
/// randomness (ASLR), enough to tell two processes apart across hosts and restarts.
fn new_loader_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stack_marker = 0u8;
    let aslr = std::ptr::addr_of!(stack_marker) as usize;
    format!("{}-{nanos:x}-{aslr:x}", std::process::id())
}

/// Where libpq looks for the local server's socket when a URL names no host.
pub const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// Fill in what libpq would: the local socket directory when no host is given, and the
/// login name when no user is given (`postgresql:///pftrack` then works as with psql).
fn apply_libpq_defaults(config: &mut tokio_postgres::Config) {
    if config.get_hosts().is_empty() {
        let dir = DEFAULT_SOCKET_DIRS
            .iter()
            .find(|d| std::path::Path::new(d).is_dir())
            .unwrap_or(&DEFAULT_SOCKET_DIRS[0]);
        config.host_path(dir);
    }
    if config.get_user().is_none()
        && let Some(user) = std::env::var("PGUSER")
            .ok()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(login_name_from_passwd)
    {
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Ok(db) = std::env::var("PGDATABASE")
    {
        config.dbname(db);
    }
}

/// The login name of this process's uid, from `/etc/passwd` (what libpq asks
/// `getpwuid` for), for environments without `USER`.
fn login_name_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()? == uid).then(|| name.to_owned())
    })
}

fn parse_origin(s: &str) -> Option<Origin> {
    match s {
        "smtpd" => Some(Origin::Smtpd),
        "pickup" => Some(Origin::Pickup),
        "notification" => Some(Origin::Notification),
        _ => None,
    }
}
