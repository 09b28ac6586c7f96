//! Following the journal: `pftrack run` (the daemon) and `pftrack backfill --journal`.
//! `docs/following.md` describes the behaviour; this is the implementation.
//!
//! On start the store is migrated, the stored cursor read, and the extractor's memory
//! rebuilt from the stored open messages; then a reader thread (libsystemd handles may
//! not move between threads) reads entries after the cursor (or, when the journal no
//! longer has it, after the stored time), parses and extracts them and hands a batch to
//! the writer task when it is full or due (see `BatchClock`). The writer commits rows
//! and cursor in one transaction; when PostgreSQL is down it retries with backoff and
//! the reader waits (the journal is the buffer). `READY=1` is sent only once database,
//! migrations and journal are up; `WATCHDOG=1` while the main loop runs; `STATUS=`
//! after commits and failed attempts; `STOPPING=1` on SIGTERM/SIGINT, after which the
//! current batch is committed (retried for `STOP_RETRY_LIMIT` at most when the
//! database is away) and the process exits 0.
//!
//! Not here: reading the journal (`pftrack_input::journal`), the SQL
//! (`pftrack_store`), the retry loop (`crate::writer`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, TimeDelta, Utc};
use pftrack_classify::Classifier;
use pftrack_extract::{Batch, Extractor, MAX_OPEN_MESSAGES, PrimeEntry};
use pftrack_input::Position;
use pftrack_input::journal::{JournalOptions, JournalReader, JournalSource, JournalStart};
use pftrack_store::{
    Busy, IndexMode, InputCheckpoint, InputLocks, PositionBase, Store, StoreError, WriteStats,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::exclusive::{HostSpans, InputBusy, WhenBusy, application_name, lock_inputs};
use crate::ingest::{IngestCounts, PostfixFilter, configured_classifier, count_event};
use crate::writer::{self, CHANNEL_CAPACITY, WorkItem};

/// Longest the reader sleeps in one wait when idle, so it notices a shutdown soon.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Records per batch while loading a backlog (the reader has not caught up with the
/// journal yet), when `batch.max_records` is smaller: latency does not matter then,
/// and bigger transactions load about half again as fast. The same as a file
/// backfill's batch.
const LOADING_BATCH_RECORDS: usize = crate::backfill::BACKFILL_BATCH_LINES as usize;

/// How long the daemon waits for PostgreSQL at start-up before giving up (systemd then
/// restarts it).
const STARTUP_DB_WAIT: Duration = Duration::from_secs(300);

/// While waiting for the database at start-up, each `EXTEND_TIMEOUT_USEC=` asks
/// systemd for the next backoff plus this, enough for one more connection attempt.
const STARTUP_EXTEND_MARGIN: Duration = Duration::from_secs(30);

/// Arguments that choose the journal.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalArgs {
    /// Read the journal files in this directory instead of the system journal.
    #[arg(long, value_name = "DIR", conflicts_with = "journal_file")]
    pub journal_dir: Option<PathBuf>,
    /// Read these journal files instead of the system journal.
    #[arg(long, value_name = "FILE")]
    pub journal_file: Vec<PathBuf>,
    /// Where to start when no cursor is stored: `7d`, an RFC 3339 time, or `now`
    /// (overrides `journal.since`).
    #[arg(long)]
    pub since: Option<String>,
}

/// Arguments of `pftrack run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
}

/// When a follow ends.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Follow until SIGTERM/SIGINT.
    Daemon,
    /// Stop at the end of the journal, or at the first entry after `until`; secondary
    /// indexes are deferred as `indexes` says (see `pftrack_store::IndexMode`).
    Once {
        until: Option<DateTime<Utc>>,
        indexes: IndexMode,
        when_busy: WhenBusy,
    },
}

/// How often a standby daemon tries to take over the journal.
const STANDBY_RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// How often a standby daemon repeats its warning in the log.
const STANDBY_REPORT_INTERVAL: Duration = Duration::from_secs(600);

impl JournalArgs {
    fn source(&self) -> (JournalSource, String) {
        if let Some(dir) = &self.journal_dir {
            (
                JournalSource::Directory(dir.clone()),
                format!("journal:dir:{}", dir.display()),
            )
        } else if !self.journal_file.is_empty() {
            let names: Vec<String> = self
                .journal_file
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            (
                JournalSource::Files(self.journal_file.clone()),
                format!("journal:files:{}", names.join(",")),
            )
        } else {
            (JournalSource::System, system_source_key())
        }
    }
}

/// The source key of the system journal before it named the machine; a position
/// stored under it is taken over once (see [`run`]).
const LEGACY_SYSTEM_SOURCE: &str = "journal:system";

/// Where the machine's identity is read from (systemd's machine id).
const MACHINE_ID_PATH: &str = "/etc/machine-id";

