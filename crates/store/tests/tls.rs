//! TLS against a real PostgreSQL server.
//!
//! The test makes its own throwaway cluster (initdb into a temporary directory, run
//! as the `postgres` user when the test runs as root), with a test CA and a server
//! certificate that names `localhost` only, listening on 127.0.0.1 on a free port and
//! accepting password logins over TLS only (`hostssl`). It never touches the machine's
//! own clusters, and stops and removes its cluster at the end, even when a check fails.
//!
//! It is skipped, with the reason printed, only when PostgreSQL's server binaries
//! (`initdb`, `pg_ctl`) are not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pftrack_store::{Store, StoreError};

/// Superuser of the throwaway cluster, logging in with a password over TCP.
const USER: &str = "pftrack_tls";
/// Its password; the cluster lives for one test on 127.0.0.1 only.
const PASSWORD: &str = "pftrack-tls-test";
/// How long `pg_ctl` may wait for the server to start or stop, in seconds.
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// Connection timeout written into every URL, in seconds, so a failure cannot hang.
const CONNECT_TIMEOUT_SECS: u32 = 10;

/// Where `initdb` and `pg_ctl` are: `PFTRACK_PG_BINDIR`, else `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.
fn pg_bindir() -> Option<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("PFTRACK_PG_BINDIR") {
        return Some(PathBuf::from(d)).filter(|d| has_server(d));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&d) {
            return Some(d);
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_server(d))
        .collect();
    debian.sort();
    if let Some((_, d)) = debian.pop() {
        return Some(d);
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has_server(d)))
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A running throwaway cluster; stopped and deleted on drop.
struct Cluster {
    bindir: PathBuf,
    /// `postgres`'s uid and gid when the test runs as root (PostgreSQL refuses root).
    owner: Option<(u32, u32)>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tls(&self, file: &str) -> PathBuf {
        self.dir.path().join("tls").join(file)
    }

    /// A command of the server's, run as its owner.
    fn pg(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        let mut cmd = if self.owner.is_some() {
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .unwrap_or("runuser");
            let mut c = Command::new(runuser);
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // Its own directory: the caller's may not be readable by `postgres`.
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn give_to_owner(&self, path: &Path) {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    fn write(&self, path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        self.give_to_owner(path);
    }

    fn new(bindir: PathBuf) -> Cluster {
        let owner = if id(&["-u"]) == Some(0) {
            let uid =
                id(&["-u", "postgres"]).expect("running as root but there is no postgres user");
            let gid = id(&["-g", "postgres"]).expect("no group of the postgres user");
            Some((uid, gid))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("pftrack-tls-test-")
            .tempdir()
            .unwrap();
        // A free port now; the server binds it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bindir,
            owner,
            dir,
            port,
        };
        cluster.give_to_owner(cluster.dir.path());
        cluster.make_certificates();
        cluster.init_and_start();
        cluster
    }

    /// A test CA, a second CA that signed nothing, and a server certificate for the
    /// DNS name `localhost` only (no IP address), signed by the first.
    fn make_certificates(&self) {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(&tls));
        };
        for (name, cn) in [
            ("ca", "pftrack TLS test CA"),
            ("other", "pftrack TLS test other CA"),
        ] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            tls.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
    }

    fn init_and_start(&self) {
        let pwfile = self.dir.path().join("pwfile");
        self.write(&pwfile, PASSWORD);
        run(self
            .pg("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", USER, "-E", "UTF8", "--no-sync", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display())));

        let data = self.data();
        std::fs::copy(self.tls("server.crt"), data.join("server.crt")).unwrap();
        std::fs::copy(self.tls("server.key"), data.join("server.key")).unwrap();
        self.give_to_owner(&data.join("server.crt"));
        self.give_to_owner(&data.join("server.key"));
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        // TCP on 127.0.0.1 with TLS only; the socket in our own directory, so that
        // nothing is shared with the machine's clusters.
        self.write(
            &data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        );
        self.write(
            &data.join("postgresql.auto.conf"),
            &format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 fsync = off\nmax_connections = 20\nshared_buffers = '16MB'\n",
                self.port,
                self.dir.path().display()
            ),
        );
        let log = self.dir.path().join("server.log");
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS, "start"])
            .output()
            .unwrap();
        if !out.status.success() {
            panic!(
                "pg_ctl start failed ({}): {}{}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    fn url(&self, host: &str, sslmode: &str) -> String {
        format!(
            "host={host} port={} user={USER} password={PASSWORD} dbname=postgres \
             connect_timeout={CONNECT_TIMEOUT_SECS} sslmode={sslmode}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop whatever started, even after a failed check; then the TempDir removes
        // the files.
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .pg("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", PG_CTL_TIMEOUT_SECS, "stop"])
                .output();
        }
    }
}

