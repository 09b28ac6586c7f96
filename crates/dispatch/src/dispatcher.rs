//! The dispatcher: per sink, claim due deliveries, deliver them, record the outcome;
//! woken by NOTIFY and by a poll interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pftrack_store::Store;
use sha2::Digest;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::DispatchError;
use crate::config::{DispatchSettings, Sink, Target};
use crate::queue::{self, Claimed, Recorded};
use crate::retry::Verdict;
use crate::sinks::{self, Attempt};

/// The channel the V8 trigger notifies when an event gets deliveries.
pub const OUTBOX_CHANNEL: &str = "pftrack_outbox";

/// A lease outlasts the attempts of a round by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Most deliveries claimed in one round.
const MAX_CLAIM: usize = 1000;
/// Rounds of attempts a claim may hold (claim = concurrency × batch × this).
const CLAIM_ROUNDS: usize = 4;
/// Wait after a database error before the next claim.
const DB_RETRY: Duration = Duration::from_secs(2);
/// Wait before listening again after the LISTEN connection broke.
const LISTEN_RETRY: Duration = Duration::from_secs(5);
/// How often the outbox size limit is checked.
const LIMIT_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often an idle sink checks whether it was disabled.
const DISABLED_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// How often a disabled sink is reported again.
const DISABLED_REPORT_INTERVAL: Duration = Duration::from_secs(600);
/// How long a stopping dispatcher waits for attempts in flight.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Delivers the outbox to the configured sinks until stopped.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    sinks: Vec<Arc<Sink>>,
    settings: DispatchSettings,
    id: Arc<str>,
}

/// What a sink's loop shares.
struct SinkCtx {
    store: Store,
    sink: Arc<Sink>,
    client: Option<reqwest::Client>,
    id: Arc<str>,
    poll: Duration,
}

impl Dispatcher {
    /// A dispatcher of `sinks` over `store` (its own pool: dispatch never takes a
    /// connection the loader waits for).
    pub fn new(store: Store, sinks: Vec<Sink>, settings: DispatchSettings) -> Dispatcher {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let id = format!(
            "{}@{host}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Dispatcher {
            store,
            sinks: sinks.into_iter().map(Arc::new).collect(),
            settings,
            id: id.into(),
        }
    }

