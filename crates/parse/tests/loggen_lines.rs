//! Every line `pftrack-loggen` writes parses to a known event: the generator and the
//! parser agree on the formats (and the extractor's end-to-end tests rely on it).

use std::collections::BTreeMap;

use pftrack_parse::{Event, parse};

/// Lines generated for the check; enough for every outcome the generator produces.
const LINES: u64 = 50_000;

#[test]
fn generated_lines_are_all_recognised() {
    let config = pftrack_loggen::GenConfig {
        lines: LINES,
        ..Default::default()
    };
    let mut log = Vec::new();
    pftrack_loggen::generate(&config, &mut log).expect("generate");
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut bad = Vec::new();
    for line in log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let h = pftrack_input::syslog::split(line).expect("generated line splits");
        let ident = String::from_utf8_lossy(h.ident);
        let message = std::str::from_utf8(h.message).expect("generated lines are UTF-8");
        let event = parse(pftrack_input::daemon_of(&ident), message);
        *kinds.entry(event.kind()).or_default() += 1;
        if matches!(event, Event::Unknown { .. } | Event::QueueOther { .. }) {
            bad.push(format!("{ident}: {message}"));
        }
    }
    eprintln!("kinds: {kinds:?}");
    for b in bad.iter().take(30) {
        eprintln!("NOT RECOGNISED {b}");
    }
    assert!(
        bad.is_empty(),
        "{} generated lines not recognised",
        bad.len()
    );
}
