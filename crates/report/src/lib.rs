//! `pftrack-report`: a pflogsumm-class summary of a period, computed from the facts
//! pftrack stored in PostgreSQL, rendered as text (pflogsumm's layout), JSON (stable,
//! documented keys) or one self-contained HTML file with inline SVG charts.
//!
//! What it is: read-only SQL through [`pftrack_store::Store::query`] with bound
//! parameters, grouped by pflogsumm's section names (Grand Totals, per-day and per-hour
//! traffic, host/domain summaries, senders and recipients by count and size, deferral /
//! bounce / reject detail), the failure details grouped by the classifier's stored
//! `failure_reason`, plus the slowest deliveries.
//!
//! What it is not: a log parser (it never reads log files; pflogsumm's counts of
//! warnings, fatal errors, panics and SMTP connection times need facts that are not
//! stored yet), a mailer (the CLI sends the rendered report), or a writer (it never
//! changes the database). Counting follows pflogsumm where sound; each difference is
//! documented in `docs/reports.md`.

mod auth;
mod html;
mod mail;
mod period;
mod queries;
mod text;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use auth::{AuthAsn, AuthClient, AuthCount, AuthSection, AuthSummary};
pub use mail::mime_message;
pub use period::Period;

/// Version of the JSON document's layout (`schema`); bumped when a key changes meaning
/// or disappears, not when one is added.
pub const JSON_SCHEMA: u32 = 1;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A period argument could not be read.
    #[error("period: {0}")]
    Period(String),
    /// The database refused a query.
    #[error(transparent)]
    Store(#[from] pftrack_store::StoreError),
    /// A query's JSON did not have the expected shape (a bug).
    #[error("decoding the report's query result: {0}")]
    Decode(String),
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Options {
    /// The period and the zone of its days and hours.
    pub period: Period,
    /// Only these hosts (as logged); empty: the whole fleet.
    pub hosts: Vec<String>,
    /// Length of every top-N list.
    pub top: usize,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pflogsumm's plain-text layout.
    Text,
    /// One JSON object (keys in `docs/reports.md`).
    Json,
    /// One HTML file, inline CSS and SVG, no scripts, no external assets.
    Html,
}

/// The whole report: every section, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`JSON_SCHEMA`].
    pub schema: u32,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// What it covers.
    pub period: PeriodInfo,
    /// pflogsumm's "Grand Totals".
    pub grand_totals: GrandTotals,
    /// "Per-Day Traffic Summary", one entry per day with traffic, in order.
    pub per_day: Vec<Traffic>,
    /// "Per-Hour Traffic Summary": 24 entries (hour of the day in the report's zone,
    /// summed over the period's days).
    pub per_hour: Vec<Traffic>,
    /// "Host/Domain Summary: Message Delivery", by messages sent.
    pub delivery_domains: Vec<DeliveryDomain>,
    /// "Host/Domain Summary: Messages Received", by messages.
    pub reception_domains: Vec<ReceptionDomain>,
    /// "Senders by message count".
    pub senders_by_count: Vec<AddressStat>,
    /// "Recipients by message count".
    pub recipients_by_count: Vec<AddressStat>,
    /// "Senders by message size".
    pub senders_by_size: Vec<AddressStat>,
    /// "Recipients by message size".
    pub recipients_by_size: Vec<AddressStat>,
    /// "message deferral detail", grouped by failure reason.
    pub deferrals: Vec<ReasonGroup>,
    /// "message bounce detail", grouped by failure reason (bounces and expiries).
    pub bounces: Vec<ReasonGroup>,
    /// "message reject detail", grouped by failure reason.
    pub rejects: Vec<ReasonGroup>,
    /// Not in pflogsumm: the slowest deliveries (largest `delay=`).
    pub slowest_deliveries: Vec<SlowDelivery>,
    /// Not in pflogsumm: the recipients with the most bounces (and expiries), then
    /// deferrals.
    pub problem_recipients: Vec<ProblemRecipient>,
    /// Not in pflogsumm: SASL authentication failures (MailLogSentinel's digest).
    pub auth: AuthSection,
}

