//! Dynamic SQL with bound parameters only: text is built from fixed fragments, every
//! value a user gave goes in as a `$n` parameter.

use tokio_postgres::types::ToSql;

/// A statement under construction: its text and its parameters.
#[derive(Default)]
pub struct Sql {
    /// The statement text so far.
    pub text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// A statement starting with `text`.
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    /// Bind `value`; returns its placeholder (`$3`).
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Append text.
    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// The parameters, as tokio-postgres takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Statements one connection keeps prepared at most; past that its cache is emptied
/// (and the server's statements closed) before the next is added. The search's text
/// varies with its filters, sort and scope, so without a bound a long-lived connection
/// would collect every combination ever asked for.
pub const MAX_PREPARED_PER_CONNECTION: usize = 64;

/// `text` prepared on `conn` once and then taken from the connection's cache: a cached
/// statement is neither parsed nor planned again (PostgreSQL keeps a generic plan once
/// it is as good as the custom ones), and its execution is one round trip instead of
/// two. For statements whose best plan does not depend on the values bound.
pub async fn prepared(
    conn: &deadpool_postgres::Client,
    text: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if conn.statement_cache.size() >= MAX_PREPARED_PER_CONNECTION {
        conn.statement_cache.clear();
    }
    conn.prepare_cached(text).await
}
