//! `pftrack purge`: on a populated database, old rows go, recent and in-flight rows
//! (and the families of in-flight messages) stay, the counts are right; `retention:`
//! from the configuration works; and a backfill running at the same time is never
//! blocked for longer than one batch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TestDb, pftrack, run_ok};
use pftrack_loggen::{GenConfig, StampFormat, generate};
use serde_json::Value;

/// Rows relative to now(): what must go and what must stay.
///
/// | set | messages | recipients | arrived | state | fate |
/// |---|---|---|---|---|---|
/// | A | 1200 | 2 each | 100-199 days ago | removed | deleted |
/// | B | 10 | 1 | 100 days ago | never removed, idle 100 days | deleted (not in flight) |
/// | G | 5 | 1 | 120 days ago | rejected | deleted |
/// | C | 5 | 1 | 100 days ago | held, seen yesterday | kept: in flight |
/// | D | 1 | 1 | 99 days ago | removed, notification about C1 | kept: parent in flight |
/// | E | 1+1 | 1 | 100 days ago | removed parent, re-injected child still queued | kept: child in flight / in flight |
/// | F | 300 | 1 | 10 days ago | removed | kept: recent |
///
/// NOQUEUE: 500 rows 100-199 days old (deleted), 50 rows 5 days old (kept).
///
/// The rows are written by hand, so their monthly partitions (migration V14) are
/// created first, as the loader does. Months wholly past the limit go whole (counted
/// in `partitions_dropped`, not in `messages`): the assertions are on what remains.
const POPULATE: &str = "
SELECT pftrack_time_partitions(ARRAY(SELECT now() - i * interval '1 day'
                                     FROM generate_series(0, 200) i));
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, removed_at)
SELECT 'mx1', 'A' || lpad(i::text, 9, '0'), now() - (100 + i % 100) * interval '1 day',
       now() - (100 + i % 100) * interval '1 day' + interval '1 minute', 'a@example.org',
       now() - (100 + i % 100) * interval '1 day' + interval '1 minute'
FROM generate_series(1, 1200) i;
INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, status, status_at, attempts)
SELECT host, queue_id, arrived_at, 'r' || j || '@example.net', 'sent', last_seen_at, 1
FROM delivery_from, generate_series(1, 2) j WHERE queue_id LIKE 'A%';

INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender)
SELECT 'mx1', 'B' || lpad(i::text, 9, '0'), now() - interval '100 days',
       now() - interval '100 days', 'b@example.org'
FROM generate_series(1, 10) i;
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, rejected_at)
SELECT 'mx1', 'G' || lpad(i::text, 9, '0'), now() - interval '120 days',
       now() - interval '120 days', 'g@example.org', now() - interval '120 days'
FROM generate_series(1, 5) i;
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, held_at)
SELECT 'mx1', 'C' || lpad(i::text, 9, '0'), now() - interval '100 days',
       now() - interval '1 day', 'c@example.org', now() - interval '100 days'
FROM generate_series(1, 5) i;
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, removed_at,
                           parent_queue_id, parent_arrived_at, parent_kind)
SELECT 'mx1', 'D000000001', now() - interval '99 days', now() - interval '99 days', '',
       now() - interval '99 days', queue_id, arrived_at, 'delay'
FROM delivery_from WHERE queue_id = 'C000000001';
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, removed_at)
VALUES ('mx1', 'E000000001', now() - interval '100 days', now() - interval '100 days',
        'e@example.org', now() - interval '100 days');
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender,
                           parent_queue_id, parent_arrived_at, parent_kind)
SELECT 'mx1', 'E000000002', arrived_at + interval '1 second', now() - interval '2 days',
       'e@example.org', queue_id, arrived_at, 'reinjection'
FROM delivery_from WHERE queue_id = 'E000000001';
INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, removed_at)
SELECT 'mx1', 'F' || lpad(i::text, 9, '0'), now() - interval '10 days',
       now() - interval '10 days', 'f@example.org', now() - interval '10 days'
