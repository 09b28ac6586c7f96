//! Helpers for `tests/journal.rs`: building journal files from export files,
//! journalctl's view of them, the live journald harness, and a big export file for
//! the loading-rate test.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pftrack_input::Record;
use pftrack_input::journal::JournalReader;

/// Debian's journal-remote, which writes export-format input to journal files.
pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// A file of `fixtures/journal/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/journal")
        .join(name)
}

/// Appends the entries of `exports` to `dir/x.journal` (created when missing) and
/// returns its path. journal-remote appends to an existing output file, so a test
/// wanting a fresh journal passes a fresh directory.
pub fn build_journal(dir: &Path, exports: &[PathBuf]) -> PathBuf {
    let out = dir.join("x.journal");
    for export in exports {
        let res = Command::new(JOURNAL_REMOTE)
            .arg(format!("--output={}", out.display()))
            .arg(export)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "journal-remote {}: {}",
            export.display(),
            String::from_utf8_lossy(&res.stderr)
        );
    }
    out
}

/// The cursors of all entries of a journal file, in order, as journalctl reports them.
pub fn journalctl_cursors(path: &Path) -> Vec<String> {
    let out = Command::new("journalctl")
        .arg("--file")
        .arg(path)
        .args(["-o", "export", "--no-pager"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"__CURSOR="))
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

/// Every record the reader has right now.
pub fn read_all(reader: &mut JournalReader) -> Vec<Record> {
    let mut v = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        v.push(r);
    }
    v
}

/// A running systemd-journald: the system's, or one `scripts/journald-harness`
/// started (stopped again on drop when this test started it).
pub struct LiveJournal {
    started_here: bool,
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/journald-harness")
}

impl LiveJournal {
    /// A live journald, started when needed; `None` (with a note why) when there
    /// can be none here.
    pub fn get() -> Option<LiveJournal> {
        let status = Command::new("sh").arg(harness()).arg("status").output();
        match status {
            Ok(o) if o.status.success() => {
                return Some(LiveJournal {
                    started_here: false,
                });
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("skipping live journald test: cannot run the harness: {e}");
                return None;
            }
        }
        match Command::new("sh").arg(harness()).arg("start").output() {
            Ok(o) if o.status.success() => Some(LiveJournal { started_here: true }),
            Ok(o) => {
                eprintln!(
                    "skipping live journald test: journald-harness start failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping live journald test: cannot run the harness: {e}");
                None
            }
        }
    }

    /// Writes an entry through the native protocol (`logger --journald`).
    pub fn native(&self, identifier: &str, pid: u32, message: &str) {
        let fields =
            format!("MESSAGE={message}\nSYSLOG_IDENTIFIER={identifier}\nSYSLOG_PID={pid}\n");
        run_with_stdin(Command::new("logger").arg("--journald"), fields.as_bytes());
    }

    /// Writes an entry through a stdout stream (`systemd-cat`).
    pub fn stdout(&self, identifier: &str, message: &str) {
        run_with_stdin(
            Command::new("systemd-cat").args(["-t", identifier]),
            message.as_bytes(),
        );
    }

    /// Writes an entry through the syslog socket `/dev/log` (`logger -t`); false (with
    /// a note) when there is no `/dev/log`.
    pub fn syslog(&self, identifier: &str, message: &str) -> bool {
        if !Path::new("/dev/log").exists() {
            eprintln!("no /dev/log: not testing the syslog socket");
            return false;
        }
        let out = Command::new("logger")
            .args(["-t", identifier, "--", message])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logger: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        true
    }
}

impl Drop for LiveJournal {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new("sh").arg(harness()).arg("stop").status();
        }
    }
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes an export file of `n` entries shaped like a mail server's system journal
/// (about 25 fields each, as journald stores syslog entries; one in five from other
/// programs) and returns (entries, Postfix entries).
pub fn write_big_export(path: &Path, n: usize) -> (usize, usize) {
    const DAEMONS: [&str; 6] = [
        "postfix/smtpd",
        "postfix/cleanup",
        "postfix/qmgr",
        "postfix/smtp",
        "postfix/local",
        "postfix-out/smtp",
    ];
    const OTHERS: [&str; 3] = ["sshd", "CRON", "dovecot"];
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    // A fixed linear congruential sequence: the same journal every run.
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut postfix = 0;
    let t0: u64 = 1_700_000_000_000_000;
    for i in 0..n {
        let r = next();
        let ts = t0 + i as u64 * 1000 + r % 1000;
        let is_postfix = r % 5 != 0;
        let (ident, comm) = if is_postfix {
            postfix += 1;
            let d = DAEMONS[(r as usize / 5) % DAEMONS.len()];
            (d, d.rsplit('/').next().unwrap())
        } else {
            let o = OTHERS[(r as usize / 5) % OTHERS.len()];
            (o, o)
        };
        let pid = 1000 + r % 3000;
        let qid = format!("4S{:09X}", next());
        let message = if is_postfix {
            format!(
                "{qid}: to=<user{}@example.net>, relay=mx{}.example.net[198.51.100.{}]:25, delay=0.{}, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {:X})",
                r % 977,
                r % 7,
                r % 250,
                r % 10,
                next()
            )
        } else {
            format!("session {} opened for user u{} by (uid=0)", next(), r % 50)
        };
        write!(
            w,
            "__REALTIME_TIMESTAMP={ts}\n__MONOTONIC_TIMESTAMP={mono}\n_BOOT_ID=5c0f0e2b9a3d4c7e8f1a2b3c4d5e6f70\n\
             _MACHINE_ID=0a1b2c3d4e5f60718293a4b5c6d7e8f9\n_HOSTNAME=mx1\n_RUNTIME_SCOPE=system\n\
             _TRANSPORT=syslog\nPRIORITY=6\nSYSLOG_FACILITY=2\nSYSLOG_IDENTIFIER={ident}\n\
             SYSLOG_PID={pid}\nSYSLOG_TIMESTAMP=Nov 14 22:13:20 \nMESSAGE={message}\n_PID={pid}\n\
             _UID=0\n_GID=0\n_COMM={comm}\n_EXE=/usr/lib/postfix/sbin/{comm}\n\
             _CMDLINE={comm} -n smtp -t inet -u -c\n_CAP_EFFECTIVE=0\n\
             _SYSTEMD_CGROUP=/system.slice/system-postfix.slice/postfix@-.service\n\
             _SYSTEMD_UNIT=postfix@-.service\n_SYSTEMD_SLICE=system-postfix.slice\n\
             _SYSTEMD_INVOCATION_ID=8e0c1f6a2b3d4e5f60718293a4b5c6d7\n\
             _SOURCE_REALTIME_TIMESTAMP={ts}\n\n",
            mono = ts - t0 + 1_000_000,
        )
        .unwrap();
    }
    w.flush().unwrap();
    (n, postfix)
}
