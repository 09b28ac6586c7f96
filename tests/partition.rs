//! Monthly partitions (migration V14, issue 16): the in-place conversion of a database
//! loaded by the previous schema keeps every row; the loader creates the months its
//! rows need (old logs included) and stays exactly-once across the conversion; and
//! retention drops whole months, keeping a month that holds a message in flight or the
//! family of one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Datelike, Months, NaiveDate, Utc};
use common::{ALL_ROWS, STATUS_ROWS, TestDb, backfill, fixture, pftrack, run_ok};
use serde_json::Value;

/// The tables V14 partitions by month.
const PARTITIONED: [&str; 5] = [
    "delivery_from",
    "delivery_to",
    "delivery_attempt",
    "noqueue",
    "auth_failure",
];

/// Fixtures loaded before the conversion: a fleet, attempts, SASL failures.
const FIXTURES: &[&str] = &[
    "fleet/fleet.log",
    "attempts/deferred_thrice_then_sent.log",
    "attempts/greylisting.log",
    "sasl/sasl.log",
];

/// A generated log of `lines` lines starting at 06:00 UTC on `start` (RFC 3339 stamps).
fn month_log(dir: &std::path::Path, name: &str, start: NaiveDate, seed: u64, lines: u64) -> String {
    log_from(dir, name, start.and_hms_opt(6, 0, 0).unwrap(), seed, lines)
}

/// A generated log of `lines` lines starting at `start` (UTC, RFC 3339 stamps).
fn log_from(
    dir: &std::path::Path,
    name: &str,
    start: chrono::NaiveDateTime,
    seed: u64,
    lines: u64,
) -> String {
    use std::io::Write;
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let config = pftrack_loggen::GenConfig {
        seed,
        lines,
        format: pftrack_loggen::StampFormat::Rfc3339,
        start,
        hosts: vec!["mx1".into()],
        messages_per_second: 5.0,
        ..pftrack_loggen::GenConfig::default()
    };
    pftrack_loggen::generate(&config, &mut file).unwrap();
    file.flush().unwrap();
    path.to_str().unwrap().to_owned()
}

/// The first day of the month `back` months before this one.
fn month_start(back: u32) -> NaiveDate {
    let today = Utc::now().date_naive();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    first.checked_sub_months(Months::new(back)).unwrap()
}

/// A message `f` without parent or children (so the row purge keeps it for itself
/// alone).
const LONE: &str = "f.parent_queue_id IS NULL AND NOT EXISTS (SELECT 1 FROM delivery_from k \
    WHERE k.host = f.host AND k.parent_queue_id = f.queue_id AND k.parent_arrived_at = f.arrived_at)";

/// The lines of `rows`, sorted.
fn sorted(rows: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = rows.lines().collect();
    lines.sort_unstable();
    lines
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query(sql).trim().parse().unwrap()
}

/// Where each table's rows live: partition name and rows, in order.
fn placement(db: &TestDb, table: &str) -> String {
    db.query(&format!(
        "SELECT tableoid::regclass, count(*) FROM {table} GROUP BY 1 ORDER BY 1"
    ))
}

