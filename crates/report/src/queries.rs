//! The report's SQL: read-only, bound parameters, run concurrently.
//!
//! Parameters: `$1` since, `$2` until (half-open), `$3` hosts (`text[]`, NULL: all),
//! `$4` the length of the top lists, `$5` the zone of days and hours. Three statements
//! run concurrently; each computes its CTEs once (`MATERIALIZED`) and returns one JSON
//! document with its sections.

use std::collections::BTreeMap;

use chrono::Utc;
use pftrack_store::Store;
use tokio_postgres::types::ToSql;

use serde::Deserialize;

use crate::{
    GrandTotals, Options, PeriodInfo, ReasonGroup, ReasonText, Report, ReportError, Traffic,
};

/// Recipient events in the period, each with its kind: `delivered`, `forwarded`,
/// `handoff` (into a content filter whose output came back), or the event's status.
const EV: &str = "
ev AS MATERIALIZED (
  SELECT a.host, a.queue_id, a.arrived_at, a.recipient, a.attempt_at, a.delay::float8 AS delay,
         a.relay, a.response, a.failure_reason, a.hard, f.size,
         CASE WHEN position('@' in a.recipient) > 0
              THEN substr(a.recipient, 1, position('@' in a.recipient))
                   || lower(substr(a.recipient, position('@' in a.recipient) + 1))
              ELSE a.recipient END COLLATE \"C\" AS addr,
         CASE WHEN position('@' in a.recipient) > 0
              THEN lower(substr(a.recipient, position('@' in a.recipient) + 1))
              ELSE a.recipient END COLLATE \"C\" AS domain,
         CASE WHEN a.status <> 'sent' THEN a.status
              WHEN a.response LIKE '%forwarded as %' THEN 'forwarded'
              WHEN a.queued_as IS NOT NULL AND EXISTS (
                   SELECT 1 FROM delivery_from c
                   WHERE c.queue_id = a.queued_as AND c.host = a.host
                     AND c.parent_kind = 'reinjection'
                     AND c.parent_queue_id = a.queue_id
                     AND c.parent_arrived_at = a.arrived_at) THEN 'handoff'
              ELSE 'delivered' END AS kind
  FROM delivery_attempt a
  JOIN delivery_from f
    ON f.queue_id = a.queue_id AND f.host = a.host AND f.arrived_at = a.arrived_at
  WHERE a.attempt_at >= $1 AND a.attempt_at < $2 AND a.is_attempt
    AND ($3::text[] IS NULL OR a.host = ANY($3::text[]))
)";

/// Messages received in the period: from smtpd or pickup, not a content-filter
/// re-injection. `addr`/`domain` as pflogsumm writes them (`from=<>`, domain in lower
/// case, the client's host for a sender without a domain).
const RCV: &str = "
rcv AS MATERIALIZED (
  SELECT f.host, f.arrived_at, f.size,
         CASE WHEN f.sender = '' THEN 'from=<>'
              WHEN position('@' in f.sender) > 0
              THEN substr(f.sender, 1, position('@' in f.sender))
                   || lower(substr(f.sender, position('@' in f.sender) + 1))
              ELSE f.sender END COLLATE \"C\" AS addr,
         CASE WHEN position('@' in coalesce(f.sender, '')) > 0
              THEN lower(substr(f.sender, position('@' in f.sender) + 1))
              WHEN f.origin = 'pickup' THEN coalesce(nullif(f.sender, ''), 'from=<>')
              WHEN f.client_name IS NULL OR f.client_name = 'unknown'
              THEN coalesce(f.client_addr, 'unknown')
              ELSE lower(f.client_name) END COLLATE \"C\" AS domain
  FROM delivery_from f
  WHERE f.arrived_at >= $1 AND f.arrived_at < $2
    AND ($3::text[] IS NULL OR f.host = ANY($3::text[]))
    AND f.origin IN ('smtpd', 'pickup')
    AND f.parent_kind IS DISTINCT FROM 'reinjection'
)";

/// Recipients rejected (by smtpd, cleanup or a milter after the queue file existed)
/// or discarded in the period: their latest status, from `delivery_to`.
const PQ: &str = "
pq AS MATERIALIZED (
  SELECT t.host, t.queue_id, t.arrived_at, t.status, t.status_at, t.failure_reason,
         t.hard, t.response
  FROM delivery_to t
  WHERE t.status IN ('rejected', 'discarded')
    AND t.status_at >= $1 AND t.status_at < $2
    AND ($3::text[] IS NULL OR t.host = ANY($3::text[]))
)";

