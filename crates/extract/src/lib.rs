//! Delivery extraction for pftrack: a deterministic state machine that turns parsed
//! Postfix events, in log order, into delivery facts — per message (`delivery_from`),
//! per recipient (`delivery_to`), per NOQUEUE decision (`noqueue`) and per SASL
//! authentication failure (`auth_failure`, with brute-force alarms; see [`auth`]).
//!
//! This crate is **not** a parser (see `pftrack-parse`) and does no I/O: it has no
//! database, no clock and no async runtime. [`Extractor`] decides which life of a
//! (reused) queue id a line belongs to and emits [`Fact`]s; [`Batch`] merges the facts
//! of consecutive lines per row, with merges that match the store's SQL upserts so any
//! batching gives the same database.
//!
//! ```
//! use std::sync::Arc;
//! use pftrack_extract::{Batch, Extractor};
//!
//! let mut extractor = Extractor::new();
//! let mut batch = Batch::new();
//! let host: Arc<str> = Arc::from("mx1");
//! let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
//! let msg = "3F1A2B4C5D: removed";
//! let event = pftrack_parse::parse("qmgr", msg);
//! extractor.process(&host, at, "qmgr", &event, &mut |f| batch.add(f));
//! assert_eq!(batch.messages.len(), 1);
//! ```

pub mod auth;
mod batch;
mod fact;
mod machine;

pub use auth::{AuthFailure, BruteforceAlarm, BruteforceRule};
pub use batch::{Batch, MessageRow, RecipientKey, RecipientRow, same_event};
pub use fact::{
    Fact, LinkKind, MessageKey, MessageUpdate, Noqueue, Origin, ParentLink, RecipientEvent,
    RecipientStatus,
};
pub use machine::{
    CLOSED_GRACE, ExtractStats, Extractor, FUTURE_TOLERANCE, MAX_MESSAGE_IDLE,
    MAX_NOQUEUE_OCCURRENCES, MAX_OPEN_MESSAGES, NOQUEUE_OCCURRENCE_WINDOW, PrimeEntry,
};
