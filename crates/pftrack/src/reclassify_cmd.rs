//! `pftrack reclassify`: the current failure rules re-applied to stored rows.
//!
//! After the rules change (`classify.rules`, or `--rules FILE` as for `pftrack
//! classify`), the failures stored under the old rules keep their old verdicts; this
//! walks `delivery_attempt`, `delivery_to` and `noqueue` in pages of `--batch` rows
//! and updates the rows whose verdict changed (the store's `reclassify` module says how
//! this stays out of the loaders' way). `--since` limits it to recent failures,
//! `--dry-run` only counts. The summary gives, per table, the rows examined and
//! changed, and the most frequent reason changes; `--json` the same as one object.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use pftrack_store::{
    DEFAULT_RECLASSIFY_BATCH, MAX_RECLASSIFY_BATCH, ReasonChange, ReclassifyOptions,
    ReclassifyTable, Store,
};
use serde::Serialize;

use crate::config::Config;

/// Reason changes listed in the summary, the most frequent first.
const TOP_CHANGES: usize = 10;

/// Arguments of `pftrack reclassify`.
#[derive(Debug, clap::Args)]
pub struct ReclassifyArgs {
    /// Only failures since: a duration back from now (`2d`, `12h`), a date, `today`,
    /// or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Rows read, classified and updated per transaction.
    #[arg(
        long,
        default_value_t = DEFAULT_RECLASSIFY_BATCH,
        value_parser = parse_batch,
    )]
    batch: usize,
    /// Count what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// A user rules file (YAML); may be repeated, the first has precedence. Rules of
    /// `classify.rules` in the configuration come after these.
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_batch(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_RECLASSIFY_BATCH).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number from 1 to {MAX_RECLASSIFY_BATCH}"
        )),
    }
}

/// What one table's walk did.
#[derive(Debug, Default, Serialize)]
struct TableSummary {
    table: &'static str,
    examined: u64,
    /// Rows whose verdict differs from the stored one.
    differing: u64,
    /// Rows written.
    changed: u64,
    /// Differing rows not written: a loader held or changed them meanwhile.
    skipped: u64,
}

/// One reason change with its row count.
#[derive(Debug, Serialize)]
struct ChangeCount {
    old: Option<String>,
    new: Option<String>,
    rows: u64,
}

/// The whole run.
#[derive(Debug, Serialize)]
struct Summary {
    dry_run: bool,
    since: Option<DateTime<Utc>>,
    batch: usize,
    tables: Vec<TableSummary>,
    /// The most frequent reason changes (all tables), at most [`TOP_CHANGES`].
    changes: Vec<ChangeCount>,
    /// How many distinct reason changes there were in all.
    distinct_changes: usize,
}

/// Run the command.
pub async fn run(args: &ReclassifyArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| crate::status::parse_time(s, Utc::now()))
        .transpose()
        .context("--since")?;
    let mut files: Vec<&Path> = args.rules.iter().map(PathBuf::as_path).collect();
    if let Some(p) = config.classify.rules.as_deref() {
        files.push(p);
    }
    let classifier = crate::classify_cmd::build(&files)?;
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    let options = ReclassifyOptions {
        since,
        batch: args.batch,
        dry_run: args.dry_run,
    };

    let mut tables = Vec::new();
    let mut changes: HashMap<ReasonChange, u64> = HashMap::new();
    for table in ReclassifyTable::ALL {
        let mut summary = TableSummary {
            table: table.name(),
            ..TableSummary::default()
        };
        let mut cursor = None;
        loop {
            let page = store
                .reclassify_page(table, &classifier, &options, cursor.as_ref())
                .await
                .with_context(|| format!("reclassifying {}", table.name()))?;
            summary.examined += page.examined;
            summary.differing += page.differing;
            summary.changed += page.changed;
            for (change, n) in page.changes {
                *changes.entry(change).or_default() += n;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if !args.dry_run {
            summary.skipped = summary.differing - summary.changed;
        }
        tracing::debug!(
            table = summary.table,
            examined = summary.examined,
            changed = summary.changed,
            "Table reclassified."
        );
        tables.push(summary);
    }

    let distinct_changes = changes.len();
    let mut top: Vec<ChangeCount> = changes
        .into_iter()
        .map(|(c, rows)| ChangeCount {
            old: c.old,
            new: c.new,
            rows,
        })
        .collect();
    top.sort_by(|a, b| {
        b.rows
            .cmp(&a.rows)
            .then_with(|| (&a.old, &a.new).cmp(&(&b.old, &b.new)))
    });
    top.truncate(TOP_CHANGES);
    let summary = Summary {
        dry_run: args.dry_run,
        since,
        batch: args.batch,
        tables,
        changes: top,
        distinct_changes,
    };

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        out.write_all(render(&summary).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The summary as text.
fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let verb = if s.dry_run { "would change" } else { "changed" };
    for t in &s.tables {
        let shown = if s.dry_run { t.differing } else { t.changed };
        let _ = write!(
            text,
            "{:<17} {:>10} examined  {:>10} {verb}",
            t.table, t.examined, shown
        );
        if t.skipped > 0 {
            let _ = write!(
                text,
                "  ({} skipped: being written by a loader; run again)",
                t.skipped
            );
        }
        text.push('\n');
    }
    if !s.changes.is_empty() {
        let _ = writeln!(text, "\nreason changes (rows, all tables):");
        for c in &s.changes {
            let name = |r: &Option<String>| r.clone().unwrap_or_else(|| "-".to_owned());
            let _ = writeln!(
                text,
                "  {:>10}  {} -> {}",
                c.rows,
                name(&c.old),
                name(&c.new)
            );
        }
        if s.distinct_changes > s.changes.len() {
            let _ = writeln!(
                text,
                "  … and {} other reason changes",
                s.distinct_changes - s.changes.len()
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_bounds() {
        assert_eq!(parse_batch("5000"), Ok(5000));
        assert!(parse_batch("0").is_err());
        assert!(parse_batch(&(MAX_RECLASSIFY_BATCH + 1).to_string()).is_err());
        assert!(parse_batch("many").is_err());
    }
}