/// The system journal's source key: `journal:system:<machine id>`. Several mail
/// servers may store into one database, each following its own journal; without the
/// machine in the key each would resume from another's cursor. The hostname stands in
/// when there is no machine id.
fn system_source_key() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    match read(MACHINE_ID_PATH).or_else(|| read("/proc/sys/kernel/hostname")) {
        Some(id) => format!("{LEGACY_SYSTEM_SOURCE}:{id}"),
        None => LEGACY_SYSTEM_SOURCE.to_owned(),
    }
}

/// Parse `since`: `now`, a duration back from now, or an RFC 3339 time.
fn start_from(since: &str, now: DateTime<Utc>) -> anyhow::Result<JournalStart> {
    let s = since.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(JournalStart::Tail);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(JournalStart::Since(t.with_timezone(&Utc)));
    }
    match crate::duration::parse(s) {
        Ok(d) => Ok(JournalStart::Since(now - d)),
        Err(e) => {
            bail!("since: {since:?} is neither now, a duration (7d) nor an RFC 3339 time: {e}")
        }
    }
}

/// Run the daemon or a one-off journal load.
pub async fn run(
    args: &JournalArgs,
    mode: Mode,
    config: &Config,
    url: &str,
) -> anyhow::Result<ExitCode> {
    let daemon = matches!(mode, Mode::Daemon);
    let (source, source_key) = args.source();
    // Rules are checked before anything starts: a bad rules file is an error at once.
    let classifier = Arc::new(RwLock::new(Arc::new(configured_classifier(config)?)));
    let since = args.since.as_deref().unwrap_or(&config.journal.since);
    let default_start = start_from(since, Utc::now())?;

    if daemon {
        notify(&[sd_notify::NotifyState::Status("connecting to the database")]);
    }
    let store = connect_patiently(url, config, mode).await?;
    store.migrate().await?;
    store.sync_host_aliases(&config.fleet.host_aliases).await?;
    let events = crate::writer::event_rules(config, &store).await?;
    let events_for_sweep = events.clone();
    // The journal position is ours alone before it is read: another daemon (or
    // journal backfill) of the same journal moves it on until it lets go.
    let journal_name = match &source {
        JournalSource::System => "the system journal".to_owned(),
        JournalSource::Directory(dir) => format!("the journal in {}", dir.display()),
        JournalSource::Files(files) => format!(
            "the journal files {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let name_of = |_: &str| journal_name.clone();
    let sources = [source_key.clone()];
    let mut locks = match mode {
        Mode::Daemon => match standby_until_locked(&store, &sources, &name_of).await? {
            Standby::Locked(locks) => locks,
            Standby::Stopped => return Ok(ExitCode::SUCCESS),
        },
        Mode::Once { when_busy, .. } => {
            lock_inputs(&store, &sources, &name_of, "backfill --journal", when_busy)
                .await?
                .map(Box::new)
        }
    };
    let load = match mode {
        Mode::Once { indexes, .. } => Some(store.begin_load(indexes).await?),
        Mode::Daemon => None,
    };
    let mut positions = store.positions("journal").await?;
    let stored = match positions.remove(&source_key) {
        Some(cp) => Some(cp),
        // A position stored by a version that did not name the machine: resume from
        // it; the next commit stores it under the new key.
        None if matches!(source, JournalSource::System) => {
            positions.remove(LEGACY_SYSTEM_SOURCE).inspect(|_| {
                tracing::info!(
                    from = LEGACY_SYSTEM_SOURCE,
                    to = source_key,
                    "Taking over the system journal position stored without the machine id."
                )
            })
        }
        None => None,
    };
    let start = match &stored {
        Some(cp) if cp.cursor.is_some() => {
            tracing::info!(
                source = source_key,
                cursor = cp.cursor.as_deref().unwrap_or_default(),
                "Resuming after the stored journal cursor."
            );
            JournalStart::AfterCursor {
                cursor: cp.cursor.clone().unwrap_or_default(),
                // Strictly after the last stored record: re-reading it would count it
                // twice.
                fallback: cp.last_timestamp.map(|t| t + TimeDelta::microseconds(1)),
            }
        }
        _ => {
            tracing::info!(
                source = source_key,
                since,
                "No stored cursor; starting at `since`."
            );
            default_start
        }
    };
    let prime = store.prime_entries(MAX_OPEN_MESSAGES).await?;
    let noqueue_prime = match stored.as_ref().and_then(|cp| cp.last_timestamp) {
        Some(t) => {
            store
                .noqueue_prime(t - pftrack_extract::NOQUEUE_OCCURRENCE_WINDOW)
                .await?
        }
        None => Vec::new(),
    };
    let bruteforce = config.auth.bruteforce.rule()?;
    let auth_prime = crate::sasl::prime(
        &store,
        stored.as_ref().and_then(|cp| cp.last_timestamp),
        bruteforce,
    )
    .await?;
    // The position the first batch moves on from (the legacy key's row stays as it
    // is: the new key starts absent).
    let base = positions_base(&stored, &source_key);

    // BEGIN metrics (issue 15): served by the daemon only, once it owns the journal.
    let metrics = match (&mode, &config.metrics) {
        (Mode::Daemon, Some(m)) => Some(crate::serve_metrics::start(m, store.clone()).await?),
        _ => None,
    };
    // END metrics
    // BEGIN events (issue 12): the dispatcher, a task of its own next to the follower.
    let dispatcher = match mode {
        Mode::Daemon => crate::dispatch_cmd::RunDispatcher::start(config, url).await?,
        Mode::Once { .. } => None,
    };
    // END events
    let options = JournalOptions {
        source,
        identifier_prefixes: config.journal.identifiers.clone(),
        start,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (opened_tx, opened_rx) = oneshot::channel();
    let (done_tx, mut done_rx) = oneshot::channel();
    let settings = ReaderSettings {
        options,
        source_key,
        base,
        prime,
        noqueue_prime,
        auth_prime,
        bruteforce,
        geo: config.geoip.open()?,
        filter: PostfixFilter::new(&config.journal.identifiers),
        classifier: Arc::clone(&classifier),
        max_records: config.batch.max_records,
        max_delay: Duration::from_millis(config.batch.max_delay_ms),
        mode,
        tag_headers: config.tags.headers.clone(),
        metrics: metrics.clone(),
        events,
    };
    let reader_shutdown = Arc::clone(&shutdown);
    std::thread::Builder::new()
        .name("journal-reader".into())
        .spawn(move || {
            let result = follow_journal(settings, tx, opened_tx, &reader_shutdown);
            let _ = done_tx.send(result);
        })
        .context("cannot start the journal reader thread")?;

    // The journal must be open before we say we are ready.
    match opened_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("the journal reader stopped before opening the journal"),
    }
    let give_up = match mode {
        Mode::Daemon => None,
        Mode::Once { .. } => Some(crate::backfill::BACKFILL_RETRY_LIMIT),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let observer = StatusReporter {
        daemon,
        records: 0,
        metrics,
    };
    let mut writer = tokio::spawn(writer::run_with(
        store.clone(),
        rx,
        give_up,
        Some(stop_rx),
        observer,
    ));
    let mut writer_result = None;
    let mut reader_result = None;
    let mut lost_lock: Option<InputBusy> = None;

    if daemon {
        notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("following the journal"),
        ]);
        tracing::info!(database = store.target(), "Following the journal.");
        if let Some(limit) = crate::purge::retention(None, config)? {
            tokio::spawn(retention_task(store.clone(), limit));
        }
        // BEGIN events (issue 12): the sweep for lasting deferrals.
        if let Some(rules) = &events_for_sweep {
            let sweep = config.events.sweep_rules(rules.since)?;
            tokio::spawn(sweep_task(
                store.clone(),
                sweep,
                config.events.sweep_interval()?,
            ));
        }
        // END events
        // Indexes an interrupted bulk load left deferred: built in the background (it
        // can take minutes, and systemd waits for READY only so long); commits wait
        // while each one is built.
        tokio::spawn(restore_indexes(store.clone()));
        tokio::spawn(partitions_task(store.clone()));
        let watchdog = sd_notify::watchdog_enabled();
        let wait_for_signal = shutdown_signal();
        tokio::pin!(wait_for_signal);
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        // Pings at half the watchdog interval, as systemd recommends; without a
        // watchdog the tick only keeps the loop simple.
        let mut tick = tokio::time::interval(watchdog.map_or(Duration::from_secs(3600), |d| d / 2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lock_check = tokio::time::interval(LOCK_CHECK_INTERVAL);
        lock_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut wait_for_signal => {
                    tracing::info!("Stop requested: committing the current batch.");
                    break;
                }
                r = &mut writer => {
                    writer_result = Some(r);
                    break;
                }
                r = &mut done_rx => {
                    reader_result = Some(r);
                    break;
                }
                _ = tick.tick() => {
                    if watchdog.is_some() {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                    }
                }
                Some(()) = async { match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                } } => {
                    reload_rules(&classifier, config);
                }
                _ = lock_check.tick() => {
                    if let Err(busy) = keep_lock(&store, &mut locks, &name_of).await {
                        tracing::error!(
                            "The journal lock was lost (its connection broke) and another \
                             loader took the journal meanwhile: {busy}. Stopping; systemd \
                             starts this daemon again, and it stands by."
                        );
                        lost_lock = Some(busy);
                        break;
                    }
                }
            }
        }
        notify(&[
            sd_notify::NotifyState::Stopping,
            sd_notify::NotifyState::Status("stopping: committing the current batch"),
        ]);
    }
    // The reader sends what it holds and ends; the writer commits what is queued and
    // ends when the reader's sender is gone; a database still away gets
    // STOP_RETRY_LIMIT more.
    if daemon {
        shutdown.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
    }
    let reader_result = match reader_result {
        Some(r) => r,
        None => done_rx.await,
    };
    let writer_result = match writer_result {
        Some(r) => r,
        None => writer.await,
    };
    let totals = match writer_result.context("the writer task failed")? {
        Ok(totals) => Some(totals),
        Err(e)
            if e.downcast_ref::<writer::StoppedWhileUnavailable>()
                .is_some() =>
        {
            tracing::warn!("{e:#}");
            None
        }
        Err(e) => return Err(e),
    };
    let outcome = match reader_result {
        Ok(r) => r?,
        Err(_) => bail!("the journal reader thread ended without a result (it panicked)"),
    };
    if daemon && matches!(outcome.end, ReaderEnd::JournalEnded) {
        bail!("the journal reader stopped unexpectedly");
    }
    // BEGIN events (issue 12)
    if let Some(d) = dispatcher {
        d.stop().await;
    }
    // END events
    if let Some(load) = load
        && totals.is_some()
    {
        report_index_build(load.finish(&store).await?);
    }
    drop(locks);
    if let Some(busy) = lost_lock {
        return Err(busy.into());
    }
    println!(
        "journal: {} records ({} postfix: {} recognized, {} unknown); {} batches committed",
        outcome.counts.records,
        outcome.counts.postfix,
        outcome.counts.recognized,
        outcome.counts.unknown,
        totals.map_or(0, |t| t.batches)
    );
    Ok(ExitCode::SUCCESS)
}

