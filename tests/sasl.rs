//! SASL authentication failures (issue 14): the `auth_failure` rows of a scenario log
//! with GeoIP enrichment from MaxMind's test databases, exactly once on re-run, on
//! another batching and on resume; hostile lines; absent and corrupt databases; the
//! `auth.bruteforce` event exactly once; the report's SASL section.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{TestDb, assert_rows, expected_lines, fixture, pftrack};

/// `auth_failure` in the order and columns of `fixtures/sasl/*.expected`.
const AUTH_ROWS: &str = "SELECT host, logged_at, occurrence, service, client_name, client_addr, \
    client_port, reverse_dns, sasl_method, sasl_username, reason, aborted, country, asn, as_org \
    FROM auth_failure ORDER BY logged_at, host, client_addr, occurrence, reason";

/// Every auth_failure row (without the transaction that stored it, V11) and every
/// event, to compare two databases exactly.
const AUTH_ALL: &str = "SELECT 'auth', (to_jsonb(a) - 'loaded_xid')::text FROM auth_failure a \
    UNION ALL SELECT 'event', e.id || ' ' || e.type || ' ' || e.occurred_at || ' ' || e.payload::text \
    FROM event_outbox e ORDER BY 1, 2";

/// The events: time, client, count, usernames, country, ASN.
const EVENT_ROWS: &str = "SELECT type, occurred_at, payload->'data'->>'host', \
    payload->'data'->>'client_addr', payload->'data'->>'count', payload->'data'->'usernames', \
    payload->'data'->>'country', payload->'data'->>'asn', payload->'data'->>'as_org' \
    FROM event_outbox ORDER BY occurred_at, id";

/// A configuration with the GeoIP databases `country` and `asn`, events since 2000 and
/// a brute-force rule of 3 failures within a minute.
fn config(dir: &Path, country: Option<&Path>, asn: Option<&Path>) -> PathBuf {
    let mut text = String::from(
        "events:\n  enabled: true\n  since: 2000-01-01T00:00:00Z\n\
         auth:\n  bruteforce:\n    threshold: 3\n    window: 1m\n",
    );
    if country.is_some() || asn.is_some() {
        text.push_str("geoip:\n");
    }
    if let Some(c) = country {
        text.push_str(&format!("  country: {}\n", c.display()));
    }
    if let Some(a) = asn {
        text.push_str(&format!("  asn: {}\n", a.display()));
    }
    let path = dir.join("pftrack.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn geoip(name: &str) -> PathBuf {
    fixture(&format!("geoip/{name}"))
}

/// `pftrack --config CONFIG backfill …`.
fn load(db: &TestDb, config: &Path, log: &Path, extra: &[&str]) -> std::process::Output {
    let config = config.to_str().unwrap();
    let log = log.to_str().unwrap();
    let out = pftrack()
        .args(["--config", config, "backfill", "--database-url", &db.url])
        .args(["--year", "2025", "--timezone", "UTC"])
        .args(extra)
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn scenario_rows_with_geoip_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        Some(&geoip("GeoLite2-Country-Test.mmdb")),
        Some(&geoip("GeoLite2-ASN-Test.mmdb")),
    );
    let log = fixture("sasl/sasl.log");
    let db = TestDb::new("sasl");
    load(&db, &cfg, &log, &[]);
    assert_rows(
        "auth_failure",
        &db.query(AUTH_ROWS),
        &expected_lines(&fixture("sasl/sasl.expected")),
    );
    assert_rows(
        "event_outbox",
        &db.query(EVENT_ROWS),
        &expected_lines(&fixture("sasl/sasl.events")),
    );

    // A re-run adds nothing.
    let before = db.query(AUTH_ALL);
    load(&db, &cfg, &log, &[]);
    assert_eq!(before, db.query(AUTH_ALL), "a re-run changed the database");

    // The same lines through another input (a copy with another first line): the
    // failures are there already, nothing is added.
    let copy = tempfile::tempdir().unwrap();
    let other = copy.path().join("copy.log");
    std::fs::write(
        &other,
        format!(
            "Mar 14 10:59:59 mx1 kernel: another first line\n{}",
            std::fs::read_to_string(&log).unwrap()
        ),
    )
    .unwrap();
    load(&db, &cfg, &other, &[]);
    assert_eq!(
        before,
        db.query(AUTH_ALL),
        "a second input of the same lines changed the database"
    );

    // One line per transaction: the same rows and events.
    let split = TestDb::new("sasl_split");
    load(&split, &cfg, &log, &["--batch-lines", "1"]);
    assert_eq!(before, split.query(AUTH_ALL), "batching changed the result");
}

