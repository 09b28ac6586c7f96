//! One loader per input: session advisory locks keyed by the input's identity.
//!
//! Whatever loads an input (a file known by the hash of its first line, a journal known
//! by its source key) first takes a PostgreSQL session advisory lock keyed by a hash of
//! that identity, on a connection of its own, and keeps it for as long as it loads. The
//! lock lives exactly as long as that connection: a loader killed with SIGKILL leaves
//! no stale lock (the kernel closes its socket, the backend ends and releases it), so
//! the next loader takes over at once, with no manual step.
//!
//! A loader that finds an input held is told who holds it: the lock connection carries
//! an `application_name` naming the command, its process id and its host, and
//! `pg_stat_activity` says since when the holder has been idle on it (that is, since it
//! took the lock).
//!
//! The lock is the first line of defence; the second is the compare-and-set of input
//! positions in every batch transaction (`write`), which holds even when a lock is lost
//! (the lock connection broke while the loader went on) or was never taken.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{Store, StoreError};

/// PostgreSQL truncates `application_name` to this many bytes (NAMEDATALEN - 1).
pub const APPLICATION_NAME_MAX: usize = 63;

/// Prefix hashed with an input's source key, so that input locks do not share keys
/// with the other advisory locks of pftrack (migrations, bulk loads).
const INPUT_LOCK_NAMESPACE: &str = "pftrack input lock\0";

/// The advisory lock key of an input: FNV-1a (64 bit) of its source key. Two inputs
/// whose keys collide would only wait for each other, never load wrongly.
pub fn input_lock_key(source: &str) -> i64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    for byte in INPUT_LOCK_NAMESPACE.bytes().chain(source.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Who holds an input, as PostgreSQL knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's PostgreSQL backend process id.
    pub backend_pid: i32,
    /// Its `application_name` (`pftrack backfill 1234@mx1`), when visible to us.
    pub application_name: Option<String>,
    /// The address it connected from (none over a Unix socket).
    pub client_addr: Option<String>,
    /// Since when it has held the lock (its connection's last state change: the lock
    /// connection does nothing after taking the lock).
    pub since: Option<DateTime<Utc>>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.application_name.as_deref().filter(|a| !a.is_empty()) {
            Some(app) => write!(f, "{app}")?,
            None => write!(f, "another session")?,
        }
        write!(f, " (PostgreSQL backend {}", self.backend_pid)?;
        if let Some(addr) = &self.client_addr {
            write!(f, ", connected from {addr}")?;
        }
        write!(f, ")")?;
        if let Some(since) = self.since {
            write!(f, " since {}", since.format("%Y-%m-%d %H:%M:%S UTC"))?;
        }
        Ok(())
    }
}

/// Locks on inputs, on a connection of their own (named after the loader, so that
/// others can see who waits and who holds); dropping it closes the connection, which
/// releases them.
pub struct InputLocks {
    /// `None` when there is no input to lock.
    connection: Option<deadpool_postgres::ClientWrapper>,
    sources: Vec<String>,
    keys: Vec<i64>,
    held: bool,
}

impl fmt::Debug for InputLocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputLocks")
            .field("sources", &self.sources)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

/// An input another loader holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The input's source key.
    pub source: String,
    /// Who holds it, when PostgreSQL could tell (it may have just let go).
    pub holder: Option<LockHolder>,
}

impl InputLocks {
    /// The inputs to hold.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// True once every lock is taken, until the lock connection is gone (PostgreSQL
    /// restarted or the network broke): the locks are then released, and only the
    /// positions' compare-and-set keeps another loader from counting twice.
    pub fn is_held(&self) -> bool {
        self.held && self.connection.as_ref().is_none_or(|c| !c.is_closed())
    }

