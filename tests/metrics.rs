//! `/metrics` of `pftrack run` (issue 15): a generated Postfix log written into the
//! live journal under this test's own identifiers (as tests/follow.rs does), followed
//! by the daemon with `metrics.listen`; the scrape is compared with the database and
//! with the lines written, checked by `promtool check metrics`, and scraped by a real
//! Prometheus whose PromQL answer must match. `promtool check rules` checks
//! docs/prometheus-alerts.yml, and every served metric must have its row in
//! docs/metrics.md.
//!
//! Needs root (journald, `/dev/log`): without a live journal it prints `SKIPPED …` and
//! passes unless `PFTRACK_REQUIRE_JOURNAL=1`. Without promtool/prometheus those parts
//! print `SKIPPED …` unless `PFTRACK_REQUIRE_PROMTOOL=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{TestDb, pftrack};
use pftrack_loggen::{GenConfig, StampFormat, generate};

/// How long the daemon may take to read and store everything (debug build).
const CATCH_UP: Duration = Duration::from_secs(90);

/// True when a live journald with `/dev/log` is there (tests/follow.rs's check).
fn journal_available(test: &str) -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let state = AVAILABLE.get_or_init(|| {
        let harness = common::repo().join("scripts/journald-harness");
        let out = Command::new("sh")
            .arg(&harness)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", harness.display()))?;
        if !out.status.success() {
            return Err(format!(
                "journald-harness start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        UnixDatagram::unbound()
            .and_then(|s| s.connect("/dev/log"))
            .map_err(|e| format!("cannot connect to /dev/log: {e}"))?;
        Ok(())
    });
    match state {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("PFTRACK_REQUIRE_JOURNAL").as_deref() != Ok("1"),
                "{test}: no live journal ({why}) and PFTRACK_REQUIRE_JOURNAL=1"
            );
            eprintln!("SKIPPED {test}: no live journal: {why}");
            false
        }
    }
}

