//! Nothing lost, nothing twice: a backfill killed with SIGKILL at random moments and
//! then re-run leaves exactly the database of one uninterrupted run; re-running a
//! finished backfill changes nothing; a rotated, partly gzipped set of the same lines
//! gives the same rows as the single file. A bulk load (indexes built at the end) gives
//! the same rows as maintaining them, and one that dies leaves its indexes to the next
//! start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{ALL_ROWS, TestDb, pftrack, run_ok};

/// Lines in the generated log: enough for dozens of transactions at the batch size
/// below, small enough for a debug build.
const LINES: u64 = 60_000;
/// Small batches make many commits, so kills land between and inside transactions.
const BATCH_LINES: &str = "500";
/// Kills per run of the test.
const KILLS: usize = 6;

fn generated_log(dir: &Path) -> PathBuf {
    common::generated_log(dir, 7, LINES)
}

fn backfill_args<'a>(db: &'a TestDb, path: &'a str) -> Vec<&'a str> {
    vec![
        "backfill",
        "--database-url",
        &db.url,
        "--year",
        "2025",
        "--timezone",
        "UTC",
        "--batch-lines",
        BATCH_LINES,
        path,
    ]
}

/// Definitions of the delivery tables' indexes.
const INDEXES: &str = "SELECT indexdef FROM pg_indexes \
    WHERE tablename IN ('delivery_from', 'delivery_to', 'noqueue') ORDER BY indexname";

/// Positions without their wall-clock update time.
const POSITIONS: &str =
    "SELECT source, byte_offset, line, complete FROM input_position ORDER BY source";

#[test]
fn kill_9_at_random_moments_then_rerun_equals_one_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();

    let clean = TestDb::new("crash_clean");
    let started = Instant::now();
    run_ok(&backfill_args(&clean, log));
    let clean_run = started.elapsed();
    let expected = clean.query(ALL_ROWS);
    assert!(
        expected.lines().count() > 10_000,
        "the log should produce many rows"
    );

    // Re-running the finished backfill changes nothing.
    run_ok(&backfill_args(&clean, log));
    assert_eq!(
        expected,
        clean.query(ALL_ROWS),
        "a re-run changed the database"
    );

    let crashed = TestDb::new("crash_killed");
    // Deterministic "random" kill moments spread over the clean run's duration.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for _ in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let fraction = (seed % 1000) as f64 / 1000.0;
        let delay = clean_run.mul_f64(0.05 + 0.6 * fraction);
        let mut child = pftrack()
            .args(backfill_args(&crashed, log))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills > 0,
        "no run was killed: the clean run took only {clean_run:?}"
    );
    run_ok(&backfill_args(&crashed, log));

    let got = crashed.query(ALL_ROWS);
    if got != expected {
        let exp: std::collections::BTreeSet<&str> = expected.lines().collect();
        let got_set: std::collections::BTreeSet<&str> = got.lines().collect();
        let missing: Vec<_> = exp.difference(&got_set).take(5).collect();
        let extra: Vec<_> = got_set.difference(&exp).take(5).collect();
        panic!(
            "after {kills} kills the database differs\nmissing: {missing:#?}\nextra: {extra:#?}"
        );
    }
    assert_eq!(clean.query(POSITIONS), crashed.query(POSITIONS));
    assert_eq!(clean.query(INDEXES), crashed.query(INDEXES));
    assert_eq!(crashed.query("SELECT count(*) FROM deferred_index"), "0\n");

    // Maintaining indexes row by row (no bulk load) stores the same rows.
    let maintained = TestDb::new("crash_maintained");
    let mut args = backfill_args(&maintained, log);
    args.extend(["--defer-indexes", "never"]);
    run_ok(&args);
    assert_eq!(expected, maintained.query(ALL_ROWS));
    assert_eq!(clean.query(INDEXES), maintained.query(INDEXES));
}