#[test]
fn the_conversion_keeps_every_row_and_the_loader_goes_on_exactly_once() {
    // The grants checked below are made only to roles that exist (roles are
    // cluster-wide; on a fresh cluster no other test may have created it yet).
    common::ensure_reader_role();
    let dir = tempfile::tempdir().unwrap();
    // Fixtures and two months of generated mail, loaded by this release (every pftrack
    // command migrates to the newest schema first)...
    let loader = TestDb::new("partition_loader");
    let old = month_log(dir.path(), "old.log", month_start(2), 3, 20_000);
    let older = month_log(dir.path(), "older.log", month_start(3), 4, 10_000);
    let mut loaded: Vec<String> = FIXTURES
        .iter()
        .map(|f| fixture(f).to_str().unwrap().to_owned())
        .collect();
    loaded.extend([older.clone(), old.clone()]);
    for path in &loaded {
        backfill(&loader, std::path::Path::new(path), &[]);
    }
    // ...then copied, rows and input positions, into a database as the previous
    // release (V13) left it: plain tables, the same columns.
    let db = TestDb::new("partition_upgrade");
    run_ok(&["migrate", "--database-url", &db.url, "--to-version", "13"]);
    assert_eq!(
        db.query("SELECT relkind FROM pg_class WHERE relname = 'delivery_to'"),
        "r\n"
    );
    for table in [
        "delivery_from",
        "delivery_to",
        "delivery_attempt",
        "noqueue",
        "auth_failure",
        "input_position",
        "input_host_span",
    ] {
        let copied = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "psql -X -v ON_ERROR_STOP=1 \"$1\" -c 'COPY (SELECT * FROM {table}) TO STDOUT' \
                 | psql -X -v ON_ERROR_STOP=1 \"$2\" -c 'COPY {table} FROM STDIN'"
            ))
            .args(["sh", &loader.url, &db.url])
            .output()
            .unwrap();
        assert!(
            copied.status.success(),
            "{table}: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
    }
    db.query("ANALYZE");
    assert_eq!(db.query(ALL_ROWS), loader.query(ALL_ROWS));
    // Three SASL failures stamped three years ahead (a clock gone wrong): the legacy
    // range must not stretch to them.
    db.query(
        "UPDATE auth_failure SET logged_at = logged_at + interval '3 years'
         WHERE ctid IN (SELECT ctid FROM auth_failure ORDER BY logged_at LIMIT 3)",
    );
    let rows_before = db.query(ALL_ROWS);
    let status_before = db.query(STATUS_ROWS);
    let messages_before = db.query("SELECT * FROM message_status");
    assert!(
        rows_before.lines().count() > 5_000,
        "the database holds a real load"
    );

    // The conversion.
    let out = pftrack()
        .env("RUST_LOG", "info")
        .args(["migrate", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("delivery_to") && said.contains("delivery_to_legacy"),
        "the conversion reports what it did: {said}"
    );
    for table in PARTITIONED {
        assert_eq!(
            db.query(&format!(
                "SELECT relkind FROM pg_class WHERE relname = '{table}'"
            )),
            "p\n",
            "{table} is partitioned"
        );
        // Every row stayed in the legacy partition (but those from the future).
        let placed = placement(&db, table);
        assert!(
            placed.starts_with(&format!("{table}_legacy|")),
            "{table}: {placed}"
        );
        if table != "auth_failure" {
            assert_eq!(placed.lines().count(), 1, "{table}: {placed}");
        }
    }
    let future = db.query(
        "SELECT count(*) FROM auth_failure
         WHERE tableoid::regclass::text <> 'auth_failure_legacy' AND logged_at > now()",
    );
    assert_eq!(future, "3\n", "{}", placement(&db, "auth_failure"));
    assert!(
        db.query("SELECT until_at FROM time_partition WHERE partition = 'delivery_from_legacy'")
            < db.query("SELECT now() + interval '32 days'"),
        "the legacy range ends within a month of now"
    );
    assert_eq!(
        db.query(ALL_ROWS),
        rows_before,
        "the same rows after the conversion"
    );
    // (Sorted: their ORDER BY leaves ties, which the scan order decides.)
    assert_eq!(sorted(&db.query(STATUS_ROWS)), sorted(&status_before));
    assert_eq!(
        sorted(&db.query("SELECT * FROM message_status")),
        sorted(&messages_before)
    );
    // The readers' grants and the views' shape survived.
    assert_eq!(
        db.query(&format!(
            "SELECT has_table_privilege('pftrack_web_read', 'delivery_status', 'SELECT'), \
                    has_table_privilege('pftrack_web_read', 'delivery_to', 'SELECT'), \
                    has_table_privilege('{}', 'auth_failures_daily', 'SELECT')",
            common::READER_ROLE
        )),
        "t|t|t\n"
    );

    // Loading the same files again after the conversion adds nothing.
    for path in &loaded {
        backfill(&db, std::path::Path::new(path), &[]);
    }
    db.query("DELETE FROM input_position");
    for path in [&older, &old] {
        backfill(&db, std::path::Path::new(path), &[]);
    }
    assert_eq!(
        db.query(ALL_ROWS),
        rows_before,
        "a re-read stores nothing twice"
    );

    // New mail of the month after the legacy range (here next month: the rows from the
    // future capped the range at the end of this one) goes to its own partition.
    let first_new = db.query(
        "SELECT to_char(until_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM time_partition
         WHERE partition = 'delivery_to_legacy'",
    );
    let first_new = NaiveDate::parse_from_str(first_new.trim(), "%Y-%m-%d").unwrap();
    let new_log = month_log(dir.path(), "new.log", first_new, 5, 5_000);
    backfill(&db, std::path::Path::new(&new_log), &[]);
    let new_month = first_new.format("p%Y_%m").to_string();
    let placed = placement(&db, "delivery_to");
    assert!(
        placed.contains(&format!("delivery_to_{new_month}|")),
        "the new month's rows in their partition: {placed}"
    );
    let ancient = month_log(
        dir.path(),
        "ancient.log",
        NaiveDate::from_ymd_opt(2019, 5, 2).unwrap(),
        6,
        2_000,
    );
    backfill(&db, std::path::Path::new(&ancient), &[]);
    assert!(
        count(
            &db,
            "SELECT count(*) FROM delivery_to_legacy WHERE arrived_at < '2020-01-01'"
        ) > 0,
        "2019 falls in the legacy partition's range"
    );
}

