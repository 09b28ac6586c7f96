//! The journald reader against real journal files: built from the export-format
//! fixtures in `fixtures/journal/` with `systemd-journal-remote`, and against a live
//! systemd-journald (`scripts/journald-harness`) when one can run.
//!
//! Tests that cannot run here (no `systemd-journal-remote`, no journald and not root)
//! print why and pass.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod journal_support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use journal_support::{
    JOURNAL_REMOTE, LiveJournal, build_journal, fixture, journalctl_cursors, read_all,
};
use pftrack_input::journal::{
    JournalOptions, JournalReader, JournalSource, JournalStart, JournalStats,
};
use pftrack_input::{Position, Record};

/// `__REALTIME_TIMESTAMP` of the first entry of `basic.export`, in µs.
const T0_US: i64 = 1_700_000_000_000_000;

/// The time `ms` milliseconds after the first entry of `basic.export`.
fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(T0_US + ms * 1000).unwrap()
}

/// Skip the calling test (with a note) when journal-remote is missing.
macro_rules! need_journal_remote {
    () => {
        if !std::path::Path::new(JOURNAL_REMOTE).exists() {
            eprintln!("skipping: {JOURNAL_REMOTE} is not installed");
            return;
        }
    };
}

/// (ms after T0, host, identifier, pid, message) of an expected record.
type Expected = (i64, &'static str, &'static str, Option<u32>, &'static [u8]);

/// The Postfix records of `basic.export`, in order, without their positions:
/// (ms after T0, host, identifier, pid, message).
fn expected_basic() -> Vec<Expected> {
    vec![
        (0, "mx1", "postfix/smtpd", Some(1201), b"connect from mail.example.com[192.0.2.10]"),
        (300, "mx1", "postfix/smtpd", Some(1201), b"4SXyZ1abcdz: client=mail.example.com[192.0.2.10]"),
        (310, "mx1", "postfix/cleanup", Some(1202), b"4SXyZ1abcdz: message-id=<20231114221320.1@example.com>"),
        (320, "mx1", "postfix/qmgr", Some(900), b"4SXyZ1abcdz: from=<alice@example.com>, size=1234, nrcpt=1 (queue active)"),
        (900, "mx2", "postfix-out/smtp", Some(1300), b"4SXyZ1abcdz: to=<bob@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F2A31C2)"),
        (1000, "mx1", "postfix/submission/smtpd", Some(1400), b"warning: header Subject: caf\xe9 \xff\xfe from unknown[203.0.113.5]; from=<a@example.com>"),
        (1300, "mx1", "postfix/qmgr", Some(900), b"4SXyZ1abcdz: removed"),
        (1500, "", "postfix/anvil", Some(1600), b"statistics: max connection rate 1/60s for (smtp:192.0.2.10) at Nov 14 22:13:20"),
    ]
}

/// Indices, among all 12 entries of `basic.export`, of the 8 Postfix records.
const BASIC_RECORD_ENTRIES: [usize; 8] = [0, 2, 3, 4, 5, 6, 9, 11];

fn cursor_of(r: &Record) -> &str {
    match &r.position {
        Position::Journal { cursor } => cursor,
        other => panic!("not a journal position: {other:?}"),
    }
}

fn files(path: PathBuf, start: JournalStart) -> JournalOptions {
    JournalOptions::new(JournalSource::Files(vec![path]), start)
}

#[test]
fn files_every_field() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let mut reader = JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap();
    assert!(reader.has_files());
    let records = read_all(&mut reader);
    assert!(!reader.fell_back());

    let expected = expected_basic();
    assert_eq!(records.len(), expected.len(), "{records:#?}");
    for (r, (ms, host, ident, pid, msg)) in records.iter().zip(&expected) {
        assert_eq!(r.timestamp, t(*ms), "{r:?}");
        assert_eq!(&*r.host, *host, "{r:?}");
        assert_eq!(&*r.identifier, *ident, "{r:?}");
        assert_eq!(r.pid, *pid, "{r:?}");
        assert_eq!(r.message, *msg, "{r:?}");
    }
    assert_eq!(records[5].daemon(), "smtpd");
    assert_eq!(records[5].service(), "postfix/submission");

    // The cursors are the journal's own, as journalctl reports them.
    let all = journalctl_cursors(&path);
    assert_eq!(all.len(), 12);
    let ours: Vec<&str> = records.iter().map(cursor_of).collect();
    let theirs: Vec<&str> = BASIC_RECORD_ENTRIES
        .iter()
        .map(|&i| all[i].as_str())
        .collect();
    assert_eq!(ours, theirs);

    // Repeated hosts and identifiers share one allocation.
    assert!(Arc::ptr_eq(&records[0].identifier, &records[1].identifier));
    assert!(Arc::ptr_eq(&records[0].host, &records[6].host));

    assert_eq!(
        reader.stats(),
        JournalStats {
            entries: 12,
            records: 8,
            filtered: 2,
            unidentified: 1,
            skipped: 1
        }
    );
    assert_eq!(reader.skipped(), 1);
    // At the end, the reader stands on the last entry.
    assert_eq!(reader.current_cursor().as_deref(), Some(all[11].as_str()));
    // And stays at the end.
    assert!(reader.next_record().unwrap().is_none());
}

