//! Two loaders of one input at once: whatever overlaps, the database ends exactly as
//! one uninterrupted run leaves it (every row of every table compared, not counts).
//!
//! - three backfills of one file started together: one loads, the others wait (saying
//!   who holds the file) and then find it loaded;
//! - a backfill started while another of the same rotated set is half-way;
//! - `--no-wait`: exit code 3 and the holder's command, pid and host in the message;
//! - kill -9 of the holder: the waiting loader takes over at once;
//! - the input lock switched off (a deliberately broken loader): the compare-and-set
//!   of positions alone still prevents double counting;
//! - the same host's log through two inputs: a warning naming both.
//!
//! Two daemons on one journal are in `tests/follow.rs` (they need a live journald).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ALL_ROWS, TestDb, pftrack, run_ok};

/// Lines of the generated log: many small transactions in a debug build.
const LINES: u64 = 40_000;
/// Small batches: the loads last long enough for the others to meet them.
const BATCH_LINES: &str = "500";
/// Smaller still for a loader the test must catch in the middle of its load.
const SLOW_BATCH_LINES: &str = "100";
/// How long a loader may take to show up in the database.
const WITHIN: Duration = Duration::from_secs(60);

/// Positions without their wall-clock update time and loader id.
const POSITIONS: &str =
    "SELECT source, byte_offset, line, complete FROM input_position ORDER BY source";

fn generated_log(dir: &Path) -> PathBuf {
    common::generated_log(dir, 21, LINES)
}

/// The log split in three, as logrotate leaves it: `mail.log.2.gz`, `mail.log.1`,
/// `mail.log`, in a directory of their own.
fn rotated_set(dir: &Path, log: &Path) -> PathBuf {
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let third = lines.len() / 3;
    let set = dir.join("rotated");
    std::fs::create_dir(&set).unwrap();
    let gz = std::fs::File::create(set.join("mail.log.2.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    for l in &lines[..third] {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
    for (name, part) in [
        ("mail.log.1", &lines[third..2 * third]),
        ("mail.log", &lines[2 * third..]),
    ] {
        let mut f = std::fs::File::create(set.join(name)).unwrap();
        for l in part {
            writeln!(f, "{l}").unwrap();
        }
    }
    set
}

fn args<'a>(db: &'a TestDb, path: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "backfill",
        "--database-url",
        &db.url,
        "--year",
        "2025",
        "--timezone",
        "UTC",
    ];
    if !extra.contains(&"--batch-lines") {
        a.extend_from_slice(&["--batch-lines", BATCH_LINES]);
    }
    a.extend_from_slice(extra);
    a.push(path);
    a
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = pftrack();
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info,tokio_postgres=warn,refinery_core=warn")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One clean run of `path` into a fresh database: every row, and the positions.
fn clean_run(path: &str, extra: &[&str]) -> (String, String) {
    let db = TestDb::new("conc_clean");
    run_ok(&args(&db, path, extra));
    let rows = db.query(ALL_ROWS);
    assert!(
        rows.lines().count() > 5_000,
        "the log should make many rows"
    );
    (rows, db.query(POSITIONS))
}

fn assert_equals_clean(what: &str, db: &TestDb, clean: &(String, String)) {
    let rows = db.query(ALL_ROWS);
    if rows != clean.0 {
        let a: std::collections::BTreeSet<&str> = clean.0.lines().collect();
        let b: std::collections::BTreeSet<&str> = rows.lines().collect();
        panic!(
            "{what}: rows differ from one clean run ({} vs {} rows)\nmissing: {:#?}\nextra: {:#?}",
            b.len(),
            a.len(),
            a.difference(&b).take(5).collect::<Vec<_>>(),
            b.difference(&a).take(5).collect::<Vec<_>>()
        );
    }
    assert_eq!(db.query(POSITIONS), clean.1, "{what}: positions differ");
    assert_eq!(
        db.query("SELECT count(*) FROM deferred_index"),
        "0\n",
        "{what}: indexes left deferred"
    );
}

/// Waits until `child` (a loader) is trying to take its input: its lock connection,
/// named after its pid, is in `pg_stat_activity`.
fn wait_trying(db: &TestDb, child: &mut Child) {
    let deadline = Instant::now() + WITHIN;
    let name = format!("pftrack backfill {}@%", child.id());
    loop {
        let seen = db.query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{name}'"
        ));
        if seen.trim() != "0" {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the loader ended before trying its input"
        );
        assert!(
            Instant::now() < deadline,
            "no lock attempt within {WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until some position of the database says at least `line` lines are loaded.
fn wait_loaded(db: &TestDb, line: i64, child: &mut Child) {
    let deadline = Instant::now() + WITHIN;
    loop {
        // Before the loader has migrated the schema, the table is not there yet.
        let got: i64 = std::process::Command::new("psql")
            .arg(&db.url)
            .args(["-X", "-At", "-c"])
            .arg("SELECT coalesce(sum(line), 0) FROM input_position")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0);
        if got >= line {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the loader ended before loading {line} lines"
        );
        assert!(Instant::now() < deadline, "no progress within {WITHIN:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_backfills_of_one_file_at_once_equal_one_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();
    let clean = clean_run(log, &[]);

    let db = TestDb::new("conc_three");
    let children: Vec<Child> = (0..3).map(|_| spawn(&args(&db, log, &[]), &[])).collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outs {
        assert!(out.status.success(), "a loader failed: {}", text(out));
    }
    // The waiting ones said what they waited for: the file and its holder (command,
    // pid, host), one of the other two.
    let waited: Vec<&Output> = outs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("pftrack: waiting: "))
        .collect();
    assert!(
        !waited.is_empty(),
        "no loader waited:\n{}",
        outs.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    for out in waited {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.contains("waiting: ")).unwrap();
        assert!(
            line.contains(&format!("{log} is being loaded by pftrack backfill ")),
            "{line}"
        );
        assert!(
            pids.iter()
                .any(|p| line.contains(&format!("backfill {p}@"))),
            "the holder's pid is not named: {line}"
        );
        assert!(line.contains("since "), "{line}");
    }
    assert_equals_clean("three at once", &db, &clean);
}

#[test]
fn a_backfill_of_a_rotated_set_half_way_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let set = rotated_set(dir.path(), &log);
    let set = set.to_str().unwrap();
    let clean = clean_run(set, &[]);

    let db = TestDb::new("conc_rotated");
    let mut first = spawn(&args(&db, set, &["--batch-lines", SLOW_BATCH_LINES]), &[]);
    // Half-way: the oldest file loaded, the next one started.
    wait_loaded(&db, LINES as i64 / 2, &mut first);
    let mut second = spawn(&args(&db, set, &[]), &[]);
    wait_trying(&db, &mut second);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first loader finished before the second started: the test proves nothing"
    );
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("is being loaded by pftrack backfill "),
        "the second loader did not say whom it waited for:\n{err}"
    );
    // It found everything loaded: it read nothing.
    assert!(
        String::from_utf8_lossy(&second.stdout).contains(" 0 records "),
        "{}",
        text(&second)
    );
    assert_equals_clean("rotated set half-way", &db, &clean);
}

