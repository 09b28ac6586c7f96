//! `pftrack run` against a real journal: a live systemd-journald (the system's, or the
//! standalone one of `scripts/journald-harness`), real PostgreSQL.
//!
//! Every test writes its own Postfix log (from `pftrack-loggen`) into the journal
//! through the syslog socket `/dev/log`, as Postfix does, under identifiers of its own
//! (`postfix-t<pid>-<test>/smtpd`, …; the daemon's `journal.identifiers` is that
//! prefix), so parallel tests and the machine's own entries do not mix. What the
//! daemon stored, through restarts, kills and outages, is compared with a reference:
//! the same entries read back with `journalctl -o json`, written as an RFC 3339
//! syslog file and loaded by `pftrack backfill` in one go into a database of its own.
//! Equal rows mean nothing was lost and nothing was counted twice (a re-read entry
//! would add to `attempts` or a NOQUEUE `count`).
//!
//! The tests need root (journald and `/dev/log`). Without them they print
//! `SKIPPED …` and pass, unless `PFTRACK_REQUIRE_JOURNAL=1`, which makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{ALL_ROWS, TestDb, pftrack, psql, run_ok};
use pftrack_loggen::{GenConfig, StampFormat, generate};

/// How long the daemon may take to store what was written (a debug build, two cores
/// shared with other tests).
const CATCH_UP: Duration = Duration::from_secs(90);
/// How long the daemon may take to say READY=1.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a stopping daemon may take to exit (with a database that is away:
/// `STOP_RETRY_LIMIT`, 10 s, plus a margin).
const EXIT_WITHIN: Duration = Duration::from_secs(30);
/// Matches the journal source key the daemon stores its cursor under
/// (`journal:system:<machine id>`).
const SYSTEM_SOURCE: &str = "journal:system:%";

// ---------------------------------------------------------------------------------
// The journal

