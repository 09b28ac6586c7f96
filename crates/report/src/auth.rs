//! The SASL section: authentication failures of the period and of its last day (top
//! client addresses with their country and AS, usernames tried, countries, ASNs,
//! mechanisms), from the `auth_failure` table (migration V9). The country and AS are
//! those stored when each failure was loaded.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use pftrack_store::Store;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

use crate::html::esc;
use crate::text::trim;
use crate::{Options, ReportError};

/// The SASL section: the period and its last day.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthSection {
    /// The whole period.
    pub period: AuthSummary,
    /// The last day of the period in the report's zone ("today" for `-d today`; the
    /// same as `period` for a one-day report).
    pub last_day: AuthSummary,
}

/// Failures in one span of time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AuthSummary {
    /// First instant included.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// First instant excluded.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Failures (aborted ones included).
    pub failures: i64,
    /// Of which the client gave up (`authentication aborted`).
    pub aborted: i64,
    /// Distinct client addresses.
    pub clients: i64,
    /// Distinct usernames tried (where logged).
    pub usernames: i64,
    /// Client addresses by failures.
    pub top_clients: Vec<AuthClient>,
    /// Usernames by failures.
    pub top_usernames: Vec<AuthCount>,
    /// Countries (ISO code; `unknown` without GeoIP data) by failures.
    pub top_countries: Vec<AuthCount>,
    /// Autonomous systems by failures.
    pub top_asns: Vec<AuthAsn>,
    /// SASL mechanisms by failures.
    pub methods: Vec<AuthCount>,
}

/// One client address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthClient {
    /// The address.
    pub client_addr: String,
    /// Its name as logged (`unknown` without reverse DNS).
    pub client_name: Option<String>,
    /// Country code, when known.
    pub country: Option<String>,
    /// AS number, when known.
    pub asn: Option<i64>,
    /// AS organisation, when known.
    pub as_org: Option<String>,
    /// Failures.
    pub failures: i64,
    /// Distinct usernames it tried.
    pub usernames: i64,
}

/// A name (username, country, mechanism) with its failures and client addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthCount {
    /// The name.
    pub name: String,
    /// Failures.
    pub failures: i64,
    /// Distinct client addresses.
    pub clients: i64,
}

/// An autonomous system with its failures and client addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthAsn {
    /// AS number; `None`: unknown (no GeoIP data).
    pub asn: Option<i64>,
    /// Organisation, when known.
    pub as_org: Option<String>,
    /// Failures.
    pub failures: i64,
    /// Distinct client addresses.
    pub clients: i64,
}

/// One span's figures as one JSON document. `$1` since, `$2` until, `$3` hosts, `$4`
/// the length of the lists.
const SUMMARY: &str = "
WITH a AS MATERIALIZED (
  SELECT client_addr, client_name, country, asn, as_org, sasl_username, sasl_method, aborted
  FROM auth_failure
  WHERE logged_at >= $1 AND logged_at < $2 AND ($3::text[] IS NULL OR host = ANY($3::text[]))
)
SELECT json_build_object(
  'failures', (SELECT count(*) FROM a),
  'aborted', (SELECT count(*) FILTER (WHERE aborted) FROM a),
  'clients', (SELECT count(DISTINCT client_addr) FROM a),
  'usernames', (SELECT count(DISTINCT sasl_username) FROM a),
  'top_clients', (SELECT coalesce(json_agg(x), '[]'::json) FROM (
      SELECT client_addr, min(client_name) AS client_name, min(country) AS country,
             min(asn) AS asn, min(as_org) AS as_org, count(*) AS failures,
             count(DISTINCT sasl_username) AS usernames
      FROM a GROUP BY client_addr ORDER BY failures DESC, client_addr LIMIT $4) x),
  'top_usernames', (SELECT coalesce(json_agg(x), '[]'::json) FROM (
      SELECT sasl_username AS name, count(*) AS failures,
             count(DISTINCT client_addr) AS clients
      FROM a WHERE sasl_username IS NOT NULL
      GROUP BY 1 ORDER BY failures DESC, name LIMIT $4) x),
  'top_countries', (SELECT coalesce(json_agg(x), '[]'::json) FROM (
      SELECT coalesce(country, 'unknown') AS name, count(*) AS failures,
             count(DISTINCT client_addr) AS clients
      FROM a GROUP BY 1 ORDER BY failures DESC, name LIMIT $4) x),
  'top_asns', (SELECT coalesce(json_agg(x), '[]'::json) FROM (
      SELECT asn, min(as_org) AS as_org, count(*) AS failures,
             count(DISTINCT client_addr) AS clients
      FROM a GROUP BY asn ORDER BY failures DESC, asn NULLS LAST LIMIT $4) x),
  'methods', (SELECT coalesce(json_agg(x), '[]'::json) FROM (
      SELECT sasl_method AS name, count(*) AS failures,
             count(DISTINCT client_addr) AS clients
      FROM a GROUP BY 1 ORDER BY failures DESC, name LIMIT $4) x)
)::text";

