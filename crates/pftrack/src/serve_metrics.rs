//! `metrics:` of `pftrack run`: the registry, the `/metrics` listener, the writer's
//! observations and the database gauges' refresher (issue 15; docs/metrics.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use pftrack_metrics::Metrics;
use pftrack_metrics::labels::{Input, Operation, Table};
use pftrack_store::{Store, WriteStats};

use crate::config::MetricsConfig;
use crate::writer::WorkItem;

/// Longest time one refresh of the database gauges may take; a slower one is
/// abandoned (and counted as a database error), the gauges keep their values.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// Build the registry, listen on `config.listen` and start the gauge refresher.
/// Binding errors are fatal: a configured endpoint that silently does not exist
/// would look like a dead daemon to Prometheus.
pub async fn start(config: &MetricsConfig, store: Store) -> anyhow::Result<Arc<Metrics>> {
    let (metrics, registry) = Metrics::new(Input::Journal);
    let metrics = Arc::new(metrics);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("metrics.listen: cannot listen on {}", config.listen))?;
    let local = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(address = %local, "Serving Prometheus metrics at /metrics.");
    tokio::spawn(pftrack_metrics::serve(
        listener,
        Arc::new(registry),
        std::future::pending(),
    ));
    let interval = crate::duration::parse(&config.database_interval)?
        .to_std()
        .unwrap_or_default();
    if !interval.is_zero() {
        tokio::spawn(refresh_gauges(store, Arc::clone(&metrics), interval));
    }
    Ok(metrics)
}

/// A batch was committed.
pub fn committed(metrics: &Metrics, item: &WorkItem, stats: &WriteStats) {
    let p = &metrics.pipeline;
    p.batches.inc();
    p.rows_written(Table::Messages, stats.messages);
    p.rows_written(Table::Recipients, stats.recipients);
    p.rows_written(Table::Noqueue, stats.noqueue);
    if let Some(newest) = item
        .checkpoints
        .iter()
        .filter_map(|c| c.last_timestamp)
        .max()
    {
        let lag = (Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
        p.journal_lag_seconds.set(lag);
        p.last_committed_entry
            .set(newest.timestamp_micros() as f64 / 1e6);
    }
}

/// A commit failed and is retried.
pub fn retrying(metrics: &Metrics) {
    metrics.pipeline.database_error(Operation::Commit);
    metrics.pipeline.commit_retries.inc();
}

/// A commit attempt succeeded after `took`.
pub fn commit_took(metrics: &Metrics, took: Duration) {
    metrics.pipeline.commit_seconds.observe(took.as_secs_f64());
}

/// Recipients deferred (messages arrived in the last 7 days: Postfix's
/// `maximal_queue_lifetime` is 5 days by default) and the oldest one's age; bounded by
/// the key's leading `arrived_at`.
const DEFERRED_SQL: &str = "\
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(arrived_at))::float8, 0)
FROM delivery_to
WHERE arrived_at >= now() - interval '7 days' AND status = 'deferred'";

/// Messages in flight, as the `in_flight` column of `message_status` (docs/queries.md),
/// limited to messages that arrived within 14 days (seen within 7 days, alive at most
/// the queue lifetime before that).
const IN_FLIGHT_SQL: &str = "\
SELECT count(*) FROM delivery_from
WHERE arrived_at >= now() - interval '14 days'
  AND removed_at IS NULL AND rejected_at IS NULL
  AND last_seen_at >= now() - interval '7 days'";

/// Failed attempts of the last hour by reason (BRIN index on attempt_at).
const FAILURES_SQL: &str = "\
SELECT failure_reason, count(*) FROM delivery_attempt
WHERE attempt_at > now() - interval '1 hour' AND failure_reason IS NOT NULL
GROUP BY failure_reason";

async fn refresh_gauges(store: Store, metrics: Arc<Metrics>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(REFRESH_TIMEOUT, refresh_once(&store, &metrics)).await {
            Ok(Ok(())) => {
                let now = Utc::now().timestamp_micros() as f64 / 1e6;
                metrics.db.refreshed_at.set(now);
            }
            Ok(Err(e)) => {
                metrics.pipeline.database_error(Operation::Gauges);
                tracing::warn!("metrics: refreshing the database gauges failed: {e:#}");
            }
            Err(_) => {
                metrics.pipeline.database_error(Operation::Gauges);
                tracing::warn!(
                    "metrics: refreshing the database gauges took over {REFRESH_TIMEOUT:?}; \
                     they keep their previous values"
                );
            }
        }
    }
}

async fn refresh_once(store: &Store, metrics: &Metrics) -> anyhow::Result<()> {
    let rows = store.query(DEFERRED_SQL, &[]).await?;
    if let Some(row) = rows.first() {
        metrics.db.recipients_deferred.set(row.try_get(0)?);
        metrics.db.oldest_deferred_age_seconds.set(row.try_get(1)?);
    }
    let rows = store.query(IN_FLIGHT_SQL, &[]).await?;
    if let Some(row) = rows.first() {
        metrics.db.messages_in_flight.set(row.try_get(0)?);
    }
    let rows = store.query(FAILURES_SQL, &[]).await?;
    let mut counts = Vec::with_capacity(rows.len());
    for row in &rows {
        counts.push((row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?));
    }
    metrics
        .db
        .set_failures(counts.iter().map(|(r, n)| (r.as_str(), *n)));
    Ok(())
}
