//! Zero-copy parser from one Postfix log message to a typed [`Event`].
//!
//! Input is the daemon name (the last component of the syslog identifier, e.g. `smtpd`)
//! and the message text; output is an [`Event`] whose strings borrow from the message.
//! Unrecognised messages become [`Event::Unknown`], so [`parse`] never fails and never
//! panics.
//!
//! This crate is **not** a syslog splitter (see `pftrack-input`), does no I/O, reads no
//! clock and keeps no state: correlating events into messages is `pftrack-extract`'s job.

mod event;

pub use event::*;

/// Parse one Postfix message logged by `daemon` into an [`Event`].
///
/// Callers with raw bytes use `String::from_utf8_lossy`, which borrows when the bytes
/// are valid UTF-8.
pub fn parse<'a>(daemon: &str, message: &'a str) -> Event<'a> {
    let _ = daemon;
    Event::Unknown { text: message }
}
