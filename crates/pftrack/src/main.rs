//! `pftrack`: the Postfix delivery tracker's one binary.
//!
//! Subcommands: `parse` (records → JSON events, for corpus work and debugging),
//! `backfill` (syslog files or the journal → PostgreSQL), `run` (the journald daemon),
//! `status` (what happened to a mail), `classify` and `reclassify` (why a delivery
//! failed), `report` (pflogsumm-class summaries), `events` (the outbox), `dispatch`
//! (the outbox delivered to sinks), `purge`
//! (retention), `migrate` (the schema), and the hidden `generate` (man pages,
//! completions). The binary is the async shell around the sync core crates:
//! input → parse → extract → store.
//!
//! `serve` runs the web UI and JSON API (crates/web); `user` manages its users and tokens.
//!
//! `export` writes accounting records (TSV, CSV, JSONL) for other systems (crates/export).

/// `pftrack backfill`: syslog files into the database.
mod backfill;
/// `pftrack classify`: failure reasons for one text or a JSONL stream; rules checks.
mod classify_cmd;
/// The YAML configuration file.
mod config;
/// `pftrack dispatch`: the event outbox delivered to sinks (issue 12).
mod dispatch_cmd;
/// Human durations (`90d`).
mod duration;
/// `pftrack events`: the event outbox for operators (issue 12).
mod events_cmd;
/// One loader per input: locks, waiting, and the exit code of a refused loader.
mod exclusive;
/// `pftrack export`: accounting records as TSV, CSV or JSONL, one-off or incremental.
mod export_cmd;
/// Following the journal: the daemon and journal backfills.
mod follow;
/// `pftrack generate` (hidden): man pages and shell completions, for packaging.
mod generate;
/// Reading records, classifying and parsing them: shared by every command.
mod ingest;
/// `pftrack parse`: records as JSON.
mod parse_cmd;
/// `pftrack purge`: the retention limit, applied once.
mod purge;
/// `pftrack reclassify`: the current failure rules re-applied to stored rows.
mod reclassify_cmd;
/// `pftrack report`: a pflogsumm-class summary of a period (text, JSON, HTML, mail).
mod report_cmd;
mod sasl;
/// `pftrack serve`: the web UI and JSON API (issue 13).
mod serve_cmd;
/// `metrics:`: Prometheus `/metrics` of `pftrack run` (issue 15).
mod serve_metrics;
/// `pftrack status`: what happened to a message.
mod status;
mod status_client;
/// `pftrack user`: web users and bearer tokens (issue 13).
mod user_cmd;
/// The writer task: batches into the store, with retries.
mod writer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Track Postfix deliveries from its logs into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "pftrack", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: /etc/pftrack/pftrack.yaml when it exists).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// PostgreSQL URL (overrides the configuration file).
    #[arg(
        long,
        global = true,
        env = "PFTRACK_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Log level (error, warn, info, debug, trace); RUST_LOG overrides it.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Options of `pftrack migrate`.
