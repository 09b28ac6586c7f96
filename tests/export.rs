//! `pftrack export` (issue 14): accounting records.
//!
//! * The three formats against expected rows (`fixtures/export/expected.tsv`, the
//!   scenario logs plus `fixtures/export/hostile.log` with tabs, quotes, commas,
//!   backslashes and invalid UTF-8, and a response given line breaks in the database):
//!   SASL failures of `fixtures/sasl/sasl.log` too; the TSV exactly; the CSV read back by Python's `csv` module (an RFC 4180 reader
//!   written by others) and the JSONL by serde_json must give the same rows.
//! * Field and type selection, haraka's field names, `-d`, `--file`.
//! * Incremental export: each record exactly once across runs, records loaded after an
//!   export (old-dated ones from a later backfill too, and a NOQUEUE count raised by a
//!   later load) in the next one; kill -9 at random points of several runs, then a
//!   complete run: the union of all files is the one-off export of everything; the
//!   states a crash can leave (a tail after the last commit, a file never recorded, a
//!   file recorded as archived but not moved) repaired; rotation by size and by
//!   interval; one exporter per directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{SCENARIOS, TestDb, backfill, fixture, pftrack, run_ok};

/// The whole stored history, whatever the fixtures' dates.
const ALL: [&str; 4] = [
    "--since",
    "2000-01-01T00:00:00Z",
    "--until",
    "2100-01-01T00:00:00Z",
];

fn export(db: &TestDb, extra: &[&str]) -> String {
    let args = [&["export", "--database-url", &db.url][..], extra].concat();
    String::from_utf8(run_ok(&args).stdout).expect("exports are UTF-8")
}

/// A database holding every scenario and the hostile fixture, one response with line
/// breaks (no log line can carry one; the journal can).
fn loaded() -> TestDb {
    let db = TestDb::new("export_formats");
    for s in SCENARIOS {
        backfill(&db, &fixture(&format!("scenarios/{s}.log")), &[]);
    }
    backfill(&db, &fixture("export/hostile.log"), &[]);
    backfill(&db, &fixture("sasl/sasl.log"), &[]);
    db.query(
        "UPDATE delivery_attempt SET response = response || E'\\nsecond line\\r'
         WHERE recipient = 'x@example.net'",
    );
    db
}

/// Undo the four TSV escapes of a field.
fn tsv_unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            other => panic!("bad escape \\{other:?} in {field:?}"),
        }
    }
    out
}

fn tsv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split('\t').map(tsv_unescape).collect())
        .collect()
}

/// CSV read by Python's csv module (RFC 4180 dialect: CRLF, doubled quotes).
fn csv_rows_by_python(text: &str) -> Vec<Vec<String>> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv, io, json, sys\n\
             data = sys.stdin.buffer.read().decode('utf-8')\n\
             assert data.endswith('\\r\\n'), 'records end with CRLF'\n\
             rows = list(csv.reader(io.StringIO(data, newline=''), strict=True))\n\
             json.dump(rows, sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/setup installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python's csv reader refused the CSV");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn jsonl_rows(text: &str, names: &[String]) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| {
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            let keys: Vec<&String> = v.keys().collect();
            assert_eq!(keys.len(), names.len(), "{l}");
            names
                .iter()
                .map(|n| match &v[n] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn formats_agree_with_the_expected_rows() {
    let db = loaded();
    let tsv = export(&db, &ALL);
    let expected = std::fs::read_to_string(fixture("export/expected.tsv")).unwrap();
    if tsv != expected {
        let out = common::repo().join("target/test-artifacts/export-got.tsv");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, &tsv).unwrap();
        panic!(
            "the TSV export differs from fixtures/export/expected.tsv (got: {})",
            out.display()
        );
    }
    // Each record is one line: the escapes keep tabs and line breaks out.
    let rows = tsv_rows(&tsv);
    let names = rows[0].clone();
    assert!(rows.iter().all(|r| r.len() == names.len()));
    let hostile: Vec<&Vec<String>> = rows.iter().filter(|r| r[7] == "x@example.net").collect();
    assert_eq!(hostile.len(), 1);
    let response = &hostile[0][17];
    for part in [
        "\"quoted\", comma,\ttab\\backslash \u{fffd}",
        "\nsecond line\r",
    ] {
        assert!(response.contains(part), "{response:?} lacks {part:?}");
    }

    let csv = export(&db, &[&ALL[..], &["--format", "csv"]].concat());
    assert_eq!(csv_rows_by_python(&csv), rows, "CSV read by Python");

    let jsonl = export(&db, &[&ALL[..], &["--format", "jsonl"]].concat());
    assert_eq!(jsonl_rows(&jsonl, &names), rows[1..], "JSONL");
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["size"].is_null() || v["size"].is_i64());
        assert!(v["hard"].is_null() || v["hard"].is_boolean());
        assert!(v["delay"].is_null() || v["delay"].is_f64() || v["delay"].is_i64());
    }
}