/// The SASL section on its own (`pftrack report --auth`).
#[derive(Debug, Clone, Serialize)]
pub struct AuthReport {
    /// [`JSON_SCHEMA`].
    pub schema: u32,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// What it covers.
    pub period: PeriodInfo,
    /// The failures.
    pub auth: AuthSection,
}

/// A recipient that failed in the period.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProblemRecipient {
    /// The recipient.
    pub address: String,
    /// Bounces and expiries.
    pub bounced: i64,
    /// Deferrals.
    pub deferred: i64,
    /// The failure reason of its latest failure.
    pub last_reason: Option<String>,
}

/// The period as reported.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodInfo {
    /// First instant included.
    pub since: DateTime<Utc>,
    /// First instant excluded.
    pub until: DateTime<Utc>,
    /// Zone of the days and hours.
    pub timezone: String,
    /// Hosts reported on; empty: the whole fleet.
    pub hosts: Vec<String>,
}

/// pflogsumm's Grand Totals, with pftrack's extras.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GrandTotals {
    /// Messages that entered the system (smtpd or pickup), content-filter
    /// re-injections and notifications not counted.
    pub received: i64,
    /// Successful deliveries (recipient events), forwards and content-filter
    /// hand-offs not counted.
    pub delivered: i64,
    /// `status=sent` with "forwarded as" (local forwarding).
    pub forwarded: i64,
    /// Not in pflogsumm: deliveries into a content filter whose output was re-injected
    /// (pflogsumm counts them as delivered).
    pub content_filter_handoffs: i64,
    /// Messages with at least one deferral in the period.
    pub deferred: i64,
    /// Deferral events.
    pub deferrals: i64,
    /// Recipients bounced (`status=bounced` events).
    pub bounced: i64,
    /// Not in pflogsumm: recipients returned when their message expired in the queue.
    pub expired: i64,
    /// Rejects: NOQUEUE rejects (with their repeat count) and rejects after the queue
    /// file existed (one per logged line).
    pub rejected: i64,
    /// `reject_warning` decisions.
    pub reject_warnings: i64,
    /// Messages put on hold.
    pub held: i64,
    /// Messages discarded.
    pub discarded: i64,
    /// Not in pflogsumm: non-delivery notifications (NDRs) generated; each is counted
    /// once, and its delivery is in `delivered`.
    pub ndrs: i64,
    /// Sum of the sizes of the received messages.
    pub bytes_received: i64,
    /// Sum of the message size over delivered recipients.
    pub bytes_delivered: i64,
    /// Distinct senders of received messages.
    pub senders: i64,
    /// Distinct sender domains (the client's host when the sender has none).
    pub sending_domains: i64,
    /// Distinct recipients delivered to.
    pub recipients: i64,
    /// Distinct recipient domains delivered to.
    pub recipient_domains: i64,
}

/// One row of a traffic summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Traffic {
    /// `YYYY-MM-DD` (per day) or `HH00-HH00` (per hour).
    pub label: String,
    /// Messages received.
    pub received: i64,
    /// Deliveries.
    pub delivered: i64,
    /// Deferrals.
    pub deferred: i64,
    /// Bounces.
    pub bounced: i64,
    /// Rejects.
    pub rejected: i64,
}

/// One recipient domain's deliveries.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeliveryDomain {
    /// Recipient domain (the whole address when it has no `@`).
    pub domain: String,
    /// Deliveries.
    pub sent: i64,
    /// Bytes delivered.
    pub bytes: i64,
    /// Deferrals.
    pub defers: i64,
    /// Average `delay=` of the deliveries, seconds.
    pub avg_delay: f64,
    /// Largest `delay=` of deliveries and deferrals, seconds.
    pub max_delay: f64,
}

/// One sending domain's messages.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ReceptionDomain {
    /// Sender domain, or the client's host for a sender without one.
    pub domain: String,
    /// Messages received.
    pub messages: i64,
    /// Bytes received.
    pub bytes: i64,
}

/// A sender or recipient with its count and bytes.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AddressStat {
    /// The address (`from=<>` for the null sender).
    pub address: String,
    /// Messages (senders) or deliveries (recipients).
    pub messages: i64,
    /// Bytes.
    pub bytes: i64,
}

