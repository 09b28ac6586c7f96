//! Shared per-record work: is it Postfix, and what event is it.

use pftrack_input::{ReaderOptions, Record};
use pftrack_parse::Event;
use serde::Serialize;

/// Counters every command reports.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestCounts {
    /// Syslog records read.
    pub records: u64,
    /// Records whose identifier has a Postfix prefix.
    pub postfix: u64,
    /// Postfix records an arm recognised.
    pub recognized: u64,
    /// Postfix records no arm recognised.
    pub unknown: u64,
    /// Lines that are not syslog records.
    pub malformed: u64,
}

/// Decides which records are Postfix's, by identifier prefix.
#[derive(Debug, Clone)]
pub struct PostfixFilter {
    prefixes: Vec<String>,
}

impl PostfixFilter {
    /// Identifiers starting with one of `prefixes` are Postfix's.
    pub fn new(prefixes: &[String]) -> Self {
        PostfixFilter {
            prefixes: prefixes.to_vec(),
        }
    }

    /// True when `record` was logged by Postfix.
    pub fn matches(&self, record: &Record) -> bool {
        let ident = &*record.identifier;
        self.prefixes.iter().any(|p| ident.starts_with(p.as_str()))
    }
}

/// Count `event` as recognised or unknown.
pub fn count_event(counts: &mut IngestCounts, event: &Event<'_>) {
    if event.is_recognized() {
        counts.recognized += 1;
    } else {
        counts.unknown += 1;
    }
}

/// How syslog files are read: `--timezone` (else `timezone:` in the config, else the
/// machine's zone) for stamps without an offset, and `--year` for yearless stamps.
pub fn reader_options(
    timezone: Option<&str>,
    year: Option<i32>,
    config: &crate::config::Config,
) -> anyhow::Result<ReaderOptions> {
    let zone = timezone.or(config.timezone.as_deref()).unwrap_or("local");
    let zone: pftrack_input::Zone = zone
        .parse()
        .map_err(|e| anyhow::anyhow!("--timezone: {e}"))?;
    Ok(ReaderOptions {
        zone,
        year,
        ..ReaderOptions::default()
    })
}

/// The failure classifier of the configuration: the built-in rules, after the user
/// rules of `classify.rules` when set.
pub fn configured_classifier(
    config: &crate::config::Config,
) -> anyhow::Result<pftrack_classify::Classifier> {
    let files: Vec<&std::path::Path> = config.classify.rules.as_deref().into_iter().collect();
    crate::classify_cmd::build(&files)
}
