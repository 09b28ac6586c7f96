//! Test harness: a fresh PostgreSQL database per test, and the `pftrack` binary.
//!
//! Databases are created through `PFTRACK_TEST_ADMIN_URL` (a libpq URL with the right
//! to create databases; `scripts/test` exports it) and dropped when the test ends,
//! unless `PFTRACK_TEST_KEEP_DB=1`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Every scenario log in `fixtures/scenarios/` (`new_year` lies nine months after the
/// others; tests that shift times to "now" leave it out themselves).
pub const SCENARIOS: &[&str] = &[
    "content_filter",
    "deferred_then_expired",
    "deferred_then_sent",
    "milter_reject",
    "multi_recipient",
    "new_year",
    "noqueue",
    "orig_to_alias",
    "pickup",
    "postsuper_delete",
    "queue_id_reuse",
    "rfc3339",
    "single_delivery",
    "two_hosts",
];

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fixture path.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// The URL test databases are created through (PFTRACK_TEST_ADMIN_URL or the local socket).
pub fn admin_url() -> String {
    std::env::var("PFTRACK_TEST_ADMIN_URL").unwrap_or_else(|_| {
        let user = std::env::var("USER").ok().unwrap_or_else(|| {
            let out = Command::new("id").arg("-un").output().expect("id runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        });
        format!("host=/var/run/postgresql user={user} dbname=postgres")
    })
}

/// psql on `url` running `sql`: unaligned, `|`-separated, UTC, stopping at the first
/// error; `quiet` leaves out command tags such as `SET`.
fn run_psql(url: &str, sql: &str, quiet: bool) -> Output {
    let mut cmd = Command::new("psql");
    cmd.arg(url).arg("-X");
    if quiet {
        cmd.arg("-q");
    }
    cmd.args(["-v", "ON_ERROR_STOP=1", "-At", "-F", "|", "-c", sql])
        .env("PGTZ", "UTC")
        .output()
        .expect("psql runs")
}

/// Run `sql` against `url`; panics with psql's stderr on failure.
pub fn psql(url: &str, sql: &str) -> String {
    let out = run_psql(url, sql, false);
    assert!(
        out.status.success(),
        "psql failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`psql`] but quiet (no command tags such as `SET`), returning the error text
/// instead of panicking.
pub fn psql_may_fail(url: &str, sql: &str) -> Result<String, String> {
    let out = run_psql(url, sql, true);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new(label: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("pftrack_t{}_{}_{}", std::process::id(), n, clean);
        let admin = admin_url();
        psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = admin
            .split_whitespace()
            .filter(|kv| !kv.starts_with("dbname="))
            .chain(std::iter::once(format!("dbname={name}").as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        TestDb { name, url }
    }

    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var("PFTRACK_TEST_KEEP_DB").is_ok_and(|v| v == "1") {
            eprintln!("keeping database {}", self.name);
            return;
        }
        let _ = Command::new("psql")
            .arg(admin_url())
            .args([
                "-X",
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// The pftrack binary under test.
pub fn pftrack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pftrack"));
    c.env_remove("PFTRACK_DATABASE_URL").env("RUST_LOG", "warn");
    c
}

/// Run pftrack with `args`; panics with its output on failure.
pub fn run_ok(args: &[&str]) -> Output {
    let out = pftrack().args(args).output().expect("pftrack runs");
    assert!(
        out.status.success(),
        "pftrack {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `pftrack backfill` of `path` into `db`, yearless stamps read as 2025 UTC (the year
/// and zone of the fixtures), with `extra` arguments; panics on failure.
pub fn backfill(db: &TestDb, path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("utf-8 path");
    let args = [
        "backfill",
        "--database-url",
        &db.url,
        "--year",
        "2025",
        "--timezone",
        "UTC",
    ];
    run_ok(&[&args[..], extra, &[path]].concat())
}

/// `delivery_status` in the order and columns of `fixtures/scenarios/*.expected`.
pub const STATUS_ROWS: &str = "SELECT host, queue_id, arrived_at, message_id, sender, recipient, \
    orig_recipient, status, dsn, relay, attempts, last_attempt_at, parent_queue_id, parent_kind, \
    continued_as_queue_id FROM delivery_status ORDER BY host, arrived_at, queue_id, recipient";

/// `noqueue` in the order and columns of `fixtures/scenarios/*.noqueue`.
pub const NOQUEUE_ROWS: &str = "SELECT host, logged_at, daemon, action, stage, client_addr, code, \
    dsn, sender, recipient, helo, count FROM noqueue ORDER BY logged_at, daemon, recipient";

/// Every stored row of every table, for comparing two databases exactly (without the
/// export's bookkeeping of V11: which transaction stored a row, and when a NOQUEUE
/// count rose, differ between two loads of the same lines).
pub const ALL_ROWS: &str = "SELECT 'from', f::text FROM delivery_from f \
    UNION ALL SELECT 'to', t::text FROM delivery_to t \
    UNION ALL SELECT 'attempt', (to_jsonb(a) - 'loaded_xid')::text FROM delivery_attempt a \
    UNION ALL SELECT 'noqueue', (to_jsonb(n) - 'loaded_xid' - 'count_steps' - 'count_step_xids')::text \
    FROM noqueue n \
    UNION ALL SELECT 'auth', (to_jsonb(a) - 'loaded_xid')::text FROM auth_failure a ORDER BY 1, 2";

/// Lines of an expected-rows file without comments and blank lines.
pub fn expected_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Compare result rows with expected rows, showing both on mismatch.
pub fn assert_rows(what: &str, got: &str, expected: &[String]) {
    let got: Vec<&str> = got.lines().collect();
    let exp: Vec<&str> = expected.iter().map(String::as_str).collect();
    if got != exp {
        panic!(
            "{what}: rows differ\n--- expected\n{}\n--- got\n{}\n",
            exp.join("\n"),
            got.join("\n")
        );
    }
}

/// The fenced blocks of `language` (`sql`, `postgresql`) in `docs/queries.md`, in the
/// section headed `section` (to the next `## ` heading) or in the whole file.
pub fn doc_queries(language: &str, section: Option<&str>) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("docs/queries.md"))
        .unwrap_or_else(|e| panic!("cannot read docs/queries.md: {e}"));
    let text = match section {
        Some(heading) => {
            let start = text
                .find(heading)
                .unwrap_or_else(|| panic!("docs/queries.md has no {heading:?}"));
            let rest = &text[start..];
            let end = rest[2..].find("\n## ").map_or(rest.len(), |e| e + 2);
            rest[..end].to_owned()
        }
        None => text,
    };
    let fence = format!("```{language}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, l) if l == fence => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// A generated log of `lines` lines (seed `seed`, classic stamps, hosts mx1 and mx2,
/// queue ids drawn from a small space so that they are reused), written to
/// `dir/mail.log`.
pub fn generated_log(dir: &Path, seed: u64, lines: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join("mail.log");
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut file = std::io::BufWriter::new(file);
    let config = pftrack_loggen::GenConfig {
        seed,
        lines,
        format: pftrack_loggen::StampFormat::Classic,
        hosts: vec!["mx1".into(), "mx2".into()],
        messages_per_second: 20.0,
        queue_id_space: 4096,
        ..pftrack_loggen::GenConfig::default()
    };
    pftrack_loggen::generate(&config, &mut file).expect("the generator writes");
    file.flush().expect("the log is written");
    path
}

/// Create the monthly partitions (migration V14) that the rows of `db` need once their
/// times are moved by `offset` (an SQL interval), as the loader would have: a test that
/// shifts stored times by hand calls this first.
pub fn create_months_for_shift(db: &TestDb, offset: &str) {
    db.query(&format!(
        "SELECT pftrack_time_partitions(ARRAY(
             SELECT arrived_at + interval '{0}' FROM delivery_from
             UNION SELECT logged_at + interval '{0}' FROM noqueue
             UNION SELECT logged_at + interval '{0}' FROM auth_failure))",
        offset.trim()
    ));
}

/// `plan` with each partition's index named by its partitioned parent's index (the
/// tables are partitioned by month since V14: a plan names `delivery_to_p2025_01_…`
/// where a test means `delivery_to_recipient`).
pub fn with_parent_index_names(db: &TestDb, plan: &str) -> String {
    let pairs = db.query(
        "SELECT c.relname, p.relname FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE c.relkind = 'i' ORDER BY length(c.relname) DESC",
    );
    let mut plan = plan.to_owned();
    for (child, parent) in pairs.lines().filter_map(|l| l.split_once('|')) {
        plan = plan.replace(&format!(" {child} "), &format!(" {parent} "));
        plan = plan.replace(&format!(" {child}\n"), &format!(" {parent}\n"));
    }
    plan
}

/// The read-only role the migrations grant to when it exists (V2, V9, V13).
pub const READER_ROLE: &str = "pftrack_reader";

/// Create the read-only role once per run when the cluster lacks it (roles are
/// cluster-wide and outlive the test databases; a NOLOGIN role is harmless).
pub fn ensure_reader_role() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let count = || {
            psql_may_fail(
                &admin_url(),
                &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{READER_ROLE}'"),
            )
            .unwrap()
        };
        let exists = count();
        if exists.trim() == "0" {
            // Another test process may create it at the same moment: check again.
            let _ = psql_may_fail(&admin_url(), &format!("CREATE ROLE {READER_ROLE} NOLOGIN"));
            let again = count();
            assert_eq!(again.trim(), "1", "cannot create the role {READER_ROLE}");
        }
    });
}