    /// This dispatcher's id (`event_delivery.leased_by`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Register the sinks; then deliver until `stop` turns true. Database outages
    /// are waited out; only a failure to register the sinks at start is returned.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), DispatchError> {
        loop {
            match self.register().await {
                Ok(()) => break,
                Err(DispatchError::Store(e)) if e.is_transient() => {
                    tracing::warn!(error = %e, "Dispatch: the database is not reachable; retrying.");
                    if sleep_or_stop(&mut stop, DB_RETRY).await {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let (wake_tx, wake_rx) = watch::channel(0u64);
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(self.store.clone(), wake_tx, stop.clone()));
        tasks.spawn(limit_outbox(
            self.store.clone(),
            self.settings.max_pending,
            stop.clone(),
        ));
        for sink in &self.sinks {
            let client = match &sink.target {
                Target::Webhook { .. } => Some(sinks::http_client(sink)?),
                _ => None,
            };
            tracing::info!(
                sink = sink.name,
                kind = sink.kind().as_str(),
                target = sink.target_text(),
                "Dispatching events."
            );
            let ctx = Arc::new(SinkCtx {
                store: self.store.clone(),
                sink: Arc::clone(sink),
                client,
                id: Arc::clone(&self.id),
                poll: self.settings.poll_interval,
            });
            tasks.spawn(sink_loop(ctx, wake_rx.clone(), stop.clone()));
        }
        drop(wake_rx);
        let _ = stop.wait_for(|s| *s).await;
        // Rounds in flight finish (their attempts are bounded by the timeouts); what
        // does not finish in time is claimed again when its lease ends.
        let _ = tokio::time::timeout(STOP_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        Ok(())
    }

    async fn register(&self) -> Result<(), DispatchError> {
        let mut client = self.store.connection().await?;
        let sinks: Vec<Sink> = self.sinks.iter().map(|s| (**s).clone()).collect();
        let gone = queue::sync_sinks(&mut client, &sinks).await?;
        for name in gone {
            tracing::warn!(
                sink = name,
                "A sink registered in the database is not in this configuration: new events \
                 get no delivery for it any more (its pending ones stay). Every dispatcher of \
                 one database must have the same sinks."
            );
        }
        Ok(())
    }
}

/// Sleep `d`; true when a stop came first.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// LISTEN on [`OUTBOX_CHANNEL`] and wake the sinks on every notification.
async fn listen(store: Store, wake: watch::Sender<u64>, mut stop: watch::Receiver<bool>) {
    loop {
        match store.listen(&[OUTBOX_CHANNEL]).await {
            Ok(mut listener) => {
                // Whatever arrived before the LISTEN took effect: look once.
                wake.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        n = listener.recv() => match n {
                            Some(_) => wake.send_modify(|n| *n += 1),
                            None => {
                                tracing::warn!("Dispatch: the LISTEN connection broke; polling until it is back.");
                                break;
                            }
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Dispatch: cannot LISTEN; polling meanwhile."),
        }
        if sleep_or_stop(&mut stop, LISTEN_RETRY).await {
            return;
        }
    }
}

/// Keep pending deliveries at most `max_pending`: the oldest beyond are failed (they
/// can be retried), with a warning.
async fn limit_outbox(store: Store, max_pending: u64, mut stop: watch::Receiver<bool>) {
    let keep = i64::try_from(max_pending).unwrap_or(i64::MAX);
    loop {
        let checked = async {
            let client = store.connection().await?;
            if queue::pending_at_least(&client, keep).await? > keep {
                let failed = queue::fail_excess(&client, keep).await?;
                tracing::warn!(
                    max_pending,
                    failed,
                    "The outbox is full: more than events.dispatch.max_pending deliveries were \
                     pending (sinks down or too slow). The oldest were marked failed; fix the \
                     sinks, then `pftrack events retry` sends them again. Ingestion goes on."
                );
            }
            Ok::<(), DispatchError>(())
        };
        if let Err(e) = checked.await {
            tracing::debug!(error = %e, "Dispatch: checking the outbox size failed.");
        }
        if sleep_or_stop(&mut stop, LIMIT_CHECK_INTERVAL).await {
            return;
        }
    }
}

/// One sink: claim, deliver, record, until stopped.
async fn sink_loop(
    ctx: Arc<SinkCtx>,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let sink = &ctx.sink;
    let per_request = match &sink.target {
        Target::Webhook { batch_size, .. } => *batch_size,
        _ => 1,
    };
    let limit = (sink.concurrency * per_request * CLAIM_ROUNDS).clamp(1, MAX_CLAIM);
    let rounds = limit.div_ceil(sink.concurrency * per_request) as u32;
    let lease = sink.timeout * rounds + LEASE_MARGIN;
    let mut disabled = DisabledReport::default();
    loop {
        if *stop.borrow() {
            return;
        }
        // Seen before the claim: a NOTIFY that comes while claiming wakes the wait below.
        wake.borrow_and_update();
        let claimed = async {
            let client = ctx.store.connection().await?;
            queue::claim(
                &client,
                &sink.name,
                limit as i64,
                lease.as_secs_f64(),
                &ctx.id,
            )
            .await
        }
        .await;
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(sink = sink.name, error = %e, "Dispatch: cannot claim deliveries; retrying.");
                if sleep_or_stop(&mut stop, DB_RETRY).await {
                    return;
                }
                continue;
            }
        };
        if claimed.is_empty() {
            disabled.check(&ctx).await;
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(ctx.poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let results = deliver_round(&ctx, claimed).await;
        record_round(&ctx, results, &mut stop).await;
    }
}

/// Says loudly, now and then, that a sink is disabled.
#[derive(Default)]
struct DisabledReport {
    checked: Option<Instant>,
    reported: Option<Instant>,
}

impl DisabledReport {
    async fn check(&mut self, ctx: &SinkCtx) {
        if self
            .checked
            .is_some_and(|at| at.elapsed() < DISABLED_CHECK_INTERVAL)
        {
            return;
        }
        self.checked = Some(Instant::now());
        let Ok(client) = ctx.store.connection().await else {
            return;
        };
        match queue::disabled(&client, &ctx.sink.name).await {
            Ok(Some((at, reason))) => {
                if self
                    .reported
                    .is_some_and(|r| r.elapsed() < DISABLED_REPORT_INTERVAL)
                {
                    return;
                }
                tracing::error!(
                    sink = ctx.sink.name,
                    target = ctx.sink.target_text(),
                    disabled_at = %at,
                    reason,
                    "This sink is DISABLED: its events wait (pending) and nothing is sent to it. \
                     Fix the endpoint, then `pftrack events retry --sink {} --enable`.",
                    ctx.sink.name
                );
                self.reported = Some(Instant::now());
            }
            Ok(None) => self.reported = None,
            Err(_) => {}
        }
    }
}

/// The message id of a batched request: a hash of its events' ids.
fn batch_id(events: &[Claimed]) -> String {
    let mut h = sha2::Sha256::new();
    for e in events {
        h.update(e.event_id.as_bytes());
        h.update(b"\n");
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// Attempt every claimed delivery, `concurrency` at a time.
async fn deliver_round(ctx: &Arc<SinkCtx>, claimed: Vec<Claimed>) -> Vec<(Claimed, Attempt)> {
    let sink = &ctx.sink;
    let per_request = match &sink.target {
        Target::Webhook { batch_size, .. } => *batch_size,
        _ => 1,
    };
    let permits = Arc::new(Semaphore::new(sink.concurrency));
    let mut set = JoinSet::new();
    let mut rest = claimed;
    while !rest.is_empty() {
        let tail = rest.split_off(per_request.min(rest.len()));
        let group = std::mem::replace(&mut rest, tail);
        let ctx = Arc::clone(ctx);
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let attempt = attempt(&ctx, &group).await;
            group
                .into_iter()
                .map(|c| (c, attempt.clone()))
                .collect::<Vec<_>>()
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(results) = done {
            out.extend(results);
        }
    }
    out
}

async fn attempt(ctx: &SinkCtx, group: &[Claimed]) -> Attempt {
    let Some(first) = group.first() else {
        return Attempt {
            outcome: crate::retry::Outcome::Success,
            error: None,
        };
    };
    match (&ctx.sink.target, &ctx.client) {
        (
            Target::Webhook {
                url,
                secret,
                batch_size,
            },
            Some(client),
        ) => {
            if *batch_size > 1 {
                let mut body = Vec::with_capacity(
                    group.iter().map(|c| c.payload.len() + 1).sum::<usize>() + 2,
                );
                body.push(b'[');
                for (i, c) in group.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(c.payload.as_bytes());
                }
                body.push(b']');
                sinks::post(
                    client,
                    ctx.sink.timeout,
                    url,
                    secret,
                    &batch_id(group),
                    body,
                )
                .await
            } else {
                sinks::post(
                    client,
                    ctx.sink.timeout,
                    url,
                    secret,
                    &first.event_id,
                    first.payload.clone().into_bytes(),
                )
                .await
            }
        }
        (Target::Exec { .. }, _) => {
            sinks::exec(
                &ctx.sink,
                &first.event_id,
                &first.ty,
                first.payload.as_bytes(),
            )
            .await
        }
        (Target::Notify { channel }, _) => {
            sinks::notify(
                &ctx.store,
                channel,
                &ctx.sink.name,
                &first.event_id,
                &first.ty,
            )
            .await
        }
        (Target::Webhook { .. }, None) => Attempt {
            outcome: crate::retry::Outcome::Transient,
            error: Some("no HTTP client".into()),
        },
    }
}

/// Decide and record the outcomes of a round; retried while the database is away
/// (should it stay away, the leases end and the events are sent again, same ids).
async fn record_round(
    ctx: &SinkCtx,
    results: Vec<(Claimed, Attempt)>,
    stop: &mut watch::Receiver<bool>,
) {
    let sink = &ctx.sink;
    let now = Utc::now();
    let mut records = Vec::with_capacity(results.len());
    let mut failures = 0usize;
    let mut last_error = None;
    let mut gone = None;
    for (c, a) in results {
        let jitter: f64 = rand::random();
        let verdict = sink.retry.decide(
            &a.outcome,
            u32::try_from(c.attempts).unwrap_or(1).max(1),
            c.retry_since,
            now,
            jitter,
        );
        if a.error.is_some() {
            failures += 1;
            last_error.clone_from(&a.error);
            tracing::debug!(
                sink = sink.name,
                event = c.event_id,
                error = a.error.as_deref().unwrap_or(""),
                ?verdict,
                "Attempt failed."
            );
        }
        let (state, next_at, error) = match verdict {
            Verdict::Delivered => ("delivered", None, None),
            Verdict::RetryAt(at) => ("pending", Some(at), a.error),
            Verdict::Failed => {
                let why = a.error.unwrap_or_default();
                tracing::warn!(
                    sink = sink.name,
                    event = c.event_id,
                    attempts = c.attempts,
                    error = why,
                    "Event not delivered: given up (a refusal that retrying cannot change, \
                     or the retry window is over). `pftrack events retry` sends it again."
                );
                ("failed", None, Some(why))
            }
            Verdict::Disable => {
                gone.clone_from(&a.error);
                ("pending", Some(now), a.error)
            }
        };
        records.push(Recorded {
            event_id: c.event_id,
            state,
            next_at,
            error,
        });
    }
    if failures > 0 {
        tracing::warn!(
            sink = sink.name,
            target = sink.target_text(),
            failed = failures,
            of = records.len(),
            last_error = last_error.as_deref().unwrap_or(""),
            "Some deliveries failed; they are retried with backoff."
        );
    }
    loop {
        let done = async {
            let client = ctx.store.connection().await?;
            if let Some(why) = &gone
                && queue::disable_sink(&client, &sink.name, why).await?
            {
                tracing::error!(
                    sink = sink.name,
                    target = sink.target_text(),
                    reason = why,
                    "The endpoint answered 410 Gone: this sink is now DISABLED and nothing \
                     more is sent to it. Its events stay pending; after fixing the endpoint, \
                     `pftrack events retry --sink {} --enable` resumes delivery.",
                    sink.name
                );
            }
            queue::record(&client, &sink.name, &records).await
        }
        .await;
        match done {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(sink = sink.name, error = %e, "Dispatch: cannot record deliveries; retrying.");
                if sleep_or_stop(stop, DB_RETRY).await {
                    return;
                }
            }
        }
    }
}