/// The position the first batch of `source_key` moves on from: the stored one when it
/// was stored under that key (a legacy key's row is not this key's).
fn positions_base(stored: &Option<InputCheckpoint>, source_key: &str) -> PositionBase {
    stored
        .as_ref()
        .filter(|cp| cp.source == source_key)
        .map_or(PositionBase::Absent, |cp| cp.base.clone())
}

/// How often a following daemon checks that it still holds its journal's lock.
const LOCK_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Take the journal's lock again when its connection broke (PostgreSQL restarted):
/// until then only the positions' compare-and-set guards the journal. Fails when
/// another loader took the journal meanwhile (it holds the lock now).
async fn keep_lock(
    store: &Store,
    locks: &mut Option<Box<InputLocks>>,
    name_of: &dyn Fn(&str) -> String,
) -> Result<(), InputBusy> {
    let Some(held) = locks.as_ref() else {
        return Ok(());
    };
    if held.is_held() {
        return Ok(());
    }
    let sources = held.sources().to_vec();
    // The database may still be away: then try again at the next check.
    let Ok(mut again) = store.input_locks(&sources, &application_name("run")).await else {
        return Ok(());
    };
    match again.try_acquire().await {
        Ok(None) => {
            tracing::info!("Took the journal lock again after its connection broke.");
            *locks = Some(Box::new(again));
            Ok(())
        }
        Ok(Some(Busy { source, holder })) => Err(InputBusy {
            input: name_of(&source),
            holder,
        }),
        Err(_) => Ok(()),
    }
}