/// Connect and prove the session is encrypted.
async fn connects_with_tls(what: &str, url: &str, ca_file: Option<&Path>) {
    let store = match Store::connect_with(url, ca_file).await {
        Ok(s) => s,
        Err(e) => panic!("{what}: expected to connect, got: {e}"),
    };
    let rows = store
        .query(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: query failed: {e}"));
    assert_eq!(
        rows.len(),
        1,
        "{what}: one pg_stat_ssl row for this backend"
    );
    let ssl: bool = rows[0].get(0);
    let version: Option<String> = rows[0].get(1);
    assert!(ssl, "{what}: connected but pg_stat_ssl.ssl is false");
    eprintln!("ok: {what} (TLS {})", version.unwrap_or_default());
}

/// Connecting must fail, with every one of `expect` in the message.
async fn refused(what: &str, url: &str, ca_file: Option<&Path>, expect: &[&str]) -> StoreError {
    let err = match Store::connect_with(url, ca_file).await {
        Ok(_) => panic!("{what}: connected but should have been refused"),
        Err(e) => e,
    };
    let text = err.to_string();
    for e in expect {
        assert!(text.contains(e), "{what}: error lacks {e:?}: {text}");
    }
    eprintln!("ok: {what} refused: {text}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_against_a_real_server() {
    let Some(bindir) = pg_bindir() else {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED tls_against_a_real_server: PostgreSQL server binaries (initdb, pg_ctl) \
             not found (set PFTRACK_PG_BINDIR or install postgresql)"
        );
        return;
    };
    let cluster = Cluster::new(bindir);
    let c = &cluster;
    let ca = c.tls("ca.pem");
    let other = c.tls("other.pem");

    // The server takes TLS only: a plaintext login is refused by pg_hba.conf.
    refused(
        "sslmode=disable",
        &c.url("127.0.0.1", "disable"),
        None,
        &["no encryption"],
    )
    .await;

    // require: encrypted, the server not authenticated (libpq without a root cert).
    connects_with_tls("sslmode=require", &c.url("127.0.0.1", "require"), None).await;
    connects_with_tls("sslmode=prefer", &c.url("localhost", "prefer"), None).await;

    // verify-full with the right CA, from database.ca_file or from sslrootcert, in
    // both URL forms.
    connects_with_tls(
        "verify-full, ca_file, host localhost",
        &c.url("localhost", "verify-full"),
        Some(&ca),
    )
    .await;
    connects_with_tls(
        "verify-full, sslrootcert in a key=value string",
        &format!(
            "{} sslrootcert='{}'",
            c.url("localhost", "verify-full"),
            ca.display()
        ),
        None,
    )
    .await;
    connects_with_tls(
        "verify-full, sslrootcert in a postgresql:// URL",
        &format!(
            "postgresql://{USER}:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            c.port,
            ca.display()
        ),
        None,
    )
    .await;
    // database.ca_file comes before the URL's sslrootcert.
    connects_with_tls(
        "verify-full, ca_file right and sslrootcert wrong",
        &format!(
            "{} sslrootcert={}",
            c.url("localhost", "verify-full"),
            other.display()
        ),
        Some(&ca),
    )
    .await;

    // verify-full with a CA that did not sign the server's certificate.
    let err = refused(
        "verify-full with the wrong CA",
        &c.url("localhost", "verify-full"),
        Some(&other),
        &["not issued by a trusted CA", "other.pem", "verify-full"],
    )
    .await;
    assert!(matches!(err, StoreError::Pool { .. }), "{err:?}");

    // Without a CA file the system's CAs are trusted, and they did not sign the test CA
    // (or there are none on this machine: refused just the same).
    refused(
        "verify-full trusting the system's CAs",
        &c.url("localhost", "verify-full"),
        None,
        &["system"],
    )
    .await;

    // verify-full by IP address: the certificate names only localhost.
    refused(
        "verify-full with host 127.0.0.1",
        &c.url("127.0.0.1", "verify-full"),
        Some(&ca),
        &["not valid for name", "127.0.0.1", "verify-ca"],
    )
    .await;

    // verify-ca checks the chain, not the name.
    connects_with_tls(
        "verify-ca with the right CA, host 127.0.0.1",
        &c.url("127.0.0.1", "verify-ca"),
        Some(&ca),
    )
    .await;
    refused(
        "verify-ca with the wrong CA",
        &c.url("127.0.0.1", "verify-ca"),
        Some(&other),
        &["not issued by a trusted CA", "verify-ca"],
    )
    .await;

    // libpq: with a root certificate, require verifies the chain too.
    refused(
        "require with a wrong root certificate",
        &c.url("127.0.0.1", "require"),
        Some(&other),
        &["not issued by a trusted CA"],
    )
    .await;
    connects_with_tls(
        "require with the right root certificate",
        &c.url("127.0.0.1", "require"),
        Some(&ca),
    )
    .await;

    // A CA file that is not there is named in the error, before any connection.
    let missing = c.dir.path().join("no-such-ca.pem");
    let err = refused(
        "verify-full with a missing CA file",
        &c.url("localhost", "verify-full"),
        Some(&missing),
        &["no-such-ca.pem"],
    )
    .await;
    assert!(matches!(err, StoreError::CaFile { .. }), "{err:?}");
    assert!(!err.is_transient());

    let dir = cluster.dir.path().to_owned();
    drop(cluster);
    assert!(
        !dir.exists(),
        "the throwaway cluster's directory is left behind"
    );
}