#[test]
fn prefixes_select_identifiers() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let mut options = files(path, JournalStart::Head);
    options.identifier_prefixes = vec!["postfix-out/".into(), "dovecot".into(), "CRON".into()];
    let mut reader = JournalReader::open(&options).unwrap();
    let idents: Vec<String> = read_all(&mut reader)
        .iter()
        .map(|r| r.identifier.to_string())
        .collect();
    assert_eq!(idents, ["dovecot", "postfix-out/smtp", "CRON"]);
    // The Postfix entry without MESSAGE no longer matches, so nothing is skipped.
    assert_eq!(reader.stats().skipped, 0);
    assert_eq!(reader.stats().filtered, 8);
}

#[test]
fn resume_after_cursor_returns_exactly_the_rest() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let records =
        read_all(&mut JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap());
    assert_eq!(records.len(), 8);

    for (i, r) in records.iter().enumerate() {
        let start = JournalStart::AfterCursor {
            cursor: cursor_of(r).to_owned(),
            fallback: Some(t(0)),
        };
        let mut reader = JournalReader::open(&files(path.clone(), start)).unwrap();
        assert!(!reader.fell_back(), "cursor {i} not found");
        assert_eq!(read_all(&mut reader), records[i + 1..], "after record {i}");
    }

    // The cursor of a non-Postfix entry (dovecot, the second entry) works as well.
    let all = journalctl_cursors(&path);
    let start = JournalStart::AfterCursor {
        cursor: all[1].clone(),
        fallback: None,
    };
    let mut reader = JournalReader::open(&files(path.clone(), start)).unwrap();
    assert!(!reader.fell_back());
    assert_eq!(read_all(&mut reader), records[1..]);

    // A reader that stepped over non-matching entries at the end can hand out their
    // cursor: resuming after it reads nothing twice.
    let mut reader = JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap();
    let first_four: Vec<Record> = (0..4)
        .map(|_| reader.next_record().unwrap().unwrap())
        .collect();
    assert_eq!(first_four, records[..4]);
    let here = reader.current_cursor().unwrap();
    assert_eq!(here, all[4]);
    let start = JournalStart::AfterCursor {
        cursor: here,
        fallback: None,
    };
    assert_eq!(
        read_all(&mut JournalReader::open(&files(path, start)).unwrap()),
        records[4..]
    );
}

#[test]
fn since_starts_at_the_first_entry_at_or_after_the_time() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let records =
        read_all(&mut JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap());
    let since = |at| {
        read_all(&mut JournalReader::open(&files(path.clone(), JournalStart::Since(at))).unwrap())
    };
    assert_eq!(since(t(300)), records[1..]);
    assert_eq!(since(t(301)), records[2..]);
    assert_eq!(since(t(-1000)), records);
    assert_eq!(since(DateTime::from_timestamp(-5, 0).unwrap()), records);
    assert!(since(t(10_000)).is_empty());
}