#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// Stop after this schema version (for upgrade tests: build a database as an older
    /// release left it). Migrations cannot be undone.
    #[arg(long, hide = true)]
    to_version: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse log files (or stdin) and print one JSON object per record.
    Parse(parse_cmd::ParseArgs),
    /// Load syslog files (plain or gzip, a rotated set or a directory) into the database.
    Backfill(backfill::BackfillArgs),
    /// Apply database migrations.
    Migrate(MigrateArgs),
    /// Follow the journal and store deliveries as they happen (the systemd service).
    Run(follow::RunArgs),
    /// Show what happened to mail: by address, Message-ID or queue id (exit 1: no match).
    Status(status::StatusArgs),
    /// Delete messages, recipients and NOQUEUE rows older than the retention limit.
    Purge(purge::PurgeArgs),
    /// Classify failure texts: reason, hard/soft and the deciding rule (one text, or --jsonl).
    Classify(classify_cmd::ClassifyArgs),
    /// Re-apply the current failure rules to stored failures (in batches, idempotent).
    Reclassify(reclassify_cmd::ReclassifyArgs),
    /// The event outbox: list, show, replay, retry, test a sink (docs/events.md).
    Events(events_cmd::EventsArgs),
    /// Deliver the event outbox to the configured sinks until stopped (docs/events.md).
    Dispatch(dispatch_cmd::DispatchArgs),
    /// Summarise a period like pflogsumm: totals, traffic, domains, senders, failures.
    Report(report_cmd::ReportArgs),
    /// Accounting records (delivered, deferred, bounced, rejected, auth-failure) as TSV, CSV, JSONL.
    Export(export_cmd::ExportArgs),
    /// Serve the web UI and JSON API for helpdesks (docs/web.md).
    Serve(serve_cmd::ServeArgs),
    /// Users and bearer tokens of the web UI and API: add, passwd, remove, list, token.
    User(user_cmd::UserArgs),
    /// Generate man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("pftrack: error: {err:#}");
            if exclusive::is_input_busy(&err) {
                return ExitCode::from(exclusive::EXIT_INPUT_BUSY);
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Runs at packaging time: no configuration file is read.
    if let Command::Generate(args) = &cli.command {
        return generate::run(args, Cli::command());
    }
    let config = config::Config::load_or_default(cli.config.as_deref())?;
    init_tracing(cli.log_level.as_deref().or(config.log_level.as_deref()));
    match cli.command {
        Command::Parse(args) => parse_cmd::run(&args, &config),
        Command::Backfill(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            if args.journal {
                let mode = follow::Mode::Once {
                    until: args.until_time()?,
                    indexes: args.defer_indexes.into(),
                    when_busy: if args.no_wait {
                        exclusive::WhenBusy::Refuse
                    } else {
                        exclusive::WhenBusy::Wait
                    },
                };
                runtime()?.block_on(follow::run(&args.journal_args(), mode, &config, &url))
            } else {
                runtime()?.block_on(backfill::run(args, &config, &url))
            }
        }
        Command::Run(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(follow::run(
                &args.journal,
                follow::Mode::Daemon,
                &config,
                &url,
            ))
        }
        Command::Status(args) => {
            // Through a running `pftrack serve` (--server), no database URL is needed.
            let url = match &args.server {
                Some(_) => None,
                None => Some(config.database_url(cli.database_url.as_deref())?),
            };
            // One short lookup: a single thread, no hand-offs between workers (each a
            // wake-up that a loaded machine delays).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(status::run(&args, &config, url.as_deref()))
        }
        Command::Purge(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(purge::run(&args, &config, &url))
        }
        Command::Report(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(report_cmd::run(&args, &config, &url))
        }
        Command::Export(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(export_cmd::run(&args, &config, &url))
        }
        Command::Events(args) if !args.needs_database() => events_cmd::run_offline(&args),
        Command::Events(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(events_cmd::run(&args, &config, &url))
        }
        Command::Dispatch(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(dispatch_cmd::run(&args, &config, &url))
        }
        Command::Serve(args) => {
            let url = match cli.database_url.as_deref() {
                Some(u) => u.to_owned(),
                None => match &config.web.database_url {
                    Some(u) => u.clone(),
                    None => config.database_url(None)?,
                },
            };
            runtime()?.block_on(serve_cmd::run(&args, &config, &url))
        }
        Command::User(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(user_cmd::run(&args, &config, &url))
        }
        Command::Classify(args) => classify_cmd::run(&args, &config),
        Command::Reclassify(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(reclassify_cmd::run(&args, &config, &url))
        }
        Command::Generate(_) => unreachable!("handled before the configuration is loaded"),
        Command::Migrate(args) => {
            let url = config.database_url(cli.database_url.as_deref())?;
            runtime()?.block_on(async {
                let store =
                    pftrack_store::Store::connect_with(&url, config.database.ca_file.as_deref())
                        .await?;
                let applied = match args.to_version {
                    Some(version) => store.migrate_to(version).await?,
                    None => store.migrate().await?,
                };
                store.sync_host_aliases(&config.fleet.host_aliases).await?;
                println!("applied {applied} migration(s) to {}", store.target());
                let built = store.restore_deferred_indexes().await?;
                if built.indexes > 0 {
                    println!(
                        "built {} index(es) deferred by an interrupted bulk load in {:.1} s",
                        built.indexes,
                        built.elapsed.as_secs_f64()
                    );
                }
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn init_tracing(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},refinery_core=warn,tokio_postgres=warn",
            level.unwrap_or("info")
        ))
    });
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