/// True when `tool` is installed; else SKIPPED (a failure with
/// `PFTRACK_REQUIRE_PROMTOOL=1`).
fn have(tool: &str, what: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("PFTRACK_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "{what}: {tool} is not installed and PFTRACK_REQUIRE_PROMTOOL=1"
        );
        eprintln!("SKIPPED {what}: {tool} is not installed (Debian package prometheus)");
    }
    found
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` from 127.0.0.1:`port`; the status code and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_accept(port, path, "*/*")
}

/// `GET path` with `Accept: accept`.
fn http_get_accept(port: u16, path: &str, accept: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Prometheus answers chunked only to HTTP/1.1 clients that ask for it; with
    // `Connection: close` and a small body it sends Content-Length.
    Ok((code, body.to_owned()))
}

/// The value of the sample `series` (exact name and labels) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(series)?.strip_prefix(' ')?;
        v.split(' ').next()?.parse().ok()
    })
}

/// The sum of every series of `name` in `text`.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `pftrack run` child, killed when dropped.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus child, killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `lines` (identifier, pid, message) to journald through `/dev/log`.
fn write_journal(lines: &[(String, u32, String)]) {
    let socket = UnixDatagram::unbound().unwrap();
    socket.connect("/dev/log").unwrap();
    for (ident, pid, message) in lines {
        let datagram = format!("<22>{ident}[{pid}]: {message}");
        let mut tries = 0;
        while let Err(e) = socket.send(datagram.as_bytes()) {
            tries += 1;
            assert!(tries < 1000, "cannot write to /dev/log: {e}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn scrape_matches_database_promtool_and_prometheus() {
    let test = "scrape_matches_database_promtool_and_prometheus";
    if !journal_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stem = format!("postfix-t{}-metrics", std::process::id());
    let mut text = Vec::new();
    let gen_config = GenConfig {
        seed: 15,
        lines: 3000,
        format: StampFormat::Classic,
        messages_per_second: 20.0,
        ..GenConfig::default()
    };
    generate(&gen_config, &mut text).unwrap();
    let lines: Vec<(String, u32, String)> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| {
            // "Mar 14 06:25:00 mx1 postfix/smtpd[14543]: message"
            let rest = l.splitn(5, ' ').nth(4).unwrap();
            let (tag, message) = rest.split_once(": ").unwrap();
            let (ident, pid) = tag.trim_end_matches(']').split_once('[').unwrap();
            let daemon_part = ident.split_once('/').map_or(ident, |(_, d)| d);
            (
                format!("{stem}/{daemon_part}"),
                pid.parse().unwrap(),
                message.to_owned(),
            )
        })
        .collect();
    // What the lines themselves say: smtp deliveries with status=sent.
    let sent_by_smtp = lines
        .iter()
        .filter(|(i, _, m)| i.ends_with("/smtp") && m.contains(", status=sent "))
        .count() as f64;
    assert!(
        sent_by_smtp > 10.0,
        "the generated log has too few smtp deliveries"
    );

    // Every postfix_* series carries the instance: the syslog name before `/daemon`.
    let svc = format!("service=\"{stem}\"");
    let port = free_port();
    let since = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(
        &config,
        format!(
            "journal:\n  identifiers: [\"{stem}/\"]\n  since: \"{}\"\n\
             metrics:\n  listen: \"127.0.0.1:{port}\"\n  database_interval: 1s\n",
            since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
    )
    .unwrap();
    let db = TestDb::new("metrics");
    let log = dir.path().join("daemon.log");
    let child = pftrack()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--database-url",
        ])
        .arg(&db.url)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Daemon { child, log };

    // The endpoint answers before anything is written.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Ok((200, body)) = http_get(port, "/metrics") {
            break body;
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("the daemon exited ({status})\n{}", daemon.log());
        }
        assert!(
            Instant::now() < deadline,
            "no /metrics within 60 s\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // (An instance's postfix_* series appear with its first record, all at zero then.)
    assert_eq!(
        sample(&first, "pftrack_records_postfix_total{input=\"journal\"}"),
        Some(0.0),
        "{first}"
    );
    assert_eq!(http_get(port, "/").unwrap().0, 404);

    write_journal(&lines);

    // Every line read, then the database and the counters agree.
    let sent_sql = "SELECT count(*) FROM delivery_attempt \
                    WHERE status = 'sent' AND relay ~ '\\]:[0-9]+$'";
    let deadline = Instant::now() + CATCH_UP;
    let body = loop {
        let (code, body) = http_get(port, "/metrics").unwrap();
        assert_eq!(code, 200);
        let read = sample(&body, "pftrack_records_postfix_total{input=\"journal\"}");
        let served = sample(
            &body,
            &format!("postfix_smtp_messages_processed_total{{status=\"sent\",{svc}}}"),
        );
        let stored: f64 = db.query(sent_sql).trim().parse().unwrap();
        // The writer tells the metrics of a commit just after the database has it.
        let committed = sample(&body, "pftrack_batches_committed_total").is_some_and(|b| b >= 1.0);
        if read == Some(lines.len() as f64) && served == Some(stored) && committed {
            break body;
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("the daemon exited ({status})\n{}", daemon.log());
        }
        assert!(
            Instant::now() < deadline,
            "not caught up within {CATCH_UP:?}: read {read:?} of {}, served {served:?}, \
             stored {stored}\n{body}\n{}",
            lines.len(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        sample(
            &body,
            &format!("postfix_smtp_messages_processed_total{{status=\"sent\",{svc}}}")
        ),
        Some(sent_by_smtp),
        "the counter differs from the smtp status=sent lines written"
    );
    assert_eq!(
        sample(&body, "pftrack_records_unknown_total{input=\"journal\"}"),
        Some(0.0)
    );
    let connects = lines
        .iter()
        .filter(|(i, _, m)| i.ends_with("/smtpd") && m.starts_with("connect from "))
        .count() as f64;
    assert_eq!(
        Some(sum(&body, "postfix_smtpd_connects_total")),
        Some(connects)
    );
    // `postfix/submission/smtpd` is an instance of its own.
    let submission = format!("service=\"{stem}/submission\"");
    assert!(
        sample(
            &body,
            &format!("postfix_smtpd_connects_total{{{submission}}}")
        )
        .is_some_and(|n| n > 0.0),
        "{body}"
    );
    assert!(
        sample(&body, &format!("postfix_smtpd_connects_total{{{svc}}}")).is_some_and(|n| n > 0.0)
    );
    let batches = sample(&body, "pftrack_batches_committed_total").unwrap();
    assert!(batches >= 1.0, "{body}");
    // Observed just before the commit is counted.
    assert!(
        sample(&body, "pftrack_batch_commit_duration_seconds_count").is_some_and(|n| n >= batches),
        "{body}"
    );

    // The database gauges are refreshed every second.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http_get(port, "/metrics").unwrap();
        let deferred: f64 = db
            .query(
                "SELECT count(*) FROM delivery_to WHERE status = 'deferred' \
                 AND arrived_at >= now() - interval '7 days'",
            )
            .trim()
            .parse()
            .unwrap();
        let refreshed = sample(&body, "pftrack_database_gauges_refreshed_timestamp_seconds")
            .is_some_and(|t| t > 0.0);
        if refreshed && sample(&body, "pftrack_recipients_deferred") == Some(deferred) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "database gauges not refreshed (deferred {deferred})\n{body}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // OpenMetrics for clients that ask for it (Prometheus does): the same samples.
    let (code, open) = http_get_accept(
        port,
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(open.contains("# UNIT postfix_smtp_delivery_delay_seconds seconds"));
    assert_eq!(
        Some(sum(&open, "postfix_smtpd_connects_total")),
        Some(connects)
    );

    // No label value from the log's free text (the instance's syslog name is the one
    // label value taken from the log, bounded in number).
    for needle in ["@", "example"] {
        assert!(
            !body.contains(needle),
            "{needle:?} in the exposition:\n{body}"
        );
    }
    documented(&body);

    // promtool accepts the exposition. (Debian 12's promtool 2.42 lints with the classic
    // text parser, so it is given the classic format: on OpenMetrics it reports every
    // counter as lacking help, `# HELP x` not being `# HELP x_total` there.)
    if have("promtool", "promtool check metrics") {
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let rules = common::repo().join("docs/prometheus-alerts.yml");
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&rules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check rules:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A real Prometheus scrapes pftrack; PromQL returns the counter.
    if have("prometheus", "Prometheus scrape") {
        prometheus_agrees(dir.path(), port, sent_by_smtp);
    }
    drop(daemon);
}