#[test]
fn missing_cursor_falls_back_to_the_fallback_time() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let records =
        read_all(&mut JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap());

    // A cursor of another journal (same entries, another file, so another sequence
    // number id): libsystemd seeks to the nearest entry, the reader notices it is not
    // the cursor's and starts at the fallback time.
    let other_dir = tempfile::tempdir().unwrap();
    let other = build_journal(other_dir.path(), &[fixture("basic.export")]);
    let other_records =
        read_all(&mut JournalReader::open(&files(other, JournalStart::Head)).unwrap());
    let foreign = cursor_of(&other_records[2]).to_owned();
    assert_ne!(foreign, cursor_of(&records[2]));
    let start = JournalStart::AfterCursor {
        cursor: foreign.clone(),
        fallback: Some(t(320)),
    };
    let mut reader = JournalReader::open(&files(path.clone(), start)).unwrap();
    assert!(reader.fell_back());
    assert_eq!(read_all(&mut reader), records[3..]);

    // Without a fallback time: the head, never the tail.
    let start = JournalStart::AfterCursor {
        cursor: foreign,
        fallback: None,
    };
    let mut reader = JournalReader::open(&files(path.clone(), start)).unwrap();
    assert!(reader.fell_back());
    assert_eq!(read_all(&mut reader), records);

    // Not a cursor at all, or a made-up one, is treated the same way.
    for bogus in [
        "not-a-cursor",
        "",
        "s=0123456789abcdef0123456789abcdef;i=3;b=5c0f0e2b9a3d4c7e8f1a2b3c4d5e6f70;m=1300000;t=60a24181f7a30;x=0123456789abcdef",
        "s=zz;i=;b=;x=",
        "a\0b",
    ] {
        let start = JournalStart::AfterCursor {
            cursor: bogus.into(),
            fallback: Some(t(1000)),
        };
        let mut reader = JournalReader::open(&files(path.clone(), start)).unwrap();
        assert!(reader.fell_back(), "{bogus:?}");
        assert_eq!(read_all(&mut reader), records[5..], "{bogus:?}");
    }
}

#[test]
fn tail_of_files_reads_nothing_old() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let mut reader = JournalReader::open(&files(path, JournalStart::Tail)).unwrap();
    assert!(reader.next_record().unwrap().is_none());
    assert_eq!(reader.stats().entries, 0);
}

/// Follow a journal directory while journal-remote appends to its file: no root or
/// journald needed.
#[test]
fn follow_directory_while_it_grows() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let path = build_journal(dir.path(), &[fixture("basic.export")]);
    let records =
        read_all(&mut JournalReader::open(&files(path.clone(), JournalStart::Head)).unwrap());
    let last = cursor_of(records.last().unwrap()).to_owned();

    let source = JournalSource::Directory(dir.path().to_path_buf());
    let mut tail =
        JournalReader::open(&JournalOptions::new(source.clone(), JournalStart::Tail)).unwrap();
    let after = JournalStart::AfterCursor {
        cursor: last,
        fallback: None,
    };
    let mut resumed = JournalReader::open(&JournalOptions::new(source, after)).unwrap();
    assert!(!resumed.fell_back());
    assert!(tail.next_record().unwrap().is_none());
    assert!(resumed.next_record().unwrap().is_none());

    build_journal(dir.path(), &[fixture("later.export")]);
    let want: Vec<&[u8]> = vec![
        b"connect from other.example.org[192.0.2.20]",
        b"disconnect from other.example.org[192.0.2.20] ehlo=1 quit=1 commands=2",
    ];
    for reader in [&mut tail, &mut resumed] {
        let got = follow(reader, want.len(), Duration::from_secs(10));
        let messages: Vec<&[u8]> = got.iter().map(|r| r.message.as_slice()).collect();
        assert_eq!(messages, want);
        assert_eq!(got[0].timestamp, t(60_000));
        assert_eq!(reader.stats().filtered, 1, "the sshd entry");
    }
}

/// A reader opened at the tail of an empty directory sees a journal file created
/// later.
#[test]
fn follow_empty_directory() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let source = JournalSource::Directory(dir.path().to_path_buf());
    let mut tail = JournalReader::open(&JournalOptions::new(source, JournalStart::Tail)).unwrap();
    assert!(!tail.has_files());
    assert!(tail.next_record().unwrap().is_none());
    assert_eq!(tail.current_cursor(), None);
    build_journal(dir.path(), &[fixture("later.export")]);
    let got = follow(&mut tail, 2, Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].message,
        b"connect from other.example.org[192.0.2.20]"
    );
}