/// How a daemon's wait for its journal ended.
enum Standby {
    /// The journal is ours.
    Locked(Option<Box<InputLocks>>),
    /// SIGTERM/SIGINT came first.
    Stopped,
}

/// The daemon takes its journal's lock; while another live daemon holds it, this one
/// stands by: ready as a process (systemd must not restart it in a loop), saying in
/// `STATUS=` and the log who holds the journal, trying again every
/// [`STANDBY_RETRY_INTERVAL`], and never writing. It takes over as soon as the other
/// lets go (a crash included: the lock dies with its connection).
async fn standby_until_locked(
    store: &Store,
    sources: &[String],
    name_of: &dyn Fn(&str) -> String,
) -> anyhow::Result<Standby> {
    if std::env::var(crate::exclusive::UNSAFE_NO_LOCK_ENV).is_ok_and(|v| v == "1") {
        return Ok(Standby::Locked(
            lock_inputs(store, sources, name_of, "run", WhenBusy::Refuse)
                .await?
                .map(Box::new),
        ));
    }
    let mut locks = store.input_locks(sources, &application_name("run")).await?;
    let watchdog = sd_notify::watchdog_enabled();
    let wait_for_signal = shutdown_signal();
    tokio::pin!(wait_for_signal);
    let mut reported: Option<Instant> = None;
    loop {
        match locks.try_acquire().await? {
            None => {
                if reported.is_some() {
                    tracing::info!("The journal is free now: taking over.");
                }
                return Ok(Standby::Locked(Some(Box::new(locks))));
            }
            Some(Busy { source, holder }) => {
                let busy = InputBusy {
                    input: name_of(&source),
                    holder,
                };
                let status = format!(
                    "standby: {} is being loaded by {}; taking over when it stops",
                    busy.input,
                    busy.holder
                        .as_ref()
                        .map_or_else(|| "another pftrack".to_owned(), ToString::to_string)
                );
                if reported.is_none_or(|at| at.elapsed() >= STANDBY_REPORT_INTERVAL) {
                    tracing::warn!(
                        "Another daemon follows this journal: {status}. Nothing is written \
                         meanwhile. If this one was started by mistake, stop it."
                    );
                    reported = Some(Instant::now());
                }
                let mut states = vec![
                    sd_notify::NotifyState::Ready,
                    sd_notify::NotifyState::Status(&status),
                ];
                if watchdog.is_some() {
                    states.push(sd_notify::NotifyState::Watchdog);
                }
                notify(&states);
            }
        }
        tokio::select! {
            _ = &mut wait_for_signal => {
                tracing::info!("Stop requested while standing by.");
                notify(&[sd_notify::NotifyState::Stopping]);
                return Ok(Standby::Stopped);
            }
            _ = tokio::time::sleep(STANDBY_RETRY_INTERVAL) => {}
        }
    }
}

