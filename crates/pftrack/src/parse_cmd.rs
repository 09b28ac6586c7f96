//! `pftrack parse [FILE...]`: one JSON object per record, or a summary.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pftrack_input::{FileReader, Position, Record};
use serde::Serialize;

use crate::config::Config;
use crate::ingest::{IngestCounts, PostfixFilter, count_event, reader_options};

/// Arguments of `pftrack parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// Log files (plain or gzip); standard input when none.
    files: Vec<PathBuf>,
    /// Print one summary object instead of one object per record.
    #[arg(long)]
    summary: bool,
    /// Year of the first yearless stamp (default: inferred from the file's mtime).
    #[arg(long)]
    year: Option<i32>,
    /// Zone of stamps without an offset (local, UTC, +01:00, Europe/Prague).
    #[arg(long)]
    timezone: Option<String>,
}

#[derive(Serialize)]
struct RecordJson<'a> {
    timestamp: String,
    host: &'a str,
    identifier: &'a str,
    service: &'a str,
    daemon: &'a str,
    pid: Option<u32>,
    file: String,
    line: u64,
    offset: u64,
    message: &'a str,
    #[serde(flatten)]
    event: Option<pftrack_parse::Event<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    counts: IngestCounts,
    kinds: BTreeMap<&'static str, u64>,
}

/// Run the command. Exit 0 even with unknown or malformed lines; an unreadable file is
/// reported, the others are still read, and the exit code is then 1.
pub fn run(args: &ParseArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let options = reader_options(args.timezone.as_deref(), args.year, config)?;
    let filter = PostfixFilter::new(&config.journal.identifiers);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut counts = IngestCounts::default();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failed = false;

    let mut stdin_copy = None;
    let files: Vec<PathBuf> = if args.files.is_empty() {
        // FileReader reads files (it detects gzip and seeks), so spool stdin first.
        let mut tmp =
            tempfile::NamedTempFile::new().context("cannot create a temporary file for stdin")?;
        std::io::copy(&mut std::io::stdin().lock(), tmp.as_file_mut())
            .context("cannot read standard input")?;
        let path = tmp.path().to_path_buf();
        stdin_copy = Some(tmp);
        vec![path]
    } else {
        args.files.clone()
    };

    for path in &files {
        let reader = match FileReader::open(path, options) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pftrack: error: {e}");
                failed = true;
                continue;
            }
        };
        for item in reader {
            match item {
                Ok(record) => {
                    counts.records += 1;
                    let is_postfix = filter.matches(&record);
                    let text = record.message_text();
                    let event = if is_postfix {
                        counts.postfix += 1;
                        let event = pftrack_parse::parse(record.daemon(), &text);
                        count_event(&mut counts, &event);
                        *kinds.entry(event.kind()).or_default() += 1;
                        Some(event)
                    } else {
                        None
                    };
                    if !args.summary {
                        let shown = if stdin_copy.is_some() {
                            Some("-")
                        } else {
                            None
                        };
                        write_record(&mut out, &record, &text, event, shown)?;
                    }
                }
                Err(e) if e.is_malformed() => {
                    counts.malformed += 1;
                    tracing::debug!(error = %e, "Skipped a line that is not a syslog record.");
                }
                Err(e) => {
                    eprintln!("pftrack: error: {e}");
                    failed = true;
                    break;
                }
            }
        }
    }
    if args.summary {
        serde_json::to_writer(&mut out, &Summary { counts, kinds })?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_record(
    out: &mut impl Write,
    record: &Record,
    text: &str,
    event: Option<pftrack_parse::Event<'_>>,
    shown_path: Option<&str>,
) -> anyhow::Result<()> {
    let (file, line, offset) = match &record.position {
        Position::File { path, line, offset } => (
            shown_path.map_or_else(|| path.display().to_string(), str::to_owned),
            *line,
            *offset,
        ),
        Position::Journal { cursor } => (cursor.clone(), 0, 0),
    };
    let kind = if event.is_none() {
        Some("not_postfix")
    } else {
        None
    };
    let json = RecordJson {
        timestamp: record
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        host: &record.host,
        identifier: &record.identifier,
        service: record.service(),
        daemon: record.daemon(),
        pid: record.pid,
        file,
        line,
        offset,
        message: text,
        event,
        kind,
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.write_all(b"\n")?;
    Ok(())
}
