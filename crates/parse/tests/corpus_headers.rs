//! Header-check INFO/WARN lines of the real corpus (`all-lines.log`): every
//! `cleanup[…]: QID: info: header client-id: VALUE from …` line of the
//! postfix-deliverability-analytics logs yields the header name and value that
//! pftrack stores as a message tag.

mod common;

use std::collections::BTreeMap;

use pftrack_parse::{Event, parse};

/// `info: header client-id:` lines in `all-lines.log` (all from the
/// postfix-deliverability-analytics corpus; `grep -c` counts the same).
const CLIENT_ID_LINES: u64 = 8_997;

#[test]
fn client_id_headers() {
    let Some(dir) = common::corpora() else { return };
    let data = std::fs::read(dir.join("all-lines.log")).expect("read all-lines.log");
    let mut raw = 0u64;
    let mut values: BTreeMap<String, u64> = BTreeMap::new();
    for line in common::lines(&data) {
        let Ok(split) = common::split(line) else {
            continue;
        };
        if !split.ident.starts_with(b"postfix") {
            continue;
        }
        let message = String::from_utf8_lossy(split.message);
        let is_client_id = message.contains(": info: header client-id: ");
        raw += u64::from(is_client_id);
        let event = parse(&common::daemon(split.ident), &message);
        let Event::ContentCheck(c) = &event else {
            assert!(!is_client_id, "not a content check: {message}");
            continue;
        };
        if let Some((name, value)) = c.header()
            && name.eq_ignore_ascii_case("client-id")
        {
            assert!(is_client_id, "{message}");
            assert_eq!(c.action_word, "info");
            *values.entry(value.to_owned()).or_default() += 1;
        }
    }
    eprintln!("client-id values: {values:?}");
    assert_eq!(raw, CLIENT_ID_LINES);
    assert_eq!(values.values().sum::<u64>(), CLIENT_ID_LINES);
    assert!(
        values
            .keys()
            .all(|v| v.ends_with("client-id") || v == "test-mail-module")
    );
    assert_eq!(values.get("first-client-id"), Some(&8_853));
}