FROM generate_series(1, 300) i;
INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, status, status_at, attempts)
SELECT host, queue_id, arrived_at, 'x@example.com',
       CASE WHEN queue_id LIKE 'G%' THEN 'rejected' WHEN queue_id LIKE 'C%' THEN 'deferred'
            ELSE 'sent' END,
       last_seen_at, 1
FROM delivery_from WHERE queue_id NOT LIKE 'A%';

INSERT INTO noqueue (host, logged_at, fingerprint, daemon, action, stage, reason)
SELECT 'mx1', now() - (100 + i % 100) * interval '1 day', i, 'smtpd', 'reject', 'RCPT',
       'Relay access denied'
FROM generate_series(1, 500) i;
INSERT INTO noqueue (host, logged_at, fingerprint, daemon, action, stage, reason)
SELECT 'mx1', now() - interval '5 days', i, 'smtpd', 'reject', 'RCPT', 'Relay access denied'
FROM generate_series(1, 50) i;

INSERT INTO auth_failure (host, logged_at, fingerprint, occurrence, service, client_name,
    client_addr, reverse_dns, sasl_method, reason, aborted)
SELECT 'mx1', now() - (100 + i % 100) * interval '1 day', i, 1, 'postfix/smtpd', 'unknown',
       '192.0.2.1', false, 'LOGIN', 'authentication failure', false
FROM generate_series(1, 400) i;
INSERT INTO auth_failure (host, logged_at, fingerprint, occurrence, service, client_name,
    client_addr, reverse_dns, sasl_method, reason, aborted)
SELECT 'mx1', now() - interval '5 days', i, 1, 'postfix/smtpd', 'unknown', '192.0.2.1',
       false, 'LOGIN', 'authentication failure', false
FROM generate_series(1, 40) i;
";

fn purge_json(db: &TestDb, extra: &[&str]) -> Value {
    let out = run_ok(&[&["purge", "--database-url", &db.url, "--json"], extra].concat());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).trim().parse().unwrap()
}

#[test]
fn old_rows_go_recent_and_in_flight_stay() {
    let db = TestDb::new("purge_counts");
    run_ok(&["migrate", "--database-url", &db.url]);
    db.query(POPULATE);
    // message_status agrees on what is in flight: C1-C5 and E2.
    assert_eq!(
        db.query(
            "SELECT string_agg(queue_id, ',' ORDER BY queue_id) FROM message_status WHERE in_flight"
        ),
        "C000000001,C000000002,C000000003,C000000004,C000000005,E000000002\n"
    );

    // Small batches: many transactions.
    let r = purge_json(&db, &["--older-than", "90d", "--batch", "100"]);
    // The months 100-199 days ago hold 1215 old messages: those of months wholly past
    // the limit and without anything in flight went with their partitions, the others
    // one by one.
    assert!(r["messages"].as_u64().unwrap() <= 1200 + 10 + 5, "{r}");
    assert!(r["partitions_dropped"].as_u64().unwrap() >= 3 + 2, "{r}");
    assert_eq!(r["kept_in_flight"], 5 + 1 + 2, "{r}");

    assert_eq!(
        db.query(
            "SELECT string_agg(queue_id, ',' ORDER BY queue_id) FROM delivery_from \
             WHERE arrived_at < now() - interval '90 days'"
        ),
        "C000000001,C000000002,C000000003,C000000004,C000000005,D000000001,E000000001,E000000002\n"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM delivery_from"), 8 + 300);
    assert_eq!(count(&db, "SELECT count(*) FROM delivery_to"), 8 + 300);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM delivery_to t WHERE NOT EXISTS (SELECT 1 FROM delivery_from f \
             WHERE (f.host, f.queue_id, f.arrived_at) = (t.host, t.queue_id, t.arrived_at))"
        ),
        0,
        "recipient rows without their message"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM noqueue"), 50);
    assert_eq!(count(&db, "SELECT count(*) FROM auth_failure"), 40);

    // Nothing more to do the second time.
    let r = purge_json(&db, &["--older-than", "90d"]);
    assert_eq!(
        (
            &r["messages"],
            &r["recipients"],
            &r["noqueue"],
            &r["kept_in_flight"]
        ),
        (
            &Value::from(0),
            &Value::from(0),
            &Value::from(0),
            &Value::from(8)
        )
    );

    // Once the held messages are gone from the queue, they and their family go too
    // (one by one, or with their month).
    db.query("UPDATE delivery_from SET removed_at = now() - interval '95 days' WHERE queue_id LIKE 'C%' OR queue_id = 'E000000002'");
    let r = purge_json(&db, &["--older-than", "90d"]);
    assert_eq!(r["kept_in_flight"], 0, "{r}");
    assert_eq!(count(&db, "SELECT count(*) FROM delivery_from"), 300);
}