#[test]
fn fields_types_and_periods_select() {
    let db = TestDb::new("export_select");
    for s in ["deferred_then_expired", "multi_recipient", "noqueue"] {
        backfill(&db, &fixture(&format!("scenarios/{s}.log")), &[]);
    }
    // haraka's names select the same fields as ours.
    let ours = export(
        &db,
        &[
            &ALL[..],
            &[
                "--types",
                "bounced,rejected",
                "--fields",
                "type,logged_at,recipient,dsn,reason,client_addr,relay_addr",
            ],
        ]
        .concat(),
    );
    let haraka = export(
        &db,
        &[
            &ALL[..],
            &[
                "--types",
                "rejected,bounced",
                "--fields",
                "type,timeLogged,rcpt,dsnStatus,bounceCat,srcIp,destIp",
            ],
        ]
        .concat(),
    );
    assert_eq!(ours, haraka);
    let expected = "type\tlogged_at\trecipient\tdsn\treason\tclient_addr\trelay_addr\n\
bounced\t2025-03-14T07:00:03Z\terin@example.org\t5.1.1\tuserunknown\t198.51.100.20\t192.0.2.10\n\
rejected\t2025-03-14T11:00:01Z\tvictim@example.net\t5.7.1\tnorelaying\t203.0.113.50\t\n\
rejected\t2025-03-14T11:00:01Z\tvictim@example.net\t5.7.1\tnorelaying\t203.0.113.50\t\n\
rejected\t2025-03-14T11:00:02Z\tbob@mx1.example.com\t4.7.1\trequireptr\t203.0.113.50\t\n\
rejected\t2025-03-14T11:05:01Z\tbob@mx1.example.com\t5.7.1\tblocked\t198.51.100.66\t\n\
bounced\t2025-03-15T08:00:40Z\tx@dead.example.net\t4.4.1\texpired\t192.0.2.10\t\n";
    assert_eq!(ours, expected);

    // -d: one day; the other days' deferrals of the expired message are outside.
    let day = export(
        &db,
        &[
            "-d",
            "2025-03-12",
            "--fields",
            "type,logged_at,queue_id,queued_at",
        ],
    );
    assert_eq!(
        day,
        "type\tlogged_at\tqueue_id\tqueued_at\n\
deferred\t2025-03-12T08:00:30Z\t5A1B2C3D4E\t2025-03-10T08:00:00Z\n"
    );

    // --file: the same bytes, written whole.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    let args = [
        &["export", "--database-url", &db.url, "--format", "csv"][..],
        &ALL,
        &["--file", file.to_str().unwrap()],
    ]
    .concat();
    let out = run_ok(&args);
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        export(&db, &[&ALL[..], &["--format", "csv"]].concat())
    );

    // Clear errors for bad arguments.
    for (args, message) in [
        (&["--fields", "type,nope"][..], "unknown field \"nope\""),
        (&["--types", "sent"][..], "unknown record type \"sent\""),
        (&["--format", "xml"][..], "unknown format \"xml\""),
        (&["--since", "yesterday"][..], "expected an RFC 3339 time"),
    ] {
        let out = pftrack()
            .args([&["export", "--database-url", &db.url][..], args].concat())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// Every record line of every file of an export directory (open and archived), each
/// file's header checked and left out.
fn exported_lines(dir: &Path, header: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for d in [dir.to_path_buf(), dir.join("archive")] {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let ours = path
                .extension()
                .is_some_and(|e| e == "tsv" || e == "csv" || e == "jsonl");
            if path.is_dir() || !ours {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut it = text.lines();
            assert_eq!(it.next(), Some(header), "{}", path.display());
            assert!(text.ends_with('\n'), "{} ends mid-line", path.display());
            lines.extend(it.map(str::to_owned));
        }
    }
    lines.sort();
    lines
}

/// The one-off export of everything, header left out, sorted.
fn all_lines(db: &TestDb) -> (String, Vec<String>) {
    let text = export(db, &ALL);
    let mut it = text.lines();
    let header = it.next().unwrap().to_owned();
    let mut lines: Vec<String> = it.map(str::to_owned).collect();
    lines.sort();
    (header, lines)
}

fn export_dir(db: &TestDb, dir: &Path, extra: &[&str]) -> String {
    let args = [
        &[
            "export",
            "--database-url",
            &db.url,
            "--output",
            dir.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    String::from_utf8(run_ok(&args).stderr).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "archive")
        .collect();
    names.sort();
    names
}

/// A generated log: `lines` lines from `start`, hosts `hosts`.
fn generated(
    dir: &Path,
    name: &str,
    seed: u64,
    lines: u64,
    start: &str,
    hosts: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let config = pftrack_loggen::GenConfig {
        seed,
        lines,
        start: chrono::NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M:%S").unwrap(),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        messages_per_second: 20.0,
        ..pftrack_loggen::GenConfig::default()
    };
    pftrack_loggen::generate(&config, &mut file).unwrap();
    file.flush().unwrap();
    path
}

#[test]
fn incremental_exports_each_record_once() {
    let db = TestDb::new("export_incremental");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    backfill(&db, &fixture("scenarios/single_delivery.log"), &[]);
    backfill(&db, &fixture("scenarios/multi_recipient.log"), &[]);
    let first = export_dir(&db, &dir, &[]);
    // single_delivery: 1 delivered; multi_recipient: 2 delivered, 1 bounced, and the
    // non-delivery notification delivered.
    assert!(
        first.contains("exported 5 records (4 delivered, 0 deferred, 1 bounced"),
        "{first}"
    );
    // Nothing new: nothing written.
    let again = export_dir(&db, &dir, &[]);
    assert!(again.contains("exported 0 records"), "{again}");
    // haraka's names: a prefix per type, the opening time.
    let names = files_in(&dir);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("d.") && n.ends_with(".tsv"))
    );
    assert!(names.iter().any(|n| n.starts_with("b.")));

    // A later load, and a backfill of older logs (earlier times, loaded later).
    backfill(&db, &fixture("scenarios/noqueue.log"), &[]);
    backfill(&db, &fixture("scenarios/deferred_then_expired.log"), &[]);
    let third = export_dir(&db, &dir, &[]);
    assert!(
        // noqueue: 4 rejects; deferred_then_expired: 3 deferrals, the expiry (a
        // bounce), the notification delivered.
        third.contains("exported 9 records (1 delivered, 3 deferred, 1 bounced, 4 rejected,"),
        "{third}"
    );

    // A NOQUEUE decision repeated in the same second whose second line a later
    // transaction stores: the loader raises the stored row's count (its upsert, done
    // here by hand: a resumed backfill does not raise it today), and only the new
    // occurrence is exported.
    let log = tmp.path().join("repeat.log");
    std::fs::write(
        &log,
        "Mar 15 10:00:00 mx1 postfix/smtpd[77]: NOQUEUE: reject: RCPT from \
         unknown[198.51.100.5]: 554 5.7.1 <z@example.net>: Relay access denied; \
         from=<s@example.biz> to=<z@example.net> proto=ESMTP helo=<h>\n",
    )
    .unwrap();
    backfill(&db, &log, &[]);
    let fourth = export_dir(&db, &dir, &[]);
    assert!(fourth.contains("exported 1 records"), "{fourth}");
    db.query("UPDATE noqueue SET count = 2 WHERE recipient = 'z@example.net'");
    db.query("UPDATE noqueue SET count = 3 WHERE recipient = 'z@example.net'");
    // A reclassification changes no count: nothing to export again.
    db.query("UPDATE noqueue SET failure_rule = 'test' WHERE recipient = 'z@example.net'");
    assert_eq!(
        db.query("SELECT count, count_steps FROM noqueue WHERE recipient = 'z@example.net'")
            .trim(),
        "3|{1,2,3}"
    );
    let fifth = export_dir(&db, &dir, &[]);
    assert!(fifth.contains("exported 2 records"), "{fifth}");
    let sixth = export_dir(&db, &dir, &[]);
    assert!(sixth.contains("exported 0 records"), "{sixth}");

    let (header, all) = all_lines(&db);
    assert_eq!(exported_lines(&dir, &header), all);
}