    /// Try to take every lock (all or none). `Ok(None)`: they are ours until this value
    /// is dropped. `Ok(Some(busy))`: another loader holds `busy.source`; nothing is
    /// taken, and the caller may try again (the connection stays, so others see this
    /// loader waiting under its name).
    pub async fn try_acquire(&mut self) -> Result<Option<Busy>, StoreError> {
        let Some(connection) = &self.connection else {
            self.held = true;
            return Ok(None);
        };
        if self.held {
            return Ok(None);
        }
        // One statement for all: either every lock is taken, or those that were are
        // let go again in the same round trip.
        let row = connection
            .query_one(
                "WITH tried AS (
                     SELECT k, pg_try_advisory_lock(k) AS got FROM unnest($1::bigint[]) AS k
                 ), released AS (
                     SELECT pg_advisory_unlock(k) FROM tried
                     WHERE got AND EXISTS (SELECT 1 FROM tried WHERE NOT got)
                 )
                 SELECT (SELECT min(array_position($1::bigint[], k)) FROM tried WHERE NOT got),
                        (SELECT count(*) FROM released)",
                &[&self.keys],
            )
            .await
            .map_err(|e| StoreError::query("taking the input locks", e))?;
        let busy: Option<i32> = row.get(0);
        let Some(position) = busy else {
            self.held = true;
            return Ok(None);
        };
        // array_position is 1-based.
        let index = usize::try_from(position)
            .unwrap_or(1)
            .saturating_sub(1)
            .min(self.keys.len() - 1);
        let holder = lock_holder(connection, self.keys[index]).await?;
        Ok(Some(Busy {
            source: self.sources[index].clone(),
            holder,
        }))
    }
}

impl Store {
    /// The locks of `sources`, not taken yet ([`InputLocks::try_acquire`] takes them),
    /// on a new connection named `application_name` (cut to what PostgreSQL keeps).
    pub async fn input_locks(
        &self,
        sources: &[String],
        application_name: &str,
    ) -> Result<InputLocks, StoreError> {
        let mut sources: Vec<String> = sources.to_vec();
        sources.sort_unstable();
        sources.dedup();
        let keys: Vec<i64> = sources.iter().map(|s| input_lock_key(s)).collect();
        if sources.is_empty() {
            return Ok(InputLocks {
                connection: None,
                sources,
                keys,
                held: false,
            });
        }
        let connection = deadpool_postgres::Object::take(self.client().await?);
        connection
            .execute(
                "SELECT set_config('application_name', $1, false)",
                &[&truncate_name(application_name)],
            )
            .await
            .map_err(|e| StoreError::query("naming the input lock connection", e))?;
        Ok(InputLocks {
            connection: Some(connection),
            sources,
            keys,
            held: false,
        })
    }
}

/// Who holds the advisory lock `key` in this database.
async fn lock_holder(
    client: &tokio_postgres::Client,
    key: i64,
) -> Result<Option<LockHolder>, StoreError> {
    // A bigint advisory key shows in pg_locks as classid = high 32 bits,
    // objid = low 32 bits, objsubid = 1.
    let row = client
        .query_opt(
            "SELECT a.pid, a.application_name, host(a.client_addr), a.state_change
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database
                                 WHERE datname = current_database())
               AND l.classid = (($1::bigint >> 32) & 4294967295)::oid
               AND l.objid = ($1::bigint & 4294967295)::oid
             LIMIT 1",
            &[&key],
        )
        .await
        .map_err(|e| StoreError::query("asking who holds an input", e))?;
    Ok(row.map(|r| LockHolder {
        backend_pid: r.get(0),
        application_name: r.get(1),
        client_addr: r.get(2),
        since: r.get(3),
    }))
}

/// `name` cut to [`APPLICATION_NAME_MAX`] bytes on a character boundary.
fn truncate_name(name: &str) -> &str {
    if name.len() <= APPLICATION_NAME_MAX {
        return name;
    }
    let mut end = APPLICATION_NAME_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_source_and_from_the_other_locks() {
        let a = input_lock_key("file:00000000000000aa");
        let b = input_lock_key("file:00000000000000ab");
        assert_ne!(a, b);
        assert_eq!(a, input_lock_key("file:00000000000000aa"));
        assert_ne!(a, crate::MIGRATION_LOCK_KEY);
    }

    #[test]
    fn names_are_cut_on_character_boundaries() {
        let long = "é".repeat(40);
        let cut = truncate_name(&long);
        assert!(cut.len() <= APPLICATION_NAME_MAX);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(
            truncate_name("pftrack backfill 1@mx1"),
            "pftrack backfill 1@mx1"
        );
    }

    #[test]
    fn holders_read_well() {
        let holder = LockHolder {
            backend_pid: 4242,
            application_name: Some("pftrack backfill 1234@mx1".into()),
            client_addr: Some("10.0.0.5".into()),
            since: DateTime::from_timestamp(1_764_849_600, 0),
        };
        assert_eq!(
            holder.to_string(),
            "pftrack backfill 1234@mx1 (PostgreSQL backend 4242, connected from 10.0.0.5) \
             since 2025-12-04 12:00:00 UTC"
        );
        let anonymous = LockHolder {
            application_name: None,
            client_addr: None,
            since: None,
            ..holder
        };
        assert_eq!(
            anonymous.to_string(),
            "another session (PostgreSQL backend 4242)"
        );
    }
}
