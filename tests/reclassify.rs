//! `pftrack reclassify`: a rules file that changes one classification changes exactly
//! the stored rows it concerns, in all three tables that carry a verdict; a second run
//! changes nothing; without the rules a further run restores the original rows byte
//! for byte. Also: `--dry-run` writes nothing, `--since` bounds the walk, and a row a
//! loader holds is skipped instead of waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ALL_ROWS, SCENARIOS, TestDb, backfill, fixture, run_ok};
use serde_json::Value;

/// User rules that change two classifications: unknown users and relay denials become
/// `policyviolation` (hard/soft stays the DSN's: every such row has one).
const RULES: &str = "\
rules:
  - name: unknown-is-policy
    reason: policyviolation
    text: 'user unknown'
  - name: relay-is-policy
    reason: policyviolation
    text: 'relay access denied'
";

/// The rows the rules concern, read before reclassifying: failures whose text matches
/// one of the two rules (the rules search the text case-insensitively).
const AFFECTED: &str = "\
SELECT 'attempt', concat_ws('/', arrived_at, host, queue_id, recipient, orig_recipient,
    attempt_at, status) FROM delivery_attempt
WHERE status IN ('deferred', 'bounced', 'expired', 'rejected')
  AND (response ~* 'user unknown' OR response ~* 'relay access denied')
UNION ALL
SELECT 'to', concat_ws('/', arrived_at, host, queue_id, recipient, orig_recipient)
FROM delivery_to
WHERE status IN ('deferred', 'bounced', 'expired', 'rejected')
  AND (response ~* 'user unknown' OR response ~* 'relay access denied')
UNION ALL
SELECT 'noqueue', concat_ws('/', host, logged_at, fingerprint) FROM noqueue
WHERE reason ~* 'user unknown' OR reason ~* 'relay access denied'
ORDER BY 1, 2";

/// Every row of the three tables as one JSON array per line: table, key, the row
/// without its verdict, reason, hard, rule, and the whole row as text.
const SNAPSHOT: &str = "\
SELECT json_build_array(k, key, rest, r, h, rule, whole)::text FROM (
    SELECT 'attempt' AS k, concat_ws('/', arrived_at, host, queue_id, recipient,
        orig_recipient, attempt_at, status) AS key,
        (to_jsonb(t) - 'failure_reason' - 'hard' - 'failure_rule')::text AS rest,
        failure_reason AS r, hard AS h, failure_rule AS rule, t::text AS whole
    FROM delivery_attempt t
    UNION ALL
    SELECT 'to', concat_ws('/', arrived_at, host, queue_id, recipient, orig_recipient),
        (to_jsonb(t) - 'failure_reason' - 'hard' - 'failure_rule')::text,
        failure_reason, hard, failure_rule, t::text
    FROM delivery_to t
    UNION ALL
    SELECT 'noqueue', concat_ws('/', host, logged_at, fingerprint),
        (to_jsonb(t) - 'failure_reason' - 'hard' - 'failure_rule')::text,
        failure_reason, hard, failure_rule, t::text
    FROM noqueue t
) s ORDER BY k, key";

/// One row of [`SNAPSHOT`].
#[derive(Debug, Clone, PartialEq)]
struct Snap {
    rest: String,
    reason: Value,
    hard: Value,
    rule: Value,
    whole: String,
}

/// (table, key) → row.
fn snapshot(db: &TestDb) -> BTreeMap<(String, String), Snap> {
    db.query(SNAPSHOT)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |i: usize| v[i].as_str().unwrap().to_owned();
            (
                (s(0), s(1)),
                Snap {
                    rest: s(2),
                    reason: v[3].clone(),
                    hard: v[4].clone(),
                    rule: v[5].clone(),
                    whole: s(6),
                },
            )
        })
        .collect()
}

fn loaded(label: &str) -> TestDb {
    let db = TestDb::new(label);
    for name in SCENARIOS {
        backfill(&db, &fixture(&format!("scenarios/{name}.log")), &[]);
    }
    db
}

