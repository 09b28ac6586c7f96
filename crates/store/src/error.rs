//! The store's error type.

/// Errors of the store crate. Messages name the database without its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error("invalid database URL {target}: {source}")]
    Config {
        /// The URL without its password.
        target: String,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be made or taken from the pool.
    #[error("cannot connect to the database {target}: {reason} ({})", pool_hint(*.transient))]
    Pool {
        /// The URL without its password.
        target: String,
        /// Why.
        reason: String,
        /// Whether trying again later may help (the server is down or restarting),
        /// as opposed to a refusal (authentication, TLS, unknown database).
        transient: bool,
    },
    /// Migrations failed.
    #[error("applying database migrations failed: {reason}")]
    Migrate {
        /// Why.
        reason: String,
    },
    /// A CA certificate file for TLS (`database.ca_file` or the URL's `sslrootcert`)
    /// cannot be read or holds no usable certificate.
    #[error("cannot use the CA file {} for the database connection: {reason}", path.display())]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// TLS for the database connection cannot be set up (no trusted CA found, …).
    #[error("cannot set up TLS for the database connection: {reason}")]
    Tls {
        /// Why.
        reason: String,
    },
    /// Building the indexes deferred by a bulk load failed in an unexpected way.
    #[error(
        "building deferred indexes failed: {reason} (they are built at the next start of \
         `pftrack migrate`, `pftrack run` or `pftrack backfill`)"
    )]
    IndexBuild {
        /// Why.
        reason: String,
    },
    /// A value could not be encoded for COPY.
    #[error("cannot encode a row for the database: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
    /// The stored position of an input is no longer the one this loader read from:
    /// another loader of the same input committed meanwhile. Nothing of the batch was
    /// written.
    #[error(
        "the stored position of {input} moved while this process was loading it (expected \
         {expected}, found {found}): another pftrack is loading the same input; nothing of \
         this batch was written. Let the other loader finish, then run this one again: it \
         resumes from the stored position"
    )]
    PositionMoved {
        /// The input: its path, or its source key when no path is known.
        input: String,
        /// The position this loader started from.
        expected: String,
        /// The position found stored.
        found: String,
    },
    /// A statement failed.
    #[error("database error while {what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The configured host alias map (`fleet.host_aliases`) cannot be used.
    #[error("{reason}")]
    HostAliases {
        /// What is wrong, naming the entry.
        reason: String,
    },
}

/// What to check after a failed connection.
fn pool_hint(transient: bool) -> &'static str {
    if transient {
        "is PostgreSQL running and reachable at that address?"
    } else {
        "the server refused: check the user, password, database name and TLS settings"
    }
}

impl StoreError {
    pub(crate) fn query(what: &'static str, source: tokio_postgres::Error) -> Self {
        StoreError::Query { what, source }
    }

    pub(crate) fn from_pool(target: &str, e: deadpool_postgres::PoolError) -> Self {
        let (reason, transient) = match &e {
            deadpool_postgres::PoolError::Backend(b) => {
                let chain = error_chain(b);
                // The server answered and refused (wrong password, no such database,
                // too many connections is the exception), or TLS verification failed:
                // retrying the same thing cannot help.
                let refused = match b.code() {
                    Some(code) => code.code() != "53300" && !code.code().starts_with("57P"),
                    None => chain.contains("certificate") || chain.contains("sslmode"),
                };
                (chain, !refused)
            }
            other => (other.to_string(), true),
        };
        StoreError::Pool {
            target: target.to_owned(),
            reason,
            transient,
        }
    }

    /// True when a statement found a duplicate key (SQLSTATE 23505).
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Query { source, .. }
            if source.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION))
    }

    /// True when a row found no partition for its time (PostgreSQL's "no partition of
    /// relation … found for row", SQLSTATE 23514 from the partition routing).
    pub(crate) fn is_missing_partition(&self) -> bool {
        matches!(self, StoreError::Query { source, .. }
            if source.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
                && source.as_db_error().is_some_and(|db| db.message().starts_with("no partition of relation")))
    }

    /// True when retrying later may succeed: the server is unreachable, restarting,
    /// or the transaction hit a serialization failure or deadlock.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool { transient, .. } => *transient,
            StoreError::Query { source, .. } => {
                if source.is_closed() {
                    return true;
                }
                match source.code() {
                    Some(code) => {
                        let c = code.code();
                        c.starts_with("08") // connection exception
                            || c == "40001" // serialization failure
                            || c == "40P01" // deadlock
                            || c.starts_with("57P") // admin/crash shutdown, cannot connect now
                            || c == "53300" // too many connections
                    }
                    // No SQLSTATE: an I/O error on the connection.
                    None => source.as_db_error().is_none(),
                }
            }
            StoreError::Config { .. }
            | StoreError::Migrate { .. }
            | StoreError::CaFile { .. }
            | StoreError::Tls { .. }
            | StoreError::IndexBuild { .. }
            | StoreError::Encode { .. }
            | StoreError::PositionMoved { .. }
            | StoreError::HostAliases { .. } => false,
        }
    }
}

fn error_chain(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The URL with any password replaced by `***`, for messages and logs. Handles both
/// `postgresql://user:pw@host/db` and `key=value` forms.
pub fn redact_url(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        let scheme = &url[..url.len() - rest.len()];
        // The userinfo ends at the last '@' before the first '/' or '?'.
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!("{scheme}{}:***{}", &userinfo[..colon], &rest[at..]);
            }
        }
        let mut out = url.to_owned();
        if let Some(q) = out.find("password=") {
            let end = out[q..].find('&').map_or(out.len(), |e| q + e);
            out.replace_range(q + "password=".len()..end, "***");
        }
        return out;
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgresql://u:secret@db:5432/pf"),
            "postgresql://u:***@db:5432/pf"
        );
        assert_eq!(redact_url("postgresql://u@db/pf"), "postgresql://u@db/pf");
        assert_eq!(
            redact_url("postgresql://db/pf?user=u&password=s3&sslmode=require"),
            "postgresql://db/pf?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("host=db user=u password=x dbname=pf"),
            "host=db user=u password=*** dbname=pf"
        );
    }
}
