//! The web UI and API from outside (issue 13, "Done when"): a real `pftrack serve` on a
//! database loaded from `fixtures/scenarios` (and the last day of `pftrack-loggen`
//! traffic, for the overview and the default windows), users made by `pftrack user add`, then
//!
//! * `browser`: Debian's headless Chromium driven by Playwright (tests/web/browser.py):
//!   login, search, message page with attempts and the linked NDR, overview, 360 px,
//!   keyboard navigation, logout, and a `domain` user who cannot see another domain's
//!   mail by search, URL or API. Screenshots go to `<target>/web-artefacts/browser-*`,
//!   printed by the test.
//! * `api_fuzz`: schemathesis generates requests from `/api/v1/openapi.json`, for an
//!   admin's bearer token and a `domain` user's: no 5xx, answers conform to the document,
//!   and no scope leak (tests/web/scope_check.py, against the addresses this test reads
//!   straight from the tables). Bounded by [`FUZZ_SECONDS`] per user.
//!
//! Both need the virtualenv that `scripts/setup` (`pftrack_setup_web_tests`) makes. As
//! root (CI) a missing virtualenv or browser fails the test; otherwise it is skipped
//! with a message saying how to get it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{SCENARIOS, TestDb, backfill, fixture, pftrack, repo, run_ok};

/// Debian's Chromium, the only browser the tests use.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Time budget of schemathesis per user (two users: twice this, plus start-up).
const FUZZ_SECONDS: u32 = 60;
/// Longest wait for `pftrack serve` to say where it listens.
const SERVE_START: Duration = Duration::from_secs(30);
/// The `domain` user's domain: carol@ and dan@example.net get mail in the fixtures.
const DOMAIN: &str = "example.net";
/// Lines of generated traffic over the last day (the fixtures are in 2025 and their
/// searches name their own days, so the generated addresses never mix into them).
const LOGGEN_LINES: u64 = 20_000;
/// The generated traffic starts this many hours ago.
const GENERATED_HOURS_AGO: i64 = 22;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The virtualenv's python, or `None` (skip) when it is missing and we are not root.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("PFTRACK_WEB_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache.join("pftrack-venv")
        });
    let python = venv.join("bin/python");
    let missing = if !python.exists() {
        Some(format!("the virtualenv {} is missing", venv.display()))
    } else if !Path::new(CHROMIUM).exists() {
        Some(format!("{CHROMIUM} is missing (apt-get install chromium)"))
    } else {
        None
    };
    match missing {
        None => Some(python),
        Some(why) if is_root() => panic!(
            "{why}: run `. scripts/setup && pftrack_setup && pftrack_setup_web_tests` \
             (scripts/test does); as root this test must run"
        ),
        Some(why) => {
            eprintln!("SKIPPED: {why} (`. scripts/setup && pftrack_setup_web_tests` makes it)");
            None
        }
    }
}

