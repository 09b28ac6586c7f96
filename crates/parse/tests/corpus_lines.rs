//! Recognition rate over every Postfix record of `all-lines.log`.

mod common;

use std::collections::HashMap;

use pftrack_parse::{Event, parse};

/// Required share of Postfix records that must not come out as `Unknown`.
const MIN_RECOGNISED: f64 = 0.995;

#[test]
fn all_lines_recognised() {
    let Some(dir) = common::corpora() else { return };
    let data = std::fs::read(dir.join("all-lines.log")).expect("read all-lines.log");
    let mut total = 0u64;
    let mut unknown: Vec<(String, String)> = Vec::new();
    let mut kinds: HashMap<&'static str, u64> = HashMap::new();
    let mut unsplit = 0u64;
    // Debugging aid: PFTRACK_DUMP_KIND=queue_other prints every line of that kind.
    let dump_kind = std::env::var("PFTRACK_DUMP_KIND").ok();
    for line in common::lines(&data) {
        let Ok(split) = common::split(line) else {
            unsplit += 1;
            continue;
        };
        if !split.ident.starts_with(b"postfix") {
            continue;
        }
        total += 1;
        let daemon = common::daemon(split.ident);
        let message = String::from_utf8_lossy(split.message);
        let event = parse(&daemon, &message);
        *kinds.entry(event.kind()).or_default() += 1;
        if dump_kind.as_deref() == Some(event.kind()) {
            println!("{daemon}\t{message}");
        }
        if let Event::Unknown { text } = event {
            unknown.push((daemon, text.to_string()));
        }
    }
    let rate = 1.0 - unknown.len() as f64 / total as f64;
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    eprintln!(
        "{total} postfix records, {} unknown, {unsplit} lines not split; recognised {:.4}",
        unknown.len(),
        rate
    );
    eprintln!("kinds: {kinds:?}");
    if std::env::var_os("PFTRACK_DUMP_UNKNOWN").is_some() {
        for (d, t) in &unknown {
            println!("{d}\t{t}");
        }
    }
    if rate < MIN_RECOGNISED {
        for (d, t) in unknown.iter().take(60) {
            eprintln!("UNKNOWN {d}: {t}");
        }
    }
    assert!(
        rate >= MIN_RECOGNISED,
        "recognised {rate:.4} < {MIN_RECOGNISED}"
    );
}
