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
