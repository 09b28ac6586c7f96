//! The views of migration V2 against the scenario fixtures: `message_status`,
//! `problem_recipients`, `recipient_domain_daily` and `noqueue_daily` give the expected
//! rows (`fixtures/status/*.expected`), agree with `delivery_status`, filter through
//! their indexes, are readable by the read-only role, and every query of
//! `docs/queries.md` runs (as that role) and returns rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    READER_ROLE, SCENARIOS, TestDb, assert_rows, ensure_reader_role, expected_lines, fixture,
    psql_may_fail,
};

/// Backfill the named scenario logs, each on its own (as the scenario tests do).
fn load(db: &TestDb, names: &[&str]) {
    for name in names {
        common::backfill(db, &fixture(&format!("scenarios/{name}.log")), &[]);
    }
}

fn scenarios_db(label: &str) -> TestDb {
    let db = TestDb::new(label);
    load(&db, SCENARIOS);
    db
}

#[test]
fn message_status_rows() {
    let db = scenarios_db("views_message_status");
    let got = db.query(
        "SELECT host, queue_id, arrived_at, sender, message_id, origin, client_addr, \
         sasl_username, recipients, sent, deferred, bounced, expired, rejected, discarded, \
         deleted, outcome, removed_at, parent_queue_id, parent_kind, children \
         FROM message_status ORDER BY host, arrived_at, queue_id",
    );
    assert_rows(
        "message_status",
        &got,
        &expected_lines(&fixture("status/message_status.expected")),
    );
}

#[test]
fn message_status_agrees_with_delivery_status() {
    let db = scenarios_db("views_agree");
    // Per message, the counts by status from delivery_status, against message_status.
    let mismatches = db.query(
        "WITH d AS (
             SELECT host, queue_id, arrived_at, count(*) AS n,
                    count(*) FILTER (WHERE status = 'sent') AS sent,
                    count(*) FILTER (WHERE status = 'deferred') AS deferred,
                    count(*) FILTER (WHERE status = 'bounced') AS bounced,
                    count(*) FILTER (WHERE status = 'expired') AS expired,
                    count(*) FILTER (WHERE status = 'rejected') AS rejected,
                    count(*) FILTER (WHERE status = 'discarded') AS discarded,
                    count(*) FILTER (WHERE status = 'deleted') AS deleted
             FROM delivery_status GROUP BY 1, 2, 3)
         SELECT m.host, m.queue_id, m.arrived_at
         FROM message_status m
         LEFT JOIN d USING (host, queue_id, arrived_at)
         WHERE (m.recipients, m.sent, m.deferred, m.bounced, m.expired, m.rejected,
                m.discarded, m.deleted)
               IS DISTINCT FROM
               (COALESCE(d.n, 0), COALESCE(d.sent, 0), COALESCE(d.deferred, 0),
                COALESCE(d.bounced, 0), COALESCE(d.expired, 0), COALESCE(d.rejected, 0),
                COALESCE(d.discarded, 0), COALESCE(d.deleted, 0))",
    );
    assert_eq!(
        mismatches, "",
        "message_status and delivery_status disagree"
    );
    let counts = db.query(
        "SELECT (SELECT count(*) FROM message_status), (SELECT count(*) FROM delivery_from), \
                (SELECT sum(recipients) FROM message_status), (SELECT count(*) FROM delivery_status)",
    );
    let v: Vec<&str> = counts.trim().split('|').collect();
    assert_eq!(v[0], v[1], "one message_status row per message");
    assert_eq!(v[2], v[3], "every recipient counted once");
    assert!(v[0].parse::<u32>().unwrap() > 15, "{counts}");
    // Every status and most outcomes occur in the fixtures.
    let outcomes = db.query("SELECT DISTINCT outcome FROM message_status ORDER BY 1");
    assert_eq!(
        outcomes.lines().collect::<Vec<_>>(),
        [
            "deferred",
            "discarded",
            "expired",
            "no_recipients",
            "partial",
            "rejected",
            "sent"
        ]
    );
}

#[test]
fn problem_recipients_rows() {
    let db = scenarios_db("views_problems");
    let query = "SELECT host, queue_id, arrived_at, recipient, recipient_domain, status, failure, \
                 dsn, attempts FROM problem_recipients ORDER BY host, arrived_at, recipient";
    assert_rows(
        "problem_recipients",
        &db.query(query),
        &expected_lines(&fixture("status/problem_recipients.expected")),
    );
    // A deferral is a problem once its message has waited an hour, not before.
    db.query(
        "INSERT INTO delivery_from (host, queue_id, arrived_at, last_seen_at, sender) VALUES
             ('mx9', 'AAAA000001', now() - interval '10 minutes', now(), 'a@example.org'),
             ('mx9', 'AAAA000002', now() - interval '2 hours', now(), 'a@example.org');
         INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, status, status_at, dsn)
         SELECT host, queue_id, arrived_at, 'b@Slow.Example', 'deferred', now(), '4.4.1'
         FROM delivery_from WHERE host = 'mx9'",
    );
    assert_eq!(
        db.query(
            "SELECT queue_id, recipient_domain, failure FROM problem_recipients WHERE host = 'mx9'"
        ),
        "AAAA000002|slow.example|soft\n"
    );
}