/// Reads with `next_record` and `wait` until `n` records came or `limit` passed.
fn follow(reader: &mut JournalReader, n: usize, limit: Duration) -> Vec<Record> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match reader.next_record().unwrap() {
            Some(r) => got.push(r),
            None => reader.wait(Duration::from_millis(200)).unwrap(),
        }
    }
    got
}

/// Entries written through journald's three doors (native protocol, stdout stream,
/// syslog socket) reach a reader of the system journal.
#[test]
fn live_journald() {
    let Some(live) = LiveJournal::get() else {
        return;
    };
    let prefix = format!("postfix-test-{}", std::process::id());
    let started = Utc::now() - chrono::Duration::seconds(1);

    // An entry written before the tail reader opens must not reach it; wait until
    // journald has stored it.
    live.native(&format!("{prefix}/pickup"), 4241, "before the tail");
    let mut since = JournalReader::open(&JournalOptions {
        source: JournalSource::System,
        identifier_prefixes: vec![prefix.clone()],
        start: JournalStart::Since(started),
    })
    .unwrap();
    if !since.has_files() {
        eprintln!("skipping live journald test: the system journal is not readable by this user");
        return;
    }
    let before = follow(&mut since, 1, Duration::from_secs(10));
    assert_eq!(before.len(), 1, "the first entry never arrived");
    assert_eq!(before[0].message, b"before the tail");

    let mut tail = JournalReader::open(&JournalOptions {
        source: JournalSource::System,
        identifier_prefixes: vec![prefix.clone()],
        start: JournalStart::Tail,
    })
    .unwrap();
    assert!(tail.next_record().unwrap().is_none());

    live.native(&format!("{prefix}/smtp"), 4242, "via the native protocol");
    live.stdout(&format!("{prefix}/qmgr"), "via a stdout stream");
    let via_syslog = live.syslog(&format!("{prefix}/smtpd"), "via the syslog socket");
    let n = if via_syslog { 3 } else { 2 };

    let mut got = follow(&mut tail, n, Duration::from_secs(10));
    assert_eq!(got.len(), n, "{got:#?}");
    // The three writers are separate processes; journald may store them in any order.
    got.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for r in &got {
        assert_eq!(&*r.host, host.trim(), "{r:?}");
        assert!(r.pid.is_some(), "{r:?}");
        assert!(r.timestamp >= started, "{r:?}");
    }
    let qmgr = &got[0];
    assert_eq!(&*qmgr.identifier, format!("{prefix}/qmgr"));
    assert_eq!(qmgr.message, b"via a stdout stream");
    let smtp = &got[1];
    assert_eq!(&*smtp.identifier, format!("{prefix}/smtp"));
    assert_eq!(smtp.message, b"via the native protocol");
    assert_eq!(smtp.pid, Some(4242), "SYSLOG_PID wins over _PID");
    if via_syslog {
        assert_eq!(&*got[2].identifier, format!("{prefix}/smtpd"));
        assert_eq!(got[2].message, b"via the syslog socket");
    }

    // The since-reader sees them too, after the first one, and resuming after the
    // first one's cursor gives the same.
    let rest = follow(&mut since, n, Duration::from_secs(10));
    assert_eq!(rest.len(), n);
    let after = JournalStart::AfterCursor {
        cursor: cursor_of(&before[0]).to_owned(),
        fallback: Some(started),
    };
    let mut resumed = JournalReader::open(&JournalOptions {
        source: JournalSource::System,
        identifier_prefixes: vec![prefix.clone()],
        start: after,
    })
    .unwrap();
    assert!(!resumed.fell_back());
    assert_eq!(read_all(&mut resumed), rest);
    let unique: HashSet<&str> = rest.iter().map(cursor_of).collect();
    assert_eq!(unique.len(), n);

    // Rotation: journald archives system.journal and starts a new one. The following
    // reader keeps its place, and cursors of the archived file still resume.
    let rotated = std::process::Command::new("journalctl")
        .arg("--rotate")
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    live.native(&format!("{prefix}/smtp"), 4243, "after rotation");
    let after_rotation = follow(&mut tail, 1, Duration::from_secs(10));
    assert_eq!(after_rotation.len(), 1);
    assert_eq!(after_rotation[0].message, b"after rotation");
    assert!(tail.next_record().unwrap().is_none());
    let after = JournalStart::AfterCursor {
        cursor: cursor_of(&before[0]).to_owned(),
        fallback: None,
    };
    let mut resumed = JournalReader::open(&JournalOptions {
        source: JournalSource::System,
        identifier_prefixes: vec![prefix.clone()],
        start: after,
    })
    .unwrap();
    assert!(!resumed.fell_back());
    let all = read_all(&mut resumed);
    assert_eq!(all.len(), n + 1);
    assert_eq!(all[n].message, b"after rotation");
}