async fn summary(
    store: &Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    opts: &Options,
) -> Result<AuthSummary, ReportError> {
    let hosts: Option<Vec<String>> = (!opts.hosts.is_empty()).then(|| opts.hosts.clone());
    let top = i64::try_from(opts.top.max(1)).unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 4] = [&since, &until, &hosts, &top];
    let rows = store.query(SUMMARY, &params).await?;
    let text: String = rows.first().map(|r| r.get(0)).unwrap_or_default();
    let mut s: AuthSummary =
        serde_json::from_str(&text).map_err(|e| ReportError::Decode(format!("auth: {e}")))?;
    s.since = Some(since);
    s.until = Some(until);
    Ok(s)
}

/// The SASL section for `opts`: the period, and the last day of it (in the report's
/// zone) on its own.
pub(crate) async fn build(store: &Store, opts: &Options) -> Result<AuthSection, ReportError> {
    let since = opts.period.since;
    let until = opts.period.until;
    let tz = opts.period.tz;
    // Midnight (in the zone) of the day holding the period's last instant.
    let last = (until - chrono::Duration::nanoseconds(1)).with_timezone(&tz);
    let day_start = last
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|m| m.and_local_timezone(tz).earliest())
        .map_or(since, |t| t.with_timezone(&Utc))
        .max(since);
    let (period, last_day) = tokio::try_join!(
        summary(store, since, until, opts),
        summary(store, day_start, until, opts)
    )?;
    Ok(AuthSection { period, last_day })
}

/// The text form (pflogsumm's style of headings and right-aligned counts).
pub(crate) fn text(out: &mut String, a: &AuthSection) {
    let title = "SASL Authentication Failures";
    let _ = writeln!(out, "\n{title}\n{}", "-".repeat(title.len()));
    let one_day = a.period == a.last_day;
    let spans: Vec<(&str, &AuthSummary)> = if one_day {
        vec![("period", &a.period)]
    } else {
        vec![("last day", &a.last_day), ("period", &a.period)]
    };
    for (label, s) in spans {
        let from = s.since.map(|t| t.to_rfc3339()).unwrap_or_default();
        let _ = writeln!(
            out,
            "\n  {label} (from {from}): {} failures ({} aborted) from {} client addresses, {} usernames",
            s.failures, s.aborted, s.clients, s.usernames
        );
        if s.failures == 0 {
            continue;
        }
        let _ = writeln!(out, "\n  top client addresses");
        for c in &s.top_clients {
            let asn = match (c.asn, c.as_org.as_deref()) {
                (Some(n), Some(org)) => format!("AS{n} {}", trim(org, 30)),
                (Some(n), None) => format!("AS{n}"),
                _ => "-".to_owned(),
            };
            let name = c.client_name.as_deref().filter(|n| !n.is_empty());
            let _ = writeln!(
                out,
                "    {:>6}   {:<39} {:<2}  {asn}  ({} usernames; {})",
                c.failures,
                trim(&c.client_addr, 39),
                c.country.as_deref().unwrap_or("-"),
                c.usernames,
                trim(name.unwrap_or("no name"), 40)
            );
        }
        counts(out, "top usernames", &s.top_usernames);
        counts(out, "countries", &s.top_countries);
        let _ = writeln!(out, "\n  autonomous systems");
        for x in &s.top_asns {
            let _ = writeln!(
                out,
                "    {:>6}   {:<9} {}  ({} addresses)",
                x.failures,
                x.asn
                    .map_or_else(|| "unknown".to_owned(), |n| format!("AS{n}")),
                trim(x.as_org.as_deref().unwrap_or(""), 50),
                x.clients
            );
        }
        counts(out, "mechanisms", &s.methods);
    }
}

