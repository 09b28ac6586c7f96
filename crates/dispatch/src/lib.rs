//! Dispatch: the event outbox delivered to the systems that must react.
//!
//! Events are written into `event_outbox` with the facts (crates/events, the store);
//! a trigger of migration V8 gives every new event one `event_delivery` row per
//! matching sink, in the same transaction, and sends a NOTIFY. This crate reads those
//! rows and delivers them:
//!
//! - **webhook**: HTTP POST of the JSON, signed the Standard Webhooks way
//!   (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//!   "id.timestamp.body">`), optionally several events per request;
//! - **exec**: a command with the JSON on stdin, killed when it outlives its timeout;
//! - **notify**: `NOTIFY channel, '{"id":…,"type":…}'`, a wake-up hint for consumers
//!   that read the outbox themselves.
//!
//! A [`Dispatcher`] claims due rows of each sink with `FOR UPDATE SKIP LOCKED`, moving
//! their next attempt past a lease, delivers outside any transaction, and records the
//! outcome ([`retry::RetryPolicy`]: backoff with jitter for `retry_for`, 410 disables
//! the sink, other 4xx fail at once). A dispatcher killed mid-delivery leaves its rows
//! to be claimed again when the lease ends: consumers see an event at least once,
//! always with the same id. Several dispatchers may share one database.
//!
//! It is **not** the outbox writer (it never decides which facts are events) and has
//! no business rules of its own; [`ops`] holds the operators' statements (show,
//! replay, retry) that `pftrack events` runs.

pub mod config;
mod dispatcher;
pub mod duration;
pub mod ops;
mod queue;
pub mod retry;
pub mod sign;
mod sinks;

pub use config::{DispatchConfig, DispatchSettings, Sink, SinkConfig, SinkKind, validate_sinks};
pub use dispatcher::{Dispatcher, OUTBOX_CHANNEL};
pub use sinks::send_test_event;

/// What went wrong in dispatch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// A sink's settings are invalid.
    #[error("events.sinks {sink}: {key}: {reason}")]
    Config {
        /// The sink (or `dispatch`).
        sink: String,
        /// The setting.
        key: String,
        /// Why.
        reason: String,
    },
    /// The database.
    #[error(transparent)]
    Store(#[from] pftrack_store::StoreError),
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the webhook client: {0}")]
    Client(String),
    /// An operator named something that does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl DispatchError {
    pub(crate) fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DispatchError {
        move |source| DispatchError::Query { what, source }
    }
}