/// `pftrack reclassify --json` with `args`; the summary.
fn reclassify(db: &TestDb, args: &[&str]) -> Value {
    let base = ["reclassify", "--database-url", &db.url, "--json"];
    let out = run_ok(&[&base[..], args].concat());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per table, the `field` of the summary.
fn per_table(summary: &Value, field: &str) -> BTreeMap<String, u64> {
    summary["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t[field].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Affected rows per summary table name.
fn affected_counts(affected: &[(String, String)]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = [
        ("delivery_attempt".to_owned(), 0),
        ("delivery_to".to_owned(), 0),
        ("noqueue".to_owned(), 0),
    ]
    .into_iter()
    .collect();
    for (table, _) in affected {
        let name = match table.as_str() {
            "attempt" => "delivery_attempt",
            "to" => "delivery_to",
            _ => "noqueue",
        };
        *counts.get_mut(name).unwrap() += 1;
    }
    counts
}

#[test]
fn a_rule_change_changes_exactly_the_affected_rows_and_back() {
    let db = loaded("reclassify_rules");
    let before = snapshot(&db);
    let before_all = db.query(ALL_ROWS);
    let affected: Vec<(String, String)> = db
        .query(AFFECTED)
        .lines()
        .map(|l| {
            let (t, k) = l.split_once('|').unwrap();
            (t.to_owned(), k.to_owned())
        })
        .collect();
    let expected = affected_counts(&affected);
    // The fixtures have such failures in every table, not yet policyviolation.
    assert!(expected.values().all(|&n| n > 0), "{expected:?}");
    for key in &affected {
        assert_ne!(before[key].reason, "policyviolation", "{key:?}");
    }

    // The rules through the configuration file, in pages of 2 rows (keyset pagination
    // across many pages).
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(
        &config,
        format!("classify:\n  rules: {}\n", rules.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let rules_path = rules.to_str().unwrap();

    // A dry run counts and writes nothing.
    let dry = reclassify(&db, &["-c", config, "--dry-run"]);
    assert_eq!(per_table(&dry, "differing"), expected, "{dry:#}");
    assert!(per_table(&dry, "changed").values().all(|&n| n == 0));
    assert_eq!(db.query(ALL_ROWS), before_all, "--dry-run wrote");

    let first = reclassify(&db, &["-c", config, "--batch", "2"]);
    assert_eq!(per_table(&first, "changed"), expected, "{first:#}");
    assert!(per_table(&first, "skipped").values().all(|&n| n == 0));
    let changes = first["changes"].as_array().unwrap();
    assert!(
        changes.iter().all(|c| c["new"] == "policyviolation"),
        "{first:#}"
    );
    assert_eq!(
        changes
            .iter()
            .map(|c| c["rows"].as_u64().unwrap())
            .sum::<u64>(),
        affected.len() as u64
    );

    let after = snapshot(&db);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "rows appeared or disappeared"
    );
    for (key, old) in &before {
        let new = &after[key];
        if affected.contains(key) {
            assert_eq!(new.rest, old.rest, "{key:?}: more than the verdict changed");
            assert_eq!(new.reason, "policyviolation", "{key:?}");
            assert_eq!(new.hard, old.hard, "{key:?}: the DSN decides hard/soft");
            let rule = new.rule.as_str().unwrap();
            assert!(
                rule.starts_with(&format!("{rules_path}:"))
                    && (rule.ends_with(":unknown-is-policy") || rule.ends_with(":relay-is-policy")),
                "{key:?}: {rule}"
            );
        } else {
            assert_eq!(new.whole, old.whole, "{key:?} changed but is not affected");
        }
    }
    // delivery_from is never touched.
    let from = |all: &str| {
        all.lines()
            .filter(|l| l.starts_with("from|"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(from(&db.query(ALL_ROWS)), from(&before_all));

    // Idempotent: the same rules again change nothing.
    let after_all = db.query(ALL_ROWS);
    let second = reclassify(&db, &["--rules", rules_path]);
    assert!(
        per_table(&second, "differing").values().all(|&n| n == 0),
        "{second:#}"
    );
    assert!(second["changes"].as_array().unwrap().is_empty());
    assert_eq!(db.query(ALL_ROWS), after_all, "a second run changed rows");

    // Rules removed: the built-in verdicts come back, every row exactly as loaded.
    let third = reclassify(&db, &[]);
    assert_eq!(per_table(&third, "changed"), expected, "{third:#}");
    assert_eq!(db.query(ALL_ROWS), before_all, "rows not restored");
    assert_eq!(snapshot(&db), before);
}

#[test]
fn since_bounds_the_walk() {
    let db = loaded("reclassify_since");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_str().unwrap();
    let before = db.query(ALL_ROWS);
    // Every fixture failure happened in 2025 (new_year: January 2026).
    let later = reclassify(&db, &["--rules", rules, "--since", "2026-06-01T00:00:00Z"]);
    assert!(
        per_table(&later, "examined").values().all(|&n| n == 0),
        "{later:#}"
    );
    assert_eq!(db.query(ALL_ROWS), before);
    // A time within the fixtures, one row per page: exactly the failures since then.
    let since = "2025-03-14T07:00:03Z";
    let within = reclassify(
        &db,
        &[
            "--rules",
            rules,
            "--since",
            since,
            "--dry-run",
            "--batch",
            "1",
        ],
    );
    let count = |sql: &str| -> u64 {
        db.query(&sql.replace("$since", since))
            .trim()
            .parse()
            .unwrap()
    };
    let failures = "status IN ('deferred', 'bounced', 'expired', 'rejected')";
    let expected: BTreeMap<String, u64> = [
        (
            "delivery_attempt".to_owned(),
            count(&format!(
                "SELECT count(*) FROM delivery_attempt WHERE {failures} AND attempt_at >= '$since'"
            )),
        ),
        (
            "delivery_to".to_owned(),
            count(&format!(
                "SELECT count(*) FROM delivery_to WHERE {failures} AND status_at >= '$since'"
            )),
        ),
        (
            "noqueue".to_owned(),
            count("SELECT count(*) FROM noqueue WHERE logged_at >= '$since'"),
        ),
    ]
    .into_iter()
    .collect();
    assert!(expected.values().all(|&n| n > 0), "{expected:?}");
    assert_eq!(per_table(&within, "examined"), expected, "{within:#}");
    let all = reclassify(&db, &["--rules", rules, "--since", "2000-01-01T00:00:00Z"]);
    assert!(
        per_table(&all, "changed").values().all(|&n| n > 0),
        "{all:#}"
    );
}

/// A row another transaction holds (a loader mid-batch) is skipped and counted, not
/// waited for; once released, the next run picks it up.
#[test]
fn a_locked_row_is_skipped_not_waited_for() {
    let db = loaded("reclassify_locked");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_str().unwrap();

    let mut holder = Command::new("psql")
        .arg(&db.url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(
        stdin,
        "BEGIN; SELECT 1 FROM noqueue WHERE reason ~* 'relay access denied' FOR UPDATE;\n\
         \\echo locked"
    )
    .unwrap();
    stdin.flush().unwrap();
    // Wait for the lock to be taken.
    let mut out = holder.stdout.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("locked") {
        assert!(Instant::now() < deadline, "psql did not take the lock");
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "psql ended");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    let started = Instant::now();
    let run = reclassify(&db, &["--rules", rules]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "reclassify waited for the lock"
    );
    let skipped = per_table(&run, "skipped");
    assert!(skipped["noqueue"] > 0, "{run:#}");
    assert_eq!(skipped["delivery_attempt"], 0);

    writeln!(stdin, "COMMIT;").unwrap();
    drop(stdin);
    holder.wait().unwrap();

    let again = reclassify(&db, &["--rules", rules]);
    assert_eq!(per_table(&again, "changed")["noqueue"], skipped["noqueue"]);
    let third = reclassify(&db, &["--rules", rules]);
    assert!(per_table(&third, "differing").values().all(|&n| n == 0));
}

/// The failure queries of docs/queries.md run and, but for the unclassified list (the
/// fixtures have no unknown wording), find rows: a rule makes the greylisting deferral
/// `ratelimited` (applied by reclassify), and times are moved so that it happened today.
#[test]
fn the_failure_queries_in_the_docs_find_rows() {
    let queries = common::doc_queries("postgresql", Some("## Why it failed"));
    assert_eq!(queries.len(), 6, "{queries:#?}");
    let db = loaded("reclassify_docs");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: greylisting-as-throttling\n    reason: ratelimited\n    \
         text: greylisted\n",
    )
    .unwrap();
    let run = reclassify(&db, &["--rules", rules.to_str().unwrap()]);
    assert_eq!(per_table(&run, "changed")["delivery_attempt"], 1, "{run:#}");

    // The throttled attempt one second into today (UTC), everything else as far.
    let offset = db.query(
        "SELECT date_trunc('day', now(), 'UTC') + interval '1 second' - attempt_at \
         FROM delivery_attempt WHERE failure_reason = 'ratelimited'",
    );
    let statements = db.query(&format!(
        "SELECT string_agg(format('UPDATE %I SET %s', table_name, sets), '; ') FROM ( \
             SELECT table_name, \
                    string_agg(format('%1$I = %1$I + interval %2$L', column_name, '{}'), ', ') \
                        AS sets \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND data_type = 'timestamp with time zone' \
               AND table_name IN ('delivery_from', 'delivery_to', 'delivery_attempt', \
                   'noqueue') \
             GROUP BY table_name) t",
        offset.trim()
    ));
    common::create_months_for_shift(&db, &offset);
    db.query(&format!("BEGIN; {}; COMMIT", statements.trim()));

    for (i, q) in queries.iter().enumerate() {
        let out = db.query(q);
        if q.contains("unclassified_failures") {
            continue;
        }
        assert!(
            !out.trim().is_empty(),
            "query {} of the section found no rows\n{q}",
            i + 1
        );
    }
    let throttled = db.query(&queries[0]);
    assert!(throttled.starts_with("mx.example.com|"), "{throttled}");
}