#[test]
fn retention_from_the_configuration_and_its_floor() {
    let db = TestDb::new("purge_config");
    run_ok(&["migrate", "--database-url", &db.url]);
    db.query(POPULATE);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(&config, "retention: 30d\n").unwrap();
    let out = run_ok(&[
        "--config",
        config.to_str().unwrap(),
        "purge",
        "--database-url",
        &db.url,
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    // Rows of months wholly older than 30 days, apart from the one holding a message
    // in flight, went with their partitions; the rest one by one.
    assert!(report.contains(" NOQUEUE rows older than 30d"), "{report}");
    assert!(report.contains("monthly partition(s) whole"), "{report}");
    // Too short a limit, or none at all, is an error and deletes nothing. (A
    // configuration without retention: the default file of this machine may have one.)
    let bare = dir.path().join("bare.yaml");
    std::fs::write(&bare, "log_level: warn\n").unwrap();
    for args in [vec!["--older-than", "1h"], vec![]] {
        let out = pftrack()
            .args(["--config", bare.to_str().unwrap()])
            .args(["purge", "--database-url", &db.url])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM delivery_from"), 308);
}

/// A row-lock wait longer than this fails the backfill's statement (and so the
/// backfill): far above one purge batch, far below a purge done in one transaction.
const LOCK_TIMEOUT_MS: u64 = 1000;
/// Messages per purge transaction in the concurrency test.
const CONCURRENT_BATCH: &str = "500";

fn generated_log(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("mail.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let config = GenConfig {
        seed: 11,
        lines: 40_000,
        format: StampFormat::Classic,
        // Long before the retention limit: every message of the log is purgeable.
        start: chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap(),
        hosts: vec!["mx1".into(), "mx2".into()],
        messages_per_second: 20.0,
        ..GenConfig::default()
    };
    generate(&config, &mut file).unwrap();
    file.flush().unwrap();
    path
}

#[test]
fn a_concurrent_backfill_is_not_blocked_for_more_than_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();
    let db = TestDb::new("purge_concurrent");
    let backfill = |url: &str| -> Command {
        let mut c = pftrack();
        c.args([
            "backfill",
            "--database-url",
            url,
            "--year",
            "2024",
            "--timezone",
            "UTC",
            "--batch-lines",
            "300",
            log,
        ]);
        c
    };
    // The log's rows, plus 120 000 more old messages at the same times, so that the
    // purge works through the rows the backfill writes, and for a while: done in one
    // transaction, it would hold its locks for over two seconds here and fail the
    // backfill (checked by hand with --batch 1000000).
    assert!(backfill(&db.url).status().unwrap().success());
    db.query(
        "INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, removed_at)
         SELECT 'mx3', 'Q' || lpad(i::text, 9, '0'),
                timestamptz '2024-03-01' + i * interval '15 milliseconds',
                timestamptz '2024-03-01' + i * interval '15 milliseconds',
                'bulk@example.org', timestamptz '2024-03-01' + i * interval '15 milliseconds'
         FROM generate_series(1, 120000) i;
         INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, status, status_at)
         SELECT host, queue_id, arrived_at, 'r' || j || '@example.net', 'sent', arrived_at
         FROM delivery_from, generate_series(1, 2) j WHERE host = 'mx3';
         -- A message of that month still in flight: the month is not dropped whole
         -- (migration V14), so the purge deletes its rows one batch at a time, which
         -- is what this test is about.
         INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender)
         VALUES ('mx3', 'HELD00001', '2024-03-15', now(), 'held@example.org');
         ANALYZE",
    );
    let old_rows = count(
        &db,
        "SELECT (SELECT count(*) FROM delivery_from) + (SELECT count(*) FROM delivery_to)",
    );
    // Read the log again from its start: the backfill re-writes exactly the rows the
    // purge is deleting.
    db.query("DELETE FROM input_position");

    // Watch the backfill's commits: its stored line number moves with each one.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let url = db.url.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen: Vec<(Instant, i64)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let out = Command::new("psql")
                    .arg(&url)
                    .args([
                        "-X",
                        "-At",
                        "-c",
                        "SELECT coalesce(max(line), 0) FROM input_position",
                    ])
                    .output()
                    .unwrap();
                if let Ok(line) = String::from_utf8_lossy(&out.stdout).trim().parse::<i64>()
                    && seen.last().is_none_or(|&(_, l)| l != line)
                {
                    seen.push((Instant::now(), line));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        })
    };

    let started = Instant::now();
    let purge = pftrack()
        .args([
            "purge",
            "--database-url",
            &db.url,
            "--older-than",
            "90d",
            "--batch",
            CONCURRENT_BATCH,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url_with_timeout = format!("{} options='-c lock_timeout={LOCK_TIMEOUT_MS}'", db.url);
    let backfill_out = backfill(&url_with_timeout).output().unwrap();
    let backfill_done = started.elapsed();
    let purge_out = purge.wait_with_output().unwrap();
    let purge_done = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let commits = watcher.join().unwrap();

    assert!(
        purge_out.status.success(),
        "purge failed: {}",
        String::from_utf8_lossy(&purge_out.stderr)
    );
    assert!(
        backfill_out.status.success(),
        "the backfill waited on a lock for over {LOCK_TIMEOUT_MS} ms (or failed): {}",
        String::from_utf8_lossy(&backfill_out.stderr)
    );
    let report: Value = serde_json::from_slice(&purge_out.stdout).unwrap();
    let deleted = report["messages"].as_i64().unwrap() + report["recipients"].as_i64().unwrap();
    let batches = report["batches"].as_u64().unwrap();
    // The purge had real work while the backfill ran: most of the old rows, in many
    // transactions, for longer than a single transaction could hold a lock unnoticed.
    assert!(deleted * 2 > old_rows, "deleted {deleted} of {old_rows}");
    assert!(batches >= 20, "{report}");
    // Commits of the backfill kept coming while the purge ran.
    let overlap_end = started + purge_done.min(backfill_done);
    let during: Vec<&(Instant, i64)> = commits.iter().filter(|(t, _)| *t <= overlap_end).collect();
    let max_gap = during
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    eprintln!(
        "purge: {deleted} rows in {batches} batches, {:.1} s; backfill {:.1} s; \
         {} backfill commits seen during the purge, longest pause {:?}",
        purge_done.as_secs_f64(),
        backfill_done.as_secs_f64(),
        during.len(),
        max_gap
    );
    assert!(
        purge_done.as_millis() > u128::from(LOCK_TIMEOUT_MS) * 2,
        "the purge ended too soon to show anything: {purge_done:?}"
    );
    assert!(
        during.len() >= 5,
        "{} commits during the purge",
        during.len()
    );
}
