//! `pftrack events`: the event outbox for operators (docs/events.md).
//!
//! `list` shows the events recorded in `event_outbox`, oldest first: since a time,
//! of one type, as a table or (`--json`) one payload per line. `show` prints one
//! event with its delivery state per sink; `sinks` the sinks with their counts;
//! `replay` queues delivered events of a period again for a sink (same ids); `retry`
//! queues failed deliveries again (and `--enable` a sink a 410 disabled); `test`
//! sends a signed test event to a sink; `secret` makes a webhook secret.

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
    /// One event: its payload and its delivery state at every sink (exit 1: unknown id).
    Show(ShowArgs),
    /// The sinks registered in the database, with their deliveries per state.
    Sinks,
    /// Queue the events of a period again for a sink (delivered ones, and ones recorded
    /// before the sink existed); consumers get the same ids.
    Replay(ReplayArgs),
    /// Queue failed deliveries again (of a sink, or of one event).
    Retry(RetryArgs),
    /// Send a signed test event to a configured sink now (exit 1 when it fails).
    Test(TestArgs),
    /// Print a new random webhook secret (`whsec_…`) for a sink's secret_file.
    Secret,
    /// Look for lasting deferrals now (`recipient.deferred_long`, mailbox full held);
    /// `pftrack run` does this every events.sweep_interval.
    Sweep,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The event id (`evt_…`).
    id: String,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The sink.
    #[arg(long)]
    sink: String,
    /// Events whose fact happened since: a duration back from now (`2d`), a date, or
    /// an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// … and before this time.
    #[arg(long)]
    until: Option<String>,
    /// Only events of this type.
    #[arg(long = "type", value_name = "TYPE")]
    ty: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RetryArgs {
    /// Only this sink's deliveries.
    #[arg(long)]
    sink: Option<String>,
    /// Only this event's deliveries.
    #[arg(long)]
    id: Option<String>,
    /// Also enable the sink (or every sink) that a 410 Gone disabled.
    #[arg(long)]
    enable: bool,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The sink's name in events.sinks.
    sink: String,
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

impl EventsArgs {
    /// False for the commands that do not touch the database (`secret`).
    pub fn needs_database(&self) -> bool {
        !matches!(self.command, EventsCommand::Secret)
    }
}

/// Run a command that needs no database (`secret`).
pub fn run_offline(_args: &EventsArgs) -> anyhow::Result<ExitCode> {
    println!("{}", pftrack_dispatch::sign::Secret::generate());
    Ok(ExitCode::SUCCESS)
}

/// Run the command.
pub async fn run(args: &EventsArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    match &args.command {
        EventsCommand::List(a) => list(a, config, url).await,
        EventsCommand::Show(a) => show(a, config, url).await,
        EventsCommand::Sinks => sinks(config, url).await,
        EventsCommand::Replay(a) => replay(a, config, url).await,
        EventsCommand::Retry(a) => retry(a, config, url).await,
        EventsCommand::Test(a) => test(a, config, url).await,
        EventsCommand::Secret => run_offline(args),
        EventsCommand::Sweep => sweep(config, url).await,
    }
}

async fn connect(config: &Config, url: &str) -> anyhow::Result<Store> {
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    store.migrate().await?;
    Ok(store)
}

fn check_type(ty: Option<&str>) -> anyhow::Result<()> {
    if let Some(ty) = ty
        && EventType::parse(ty).is_none()
    {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        bail!(
            "--type: unknown event type {ty:?} (known: {})",
            known.join(", ")
        );
    }
    Ok(())
}

fn time_arg(name: &str, value: Option<&str>) -> anyhow::Result<Option<chrono::DateTime<Utc>>> {
    value
        .map(|s| crate::status::parse_time(s, Utc::now()))
        .transpose()
        .with_context(|| format!("--{name}"))
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn show(args: &ShowArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let store = connect(config, url).await?;
    let client = store.connection().await?;
    let Some(shown) = pftrack_dispatch::ops::show(&client, &args.id).await? else {
        eprintln!("pftrack: no event {:?} in the outbox", args.id);
        return Ok(ExitCode::from(1));
    };
    let payload: serde_json::Value = serde_json::from_str(&shown.payload)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&payload)?)?;
    writeln!(out, "recorded at {}", stamp(shown.recorded_at))?;
    if shown.sinks.is_empty() {
        writeln!(
            out,
            "no deliveries (no sink was registered for it when it was recorded)"
        )?;
    }
    for s in shown.sinks {
        let when = match s.state.as_str() {
            "delivered" => s
                .delivered_at
                .map(|t| format!(" at {}", stamp(t)))
                .unwrap_or_default(),
            "pending" => format!(", next attempt {}", stamp(s.next_attempt_at)),
            _ => String::new(),
        };
        writeln!(
            out,
            "sink {}: {}{when}, {} attempt(s){}{}",
            s.sink,
            s.state,
            s.attempts,
            s.last_attempt_at
                .map(|t| format!(", last {}", stamp(t)))
                .unwrap_or_default(),
            s.last_error
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn sinks(config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let store = connect(config, url).await?;
    let client = store.connection().await?;
    let mut out = std::io::stdout().lock();
    for r in pftrack_dispatch::ops::sinks(&client).await? {
        let name: String = r.get(0);
        let kind: String = r.get(1);
        let target: String = r.get(2);
        let active: bool = r.get(3);
        let disabled: Option<chrono::DateTime<Utc>> = r.get(4);
        let reason: Option<String> = r.get(5);
        let (pending, delivered, failed): (i64, i64, i64) = (r.get(6), r.get(7), r.get(8));
        let status = match (active, disabled) {
            (_, Some(at)) => format!(
                "DISABLED since {} ({})",
                stamp(at),
                reason.unwrap_or_default()
            ),
            (false, None) => "inactive (not configured)".to_owned(),
            (true, None) => "active".to_owned(),
        };
        writeln!(
            out,
            "{name}  {kind}  {target}  {status}  pending {pending}  delivered {delivered}  failed {failed}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(args: &ReplayArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    check_type(args.ty.as_deref())?;
    let since = time_arg("since", args.since.as_deref())?;
    let until = time_arg("until", args.until.as_deref())?;
    let store = connect(config, url).await?;
    let client = store.connection().await?;
    let n = pftrack_dispatch::ops::replay(&client, &args.sink, since, until, args.ty.as_deref())
        .await?;
    println!("{n} event(s) queued again for {}", args.sink);
    Ok(ExitCode::SUCCESS)
}

async fn retry(args: &RetryArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let store = connect(config, url).await?;
    let client = store.connection().await?;
    let n = pftrack_dispatch::ops::retry(
        &client,
        args.sink.as_deref(),
        args.id.as_deref(),
        args.enable,
    )
    .await?;
    println!("{n} failed deliver(y/ies) queued again");
    Ok(ExitCode::SUCCESS)
}

async fn test(args: &TestArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let sink = config.events.sink(&args.sink)?;
    let store = Store::connect_with(url, config.database.ca_file.as_deref()).await?;
    match pftrack_dispatch::send_test_event(&store, &sink).await {
        Ok(done) => {
            println!("{done}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("pftrack: {why}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn sweep(config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    if !config.events.enabled {
        bail!("events are not enabled (events.enabled in the configuration)");
    }
    let store = connect(config, url).await?;
    let since = match config.events.since()? {
        Some(s) => s,
        None => store.events_enabled_at().await?,
    };
    let rules = config.events.sweep_rules(Some(since))?;
    let n = store.sweep_lasting(&rules, Utc::now()).await?;
    println!("{n} event(s) recorded");
    Ok(ExitCode::SUCCESS)
}

async fn list(args: &ListArgs, config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| crate::status::parse_time(s, Utc::now()))
        .transpose()
        .context("--since")?;
    check_type(args.ty.as_deref())?;
    let store = connect(config, url).await?;
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