/// Starts Prometheus scraping 127.0.0.1:`port` every second and waits until
/// `postfix_smtp_messages_processed_total{status="sent"}` answers `expected`.
fn prometheus_agrees(dir: &Path, port: u16, expected: f64) {
    let web = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [\"{}\"]\n\
             scrape_configs:\n  - job_name: pftrack\n    static_configs:\n\
             \x20     - targets: [\"127.0.0.1:{port}\"]\n",
            common::repo()
                .join("docs/prometheus-alerts.yml")
                .canonicalize()
                .unwrap()
                .display()
        ),
    )
    .unwrap();
    let log = dir.join("prometheus.log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut prometheus = Prometheus(child);
    let query = "/api/v1/query?query=\
                 postfix_smtp_messages_processed_total%7Bstatus%3D%22sent%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = http_get(web, query) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let got = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok());
            if got == Some(expected) {
                let job = &v["data"]["result"][0]["metric"]["job"];
                assert_eq!(job, "pftrack");
                break;
            }
        }
        if let Some(status) = prometheus.0.try_wait().unwrap() {
            panic!(
                "prometheus exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not return {expected} within 60 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every query of the Grafana dashboard is valid PromQL on these metrics.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("docs/grafana-pftrack.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    for target in panels.iter().flat_map(|p| p["targets"].as_array().unwrap()) {
        let expr = target["expr"].as_str().unwrap();
        let concrete = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        let (code, body) = http_get(
            web,
            &format!("/api/v1/query?query={}", url_encode(&concrete)),
        )
        .unwrap();
        assert!(
            code == 200 && body.contains("\"status\":\"success\""),
            "dashboard query {expr}: {code} {body}"
        );
    }
}

/// Percent-encoding of a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every metric family in `exposition` has its row in docs/metrics.md.
fn documented(exposition: &str) {
    let doc = std::fs::read_to_string(common::repo().join("docs/metrics.md")).unwrap();
    let mut missing = Vec::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            let kind = rest.split(' ').nth(1).unwrap_or("");
            let served = if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if !doc.contains(&format!("`{served}`")) {
                missing.push(served);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/metrics.md lacks rows for {missing:?}"
    );
}
