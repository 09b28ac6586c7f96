//! `pftrack-export`: accounting records from the facts pftrack stored in PostgreSQL,
//! the job haraka's accounting_files plugin does — one line per delivered, deferred,
//! bounced or rejected recipient and per failed SASL authentication, with selectable fields, as TSV, CSV (RFC 4180) or
//! JSON Lines — for billing, compliance and other systems.
//!
//! What it is:
//! * [`export_period`]: the records Postfix logged in a period, to any writer.
//! * [`export_incremental`]: into a directory, only the records not exported there
//!   before, exactly once across crashes: records are chosen by the transaction that
//!   stored them (`loaded_xid`, migration V11) up to the horizon below which every
//!   transaction has ended, appended to one open file per type and fsynced, and the
//!   files' committed lengths and the directory's watermark are recorded in one
//!   transaction. A run cuts back what an interrupted run appended after its last
//!   commit, deletes files it created but never recorded, and finishes moving files
//!   recorded as archived. Files rotate by size and by age into an archive directory,
//!   named like haraka's (`d.2025-03-14-125059.tsv`). One exporter per directory at a
//!   time (a PostgreSQL advisory lock, released when its connection ends).
//!
//! What it is not: a log reader (it reads only the database), a writer of delivery
//! facts (it writes only its own tables, `export_target` and `export_file`), or a
//! shipper (other programs pick the archived files up).

mod format;
mod incremental;
mod query;
mod record;

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use pftrack_store::Store;

pub use format::Format;
pub use incremental::{DirOptions, RunSummary, export_incremental};
pub use record::{Field, RecordType, Value, relay_addr};

/// Rotate an open file once it would grow past this size (haraka's default, 200 MB).
pub const DEFAULT_ROTATE_SIZE: u64 = 200 * 1000 * 1000;
/// Rotate an open file once it has been open this long (haraka's default, one day).
pub const DEFAULT_ROTATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Formatted records are gathered up to this many bytes before a write.
const WRITE_BUFFER: usize = 256 * 1024;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// An argument is wrong (an unknown field, type or format).
    #[error("{0}")]
    Usage(String),
    /// The database could not be reached.
    #[error(transparent)]
    Store(#[from] pftrack_store::StoreError),
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Another exporter is writing into the same directory.
    #[error(
        "another pftrack export is writing into {}: {holder}; it releases the directory \
         when it ends (try again then)", dir.display()
    )]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// Who holds it.
        holder: String,
    },
    /// A file the database knows differs from what was written (changed by hand).
    #[error("{}: {reason}", path.display())]
    Tampered {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl ExportError {
    pub(crate) fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> ExportError {
        move |source| ExportError::Query { what, source }
    }

    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ExportError {
        let path = path.to_path_buf();
        move |source| ExportError::Io { what, path, source }
    }

    /// True when the failure was that another exporter holds the directory.
    pub fn is_busy(&self) -> bool {
        matches!(self, ExportError::Busy { .. })
    }
}

/// Which records, which fields, which format.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Record types to write (sorted, no duplicates).
    pub types: Vec<RecordType>,
    /// Fields of each record, in order.
    pub fields: Vec<Field>,
    /// The file format.
    pub format: Format,
}

/// Counts of records written, per type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `delivered` records.
    pub delivered: u64,
    /// `deferred` records.
    pub deferred: u64,
    /// `bounced` records.
    pub bounced: u64,
    /// `rejected` records.
    pub rejected: u64,
    /// `auth-failure` records.
    pub auth_failures: u64,
}

impl Counts {
    /// All records.
    pub fn total(&self) -> u64 {
        self.delivered + self.deferred + self.bounced + self.rejected + self.auth_failures
    }

    pub(crate) fn add(&mut self, t: RecordType) {
        match t {
            RecordType::Delivered => self.delivered += 1,
            RecordType::Deferred => self.deferred += 1,
            RecordType::Bounced => self.bounced += 1,
            RecordType::Rejected => self.rejected += 1,
            RecordType::AuthFailure => self.auth_failures += 1,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records ({} delivered, {} deferred, {} bounced, {} rejected, {} auth-failure)",
            self.total(),
            self.delivered,
            self.deferred,
            self.bounced,
            self.rejected,
            self.auth_failures
        )
    }
}

/// Write the records Postfix logged in `[since, until)` to `out` (a header line first
/// for TSV and CSV), in the order they were logged. Returns the counts.
pub async fn export_period<W: Write>(
    store: &Store,
    selection: &Selection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    out: &mut W,
) -> Result<Counts, ExportError> {
    let io_err = |source| ExportError::Io {
        what: "writing the export to",
        path: PathBuf::from("the output"),
        source,
    };
    let mut client = store.connection().await?;
    // A transaction for the settings (SET LOCAL) only: the statement reads.
    let tx = client
        .transaction()
        .await
        .map_err(ExportError::query("starting the export"))?;
    tx.batch_execute(query::SESSION)
        .await
        .map_err(ExportError::query("setting up the export session"))?;
    let statement = query::period(&selection.types);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&statement.statuses, &since, &until];
    let rows = tx
        .query_raw(&statement.sql, params)
        .await
        .map_err(ExportError::query("selecting the records of the period"))?;
    futures_util::pin_mut!(rows);
    let mut buf = Vec::with_capacity(WRITE_BUFFER + 4096);
    if let Some(header) = selection.format.header(&selection.fields) {
        buf.extend_from_slice(&header);
    }
    let mut counts = Counts::default();
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(ExportError::query("reading the records of the period"))?
    {
        let Some(t) = query::record_type(&row) else {
            continue;
        };
        let values: Vec<Value<'_>> = selection
            .fields
            .iter()
            .map(|f| query::value(&row, *f))
            .collect();
        selection
            .format
            .record(&mut buf, &selection.fields, &values);
        counts.add(t);
        if buf.len() >= WRITE_BUFFER {
            out.write_all(&buf).map_err(io_err)?;
            buf.clear();
        }
    }
    out.write_all(&buf).map_err(io_err)?;
    out.flush().map_err(io_err)?;
    tx.commit()
        .await
        .map_err(ExportError::query("ending the export"))?;
    Ok(counts)
}