/// A small deterministic generator for kill times (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// Start an export with a slow pace and kill it with SIGKILL after `after`.
fn kill_export_after(db: &TestDb, dir: &Path, after: Duration) -> bool {
    let mut child = pftrack()
        .args([
            "export",
            "--database-url",
            &db.url,
            "--output",
            dir.to_str().unwrap(),
            "--rotate-size",
            "40k",
        ])
        .env("PFTRACK_EXPORT_TEST_PACE_MS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    true
}

#[test]
fn kill_9_during_incremental_export_loses_and_repeats_nothing() {
    let db = TestDb::new("export_kill");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill times seed {seed}");
    let mut rng = Lcg(seed);
    let today = generated(
        tmp.path(),
        "a.log",
        1,
        12_000,
        "2025-03-14T06:00:00",
        &["mx1"],
    );
    // Older days of another host, loaded later (a backfill of history).
    let older = generated(
        tmp.path(),
        "b.log",
        2,
        8_000,
        "2025-03-10T06:00:00",
        &["mx2"],
    );
    let mut killed = 0;
    for (i, log) in [Some(&today), None, Some(&older), None]
        .into_iter()
        .enumerate()
    {
        if let Some(log) = log {
            backfill(&db, log, &[]);
        }
        for _ in 0..3 {
            let after = Duration::from_millis(50 + rng.next(1500));
            if kill_export_after(&db, &dir, after) {
                killed += 1;
            }
        }
        if i % 2 == 1 {
            export_dir(&db, &dir, &["--rotate-size", "40k"]);
        }
    }
    assert!(killed >= 6, "only {killed} exports were killed");
    let (header, all) = all_lines(&db);
    assert!(all.len() > 2000, "{} records", all.len());
    let got = exported_lines(&dir, &header);
    if got != all {
        let mut want: BTreeMap<&str, i64> = BTreeMap::new();
        for l in &all {
            *want.entry(l).or_default() += 1;
        }
        for l in &got {
            *want.entry(l).or_default() -= 1;
        }
        let diff: Vec<_> = want.into_iter().filter(|(_, n)| *n != 0).take(10).collect();
        panic!(
            "{} exported, {} records; first differences (+ missing, - repeated): {diff:?}",
            got.len(),
            all.len()
        );
    }
    assert_eq!(
        db.query("SELECT sum(records) FROM export_file").trim(),
        all.len().to_string()
    );
}

#[test]
fn crash_leftovers_are_repaired() {
    let db = TestDb::new("export_repair");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    backfill(&db, &fixture("scenarios/multi_recipient.log"), &[]);
    export_dir(&db, &dir, &[]);
    let open = files_in(&dir);
    let d = open.iter().find(|n| n.starts_with("d.")).unwrap().clone();

    // A tail appended after the last commit, and a file never recorded.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(&d))
        .unwrap();
    f.write_all(b"delivered\tuncommitted tail\n").unwrap();
    std::fs::write(dir.join("b.2020-01-01-000000.tsv"), "stray\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not ours\n").unwrap();
    backfill(&db, &fixture("scenarios/single_delivery.log"), &[]);
    let out = export_dir(&db, &dir, &[]);
    assert!(out.contains(&format!("cut {d} back to")), "{out}");
    assert!(out.contains("deleted b.2020-01-01-000000.tsv"), "{out}");
    assert!(
        dir.join("notes.txt").exists(),
        "files not named like ours stay"
    );

    // A file recorded as archived but still in the directory (killed after the commit,
    // before the rename): the next run moves it.
    std::thread::sleep(Duration::from_millis(1100));
    let out = export_dir(&db, &dir, &["--rotate-interval", "1s"]);
    assert!(!out.contains("archived: none"), "{out}");
    let archived: Vec<String> = files_in(&dir.join("archive"));
    let back = archived[0].clone();
    std::fs::rename(dir.join("archive").join(&back), dir.join(&back)).unwrap();
    let out = export_dir(&db, &dir, &[]);
    assert!(out.contains(&format!("archived {back}")), "{out}");
    assert!(dir.join("archive").join(&back).exists());

    let (header, all) = all_lines(&db);
    assert_eq!(exported_lines(&dir, &header), all);
}

#[test]
fn files_rotate_by_size_and_by_interval() {
    let db = TestDb::new("export_rotate");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    let log = generated(
        tmp.path(),
        "a.log",
        3,
        3_000,
        "2025-03-14T06:00:00",
        &["mx1"],
    );
    backfill(&db, &log, &[]);
    export_dir(&db, &dir, &["--rotate-size", "4k", "--types", "delivered"]);
    let archived = files_in(&dir.join("archive"));
    assert!(archived.len() >= 3, "{archived:?}");
    for name in archived.iter().chain(&files_in(&dir)) {
        assert!(name.starts_with("d."), "{name}");
        let path = if dir.join(name).exists() {
            dir.join(name)
        } else {
            dir.join("archive").join(name)
        };
        let len = std::fs::metadata(&path).unwrap().len();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(len <= 4000 || lines == 2, "{name}: {len} bytes");
    }
    assert_eq!(files_in(&dir).len(), 1, "one open file per type");

    // By interval: the open file is archived by the first run after it aged, even
    // with nothing new to write; the next records open a new file.
    let open = files_in(&dir);
    std::thread::sleep(Duration::from_millis(1100));
    let out = export_dir(
        &db,
        &dir,
        &["--rotate-interval", "1s", "--types", "delivered"],
    );
    assert!(out.contains("exported 0 records"), "{out}");
    assert!(files_in(&dir).is_empty());
    assert!(dir.join("archive").join(&open[0]).exists());
    backfill(&db, &fixture("scenarios/single_delivery.log"), &[]);
    export_dir(
        &db,
        &dir,
        &["--rotate-interval", "1s", "--types", "delivered"],
    );
    let now_open = files_in(&dir);
    assert_eq!(now_open.len(), 1);
    assert_ne!(now_open, open);
    let (_, all) = all_lines(&db);
    let delivered = all.iter().filter(|l| l.starts_with("delivered\t")).count();
    let header = export(&db, &["--since", "2000-01-01T00:00:00Z"])
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(exported_lines(&dir, &header).len(), delivered);
}

#[test]
fn one_exporter_per_directory() {
    let db = TestDb::new("export_lock");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acct");
    let log = generated(
        tmp.path(),
        "a.log",
        4,
        3_000,
        "2025-03-14T06:00:00",
        &["mx1"],
    );
    backfill(&db, &log, &[]);
    let mut slow = pftrack()
        .args([
            "export",
            "--database-url",
            &db.url,
            "--output",
            dir.to_str().unwrap(),
        ])
        .env("PFTRACK_EXPORT_TEST_PACE_MS", "2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow one holds the directory (its file exists).
    let start = Instant::now();
    while !dir.exists() || files_in(&dir).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the export never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = pftrack()
        .args([
            "export",
            "--database-url",
            &db.url,
            "--output",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another pftrack export is writing into") && err.contains("pftrack export"),
        "{err}"
    );
    assert!(slow.wait().unwrap().success());
    let (header, all) = all_lines(&db);
    assert_eq!(exported_lines(&dir, &header), all);
}
