//! `pftrack export`: accounting records (delivered, deferred, bounced, rejected,
//! auth-failure) as TSV, CSV or JSONL — a period to standard output or a file, or incrementally into a
//! directory (`--output DIR`, each record once). The work is `pftrack_export`'s.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use pftrack_export::{DirOptions, Field, Format, RecordType, Selection};
use pftrack_report::Period;
use pftrack_store::Store;

use crate::config::Config;
use crate::exclusive::EXIT_INPUT_BUSY;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Start of the period (RFC 3339); default: 24 h before --until.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["day", "output"])]
    since: Option<String>,
    /// End of the period, excluded (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["day", "output"])]
    until: Option<String>,
    /// Whole days: today, yesterday, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD (both included).
    #[arg(
        short = 'd',
        long = "day",
        value_name = "DAY",
        conflicts_with = "output"
    )]
    day: Option<String>,
    /// Zone of -d days (an IANA name such as Europe/Berlin).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    timezone: String,
    /// Record types, comma-separated: delivered, deferred, bounced, rejected,
    /// auth-failure (default: all).
    #[arg(long, value_name = "LIST", default_value = "")]
    types: String,
    /// Fields, comma-separated, in order (default: all; see docs/reports.md).
    #[arg(long, value_name = "LIST", default_value = "")]
    fields: String,
    /// tsv (header line, backslash escapes), csv (RFC 4180) or jsonl.
    #[arg(long, value_name = "FORMAT", default_value = "tsv")]
    format: String,
    /// Write the period's records to this file (replaced atomically) instead of
    /// standard output.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "output")]
    file: Option<PathBuf>,
    /// Incremental: append what was not exported into DIR before to one open file per
    /// type, rotating finished files into the archive directory.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Where finished files go (default: DIR/archive; same file system as DIR).
    #[arg(long, value_name = "DIR", requires = "output")]
    archive: Option<PathBuf>,
    /// Start a new file before one would pass this size (bytes, or with k, M, G).
    #[arg(long, value_name = "SIZE", default_value = "200M", requires = "output")]
    rotate_size: String,
    /// Archive a file at the first run after it has been open this long (s, m, h, d, w).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1d",
        requires = "output"
    )]
    rotate_interval: String,
    /// Test knob: milliseconds to sleep after each record (kill tests).
    #[arg(long, hide = true, env = "PFTRACK_EXPORT_TEST_PACE_MS")]
    test_pace_ms: Option<u64>,
}

pub async fn run(args: &ExportArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let selection = Selection {
        types: RecordType::parse_list(&args.types).context("--types")?,
        fields: Field::parse_list(&args.fields).context("--fields")?,
        format: Format::parse(&args.format).context("--format")?,
    };
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    if let Some(dir) = &args.output {
        let opts = DirOptions {
            dir: dir.clone(),
            archive: args.archive.clone(),
            selection,
            rotate_size: parse_size(&args.rotate_size).context("--rotate-size")?,
            rotate_interval: crate::duration::parse(&args.rotate_interval)
                .context("--rotate-interval")?
                .to_std()
                .context("--rotate-interval")?,
            pace: args.test_pace_ms.map(Duration::from_millis),
        };
        let name = format!(
            "pftrack export {}@{}",
            std::process::id(),
            hostname().unwrap_or_default()
        );
        return match pftrack_export::export_incremental(&store, &opts, &name).await {
            Ok(s) => {
                for r in &s.repaired {
                    eprintln!("repaired after an interrupted run: {r}");
                }
                eprintln!(
                    "exported {} into {} (written: {}; archived: {})",
                    s.counts,
                    s.target,
                    list(&s.written),
                    list(&s.archived)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) if e.is_busy() => {
                eprintln!("pftrack: {e}");
                Ok(ExitCode::from(EXIT_INPUT_BUSY))
            }
            Err(e) => Err(e.into()),
        };
    }

    let tz: chrono_tz::Tz = args
        .timezone
        .parse()
        .map_err(|e| anyhow::anyhow!("--timezone {}: {e}", args.timezone))?;
    let period = Period::resolve(
        args.since.as_deref(),
        args.until.as_deref(),
        args.day.as_deref(),
        tz,
        Utc::now(),
    )?;
    let counts = match &args.file {
        Some(path) => {
            // A temporary file next to the target, renamed over it when complete: a
            // failed export never leaves half a file under the name.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
            let counts = {
                let mut out = std::io::BufWriter::new(tmp.as_file_mut());
                let counts = pftrack_export::export_period(
                    &store,
                    &selection,
                    period.since,
                    period.until,
                    &mut out,
                )
                .await?;
                out.flush()?;
                counts
            };
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
            counts
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            pftrack_export::export_period(&store, &selection, period.since, period.until, &mut out)
                .await?
        }
    };
    tracing::debug!(%counts, "Exported the period.");
    Ok(ExitCode::SUCCESS)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// `200M`, `1G`, `512k` (powers of 1000, like haraka's megabytes) or plain bytes.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let Ok(n) = digits.parse::<u64>() else {
        bail!("{text:?}: expected a number of bytes, optionally followed by k, M or G");
    };
    let factor: u64 = match unit {
        "" => 1,
        "k" | "K" => 1000,
        "M" => 1000 * 1000,
        "G" => 1000 * 1000 * 1000,
        _ => bail!("{text:?}: unknown unit {unit:?} (use k, M or G)"),
    };
    match n.checked_mul(factor) {
        Some(0) => bail!("{text:?}: must be more than 0"),
        Some(v) => Ok(v),
        None => bail!("{text:?}: too large"),
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("200M").ok(), Some(200_000_000));
        assert_eq!(parse_size("4096").ok(), Some(4096));
        assert_eq!(parse_size("2k").ok(), Some(2000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5T").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
