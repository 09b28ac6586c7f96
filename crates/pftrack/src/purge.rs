//! `pftrack purge --older-than 90d`: apply the retention limit once.
//!
//! The work is [`pftrack_store::purge`] (bounded batches, in-flight messages kept);
//! this is the command around it: where the limit comes from (`--older-than`, else
//! `retention:` in the configuration), a sanity floor, and the report.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::TimeDelta;
use pftrack_store::{PURGE_BATCH_MESSAGES, PurgeCounts, Store};
use serde::Serialize;

use crate::config::Config;

/// Shortest retention accepted. Less is almost certainly a typo (`90s` for `90d`),
/// and would purge mail the helpdesk is still asked about.
pub const MIN_RETENTION: TimeDelta = TimeDelta::days(1);

/// Arguments of `pftrack purge`.
#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Delete messages, recipients and NOQUEUE rows older than this (`90d`, `12w`);
    /// default: `retention:` in the configuration file.
    #[arg(long, value_name = "DURATION")]
    older_than: Option<String>,
    /// Messages per transaction (each batch locks at most this many).
    #[arg(long, default_value_t = PURGE_BATCH_MESSAGES)]
    batch: usize,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

/// The retention limit: `--older-than` if given, else the configuration's
/// `retention:`; `None` when neither is set. Errors below [`MIN_RETENTION`].
pub fn retention(flag: Option<&str>, config: &Config) -> anyhow::Result<Option<TimeDelta>> {
    let (text, source) = match (flag, config.retention.as_deref()) {
        (Some(f), _) => (f, "--older-than"),
        (None, Some(r)) => (r, "retention"),
        (None, None) => return Ok(None),
    };
    let limit = crate::duration::parse(text).with_context(|| format!("{source}: {text:?}"))?;
    if limit < MIN_RETENTION {
        bail!(
            "{source}: {text:?} is shorter than the minimum of {} day(s)",
            MIN_RETENTION.num_days()
        );
    }
    Ok(Some(limit))
}

#[derive(Serialize)]
struct Report {
    older_than_seconds: i64,
    messages: u64,
    recipients: u64,
    attempts: u64,
    noqueue: u64,
    auth_failures: u64,
    /// Outbox events (issue 12) whose deliveries were all settled.
    events: u64,
    kept_in_flight: u64,
    batches: u64,
    /// Monthly partitions dropped whole (migration V14), and the rows they held by the
    /// planner's estimate (not in the counts above, which are rows deleted one by one).
    partitions_dropped: u64,
    partition_rows_estimate: u64,
    seconds: f64,
    rows_per_second: f64,
}

/// Run `pftrack purge`.
pub async fn run(args: &PurgeArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let Some(older_than) = retention(args.older_than.as_deref(), config)? else {
        bail!(
            "no retention limit: pass --older-than (such as 90d) or set retention: in the configuration file"
        );
    };
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    let started = Instant::now();
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let counts: PurgeCounts =
        pftrack_store::purge_with_progress(&store, older_than, args.batch, |c| {
            if show_progress {
                eprint!(
                    "\rpurging: {} messages, {} recipients, {} NOQUEUE rows",
                    c.messages, c.recipients, c.noqueue
                );
            }
            tracing::debug!(?c, "purge batch committed");
        })
        .await?;
    if show_progress {
        eprintln!();
    }
    // BEGIN events (issue 12): the outbox, events that no sink waits for.
    let events = store
        .purge_events(chrono::Utc::now() - older_than, args.batch)
        .await?;
    // END events
    let seconds = started.elapsed().as_secs_f64();
    let report = Report {
        older_than_seconds: older_than.num_seconds(),
        messages: counts.messages,
        recipients: counts.recipients,
        attempts: counts.attempts,
        noqueue: counts.noqueue,
        auth_failures: counts.auth_failures,
        events,
        kept_in_flight: counts.kept,
        batches: counts.batches,
        partitions_dropped: counts.partitions_dropped,
        partition_rows_estimate: counts.partition_rows_estimate,
        seconds,
        rows_per_second: if seconds > 0.0 {
            counts.rows() as f64 / seconds
        } else {
            0.0
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "purged {} messages, {} recipients and {} NOQUEUE rows older than {} \
             (and {} SASL failures, {} events) in {} batches, {:.1} s ({:.0} rows/s); kept {} \
             old messages in flight",
            report.messages,
            report.recipients,
            report.noqueue,
            short_duration(older_than),
            report.auth_failures,
            report.events,
            report.batches,
            seconds,
            report.rows_per_second,
            report.kept_in_flight,
        );
        if report.partitions_dropped > 0 {
            println!(
                "dropped {} monthly partition(s) whole (about {} rows)",
                report.partitions_dropped, report.partition_rows_estimate
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `90d`, `36h` or `90s`: the largest unit that divides the duration.
fn short_duration(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_overrides_config_and_floor_applies() {
        let config = Config {
            retention: Some("90d".to_owned()),
            ..Config::default()
        };
        assert_eq!(retention(None, &config).unwrap(), Some(TimeDelta::days(90)));
        assert_eq!(
            retention(Some("2w"), &config).unwrap(),
            Some(TimeDelta::days(14))
        );
        assert!(retention(Some("90s"), &config).is_err());
        assert_eq!(retention(None, &Config::default()).unwrap(), None);
        assert_eq!(short_duration(TimeDelta::days(90)), "90d");
        assert_eq!(short_duration(TimeDelta::hours(36)), "36h");
    }
}
