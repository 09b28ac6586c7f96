//! The operators' statements: `pftrack events show|replay|retry`.

use chrono::{DateTime, Utc};

use crate::DispatchError;

/// An event's state at one sink.
#[derive(Debug, Clone)]
pub struct SinkState {
    /// The sink.
    pub sink: String,
    /// pending, delivered, failed.
    pub state: String,
    /// Attempts started.
    pub attempts: i32,
    /// When it is tried next (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The last attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An event and its state per sink.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The payload as stored.
    pub payload: String,
    /// When recorded.
    pub recorded_at: DateTime<Utc>,
    /// Per sink.
    pub sinks: Vec<SinkState>,
}

/// The event `id`, or `None`.
pub async fn show(
    client: &deadpool_postgres::Object,
    id: &str,
) -> Result<Option<Shown>, DispatchError> {
    let Some(event) = client
        .query_opt(
            "SELECT payload::text, recorded_at FROM event_outbox WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(DispatchError::query("reading an event"))?
    else {
        return Ok(None);
    };
    let rows = client
        .query(
            "SELECT sink, state, attempts, next_attempt_at, last_attempt_at, last_error, delivered_at \
             FROM event_delivery WHERE event_id = $1 ORDER BY sink",
            &[&id],
        )
        .await
        .map_err(DispatchError::query("reading an event's deliveries"))?;
    Ok(Some(Shown {
        payload: event.get(0),
        recorded_at: event.get(1),
        sinks: rows
            .iter()
            .map(|r| SinkState {
                sink: r.get(0),
                state: r.get(1),
                attempts: r.get(2),
                next_attempt_at: r.get(3),
                last_attempt_at: r.get(4),
                last_error: r.get(5),
                delivered_at: r.get(6),
            })
            .collect(),
    }))
}

async fn require_sink(client: &deadpool_postgres::Object, sink: &str) -> Result<(), DispatchError> {
    let known = client
        .query_opt("SELECT 1 FROM event_sink WHERE name = $1", &[&sink])
        .await
        .map_err(DispatchError::query("reading the sinks"))?;
    if known.is_none() {
        return Err(DispatchError::NotFound(format!(
            "no sink {sink:?} is registered in this database: sinks are registered when \
             `pftrack run` or `pftrack dispatch` starts with them in events.sinks"
        )));
    }
    Ok(())
}

/// Queue the events of `sink`'s filter whose facts happened in [`since`, `until`)
/// (of type `ty` when given) again: delivered ones and ones that never had a delivery
/// for it (recorded before it existed). Same ids. Returns how many.
pub async fn replay(
    client: &deadpool_postgres::Object,
    sink: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    ty: Option<&str>,
) -> Result<u64, DispatchError> {
    require_sink(client, sink).await?;
    client
        .execute(
            "INSERT INTO event_delivery AS d (event_id, sink)
             SELECT o.id, s.name FROM event_outbox o, event_sink s
             WHERE s.name = $1
                 AND ($2::timestamptz IS NULL OR o.occurred_at >= $2)
                 AND ($3::timestamptz IS NULL OR o.occurred_at < $3)
                 AND ($4::text IS NULL OR o.type = $4)
                 AND (s.types IS NULL OR o.type = ANY (s.types))
                 AND (s.reasons IS NULL OR o.payload #>> '{data,reason}' IS NULL
                      OR o.payload #>> '{data,reason}' = ANY (s.reasons))
             ON CONFLICT (event_id, sink) DO UPDATE SET state = 'pending',
                 next_attempt_at = now(), retry_since = now(), last_error = NULL,
                 leased_by = NULL
             WHERE d.state = 'delivered'",
            &[&sink, &since, &until, &ty],
        )
        .await
        .map_err(DispatchError::query("replaying events"))
}

/// Failed deliveries (of `sink`, or of event `id`, when given) back to pending, with
/// a new retry window; `enable` also enables a sink disabled by a 410. Returns how
/// many deliveries were queued again.
pub async fn retry(
    client: &deadpool_postgres::Object,
    sink: Option<&str>,
    id: Option<&str>,
    enable: bool,
) -> Result<u64, DispatchError> {
    if let Some(s) = sink {
        require_sink(client, s).await?;
    }
    if enable {
        client
            .execute(
                "UPDATE event_sink SET disabled_at = NULL, disabled_reason = NULL, updated_at = now() \
                 WHERE ($1::text IS NULL OR name = $1) AND disabled_at IS NOT NULL",
                &[&sink],
            )
            .await
            .map_err(DispatchError::query("enabling sinks"))?;
    }
    client
        .execute(
            "UPDATE event_delivery SET state = 'pending', next_attempt_at = now(), \
                 retry_since = now(), leased_by = NULL \
             WHERE state = 'failed' AND ($1::text IS NULL OR sink = $1) \
                 AND ($2::text IS NULL OR event_id = $2)",
            &[&sink, &id],
        )
        .await
        .map_err(DispatchError::query("retrying deliveries"))
}

/// Per sink: kind, target, disabled since, and counts per state.
pub async fn sinks(
    client: &deadpool_postgres::Object,
) -> Result<Vec<tokio_postgres::Row>, DispatchError> {
    client
        .query(
            "SELECT s.name, s.kind, s.target, s.active, s.disabled_at, s.disabled_reason,
                 count(*) FILTER (WHERE d.state = 'pending'),
                 count(*) FILTER (WHERE d.state = 'delivered'),
                 count(*) FILTER (WHERE d.state = 'failed')
             FROM event_sink s LEFT JOIN event_delivery d ON d.sink = s.name
             GROUP BY s.name ORDER BY s.name",
            &[],
        )
        .await
        .map_err(DispatchError::query("reading the sinks"))
}