/// Failures of one reason.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonGroup {
    /// The classifier's reason (`unclassified` when none was stored).
    pub reason: String,
    /// Permanent (true), transient (false), unknown (null).
    pub hard: Option<bool>,
    /// Events (rejects with their repeat count).
    pub count: i64,
    /// The most frequent wordings (addresses, numbers and ids masked).
    pub texts: Vec<ReasonText>,
}

/// One wording of a failure.
#[derive(Debug, Clone, Serialize)]
pub struct ReasonText {
    /// One text of this wording, as pflogsumm shows it (without "host X said: " and
    /// the SMTP reply code).
    pub text: String,
    /// The wording: the text with addresses, IP addresses, ids and numbers masked
    /// (the SQL function `failure_text_pattern`); texts are grouped by it.
    pub pattern: String,
    /// Events.
    pub count: i64,
}

/// One slow delivery.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SlowDelivery {
    /// Host that logged it.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// Recipient.
    pub recipient: String,
    /// `delay=`, seconds.
    pub delay: f64,
    /// `relay=`.
    pub relay: Option<String>,
    /// When it was delivered.
    pub at: DateTime<Utc>,
}

/// Build the report for `opts` from the database.
pub async fn build(store: &pftrack_store::Store, opts: &Options) -> Result<Report, ReportError> {
    let (mut report, auth) =
        tokio::try_join!(queries::build(store, opts), auth::build(store, opts))?;
    report.auth = auth;
    Ok(report)
}

/// Build the SASL section alone for `opts`.
pub async fn build_auth(
    store: &pftrack_store::Store,
    opts: &Options,
) -> Result<AuthReport, ReportError> {
    let auth = auth::build(store, opts).await?;
    Ok(AuthReport {
        schema: JSON_SCHEMA,
        generated_at: Utc::now(),
        period: PeriodInfo {
            since: opts.period.since,
            until: opts.period.until,
            timezone: opts.period.tz.name().to_owned(),
            hosts: opts.hosts.clone(),
        },
        auth,
    })
}

impl AuthReport {
    /// Render in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::render_auth(self),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Html => html::render_auth(self),
        }
    }

    /// A one-line title: "pftrack SASL report 2025-03-14 (mx1)".
    pub fn title(&self) -> String {
        title("pftrack SASL report", &self.period)
    }
}

impl Report {
    /// Render in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => text::render(self),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Html => html::render(self),
        }
    }

    /// A one-line title: "pftrack report 2025-03-14 (mx1)".
    pub fn title(&self) -> String {
        title("pftrack report", &self.period)
    }
}

/// "`what` 2025-03-14 (mx1)".
fn title(what: &str, period: &PeriodInfo) -> String {
    let tz: chrono_tz::Tz = period.timezone.parse().unwrap_or(chrono_tz::UTC);
    let first = period.since.with_timezone(&tz).date_naive();
    let last = (period.until - chrono::Duration::nanoseconds(1))
        .with_timezone(&tz)
        .date_naive();
    let days = if first == last {
        first.to_string()
    } else {
        format!("{first} .. {last}")
    };
    let hosts = if period.hosts.is_empty() {
        "all hosts".to_owned()
    } else {
        period.hosts.join(", ")
    };
    format!("{what} {days} ({hosts})")
}

/// pflogsumm's unit rule: values above 512 k are shown in k, above 512 m in m.
pub(crate) fn adj_units(v: i64) -> (i64, char) {
    const K: i64 = 1024;
    if v > 512 * K * K {
        (v / (K * K), 'm')
    } else if v > 512 * K {
        (v / K, 'k')
    } else {
        (v, ' ')
    }
}

/// pflogsumm's delay rendering: seconds below a minute, then minutes, hours, days.
pub(crate) fn adj_time(secs: f64) -> String {
    if secs >= 86400.0 {
        format!("{:.1} d", secs / 86400.0)
    } else if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} m", secs / 60.0)
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_like_pflogsumm() {
        assert_eq!(adj_units(3_942_004), (3849, 'k'));
        assert_eq!(adj_units(430_071), (430_071, ' '));
        assert_eq!(adj_time(344.0), "5.7 m");
    }
}
