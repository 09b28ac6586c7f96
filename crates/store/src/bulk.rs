//! Bulk loading: build secondary indexes once, after a large load, instead of row by row.
//!
//! Maintaining a btree index costs PostgreSQL a few microseconds per row; building it
//! afterwards by sorting costs a fraction of that. So a backfill into an empty database
//! drops the secondary indexes of the delivery tables and builds them again at the end,
//! as `pg_restore` does. Primary keys stay: the upserts need them. While the indexes are
//! away, lookups by address, message-id or day read whole tables (slowly, but right).
//!
//! Crash safety: the definition of every dropped index is stored in `deferred_index` in
//! the transaction that drops it, and deleted in the transaction that builds it again.
//! A load that dies leaves the record behind: the next backfill continues the bulk load,
//! and [`Store::restore_deferred_indexes`] (run by `pftrack run` and `pftrack migrate`)
//! builds them. A live bulk load holds a session advisory lock on its own connection,
//! so nothing else builds its indexes under it; the lock goes with the connection when
//! the process dies.
//!
//! For whoever writes the next migration: while a bulk load is interrupted, the
//! secondary indexes exist only as rows of `deferred_index`. A migration that drops or
//! changes one of them must deal with both places (or build the deferred ones first).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::{Store, StoreError};

/// Key of the session advisory lock held by a live bulk load.
const BULK_LOAD_LOCK_KEY: i64 = 0x7066_7472_6163_6b01; // "pftrack\1"

/// Tables whose secondary indexes a bulk load defers.
const BULK_TABLES: [&str; 5] = [
    "delivery_from",
    "delivery_to",
    "delivery_attempt",
    "noqueue",
    "auth_failure",
];

/// How long setting indexes aside may wait for the tables' locks. Dropping an index
/// needs the table to itself; a request that waits would also hold up every reader
/// and writer queued behind it, so after this the load maintains indexes instead.
pub const BULK_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Indexes are built on this many connections at once: the primary goal is to use the
/// cores PostgreSQL has while pftrack itself waits.
pub const INDEX_BUILD_CONNECTIONS: usize = 2;

/// When a load defers the secondary indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexMode {
    /// Only into an empty database (or to continue an interrupted bulk load).
    #[default]
    Auto,
    /// Whatever the database holds (a large load into a small database).
    Always,
    /// Never: indexes are maintained row by row (and leftovers are built first).
    Never,
}

/// A load in progress. [`BulkLoad::finish`] builds the deferred indexes; dropping it
/// without finishing leaves them to the next start (see the module docs).
pub struct BulkLoad {
    /// Dedicated connection holding [`BULK_LOAD_LOCK_KEY`] (closed on drop, which
    /// releases the lock); `None` when indexes are maintained as usual.
    guard: Option<deadpool_postgres::ClientWrapper>,
    deferred: usize,
}

impl std::fmt::Debug for BulkLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkLoad")
            .field("deferred", &self.deferred)
            .finish_non_exhaustive()
    }
}

/// What [`BulkLoad::finish`] or [`Store::restore_deferred_indexes`] built.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IndexBuild {
    /// Indexes built.
    pub indexes: usize,
    /// How long it took.
    pub elapsed: Duration,
}

impl BulkLoad {
    /// Build the deferred indexes (if any) and end the bulk load.
    pub async fn finish(self, store: &Store) -> Result<IndexBuild, StoreError> {
        if self.guard.is_none() {
            return Ok(IndexBuild::default());
        }
        let built = store.build_deferred().await;
        drop(self.guard);
        built
    }
}

