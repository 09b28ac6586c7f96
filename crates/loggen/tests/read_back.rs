//! Generated logs read back through `pftrack-input`: every line is a syslog record
//! with a valid stamp, in time order, with the years and zone the config asked for.

#![allow(clippy::unwrap_used)] // a test file: panics are the failure report

use chrono::{NaiveDate, NaiveDateTime};
use pftrack_input::{FileReader, ReaderOptions, Zone};
use pftrack_loggen::{GenConfig, GenStats, StampFormat, generate};

fn read_back(cfg: &GenConfig, options: ReaderOptions) -> (GenStats, Vec<pftrack_input::Record>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let stats = generate(cfg, &mut file).unwrap();
    drop(file);
    let records: Vec<_> = FileReader::open(&path, options)
        .unwrap()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    (stats, records)
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .unwrap()
}

#[test]
fn classic_across_new_year_reads_back_with_years() {
    let cfg = GenConfig {
        lines: 30_000,
        start: at(2025, 12, 31, 23, 40),
        hosts: vec!["mx1".into(), "mx2.example.org".into()],
        ..GenConfig::default()
    };
    let options = ReaderOptions {
        zone: Zone::Utc,
        year: Some(2025),
        ..Default::default()
    };
    let (stats, recs) = read_back(&cfg, options);
    assert_eq!(recs.len() as u64, stats.lines);
    assert!(recs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    // Classic stamps have whole seconds: compare at that resolution.
    let secs = |t: NaiveDateTime| t.and_utc().timestamp();
    assert_eq!(recs[0].timestamp.timestamp(), secs(stats.first.unwrap()));
    assert_eq!(
        recs.last().unwrap().timestamp.timestamp(),
        secs(stats.last.unwrap())
    );
    assert_eq!(
        recs.last().unwrap().timestamp.format("%Y").to_string(),
        "2026"
    );
    for r in &recs {
        assert!(
            matches!(r.host.as_ref(), "mx1" | "mx2.example.org"),
            "{}",
            r.host
        );
        assert!(r.identifier.starts_with("postfix/"), "{}", r.identifier);
        assert!(r.pid.is_some());
        assert!(!r.message.is_empty());
    }
}

#[test]
fn rfc3339_with_offset_reads_back_exactly() {
    let cfg = GenConfig {
        lines: 10_000,
        format: StampFormat::Rfc3339,
        utc_offset_seconds: 3600,
        ..GenConfig::default()
    };
    // The zone option must not matter: the stamps carry their offset.
    let options = ReaderOptions {
        zone: Zone::Named(chrono_tz_prague()),
        ..Default::default()
    };
    let (stats, recs) = read_back(&cfg, options);
    assert_eq!(recs.len() as u64, stats.lines);
    let first_utc = stats.first.unwrap() - chrono::TimeDelta::hours(1);
    assert_eq!(recs[0].timestamp.naive_utc(), first_utc);
    assert!(recs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
}

fn chrono_tz_prague() -> chrono_tz::Tz {
    "Europe/Prague".parse().unwrap()
}
