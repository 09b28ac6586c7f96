//! Every attempt kept, every failure classified: each `fixtures/attempts/NAME.log` is
//! loaded and its attempt history (`NAME.attempts`), recipients with attempts and
//! reasons (`NAME.status`) and NOQUEUE rows (`NAME.noqueue`, where there is one) must
//! equal the expected rows. Then, each time into the same or a fresh database:
//!
//! - the same file again: nothing changes;
//! - one line per transaction: the same rows;
//! - the same lines as another input (a copy whose first line differs, so it is a file
//!   of its own): nothing changes — attempts and NOQUEUE counts are not doubled.
//!
//! The expected reasons were checked by hand against the taxonomy
//! (`docs/classification.md`), not merely recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALL_ROWS, TestDb, assert_rows, backfill, expected_lines, fixture};

const ATTEMPT_ROWS: &str = "SELECT host, queue_id, recipient, attempt_at, status, dsn, \
    is_attempt, failure_reason, hard FROM delivery_attempt \
    ORDER BY host, arrived_at, queue_id, recipient, attempt_at";

const STATUS_ROWS: &str = "SELECT queue_id, recipient, status, attempts, failure_reason, hard \
    FROM delivery_status ORDER BY arrived_at, queue_id, recipient";

const NOQUEUE_ROWS: &str = "SELECT logged_at, recipient, code, dsn, count, failure_reason, hard \
    FROM noqueue ORDER BY logged_at, recipient";

fn scenario(name: &str) {
    let log = fixture(&format!("attempts/{name}.log"));
    let db = TestDb::new(&format!("attempts_{name}"));
    backfill(&db, &log, &[]);
    let expect = |what: &str, sql: &str, ext: &str| {
        let file = fixture(&format!("attempts/{name}.{ext}"));
        if ext != "noqueue" || file.exists() {
            assert_rows(
                &format!("{name}: {what}"),
                &db.query(sql),
                &expected_lines(&file),
            );
        }
    };
    expect("attempt history", ATTEMPT_ROWS, "attempts");
    expect("recipients", STATUS_ROWS, "status");
    expect("NOQUEUE", NOQUEUE_ROWS, "noqueue");

    let before = db.query(ALL_ROWS);
    backfill(&db, &log, &[]);
    assert_eq!(
        before,
        db.query(ALL_ROWS),
        "{name}: a re-run changed the database"
    );

    let split = TestDb::new(&format!("attempts_{name}_split"));
    backfill(&split, &log, &["--batch-lines", "1"]);
    assert_eq!(
        before,
        split.query(ALL_ROWS),
        "{name}: one line per transaction changed the result"
    );

    // The same lines through a second input: a copy behind another first line.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(format!("{name}-copy.log"));
    let lines = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &copy,
        format!("Mar  1 00:00:00 elsewhere kernel: another file\n{lines}"),
    )
    .unwrap();
    backfill(&db, &copy, &[]);
    assert_eq!(
        before,
        db.query(ALL_ROWS),
        "{name}: the same lines through another input changed the database"
    );
    // Also one line per transaction, into the split database.
    backfill(&split, &copy, &["--batch-lines", "1"]);
    assert_eq!(
        before,
        split.query(ALL_ROWS),
        "{name}: the same lines through another input, one per transaction, changed the \
         database"
    );
}

#[test]
fn deferred_three_times_then_sent() {
    scenario("deferred_thrice_then_sent");
}

#[test]
fn deferred_then_expired() {
    scenario("deferred_then_expired");
}

#[test]
fn mailbox_full_remote_and_local() {
    scenario("mailbox_full");
}

#[test]
fn unknown_user_remote_and_local() {
    scenario("unknown_user");
}

#[test]
fn greylisting_then_sent() {
    scenario("greylisting");
}

#[test]
fn tls_failures() {
    scenario("tls_failure");
}

#[test]
fn noqueue_policy_rejects() {
    scenario("noqueue_policy");
}