impl Store {
    /// Start a load: decide from `mode` and the database whether to defer secondary
    /// indexes, and if so set them aside.
    pub async fn begin_load(&self, mode: IndexMode) -> Result<BulkLoad, StoreError> {
        let maintained = BulkLoad {
            guard: None,
            deferred: 0,
        };
        if mode == IndexMode::Never {
            self.restore_deferred_indexes().await?;
            return Ok(maintained);
        }
        let Some(mut guard) = self.try_bulk_load_lock().await? else {
            tracing::info!(
                "another pftrack process is bulk loading into {}; indexes are maintained \
                 row by row",
                self.target
            );
            return Ok(maintained);
        };
        let tx = guard
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting the bulk load", e))?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}",
            BULK_LOCK_TIMEOUT.as_millis()
        ))
        .await
        .map_err(|e| StoreError::query("starting the bulk load", e))?;
        let pending: i64 = tx
            .query_one("SELECT count(*) FROM deferred_index", &[])
            .await
            .map_err(|e| StoreError::query("reading deferred indexes", e))?
            .get(0);
        let empty: bool = tx
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM delivery_from)
                    AND NOT EXISTS (SELECT 1 FROM delivery_to)
                    AND NOT EXISTS (SELECT 1 FROM noqueue)
                    AND NOT EXISTS (SELECT 1 FROM auth_failure)",
                &[],
            )
            .await
            .map_err(|e| StoreError::query("checking whether the database is empty", e))?
            .get(0);
        if mode == IndexMode::Auto && pending == 0 && !empty {
            tx.rollback()
                .await
                .map_err(|e| StoreError::query("starting the load", e))?;
            return Ok(maintained);
        }
        let indexes = tx
            .query(
                "SELECT c.relname::text, t.relname::text, pg_get_indexdef(i.indexrelid)
                 FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_class t ON t.oid = i.indrelid
                 WHERE t.relname = ANY($1) AND t.relnamespace = current_schema()::regnamespace
                   AND NOT i.indisprimary AND NOT i.indisunique
                 ORDER BY c.relname",
                &[&&BULK_TABLES[..]],
            )
            .await
            .map_err(|e| StoreError::query("listing secondary indexes", e))?;
        for row in &indexes {
            let (name, table, definition): (&str, &str, &str) =
                (row.get(0), row.get(1), row.get(2));
            let definition = &buildable_definition(definition);
            tx.execute(
                "INSERT INTO deferred_index (name, table_name, definition) VALUES ($1, $2, $3)",
                &[&name, &table, &definition],
            )
            .await
            .map_err(|e| StoreError::query("recording a deferred index", e))?;
            let dropped = tx
                .batch_execute(&format!("DROP INDEX {}", quote_ident(name)))
                .await;
            match dropped {
                Ok(()) => {}
                Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                    tracing::info!(
                        "{table} is in use (no lock within {} s); indexes are maintained row \
                         by row during this load",
                        BULK_LOCK_TIMEOUT.as_secs()
                    );
                    // The transaction is aborted; dropping it rolls it back.
                    drop(tx);
                    return Ok(maintained);
                }
                Err(e) => return Err(StoreError::query("dropping a secondary index", e)),
            }
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::query("deferring secondary indexes", e))?;
        let deferred = usize::try_from(pending).unwrap_or(0) + indexes.len();
        tracing::info!(
            "bulk load: {deferred} secondary index(es) of {} are built once at the end",
            self.target
        );
        Ok(BulkLoad {
            guard: Some(guard),
            deferred,
        })
    }

    /// Build indexes an interrupted bulk load left deferred, unless a bulk load is
    /// still running (it builds them itself when it ends).
    pub async fn restore_deferred_indexes(&self) -> Result<IndexBuild, StoreError> {
        let client = self.client().await?;
        let pending: i64 = client
            .query_one("SELECT count(*) FROM deferred_index", &[])
            .await
            .map_err(|e| StoreError::query("reading deferred indexes", e))?
            .get(0);
        if pending == 0 {
            return Ok(IndexBuild::default());
        }
        drop(client);
        let Some(guard) = self.try_bulk_load_lock().await? else {
            tracing::info!(
                "{pending} index(es) are deferred by a bulk load still running; it builds them"
            );
            return Ok(IndexBuild::default());
        };
        tracing::info!("building {pending} index(es) left by an interrupted bulk load");
        let built = self.build_deferred().await;
        // Closing the connection releases the lock.
        drop(guard);
        built
    }

    /// The bulk load lock on a connection of its own (detached from the pool, so the
    /// lock lives exactly as long as the connection), or `None` when a live bulk load
    /// holds it.
    async fn try_bulk_load_lock(
        &self,
    ) -> Result<Option<deadpool_postgres::ClientWrapper>, StoreError> {
        let guard = deadpool_postgres::Object::take(self.client().await?);
        let locked: bool = guard
            .query_one("SELECT pg_try_advisory_lock($1)", &[&BULK_LOAD_LOCK_KEY])
            .await
            .map_err(|e| StoreError::query("taking the bulk load lock", e))?
            .get(0);
        Ok(locked.then_some(guard))
    }

    /// Build every index in `deferred_index`, largest tables first, on up to
    /// [`INDEX_BUILD_CONNECTIONS`] connections; each build commits with the removal of
    /// its record. The caller holds the bulk load lock.
    ///
    /// One table's indexes are built one after the other, on one connection: on a
    /// partitioned table each build also names an index per partition, and two builds
    /// on one table at once can pick the same name (`…_lower_arrived_at_idx` for two
    /// expressions) and fail.
    async fn build_deferred(&self) -> Result<IndexBuild, StoreError> {
        let started = Instant::now();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT d.table_name, d.name, d.definition FROM deferred_index d
                 LEFT JOIN pg_class t ON t.relname = d.table_name
                     AND t.relnamespace = current_schema()::regnamespace
                 ORDER BY pg_total_relation_size(t.oid) DESC NULLS LAST, d.table_name, d.name",
                &[],
            )
            .await
            .map_err(|e| StoreError::query("reading deferred indexes", e))?;
        drop(client);
        let count = rows.len();
        // Per table, in the order read (largest table first).
        let mut tables: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for r in &rows {
            let table: String = r.get(0);
            let index = (r.get(1), r.get(2));
            match tables.last_mut() {
                Some((t, indexes)) if *t == table => indexes.push(index),
                _ => tables.push((table, vec![index])),
            }
        }
        let queue = std::sync::Arc::new(std::sync::Mutex::new(tables.into_iter()));
        let mut workers = Vec::with_capacity(INDEX_BUILD_CONNECTIONS);
        for _ in 0..INDEX_BUILD_CONNECTIONS.min(count) {
            let store = self.clone();
            let queue = queue.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((_table, indexes)) = next else {
                        return Ok::<(), StoreError>(());
                    };
                    for (name, definition) in indexes {
                        store.build_one(&name, &definition).await?;
                    }
                }
            }));
        }
        for worker in workers {
            match worker.await {
                Ok(result) => result?,
                Err(e) => {
                    return Err(StoreError::IndexBuild {
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(IndexBuild {
            indexes: count,
            elapsed: started.elapsed(),
        })
    }

    async fn build_one(&self, name: &str, definition: &str) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::query("starting an index build", e))?;
        let exists: bool = tx
            .query_one("SELECT to_regclass(quote_ident($1)) IS NOT NULL", &[&name])
            .await
            .map_err(|e| StoreError::query("checking for an index", e))?
            .get(0);
        if !exists {
            tx.batch_execute(definition)
                .await
                .map_err(|e| StoreError::query(BUILD_FAILED, e))?;
        }
        tx.execute("DELETE FROM deferred_index WHERE name = $1", &[&name])
            .await
            .map_err(|e| StoreError::query("recording a built index", e))?;
        tx.commit()
            .await
            .map_err(|e| StoreError::query(BUILD_FAILED, e))?;
        tracing::debug!(
            "built index {name} in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// What a failed index build says (with what happens next).
const BUILD_FAILED: &str = "building an index deferred by a bulk load (it is built at the \
    next start of `pftrack migrate`, `pftrack run` or `pftrack backfill`)";

/// An index definition as `pg_get_indexdef()` gives it, made to build the whole index.
/// On a partitioned table it reads `CREATE INDEX n ON ONLY t …`, which would build the
/// parent's index alone (invalid until each partition's is attached); without `ONLY`
/// it builds every partition's index too.
fn buildable_definition(definition: &str) -> String {
    definition.replacen(" ON ONLY ", " ON ", 1)
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioned_index_definitions_build_every_partition() {
        assert_eq!(
            buildable_definition(
                "CREATE INDEX delivery_to_recipient ON ONLY public.delivery_to USING btree (lower(recipient))"
            ),
            "CREATE INDEX delivery_to_recipient ON public.delivery_to USING btree (lower(recipient))"
        );
        let plain = "CREATE INDEX noqueue_sender ON public.noqueue USING btree (lower(sender))";
        assert_eq!(buildable_definition(plain), plain);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(
            quote_ident("delivery_to_recipient"),
            "\"delivery_to_recipient\""
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
