//! SASL failures while `pftrack run` follows the live journal (the standalone journald
//! of `scripts/journald-harness`), real PostgreSQL: a GeoIP database that appears, is
//! replaced by a broken file, is used without a restart, and what was stored before
//! keeps what it had.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDb, fixture, pftrack};

/// True when a live journald with `/dev/log` is there (started by the harness when
/// needed). `PFTRACK_REQUIRE_JOURNAL=1` turns a missing one into a failure.
fn journal_available(test: &str) -> bool {
    let harness = common::repo().join("scripts/journald-harness");
    let ok = Command::new("sh")
        .arg(&harness)
        .arg("start")
        .output()
        .is_ok_and(|o| o.status.success())
        && UnixDatagram::unbound()
            .and_then(|s| s.connect("/dev/log"))
            .is_ok();
    if !ok {
        assert!(
            std::env::var("PFTRACK_REQUIRE_JOURNAL").as_deref() != Ok("1"),
            "{test}: no live journal and PFTRACK_REQUIRE_JOURNAL=1"
        );
        eprintln!("SKIPPED {test}: no live journal");
    }
    ok
}

/// Waits until `sql` (one value) returns `want`, at most 30 s.
fn wait_for(db: &TestDb, sql: &str, want: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = db.query(sql);
        if got.trim() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got:?}, not {want:?}\ndaemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_geoip_database_replaced_on_disk_is_used_without_a_restart() {
    if !journal_available("a_geoip_database_replaced_on_disk_is_used_without_a_restart") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let asn = tmp.path().join("GeoLite2-ASN.mmdb");
    // Identifiers of this test alone (journal.identifiers is a prefix).
    let prefix = format!("pftsasl{}/", std::process::id());
    let since = (chrono::Utc::now() - chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let config = tmp.path().join("pftrack.yaml");
    std::fs::write(
        &config,
        format!(
            "journal:\n  identifiers: [\"{prefix}\"]\n  since: \"{since}\"\n\
             batch:\n  max_records: 100\n  max_delay_ms: 100\n\
             geoip:\n  asn: {}\n  check_interval: 1s\n",
            asn.display()
        ),
    )
    .unwrap();
    let db = TestDb::new("sasl_follow");
    let log = tmp.path().join("daemon.log");
    let mut daemon = pftrack()
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--database-url",
            &db.url,
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let socket = UnixDatagram::unbound().unwrap();
    socket.connect("/dev/log").unwrap();
    let send = |user: &str| {
        let line = format!(
            "<20>{prefix}submission/smtpd[4242]: warning: unknown[1.128.0.1]: SASL LOGIN \
             authentication failed: (reason unavailable), sasl_username={user}"
        );
        socket.send(line.as_bytes()).unwrap();
    };
    let asn_of = "SELECT coalesce(asn::text, 'none') FROM auth_failure WHERE sasl_username = ";

    // No database yet: stored without AS.
    wait_for(
        &db,
        "SELECT to_regclass('auth_failure') IS NOT NULL",
        "t",
        &log,
    );
    send("before");
    wait_for(&db, &format!("{asn_of}'before'"), "none", &log);

    // The database appears (renamed into place, as geoipupdate does).
    let staged = tmp.path().join("asn.tmp");
    std::fs::copy(fixture("geoip/GeoLite2-ASN-Test.mmdb"), &staged).unwrap();
    std::fs::rename(&staged, &asn).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send("after");
    wait_for(&db, &format!("{asn_of}'after'"), "1221", &log);
    // What was stored before keeps what it had.
    assert_eq!(db.query(&format!("{asn_of}'before'")).trim(), "none");

    // A broken replacement: one warning naming the file, the previous database stays.
    let bytes = std::fs::read(fixture("geoip/GeoLite2-ASN-Test.mmdb")).unwrap();
    std::fs::write(&staged, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&staged, &asn).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send("broken");
    wait_for(&db, &format!("{asn_of}'broken'"), "1221", &log);
    send("broken2");
    wait_for(&db, &format!("{asn_of}'broken2'"), "1221", &log);

    // Stop it (SIGTERM) and read what it said.
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    let said = std::fs::read_to_string(&log).unwrap();
    let warnings: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("GeoLite2-ASN.mmdb"))
        .collect();
    assert_eq!(warnings.len(), 1, "{said}");
    assert!(
        warnings[0].contains("not a valid MaxMind database"),
        "{said}"
    );
    assert!(
        said.contains("No GeoIP ASN database at this path"),
        "{said}"
    );
}
