//! Per-client attribution (issue 11 point 5): with `tags: headers: [client-id]` in the
//! configuration, the value of a `header_checks` INFO line (`QID: info: header
//! client-id: acme from …`) is stored as the message's tag (`delivery_from.tags`), seen
//! by `message_tags`, `delivery_status` and `failure_reasons_by_tag_daily`; without
//! the configuration nothing is tagged. `fixtures/tags/client_id.log`: two client
//! applications (acme: one bounce, one delivery; newsletter, logged as `Client-ID`:
//! one bounce, two deferrals then delivered), Postfix's own notifications and a local
//! cron message (untagged).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{ALL_ROWS, TestDb, assert_rows, backfill, fixture};

const TAG_ROWS: &str = "SELECT queue_id, tags FROM delivery_from ORDER BY arrived_at, queue_id";

const BY_TAG: &str = "SELECT day, tag_name, tag_value, reason, hard, status, count \
    FROM failure_reasons_by_tag_daily ORDER BY tag_name, tag_value, reason";

/// A configuration file listing `headers` under `tags:`.
fn config(dir: &Path, headers: &str) -> PathBuf {
    let path = dir.join("pftrack.yaml");
    std::fs::write(&path, format!("tags:\n  headers: [{headers}]\n")).unwrap();
    path
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn configured_header_tags_messages() {
    let log = fixture("tags/client_id.log");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "client-id");
    let cfg = cfg.to_str().unwrap();
    let db = TestDb::new("tags");
    backfill(&db, &log, &["-c", cfg]);
    assert_rows(
        "delivery_from.tags",
        &db.query(TAG_ROWS),
        &lines(&[
            r#"4A1B2C3D4E|{"client-id": "acme"}"#,
            "5B2C3D4E5F|",
            r#"6C3D4E5F6A|{"client-id": "newsletter"}"#,
            "7D4E5F6A7B|",
            "8E5F6A7B8C|",
        ]),
    );
    // Bounces per client application and reason: every failed attempt of a tagged
    // message (the deferrals twice); the untagged cron bounce is not in it.
    assert_rows(
        "failure_reasons_by_tag_daily",
        &db.query(BY_TAG),
        &lines(&[
            "2025-03-14|client-id|acme|mailboxfull|t|bounced|1",
            "2025-03-14|client-id|newsletter|ratelimited|f|deferred|2",
            "2025-03-14|client-id|newsletter|userunknown|t|bounced|1",
        ]),
    );
    assert_rows(
        "message_tags",
        &db.query("SELECT queue_id, name, value FROM message_tags ORDER BY arrived_at"),
        &lines(&[
            "4A1B2C3D4E|client-id|acme",
            "6C3D4E5F6A|client-id|newsletter",
        ]),
    );
    assert_rows(
        "delivery_status filtered by tag",
        &db.query(
            "SELECT recipient, status, failure_reason FROM delivery_status \
             WHERE tags->>'client-id' = 'newsletter' ORDER BY recipient",
        ),
        &lines(&[
            "carol@slow.example.net|sent|",
            "dave@nowhere.example.com|bounced|userunknown",
        ]),
    );

    // The same file again: nothing changes. One line per transaction (tags merged by
    // the SQL upsert instead of in the batch): the same rows.
    let before = db.query(ALL_ROWS);
    backfill(&db, &log, &["-c", cfg]);
    assert_eq!(before, db.query(ALL_ROWS), "a re-run changed the database");
    let split = TestDb::new("tags_split");
    backfill(&split, &log, &["-c", cfg, "--batch-lines", "1"]);
    assert_eq!(
        before,
        split.query(ALL_ROWS),
        "one line per transaction changed the result"
    );
}

#[test]
fn without_configuration_no_tags() {
    let db = TestDb::new("tags_none");
    backfill(&db, &fixture("tags/client_id.log"), &[]);
    assert_eq!(
        db.query("SELECT count(*) FROM delivery_from WHERE tags IS NOT NULL"),
        "0\n"
    );
    assert_eq!(db.query(BY_TAG), "");
    assert_eq!(db.query("SELECT count(*) FROM delivery_from"), "5\n");
}

