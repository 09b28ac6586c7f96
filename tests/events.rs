//! Events written with the facts, exactly once (issue 12): with `events.enabled`, a
//! load writes the events its facts select into `event_outbox`, in the same
//! transaction as the rows. Checked on `fixtures/attempts/`:
//!
//! - the expected events exist (types, recipients, reasons), and only they (a soft
//!   mailbox-full deferral and the deferrals before an expiry are not events);
//! - the same file again, one line per transaction into a fresh database, and the same
//!   lines as another input give exactly the same ids and payloads, never a second
//!   event for a fact;
//! - without `events.enabled` no events; with `since` after the facts none (nor by
//!   default: `since` defaults to when events were enabled, after these 2025 facts);
//! - `pftrack reclassify` adds none;
//! - `pftrack events list` shows them (`--type`, `--since`, `--json`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{TestDb, backfill, fixture, run_ok};

const FIXTURES: [&str; 3] = ["unknown_user", "mailbox_full", "deferred_then_expired"];

/// What each event says, in a stable order.
const EVENTS: &str = "SELECT type, payload->'data'->>'queue_id', \
    coalesce(payload->'data'->>'recipient', ''), coalesce(payload->'data'->>'reason', ''), \
    coalesce(payload->'data'->>'hard', ''), occurred_at = (payload->>'timestamp')::timestamptz, \
    id = payload->>'id' FROM event_outbox ORDER BY 1, 2, 3";

/// Every event exactly as stored.
const OUTBOX: &str = "SELECT id, type, occurred_at, payload::text FROM event_outbox ORDER BY id";

fn config(dir: &Path, events: &str) -> PathBuf {
    let path = dir.join("pftrack.yaml");
    std::fs::write(&path, format!("events:\n{events}")).unwrap();
    path
}

fn enabled(dir: &Path) -> PathBuf {
    config(dir, "  enabled: true\n  since: 2025-01-01T00:00:00Z\n")
}

/// All three fixtures into `db` with `extra` arguments.
fn load_all(db: &TestDb, extra: &[&str]) {
    for name in FIXTURES {
        backfill(db, &fixture(&format!("attempts/{name}.log")), extra);
    }
}

