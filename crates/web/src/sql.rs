//! Dynamic SQL with bound parameters only: text is built from fixed fragments, every
//! value a user gave goes in as a `$n` parameter.

use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};

/// The PostgreSQL type a value is bound as, so that a statement can be sent with its
/// parameters' types ([`Sql::typed_params`]).
pub trait SqlType {
    /// The type.
    const TYPE: Type;
}

impl SqlType for String {
    const TYPE: Type = Type::TEXT;
}

impl SqlType for i64 {
    const TYPE: Type = Type::INT8;
}

impl SqlType for DateTime<Utc> {
    const TYPE: Type = Type::TIMESTAMPTZ;
}

impl SqlType for Vec<String> {
    const TYPE: Type = Type::TEXT_ARRAY;
}

impl<T: SqlType> SqlType for Option<T> {
    const TYPE: Type = T::TYPE;
}

/// A statement under construction: its text and its parameters.
#[derive(Default)]
pub struct Sql {
    /// The statement text so far.
    pub text: String,
    params: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
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
    pub fn bind<T: ToSql + SqlType + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push((Box::new(value), T::TYPE));
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
            .map(|(p, _)| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// The parameters with their types, for [`Sql::query`].
    pub fn typed_params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|(p, t)| (p.as_ref() as &(dyn ToSql + Sync), t.clone()))
            .collect()
    }

    /// Run the statement as an unnamed one sent with its parameters' types: one round
    /// trip, and planned for these values. For statements whose best plan depends on
    /// the values (a search over an hour or a month, a busy address or a rare one):
    /// a cached generic plan of these is guessed for no value in particular, and over
    /// the monthly partitions it sorted a busy address's 97 k rows for one page.
    pub async fn query(
        &self,
        conn: &deadpool_postgres::Client,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        conn.query_typed(&self.text, &self.typed_params()).await
    }

    /// Run the statement prepared with its parameters' types and cached on `conn`
    /// ([`prepared`]): parsed once per connection, and planned once PostgreSQL finds
    /// its generic plan as good as the custom ones. Only for statements whose one plan
    /// is right for every value — an index that yields the rows in the order asked for,
    /// read until the page is full.
    pub async fn query_prepared(
        &self,
        conn: &deadpool_postgres::Client,
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let types: Vec<Type> = self.params.iter().map(|(_, t)| t.clone()).collect();
        let stmt = prepared_typed(conn, &self.text, &types).await?;
        conn.query(&stmt, &self.params()).await
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
    prepared_typed(conn, text, &[]).await
}

/// [`prepared`] with the parameters' types given (those left out are inferred).
async fn prepared_typed(
    conn: &deadpool_postgres::Client,
    text: &str,
    types: &[Type],
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if conn.statement_cache.size() >= MAX_PREPARED_PER_CONNECTION {
        conn.statement_cache.clear();
    }
    conn.prepare_typed_cached(text, types).await
}
