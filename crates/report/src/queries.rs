//! The report's SQL: read-only, bound parameters, run concurrently.
//!
//! Parameters: `$1` since, `$2` until (half-open), `$3` hosts (`text[]`, NULL: all),
//! `$4` the zone of days and hours (only in the traffic query).

use std::collections::BTreeMap;

use chrono::Utc;
use pftrack_store::Store;
use tokio_postgres::types::ToSql;

use crate::{
    AddressStat, DeliveryDomain, GrandTotals, Options, PeriodInfo, ReasonGroup, ReasonText,
    ReceptionDomain, Report, ReportError, SlowDelivery, Traffic,
};

/// Recipient events in the period, each with its kind: `delivered`, `forwarded`,
/// `handoff` (into a content filter whose output came back), or the event's status.
const EV: &str = "
ev AS (
  SELECT a.host, a.queue_id, a.arrived_at, a.recipient, a.attempt_at, a.delay::float8 AS delay,
         a.relay, a.response, a.failure_reason, a.hard, f.size,
         CASE WHEN position('@' in a.recipient) > 0
              THEN substr(a.recipient, 1, position('@' in a.recipient))
                   || lower(substr(a.recipient, position('@' in a.recipient) + 1))
              ELSE a.recipient END AS addr,
         CASE WHEN position('@' in a.recipient) > 0
              THEN lower(substr(a.recipient, position('@' in a.recipient) + 1))
              ELSE a.recipient END AS domain,
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
rcv AS (
  SELECT f.host, f.arrived_at, f.size,
         CASE WHEN f.sender = '' THEN 'from=<>'
              WHEN position('@' in f.sender) > 0
              THEN substr(f.sender, 1, position('@' in f.sender))
                   || lower(substr(f.sender, position('@' in f.sender) + 1))
              ELSE f.sender END AS addr,
         CASE WHEN position('@' in coalesce(f.sender, '')) > 0
              THEN lower(substr(f.sender, position('@' in f.sender) + 1))
              WHEN f.origin = 'pickup' THEN coalesce(nullif(f.sender, ''), 'from=<>')
              WHEN f.client_name IS NULL OR f.client_name = 'unknown'
              THEN coalesce(f.client_addr, 'unknown')
              ELSE lower(f.client_name) END AS domain
  FROM delivery_from f
  WHERE f.arrived_at >= $1 AND f.arrived_at < $2
    AND ($3::text[] IS NULL OR f.host = ANY($3::text[]))
    AND f.origin IN ('smtpd', 'pickup')
    AND f.parent_kind IS DISTINCT FROM 'reinjection'
)";

/// Recipients rejected (by smtpd, cleanup or a milter after the queue file existed)
/// or discarded in the period: their latest status, from `delivery_to`.
const PQ: &str = "
pq AS (
  SELECT t.host, t.queue_id, t.arrived_at, t.status, t.status_at, t.failure_reason,
         t.hard, t.response
  FROM delivery_to t
  WHERE t.status IN ('rejected', 'discarded')
    AND t.status_at >= $1 AND t.status_at < $2
    AND ($3::text[] IS NULL OR t.host = ANY($3::text[]))
)";

/// NOQUEUE decisions in the period.
const NQ: &str = "
nq AS (
  SELECT * FROM noqueue n
  WHERE n.logged_at >= $1 AND n.logged_at < $2
    AND ($3::text[] IS NULL OR n.host = ANY($3::text[]))
)";

fn with(ctes: &[&str], body: &str) -> String {
    format!("WITH {}\n{body}", ctes.join(",\n"))
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
    let p3: [&(dyn ToSql + Sync); 3] = [&since, &until, &hosts];
    let p4: [&(dyn ToSql + Sync); 4] = [&since, &until, &hosts, &top];
    let p4tz: [&(dyn ToSql + Sync); 4] = [&since, &until, &hosts, &tz];

    let q_delivery = with(
        &[EV, PQ],
        "SELECT count(*) FILTER (WHERE kind = 'delivered'),
                count(*) FILTER (WHERE kind = 'forwarded'),
                count(*) FILTER (WHERE kind = 'handoff'),
                count(DISTINCT (host, queue_id, arrived_at)) FILTER (WHERE kind = 'deferred'),
                count(*) FILTER (WHERE kind = 'deferred'),
                count(*) FILTER (WHERE kind = 'bounced'),
                count(*) FILTER (WHERE kind = 'expired'),
                (SELECT count(DISTINCT (host, queue_id, arrived_at, status_at)) FROM pq
                  WHERE status = 'rejected'),
                (SELECT count(DISTINCT (host, queue_id, arrived_at)) FROM pq
                  WHERE status = 'discarded'),
                coalesce(sum(size) FILTER (WHERE kind = 'delivered'), 0)::int8,
                count(DISTINCT addr) FILTER (WHERE kind = 'delivered'),
                count(DISTINCT domain) FILTER (WHERE kind = 'delivered')
         FROM ev",
    );
    let q_received = with(
        &[RCV],
        "SELECT count(*), coalesce(sum(size), 0)::int8,
                count(DISTINCT addr) FILTER (WHERE size IS NOT NULL),
                count(DISTINCT domain) FILTER (WHERE size IS NOT NULL)
         FROM rcv",
    );
    let q_noqueue = with(
        &[NQ],
        "SELECT coalesce(sum(count) FILTER (WHERE action = 'reject'), 0)::int8,
                coalesce(sum(count) FILTER (WHERE action = 'reject_warning'), 0)::int8,
                coalesce(sum(count) FILTER (WHERE action = 'hold'), 0)::int8,
                coalesce(sum(count) FILTER (WHERE action = 'discard'), 0)::int8,
                (SELECT count(*) FROM delivery_from f
                  WHERE f.held_at >= $1 AND f.held_at < $2
                    AND ($3::text[] IS NULL OR f.host = ANY($3::text[])))
         FROM nq",
    );
    let q_traffic = with(
        &[EV, RCV, NQ, PQ],
        "SELECT to_char(at AT TIME ZONE $4, 'YYYY-MM-DD'),
                extract(hour FROM at AT TIME ZONE $4)::int4, kind, sum(n)::int8
         FROM (
           SELECT arrived_at AS at, 'received' AS kind, 1 AS n FROM rcv
           UNION ALL
           SELECT attempt_at, kind, 1 FROM ev
            WHERE kind IN ('delivered', 'deferred', 'bounced')
           UNION ALL
           SELECT DISTINCT ON (host, queue_id, arrived_at, status_at)
                  status_at, 'rejected', 1 FROM pq WHERE status = 'rejected'
           UNION ALL
           SELECT logged_at, 'rejected', count FROM nq WHERE action = 'reject'
         ) pts
         GROUP BY 1, 2, 3",
    );
    let q_dlv_domains = with(
        &[EV],
        "SELECT domain, count(*) FILTER (WHERE kind = 'delivered') AS sent,
                coalesce(sum(size) FILTER (WHERE kind = 'delivered'), 0)::int8 AS bytes,
                count(*) FILTER (WHERE kind = 'deferred'),
                coalesce(avg(delay) FILTER (WHERE kind = 'delivered'), 0)::float8,
                coalesce(max(delay), 0)::float8
         FROM ev WHERE kind IN ('delivered', 'deferred')
         GROUP BY domain ORDER BY sent DESC, bytes DESC, domain LIMIT $4",
    );
    let q_rcv_domains = with(
        &[RCV],
        "SELECT domain, count(*) AS n, coalesce(sum(size), 0)::int8 AS bytes
         FROM rcv WHERE size IS NOT NULL
         GROUP BY domain ORDER BY n DESC, bytes DESC, domain LIMIT $4",
    );
    let q_senders = with(
        &[RCV],
        "SELECT addr, count(*) AS n, coalesce(sum(size), 0)::int8 AS bytes
           FROM (SELECT addr, size FROM rcv WHERE size IS NOT NULL) r
           GROUP BY addr ORDER BY n DESC, addr LIMIT $4",
    );
    let q_senders_size = with(
        &[RCV],
        "SELECT addr, count(*) AS n, coalesce(sum(size), 0)::int8 AS bytes
           FROM (SELECT addr, size FROM rcv WHERE size IS NOT NULL) r
           GROUP BY addr ORDER BY bytes DESC, addr LIMIT $4",
    );
    let q_rcpts = with(
        &[EV],
        "SELECT addr, count(*) AS n, coalesce(sum(size), 0)::int8 AS bytes
           FROM ev WHERE kind = 'delivered'
           GROUP BY addr ORDER BY n DESC, addr LIMIT $4",
    );
    let q_rcpts_size = with(
        &[EV],
        "SELECT addr, count(*) AS n, coalesce(sum(size), 0)::int8 AS bytes
           FROM ev WHERE kind = 'delivered'
           GROUP BY addr ORDER BY bytes DESC, addr LIMIT $4",
    );
    let q_failures = with(
        &[EV, NQ, PQ],
        "SELECT section, coalesce(failure_reason, 'unclassified'), hard,
                failure_text_pattern(coalesce(text, '')), sum(n)::int8, min(text)
         FROM (
           SELECT CASE kind WHEN 'deferred' THEN 'deferred'
                            WHEN 'rejected' THEN 'rejected' ELSE 'bounced' END AS section,
                  failure_reason, hard, response AS text, 1 AS n
             FROM ev WHERE kind IN ('deferred', 'bounced', 'expired')
           UNION ALL
           SELECT 'rejected', failure_reason, hard, response, 1
             FROM pq WHERE status = 'rejected'
           UNION ALL
           SELECT 'rejected', failure_reason, hard, reason, count
             FROM nq WHERE action = 'reject'
         ) f
         GROUP BY 1, 2, 3, 4",
    );
    let q_slow = with(
        &[EV],
        "SELECT host, queue_id, recipient, delay, relay, attempt_at
         FROM ev WHERE kind = 'delivered' AND delay IS NOT NULL
         ORDER BY delay DESC, attempt_at, queue_id, recipient LIMIT $4",
    );

    let (dlv, rcv, nq, traffic, dlv_dom, rcv_dom) = tokio::try_join!(
        store.query(&q_delivery, &p3),
        store.query(&q_received, &p3),
        store.query(&q_noqueue, &p3),
        store.query(&q_traffic, &p4tz),
        store.query(&q_dlv_domains, &p4),
        store.query(&q_rcv_domains, &p4),
    )?;
    let (snd, snd_size, rcp, rcp_size, failures, slow) = tokio::try_join!(
        store.query(&q_senders, &p4),
        store.query(&q_senders_size, &p4),
        store.query(&q_rcpts, &p4),
        store.query(&q_rcpts_size, &p4),
        store.query(&q_failures, &p3),
        store.query(&q_slow, &p4),
    )?;

    let d = &dlv[0];
    let r = &rcv[0];
    let n = &nq[0];
    let post_queue_rejects: i64 = d.get(7);
    let grand_totals = GrandTotals {
        received: r.get(0),
        delivered: d.get(0),
        forwarded: d.get(1),
        content_filter_handoffs: d.get(2),
        deferred: d.get(3),
        deferrals: d.get(4),
        bounced: d.get(5),
        expired: d.get(6),
        rejected: n.get::<_, i64>(0) + post_queue_rejects,
        reject_warnings: n.get(1),
        held: n.get::<_, i64>(2) + n.get::<_, i64>(4),
        discarded: n.get::<_, i64>(3) + d.get::<_, i64>(8),
        bytes_received: r.get(1),
        bytes_delivered: d.get(9),
        senders: r.get(2),
        sending_domains: r.get(3),
        recipients: d.get(10),
        recipient_domains: d.get(11),
    };

    let mut per_day: BTreeMap<String, Traffic> = BTreeMap::new();
    let mut per_hour: Vec<Traffic> = (0..24)
        .map(|h| Traffic {
            label: format!("{h:02}00-{:02}00", h + 1),
            ..Traffic::default()
        })
        .collect();
    for row in &traffic {
        let day: String = row.get(0);
        let hour: i32 = row.get(1);
        let kind: &str = row.get(2);
        let n: i64 = row.get(3);
        let dt = per_day.entry(day.clone()).or_insert_with(|| Traffic {
            label: day,
            ..Traffic::default()
        });
        let ht = usize::try_from(hour).ok().and_then(|h| per_hour.get_mut(h));
        for t in std::iter::once(dt).chain(ht) {
            match kind {
                "received" => t.received += n,
                "delivered" => t.delivered += n,
                "deferred" => t.deferred += n,
                "bounced" => t.bounced += n,
                _ => t.rejected += n,
            }
        }
    }

    let addr = |rows: &[tokio_postgres::Row]| -> Vec<AddressStat> {
        rows.iter()
            .map(|r| AddressStat {
                address: r.get(0),
                messages: r.get(1),
                bytes: r.get(2),
            })
            .collect()
    };

    let mut groups: BTreeMap<(String, String, Option<bool>), ReasonGroup> = BTreeMap::new();
    for row in &failures {
        let section: String = row.get(0);
        let reason: String = row.get(1);
        let hard: Option<bool> = row.get(2);
        let text: String = row.get(3);
        let n: i64 = row.get(4);
        let example: Option<String> = row.get(5);
        let g = groups
            .entry((section, reason.clone(), hard))
            .or_insert_with(|| ReasonGroup {
                reason,
                hard,
                count: 0,
                texts: Vec::new(),
            });
        g.count += n;
        g.texts.push(ReasonText {
            text: said_text(example.as_deref().unwrap_or("")),
            pattern: text,
            count: n,
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
        delivery_domains: dlv_dom
            .iter()
            .map(|r| DeliveryDomain {
                domain: r.get(0),
                sent: r.get(1),
                bytes: r.get(2),
                defers: r.get(3),
                avg_delay: r.get(4),
                max_delay: r.get(5),
            })
            .collect(),
        reception_domains: rcv_dom
            .iter()
            .map(|r| ReceptionDomain {
                domain: r.get(0),
                messages: r.get(1),
                bytes: r.get(2),
            })
            .collect(),
        senders_by_count: addr(&snd),
        recipients_by_count: addr(&rcp),
        senders_by_size: addr(&snd_size),
        recipients_by_size: addr(&rcp_size),
        deferrals: sections.remove("deferred").unwrap_or_default(),
        bounces: sections.remove("bounced").unwrap_or_default(),
        rejects: sections.remove("rejected").unwrap_or_default(),
        slowest_deliveries: slow
            .iter()
            .map(|r| SlowDelivery {
                host: r.get(0),
                queue_id: r.get(1),
                recipient: r.get(2),
                delay: r.get(3),
                relay: r.get(4),
                at: r.get(5),
            })
            .collect(),
    })
}
