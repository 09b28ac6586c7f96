//! `pftrack events`: the event outbox for operators (docs/events.md).
//!
//! `list` shows the events recorded in `event_outbox`, oldest first: since a time,
//! of one type, as a table or (`--json`) one payload per line. Delivery to sinks and
//! its state (`show`, `replay`, `retry`, `test`) are not built yet (issue 12).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use pftrack_events::EventType;
use pftrack_store::Store;

use crate::config::Config;

/// Arguments of `pftrack events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EventsCommand {
    /// List recorded events, oldest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only events whose fact happened since: a duration back from now (`2d`), a
    /// date, `today`, or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only events of this type (`recipient.failed`, `message.expired`).
    #[arg(long = "type", value_name = "TYPE")]
    ty: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 1000)]
    limit: i64,
    /// One JSON payload per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Run the command.
pub async fn run(args: &EventsArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let EventsCommand::List(args) = &args.command;
    let since = args
        .since
        .as_deref()
        .map(|s| crate::status::parse_time(s, Utc::now()))
        .transpose()
        .context("--since")?;
    if let Some(ty) = args.ty.as_deref()
        && EventType::parse(ty).is_none()
    {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        bail!(
            "--type: unknown event type {ty:?} (known: {})",
            known.join(", ")
        );
    }
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    store.migrate().await?;
    let rows = store
        .list_events(since, args.ty.as_deref(), args.limit.max(0))
        .await?;
    let mut out = std::io::stdout().lock();
    for (id, ty, occurred_at, recorded_at, payload) in rows {
        if args.json {
            writeln!(out, "{payload}")?;
            continue;
        }
        let p: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        let data = &p["data"];
        let what = data["recipient"]
            .as_str()
            .map_or_else(|| "-".to_owned(), str::to_owned);
        writeln!(
            out,
            "{}  {}  {:<16}  {}  {}  {}  {}",
            occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            id,
            ty,
            data["queue_id"].as_str().unwrap_or("-"),
            what,
            data["reason"].as_str().unwrap_or("-"),
            recorded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
