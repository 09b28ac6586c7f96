//! `pftrack status` against the scenario fixtures: the table and JSON output, no match
//! (exit 1), several matches, every life of a reused queue id, NDR and content-filter
//! links, time windows and limits, and index use of the lookups on a larger table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::{SCENARIOS, TestDb, fixture, pftrack, run_ok};
use serde_json::Value;

fn scenarios_db(label: &str) -> TestDb {
    let db = TestDb::new(label);
    for name in SCENARIOS {
        common::backfill(&db, &fixture(&format!("scenarios/{name}.log")), &[]);
    }
    db
}

/// Run `pftrack status` with times shown in UTC; returns the output, whatever the exit.
fn status(db: &TestDb, args: &[&str]) -> Output {
    pftrack()
        .env("TZ", "UTC")
        .args(["status", "--database-url", &db.url])
        .args(args)
        .output()
        .unwrap()
}

/// `status --json`, which must succeed; the parsed array.
fn status_json(db: &TestDb, args: &[&str]) -> Vec<Value> {
    let out = status(db, &[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "status {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(a) => a,
        other => panic!("not an array: {other}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn queue_ids(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["queue_id"].as_str().unwrap())
        .collect()
}

#[test]
fn table_output_for_a_bounce_and_its_ndr() {
    let db = scenarios_db("status_table");
    let out = status(&db, &["alice@example.com"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    // Not a terminal: no colour codes.
    assert!(!got.contains('\x1b'), "{got}");
    let expected = std::fs::read_to_string(fixture("status/status_alice_example_com.txt")).unwrap();
    assert_eq!(got, expected, "--- got\n{got}");
}

#[test]
fn json_output_links_a_bounce_to_its_ndr_and_back() {
    let db = scenarios_db("status_ndr");
    let m = status_json(&db, &["2D9E8F7A6B"]);
    assert_eq!(queue_ids(&m), ["2D9E8F7A6B"]);
    let m = &m[0];
    assert_eq!(m["matched_by"], "queue-id");
    assert_eq!(m["outcome"], "partial");
    assert_eq!(m["sender"], "alice@example.com");
    assert_eq!(m["message_id"], "team-meeting@example.com");
    assert_eq!(m["client_addr"], "198.51.100.20");
    assert_eq!(m["sasl_username"], "alice");
    assert_eq!(m["counts"]["sent"], 2);
    assert_eq!(m["counts"]["bounced"], 1);
    assert_eq!(m["removed_at"], "2025-03-14T07:00:03Z");
    assert_eq!(m["children"].as_array().unwrap().len(), 1);
    assert_eq!(m["children"][0]["queue_id"], "3E0F1A2B3C");
    assert_eq!(m["children"][0]["kind"], "non_delivery");
    let rcpts = m["recipients"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> = rcpts
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("carol@example.net", "sent"),
            ("dan@example.net", "sent"),
            ("erin@example.org", "bounced")
        ]
    );
    let erin = &rcpts[2];
    assert_eq!(erin["dsn"], "5.1.1");
    assert_eq!(erin["relay"], "mail.example.org[192.0.2.10]:25");
    assert_eq!(erin["attempts"], 1);
    assert_eq!(erin["first_attempt_at"], "2025-03-14T07:00:03Z");
    assert!(
        erin["response"]
            .as_str()
            .unwrap()
            .contains("User unknown in virtual mailbox table")
    );
    // The failure's reason, hard/soft and the rule that decided; none for deliveries.
    assert_eq!(erin["failure_reason"], "userunknown");
    assert_eq!(erin["hard"], true);
    assert!(
        erin["failure_rule"]
            .as_str()
            .unwrap()
            .starts_with("builtin:")
    );
    for sent in &rcpts[..2] {
        assert!(sent["failure_reason"].is_null(), "{sent}");
        assert!(sent["hard"].is_null(), "{sent}");
        assert!(sent["failure_rule"].is_null(), "{sent}");
    }

    let ndr = status_json(&db, &["3e0f1a2b3c"]);
    assert_eq!(queue_ids(&ndr), ["3E0F1A2B3C"]);
    assert_eq!(ndr[0]["sender"], "");
    assert_eq!(ndr[0]["origin"], "notification");
    assert_eq!(ndr[0]["parent"]["queue_id"], "2D9E8F7A6B");
    assert_eq!(ndr[0]["parent"]["arrived_at"], "2025-03-14T07:00:01Z");
    assert_eq!(ndr[0]["parent"]["kind"], "non_delivery");

    // An expiry and its NDR.
    let m = status_json(&db, &["doomed@example.org"]);
    assert_eq!(m[0]["outcome"], "expired");
    assert_eq!(m[0]["recipients"][0]["status"], "expired");
    assert_eq!(m[0]["recipients"][0]["attempts"], 3);
    // Still deferred when the message expired: expired, hard.
    assert_eq!(m[0]["recipients"][0]["failure_reason"], "expired");
    assert_eq!(m[0]["recipients"][0]["hard"], true);
    assert_eq!(m[0]["children"][0]["queue_id"], "7E8F9A0B1C");
}

#[test]
fn no_match_exits_1() {
    let db = scenarios_db("status_none");
    for query in ["nobody@example.invalid", "FFFFFFFFFF", "<nothing@here>"] {
        let out = status(&db, &[query]);
        assert_eq!(out.status.code(), Some(1), "{query}");
        assert_eq!(text(&out.stdout), "", "{query}");
        assert!(
            text(&out.stderr).contains("no message matches"),
            "{}",
            text(&out.stderr)
        );
        let out = status(&db, &[query, "--json"]);
        assert_eq!(out.status.code(), Some(1), "{query}");
        assert_eq!(text(&out.stdout), "[]\n");
    }
    // A window without the message.
    let out = status(&db, &["erin@example.org", "--until", "2025-03-01"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn several_matches_for_an_address_in_any_role_and_case() {
    let db = scenarios_db("status_many");
    let expected: usize = db
        .query(
            "SELECT count(*) FROM (
                 SELECT host, queue_id, arrived_at FROM delivery_to
                 WHERE lower(recipient) = 'alice@example.org' OR lower(orig_recipient) = 'alice@example.org'
                 UNION
                 SELECT host, queue_id, arrived_at FROM delivery_from
                 WHERE lower(sender) = 'alice@example.org') k",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(expected >= 10, "{expected}");
    let m = status_json(&db, &["Alice@Example.ORG"]);
    assert_eq!(m.len(), expected);
    // Oldest first.
    let times: Vec<&str> = m
        .iter()
        .map(|x| x["arrived_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    // As sender of most, as recipient of the NDR about her expired message.
    assert!(m.iter().all(|x| {
        x["matched_fields"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    }));
    let as_recipient: Vec<&str> = m
        .iter()
        .filter(|x| {
            x["matched_fields"]
                .as_array()
                .unwrap()
                .contains(&Value::from("recipient"))
        })
        .map(|x| x["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        as_recipient,
        Vec::<&str>::new(),
        "alice@example.org receives nothing here"
    );

    // By original recipient (alias expansion).
    let m = status_json(&db, &["team@mx1.example.com"]);
    assert_eq!(queue_ids(&m), ["7A8B9C0D1E"]);
    assert_eq!(
        m[0]["matched_fields"],
        serde_json::json!(["orig_recipient"])
    );
    assert_eq!(m[0]["recipients"].as_array().unwrap().len(), 2);
}

#[test]
fn reused_queue_id_shows_every_life() {
    let db = scenarios_db("status_reuse");
    let m = status_json(&db, &["8d9e0f1a2b"]);
    assert_eq!(m.len(), 3);
    let lives: Vec<(&str, &str)> = m
        .iter()
        .map(|x| {
            (
                x["arrived_at"].as_str().unwrap(),
                x["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lives,
        [
            ("2025-03-14T12:00:00Z", "sent"),
            ("2025-03-14T13:30:00Z", "no_recipients"),
            ("2025-03-14T14:45:00Z", "sent")
        ]
    );
    assert_eq!(m[0]["recipients"][0]["recipient"], "bob@mx1.example.com");
    assert_eq!(m[2]["recipients"][0]["recipient"], "carol@mx1.example.com");
    // The table shows the three lives, each with its own header.
    let out = status(&db, &["8D9E0F1A2B"]);
    let t = text(&out.stdout);
    assert_eq!(t.matches("mx1 8D9E0F1A2B  arrived").count(), 3, "{t}");
    assert!(t.contains("no end logged"), "{t}");

    // The same id on two hosts: two messages.
    let m = status_json(&db, &["8C9D0E1F2A"]);
    let hosts: Vec<&str> = m.iter().map(|x| x["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["mx1", "mx2"]);
    assert_eq!(m[1]["outcome"], "deferred");
}

#[test]
fn message_id_finds_the_content_filter_continuation() {
    let db = scenarios_db("status_filter");
    let m = status_json(&db, &["<scan-me@example.org>"]);
    assert_eq!(queue_ids(&m), ["4E5F6A7B8C", "5F6A7B8C9D"]);
    assert_eq!(m[0]["matched_by"], "message-id");
    assert_eq!(
        m[0]["recipients"][0]["continued_as"]["queue_id"],
        "5F6A7B8C9D"
    );
    assert_eq!(m[0]["children"][0]["kind"], "reinjection");
    assert_eq!(m[1]["parent"]["queue_id"], "4E5F6A7B8C");
    assert_eq!(m[1]["parent"]["kind"], "reinjection");
    // Without brackets (it contains '@': tried as an address first).
    let m = status_json(&db, &["scan-me@example.org"]);
    assert_eq!(queue_ids(&m), ["4E5F6A7B8C", "5F6A7B8C9D"]);
    assert_eq!(m[0]["matched_by"], "message-id");
    let t = text(&status(&db, &["4E5F6A7B8C"]).stdout);
    assert!(t.contains("continued as 5F6A7B8C9D"), "{t}");
    assert!(t.contains("child      reinjection 5F6A7B8C9D"), "{t}");
}

#[test]
fn time_window_and_limit() {
    let db = scenarios_db("status_window");
    let expected: usize = db
        .query(
            "SELECT count(*) FROM delivery_from WHERE lower(sender) = 'alice@example.org' \
             AND arrived_at >= '2025-03-14 12:00Z' AND arrived_at < '2025-03-14 18:00Z'",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(expected >= 2);
    let m = status_json(
        &db,
        &[
            "alice@example.org",
            "--since",
            "2025-03-14T12:00:00Z",
            "--until",
            "2025-03-14 18:00",
        ],
    );
    assert_eq!(m.len(), expected);
    assert!(
        m.iter()
            .all(|x| x["arrived_at"].as_str().unwrap() >= "2025-03-14T12:00:00Z")
    );
    // The limit keeps the newest and says so.
    let out = status(&db, &["alice@example.org", "--limit", "2", "--json"]);
    assert!(out.status.success());
    let m: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[1]["arrived_at"], "2025-12-31T23:59:58Z");
    assert!(text(&out.stderr).contains("showing the newest 2"));
    // Nonsense is an error (exit 2), not "no match".
    let out = status(&db, &["alice@example.org", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lookups_use_indexes() {
    let db = TestDb::new("status_explain");
    run_ok(&["migrate", "--database-url", &db.url]);
    // 40 000 messages with two recipients each: enough that a scan would cost far more
    // than the index, as on a real table.
    db.query(
        "SELECT pftrack_time_partitions(ARRAY[timestamptz '2025-01-01', '2025-02-01']);
         INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender, message_id, removed_at)
         SELECT 'mx' || (i % 3), upper(lpad(to_hex(i), 10, '0')),
                timestamptz '2025-01-01' + i * interval '1 minute',
                timestamptz '2025-01-01' + i * interval '1 minute' + interval '2 seconds',
                'sender' || (i % 4000) || '@d' || (i % 50) || '.example',
                md5(i::text) || '@example.org',
                timestamptz '2025-01-01' + i * interval '1 minute' + interval '2 seconds'
         FROM generate_series(1, 40000) i;
         INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, orig_recipient, status, status_at, attempts)
         SELECT host, queue_id, arrived_at,
                'user' || ((hashtext(queue_id) & 65535) + j) || '@r' || j || '.example',
                CASE WHEN j = 2 THEN 'list' || (hashtext(queue_id) & 1023) || '@r.example' ELSE '' END,
                'sent', arrived_at, 1
         FROM delivery_from, generate_series(1, 2) j;
         ANALYZE",
    );
    let explain = |query: &str| {
        let out = status(&db, &[query, "--explain"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        common::with_parent_index_names(&db, &text(&out.stdout))
    };
    let plan = explain("USER100@r1.example");
    for index in [
        "delivery_to_recipient",
        "delivery_to_orig_recipient",
        "delivery_from_sender",
        "delivery_from_pkey",
        "delivery_to_pkey",
    ] {
        assert!(plan.contains(index), "{index} not used:\n{plan}");
    }
    // No scan of the month holding the rows (the other months' partitions are empty,
    // where a scan is what an index would cost).
    assert!(!plan.contains("Seq Scan on delivery_to_p2025_01"), "{plan}");
    assert!(
        !plan.contains("Seq Scan on delivery_from_p2025_01"),
        "{plan}"
    );
    let plan = explain("00000003E8");
    assert!(plan.contains("delivery_from_pkey"), "{plan}");
    assert!(
        !plan.contains("Seq Scan on delivery_from_p2025_01"),
        "{plan}"
    );
    let plan = explain("<c4ca4238a0b923820dcc509a6f75849b@example.org>");
    assert!(plan.contains("delivery_from_message_id"), "{plan}");
    assert!(
        !plan.contains("Seq Scan on delivery_from_p2025_01"),
        "{plan}"
    );
}

#[test]
fn a_database_without_the_views_says_to_migrate() {
    let db = TestDb::new("status_unmigrated");
    let out = status(&db, &["bob@example.com"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pftrack migrate"),
        "{}",
        text(&out.stderr)
    );
}