/// True when a live journald with `/dev/log` is there (started by the harness when
/// needed, and left running: other tests of the run use it too).
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
        if !Path::new("/dev/log").exists() {
            return Err("no /dev/log".into());
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

/// One syslog entry to write.
#[derive(Debug, Clone)]
struct Line {
    identifier: String,
    pid: u32,
    message: String,
}

/// A test's own Postfix log, under its own identifiers.
struct Feed {
    /// What the daemon's `journal.identifiers` holds (ends in `/`, so that the prefix
    /// of one test is never the prefix of another's).
    prefix: String,
    lines: Vec<Line>,
    socket: UnixDatagram,
}

impl Feed {
    /// `lines` lines of a generated log (seeded: the same every run).
    fn new(test: &str, seed: u64, lines: u64) -> Feed {
        let stem = format!("postfix-t{}-{test}", std::process::id());
        let config = GenConfig {
            seed,
            lines,
            format: StampFormat::Classic,
            messages_per_second: 20.0,
            ..GenConfig::default()
        };
        let mut text = Vec::new();
        generate(&config, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines = text
            .lines()
            .map(|l| {
                // "Mar 14 06:25:00 mx1 postfix/smtpd[14543]: message"
                let rest = l.splitn(5, ' ').nth(4).unwrap();
                let (tag, message) = rest.split_once(": ").unwrap();
                let (ident, pid) = tag.trim_end_matches(']').split_once('[').unwrap();
                let daemon_part = ident.split_once('/').map_or(ident, |(_, d)| d);
                Line {
                    identifier: format!("{stem}/{daemon_part}"),
                    pid: pid.parse().unwrap(),
                    message: message.to_owned(),
                }
            })
            .collect();
        let socket = UnixDatagram::unbound().unwrap();
        socket.connect("/dev/log").unwrap();
        Feed {
            prefix: format!("{stem}/"),
            lines,
            socket,
        }
    }

    /// Sends lines `range` to journald through `/dev/log` (facility mail, severity
    /// info), in order, as Postfix's syslog(3) calls do.
    fn write(&self, range: std::ops::Range<usize>) {
        for l in &self.lines[range] {
            let datagram = format!("<22>{}[{}]: {}", l.identifier, l.pid, l.message);
            send_datagram(&self.socket, datagram.as_bytes());
        }
    }

    /// Writes lines `range` at about `per_second`, from another thread.
    fn write_paced(
        self: &Arc<Self>,
        range: std::ops::Range<usize>,
        per_second: f64,
    ) -> std::thread::JoinHandle<()> {
        let feed = Arc::clone(self);
        std::thread::spawn(move || {
            let began = Instant::now();
            for (k, i) in range.enumerate() {
                let due = began + Duration::from_secs_f64(k as f64 / per_second);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                feed.write(i..i + 1);
            }
        })
    }

    fn identifiers(&self) -> BTreeSet<String> {
        self.lines.iter().map(|l| l.identifier.clone()).collect()
    }

    /// The config file for a daemon following this feed.
    fn config(&self, dir: &Path, since: DateTime<Utc>, batch: Option<(usize, u64)>) -> PathBuf {
        let mut yaml = format!(
            "journal:\n  identifiers: [\"{}\"]\n  since: \"{}\"\n",
            self.prefix,
            since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        if let Some((records, ms)) = batch {
            yaml.push_str(&format!(
                "batch:\n  max_records: {records}\n  max_delay_ms: {ms}\n"
            ));
        }
        let path = dir.join(format!(
            "pftrack-{}.yaml",
            self.prefix.trim_end_matches('/')
        ));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Waits until journald has stored the first `n` lines, and returns them as the
    /// journal has them (checking that they are the lines written, in order).
    fn stored(&self, n: usize) -> Vec<Stored> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = journal_entries(&self.identifiers());
            if got.len() >= n || Instant::now() > deadline {
                assert_eq!(got.len(), n, "journald stored another number of entries");
                for (i, (s, l)) in got.iter().zip(&self.lines).enumerate() {
                    assert_eq!(
                        (&s.identifier, s.pid, &s.message),
                        (&l.identifier, l.pid, &l.message),
                        "entry {i} is not the line written"
                    );
                }
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn send_datagram(socket: &UnixDatagram, bytes: &[u8]) {
    let mut tries = 0;
    loop {
        match socket.send(bytes) {
            Ok(_) => return,
            // journald's receive queue is full: it catches up within milliseconds.
            Err(e) if tries < 1000 => {
                tries += 1;
                if tries == 1000 {
                    panic!("cannot write to /dev/log: {e}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("cannot write to /dev/log: {e}"),
        }
    }
}

/// An entry as the journal stored it.
#[derive(Debug, Clone)]
struct Stored {
    realtime_us: i64,
    host: String,
    identifier: String,
    pid: u32,
    message: String,
}

/// The entries with these identifiers, oldest first, read with journalctl (not with
/// pftrack's reader: the reference must not share its code).
fn journal_entries(identifiers: &BTreeSet<String>) -> Vec<Stored> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "json", "--no-pager", "--all"]);
    for i in identifiers {
        cmd.arg(format!("SYSLOG_IDENTIFIER={i}"));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "journalctl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            Stored {
                realtime_us: s("__REALTIME_TIMESTAMP").parse().unwrap(),
                host: s("_HOSTNAME"),
                identifier: s("SYSLOG_IDENTIFIER"),
                pid: s("SYSLOG_PID").parse().unwrap(),
                message: s("MESSAGE"),
            }
        })
        .collect()
}

/// The reference: `entries` as an RFC 3339 syslog file, loaded in one go by
/// `pftrack backfill` into a fresh database.
fn reference(dir: &Path, config: &Path, entries: &[Stored]) -> TestDb {
    let path = dir.join("reference.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for e in entries {
        let t = DateTime::from_timestamp_micros(e.realtime_us).unwrap();
        writeln!(
            f,
            "{} {} {}[{}]: {}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            e.host,
            e.identifier,
            e.pid,
            e.message
        )
        .unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let db = TestDb::new("follow_reference");
    run_ok(&[
        "backfill",
        "--config",
        config.to_str().unwrap(),
        "--database-url",
        &db.url,
        "--timezone",
        "UTC",
        path.to_str().unwrap(),
    ]);
    db
}

/// Asserts that `url` holds exactly the rows of `reference`, showing the difference.
fn assert_same_rows(what: &str, url: &str, reference: &TestDb) {
    let expected = reference.query(ALL_ROWS);
    let got = psql(url, ALL_ROWS);
    assert!(
        expected.lines().count() > 100,
        "{what}: the reference holds too few rows to prove anything"
    );
    if got != expected {
        let exp: BTreeSet<&str> = expected.lines().collect();
        let got_set: BTreeSet<&str> = got.lines().collect();
        let missing: Vec<_> = exp.difference(&got_set).take(8).collect();
        let extra: Vec<_> = got_set.difference(&exp).take(8).collect();
        panic!(
            "{what}: the followed database differs from the reference ({} vs {} rows)\n\
             missing: {missing:#?}\nextra or different: {extra:#?}",
            got.lines().count(),
            expected.lines().count()
        );
    }
}

/// The stored journal position's timestamp, in µs since the epoch.
fn committed_us(url: &str) -> Option<i64> {
    let sql = format!(
        "SELECT (extract(epoch FROM last_timestamp) * 1000000)::bigint FROM input_position \
         WHERE source LIKE '{SYSTEM_SOURCE}'"
    );
    let out = std::process::Command::new("psql")
        .arg(url)
        .args(["-X", "-At", "-c", &sql])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Waits until the daemon has committed up to the entry at `realtime_us`.
fn wait_committed(url: &str, realtime_us: i64, daemon: &mut Daemon) {
    let deadline = Instant::now() + CATCH_UP;
    while committed_us(url).is_none_or(|c| c < realtime_us) {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!(
                "the daemon exited ({status}) before catching up\n{}",
                daemon.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not catch up within {CATCH_UP:?}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------
// The daemon

/// A `pftrack run` child with its own notification socket.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    notes: Arc<Mutex<Vec<(Instant, String)>>>,
    listening: Arc<AtomicBool>,
}

impl Daemon {
    fn start(config: &Path, url: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(config, url, env, &[])
    }

    fn start_with(config: &Path, url: &str, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket_path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let listening = Arc::new(AtomicBool::new(true));
        {
            let notes = Arc::clone(&notes);
            let listening = Arc::clone(&listening);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while listening.load(Ordering::SeqCst) {
                    if let Ok(n) = socket.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        let mut notes = notes.lock().unwrap();
                        for line in text.lines() {
                            notes.push((Instant::now(), line.to_owned()));
                        }
                    }
                }
            });
        }
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut cmd = pftrack();
        cmd.args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            url,
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Daemon {
            child,
            dir,
            notes,
            listening,
        }
    }

    /// Everything the daemon logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Notifications received so far.
    fn notes(&self) -> Vec<(Instant, String)> {
        self.notes.lock().unwrap().clone()
    }

    /// Waits for a notification line `pred` accepts; its arrival time.
    fn wait_note(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((t, _)) = self.notes().into_iter().find(|(_, n)| pred(n)) {
                return Some(t);
            }
            if Instant::now() > deadline || self.child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&mut self) -> Instant {
        match self.wait_note(READY_WITHIN, |n| n == "READY=1") {
            Some(t) => t,
            None => panic!("no READY=1 within {READY_WITHIN:?}\n{}", self.log()),
        }
    }

    /// SIGTERM, then the exit status (within [`EXIT_WITHIN`]).
    fn terminate(&mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.wait_exit(EXIT_WITHIN);
        if std::env::var("PFTRACK_TEST_VERBOSE").as_deref() == Ok("1") {
            eprintln!("--- daemon log ({status})\n{}", self.log());
        }
        status
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the daemon did not exit within {within:?}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no flush, no goodbye.
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.listening.store(false, Ordering::SeqCst);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn since_now() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(2)
}

// ---------------------------------------------------------------------------------
// The tests

/// Entries stored this long before a kill were surely seen by the daemon: journald
/// tells readers of changes within a fraction of this.
const KILL_MARGIN_US: i64 = 300_000;

/// Entries written while the daemon follows become rows; READY=1, STATUS=, WATCHDOG=1
/// and STOPPING=1 arrive when they should; `backfill --journal` of the same entries
/// gives the same rows.
#[test]
fn entries_written_while_following_become_rows() {
    if !journal_available("entries_written_while_following_become_rows") {
        return;
    }
    let feed = Feed::new("follow", 11, 3000);
    let tmp = tempfile::tempdir().unwrap();
    let config = feed.config(tmp.path(), since_now(), None);
    let db = TestDb::new("follow_live");

    let mut daemon = Daemon::start(&config, &db.url, &[("WATCHDOG_USEC", "400000")]);
    let ready = daemon.wait_ready();
    // Before READY=1 the database was reached and migrated: the schema is there.
    assert_eq!(
        db.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'input_position'"
        ),
        "1\n"
    );
    // Watchdog pings at half of WATCHDOG_USEC once ready.
    std::thread::sleep(Duration::from_millis(1200));
    let pings = daemon
        .notes()
        .iter()
        .filter(|(t, n)| n == "WATCHDOG=1" && *t >= ready)
        .count();
    assert!(
        pings >= 2,
        "{pings} WATCHDOG=1 in 1.2 s with WATCHDOG_USEC=400000"
    );

    feed.write(0..feed.lines.len());
    let stored = feed.stored(feed.lines.len());
    wait_committed(&db.url, stored.last().unwrap().realtime_us, &mut daemon);
    let status = daemon.wait_note(Duration::from_secs(5), |n| {
        n.starts_with("STATUS=following:") && n.contains("records stored")
    });
    assert!(
        status.is_some_and(|t| t > ready),
        "no STATUS= after commits"
    );

    let status = daemon.terminate();
    assert!(status.success(), "exit {status}\n{}", daemon.log());
    let notes: Vec<String> = daemon.notes().into_iter().map(|(_, n)| n).collect();
    let ready_at = notes.iter().position(|n| n == "READY=1").unwrap();
    let stopping_at = notes.iter().position(|n| n == "STOPPING=1");
    assert!(
        stopping_at.is_some_and(|s| s > ready_at),
        "no STOPPING=1 after READY=1: {notes:?}"
    );
    assert_eq!(notes.iter().filter(|n| *n == "READY=1").count(), 1);

    let reference = reference(tmp.path(), &config, &stored);
    assert_same_rows("followed", &db.url, &reference);

    // A one-off load of the same journal entries gives the same rows, and running it
    // again (it resumes after its cursor) changes nothing.
    let once = TestDb::new("follow_once");
    let since = since_arg(&stored);
    let args = [
        "backfill",
        "--journal",
        "--since",
        &since,
        "--config",
        config.to_str().unwrap(),
        "--database-url",
        &once.url,
    ];
    run_ok(&args);
    assert_same_rows("backfill --journal", &once.url, &reference);
    // Into an empty database it was a bulk load: its indexes are built at the end.
    assert_eq!(once.query("SELECT count(*) FROM deferred_index"), "0\n");
    assert_eq!(
        once.query(
            "SELECT count(*) > 10 FROM pg_indexes \
             WHERE tablename IN ('delivery_from', 'delivery_to', 'noqueue')"
        ),
        "t\n"
    );
    run_ok(&args);
    assert_same_rows("backfill --journal, run again", &once.url, &reference);
}

fn since_arg(stored: &[Stored]) -> String {
    DateTime::from_timestamp_micros(stored[0].realtime_us - 1_000_000)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// SIGTERM at moments while entries are written, more entries written while the
/// daemon is down, then a restart: nothing lost, nothing twice.
#[test]
fn sigterm_and_restart_resume_exactly() {
    if !journal_available("sigterm_and_restart_resume_exactly") {
        return;
    }
    let feed = Arc::new(Feed::new("restart", 12, 4000));
    let tmp = tempfile::tempdir().unwrap();
    // Small batches: many commits, so stops land between and inside them.
    let config = feed.config(tmp.path(), since_now(), Some((100, 200)));
    let db = TestDb::new("follow_restart");
    let n = feed.lines.len();
    let rounds = 4;
    let per_round = n / rounds;
    for round in 0..rounds {
        let mut daemon = Daemon::start(&config, &db.url, &[]);
        daemon.wait_ready();
        let begin = round * per_round;
        let end = if round + 1 == rounds {
            n
        } else {
            begin + per_round
        };
        // Half of the round's lines while the daemon follows, at a steady pace...
        let middle = begin + (end - begin) / 2;
        let writer = feed.write_paced(begin..middle, 1500.0);
        std::thread::sleep(Duration::from_millis(300 + 200 * round as u64));
        let status = daemon.terminate();
        assert!(
            status.success(),
            "round {round}: exit {status}\n{}",
            daemon.log()
        );
        writer.join().unwrap();
        // ...the other half while it is stopped: the journal keeps them.
        feed.write(middle..end);
    }
    let stored = feed.stored(n);
    // The position is stored under this machine's key...
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    if !machine.trim().is_empty() {
        assert_eq!(
            db.query("SELECT source FROM input_position"),
            format!("journal:system:{}\n", machine.trim())
        );
    }
    // ...and one stored by an older version, without the machine, is taken over.
    db.query("UPDATE input_position SET source = 'journal:system'");
    let mut daemon = Daemon::start(&config, &db.url, &[]);
    daemon.wait_ready();
    wait_committed(&db.url, stored.last().unwrap().realtime_us, &mut daemon);
    assert!(daemon.terminate().success());
    assert!(
        daemon.log().contains("Taking over"),
        "the position without machine id was not taken over:\n{}",
        daemon.log()
    );
    assert!(
        !daemon.log().contains("not in this journal"),
        "a cursor was not found:\n{}",
        daemon.log()
    );
    let reference = reference(tmp.path(), &config, &stored);
    assert_same_rows("stopped and restarted", &db.url, &reference);
}

/// SIGKILL while batches are open (entries read, not yet committed) and while they
/// commit; each time a new daemon resumes: nothing lost, nothing twice.
#[test]
fn kill_9_in_the_middle_of_a_batch_loses_nothing() {
    if !journal_available("kill_9_in_the_middle_of_a_batch_loses_nothing") {
        return;
    }
    let feed = Arc::new(Feed::new("kill", 13, 5000));
    let tmp = tempfile::tempdir().unwrap();
    // Batches that stay open for up to a second: a kill nearly always lands in one.
    let config = feed.config(tmp.path(), since_now(), Some((1000, 1000)));
    let db = TestDb::new("follow_kill");
    let n = feed.lines.len();
    let writer = feed.write_paced(0..n, 500.0);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kills_with_open_batch = 0;
    let mut kills = 0;
    while !writer.is_finished() {
        let mut daemon = Daemon::start(&config, &db.url, &[]);
        daemon.wait_ready();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(400 + seed % 1200));
        let killed_at_us = Utc::now().timestamp_micros();
        daemon.kill9();
        kills += 1;
        // Entries journald stored well before the kill, but not committed: the daemon
        // had them in an open batch (or in the channel, or not yet read).
        let committed = committed_us(&db.url).unwrap_or(0);
        let pending = journal_entries(&feed.identifiers())
            .iter()
            .filter(|e| e.realtime_us > committed && e.realtime_us < killed_at_us - KILL_MARGIN_US)
            .count();
        if pending > 0 {
            kills_with_open_batch += 1;
        }
    }
    writer.join().unwrap();
    assert!(
        kills_with_open_batch >= 2,
        "only {kills_with_open_batch} of {kills} kills found read-but-uncommitted entries"
    );
    let stored = feed.stored(n);
    let mut daemon = Daemon::start(&config, &db.url, &[]);
    daemon.wait_ready();
    wait_committed(&db.url, stored.last().unwrap().realtime_us, &mut daemon);
    assert!(daemon.terminate().success());
    let reference = reference(tmp.path(), &config, &stored);
    assert_same_rows(&format!("after {kills} kills"), &db.url, &reference);
}

/// A stored cursor the journal does not have (garbage, or a well-formed cursor of
/// another journal) falls back to the stored time, with a warning: not to the head
/// (entries would count twice) and not to the tail (entries would be lost).
#[test]
fn bogus_cursor_falls_back_to_the_stored_time() {
    if !journal_available("bogus_cursor_falls_back_to_the_stored_time") {
        return;
    }
    let feed = Feed::new("cursor", 14, 3000);
    let tmp = tempfile::tempdir().unwrap();
    let config = feed.config(tmp.path(), since_now(), None);
    let db = TestDb::new("follow_cursor");
    let n = feed.lines.len();
    let bounds = [0, n / 3, 2 * n / 3, n];
    let bogus = [
        "garbage",
        // Well-formed, of a journal this machine never had.
        "s=0123456789abcdef0123456789abcdef;i=4d2;b=fedcba9876543210fedcba9876543210;\
         m=1f4;t=5e9b2c1d3a4b5;x=1122334455667788",
    ];
    let mut daemon = Daemon::start(&config, &db.url, &[]);
    daemon.wait_ready();
    feed.write(bounds[0]..bounds[1]);
    let stored = feed.stored(bounds[1]);
    wait_committed(&db.url, stored.last().unwrap().realtime_us, &mut daemon);
    assert!(daemon.terminate().success());
    for (k, cursor) in bogus.iter().enumerate() {
        let before = db.query(&format!(
            "SELECT last_timestamp FROM input_position WHERE source LIKE '{SYSTEM_SOURCE}'"
        ));
        db.query(&format!(
            "UPDATE input_position SET cursor = '{cursor}' WHERE source LIKE '{SYSTEM_SOURCE}'"
        ));
        // Written while stopped: after the stored time, so the fallback must read them.
        feed.write(bounds[k + 1]..bounds[k + 2]);
        let stored = feed.stored(bounds[k + 2]);
        let mut daemon = Daemon::start(&config, &db.url, &[]);
        daemon.wait_ready();
        wait_committed(&db.url, stored.last().unwrap().realtime_us, &mut daemon);
        assert!(daemon.terminate().success());
        let log = daemon.log();
        assert!(
            log.contains("WARN") && log.contains("not in this journal"),
            "no warning about the missing cursor {cursor:?}:\n{log}"
        );
        assert!(
            log.contains(&before.trim().replace(' ', "T")[..19]),
            "the warning does not name the stored time {before:?}:\n{log}"
        );
        let reference = reference(tmp.path(), &config, &stored);
        assert_same_rows(&format!("after cursor {cursor:?}"), &db.url, &reference);
    }
}

/// A journal that cannot be opened: the daemon fails before READY=1.
#[test]
fn unopenable_journal_fails_before_ready() {
    if !journal_available("unopenable_journal_fails_before_ready") {
        return;
    }
    let feed = Feed::new("noopen", 15, 10);
    let tmp = tempfile::tempdir().unwrap();
    let config = feed.config(tmp.path(), since_now(), None);
    let db = TestDb::new("follow_noopen");
    let missing = tmp.path().join("no-such-journal-dir");
    let mut daemon = Daemon::start_with(
        &config,
        &db.url,
        &[],
        &["--journal-dir", missing.to_str().unwrap()],
    );
    let status = daemon.wait_exit(EXIT_WITHIN);
    assert!(!status.success());
    assert!(daemon.log().contains("journal"), "{}", daemon.log());
    std::thread::sleep(Duration::from_millis(200));
    let notes = daemon.notes();
    assert!(
        notes.iter().all(|(_, n)| n != "READY=1"),
        "READY=1 from a daemon without a journal: {notes:?}"
    );
}

// ---------------------------------------------------------------------------------
// A PostgreSQL of our own, to stop and start under the daemon

/// A throwaway cluster (initdb in a temporary directory, run as `postgres` when the
/// test runs as root), reachable only through a socket in its own directory.
struct Cluster {
    bindir: PathBuf,
    as_postgres: bool,
    dir: tempfile::TempDir,
    /// Also listening on 127.0.0.1 at this port (trust authentication: it lives for
    /// one test).
    tcp_port: u16,
}

impl Cluster {
    /// `None` (with a note) when the server binaries are not installed.
    fn new() -> Option<Cluster> {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .filter(|(_, d)| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
            .collect();
        found.sort();
        let bindir = found.pop()?.1;
        let as_postgres = id(&["-u"]).as_deref() == Some("0");
        let dir = tempfile::Builder::new()
            .prefix("pftrack-follow-pg-")
            .tempdir()
            .unwrap();
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let c = Cluster {
            bindir,
            as_postgres,
            dir,
            tcp_port: std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
        };
        let out = c
            .pg("initdb")
            .arg("-D")
            .arg(c.data())
            .args([
                "-U",
                "pftrack",
                "--auth-local=trust",
                "--auth-host=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_connections = 20\nshared_buffers = '16MB'\n",
            c.tcp_port,
            c.dir.path().display()
        );
        let auto = c.data().join("postgresql.auto.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&auto)
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        Some(c)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(self.dir.path());
        c
    }

    fn ctl(&self, action: &[&str]) {
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60"])
            .args(action)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {action:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn start(&self) {
        self.ctl(&["start"]);
    }

    /// A fast shutdown: sessions are ended, as when PostgreSQL is restarted.
    fn stop(&self) {
        self.ctl(&["-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!(
            "host={} port={} user=pftrack dbname=postgres connect_timeout=5",
            self.dir.path().display(),
            self.tcp_port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .pg("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// PostgreSQL down at start (no READY=1 until it is up), restarted while the daemon
/// follows, and down when the daemon is stopped: nothing lost, nothing twice.
#[test]
fn postgresql_restarted_while_following_loses_nothing() {
    if !journal_available("postgresql_restarted_while_following_loses_nothing") {
        return;
    }
    let Some(cluster) = Cluster::new() else {
        assert!(
            std::env::var("PFTRACK_REQUIRE_JOURNAL").as_deref() != Ok("1"),
            "no PostgreSQL server binaries under /usr/lib/postgresql"
        );
        eprintln!("SKIPPED postgresql_restarted_while_following_loses_nothing: no initdb");
        return;
    };
    let feed = Feed::new("pgrestart", 16, 4000);
    let tmp = tempfile::tempdir().unwrap();
    let config = feed.config(tmp.path(), since_now(), Some((200, 250)));
    let url = cluster.url();
    let n = feed.lines.len();
    let q = n / 4;

    // Down at start: the daemon waits for it and is not ready.
    let mut daemon = Daemon::start(&config, &url, &[]);
    assert!(
        daemon
            .wait_note(Duration::from_secs(3), |n| n == "READY=1")
            .is_none(),
        "READY=1 without a database\n{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon gave up on a database that is not up yet\n{}",
        daemon.log()
    );
    assert!(
        daemon
            .notes()
            .iter()
            .any(|(_, n)| n.starts_with("EXTEND_TIMEOUT_USEC=")),
        "no EXTEND_TIMEOUT_USEC= while waiting for the database: {:?}",
        daemon.notes()
    );
    let up = Instant::now();
    cluster.start();
    let ready = daemon.wait_ready();
    assert!(ready > up);

    feed.write(0..q);
    let stored = feed.stored(q);
    wait_committed(&url, stored.last().unwrap().realtime_us, &mut daemon);

    // Restarted while entries keep coming.
    cluster.stop();
    feed.write(q..2 * q);
    let _ = feed.stored(2 * q);
    // Down long enough for several failed attempts of the same batch (with backoff),
    // while more batches queue up behind it.
    assert!(
        daemon
            .wait_note(Duration::from_secs(30), |n| {
                n.starts_with("STATUS=database unavailable (4 failed attempts")
            })
            .is_some(),
        "no STATUS= about the database\n{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "{}",
        daemon.log()
    );
    cluster.start();
    feed.write(2 * q..3 * q);
    let stored = feed.stored(3 * q);
    wait_committed(&url, stored.last().unwrap().realtime_us, &mut daemon);
    assert!(
        daemon.log().contains("Database unavailable"),
        "no warning while the database was down:\n{}",
        daemon.log()
    );
    // The restart broke the connection holding the journal's lock: taken again.
    let deadline = Instant::now() + READY_WITHIN;
    while !daemon
        .log()
        .contains("Took the journal lock again after its connection broke")
    {
        assert!(
            Instant::now() < deadline,
            "the journal lock was not taken again:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Stopped while the database is down: it exits (0) within the stop limit, the
    // uncommitted records stay in the journal for the next start.
    cluster.stop();
    feed.write(3 * q..n);
    let _ = feed.stored(n);
    std::thread::sleep(Duration::from_millis(1500));
    let status = daemon.terminate();
    assert!(status.success(), "exit {status}\n{}", daemon.log());
    cluster.start();
    let stored = feed.stored(n);
    let mut daemon = Daemon::start(&config, &url, &[]);
    daemon.wait_ready();
    wait_committed(&url, stored.last().unwrap().realtime_us, &mut daemon);
    assert!(daemon.terminate().success());

    let reference = reference(tmp.path(), &config, &stored);
    assert_same_rows("PostgreSQL restarted", &url, &reference);
}

/// A TCP proxy in front of PostgreSQL that, when armed, forwards a `COMMIT` to the
/// server, lets it commit, and then breaks both connections before the answer gets
/// back: the client cannot know whether its transaction committed.
struct CommitBreaker {
    port: u16,
    armed: Arc<std::sync::atomic::AtomicU32>,
    broken: Arc<std::sync::atomic::AtomicU32>,
}

/// The PostgreSQL protocol's SSLRequest and GSSENCRequest codes (untyped messages
/// before the startup message).
const PG_SSL_REQUEST: u32 = 80_877_103;
/// See [`PG_SSL_REQUEST`].
const PG_GSSENC_REQUEST: u32 = 80_877_104;

impl CommitBreaker {
    fn start(upstream_port: u16) -> CommitBreaker {
        use std::sync::atomic::AtomicU32;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicU32::new(0));
        let broken = Arc::new(AtomicU32::new(0));
        let (a, b) = (Arc::clone(&armed), Arc::clone(&broken));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let (mut s_read, mut c_write) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                // Set before an armed COMMIT goes to the server: from then on nothing
                // the server says reaches the client.
                let hold = Arc::new(AtomicBool::new(false));
                let held = Arc::clone(&hold);
                std::thread::spawn(move || {
                    use std::io::Read;
                    let mut buf = [0u8; 8192];
                    while let Ok(k) = s_read.read(&mut buf) {
                        if k == 0 || held.load(Ordering::SeqCst) {
                            break;
                        }
                        if c_write.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                });
                let (a, b) = (Arc::clone(&a), Arc::clone(&b));
                std::thread::spawn(move || {
                    let _ = forward_client(client, server, &hold, &a, &b);
                });
            }
        });
        CommitBreaker {
            port,
            armed,
            broken,
        }
    }
}

/// Client to server, message by message; breaks the connection after an armed COMMIT.
fn forward_client(
    mut client: std::net::TcpStream,
    mut server: std::net::TcpStream,
    hold: &AtomicBool,
    armed: &std::sync::atomic::AtomicU32,
    broken: &std::sync::atomic::AtomicU32,
) -> std::io::Result<()> {
    use std::io::Read;
    // Untyped messages: SSL/GSS requests, then the startup message.
    loop {
        let mut len = [0u8; 4];
        client.read_exact(&mut len)?;
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        client.read_exact(&mut body)?;
        server.write_all(&len)?;
        server.write_all(&body)?;
        let code = body
            .get(..4)
            .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if code != PG_SSL_REQUEST && code != PG_GSSENC_REQUEST {
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        client.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        client.read_exact(&mut body)?;
        let is_commit = head[0] == b'Q' && body.starts_with(b"COMMIT");
        let breaking = is_commit
            && armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if breaking {
            hold.store(true, Ordering::SeqCst);
        }
        server.write_all(&head)?;
        server.write_all(&body)?;
        if breaking {
            // Let the server commit, then lose its answer.
            std::thread::sleep(Duration::from_millis(300));
            let _ = client.shutdown(std::net::Shutdown::Both);
            let _ = server.shutdown(std::net::Shutdown::Both);
            broken.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
    }
}

/// The connection breaks after the server committed but before pftrack heard so: the
/// retry finds the batch's position stored and does not apply the batch a second time
/// (it would add its attempts and NOQUEUE counts again).
#[test]
fn commit_whose_answer_is_lost_is_not_applied_twice() {
    if !journal_available("commit_whose_answer_is_lost_is_not_applied_twice") {
        return;
    }
    let Some(cluster) = Cluster::new() else {
        eprintln!("SKIPPED commit_whose_answer_is_lost_is_not_applied_twice: no initdb");
        return;
    };
    cluster.start();
    let breaker = CommitBreaker::start(cluster.tcp_port);
    let url = format!(
        "host=127.0.0.1 port={} user=pftrack dbname=postgres sslmode=disable connect_timeout=5",
        breaker.port
    );
    let feed = Arc::new(Feed::new("ambiguous", 17, 3000));
    let tmp = tempfile::tempdir().unwrap();
    let config = feed.config(tmp.path(), since_now(), Some((100, 200)));
    let n = feed.lines.len();
    let mut daemon = Daemon::start(&config, &url, &[]);
    // Migrations commit too: arm only once the daemon follows.
    daemon.wait_ready();
    breaker.armed.store(3, Ordering::SeqCst);
    feed.write_paced(0..n, 1500.0).join().unwrap();
    let stored = feed.stored(n);
    wait_committed(
        &cluster.url(),
        stored.last().unwrap().realtime_us,
        &mut daemon,
    );
    assert!(daemon.terminate().success());
    assert_eq!(
        breaker.broken.load(Ordering::SeqCst),
        3,
        "not every armed COMMIT came\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("went through after all").count(),
        3,
        "the retries did not find their batches committed:\n{log}"
    );
    let reference = reference(tmp.path(), &config, &stored);
    assert_same_rows("commits with lost answers", &cluster.url(), &reference);
}

// ---------------------------------------------------------------------------------
// Benchmark (run by scripts/bench-follow)

/// Follow latency at default settings: entries written at a steady rate, each a
/// NOQUEUE reject of its own (one `noqueue` row, `logged_at` = the entry's
/// `__REALTIME_TIMESTAMP`, the time journald stored it); the database polled every
/// 10 ms for the newest committed `logged_at`. An entry's latency is the time of
/// the first poll that sees it minus its `logged_at`: an upper bound, including up to
/// one poll interval and the poll's own query time. Rate and count:
/// `PFTRACK_BENCH_RATE` (entries/s, default 200), `PFTRACK_BENCH_ENTRIES` (3000).
#[test]
#[ignore = "benchmark: run by scripts/bench-follow, in release mode"]
fn follow_latency() {
    if !journal_available("follow_latency") {
        return;
    }
    let env = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rate = env("PFTRACK_BENCH_RATE", 200.0);
    let n = env("PFTRACK_BENCH_ENTRIES", 3000.0) as usize;
    let stem = format!("postfix-bench{}", std::process::id());
    let lines = (0..n)
        .map(|i| Line {
            identifier: format!("{stem}/smtpd"),
            pid: 4000 + (i % 50) as u32,
            message: format!(
                "NOQUEUE: reject: RCPT from unknown[192.0.2.{}]: 554 5.7.1 <bench{i}@example.com>: \
                 Relay access denied; from=<sender@example.org> to=<bench{i}@example.com> \
                 proto=ESMTP helo=<client.example.org>",
                1 + i % 250
            ),
        })
        .collect();
    let socket = UnixDatagram::unbound().unwrap();
    socket.connect("/dev/log").unwrap();
    let feed = Arc::new(Feed {
        prefix: format!("{stem}/"),
        lines,
        socket,
    });
    let tmp = tempfile::tempdir().unwrap();
    // Default batch settings: no batch section.
    let config = feed.config(tmp.path(), since_now(), None);
    let db = TestDb::new("follow_latency");
    let mut daemon = Daemon::start(&config, &db.url, &[]);
    daemon.wait_ready();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime
        .block_on(pftrack_store::Store::connect(&db.url))
        .unwrap();
    let writer = feed.write_paced(0..n, rate);
    // (time the poll returned, newest logged_at committed), both µs since the epoch.
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(n as f64 / rate) + CATCH_UP;
    loop {
        let rows = runtime
            .block_on(store.query(
                "SELECT count(*), COALESCE((extract(epoch FROM max(logged_at)) * 1000000)::int8, 0) \
                 FROM noqueue",
                &[],
            ))
            .unwrap();
        let now = Utc::now().timestamp_micros();
        let count: i64 = rows[0].get(0);
        let newest: i64 = rows[0].get(1);
        if seen.last().is_none_or(|&(_, m)| newest > m) {
            seen.push((now, newest));
        }
        if count as usize >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not catch up\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap();
    assert!(daemon.terminate().success());

    let logged: Vec<i64> = db
        .query("SELECT (extract(epoch FROM logged_at) * 1000000)::int8 FROM noqueue ORDER BY 1")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(logged.len(), n);
    let mut latency_ms: Vec<f64> = logged
        .iter()
        .map(|&t| {
            let first = seen.iter().find(|&&(_, m)| m >= t).unwrap();
            (first.0 - t) as f64 / 1000.0
        })
        .collect();
    latency_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| latency_ms[((latency_ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "follow latency (entry stored by journald -> row visible), {n} entries at {rate}/s, \
         default batch settings: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latency_ms[latency_ms.len() - 1]
    );
}

/// Two daemons on one journal: the second stands by (ready, its STATUS= naming the
/// first), never writes, and takes over at once when the first is killed with SIGKILL;
/// the database equals one clean load of everything written.
#[test]
fn two_daemons_on_one_journal_store_it_once() {
    if !journal_available("two_daemons_on_one_journal_store_it_once") {
        return;
    }
    let feed = Feed::new("twodaemons", 29, 3000);
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new("follow_two_daemons");
    let config = feed.config(dir.path(), since_now(), Some((200, 100)));
    let mut first = Daemon::start(&config, &db.url, &[]);
    first.wait_ready();
    let mut second = Daemon::start(&config, &db.url, &[]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let holder = format!("pftrack run {}@{}", first.child.id(), host.trim());
    let standby = second.wait_note(READY_WITHIN, |n| {
        n.starts_with("STATUS=standby: the system journal is being loaded by ")
            && n.contains(&holder)
    });
    assert!(
        standby.is_some(),
        "the second daemon did not stand by naming {holder}\n{}",
        second.log()
    );

    feed.write(0..1500);
    let stored = feed.stored(1500);
    wait_committed(&db.url, stored[1499].realtime_us, &mut first);
    assert!(
        second.log().contains("Another daemon follows this journal"),
        "{}",
        second.log()
    );
    first.kill9();
    // The standby takes over at once: the lock died with the first's connection.
    let took_over = second.wait_note(READY_WITHIN, |n| n == "STATUS=following the journal");
    assert!(took_over.is_some(), "no take-over\n{}", second.log());

    feed.write(1500..3000);
    let stored = feed.stored(3000);
    wait_committed(&db.url, stored[2999].realtime_us, &mut second);
    assert!(second.terminate().success(), "{}", second.log());
    let reference = reference(dir.path(), &config, &stored);
    assert_same_rows("two daemons, the first killed", &db.url, &reference);
}

/// SIGHUP reloads the classification rules: failures logged after it are classified
/// with the new rules, those stored before keep their verdict (`pftrack reclassify`
/// is for those); a rules file that does not load leaves the rules in use as they are.
#[test]
fn sighup_reloads_the_classification_rules() {
    if !journal_available("sighup_reloads_the_classification_rules") {
        return;
    }
    let feed = Feed::new("sighup", 37, 10);
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new("follow_sighup");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "rules: []\n").unwrap();
    let config = feed.config(dir.path(), since_now(), Some((1, 50)));
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str(&format!("classify:\n  rules: {}\n", rules.display()));
    std::fs::write(&config, yaml).unwrap();
    let mut daemon = Daemon::start(&config, &db.url, &[]);
    daemon.wait_ready();

    // One deferral of message `qid` with a wording no built-in rule knows.
    let defer = |qid: &str| {
        let ident = format!("{}qmgr", feed.prefix);
        let smtp = format!("{}smtp", feed.prefix);
        for (ident, text) in [
            (
                &ident,
                format!("{qid}: from=<a@example.org>, size=100, nrcpt=1 (queue active)"),
            ),
            (
                &smtp,
                format!(
                    "{qid}: to=<b@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=1, \
                     delays=0/0/0.5/0.5, dsn=4.0.0, status=deferred (host \
                     mx.example.net[192.0.2.9] said: 451 Frobnicator overheated (in reply \
                     to RCPT TO command))"
                ),
            ),
        ] {
            send_datagram(
                &feed.socket,
                format!("<22>{ident}[4242]: {text}").as_bytes(),
            );
        }
    };
    let reason_of = |qid: &str, daemon: &mut Daemon| -> String {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let got = psql(
                &db.url,
                &format!("SELECT failure_reason FROM delivery_attempt WHERE queue_id = '{qid}'"),
            );
            if !got.trim().is_empty() {
                return got.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline && daemon.child.try_wait().unwrap().is_none(),
                "{qid} was not stored\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let wait_log = |daemon: &mut Daemon, text: &str, count: usize| {
        let deadline = Instant::now() + READY_WITHIN;
        while daemon.log().matches(text).count() < count {
            assert!(Instant::now() < deadline, "no {text:?}\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let hangup = |daemon: &Daemon| {
        let ok = Command::new("kill")
            .args(["-HUP", &daemon.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };

    defer("1A0000000A");
    let built_in = reason_of("1A0000000A", &mut daemon);
    assert_ne!(built_in, "contenterror");

    std::fs::write(
        &rules,
        "rules:\n  - name: frobnicator\n    reason: contenterror\n    text: 'frobnicator overheated'\n",
    )
    .unwrap();
    hangup(&daemon);
    wait_log(&mut daemon, "classification rules reloaded", 1);
    defer("1A0000000B");
    assert_eq!(reason_of("1A0000000B", &mut daemon), "contenterror");
    // Stored before the reload: unchanged.
    assert_eq!(reason_of("1A0000000A", &mut daemon), built_in);

    std::fs::write(
        &rules,
        "rules:\n  - name: broken\n    reason: nosuchreason\n",
    )
    .unwrap();
    hangup(&daemon);
    wait_log(
        &mut daemon,
        "were not reloaded, the previous ones stay in use",
        1,
    );
    defer("1A0000000C");
    assert_eq!(reason_of("1A0000000C", &mut daemon), "contenterror");
    assert!(daemon.terminate().success(), "{}", daemon.log());
}
