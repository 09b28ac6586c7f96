//! The overview of a time window: deliveries per hour by status, NOQUEUE rejects per
//! hour, the top failure reasons and deferring destinations, the unclassified
//! failures, and (for admins) SASL authentication failures — all within the user's
//! scope.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{WebError, db};
use crate::scope::Scope;
use crate::search::message_path;
use crate::sql::Sql;

/// Entries of each top list.
pub const TOP_N: i64 = 10;
/// Patterns in the unclassified list.
pub const UNCLASSIFIED_N: i64 = 20;

/// Events of one status in one hour.
#[derive(Debug, Clone, Serialize)]
pub struct HourStatus {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Status of the events.
    pub status: String,
    /// How many.
    pub count: i64,
}

/// NOQUEUE rejects in one hour.
#[derive(Debug, Clone, Serialize)]
pub struct HourCount {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// How many.
    pub count: i64,
}

/// A failure reason and how often.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonCount {
    /// Reason (docs/classification.md).
    pub reason: String,
    /// Permanent.
    pub hard: Option<bool>,
    /// Failed attempts and NOQUEUE rejects.
    pub count: i64,
}

/// A destination domain with deferrals.
#[derive(Debug, Clone, Serialize)]
pub struct DomainCount {
    /// Recipient domain.
    pub domain: String,
    /// Deferred attempts.
    pub count: i64,
}

/// A failure wording no rule classified.
#[derive(Debug, Clone, Serialize)]
pub struct Unclassified {
    /// The text with addresses, numbers and ids masked.
    pub pattern: String,
    /// How often.
    pub count: i64,
    /// First seen in the window.
    pub first_seen: DateTime<Utc>,
    /// Last seen in the window.
    pub last_seen: DateTime<Utc>,
    /// One text as logged.
    pub example: Option<String>,
    /// A message with this failure (none for NOQUEUE rejects).
    pub example_message: Option<String>,
}

/// A client address with SASL failures.
#[derive(Debug, Clone, Serialize)]
pub struct SaslClient {
    /// Client address.
    pub client_addr: String,
    /// Country (GeoIP at storage time).
    pub country: Option<String>,
    /// Failures.
    pub failures: i64,
    /// Distinct user names tried.
    pub usernames: i64,
    /// Latest failure.
    pub last_at: DateTime<Utc>,
}

/// The overview.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Window start.
    pub from: DateTime<Utc>,
    /// Window end.
    pub to: DateTime<Utc>,
    /// Recipient events per hour and status.
    pub deliveries_per_hour: Vec<HourStatus>,
    /// NOQUEUE rejects per hour.
    pub rejects_per_hour: Vec<HourCount>,
    /// Most frequent failure reasons.
    pub top_reasons: Vec<ReasonCount>,
    /// Recipient domains with most deferrals.
    pub top_deferring: Vec<DomainCount>,
    /// Unclassified failures.
    pub unclassified: Vec<Unclassified>,
    /// SASL failures by client address; `None` for users who are not admins (they are
    /// not tied to a domain).
    pub sasl_failures: Option<Vec<SaslClient>>,
}

fn attempt_from(scope: &Scope, sql: &mut Sql, from: &str, to: &str) -> String {
    if scope.is_all() {
        format!("FROM delivery_attempt a WHERE a.attempt_at >= {from} AND a.attempt_at < {to}")
    } else {
        let pred = scope.row_predicate(sql, "f.sender", "a.recipient", "a.orig_recipient");
        format!(
            "FROM delivery_attempt a JOIN delivery_from f USING (host, queue_id, arrived_at) \
             WHERE a.attempt_at >= {from} AND a.attempt_at < {to} AND {pred}"
        )
    }
}

