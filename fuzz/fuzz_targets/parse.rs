//! Fuzz `pftrack_parse::parse`: the first input byte picks a daemon name, the rest is
//! the message (decoded lossily, as the ingest path does). Besides "never panics",
//! it checks that `Unknown` keeps the whole message.
//!
//! Run with `cargo install cargo-fuzz` and a nightly toolchain, from `fuzz/`:
//! `cargo +nightly fuzz run parse -- -max_len=4096`. Seeding `corpus/parse/` with
//! real messages (a selector byte, then the body) reaches deeper much sooner; keep
//! such seeds out of the repository.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pftrack_parse::{Event, parse};

/// Daemon names that steer the dispatcher, and one it does not know.
const DAEMONS: [&str; 12] = [
    "smtpd", "smtp", "cleanup", "qmgr", "pickup", "bounce", "postsuper", "postscreen",
    "tlsproxy", "anvil", "scache", "custom",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let daemon = DAEMONS[usize::from(selector) % DAEMONS.len()];
    let message = String::from_utf8_lossy(rest);
    if let Event::Unknown { text } = parse(daemon, &message) {
        assert_eq!(text, &*message);
    }
});
