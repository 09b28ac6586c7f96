//! Scenario tests: each `fixtures/scenarios/NAME.log` is backfilled into a database of
//! its own and `delivery_status` (and, where there is a `NAME.noqueue`, `noqueue`) must
//! equal the expected rows. The same log is then loaded again (nothing may change) and
//! once more with one line per transaction (batching may not change anything).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    ALL_ROWS, NOQUEUE_ROWS, STATUS_ROWS, TestDb, assert_rows, backfill, expected_lines, fixture,
};

fn scenario(name: &str) {
    let log = fixture(&format!("scenarios/{name}.log"));
    let db = TestDb::new(name);
    backfill(&db, &log, &[]);

    let expected = expected_lines(&fixture(&format!("scenarios/{name}.expected")));
    assert_rows(
        &format!("{name}: delivery_status"),
        &db.query(STATUS_ROWS),
        &expected,
    );
    let noqueue_file = fixture(&format!("scenarios/{name}.noqueue"));
    if noqueue_file.exists() {
        assert_rows(
            &format!("{name}: noqueue"),
            &db.query(NOQUEUE_ROWS),
            &expected_lines(&noqueue_file),
        );
    }

    // A second run reads nothing new and changes nothing.
    let before = db.query(ALL_ROWS);
    backfill(&db, &log, &[]);
    assert_eq!(
        before,
        db.query(ALL_ROWS),
        "{name}: a re-run changed the database"
    );

    // One line per transaction gives the same rows as one transaction for all.
    let split = TestDb::new(&format!("{name}_split"));
    backfill(&split, &log, &["--batch-lines", "1"]);
    assert_eq!(
        before,
        split.query(ALL_ROWS),
        "{name}: batching changed the result"
    );
}

#[test]
fn single_delivery() {
    scenario("single_delivery");
}

#[test]
fn multi_recipient_with_bounce_and_ndr_out_of_order() {
    scenario("multi_recipient");
}

#[test]
fn deferred_then_sent() {
    scenario("deferred_then_sent");
}

#[test]
fn deferred_then_expired_with_ndr() {
    scenario("deferred_then_expired");
}

#[test]
fn orig_to_alias_expansion() {
    scenario("orig_to_alias");
}

#[test]
fn milter_reject_rcpt_reject_and_discard() {
    scenario("milter_reject");
}

#[test]
fn noqueue_rejects() {
    scenario("noqueue");
}

#[test]
fn queue_id_reuse() {
    scenario("queue_id_reuse");
}

#[test]
fn pickup_submission() {
    scenario("pickup");
}

#[test]
fn postsuper_delete() {
    scenario("postsuper_delete");
}

#[test]
fn content_filter_reinjection() {
    scenario("content_filter");
}

#[test]
fn new_year_rollover() {
    scenario("new_year");
}

#[test]
fn rfc3339_input() {
    scenario("rfc3339");
}

#[test]
fn two_hosts_in_one_file() {
    scenario("two_hosts");
}
