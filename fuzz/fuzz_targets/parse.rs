//! Fuzz `pftrack_parse::parse`: the first input byte picks a daemon name, the rest is
//! the message (decoded lossily, as the ingest path does). Besides "never panics",
//! it checks that `Unknown` keeps the whole message.

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