/// NOQUEUE decisions in the period.
const NQ: &str = "
nq AS MATERIALIZED (
  SELECT * FROM noqueue n
  WHERE n.logged_at >= $1 AND n.logged_at < $2
    AND ($3::text[] IS NULL OR n.host = ANY($3::text[]))
)";

/// One statement: the CTEs (each computed once), then one JSON object whose keys are
/// the parts: `Obj` a one-row query as an object, `Arr` a query as an array of objects.
fn statement(ctes: &[&str], parts: &[Part<'_>]) -> String {
    let fields: Vec<String> = parts
        .iter()
        .map(|p| match p {
            Part::Obj(key, sql) => {
                format!("'{key}', (SELECT row_to_json(x) FROM ({sql}) x)")
            }
            Part::Arr(key, sql) => {
                format!("'{key}', (SELECT coalesce(json_agg(x), '[]'::json) FROM ({sql}) x)")
            }
        })
        .collect();
    format!(
        "WITH {}\nSELECT json_build_object({})::text",
        ctes.join(",\n"),
        fields.join(",\n")
    )
}

enum Part<'a> {
    Obj(&'a str, &'a str),
    Arr(&'a str, &'a str),
}

async fn json(
    store: &Store,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<serde_json::Value, ReportError> {
    let rows = store.query(sql, params).await?;
    let text: String = rows.first().map(|r| r.get(0)).unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| ReportError::Decode(e.to_string()))
}

fn take<T: serde::de::DeserializeOwned>(
    v: &mut serde_json::Value,
    key: &str,
) -> Result<T, ReportError> {
    serde_json::from_value(v[key].take()).map_err(|e| ReportError::Decode(format!("{key}: {e}")))
}

/// What pflogsumm shows of a reply: without "host X said: ", the SMTP code and
/// "connect to ".
pub(crate) fn said_text(s: &str) -> String {
    let s = match s.find(" said: ") {
        Some(i) if s.starts_with("host ") => &s[i + 7..],
        _ => s,
    };
    let s = match s.get(..4) {
        Some(code) if code.ends_with(' ') && code[..3].bytes().all(|b| b.is_ascii_digit()) => {
            &s[4..]
        }
        _ => s,
    };
    s.strip_prefix("connect to ").unwrap_or(s).to_owned()
}