#[test]
fn interrupted_bulk_load_leaves_its_indexes_to_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();
    let reference = TestDb::new("bulk_reference");
    run_ok(&["migrate", "--database-url", &reference.url]);
    let all_indexes = reference.query(INDEXES);

    let db = TestDb::new("bulk_killed");
    run_ok(&["migrate", "--database-url", &db.url]);
    let mut child = pftrack()
        .args(backfill_args(&db, log))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once rows are being loaded with the indexes set aside.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let mut killed = false;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        let loading = db
            .query(
                "SELECT (SELECT count(*) FROM deferred_index) > 0 \
                    AND (SELECT count(*) FROM delivery_to) > 0",
            )
            .starts_with('t');
        if loading {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait().unwrap();
    assert!(
        killed,
        "the backfill ended before it could be killed mid-load"
    );
    let deferred: u32 = db
        .query("SELECT count(*) FROM deferred_index")
        .trim()
        .parse()
        .unwrap();
    assert!(
        deferred > 0,
        "the killed load should leave its indexes deferred"
    );
    assert_ne!(db.query(INDEXES), all_indexes);

    // Any start builds them (here `pftrack migrate`), and says so.
    let out = run_ok(&["migrate", "--database-url", &db.url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("built {deferred} index(es)")),
        "{stdout}"
    );
    assert_eq!(db.query(INDEXES), all_indexes);
    assert_eq!(db.query("SELECT count(*) FROM deferred_index"), "0\n");

    // The resumed backfill (no longer into an empty database) maintains the indexes
    // and ends with the rows of one clean run.
    run_ok(&backfill_args(&db, log));
    run_ok(&backfill_args(&reference, log));
    assert_eq!(db.query(ALL_ROWS), reference.query(ALL_ROWS));
    assert_eq!(db.query(INDEXES), all_indexes);
}