#[test]
fn the_loader_creates_the_months_it_needs() {
    let db = TestDb::new("partition_months");
    let dir = tempfile::tempdir().unwrap();
    run_ok(&["migrate", "--database-url", &db.url]);
    // A fresh database has this month and the next two, and no legacy partition.
    let months = |db: &TestDb| {
        db.query("SELECT string_agg(partition, ',' ORDER BY partition) FROM time_partition WHERE parent = 'delivery_to'")
    };
    let ahead: Vec<String> = (0..3)
        .map(|i| {
            let m = month_start(0).checked_add_months(Months::new(i)).unwrap();
            m.format("delivery_to_p%Y_%m").to_string()
        })
        .collect();
    assert_eq!(months(&db), format!("{}\n", ahead.join(",")));
    // A backfill of logs from 2021 (a month boundary inside) creates those months.
    let start = NaiveDate::from_ymd_opt(2021, 6, 30)
        .unwrap()
        .and_hms_opt(23, 50, 0)
        .unwrap();
    let log = log_from(dir.path(), "2021.log", start, 7, 30_000);
    backfill(&db, std::path::Path::new(&log), &[]);
    let now = months(&db);
    assert!(
        now.starts_with("delivery_to_p2021_06,delivery_to_p2021_07,"),
        "{now}"
    );
    for table in [
        "delivery_from",
        "delivery_attempt",
        "noqueue",
        "auth_failure",
    ] {
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT count(*) FROM time_partition WHERE parent = '{table}' AND partition LIKE '%p2021_0%'"
                )
            ),
            2,
            "{table}"
        );
    }
    assert!(count(&db, "SELECT count(*) FROM delivery_to_p2021_07") > 0);
}