pub(crate) async fn build(store: &Store, opts: &Options) -> Result<Report, ReportError> {
    let since = opts.period.since;
    let until = opts.period.until;
    let hosts: Option<Vec<String>> = (!opts.hosts.is_empty()).then(|| opts.hosts.clone());
    let tz = opts.period.tz.name().to_owned();
    let top = i64::try_from(opts.top).unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 5] = [&since, &until, &hosts, &top, &tz];
    // A statement must use every parameter it is given: this one has no buckets.
    let params4 = &params[..4];

    // Hour and day of an instant in the report's zone.
    const BUCKET: &str = "to_char(at AT TIME ZONE $5, 'YYYY-MM-DD') AS day, \
                          extract(hour FROM at AT TIME ZONE $5)::int4 AS hour";
    let traffic_ev = format!(
        "SELECT {BUCKET}, kind, count(*)::int8 AS n
         FROM (SELECT attempt_at AS at, kind FROM ev
               WHERE kind IN ('delivered', 'deferred', 'bounced')) e
         GROUP BY 1, 2, 3"
    );
    let traffic_rest = format!(
        "SELECT {BUCKET}, kind, sum(n)::int8 AS n
         FROM (
           SELECT arrived_at AS at, 'received' AS kind, 1 AS n FROM rcv
           UNION ALL
           SELECT DISTINCT ON (host, queue_id, arrived_at, status_at)
                  status_at, 'rejected', 1 FROM pq WHERE status = 'rejected'
           UNION ALL
           SELECT logged_at, 'rejected', count FROM nq WHERE action = 'reject'
         ) pts
         GROUP BY 1, 2, 3"
    );
    // Failures: the wording (masked text), its count and one example.
    let failures_ev =
        "SELECT CASE kind WHEN 'deferred' THEN 'deferred' ELSE 'bounced' END AS section,
                coalesce(failure_reason, 'unclassified') AS reason, hard,
                failure_text_pattern(coalesce(response, '')) AS pattern, count(*)::int8 AS n,
                min(response) AS example
         FROM ev WHERE kind IN ('deferred', 'bounced', 'expired')
         GROUP BY 1, 2, 3, 4";
    let failures_rest =
        "SELECT 'rejected' AS section, coalesce(failure_reason, 'unclassified') AS reason,
                hard, failure_text_pattern(coalesce(text, '')) AS pattern, sum(n)::int8 AS n,
                min(text) AS example
         FROM (
           SELECT failure_reason, hard, response AS text, 1 AS n
             FROM pq WHERE status = 'rejected'
           UNION ALL
           SELECT failure_reason, hard, reason, count FROM nq WHERE action = 'reject'
         ) f
         GROUP BY 1, 2, 3, 4";

    // Three statements, run concurrently: each computes its CTEs once.
    let s_delivery = statement(
        &[EV],
        &[
            Part::Obj(
                "totals",
                "SELECT count(*) FILTER (WHERE kind = 'delivered') AS delivered,
                        count(*) FILTER (WHERE kind = 'forwarded') AS forwarded,
                        count(*) FILTER (WHERE kind = 'handoff') AS handoffs,
                        count(DISTINCT (host, queue_id, arrived_at)) FILTER (WHERE kind = 'deferred') AS deferred,
                        count(*) FILTER (WHERE kind = 'deferred') AS deferrals,
                        count(*) FILTER (WHERE kind = 'bounced') AS bounced,
                        count(*) FILTER (WHERE kind = 'expired') AS expired,
                        coalesce(sum(size) FILTER (WHERE kind = 'delivered'), 0)::int8 AS bytes,
                        count(DISTINCT addr) FILTER (WHERE kind = 'delivered') AS recipients,
                        count(DISTINCT domain) FILTER (WHERE kind = 'delivered') AS domains
                 FROM ev",
            ),
            Part::Arr("traffic", &traffic_ev),
            Part::Arr(
                "domains",
                "SELECT domain, count(*) FILTER (WHERE kind = 'delivered') AS sent,
                        coalesce(sum(size) FILTER (WHERE kind = 'delivered'), 0)::int8 AS bytes,
                        count(*) FILTER (WHERE kind = 'deferred') AS defers,
                        coalesce(avg(delay) FILTER (WHERE kind = 'delivered'), 0)::float8 AS avg_delay,
                        coalesce(max(delay), 0)::float8 AS max_delay
                 FROM ev WHERE kind IN ('delivered', 'deferred')
                 GROUP BY domain ORDER BY sent DESC, bytes DESC, domain LIMIT $4",
            ),
        ],
    );
    let s_recipients = statement(
        &[EV],
        &[
            Part::Arr(
                "by_count",
                "SELECT addr AS address, count(*) AS messages, coalesce(sum(size), 0)::int8 AS bytes
                 FROM ev WHERE kind = 'delivered'
                 GROUP BY addr ORDER BY messages DESC, addr LIMIT $4",
            ),
            Part::Arr(
                "by_size",
                "SELECT addr AS address, count(*) AS messages, coalesce(sum(size), 0)::int8 AS bytes
                 FROM ev WHERE kind = 'delivered'
                 GROUP BY addr ORDER BY bytes DESC, addr LIMIT $4",
            ),
            Part::Arr("failures", failures_ev),
            Part::Arr(
                "problems",
                "SELECT addr AS address,
                        count(*) FILTER (WHERE kind IN ('bounced', 'expired')) AS bounced,
                        count(*) FILTER (WHERE kind = 'deferred') AS deferred,
                        (array_agg(coalesce(failure_reason, 'unclassified') ORDER BY attempt_at DESC)
                           FILTER (WHERE kind IN ('bounced', 'expired', 'deferred')))[1] AS last_reason
                 FROM ev WHERE kind IN ('bounced', 'expired', 'deferred')
                 GROUP BY addr
                 ORDER BY bounced DESC, deferred DESC, addr LIMIT $4",
            ),
            Part::Arr(
                "slow",
                "SELECT host, queue_id, recipient, delay, relay, attempt_at AS at
                 FROM ev WHERE kind = 'delivered' AND delay IS NOT NULL
                 ORDER BY delay DESC, attempt_at, queue_id, recipient LIMIT $4",
            ),
        ],
    );
    let s_reception = statement(
        &[RCV, NQ, PQ],
        &[
            Part::Obj(
                "totals",
                "SELECT count(*) AS received, coalesce(sum(size), 0)::int8 AS bytes,
                        count(DISTINCT addr) FILTER (WHERE size IS NOT NULL) AS senders,
                        count(DISTINCT domain) FILTER (WHERE size IS NOT NULL) AS domains
                 FROM rcv",
            ),
            Part::Obj(
                "noqueue",
                "SELECT coalesce(sum(count) FILTER (WHERE action = 'reject'), 0)::int8 AS reject,
                        coalesce(sum(count) FILTER (WHERE action = 'reject_warning'), 0)::int8 AS reject_warning,
                        coalesce(sum(count) FILTER (WHERE action = 'hold'), 0)::int8 AS hold,
                        coalesce(sum(count) FILTER (WHERE action = 'discard'), 0)::int8 AS discard
                 FROM nq",
            ),
            Part::Obj(
                "after_queue",
                "SELECT (SELECT count(DISTINCT (host, queue_id, arrived_at, status_at)) FROM pq
                          WHERE status = 'rejected') AS rejected,
                        (SELECT count(DISTINCT (host, queue_id, arrived_at)) FROM pq
                          WHERE status = 'discarded') AS discarded,
                        (SELECT count(*) FROM delivery_from f
                          WHERE f.held_at >= $1 AND f.held_at < $2
                            AND ($3::text[] IS NULL OR f.host = ANY($3::text[]))) AS held,
                        (SELECT count(*) FROM delivery_from f
                          WHERE f.arrived_at >= $1 AND f.arrived_at < $2
                            AND ($3::text[] IS NULL OR f.host = ANY($3::text[]))
                            AND f.parent_kind = 'non_delivery') AS ndrs",
            ),
            Part::Arr("traffic", &traffic_rest),
            Part::Arr(
                "domains",
                "SELECT domain, count(*) AS messages, coalesce(sum(size), 0)::int8 AS bytes
                 FROM rcv WHERE size IS NOT NULL
                 GROUP BY domain ORDER BY messages DESC, bytes DESC, domain LIMIT $4",
            ),
            Part::Arr(
                "by_count",
                "SELECT addr AS address, count(*) AS messages, coalesce(sum(size), 0)::int8 AS bytes
                 FROM rcv WHERE size IS NOT NULL
                 GROUP BY addr ORDER BY messages DESC, addr LIMIT $4",
            ),
            Part::Arr(
                "by_size",
                "SELECT addr AS address, count(*) AS messages, coalesce(sum(size), 0)::int8 AS bytes
                 FROM rcv WHERE size IS NOT NULL
                 GROUP BY addr ORDER BY bytes DESC, addr LIMIT $4",
            ),
            Part::Arr("failures", failures_rest),
        ],
    );

    let (mut d, mut r, mut c) = tokio::try_join!(
        json(store, &s_delivery, &params),
        json(store, &s_recipients, params4),
        json(store, &s_reception, &params),
    )?;

    let dt: DeliveryTotals = take(&mut d, "totals")?;
    let rt: ReceivedTotals = take(&mut c, "totals")?;
    let nq: NoqueueTotals = take(&mut c, "noqueue")?;
    let aq: AfterQueue = take(&mut c, "after_queue")?;
    let grand_totals = GrandTotals {
        received: rt.received,
        delivered: dt.delivered,
        forwarded: dt.forwarded,
        content_filter_handoffs: dt.handoffs,
        deferred: dt.deferred,
        deferrals: dt.deferrals,
        bounced: dt.bounced,
        expired: dt.expired,
        rejected: nq.reject + aq.rejected,
        reject_warnings: nq.reject_warning,
        held: nq.hold + aq.held,
        discarded: nq.discard + aq.discarded,
        ndrs: aq.ndrs,
        bytes_received: rt.bytes,
        bytes_delivered: dt.bytes,
        senders: rt.senders,
        sending_domains: rt.domains,
        recipients: dt.recipients,
        recipient_domains: dt.domains,
    };

    let mut per_day: BTreeMap<String, Traffic> = BTreeMap::new();
    let mut per_hour: Vec<Traffic> = (0..24)
        .map(|h| Traffic {
            label: format!("{h:02}00-{:02}00", h + 1),
            ..Traffic::default()
        })
        .collect();
    let mut traffic: Vec<TrafficRow> = take(&mut d, "traffic")?;
    traffic.extend(take::<Vec<TrafficRow>>(&mut c, "traffic")?);
    for row in traffic {
        let dt = per_day.entry(row.day.clone()).or_insert_with(|| Traffic {
            label: row.day.clone(),
            ..Traffic::default()
        });
        let ht = usize::try_from(row.hour)
            .ok()
            .and_then(|h| per_hour.get_mut(h));
        for t in std::iter::once(dt).chain(ht) {
            match row.kind.as_str() {
                "received" => t.received += row.n,
                "delivered" => t.delivered += row.n,
                "deferred" => t.deferred += row.n,
                "bounced" => t.bounced += row.n,
                _ => t.rejected += row.n,
            }
        }
    }

    let mut failures: Vec<FailureRow> = take(&mut r, "failures")?;
    failures.extend(take::<Vec<FailureRow>>(&mut c, "failures")?);
    let mut groups: BTreeMap<(String, String, Option<bool>), ReasonGroup> = BTreeMap::new();
    for f in failures {
        let g = groups
            .entry((f.section, f.reason.clone(), f.hard))
            .or_insert_with(|| ReasonGroup {
                reason: f.reason,
                hard: f.hard,
                count: 0,
                texts: Vec::new(),
            });
        g.count += f.n;
        g.texts.push(ReasonText {
            text: said_text(f.example.as_deref().unwrap_or("")),
            pattern: f.pattern,
            count: f.n,
        });
    }
    let mut sections: BTreeMap<String, Vec<ReasonGroup>> = BTreeMap::new();
    for ((section, _, _), mut g) in groups {
        g.texts
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
        g.texts.truncate(opts.top.max(1));
        sections.entry(section).or_default().push(g);
    }
    for v in sections.values_mut() {
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    }

    Ok(Report {
        schema: crate::JSON_SCHEMA,
        generated_at: Utc::now(),
        period: PeriodInfo {
            since,
            until,
            timezone: tz,
            hosts: opts.hosts.clone(),
        },
        grand_totals,
        per_day: per_day.into_values().collect(),
        per_hour,
        delivery_domains: take(&mut d, "domains")?,
        reception_domains: take(&mut c, "domains")?,
        senders_by_count: take(&mut c, "by_count")?,
        recipients_by_count: take(&mut r, "by_count")?,
        senders_by_size: take(&mut c, "by_size")?,
        recipients_by_size: take(&mut r, "by_size")?,
        deferrals: sections.remove("deferred").unwrap_or_default(),
        bounces: sections.remove("bounced").unwrap_or_default(),
        rejects: sections.remove("rejected").unwrap_or_default(),
        slowest_deliveries: take(&mut r, "slow")?,
        problem_recipients: take(&mut r, "problems")?,
        auth: crate::AuthSection::default(),
    })
}

#[derive(Deserialize)]
struct DeliveryTotals {
    delivered: i64,
    forwarded: i64,
    handoffs: i64,
    deferred: i64,
    deferrals: i64,
    bounced: i64,
    expired: i64,
    bytes: i64,
    recipients: i64,
    domains: i64,
}

#[derive(Deserialize)]
struct ReceivedTotals {
    received: i64,
    bytes: i64,
    senders: i64,
    domains: i64,
}

#[derive(Deserialize)]
struct NoqueueTotals {
    reject: i64,
    reject_warning: i64,
    hold: i64,
    discard: i64,
}

#[derive(Deserialize)]
struct AfterQueue {
    rejected: i64,
    discarded: i64,
    held: i64,
    ndrs: i64,
}

#[derive(Deserialize)]
struct TrafficRow {
    day: String,
    hour: i32,
    kind: String,
    n: i64,
}

#[derive(Deserialize)]
struct FailureRow {
    section: String,
    reason: String,
    hard: Option<bool>,
    pattern: String,
    n: i64,
    example: Option<String>,
}