#[test]
fn tags_merge_per_name_later_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "Client-ID, x-mailer");
    let cfg = cfg.to_str().unwrap();
    // Two names on one message, and a second client-id line later (a second header
    // check rule, or a resubmission through a content filter keeping the queue id).
    let log = dir.path().join("merge.log");
    let mut text = std::fs::read_to_string(fixture("tags/client_id.log")).unwrap();
    text.push_str(
        "Mar 14 09:40:00 mx1 postfix/cleanup[3202]: 6C3D4E5F6A: warning: header \
         client-id: newsletter-v2 from app2.example.org[192.0.2.22]; \
         from=<news@news.example.org> to=<carol@slow.example.net> proto=ESMTP \
         helo=<app2.example.org>: client id logged again\n",
    );
    std::fs::write(&log, text).unwrap();
    let expected = lines(&[
        r#"4A1B2C3D4E|{"client-id": "acme"}"#,
        "5B2C3D4E5F|",
        r#"6C3D4E5F6A|{"x-mailer": "NewsBlaster 3.2", "client-id": "newsletter-v2"}"#,
        "7D4E5F6A7B|",
        "8E5F6A7B8C|",
    ]);
    for extra in [&[][..], &["--batch-lines", "1"][..]] {
        let db = TestDb::new("tags_merge");
        backfill(&db, &log, &[&["-c", cfg][..], extra].concat());
        assert_rows(&format!("tags {extra:?}"), &db.query(TAG_ROWS), &expected);
    }
}

#[test]
fn the_per_client_queries_in_the_docs_find_rows() {
    let queries = common::doc_queries("postgresql", Some("## Per client application"));
    assert_eq!(queries.len(), 3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "client-id");
    let db = TestDb::new("tags_docs");
    backfill(
        &db,
        &fixture("tags/client_id.log"),
        &["-c", cfg.to_str().unwrap()],
    );
    // Move every time so that the latest is a minute ago ("this week").
    let offset = db.query(
        "SELECT now() - interval '1 minute' - greatest( \
             (SELECT max(last_seen_at) FROM delivery_from), \
             (SELECT max(attempt_at) FROM delivery_attempt))",
    );
    let statements = db.query(&format!(
        "SELECT string_agg(format('UPDATE %I SET %s', table_name, sets), '; ') FROM ( \
             SELECT table_name, \
                    string_agg(format('%1$I = %1$I + interval %2$L', column_name, '{}'), ', ') \
                        AS sets \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' \
               AND table_name IN ('delivery_from', 'delivery_to', 'delivery_attempt') \
             GROUP BY table_name) t",
        offset.trim()
    ));
    db.query(&format!("BEGIN; {}; COMMIT", statements.trim()));
    // The docs' example recipient is example.net; the fixture's is full.example.net.
    let queries: Vec<String> = queries
        .iter()
        .map(|q| q.replace("'erin@example.net'", "'erin@full.example.net'"))
        .collect();
    // Both have one bounce: ties come in any order.
    let out = db.query(&queries[0]);
    let mut bounces: Vec<&str> = out.lines().collect();
    bounces.sort_unstable();
    let bounces = bounces.join("\n");
    assert_rows(
        "bounces per client application and reason this week",
        &bounces,
        &lines(&["acme|mailboxfull|t|1", "newsletter|userunknown|t|1"]),
    );
    for q in &queries[1..] {
        assert!(!db.query(q).trim().is_empty(), "no rows:\n{q}");
    }
}

#[test]
fn status_filters_by_tag() {
    let log = fixture("tags/client_id.log");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "client-id");
    let db = TestDb::new("tags_status");
    backfill(&db, &log, &["-c", cfg.to_str().unwrap()]);
    let status = |query: &str, tag: &str| {
        common::pftrack()
            .args(["status", "--database-url", &db.url, "--json", query])
            .args(["--since", "2025-01-01", "--tag", tag])
            .output()
            .unwrap()
    };
    // The sender's message is acme's; the name is matched whatever its case.
    let acme = status("orders@acme.example.org", "Client-ID=acme");
    assert!(acme.status.success(), "{acme:?}");
    let json: serde_json::Value = serde_json::from_slice(&acme.stdout).unwrap();
    let queue_ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(queue_ids, ["4A1B2C3D4E"]);
    // Not the newsletter's: no match, exit 1.
    let other = status("orders@acme.example.org", "client-id=newsletter");
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    // A recipient of the newsletter, by queue id and by address.
    assert!(
        status("6C3D4E5F6A", "client-id=newsletter")
            .status
            .success()
    );
    assert!(
        status("carol@slow.example.net", "client-id=newsletter")
            .status
            .success()
    );
    assert_eq!(
        status("carol@slow.example.net", "client-id=acme")
            .status
            .code(),
        Some(1)
    );
    // A malformed filter is refused with a hint.
    let bad = status("carol@slow.example.net", "client-id");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME=VALUE"));
}