#[test]
fn resume_at_every_line_gives_the_same_rows_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), None, Some(&geoip("GeoLite2-ASN-Test.mmdb")));
    let log = fixture("sasl/sasl.log");
    let whole = TestDb::new("sasl_whole");
    load(&whole, &cfg, &log, &[]);
    let expected = whole.query(AUTH_ALL);
    assert!(expected.contains("auth.bruteforce"), "{expected}");

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The file grows line by line (its first line, hence its identity, stays): each
    // load resumes where the previous one stopped, as after a kill.
    let db = TestDb::new("sasl_resume");
    let grown = dir.path().join("mail.log");
    for n in 1..=lines.len() {
        std::fs::write(&grown, format!("{}\n", lines[..n].join("\n"))).unwrap();
        load(&db, &cfg, &grown, &[]);
    }
    assert_eq!(
        expected,
        db.query(AUTH_ALL),
        "resuming changed the rows or the events"
    );
}

#[test]
fn absent_and_corrupt_databases_warn_and_load_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt-asn.mmdb");
    std::fs::write(&corrupt, b"this is not a MaxMind database").unwrap();
    let missing = dir.path().join("missing-country.mmdb");
    let cfg = config(dir.path(), Some(&missing), Some(&corrupt));
    let db = TestDb::new("sasl_nogeo");
    let out = load(&db, &cfg, &fixture("sasl/sasl.log"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One warning, naming the corrupt file; nothing about the absent one at warn level.
    assert_eq!(
        stderr.matches("corrupt-asn.mmdb").count(),
        1,
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("missing-country.mmdb"), "stderr: {stderr}");
    // Every failure stored, none enriched.
    assert_eq!(
        db.query("SELECT count(*), count(country), count(asn) FROM auth_failure"),
        "13|0|0\n"
    );
    // The wrong kind of database: also a warning naming it.
    let cfg = config(dir.path(), Some(&geoip("GeoLite2-ASN-Test.mmdb")), None);
    let db = TestDb::new("sasl_wrongkind");
    let out = load(&db, &cfg, &fixture("sasl/sasl.log"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GeoLite2-ASN-Test.mmdb") && stderr.contains("not a country"),
        "stderr: {stderr}"
    );
    assert_eq!(
        db.query("SELECT count(*), count(country) FROM auth_failure"),
        "13|0\n"
    );
}

#[test]
fn hostile_lines_never_stop_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hostile.log");
    let prefix = "Mar 14 12:00:00 mx1 postfix/smtpd[1]: warning: ";
    let mut bytes = Vec::new();
    let mut line = |s: &[u8]| {
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.extend_from_slice(s);
        bytes.push(b'\n');
    };
    line(b"unknown[192.0.2.1]: SASL LOGIN authentication failed: \xff\xfe binary \x00 reason");
    line(b"unknown[192.0.2.1: SASL LOGIN authentication failed: x");
    line(b"unknown[]: SASL LOGIN authentication failed: empty address");
    line(b"unknown[2001:db8::1]: SASL \xc3 authentication failed: x");
    line(b"unknown[192.0.2.1]: SASL  authentication failed: no method");
    line(b"unknown[192.0.2.1]: SASL LOGIN authentication failed: x, sasl_username=");
    // Just under the 1 MiB line limit: a reason of about 1 MB, cut when stored.
    let big = format!(
        "unknown[192.0.2.3]: SASL LOGIN authentication failed: {}, sasl_username={}",
        "A".repeat(1_000_000),
        "u".repeat(5000)
    );
    line(big.as_bytes());
    // NUL in the host name and in the syslog identifier.
    bytes.extend_from_slice(
        b"Mar 14 12:00:01 mx\x001 postfix/smtpd[1]: warning: unknown[198.51.100.1]: SASL LOGIN authentication failed: x\n\
          Mar 14 12:00:01 mx1 postfix/sm\x00tpd[1]: warning: unknown[198.51.100.2]: SASL LOGIN authentication failed: y\n",
    );
    std::fs::write(&log, &bytes).unwrap();
    let cfg = config(dir.path(), None, None);
    let db = TestDb::new("sasl_hostile");
    load(&db, &cfg, &log, &[]);
    assert_eq!(
        db.query(
            "SELECT host, service FROM auth_failure WHERE client_addr LIKE '198.51.100.%' \
             ORDER BY client_addr"
        ),
        "mx\u{fffd}1|postfix/smtpd\nmx1|postfix/sm\u{fffd}tpd\n"
    );
    let rows = db.query(
        "SELECT client_addr, sasl_method, length(reason), length(sasl_username) \
         FROM auth_failure WHERE client_addr NOT LIKE '198.51.100.%' \
         ORDER BY client_addr, length(reason)",
    );
    assert_eq!(
        rows,
        // `unknown[]`: an empty address; invalid UTF-8 and NUL as U+FFFD; an empty
        // username; the 1 MB reason and 5000-byte username cut to their limits. The
        // line without a method is not a failure (it stays an unknown warning).
        "|LOGIN|13|\n192.0.2.1|LOGIN|1|0\n192.0.2.1|LOGIN|18|\n192.0.2.3|LOGIN|1024|256\n\
         2001:db8::1|\u{fffd}|1|\n",
        "{rows}"
    );
}

#[test]
fn report_section_and_report_auth() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        Some(&geoip("GeoLite2-Country-Test.mmdb")),
        Some(&geoip("GeoLite2-ASN-Test.mmdb")),
    );
    let db = TestDb::new("sasl_report");
    load(&db, &cfg, &fixture("sasl/sasl.log"), &[]);
    let report = |extra: &[&str]| {
        let out = common::run_ok(
            &[
                &[
                    "report",
                    "--database-url",
                    &db.url,
                    "-d",
                    "2025-03-13..2025-03-14",
                ][..],
                extra,
            ]
            .concat(),
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // `--auth --format json`: the figures of the fixture, the last day and the period.
    let json: serde_json::Value =
        serde_json::from_str(&report(&["--auth", "--format", "json", "--top", "3"])).unwrap();
    let period = &json["auth"]["period"];
    assert_eq!(period["failures"], 13);
    assert_eq!(period["aborted"], 1);
    assert_eq!(period["clients"], 5);
    assert_eq!(period["usernames"], 4);
    let top = &period["top_clients"][0];
    assert_eq!(top["client_addr"], "1.128.0.1");
    assert_eq!(top["failures"], 9);
    assert_eq!(top["usernames"], 3);
    assert_eq!(top["asn"], 1221);
    assert_eq!(top["as_org"], "Telstra Pty Ltd");
    assert_eq!(period["top_clients"].as_array().unwrap().len(), 3);
    assert_eq!(period["top_usernames"][0]["name"], "admin");
    assert_eq!(period["top_usernames"][0]["failures"], 3);
    assert_eq!(period["top_countries"][0]["name"], "unknown");
    assert_eq!(period["top_countries"][1]["name"], "GB");
    assert_eq!(period["top_asns"][0]["asn"], 1221);
    assert_eq!(period["methods"][0]["name"], "LOGIN");
    assert_eq!(period["methods"][0]["failures"], 9);
    // The period's last day holds every failure; the day before none.
    assert_eq!(json["auth"]["last_day"]["failures"], 13);
    assert_eq!(
        json["auth"]["last_day"]["since"], "2025-03-14T00:00:00Z",
        "{json}"
    );
    // Only mx2.
    let mx2: serde_json::Value =
        serde_json::from_str(&report(&["--auth", "--format", "json", "--host", "mx2"])).unwrap();
    assert_eq!(mx2["auth"]["period"]["failures"], 1);

    // The whole report carries the section in every format.
    let text = report(&[]);
    assert!(text.contains("SASL Authentication Failures"), "{text}");
    assert!(
        text.contains("1.128.0.1") && text.contains("AS1221 Telstra Pty Ltd"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report(&["--format", "json"])).unwrap();
    assert_eq!(json["auth"]["period"]["failures"], 13);
    assert!(json["grand_totals"].is_object());
    let html = report(&["--format", "html"]);
    assert!(
        html.contains("<h2>SASL Authentication Failures</h2>"),
        "{html}"
    );
    assert!(html.contains("AS1221 Telstra Pty Ltd"));
    let html = report(&["--auth", "--format", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</body></html>\n"));
    assert!(!html.contains("Grand Totals"));

    // The web UI's view agrees.
    assert_eq!(
        db.query(
            "SELECT day, client_addr, sum(failures), sum(aborted), max(usernames), min(country), \
             min(asn) FROM auth_failures_daily WHERE host = 'mx1' GROUP BY 1, 2 ORDER BY 3 DESC, 2"
        ),
        // (per SASL method: LOGIN tried admin and root, PLAIN info@example.com)
        "2025-03-14|1.128.0.1|8|0|2||1221\n\
         2025-03-14|192.0.2.2|1|0|1||\n\
         2025-03-14|2.125.160.216|1|0|0|GB|\n\
         2025-03-14|2001:1700::5|1|1|0||6730\n\
         2025-03-14|89.160.20.115|1|0|0|SE|29518\n"
    );
}

/// A deterministic log of `lines` lines: bursts of SASL failures from 40 client
/// addresses (identical lines within one second among them), with smtpd's connect and
/// disconnect lines around them, over several hours.
fn attack_log(dir: &Path, lines: usize) -> PathBuf {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let users = ["admin", "info", "test", "root", "sales", "office"];
    let mut t: i64 = 0;
    let mut out = String::new();
    let mut n = 0;
    while n < lines {
        let r = next();
        t += (r % 3) as i64;
        let stamp = chrono::DateTime::from_timestamp(1_741_910_400 + t, 0)
            .unwrap()
            .format("%b %e %H:%M:%S");
        let c = (r >> 8) % 40;
        let addr = match c % 4 {
            0 => format!("1.128.{}.{}", c, 1 + c),
            1 => format!("12.81.92.{c}"),
            2 => format!("2001:1700::{c:x}"),
            _ => format!("203.0.113.{c}"),
        };
        let user = users[((r >> 16) % users.len() as u64) as usize];
        let service = if c % 3 == 0 { "submission" } else { "smtps" };
        let failure = format!(
            "{stamp} mx{} postfix/{service}/smtpd[{}]: warning: unknown[{addr}]: SASL LOGIN authentication failed: (reason unavailable), sasl_username={user}\n",
            1 + c % 2,
            100 + c
        );
        match (r >> 24) % 10 {
            0 => out.push_str(&format!(
                "{stamp} mx{} postfix/{service}/smtpd[{}]: connect from unknown[{addr}]\n",
                1 + c % 2,
                100 + c
            )),
            // The same failure twice in one second.
            1 => {
                out.push_str(&failure);
                out.push_str(&failure);
                n += 1;
            }
            _ => out.push_str(&failure),
        }
        n += 1;
    }
    let path = dir.join("attack.log");
    std::fs::write(&path, out).unwrap();
    path
}

/// A configuration of events with a brute-force rule of 5 within a minute.
fn attack_config(dir: &Path) -> PathBuf {
    let path = dir.join("attack.yaml");
    std::fs::write(
        &path,
        format!(
            "events:\n  enabled: true\n  since: 2000-01-01T00:00:00Z\n\
             auth:\n  bruteforce:\n    threshold: 5\n    window: 1m\n\
             geoip:\n  asn: {}\n",
            geoip("GeoLite2-ASN-Test.mmdb").display()
        ),
    )
    .unwrap();
    path
}

fn backfill_cmd(db: &TestDb, config: &Path, log: &Path) -> std::process::Command {
    let mut cmd = pftrack();
    cmd.args(["--config", config.to_str().unwrap()])
        .args(["backfill", "--database-url", &db.url])
        .args([
            "--year",
            "2025",
            "--timezone",
            "UTC",
            "--batch-lines",
            "300",
        ])
        .arg(log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

#[test]
fn kill_9_and_two_loaders_leave_every_failure_and_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = attack_log(dir.path(), 20_000);
    let cfg = attack_config(dir.path());

    let clean = TestDb::new("sasl_attack_clean");
    let started = std::time::Instant::now();
    assert!(backfill_cmd(&clean, &cfg, &log).status().unwrap().success());
    let clean_run = started.elapsed();
    let expected = clean.query(AUTH_ALL);
    let failures = expected.lines().filter(|l| l.starts_with("auth|")).count();
    let events = expected.lines().filter(|l| l.starts_with("event|")).count();
    assert!(failures > 15_000, "{failures} failures");
    assert!(events > 50, "{events} events");

    // Killed (SIGKILL) at spread moments, then run to the end.
    let killed = TestDb::new("sasl_attack_killed");
    let mut kills = 0;
    for i in 0..5 {
        let mut child = backfill_cmd(&killed, &cfg, &log).spawn().unwrap();
        std::thread::sleep(clean_run.mul_f64(0.1 + 0.15 * f64::from(i)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills > 0,
        "no run was killed: the clean run took {clean_run:?}"
    );
    assert!(
        backfill_cmd(&killed, &cfg, &log)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        expected == killed.query(AUTH_ALL),
        "after {kills} kills the failures or events differ"
    );

    // Two loaders of the same file at once.
    let two = TestDb::new("sasl_attack_two");
    let mut a = backfill_cmd(&two, &cfg, &log).spawn().unwrap();
    let mut b = backfill_cmd(&two, &cfg, &log).spawn().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
    // One of them may have given way (the input was busy): finish the load.
    assert!(backfill_cmd(&two, &cfg, &log).status().unwrap().success());
    assert!(
        expected == two.query(AUTH_ALL),
        "two loaders stored other failures or events"
    );
}
