//! Header splitting and timestamps against the public corpora in `shared/corpora`
//! (read in place, never copied).

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use pftrack_input::syslog;
use pftrack_input::year::{Reference, Timestamper};
use pftrack_input::{FileReader, ReaderOptions, Zone};

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

/// Skip (with a note) when the corpora are not beside the repository.
fn read_corpus(rel: &str) -> Option<Vec<u8>> {
    let p = corpora().join(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipping: {}: {e}", p.display());
            None
        }
    }
}

/// fail2ban's test log gives the expected local time of each line in a
/// `# failJSON: { "time": "2005-02-21T09:21:54", … }` comment above it; fail2ban runs
/// its tests with the clock at 2005-08-14, so yearless lines are placed at or before
/// that date.
#[test]
fn fail2ban_failjson_times() {
    let Some(text) = read_corpus("fail2ban/postfix") else {
        return;
    };
    let text = String::from_utf8_lossy(&text);
    let reference = NaiveDateTime::parse_from_str("2005-08-14 12:00:00", "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_utc();
    let mut expected: Option<String> = None;
    let mut checked = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# failJSON:") {
            expected = rest
                .split("\"time\":")
                .nth(1)
                .and_then(|t| t.split('"').nth(1))
                .map(str::to_owned);
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(want) = expected.take() else {
            continue;
        };
        let header = syslog::split(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        // Each line on its own (the file is not in time order), zone UTC so the local
        // time reads back unchanged.
        let mut ts = Timestamper::new(Zone::Utc, Reference::Time(reference));
        let got = ts.to_utc(&header.stamp).unwrap().naive_utc();
        // The expectations are written loosely (`2005-03-7T02:09:33`): compare numbers.
        let nums = |s: &str| -> Vec<u32> {
            s.split(|c: char| !c.is_ascii_digit())
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().unwrap())
                .collect()
        };
        let got_s = got.format("%Y-%m-%dT%H:%M:%S").to_string();
        assert_eq!(nums(&got_s), nums(&want), "{line}");
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} expectations found");
}

/// Every line of the merged corpus log splits, except known non-records.
#[test]
fn all_lines_split() {
    let Some(bytes) = read_corpus("all-lines.log") else {
        return;
    };
    let mut failed = Vec::new();
    let mut total = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        total += 1;
        if let Err(e) = syslog::split(line) {
            failed.push(format!("{e}: {}", String::from_utf8_lossy(line)));
        }
    }
    for f in failed.iter().take(30) {
        eprintln!("{f}");
    }
    eprintln!("{} of {total} lines did not split", failed.len());
    assert!(total > 100_000);
    // Two lines in the corpora are damaged (`Jan: 1`, `021-02-06T…`): those, and no more.
    assert!(failed.len() <= 2, "{} failures", failed.len());
}

/// The rotated FgForrest set (`mail.log.2.gz`, `mail.log.1`, `mail.log`) reads in
/// order through the file reader with its leading-year stamps.
#[test]
fn fgforrest_rotated_set() {
    let dir = corpora().join("postfix-deliverability-analytics/real");
    if !dir.is_dir() {
        eprintln!("skipping: {} missing", dir.display());
        return;
    }
    let files = pftrack_input::rotation::expand_and_order(&[dir]).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["mail.log.2.gz", "mail.log.1", "mail.log"]);
    let mut last = None;
    let mut records = 0;
    let mut malformed = 0;
    for f in &files {
        let r = FileReader::open(
            f,
            ReaderOptions {
                zone: Zone::Utc,
                ..Default::default()
            },
        )
        .unwrap();
        let first = r.identity().gzip;
        assert_eq!(first, f.to_string_lossy().ends_with(".gz"));
        for rec in r {
            match rec {
                Ok(rec) => {
                    records += 1;
                    last = Some(rec.timestamp);
                    assert_eq!(rec.host.as_ref(), "gds39d");
                }
                Err(e) if e.is_malformed() => malformed += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(records > 1000);
    assert_eq!(malformed, 0);
    assert_eq!(last.unwrap().format("%Y").to_string(), "2013");
}

/// The Solaris relay sample (`[ID 197553 mail.info]` after every identifier) reads
/// through the file reader with the tag removed.
#[test]
fn solaris_tags_removed_through_the_reader() {
    let path = corpora().join("tobinjt-ASO/random-sample-logs-regex-check");
    if !path.is_file() {
        eprintln!("skipping: {} missing", path.display());
        return;
    }
    let options = ReaderOptions {
        zone: Zone::Utc,
        year: Some(2008),
        ..Default::default()
    };
    let (mut records, mut malformed) = (0, 0);
    for rec in FileReader::open(&path, options).unwrap() {
        match rec {
            Ok(rec) => {
                assert!(!rec.message.starts_with(b"[ID "), "{:?}", rec.position);
                records += 1;
            }
            // syslogd's own `last message repeated N times` has no identifier.
            Err(e) if e.is_malformed() => malformed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(records > 6000);
    assert!(malformed <= 5, "{malformed}");
}