#[test]
fn retention_drops_old_months_whole_and_keeps_one_in_flight() {
    let db = TestDb::new("partition_retention");
    let dir = tempfile::tempdir().unwrap();
    run_ok(&["migrate", "--database-url", &db.url]);
    // Four old months (A-D, 6 to 3 months back) and this month's mail.
    let a = month_start(6);
    let b = month_start(5);
    let c = month_start(4);
    let d = month_start(3);
    for (i, m) in [a, b, c, d].into_iter().enumerate() {
        let log = month_log(
            dir.path(),
            &format!("m{i}.log"),
            m.succ_opt().unwrap(),
            10 + i as u64,
            8_000,
        );
        backfill(&db, std::path::Path::new(&log), &[]);
    }
    let recent = month_log(
        dir.path(),
        "recent.log",
        Utc::now().date_naive().pred_opt().unwrap(),
        20,
        4_000,
    );
    backfill(&db, std::path::Path::new(&recent), &[]);
    let p = |m: NaiveDate| m.format("p%Y_%m").to_string();

    // Month B: one message still in flight (queued, seen a minute ago), with its
    // recipients. It crosses the retention edge: it must stay, and its month with it.
    let held = db.query(&format!(
        "UPDATE delivery_from SET removed_at = NULL, last_seen_at = now() - interval '1 minute'
         WHERE (queue_id, host, arrived_at) = (
             SELECT queue_id, host, arrived_at FROM delivery_from_{} f
             WHERE EXISTS (SELECT 1 FROM delivery_to t WHERE (t.queue_id, t.host, t.arrived_at) = (f.queue_id, f.host, f.arrived_at))
               AND {LONE}
             ORDER BY arrived_at LIMIT 1)
         RETURNING queue_id",
        p(b)
    ));
    let held = held.lines().next().unwrap().to_owned();
    // Month C: a message whose child (a notification) arrived in month D and is still
    // in flight; the parent was last seen when it made the child. Month C must stay.
    let family = db.query(&format!(
        "WITH parent AS (
             SELECT queue_id, host, arrived_at FROM delivery_from_{c} f WHERE {LONE}
             ORDER BY arrived_at DESC LIMIT 1
         ), child AS (
             SELECT f.queue_id, f.host, f.arrived_at FROM delivery_from_{d} f WHERE {LONE}
             ORDER BY arrived_at LIMIT 1
         ), linked AS (
             UPDATE delivery_from f SET parent_queue_id = parent.queue_id,
                 parent_arrived_at = parent.arrived_at, parent_kind = 'notification',
                 removed_at = NULL, last_seen_at = now() - interval '1 minute'
             FROM parent, child
             WHERE (f.queue_id, f.host, f.arrived_at) = (child.queue_id, child.host, child.arrived_at)
             RETURNING f.arrived_at
         )
         UPDATE delivery_from f SET last_seen_at = linked.arrived_at + interval '1 second'
         FROM parent, linked
         WHERE (f.queue_id, f.host, f.arrived_at) = (parent.queue_id, parent.host, parent.arrived_at)
         RETURNING f.queue_id",
        c = p(c),
        d = p(d),
    ));
    let parent = family.lines().next().unwrap().to_owned();

    let before_recent = count(
        &db,
        "SELECT count(*) FROM delivery_to WHERE arrived_at > now() - interval '40 days'",
    );
    let a_rows = count(&db, &format!("SELECT count(*) FROM delivery_from_{}", p(a)));
    assert!(a_rows > 100, "month A has mail");
    let out = run_ok(&[
        "purge",
        "--database-url",
        &db.url,
        "--older-than",
        "60d",
        "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();

    let partitions = db.query("SELECT string_agg(partition, ',' ORDER BY partition) FROM time_partition WHERE parent = 'delivery_from'");
    // A went whole, with its recipients and attempts; its NOQUEUE and SASL months too.
    for table in PARTITIONED {
        assert_eq!(
            db.query(&format!("SELECT to_regclass('{table}_{}') IS NULL", p(a))),
            "t\n",
            "{table}'s partition of month A was dropped"
        );
    }
    assert!(!partitions.contains(&p(a)), "{partitions}");
    assert!(r["partitions_dropped"].as_u64().unwrap() >= 5, "{r}");
    // B, C (the family) and D (in flight) stayed, purged row by row down to what is
    // still needed.
    for m in [b, c, d] {
        assert!(
            partitions.contains(&p(m)),
            "month {} kept: {partitions}",
            p(m)
        );
    }
    assert_eq!(
        db.query(&format!(
            "SELECT string_agg(queue_id, ',' ORDER BY queue_id) FROM delivery_from_{}",
            p(b)
        )),
        format!("{held}\n"),
        "month B keeps only the message in flight"
    );
    assert!(
        count(
            &db,
            &format!("SELECT count(*) FROM delivery_to WHERE queue_id = '{held}'")
        ) >= 1
    );
    assert_eq!(
        db.query(&format!(
            "SELECT string_agg(queue_id, ',' ORDER BY queue_id) FROM delivery_from_{}",
            p(c)
        )),
        format!("{parent}\n"),
        "month C keeps only the parent of a message in flight"
    );
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM delivery_from_{}", p(d))),
        1
    );
    assert_eq!(r["kept_in_flight"], 3, "{r}");
    // This month's mail is untouched; nothing of month A is left anywhere.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM delivery_to WHERE arrived_at > now() - interval '40 days'"
        ),
        before_recent
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM delivery_from WHERE arrived_at < '{}'",
                b
            )
        ),
        0
    );
    // No recipient without its message.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM delivery_to t WHERE NOT EXISTS (SELECT 1 FROM delivery_from f \
             WHERE (f.host, f.queue_id, f.arrived_at) = (t.host, t.queue_id, t.arrived_at))"
        ),
        0
    );

    // A backfill of month A's log again recreates its month (and purging again drops it).
    let log_a = dir.path().join("m0.log");
    db.query("DELETE FROM input_position");
    backfill(&db, &log_a, &[]);
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM delivery_from_{}", p(a))),
        a_rows
    );
}