/// Compute the overview of `[from, to)` for `scope`.
pub async fn load(
    client: &deadpool_postgres::Client,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Overview, WebError> {
    let mut sql = Sql::new("");
    let (f, t) = (sql.bind(from), sql.bind(to));
    let src = attempt_from(scope, &mut sql, &f, &t);
    sql.push(&format!(
        "SELECT date_trunc('hour', a.attempt_at), a.status, count(*) {src} GROUP BY 1, 2 ORDER BY 1, 2"
    ));
    let deliveries_per_hour = sql
        .query(client)
        .await
        .map_err(db("counting deliveries per hour"))?
        .iter()
        .map(|r| HourStatus {
            hour: r.get(0),
            status: r.get(1),
            count: r.get(2),
        })
        .collect();

    let mut sql = Sql::new("");
    let (f, t) = (sql.bind(from), sql.bind(to));
    let pred = scope.noqueue_predicate(&mut sql, "n");
    sql.push(&format!(
        "SELECT date_trunc('hour', n.logged_at), sum(n.count)::bigint FROM noqueue n \
         WHERE n.logged_at >= {f} AND n.logged_at < {t} AND n.action = 'reject' AND {pred} \
         GROUP BY 1 ORDER BY 1"
    ));
    let rejects_per_hour = sql
        .query(client)
        .await
        .map_err(db("counting NOQUEUE rejects per hour"))?
        .iter()
        .map(|r| HourCount {
            hour: r.get(0),
            count: r.get(1),
        })
        .collect();

    let mut sql = Sql::new("");
    let (f, t) = (sql.bind(from), sql.bind(to));
    let src = attempt_from(scope, &mut sql, &f, &t);
    let pred = scope.noqueue_predicate(&mut sql, "n");
    let top = sql.bind(TOP_N);
    sql.push(&format!(
        "SELECT reason, hard, sum(c)::bigint FROM ( \
           SELECT a.failure_reason AS reason, a.hard, count(*) AS c {src} \
             AND a.failure_reason IS NOT NULL GROUP BY 1, 2 \
           UNION ALL \
           SELECT n.failure_reason, n.hard, sum(n.count) FROM noqueue n \
           WHERE n.logged_at >= {f} AND n.logged_at < {t} AND n.failure_reason IS NOT NULL \
             AND {pred} GROUP BY 1, 2 \
         ) x GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT {top}"
    ));
    let top_reasons = sql
        .query(client)
        .await
        .map_err(db("counting failure reasons"))?
        .iter()
        .map(|r| ReasonCount {
            reason: r.get(0),
            hard: r.get(1),
            count: r.get(2),
        })
        .collect();

    let mut sql = Sql::new("");
    let (f, t) = (sql.bind(from), sql.bind(to));
    let src = attempt_from(scope, &mut sql, &f, &t);
    let top = sql.bind(TOP_N);
    sql.push(&format!(
        "SELECT address_domain(a.recipient), count(*) {src} AND a.status = 'deferred' \
         AND address_domain(a.recipient) IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {top}"
    ));
    let top_deferring = sql
        .query(client)
        .await
        .map_err(db("counting deferring destinations"))?
        .iter()
        .map(|r| DomainCount {
            domain: r.get(0),
            count: r.get(1),
        })
        .collect();

    let unclassified = unclassified(client, scope, from, to).await?;

    let sasl_failures = if scope.is_all() {
        Some(
            client
                .query(
                    "SELECT client_addr, max(country), count(*), count(DISTINCT sasl_username), \
                     max(logged_at) FROM auth_failure \
                     WHERE logged_at >= $1 AND logged_at < $2 \
                     GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT $3",
                    &[&from, &to, &TOP_N],
                )
                .await
                .map_err(db("counting SASL failures"))?
                .iter()
                .map(|r| SaslClient {
                    client_addr: r.get(0),
                    country: r.get(1),
                    failures: r.get(2),
                    usernames: r.get(3),
                    last_at: r.get(4),
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(Overview {
        from,
        to,
        deliveries_per_hour,
        rejects_per_hour,
        top_reasons,
        top_deferring,
        unclassified,
        sasl_failures,
    })
}

/// The failure wordings no rule classified in `[from, to)` within `scope`: failed
/// attempts and NOQUEUE rejects, grouped by their masked pattern.
pub async fn unclassified(
    client: &deadpool_postgres::Client,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Unclassified>, WebError> {
    let mut sql = Sql::new("");
    let (f, t) = (sql.bind(from), sql.bind(to));
    let src = attempt_from(scope, &mut sql, &f, &t);
    let pred = scope.noqueue_predicate(&mut sql, "n");
    let top = sql.bind(UNCLASSIFIED_N);
    sql.push(&format!(
        "SELECT pattern, sum(c)::bigint, min(first_seen), max(last_seen), min(example), \
                (array_agg(host ORDER BY first_seen) FILTER (WHERE host IS NOT NULL))[1], \
                (array_agg(queue_id ORDER BY first_seen) FILTER (WHERE host IS NOT NULL))[1], \
                (array_agg(arrived_at ORDER BY first_seen) FILTER (WHERE host IS NOT NULL))[1] \
         FROM ( \
           SELECT failure_text_pattern(a.response) AS pattern, count(*) AS c, \
                  min(a.attempt_at) AS first_seen, max(a.attempt_at) AS last_seen, \
                  min(a.response) AS example, min(a.host) AS host, \
                  min(a.queue_id) AS queue_id, min(a.arrived_at) AS arrived_at {src} \
             AND a.failure_reason IN ('onhold', 'undefined') AND a.response IS NOT NULL \
             GROUP BY 1 \
           UNION ALL \
           SELECT failure_text_pattern(n.reason), sum(n.count), min(n.logged_at), \
                  max(n.logged_at), min(n.reason), NULL, NULL, NULL FROM noqueue n \
           WHERE n.logged_at >= {f} AND n.logged_at < {t} \
             AND n.failure_reason IN ('onhold', 'undefined') AND {pred} GROUP BY 1 \
         ) x WHERE pattern IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {top}"
    ));
    Ok(sql
        .query(client)
        .await
        .map_err(db("listing unclassified failures"))?
        .iter()
        .map(|r| {
            let host: Option<String> = r.get(5);
            let queue_id: Option<String> = r.get(6);
            let arrived_at: Option<DateTime<Utc>> = r.get(7);
            Unclassified {
                pattern: r.get(0),
                count: r.get(1),
                first_seen: r.get(2),
                last_seen: r.get(3),
                example: r.get(4),
                example_message: match (host, queue_id, arrived_at) {
                    (Some(h), Some(q), Some(a)) => {
                        Some(format!("/api/v1/messages/{}", message_path(&h, &q, a)))
                    }
                    _ => None,
                },
            }
        })
        .collect())
}