fn counts(out: &mut String, title: &str, rows: &[AuthCount]) {
    let _ = writeln!(out, "\n  {title}");
    for r in rows {
        let _ = writeln!(
            out,
            "    {:>6}   {}  ({} addresses)",
            r.failures,
            trim(&r.name, 60),
            r.clients
        );
    }
}

/// The HTML form: one table per list, a bar chart of the top client addresses.
pub(crate) fn html(o: &mut String, a: &AuthSection) {
    o.push_str("<h2>SASL Authentication Failures</h2>\n");
    let one_day = a.period == a.last_day;
    let spans: Vec<(&str, &AuthSummary)> = if one_day {
        vec![("period", &a.period)]
    } else {
        vec![("last day", &a.last_day), ("period", &a.period)]
    };
    for (label, s) in spans {
        let from = s.since.map(|t| t.to_rfc3339()).unwrap_or_default();
        let _ = writeln!(
            o,
            "<h3>{label} <span class=\"muted\">(from {})</span></h3>\n<p>{} failures ({} aborted) from {} client addresses, {} usernames</p>",
            esc(&from),
            s.failures,
            s.aborted,
            s.clients,
            s.usernames
        );
        if s.failures == 0 {
            continue;
        }
        let bars: Vec<(String, i64)> = s
            .top_clients
            .iter()
            .map(|c| (c.client_addr.clone(), c.failures))
            .collect();
        crate::html::hbar_chart(o, &bars, "#e15759");
        o.push_str("<div class=\"cols\"><div><table><tr><th>failures</th><th class=\"l\">client address</th><th class=\"l\">country</th><th class=\"l\">AS</th><th>usernames</th><th class=\"l\">name</th></tr>\n");
        for c in &s.top_clients {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                c.failures,
                esc(&c.client_addr),
                esc(c.country.as_deref().unwrap_or("-")),
                esc(&match (c.asn, c.as_org.as_deref()) {
                    (Some(n), Some(org)) => format!("AS{n} {org}"),
                    (Some(n), None) => format!("AS{n}"),
                    _ => "-".to_owned(),
                }),
                c.usernames,
                esc(c
                    .client_name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("no name"))
            );
        }
        o.push_str("</table></div>\n");
        html_counts(o, "usernames", &s.top_usernames);
        html_counts(o, "countries", &s.top_countries);
        o.push_str(
            "<div><table><tr><th>failures</th><th class=\"l\">AS</th><th>addresses</th></tr>\n",
        );
        for x in &s.top_asns {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
                x.failures,
                esc(&match (x.asn, x.as_org.as_deref()) {
                    (Some(n), Some(org)) => format!("AS{n} {org}"),
                    (Some(n), None) => format!("AS{n}"),
                    _ => "unknown".to_owned(),
                }),
                x.clients
            );
        }
        o.push_str("</table></div>\n");
        html_counts(o, "mechanisms", &s.methods);
        o.push_str("</div>\n");
    }
}

fn html_counts(o: &mut String, title: &str, rows: &[AuthCount]) {
    let _ = writeln!(
        o,
        "<div><table><tr><th>failures</th><th class=\"l\">{}</th><th>addresses</th></tr>",
        esc(title)
    );
    for r in rows {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            r.failures,
            esc(&r.name),
            r.clients
        );
    }
    o.push_str("</table></div>\n");
}