#[test]
fn recipient_domain_daily_rows() {
    let db = scenarios_db("views_domains");
    assert_rows(
        "recipient_domain_daily",
        &db.query(
            "SELECT day, recipient_domain, recipients, sent, deferred, bounced, expired, \
             rejected, discarded, deleted, hard_failures, attempts, avg_delay_sent, \
             max_delay_sent FROM recipient_domain_daily ORDER BY day, recipient_domain",
        ),
        &expected_lines(&fixture("status/recipient_domain_daily.expected")),
    );
    assert_eq!(
        db.query(
            "SELECT (SELECT sum(recipients) FROM recipient_domain_daily) = \
                    (SELECT count(*) FROM delivery_to)"
        ),
        "t\n"
    );
}

#[test]
fn noqueue_daily_rows() {
    let db = scenarios_db("views_noqueue");
    assert_rows(
        "noqueue_daily",
        &db.query(
            "SELECT day, host, client_addr, stage, action, code, dsn, reason_class, events, \
             recipients, senders, first_at, last_at, client_name, example_reason \
             FROM noqueue_daily ORDER BY day, host, client_addr, code",
        ),
        &expected_lines(&fixture("status/noqueue_daily.expected")),
    );
    // The classes of common Postfix refusals.
    assert_eq!(
        db.query(
            "SELECT noqueue_reason_class(r) FROM (VALUES
                 ('<x@y>: Recipient address rejected: User unknown in local recipient table'),
                 ('<x@y>: Recipient address rejected: Greylisted, see https://x'),
                 ('<bad>: Helo command rejected: need fully-qualified hostname'),
                 ('<a@b>: Sender address rejected: Domain not found'),
                 ('Client host [192.0.2.1] blocked using bl.spamcop.net'),
                 ('something else')) v(r)"
        ),
        "unknown_recipient\ngreylisted\nhelo\nsender\ndnsbl\nother\n"
    );
}

#[test]
fn daily_views_filter_through_their_indexes() {
    let db = scenarios_db("views_indexes");
    // The tables are tiny, so the planner would rightly scan them; forbidding that
    // shows which index a day filter can use.
    let plan = db.query(
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM recipient_domain_daily \
         WHERE day = '2025-03-14'",
    );
    let plan = common::with_parent_index_names(&db, &plan);
    assert!(plan.contains("delivery_from_utc_day"), "{plan}");
    let plan = db.query(
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM noqueue_daily \
         WHERE day >= utc_day(now()) - 7",
    );
    let plan = common::with_parent_index_names(&db, &plan);
    assert!(plan.contains("noqueue_utc_day"), "{plan}");
    let plan = db.query(
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM message_status \
         WHERE queue_id = '8D9E0F1A2B'",
    );
    let plan = common::with_parent_index_names(&db, &plan);
    assert!(plan.contains("delivery_from_pkey"), "{plan}");
    assert!(plan.contains("delivery_to_pkey"), "{plan}");
}

#[test]
fn reader_role_reads_the_views() {
    ensure_reader_role();
    let db = scenarios_db("views_reader");
    for view in [
        "delivery_status",
        "message_status",
        "problem_recipients",
        "recipient_domain_daily",
        "noqueue_daily",
    ] {
        let n = psql_may_fail(
            &db.url,
            &format!("SET ROLE {READER_ROLE}; SELECT count(*) > 0 FROM {view}"),
        )
        .unwrap();
        assert_eq!(n, "t\n", "{view} as {READER_ROLE}");
    }
    // Read-only: no writes through the role.
    let write = psql_may_fail(
        &db.url,
        &format!("SET ROLE {READER_ROLE}; DELETE FROM delivery_from"),
    );
    assert!(write.is_err(), "{READER_ROLE} could delete");
}

#[test]
fn every_query_in_the_docs_runs_and_finds_rows() {
    ensure_reader_role();
    let queries = common::doc_queries("sql", None);
    assert!(queries.len() >= 10, "only {} queries", queries.len());
    let db = TestDb::new("views_docs");
    let recent: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| *s != "new_year")
        .collect();
    load(&db, &recent);
    // Move every time so that the latest is a minute ago: the queries ask about
    // "the last two days" and "now".
    let offset = db.query(
        "SELECT now() - interval '1 minute' - greatest( \
             (SELECT max(last_seen_at) FROM delivery_from), \
             (SELECT max(status_at) FROM delivery_to), (SELECT max(logged_at) FROM noqueue))",
    );
    let statements = db.query(&format!(
        "SELECT string_agg(format('UPDATE %I SET %s', table_name, sets), '; ') FROM ( \
             SELECT table_name, \
                    string_agg(format('%1$I = %1$I + interval %2$L', column_name, '{}'), ', ') \
                        AS sets \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' \
               AND table_name IN ('delivery_from', 'delivery_to', 'noqueue') \
             GROUP BY table_name) t",
        offset.trim()
    ));
    common::create_months_for_shift(&db, &offset);
    db.query(&format!("BEGIN; {}; COMMIT", statements.trim()));
    assert_eq!(
        db.query("SELECT max(last_seen_at) > now() - interval '2 minutes' FROM delivery_from"),
        "t\n"
    );

    for (i, q) in queries.iter().enumerate() {
        let out = psql_may_fail(&db.url, &format!("SET ROLE {READER_ROLE};\n{q}"))
            .unwrap_or_else(|e| panic!("query {} of docs/queries.md failed: {e}\n{q}", i + 1));
        assert!(
            !out.trim().is_empty(),
            "query {} of docs/queries.md found no rows\n{q}",
            i + 1
        );
    }
}
