//! The generator knows the fate of every message it writes; the database must agree.
//! A seeded log with reused queue ids, deferrals, bounces, expiries with their
//! notifications, content-filter re-injection, pickups and NOQUEUE rejects, in both
//! stamp formats and across New Year, is backfilled and counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use chrono::NaiveDate;
use common::{TestDb, run_ok};
use pftrack_loggen::{GenConfig, GenStats, StampFormat, generate};

fn count(db: &TestDb, sql: &str) -> u64 {
    db.query(sql)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn check(format: StampFormat, start: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let config = GenConfig {
        seed: 11,
        lines: 40_000,
        format,
        start: NaiveDate::parse_from_str(start, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(22, 0, 0)
            .unwrap(),
        hosts: vec!["mx1".into(), "mx2".into()],
        messages_per_second: 5.0,
        queue_id_space: 2048,
        ..GenConfig::default()
    };
    let stats: GenStats = generate(&config, &mut out).unwrap();
    out.flush().unwrap();
    assert!(
        stats.queue_id_reuses > 100,
        "the log should reuse queue ids: {stats:?}"
    );

    let db = TestDb::new(label);
    let year = start[..4].to_owned();
    run_ok(&[
        "backfill",
        "--database-url",
        &db.url,
        "--year",
        &year,
        "--timezone",
        "UTC",
        path.to_str().unwrap(),
    ]);

    let got = |sql: &str| count(&db, sql);
    assert_eq!(
        got("SELECT count(*) FROM delivery_from"),
        stats.messages,
        "messages"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_status WHERE status = 'bounced'"),
        stats.bounced,
        "bounced"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_status WHERE status = 'expired'"),
        stats.expired,
        "expired"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_from WHERE expired_at IS NOT NULL"),
        stats.expired_messages,
        "expired messages"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_status WHERE status = 'sent' AND attempts > 1"),
        stats.deferred_then_sent,
        "deferred then sent"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_from WHERE parent_kind = 'non_delivery'"),
        stats.ndrs,
        "notifications linked to their parent"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_from WHERE parent_kind = 'reinjection'"),
        stats.reinjected,
        "re-injections linked to their parent"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_from WHERE origin = 'pickup'"),
        stats.pickups,
        "pickups"
    );
    assert_eq!(
        got("SELECT coalesce(sum(count), 0) FROM noqueue"),
        stats.noqueue_rejects,
        "NOQUEUE"
    );
    assert_eq!(
        got("SELECT count(*) FROM delivery_status WHERE orig_recipient IS NOT NULL"),
        stats.orig_to,
        "orig_to"
    );
    if stats.new_year_crossings > 0 {
        // Lines after midnight got the next year, and none is in the future of the log.
        let next = format!("{}-01-01", year.parse::<i32>().unwrap() + 1);
        assert!(
            got(&format!(
                "SELECT count(*) FROM delivery_from WHERE arrived_at >= '{next}'"
            )) > 0
        );
    }
}

#[test]
fn classic_stamps_across_new_year() {
    check(StampFormat::Classic, "2025-12-31", "agree_classic");
}

#[test]
fn rfc3339_stamps() {
    check(StampFormat::Rfc3339, "2025-06-01", "agree_rfc3339");
}