#[test]
fn facts_become_events_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = enabled(dir.path());
    let cfg = cfg.to_str().unwrap();
    let db = TestDb::new("events_once");
    load_all(&db, &["-c", cfg]);
    assert_eq!(
        db.query(EVENTS),
        "message.expired|5A1B2C3D4E||||t|t\n\
         recipient.failed|2B3C4D5E6F|erin@full.example.net|mailboxfull|true|t|t\n\
         recipient.failed|4E5F6A7B8C|ghost@remote.example.net|userunknown|true|t|t\n\
         recipient.failed|4E5F6A7B8C|nobody@mx1.example.com|userunknown|true|t|t\n"
    );
    let outbox = db.query(OUTBOX);
    let payload = db.query(
        "SELECT payload->'data'->>'dsn', payload->'data'->>'status', \
         payload->'data'->>'attempt_at', payload->'data'->>'relay' FROM event_outbox \
         WHERE payload->'data'->>'recipient' = 'erin@full.example.net'",
    );
    assert_eq!(
        payload,
        "5.2.2|bounced|2025-03-14T10:00:01.000000Z|mx.full.example.net[198.51.100.40]:25\n"
    );

    // The same files again: nothing new.
    load_all(&db, &["-c", cfg]);
    assert_eq!(db.query(OUTBOX), outbox, "a re-run changed the outbox");

    // One line per transaction into a fresh database: the same events.
    let split = TestDb::new("events_split");
    load_all(&split, &["-c", cfg, "--batch-lines", "1"]);
    assert_eq!(
        split.query("SELECT id, type, occurred_at, payload::text FROM event_outbox ORDER BY id"),
        outbox.clone(),
        "one line per transaction changed the events"
    );

    // The same lines through other inputs (copies behind another first line).
    let copies = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let lines = std::fs::read_to_string(fixture(&format!("attempts/{name}.log"))).unwrap();
        let copy = copies.path().join(format!("{name}-copy.log"));
        std::fs::write(
            &copy,
            format!("Mar  1 00:00:00 elsewhere kernel: another file\n{lines}"),
        )
        .unwrap();
        backfill(&db, &copy, &["-c", cfg]);
        backfill(&split, &copy, &["-c", cfg, "--batch-lines", "1"]);
    }
    assert_eq!(db.query(OUTBOX), outbox, "another input changed the outbox");
    assert_eq!(
        split.query(OUTBOX),
        outbox,
        "another input changed the outbox"
    );

    // A reclassification, even one that changes the reason of these failures, adds
    // (and removes) no event.
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: unknown-is-policy\n    reason: policyviolation\n    text: 'user unknown'\n",
    )
    .unwrap();
    run_ok(&[
        "reclassify",
        "--database-url",
        &db.url,
        "--rules",
        rules.to_str().unwrap(),
    ]);
    run_ok(&["reclassify", "--database-url", &db.url]);
    assert_eq!(db.query(OUTBOX), outbox, "reclassify changed the outbox");

    // `pftrack events list`: the payloads as stored, by type and time.
    let list = |args: &[&str]| {
        let base = ["events", "list", "--database-url", &db.url];
        String::from_utf8(run_ok(&[&base[..], args].concat()).stdout).unwrap()
    };
    let failed = list(&["--json", "--type", "recipient.failed"]);
    let payloads: Vec<serde_json::Value> = failed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(payloads.len(), 3, "{failed}");
    assert!(payloads.iter().all(|p| p["type"] == "recipient.failed"));
    assert!(
        payloads
            .windows(2)
            .all(|w| w[0]["timestamp"].as_str() <= w[1]["timestamp"].as_str())
    );
    let recent = list(&["--since", "2025-03-15T00:00:00Z"]);
    assert_eq!(recent.lines().count(), 1, "{recent}");
    assert!(
        recent.contains("message.expired") && recent.contains("5A1B2C3D4E"),
        "{recent}"
    );
    let bad = common::pftrack()
        .args([
            "events",
            "list",
            "--database-url",
            &db.url,
            "--type",
            "nope",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown event type"));
}

#[test]
fn without_events_enabled_none() {
    let db = TestDb::new("events_off");
    load_all(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "  enabled: false\n  since: 2025-01-01T00:00:00Z\n",
    );
    load_all(&db, &["-c", cfg.to_str().unwrap()]);
    assert_eq!(db.query("SELECT count(*) FROM event_outbox"), "0\n");
    assert_eq!(db.query("SELECT count(*) FROM event_state"), "0\n");
}

#[test]
fn facts_before_since_are_not_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new("events_since");
    let later = config(
        dir.path(),
        "  enabled: true\n  since: 2025-03-15T00:00:00Z\n",
    );
    load_all(&db, &["-c", later.to_str().unwrap()]);
    // Only the expiry of 15 March is recent enough.
    assert_eq!(
        db.query("SELECT type, payload->'data'->>'queue_id' FROM event_outbox"),
        "message.expired|5A1B2C3D4E\n"
    );

    // By default, events start when they were first enabled: after these facts.
    let db = TestDb::new("events_default_since");
    let default = config(dir.path(), "  enabled: true\n");
    load_all(&db, &["-c", default.to_str().unwrap()]);
    assert_eq!(db.query("SELECT count(*) FROM event_outbox"), "0\n");
    let enabled_at = db.query("SELECT value FROM event_state WHERE key = 'enabled_at'");
    assert!(!enabled_at.trim().is_empty());
    // Recorded once: a later start keeps the first time.
    load_all(&db, &["-c", default.to_str().unwrap()]);
    assert_eq!(
        db.query("SELECT value FROM event_state WHERE key = 'enabled_at'"),
        enabled_at
    );
}
