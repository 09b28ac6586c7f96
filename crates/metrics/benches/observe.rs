//! The cost `observe()` adds to the daemon's reader thread: parse alone against parse
//! followed by `observe()`, over a generated log (`pftrack-loggen`, 100 000 lines).
//!
//! `cargo bench -p pftrack-metrics`; the difference of the two per-line times, over the
//! time per entry of the whole pipeline (`scripts/bench-follow load`), is the share of
//! throughput that serving metrics costs (docs/metrics.md, issue 15).

use std::hint::black_box;

use divan::Bencher;
use divan::counter::ItemsCount;
use pftrack_metrics::labels::Input;
use pftrack_metrics::{Metrics, observe};
use pftrack_parse::parse;

fn main() {
    divan::main();
}

/// (daemon, message) of the Postfix records of a generated log.
fn bodies() -> Vec<(String, String)> {
    let config = pftrack_loggen::GenConfig {
        lines: 100_000,
        ..Default::default()
    };
    let mut log = Vec::new();
    if let Err(e) = pftrack_loggen::generate(&config, &mut log) {
        panic!("generate log: {e}");
    }
    log.split(|&b| b == b'\n')
        .filter_map(|line| pftrack_input::syslog::split(line).ok())
        .filter(|h| h.ident.starts_with(b"postfix"))
        .map(|h| {
            let ident = String::from_utf8_lossy(h.ident);
            (
                pftrack_input::daemon_of(&ident).to_string(),
                String::from_utf8_lossy(h.message).into_owned(),
            )
        })
        .collect()
}

/// Parse only (the reader without metrics).
#[divan::bench]
fn parse_only(bencher: Bencher<'_, '_>) {
    let lines = bodies();
    bencher.counter(ItemsCount::new(lines.len())).bench(|| {
        for (d, m) in &lines {
            black_box(parse(d, m));
        }
    });
}

/// Parse, then count (the reader with `metrics:` configured).
#[divan::bench]
fn parse_and_observe(bencher: Bencher<'_, '_>) {
    let lines = bodies();
    let (metrics, _registry) = Metrics::new(Input::Journal);
    bencher.counter(ItemsCount::new(lines.len())).bench(|| {
        for (d, m) in &lines {
            metrics.pipeline.records_read.inc();
            metrics.pipeline.records_postfix.inc();
            let event = parse(d, m);
            observe(&metrics, d, black_box(&event));
        }
    });
}