/// `<target>/web-artefacts/<label>-<pid>`: beside the test binary's profile directory.
fn artefacts(label: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/debug/deps/web_e2e-… → <target>
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target
        .join("web-artefacts")
        .join(format!("{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The fixtures, plus a day of generated traffic.
fn fixtures_db(label: &str) -> TestDb {
    let db = TestDb::new(label);
    run_ok(&["migrate", "--database-url", &db.url]);
    for name in SCENARIOS {
        backfill(&db, &fixture(&format!("scenarios/{name}.log")), &[]);
    }
    let generated = std::env::temp_dir().join(format!(
        "pftrack-web-e2e-{}-{label}.log",
        std::process::id()
    ));
    // The last day, so that the UI's and the API's default window (24 h) has mail in
    // it: the overview's charts, and rows for the fuzzer's scope check.
    let start = chrono::Utc::now().naive_utc() - chrono::TimeDelta::hours(GENERATED_HOURS_AGO);
    let config = pftrack_loggen::GenConfig {
        seed: 13,
        lines: LOGGEN_LINES,
        format: pftrack_loggen::StampFormat::Rfc3339,
        utc_offset_seconds: 0,
        start,
        hosts: vec!["mx1".into(), "mx2".into()],
        // About 2 200 messages over 20 hours.
        messages_per_second: 0.03,
        ..pftrack_loggen::GenConfig::default()
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&generated).unwrap());
    pftrack_loggen::generate(&config, &mut file).unwrap();
    file.flush().unwrap();
    drop(file);
    backfill(&db, &generated, &[]);
    let _ = std::fs::remove_file(&generated);
    db
}

/// `pftrack user add` with the password on stdin.
fn add_user(db: &TestDb, name: &str, role: &str, scope: &[&str], password: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    for s in scope {
        args.extend(["--scope", s]);
    }
    let mut child = pftrack()
        .args(["--database-url", &db.url])
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pftrack user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pftrack user token add`: the token.
fn add_token(db: &TestDb, user: &str) -> String {
    let out = run_ok(&[
        "--database-url",
        &db.url,
        "user",
        "token",
        "add",
        user,
        "e2e",
    ]);
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("pft_"), "not a token: {token:?}");
    token
}

/// A random password (the test's own: nothing secret).
fn password() -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running `pftrack serve`, killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(db: &TestDb) -> Serve {
        let mut child = pftrack()
            .env("RUST_LOG", "warn")
            .args([
                "--database-url",
                &db.url,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(SERVE_START) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("pftrack serve did not say where it listens: {other:?}");
            }
        };
        let base = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line of pftrack serve: {line:?}"))
            .to_owned();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_python(python: &Path, mut cmd: Command, what: &str) {
    let status = cmd
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot run {}: {e}", python.display()));
    assert!(
        status.success(),
        "{what} failed ({status}); its output is above"
    );
}

#[test]
fn browser() {
    let Some(python) = venv_python() else { return };
    let db = fixtures_db("web_browser");
    let (admin_pw, domain_pw) = (password(), password());
    add_user(&db, "admin", "admin", &[], &admin_pw);
    add_user(&db, "netadmin", "domain", &[DOMAIN], &domain_pw);
    let token = add_token(&db, "netadmin");
    let serve = Serve::start(&db);
    let dir = artefacts("browser");
    println!("browser test screenshots: {}", dir.display());
    eprintln!("browser test screenshots: {}", dir.display());
    let mut cmd = Command::new(&python);
    cmd.arg(repo().join("tests/web/browser.py"))
        .args(["--base-url", &serve.base])
        .arg("--artefacts")
        .arg(&dir)
        .env("PFTRACK_WEB_ADMIN_PASSWORD", &admin_pw)
        .env("PFTRACK_WEB_DOMAIN_PASSWORD", &domain_pw)
        .env("PFTRACK_WEB_DOMAIN_TOKEN", &token);
    // By hand, to refresh the screenshots of docs/web.md:
    // PFTRACK_WEB_DOCS_IMG=$PWD/docs/img cargo test -p pftrack --test web_e2e browser
    if let Some(docs) = std::env::var_os("PFTRACK_WEB_DOCS_IMG") {
        cmd.arg("--docs-img").arg(docs);
    }
    run_python(&python, cmd, "the browser test (tests/web/browser.py)");
    let shots = std::fs::read_dir(&dir).unwrap().count();
    assert!(shots >= 5, "only {shots} screenshots in {}", dir.display());
}

/// Every address the `domain` user may see, by the rule, from the tables: of
/// the messages whose sender or a recipient is in the domain, the sender and the
/// recipient rows in scope; NOQUEUE rows with the sender or the recipient in scope.
fn visible_addresses(db: &TestDb, domain: &str) -> String {
    let sql = format!(
        "WITH d(dom) AS (VALUES ('{domain}')), \
         rows AS ( \
           SELECT lower(f.sender) AS s, lower(t.recipient) AS r, lower(t.orig_recipient) AS o \
           FROM delivery_to t JOIN delivery_from f USING (host, queue_id, arrived_at)), \
         visible AS ( \
           SELECT s, r, o FROM rows \
           WHERE split_part(s, '@', 2) IN (SELECT dom FROM d) \
              OR split_part(r, '@', 2) IN (SELECT dom FROM d) \
              OR split_part(o, '@', 2) IN (SELECT dom FROM d) \
           UNION ALL \
           SELECT lower(sender), lower(recipient), '' FROM noqueue \
           WHERE split_part(lower(sender), '@', 2) IN (SELECT dom FROM d) \
              OR split_part(lower(recipient), '@', 2) IN (SELECT dom FROM d)) \
         SELECT DISTINCT a FROM (SELECT s FROM visible UNION ALL SELECT r FROM visible \
                                 UNION ALL SELECT o FROM visible) x(a) \
         WHERE a LIKE '%@%' ORDER BY 1"
    );
    db.query(&sql)
}

#[test]
fn api_fuzz() {
    let Some(python) = venv_python() else { return };
    let db = fixtures_db("web_fuzz");
    add_user(&db, "admin", "admin", &[], &password());
    add_user(&db, "netadmin", "domain", &[DOMAIN], &password());
    let admin_token = add_token(&db, "admin");
    let domain_token = add_token(&db, "netadmin");
    let dir = artefacts("api-fuzz");
    let visible = dir.join("visible-addresses.txt");
    let addresses = visible_addresses(&db, DOMAIN);
    assert!(
        addresses.lines().any(|a| a == "carol@example.net"),
        "the fixtures changed: {addresses}"
    );
    std::fs::write(&visible, &addresses).unwrap();
    let serve = Serve::start(&db);
    let schemathesis = python.with_file_name("schemathesis");
    for (who, token, domains) in [
        ("admin", &admin_token, ""),
        ("netadmin", &domain_token, DOMAIN),
    ] {
        println!(
            "== schemathesis as {who} ({FUZZ_SECONDS} s), reports in {}",
            dir.display()
        );
        eprintln!(
            "== schemathesis as {who} ({FUZZ_SECONDS} s), reports in {}",
            dir.display()
        );
        let mut cmd = Command::new(&schemathesis);
        // Its working files (.hypothesis, .schemathesis) go with the reports.
        cmd.current_dir(&dir)
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", serve.base))
            .args(["--url", &format!("{}/api/v1", serve.base)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            // negative_data_rejection: whatever the document calls invalid (an empty
            // `window=`, a malformed time, a repeated single value) must be a 4xx.
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance,\
                 negative_data_rejection,scope_no_leak",
            ])
            .args(["--max-time", &FUZZ_SECONDS.to_string()])
            .args(["--workers", "1", "--seed", "13", "--request-timeout", "10"])
            .args(["--report", "junit"])
            .arg("--report-dir")
            .arg(dir.join(who))
            .env("SCHEMATHESIS_HOOKS", "scope_check")
            .env("PYTHONPATH", repo().join("tests/web"))
            .env("PFTRACK_FUZZ_SCOPE_DOMAINS", domains)
            .env("PFTRACK_FUZZ_VISIBLE_ADDRESSES", &visible)
            .env("NO_COLOR", "1");
        run_python(&python, cmd, &format!("schemathesis as {who}"));
    }
    drop(serve);
}