/// The classifier the reader uses, replaceable while it runs.
type SharedClassifier = Arc<RwLock<Arc<Classifier>>>;

/// The classifier to encode the next batch with.
fn current_classifier(shared: &SharedClassifier) -> Arc<Classifier> {
    match shared.read() {
        Ok(c) => Arc::clone(&c),
        // A panic while replacing it left the old one in place: still valid.
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

/// SIGHUP: read the rules file again. A file that does not load leaves the rules in
/// use as they are (and says why); the next batch uses new rules that do.
fn reload_rules(shared: &SharedClassifier, config: &Config) {
    match configured_classifier(config) {
        Ok(new) => {
            let (user, builtin) = new.rule_counts();
            match shared.write() {
                Ok(mut c) => *c = Arc::new(new),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
            }
            tracing::info!(
                user_rules = user,
                builtin_rules = builtin,
                "SIGHUP: classification rules reloaded; new failures are classified with them \
                 (`pftrack reclassify` applies them to stored ones)."
            );
        }
        Err(e) => tracing::error!(
            "SIGHUP: the classification rules were not reloaded, the previous ones stay in \
             use: {e:#}"
        ),
    }
}

/// The daemon's `STATUS=` line, updated after every commit and failed attempt.
struct StatusReporter {
    daemon: bool,
    records: u64,
    /// `metrics:` configured (issue 15).
    metrics: Option<Arc<pftrack_metrics::Metrics>>,
}

impl writer::Observer for StatusReporter {
    fn committed(&mut self, item: &WorkItem, stats: &WriteStats) {
        if let Some(m) = &self.metrics {
            crate::serve_metrics::committed(m, item, stats);
        }
        self.records += item.lines;
        if !self.daemon {
            return;
        }
        // How long after it was logged the newest record of the batch was committed.
        let lag = item
            .checkpoints
            .iter()
            .filter_map(|c| c.last_timestamp)
            .max()
            .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
        let status = match lag {
            Some(lag) => format!(
                "following: {} records stored, last committed {lag:.1} s after it was logged",
                self.records
            ),
            None => format!("following: {} records stored", self.records),
        };
        notify(&[sd_notify::NotifyState::Status(&status)]);
    }

    fn commit_took(&mut self, took: Duration) {
        if let Some(m) = &self.metrics {
            crate::serve_metrics::commit_took(m, took);
        }
    }

    fn retrying(&mut self, error: &StoreError, retry_in: Duration, attempt: u32) {
        if let Some(m) = &self.metrics {
            crate::serve_metrics::retrying(m);
        }
        if !self.daemon {
            return;
        }
        let status = format!(
            "database unavailable ({attempt} failed attempts, next in {:.1} s); \
             the journal holds the records meanwhile: {error}",
            retry_in.as_secs_f64()
        );
        notify(&[sd_notify::NotifyState::Status(&status)]);
    }
}

/// How often the daemon creates the monthly partitions ahead (migration V14).
const PARTITIONS_AHEAD_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Create this month's and the next months' partitions once a day (`migrate` did at
/// start), so the first batch of a month never waits for them. A failure is logged and
/// tried again the next day; a batch creates what it needs anyway.
async fn partitions_task(store: Store) {
    let mut tick = tokio::time::interval(PARTITIONS_AHEAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate and `migrate` just did this.
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = store.ensure_partitions_ahead().await {
            tracing::warn!(error = %e, "Creating next months' partitions failed; tried again tomorrow.");
        }
    }
}

/// How often the daemon applies `retention:`.
const RETENTION_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Apply `retention:` now and then once a day. Purging works in bounded batches, so
/// the writer is never held up for more than one of them; a failure is logged and
/// retried the next day, never fatal.
async fn retention_task(store: Store, older_than: TimeDelta) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tick.tick().await;
        match pftrack_store::purge(&store, older_than, pftrack_store::PURGE_BATCH_MESSAGES).await {
            Ok(c) => tracing::info!(
                messages = c.messages,
                recipients = c.recipients,
                noqueue = c.noqueue,
                kept_in_flight = c.kept,
                "Retention applied."
            ),
            Err(e) => {
                tracing::warn!(error = %e, "Retention purge failed; it is tried again tomorrow.")
            }
        }
        // BEGIN events (issue 12): the outbox, events no sink waits for.
        match store
            .purge_events(Utc::now() - older_than, pftrack_store::PURGE_BATCH_MESSAGES)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "Retention applied to the event outbox."),
            Err(e) => {
                tracing::warn!(error = %e, "Purging old events failed; tried again tomorrow.")
            }
        }
        // END events
    }
}

