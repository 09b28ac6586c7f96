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
        "message.bounced_back|2B3C4D5E6F||||t|t\n\
         message.bounced_back|4E5F6A7B8C||||t|t\n\
         message.bounced_back|5A1B2C3D4E||||t|t\n\
         message.expired|5A1B2C3D4E||||t|t\n\
         recipient.failed|2B3C4D5E6F|erin@full.example.net|mailboxfull|true|t|t\n\
         recipient.failed|4E5F6A7B8C|ghost@remote.example.net|userunknown|true|t|t\n\
         recipient.failed|4E5F6A7B8C|nobody@mx1.example.com|userunknown|true|t|t\n"
    );
    // The bounce that went back: the original message, its sender and Message-ID
    // (joined from the from= and message-id= lines), the notification.
    assert_eq!(
        db.query(
            "SELECT payload->'data'->>'sender', payload->'data'->>'message_id', \
             payload->'data'->>'ndr_queue_id' FROM event_outbox \
             WHERE type = 'message.bounced_back' AND payload->'data'->>'queue_id' = '4E5F6A7B8C'"
        ),
        "alice@example.org|nobody-1@example.org|5F6A7B8C9D\n"
    );
    // Every event naming a stored message carries its sender.
    assert_eq!(
        db.query("SELECT count(*) FROM event_outbox WHERE payload->'data' ? 'sender'"),
        "7\n"
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
    assert_eq!(recent.lines().count(), 2, "{recent}");
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
    // Only the expiry of 15 March (and its bounce) is recent enough.
    assert_eq!(
        db.query("SELECT type, payload->'data'->>'queue_id' FROM event_outbox ORDER BY 1"),
        "message.bounced_back|5A1B2C3D4E\nmessage.expired|5A1B2C3D4E\n"
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

/// A log of one message arrived `ago_secs` before now (RFC 3339 stamps, so that no
/// year is inferred): two recipients deferred (one mailbox full), the mailbox-full one
/// deferred again an hour ago; still queued.
fn lasting_log(dir: &Path, ago_secs: i64) -> PathBuf {
    let now = chrono::Utc::now();
    let at = |secs_before: i64| {
        (now - chrono::TimeDelta::seconds(secs_before))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (t0, t1, t2) = (at(ago_secs), at(ago_secs - 1), at(3600));
    let full = "host mx.full.example.net[198.51.100.40] said: 452 4.2.2 <erin@full.example.net>: \
                Mailbox full: user is over quota (in reply to RCPT TO command)";
    let text = format!(
        "{t0} mx1 postfix/smtpd[2201]: 7C8D9E0F1A: client=mail.example.org[192.0.2.10]\n\
         {t0} mx1 postfix/cleanup[2202]: 7C8D9E0F1A: message-id=<held-1@example.org>\n\
         {t0} mx1 postfix/qmgr[900]: 7C8D9E0F1A: from=<alice@example.org>, size=5000, nrcpt=2 (queue active)\n\
         {t1} mx1 postfix/smtp[2203]: 7C8D9E0F1A: to=<erin@full.example.net>, relay=mx.full.example.net[198.51.100.40]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.2.2, status=deferred ({full})\n\
         {t1} mx1 postfix/smtp[2204]: 7C8D9E0F1A: to=<slow@later.example.net>, relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to mx.later.example.net[198.51.100.60]:25: Connection timed out)\n\
         {t2} mx1 postfix/smtp[2205]: 7C8D9E0F1A: to=<erin@full.example.net>, relay=mx.full.example.net[198.51.100.40]:25, delay=200000, delays=0/0/0.5/0.5, dsn=4.2.2, status=deferred ({full})\n"
    );
    let path = dir.join("lasting.log");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn lasting_deferrals_are_swept_once() {
    let dir = tempfile::tempdir().unwrap();
    // Three days ago: deferred for more than a day, mailbox full for more than two.
    let log = lasting_log(dir.path(), 3 * 86_400);
    let cfg = config(
        dir.path(),
        "  enabled: true\n  since: 2020-01-01T00:00:00Z\n  deferred_long:\n    after: 1d\n  \
         recipient_failed:\n    mailboxfull_held: 2d\n",
    );
    let cfg = cfg.to_str().unwrap();
    let db = TestDb::new("events_sweep");
    let year = chrono::Utc::now().format("%Y").to_string();
    let load = || {
        run_ok(&[
            "backfill",
            "--database-url",
            &db.url,
            "--year",
            &year,
            "--timezone",
            "UTC",
            "-c",
            cfg,
            log.to_str().unwrap(),
        ])
    };
    load();
    // Nothing in the log itself is an event (soft failures only).
    assert_eq!(db.query("SELECT count(*) FROM event_outbox"), "0\n");
    let sweep = || {
        String::from_utf8(run_ok(&["events", "sweep", "-c", cfg, "--database-url", &db.url]).stdout)
            .unwrap()
    };
    assert_eq!(sweep(), "3 event(s) recorded\n");
    assert_eq!(
        db.query(
            "SELECT type, payload->'data'->>'recipient', payload->'data'->>'reason', \
             payload->'data'->>'hard', payload->'data'->>'attempts', payload->'data'->>'sender' \
             FROM event_outbox ORDER BY 1, 2"
        ),
        "recipient.deferred_long|erin@full.example.net|mailboxfull|false|2|alice@example.org\n\
         recipient.deferred_long|slow@later.example.net|unreachable|false|1|alice@example.org\n\
         recipient.failed|erin@full.example.net|mailboxfull|false|2|alice@example.org\n"
            // The reason of a timed-out connection, as the classifier names it.
            .replace(
                "unreachable",
                db.query(
                    "SELECT failure_reason FROM delivery_to \
                     WHERE recipient = 'slow@later.example.net'"
                )
                .trim()
            )
    );
    // The time of each: when the age was reached.
    assert_eq!(
        db.query(
            "SELECT round(extract(epoch FROM occurred_at - (payload->'data'->>'arrived_at')::timestamptz)) \
             FROM event_outbox ORDER BY type, payload->'data'->>'recipient'"
        ),
        "86400\n86400\n172801\n"
    );
    let outbox = db.query(OUTBOX);
    // Sweeping again, loading again: the same facts, no new event.
    assert_eq!(sweep(), "0 event(s) recorded\n");
    load();
    assert_eq!(sweep(), "0 event(s) recorded\n");
    assert_eq!(db.query(OUTBOX), outbox);

    // Off: nothing.
    let off = config(
        dir.path(),
        "  enabled: true\n  since: 2020-01-01T00:00:00Z\n  deferred_long:\n    after: off\n  \
         recipient_failed:\n    mailboxfull_held: off\n",
    );
    let db2 = TestDb::new("events_sweep_off");
    run_ok(&[
        "backfill",
        "--database-url",
        &db2.url,
        "--year",
        &year,
        "--timezone",
        "UTC",
        "-c",
        off.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    let out = run_ok(&[
        "events",
        "sweep",
        "-c",
        off.to_str().unwrap(),
        "--database-url",
        &db2.url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 event(s) recorded\n"
    );
}

#[test]
fn retention_purges_events_no_sink_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = enabled(dir.path());
    let db = TestDb::new("events_purge");
    load_all(&db, &["-c", cfg.to_str().unwrap()]);
    // As if recorded when they happened (in 2025), and one sink still waiting for one.
    db.query(
        "UPDATE event_outbox SET recorded_at = occurred_at; \
         INSERT INTO event_sink (name, kind, target) VALUES ('web', 'webhook', 'http://x/'); \
         INSERT INTO event_delivery (event_id, sink, state) \
         SELECT id, 'web', CASE WHEN type = 'message.expired' THEN 'pending' ELSE 'delivered' END \
         FROM event_outbox",
    );
    let out = run_ok(&[
        "purge",
        "--older-than",
        "30d",
        "--json",
        "--database-url",
        &db.url,
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 6, "{report}");
    assert_eq!(
        db.query("SELECT type FROM event_outbox"),
        "message.expired\n",
        "the event a sink waits for stays"
    );
    assert_eq!(
        db.query("SELECT count(*), min(state) FROM event_delivery"),
        "1|pending\n"
    );
}
