//! Recognition over `all-bodies.tsv`: message bodies without a syslog prefix from
//! grok-patterns, SEKOIA, patterndb, msimerson, logwatch, the Postfix source's
//! smtpd_check references and a journald record.

mod common;

use pftrack_parse::{Event, parse};

/// Required share of Postfix bodies that must not come out as `Unknown`. Lower than
/// for full lines, deliberately: of the ~50 unknown bodies, 27 are smtpd_check
/// test-harness diagnostics (`mapping DSN status …`, `ignoring DNS RR: …`) that a
/// running smtpd does not log, 6 are msimerson's vectors with the queue id removed on
/// purpose (Postfix never logs a delivery without one), and the rest are logwatch's
/// synthetic or pre-2.3 oddities (`TLS connection established to example.com:`
/// without brackets, `client=` without queue id, `NOQUEUE: fatal:`).
const MIN_RECOGNISED: f64 = 0.93;

/// The placeholder Postfix's smtpd_check test references print instead of a queue
/// id; replaced by a well-formed id so the rest of the line is exercised.
const REF_QID_PLACEHOLDER: &str = "<queue id>: ";

#[test]
fn all_bodies_recognised() {
    let Some(dir) = common::corpora() else { return };
    let data = std::fs::read(dir.join("all-bodies.tsv")).expect("read all-bodies.tsv");
    let mut total = 0u64;
    let mut unknown = Vec::new();
    for line in common::lines(&data) {
        let line = String::from_utf8_lossy(line);
        let mut cols = line.split('\t');
        let (Some(program), Some(body)) = (cols.next(), cols.next()) else {
            continue;
        };
        if !program.starts_with("postfix") {
            continue;
        }
        let body = match body.strip_prefix(REF_QID_PLACEHOLDER) {
            Some(rest) => format!("ABCDEF0123: {rest}"),
            None => body.to_string(),
        };
        total += 1;
        let daemon = pftrack_input::daemon_of(program);
        if let Event::Unknown { .. } = parse(daemon, &body) {
            unknown.push(format!("{program}\t{body}"));
        }
    }
    let rate = 1.0 - unknown.len() as f64 / total as f64;
    eprintln!(
        "{total} postfix bodies, {} unknown; recognised {rate:.4}",
        unknown.len()
    );
    for u in &unknown {
        eprintln!("UNKNOWN {u}");
    }
    assert!(
        rate >= MIN_RECOGNISED,
        "recognised {rate:.4} < {MIN_RECOGNISED}"
    );
}
