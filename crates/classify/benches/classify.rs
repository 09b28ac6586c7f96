//! Classification throughput on realistic texts: the labelled bounce texts and the
//! failure texts of `../shared/corpora/all-lines.log` (`status=deferred/bounced/expired`
//! and NOQUEUE rejects), read in place at bench time. Skipped when `../shared` is
//! missing.
//!
//! `cargo bench -p pftrack-classify` prints time per iteration and items (texts) per
//! second; every iteration classifies the whole set once.

use std::hint::black_box;

use divan::Bencher;
use divan::counter::ItemsCount;
use pftrack_classify::{Classifier, Input, normalize};

fn main() {
    divan::main();
}

/// The labelled texts, relative to this crate.
const LABELED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/bounce-texts/labeled.jsonl"
);

/// The real log, relative to this crate.
const ALL_LINES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/all-lines.log"
);

/// (status, dsn, text) owned, so that inputs can borrow from them.
type Item = (String, Option<String>, String);

#[derive(serde::Deserialize)]
struct Labeled {
    status: String,
    dsn: Option<String>,
    text: String,
}

fn labeled() -> Vec<Item> {
    let Ok(data) = std::fs::read_to_string(LABELED) else {
        eprintln!("SKIPPED: {LABELED} is missing");
        return Vec::new();
    };
    data.lines()
        .filter_map(|l| serde_json::from_str::<Labeled>(l).ok())
        .map(|l| (l.status, l.dsn, l.text))
        .collect()
}

/// Failure texts of the real log, the way the extractor sees them.
fn log_failures() -> Vec<Item> {
    let Ok(data) = std::fs::read(ALL_LINES) else {
        eprintln!("SKIPPED: {ALL_LINES} is missing");
        return Vec::new();
    };
    let data = String::from_utf8_lossy(&data);
    let mut out = Vec::new();
    for line in data.lines() {
        for status in ["deferred", "bounced", "expired"] {
            let marker = format!(", status={status} (");
            if let Some(i) = line.find(&marker) {
                let text = line[i + marker.len()..].trim_end().trim_end_matches(')');
                let dsn = line[..i].rsplit_once("dsn=").map(|(_, d)| d.to_owned());
                out.push((status.to_owned(), dsn, text.to_owned()));
            }
        }
        if let Some(i) = line.find(" reject: ")
            && let Some(j) = line[i..].find("]: ")
        {
            let rest = &line[i + j + 3..];
            let text = rest.split("; from=<").next().unwrap_or(rest);
            out.push(("rejected".to_owned(), None, text.to_owned()));
        }
    }
    out
}

fn inputs(items: &[Item]) -> Vec<Input<'_>> {
    items
        .iter()
        .map(|(status, dsn, text)| Input {
            status,
            dsn: dsn.as_deref(),
            text,
            ..Input::default()
        })
        .collect()
}

fn run(bencher: Bencher<'_, '_>, items: &[Item]) {
    let classifier = match Classifier::builder().build() {
        Ok(c) => c,
        Err(e) => panic!("build: {e}"),
    };
    let inputs = inputs(items);
    let mut scratch = Vec::new();
    bencher
        .counter(ItemsCount::new(inputs.len()))
        .bench_local(|| {
            for i in &inputs {
                black_box(classifier.classify_with(black_box(i), &mut scratch));
            }
        });
}

/// The real log's failure texts (mostly Postfix's own wordings and common replies).
#[divan::bench]
fn classify_log_failures(bencher: Bencher<'_, '_>) {
    run(bencher, &log_failures());
}

/// The labelled texts (long, varied replies from many providers: the slow case).
#[divan::bench]
fn classify_labeled(bencher: Bencher<'_, '_>) {
    run(bencher, &labeled());
}

/// Normalising the log's failure texts for the unclassified list.
#[divan::bench]
fn normalize_log_failures(bencher: Bencher<'_, '_>) {
    let items = log_failures();
    bencher.counter(ItemsCount::new(items.len())).bench(|| {
        for (_, _, text) in &items {
            black_box(normalize(black_box(text)));
        }
    });
}

/// Building the classifier (built-in rules: parse, validate, compile).
#[divan::bench(sample_count = 10)]
fn build_builtin() {
    black_box(Classifier::builder().build().ok());
}