/// The journal file holding the cursor's entry was vacuumed: the reader falls back to
/// the fallback time in what is left.
#[test]
fn vacuumed_cursor_falls_back() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let old = build_journal(dir.path(), &[fixture("basic.export")]);
    let old_records =
        read_all(&mut JournalReader::open(&files(old.clone(), JournalStart::Head)).unwrap());
    let newer_dir = tempfile::tempdir().unwrap();
    let newer = build_journal(newer_dir.path(), &[fixture("later.export")]);
    let moved = dir.path().join("newer.journal");
    std::fs::rename(&newer, &moved).unwrap();

    let source = JournalSource::Directory(dir.path().to_path_buf());
    let resume = |fallback| {
        let start = JournalStart::AfterCursor {
            cursor: cursor_of(&old_records[7]).to_owned(),
            fallback,
        };
        JournalReader::open(&JournalOptions::new(source.clone(), start)).unwrap()
    };
    // Both files there: the cursor is found, the newer file's records follow.
    let mut reader = resume(Some(t(0)));
    assert!(!reader.fell_back());
    assert_eq!(read_all(&mut reader).len(), 2);

    // The old file vacuumed: fall back to the time of the last stored record (here
    // one between the newer file's two records, to tell it from the head).
    std::fs::remove_file(&old).unwrap();
    let mut reader = resume(Some(t(60_005)));
    assert!(reader.fell_back());
    let got = read_all(&mut reader);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].message,
        b"disconnect from other.example.org[192.0.2.20] ehlo=1 quit=1 commands=2"
    );
}

/// Loading speed: builds a journal of [`RATE_ENTRIES`] entries and reads it all.
/// Run with
/// `cargo test -p pftrack-input --release --test journal -- --ignored --nocapture loading_rate`.
#[test]
#[ignore = "builds a 300k-entry journal; run by hand in release mode"]
fn loading_rate() {
    need_journal_remote!();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("big.export");
    let (entries, postfix) = journal_support::write_big_export(&export, RATE_ENTRIES);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let built = Instant::now();
    build_journal(&out, &[export]);
    eprintln!(
        "journal-remote built {entries} entries in {:.1?}",
        built.elapsed()
    );

    // Wall time depends on what else runs on the machine; the thread's CPU time
    // (from /proc/thread-self/schedstat) does much less.
    for round in 0..3 {
        let began = Instant::now();
        let cpu_began = thread_cpu_seconds();
        let mut reader = JournalReader::open(&JournalOptions::new(
            JournalSource::Directory(out.clone()),
            JournalStart::Head,
        ))
        .unwrap();
        let mut n = 0usize;
        let mut bytes = 0usize;
        while let Some(r) = reader.next_record().unwrap() {
            n += 1;
            bytes += r.message.len();
        }
        let secs = began.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds() - cpu_began;
        let stats = reader.stats();
        assert_eq!(stats.entries, entries as u64);
        assert_eq!(n, postfix);
        let e = stats.entries as f64;
        eprintln!(
            "round {round}: {} entries ({n} records, {bytes} message bytes): \
             {secs:.2} s wall, {cpu:.2} s CPU: {:.0} entries/s wall, {:.0} entries/CPU-s, \
             {:.0} records/CPU-s",
            stats.entries,
            e / secs,
            e / cpu,
            n as f64 / cpu
        );
    }
}

/// CPU time this thread has used, in seconds.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
    ns as f64 / 1e9
}

/// Entries in the loading-rate journal.
const RATE_ENTRIES: usize = 300_000;