#[test]
fn a_bulk_load_does_not_wait_for_a_table_in_use() {
    // Someone reads delivery_to in a long transaction: dropping its indexes would have
    // to wait (and hold up everyone queued behind), so the load maintains indexes.
    let db = TestDb::new("bulk_busy");
    run_ok(&["migrate", "--database-url", &db.url]);
    let all_indexes = db.query(INDEXES);
    let mut reader = std::process::Command::new("psql")
        .arg(&db.url)
        .args([
            "-X",
            "-q",
            "-c",
            "BEGIN; LOCK TABLE delivery_to IN ACCESS SHARE MODE; SELECT pg_sleep(60);",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while db
        .query(
            "SELECT count(*) FROM pg_locks \
             WHERE relation = 'delivery_to'::regclass AND mode = 'AccessShareLock' AND granted",
        )
        .starts_with('0')
    {
        assert!(
            Instant::now() < deadline,
            "the reading session never got its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = Instant::now();
    common::backfill(&db, &common::fixture("scenarios/multi_recipient.log"), &[]);
    let took = started.elapsed();
    reader.kill().unwrap();
    reader.wait().unwrap();
    assert!(
        took < std::time::Duration::from_secs(30),
        "the load waited {took:?}"
    );
    assert_eq!(db.query(INDEXES), all_indexes);
    assert_eq!(db.query("SELECT count(*) FROM deferred_index"), "0\n");
    assert_ne!(db.query("SELECT count(*) FROM delivery_to"), "0\n");
}

#[test]
fn a_message_another_input_already_stored_is_merged_not_refused() {
    // The lines of a message already stored, behind a different first line, are another
    // input (files are known by their first line). The message closed long before the
    // last one stored, so the extractor does not remember it and starts its life
    // again: the fast insert of "new" rows meets a duplicate key and the batch is
    // merged instead. Its attempts are already in the attempt history, so they are not
    // counted again: nothing changes at all.
    let dir = tempfile::tempdir().unwrap();
    let early = std::fs::read_to_string(common::fixture("scenarios/single_delivery.log")).unwrap();
    let later =
        std::fs::read_to_string(common::fixture("scenarios/deferred_then_sent.log")).unwrap();
    let first = dir.path().join("mail.log");
    std::fs::write(&first, format!("{early}{later}")).unwrap();
    let second = dir.path().join("copy.log");
    std::fs::write(
        &second,
        format!("Mar 14 06:00:00 elsewhere kernel: another file\n{early}"),
    )
    .unwrap();
    let db = TestDb::new("merge_fallback");
    let load = |path: &Path| common::backfill(&db, path, &[]);
    const EARLY_ATTEMPTS: &str =
        "SELECT sum(attempts) FROM delivery_to WHERE arrived_at < '2025-03-14 07:00:00+00'";
    const LATER_ROWS: &str = "SELECT t::text FROM delivery_to t \
        WHERE arrived_at > '2025-03-14 07:00:00+00' ORDER BY 1";
    load(&first);
    let messages = db.query("SELECT count(*) FROM delivery_from");
    let recipients = db.query("SELECT count(*) FROM delivery_to");
    let early_attempts: i64 = db.query(EARLY_ATTEMPTS).trim().parse().unwrap();
    let later_rows = db.query(LATER_ROWS);
    assert!(early_attempts > 0);

    let everything = db.query(ALL_ROWS);
    let history = db.query("SELECT a::text FROM delivery_attempt a ORDER BY 1");

    load(&second);
    assert_eq!(db.query("SELECT count(*) FROM delivery_from"), messages);
    assert_eq!(db.query("SELECT count(*) FROM delivery_to"), recipients);
    assert_eq!(db.query(EARLY_ATTEMPTS), format!("{early_attempts}\n"));
    assert_eq!(db.query(LATER_ROWS), later_rows);
    assert_eq!(db.query(ALL_ROWS), everything);
    assert_eq!(
        db.query("SELECT a::text FROM delivery_attempt a ORDER BY 1"),
        history
    );
}

#[test]
fn rotated_gzipped_set_equals_the_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let third = lines.len() / 3;
    let parts = [
        &lines[..third],
        &lines[third..2 * third],
        &lines[2 * third..],
    ];
    let rotated = dir.path().join("rotated");
    std::fs::create_dir(&rotated).unwrap();
    // Oldest is mail.log.2.gz, then mail.log.1.gz, then mail.log (plain).
    for (name, part) in [("mail.log.2.gz", parts[0]), ("mail.log.1.gz", parts[1])] {
        let f = std::fs::File::create(rotated.join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        for l in part {
            writeln!(gz, "{l}").unwrap();
        }
        gz.finish().unwrap();
    }
    let mut plain = std::fs::File::create(rotated.join("mail.log")).unwrap();
    for l in parts[2] {
        writeln!(plain, "{l}").unwrap();
    }
    drop(plain);

    let single = TestDb::new("rot_single");
    run_ok(&backfill_args(&single, log.to_str().unwrap()));
    let set = TestDb::new("rot_set");
    // The directory: the reader orders the set oldest first.
    run_ok(&backfill_args(&set, rotated.to_str().unwrap()));
    assert_eq!(single.query(ALL_ROWS), set.query(ALL_ROWS));
    assert_eq!(
        set.query("SELECT count(*) FROM input_position WHERE complete")
            .trim(),
        "3"
    );
}

#[test]
fn unreadable_file_is_named_and_others_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        b"Mar 14 06:25:01 mx1 postfix/qmgr[900]: 4BC7D1A0F3: removed\n\x00\x01 garbage \xff\n",
    )
    .unwrap();
    let missing = dir.path().join("does-not-exist.log");
    let db = TestDb::new("unreadable");
    let out = pftrack()
        .args(["backfill", "--database-url", &db.url, "--json"])
        .arg(&missing)
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable file makes the exit code 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does-not-exist.log"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"], 1);
    assert_eq!(summary["malformed"], 1);
    assert_eq!(summary["files_failed"], 1);
    assert_eq!(db.query("SELECT count(*) FROM delivery_from").trim(), "1");
}

#[test]
fn unreachable_database_is_a_clear_error_without_password() {
    let out = pftrack()
        .args([
            "backfill",
            "--database-url",
            "postgresql://pftrack:s3cret@127.0.0.1:1/pftrack",
            "fixtures/scenarios/single_delivery.log",
        ])
        .current_dir(common::repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("postgresql://pftrack:***@127.0.0.1:1/pftrack"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