#[test]
fn no_wait_names_the_holder_and_exits_3_and_a_kill_9_frees_the_input_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();
    let clean = clean_run(log, &[]);

    let db = TestDb::new("conc_nowait");
    let mut holder = spawn(&args(&db, log, &["--batch-lines", SLOW_BATCH_LINES]), &[]);
    wait_loaded(&db, 2_000, &mut holder);
    let refused = pftrack()
        .args(args(&db, log, &["--no-wait"]))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let expected = format!(
        "pftrack: error: {log} is being loaded by pftrack backfill {}@{} (PostgreSQL backend ",
        holder.id(),
        host.trim()
    );
    assert!(err.contains(&expected), "expected {expected:?} in:\n{err}");
    assert!(err.contains(" since "), "{err}");
    assert!(err.contains("not loading it twice"), "{err}");

    // A waiting loader, then the holder killed: the waiter takes over at once.
    let mut waiter = spawn(&args(&db, log, &[]), &[]);
    wait_trying(&db, &mut waiter);
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the holder finished before the waiter came: the test proves nothing"
    );
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed_at = Instant::now();
    let waiter = waiter.wait_with_output().unwrap();
    assert!(waiter.status.success(), "{}", text(&waiter));
    let err = String::from_utf8_lossy(&waiter.stderr);
    assert!(err.contains("the inputs are free now; loading."), "{err}");
    assert!(
        killed_at.elapsed() < WITHIN,
        "the waiter took {:?} after the kill",
        killed_at.elapsed()
    );
    assert_equals_clean("kill -9 of the holder", &db, &clean);
}

#[test]
fn without_the_lock_the_positions_compare_and_set_alone_prevents_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    let log = log.to_str().unwrap();
    // Indexes maintained: a loser that dies holding the bulk load would leave indexes
    // deferred for the next start, which is not what this test is about.
    let extra = ["--defer-indexes", "never"];
    let clean = clean_run(log, &extra);

    let db = TestDb::new("conc_cas");
    let broken = [("PFTRACK_UNSAFE_SKIP_INPUT_LOCK", "1")];
    let children: Vec<Child> = (0..3)
        .map(|_| spawn(&args(&db, log, &extra), &broken))
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    let losers: Vec<&Output> = outs.iter().filter(|o| o.status.code() == Some(3)).collect();
    assert_eq!(
        winners + losers.len(),
        3,
        "a loader ended otherwise:\n{}",
        outs.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    assert!(
        !losers.is_empty(),
        "no loader met another: the test proves nothing"
    );
    for out in &losers {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "the stored position of {log} moved while this process was loading it"
            )),
            "{err}"
        );
    }
    // A loader that stopped left the rest to be loaded: one more run finishes it, as
    // its message says.
    run_ok(&args(&db, log, &extra));
    assert_equals_clean("compare-and-set only", &db, &clean);
}

#[test]
fn the_same_hosts_log_through_two_inputs_is_named_in_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path());
    // The same lines under another identity: a copy whose first line differs.
    let copy = dir.path().join("copy-of-mail.log");
    let original = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&copy, format!("garbage first line\n{original}")).unwrap();
    let db = TestDb::new("conc_overlap");
    let first = run_ok(&args(&db, log.to_str().unwrap(), &[]));
    assert!(
        !String::from_utf8_lossy(&first.stderr).contains("Two inputs"),
        "one input alone was warned about"
    );
    let out = pftrack()
        .args(args(&db, copy.to_str().unwrap(), &[]))
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Two inputs bring the same host's records"))
        .collect();
    // Once per pair of inputs, however many batches and hosts overlap.
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains(&format!("{} and {}", copy.display(), log.display())),
        "{}",
        warnings[0]
    );
}
