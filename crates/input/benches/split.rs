//! Header splitting and whole-file reading throughput.
//!
//! Input: the public corpus `shared/corpora/all-lines.log` (190 k real lines in many
//! layouts), read in place. Run with `cargo bench -p pftrack-input`.

use std::path::{Path, PathBuf};

use divan::{Bencher, black_box};
use pftrack_input::year::{Reference, Timestamper};
use pftrack_input::{FileReader, ReaderOptions, Zone, syslog};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/all-lines.log")
}

fn lines() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(corpus()).unwrap_or_default();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn main() {
    divan::main();
}

/// `syslog::split` alone over every corpus line.
#[divan::bench(sample_count = 10)]
fn split_corpus(bencher: Bencher<'_, '_>) {
    let lines = lines();
    bencher
        .counter(divan::counter::ItemsCount::new(lines.len()))
        .bench(|| {
            for l in &lines {
                let _ = black_box(syslog::split(black_box(l)));
            }
        });
}

/// `split` plus year inference and zone conversion (Local zone, the slowest).
#[divan::bench(sample_count = 10)]
fn split_and_timestamp(bencher: Bencher<'_, '_>) {
    let lines = lines();
    bencher
        .counter(divan::counter::ItemsCount::new(lines.len()))
        .bench(|| {
            let mut ts = Timestamper::new(Zone::Local, Reference::Year(2024));
            for l in &lines {
                if let Ok(h) = syslog::split(black_box(l)) {
                    let _ = black_box(ts.to_utc(&h.stamp));
                }
            }
        });
}

/// The whole `FileReader` (read, split, timestamp, intern, allocate the record).
#[divan::bench(sample_count = 10)]
fn file_reader(bencher: Bencher<'_, '_>) {
    let n = lines().len();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .bench(|| {
            let r = FileReader::open(
                corpus(),
                ReaderOptions {
                    zone: Zone::Local,
                    ..Default::default()
                },
            );
            let mut count = 0usize;
            if let Ok(r) = r {
                for rec in r {
                    count += usize::from(rec.is_ok());
                }
            }
            black_box(count)
        });
}