// BEGIN events (issue 12)
/// Sweep for lasting deferrals (`recipient.deferred_long`, mailbox full held) every
/// `interval`; a failure is logged and tried again at the next one.
async fn sweep_task(store: Store, rules: pftrack_events::lasting::SweepRules, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.sweep_lasting(&rules, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "Sweep: lasting deferrals recorded as events."),
            Err(e) => {
                tracing::warn!(error = %e, "Sweep for lasting deferrals failed; tried again later.")
            }
        }
    }
}
// END events

/// Connect, waiting for PostgreSQL when the daemon starts before it.
/// Build the indexes an interrupted bulk load left deferred, logging what happened.
async fn restore_indexes(store: Store) {
    match store.restore_deferred_indexes().await {
        Ok(built) => report_index_build(built),
        Err(e) => tracing::warn!("{e}"),
    }
}

/// Log an index build (nothing when there was none).
pub fn report_index_build(built: pftrack_store::IndexBuild) {
    if built.indexes > 0 {
        tracing::info!(
            "built {} index(es) deferred by a bulk load in {:.1} s",
            built.indexes,
            built.elapsed.as_secs_f64()
        );
    }
}

async fn connect_patiently(url: &str, config: &Config, mode: Mode) -> anyhow::Result<Store> {
    let started = Instant::now();
    let mut backoff = writer::BACKOFF_MIN;
    loop {
        match Store::connect_with(url, config.database.ca_file.as_deref()).await {
            Ok(store) => return Ok(store),
            Err(e)
                if e.is_transient()
                    && matches!(mode, Mode::Daemon)
                    && started.elapsed() < STARTUP_DB_WAIT =>
            {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Database not reachable yet; retrying.");
                // Ask systemd for more start-up time than its TimeoutStartSec (90 s by
                // default): waiting for the database is progress, not a hang.
                let extend = (backoff + STARTUP_EXTEND_MARGIN).as_micros();
                notify(&[
                    sd_notify::NotifyState::Status("waiting for the database"),
                    sd_notify::NotifyState::ExtendTimeoutUsec(
                        u32::try_from(extend).unwrap_or(u32::MAX),
                    ),
                ]);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(writer::BACKOFF_MAX);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, ctrl-c is the best we have.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Tell systemd; failures are logged, never fatal (not running under systemd is fine).
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed.");
    }
}

struct ReaderSettings {
    options: JournalOptions,
    source_key: String,
    /// The stored position the first batch moves on from.
    base: PositionBase,
    prime: Vec<PrimeEntry>,
    /// NOQUEUE counts of the instants the stored position had reached.
    noqueue_prime: Vec<(pftrack_extract::Noqueue, i32)>,
    /// SASL failures to replay (identical ones' numbering, the brute-force window).
    auth_prime: Vec<(pftrack_extract::AuthFailure, i32)>,
    /// `auth.bruteforce`; `None`: disabled.
    bruteforce: Option<pftrack_extract::BruteforceRule>,
    /// GeoIP databases for SASL failures (checked for replacement before each batch).
    geo: pftrack_geo::Geo,
    filter: PostfixFilter,
    /// The failure classifier, replaced on SIGHUP (each batch takes the current one).
    classifier: SharedClassifier,
    max_records: usize,
    max_delay: Duration,
    mode: Mode,
    /// Headers whose header_checks lines tag messages (`tags.headers`).
    tag_headers: Vec<String>,
    /// `metrics:` of the daemon (issue 15): every record read is counted here.
    metrics: Option<Arc<pftrack_metrics::Metrics>>,
    /// Which facts become events (issue 12); `None`: events disabled.
    events: Option<pftrack_events::EventRules>,
}

/// Why the reader thread ended.
enum ReaderEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The writer is gone (it failed, or gave up after a stop).
    WriterGone,
    /// A one-off load reached the end of the journal or `until`; for the daemon this
    /// does not happen.
    JournalEnded,
}

struct FollowOutcome {
    counts: IngestCounts,
    end: ReaderEnd,
}

/// The reader thread: open the journal, then read, parse, extract and batch.
fn follow_journal(
    s: ReaderSettings,
    tx: mpsc::Sender<WorkItem>,
    opened: oneshot::Sender<anyhow::Result<()>>,
    shutdown: &AtomicBool,
) -> anyhow::Result<FollowOutcome> {
    let mut reader = match JournalReader::open(&s.options) {
        Ok(r) => r,
        Err(e) => {
            let err = anyhow::Error::new(e).context("cannot open the journal");
            let text = format!("{err:#}");
            let _ = opened.send(Err(err));
            bail!(text);
        }
    };
    if !reader.has_files() {
        tracing::warn!("No readable journal files: is this user in the systemd-journal group?");
    }
    if reader.fell_back()
        && let JournalStart::AfterCursor { cursor, fallback } = &s.options.start
    {
        match fallback {
            Some(t) => tracing::warn!(
                cursor,
                resume_at = %t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "The stored journal cursor is not in this journal (vacuumed, lost at \
                 reboot, or another machine's): resuming at the first entry after the \
                 last stored record's time instead."
            ),
            None => tracing::warn!(
                cursor,
                "The stored journal cursor is not in this journal and no time is \
                 stored with it: reading from the oldest entry; rows already stored \
                 are merged, but attempts and NOQUEUE counts of re-read entries are \
                 counted again."
            ),
        }
    }
    let _ = opened.send(Ok(()));
    let mut extractor = crate::sasl::with_rule(
        Extractor::new().with_tag_headers(s.tag_headers),
        s.bruteforce,
    );
    extractor.prime(s.prime);
    extractor.prime_noqueue(s.noqueue_prime);
    extractor.prime_auth(s.auth_prime);
    let geo = std::cell::RefCell::new(s.geo);
    let mut counts = IngestCounts::default();
    let mut batch = Batch::new();
    let mut in_batch: u64 = 0;
    let mut clock = BatchClock::new(s.max_delay);
    // True once the reader has found no entry to read: from then on the batch's age
    // counts from when its first record was logged, not from when it was read.
    let mut caught_up = false;
    let mut last: Option<(String, DateTime<Utc>)> = None;
    let mut base = s.base.clone();
    let mut spans = HostSpans::default();

    // Ok(false) when the writer is gone.
    let send = |batch: &mut Batch,
                in_batch: &mut u64,
                last: &Option<(String, DateTime<Utc>)>,
                base: &mut PositionBase,
                spans: &mut HostSpans|
     -> anyhow::Result<bool> {
        let checkpoints = match last {
            Some((cursor, ts)) => vec![InputCheckpoint {
                source: s.source_key.clone(),
                kind: "journal",
                path: None,
                device: None,
                inode: None,
                byte_offset: None,
                line: None,
                cursor: Some(cursor.clone()),
                last_timestamp: Some(*ts),
                latest_local: None,
                complete: false,
                loaded_by: None,
                base: base.clone(),
                hosts: spans.take(),
            }],
            None => Vec::new(),
        };
        if let Some(cp) = checkpoints.first() {
            *base = cp.as_base();
        }
        let classifier = current_classifier(&s.classifier);
        geo.borrow_mut().refresh();
        let item = WorkItem::new(
            &std::mem::take(batch),
            checkpoints,
            *in_batch,
            &classifier,
            s.events.as_ref(),
            Some(&geo.borrow()),
        )?;
        *in_batch = 0;
        Ok(tx.blocking_send(item).is_ok())
    };

    let end = loop {
        if shutdown.load(Ordering::SeqCst) {
            break ReaderEnd::Shutdown;
        }
        let due = clock
            .remaining(caught_up, Instant::now(), Utc::now())
            .is_some_and(|r| r.is_zero());
        let limit = if caught_up {
            s.max_records
        } else {
            s.max_records.max(LOADING_BATCH_RECORDS)
        };
        if in_batch > 0 && (in_batch as usize >= limit || due) {
            if !send(&mut batch, &mut in_batch, &last, &mut base, &mut spans)? {
                break ReaderEnd::WriterGone;
            }
            clock.reset();
        }
        match reader.next_record().context("reading the journal")? {
            Some(record) => {
                if let Mode::Once {
                    until: Some(until), ..
                } = s.mode
                    && record.timestamp > until
                {
                    break ReaderEnd::JournalEnded;
                }
                counts.records += 1;
                if let Some(m) = &s.metrics {
                    m.pipeline.records_read.inc();
                }
                spans.add(&record.host, record.timestamp);
                let cursor = match &record.position {
                    Position::Journal { cursor } => cursor.clone(),
                    Position::File { .. } => String::new(),
                };
                if s.filter.matches(&record) {
                    counts.postfix += 1;
                    let text = record.message_text();
                    let daemon = record.daemon();
                    let event = pftrack_parse::parse(daemon, &text);
                    count_event(&mut counts, &event);
                    if let Some(m) = &s.metrics {
                        m.pipeline.records_postfix.inc();
                        pftrack_metrics::observe_service(m, record.service(), daemon, &event);
                    }
                    extractor.process_logged(
                        &record.host,
                        record.timestamp,
                        &record.identifier,
                        &event,
                        &mut |f| batch.add(f),
                    );
                }
                clock.add(Instant::now(), record.timestamp);
                last = Some((cursor, record.timestamp));
                in_batch += 1;
                caught_up = false;
            }
            None => {
                if let Mode::Once { .. } = s.mode {
                    break ReaderEnd::JournalEnded;
                }
                caught_up = true;
                let wait = clock
                    .remaining(true, Instant::now(), Utc::now())
                    .map_or(IDLE_WAIT, |r| r.min(IDLE_WAIT));
                if !wait.is_zero() {
                    reader.wait(wait).context("waiting for the journal")?;
                }
            }
        }
    };
    if in_batch > 0 {
        send(&mut batch, &mut in_batch, &last, &mut base, &mut spans)?;
    }
    Ok(FollowOutcome { counts, end })
}

/// When the open batch is due: `max_delay` after its first record was read, or, once
/// the reader has caught up with the journal, `max_delay` after that record was
/// logged. The second rule matters because journald tells readers about new entries
/// in ticks of up to a quarter second: a clock started at reading would add that
/// delay to the batch delay. It applies only when caught up, so that loading a
/// backlog (whose records were all logged long ago) still makes full batches.
#[derive(Debug)]
struct BatchClock {
    max_delay: Duration,
    /// When the batch's first record was read, and when it was logged.
    first: Option<(Instant, DateTime<Utc>)>,
}

impl BatchClock {
    fn new(max_delay: Duration) -> BatchClock {
        BatchClock {
            max_delay,
            first: None,
        }
    }

    /// A record read at `read_at`, logged at `logged`, joins the batch.
    fn add(&mut self, read_at: Instant, logged: DateTime<Utc>) {
        self.first.get_or_insert((read_at, logged));
    }

    /// The batch was sent.
    fn reset(&mut self) {
        self.first = None;
    }

    /// Time left until the batch is due (zero when due); `None` without a batch.
    fn remaining(&self, caught_up: bool, now: Instant, wall: DateTime<Utc>) -> Option<Duration> {
        let (read_at, logged) = self.first?;
        let by_read = self
            .max_delay
            .saturating_sub(now.saturating_duration_since(read_at));
        if !caught_up {
            return Some(by_read);
        }
        // A record stamped in the future (another host's clock) has age zero.
        let age = (wall - logged).to_std().unwrap_or(Duration::ZERO);
        Some(by_read.min(self.max_delay.saturating_sub(age)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_clock() {
        let delay = Duration::from_millis(250);
        let mut clock = BatchClock::new(delay);
        let t0 = Instant::now();
        let wall = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(clock.remaining(true, t0, wall), None);
        // Read 200 ms after it was logged.
        clock.add(t0, wall - TimeDelta::milliseconds(200));
        // Loading a backlog: only the reading time counts.
        assert_eq!(clock.remaining(false, t0, wall), Some(delay));
        // Caught up: 50 ms left of the record's own quarter second.
        assert_eq!(
            clock.remaining(true, t0, wall),
            Some(Duration::from_millis(50))
        );
        // A second record does not restart the clock.
        clock.add(t0 + Duration::from_millis(10), wall);
        let later = t0 + Duration::from_millis(300);
        assert_eq!(clock.remaining(false, later, wall), Some(Duration::ZERO));
        clock.reset();
        assert_eq!(clock.remaining(true, later, wall), None);
        // A record from the future (clock skew) waits for the reading rule only.
        clock.add(t0, wall + TimeDelta::seconds(60));
        assert_eq!(clock.remaining(true, t0, wall), Some(delay));
    }

    #[test]
    fn since_forms() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(start_from("now", now).unwrap(), JournalStart::Tail);
        assert_eq!(
            start_from("7d", now).unwrap(),
            JournalStart::Since(now - TimeDelta::days(7))
        );
        assert_eq!(
            start_from("2025-03-14T06:25:01Z", now).unwrap(),
            JournalStart::Since(DateTime::from_timestamp(1_741_933_501, 0).unwrap())
        );
        assert!(start_from("yesterday", now).is_err());
    }
}
