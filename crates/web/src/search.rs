//! The search: parameters (parsed by hand from the query string, so every mistake is
//! a 400 naming the parameter), one scoped SQL statement with keyset pagination, and
//! the rows, shared by the page, the JSON API and the CSV export.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{WebError, db};
use crate::scope::Scope;
use crate::sql::Sql;

/// Rows per page when not asked.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Rows per page at most.
pub const MAX_PAGE_SIZE: usize = 500;
/// Rows of a CSV export at most (the export says when it was cut).
pub const MAX_EXPORT_ROWS: usize = 50_000;
/// The default time window: the last 24 hours.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::hours(24);
/// The longest time window one search may span.
pub const MAX_SEARCH_SPAN: TimeDelta = TimeDelta::days(31);
/// Longest value of one parameter.
pub const MAX_PARAM_LEN: usize = 512;
/// Longest parameter name.
pub const MAX_PARAM_NAME_LEN: usize = 64;
/// Parameters in one query string at most.
pub const MAX_PARAMS: usize = 64;

/// Statuses a recipient can have (`delivery_status.status`).
pub const STATUSES: [&str; 7] = [
    "sent",
    "deferred",
    "bounced",
    "expired",
    "rejected",
    "discarded",
    "deleted",
];

/// The window presets of the search form.
pub const WINDOW_PRESETS: [(&str, TimeDelta); 5] = [
    ("1h", TimeDelta::hours(1)),
    ("6h", TimeDelta::hours(6)),
    ("24h", TimeDelta::hours(24)),
    ("7d", TimeDelta::days(7)),
    ("30d", TimeDelta::days(30)),
];

/// What the results are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Arrival time.
    Time,
    /// Envelope sender.
    Sender,
    /// Recipient.
    Recipient,
    /// Status.
    Status,
}

impl SortKey {
    /// The parameter's name of the key.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Time => "time",
            SortKey::Sender => "sender",
            SortKey::Recipient => "recipient",
            SortKey::Status => "status",
        }
    }

    fn expr(self) -> &'static str {
        match self {
            SortKey::Time => "t.arrived_at",
            SortKey::Sender => "COALESCE(f.sender, '')",
            SortKey::Recipient => "t.recipient",
            SortKey::Status => STATUS_EXPR,
        }
    }
}

const STATUS_EXPR: &str = "effective_status(t.status, t.status_at, f.expired_at, f.deleted_at)";
const REASON_EXPR: &str = "CASE WHEN effective_status(t.status, t.status_at, f.expired_at, \
     f.deleted_at) = 'expired' THEN 'expired' ELSE t.failure_reason END";

/// A parsed search.
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Envelope sender (`<>`: the null sender).
    pub sender: Option<String>,
    /// Recipient (as delivered or before alias expansion).
    pub recipient: Option<String>,
    /// Sender or recipient.
    pub address: Option<String>,
    /// Sender's or recipient's domain.
    pub domain: Option<String>,
    /// Message-ID or queue id.
    pub id: Option<String>,
    /// Client address or SASL user name.
    pub client: Option<String>,
    /// The window's preset, when one was chosen.
    pub window: Option<String>,
    /// Arrival from (inclusive).
    pub from: DateTime<Utc>,
    /// Arrival to (exclusive).
    pub to: DateTime<Utc>,
    /// Statuses (any of).
    pub statuses: Vec<String>,
    /// Failure reasons (any of).
    pub reasons: Vec<String>,
    /// Order.
    pub sort: SortKey,
    /// Descending.
    pub desc: bool,
    /// Page size.
    pub limit: usize,
    /// Where the page starts (a cursor from the previous page).
    pub after: Option<Cursor>,
    /// Whether `from`/`to` were given explicitly.
    pub explicit_times: bool,
}

/// The keyset position after a row: its sort value and its key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    /// The sort key's name, so a cursor is not applied to another order.
    pub sort: String,
    /// The sort value (text; times as RFC 3339).
    pub value: String,
    /// The row's key.
    pub arrived_at: DateTime<Utc>,
    /// Host.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// Recipient.
    pub recipient: String,
    /// Original recipient (`''` when none).
    pub orig_recipient: String,
}

impl Cursor {
    /// The opaque form in URLs.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn bad(msg: String) -> WebError {
    WebError::BadRequest(msg)
}

/// Parameter `name` is wrong: `reason` says how.
fn invalid(name: &str, reason: String) -> WebError {
    WebError::InvalidParam {
        name: name.to_owned(),
        reason,
    }
}

/// The search's parameters, in the order the API documents them.
pub const PARAMETERS: [&str; 14] = [
    "sender",
    "recipient",
    "address",
    "domain",
    "id",
    "client",
    "window",
    "from",
    "to",
    "status",
    "reason",
    "sort",
    "limit",
    "after",
];

/// What parameter `name` accepts, as error messages say it.
pub fn accepted(name: &str) -> String {
    match name {
        "sender" => "an address (case-insensitive), or <> for the null sender".to_owned(),
        "recipient" | "address" => "an address (case-insensitive)".to_owned(),
        "domain" => "a domain such as example.com".to_owned(),
        "id" => "a Message-ID or a queue id".to_owned(),
        "client" => "a client IP address or a SASL user name".to_owned(),
        "window" => format!("one of {}", WINDOW_PRESETS.map(|(n, _)| n).join(", ")),
        "from" | "to" => "a time: RFC 3339 such as 2025-03-14T06:25:00Z, or 2025-03-14T06:25 \
                          or 2025-03-14 in UTC"
            .to_owned(),
        "status" => format!(
            "statuses, comma-separated or repeated, of {}",
            STATUSES.join(", ")
        ),
        "reason" => "failure reason names (docs/classification.md: lower-case letters and _), \
                     comma-separated or repeated"
            .to_owned(),
        "sort" => "one of time, sender, recipient, status, optionally preceded by - (descending)"
            .to_owned(),
        "limit" => format!("a whole number from 1 to {MAX_PAGE_SIZE}"),
        "after" => "the `next` cursor of the previous page".to_owned(),
        _ => format!(
            "nothing: the known parameters are {}",
            PARAMETERS.join(", ")
        ),
    }
}

/// How a query string's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// The search form of the pages: it sends every field, filled in or not, so an
    /// empty value means "not given", and spaces around a value are dropped.
    Form,
    /// The API: a parameter that is given must be valid as given. An empty value, a
    /// value with spaces around it (but for addresses and ids, which are trimmed), an
    /// empty item of a list, or a single-valued parameter given twice is a 400 naming
    /// the parameter and what it accepts, as the OpenAPI document says.
    Api,
}

/// Whether `v` has the shape of the times the API takes (`TIME_PATTERN` of
/// openapi.json): `YYYY-MM-DD`, optionally `[T ]HH:MM`, optionally `:SS` with a
/// fraction, optionally `Z` or `±HH:MM`. chrono alone would also take signed or
/// longer years and a lower-case `t`.
pub fn time_shape(v: &str) -> bool {
    fn digits(b: &[u8]) -> bool {
        !b.is_empty() && b.iter().all(u8::is_ascii_digit)
    }
    let b = v.as_bytes();
    let date = b.len() >= 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10]);
    if !date {
        return false;
    }
    let mut rest = &b[10..];
    if rest.is_empty() {
        return true;
    }
    if !(rest.len() >= 6
        && matches!(rest[0], b'T' | b' ')
        && digits(&rest[1..3])
        && rest[3] == b':'
        && digits(&rest[4..6]))
    {
        return false;
    }
    rest = &rest[6..];
    if rest.len() >= 3 && rest[0] == b':' && digits(&rest[1..3]) {
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return false;
            }
            rest = &rest[1 + n..];
        }
    }
    match rest {
        [] | [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && digits(&[*h1, *h2]) && digits(&[*m1, *m2])
        }
        _ => false,
    }
}

/// Parse a time: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD HH:MM` / `YYYY-MM-DD`
/// read as UTC.
pub fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, WebError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.to_utc());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(invalid(
        name,
        format!("{v:?} is not a time; give {}", accepted(name)),
    ))
}

/// The pairs of a query string; repeated keys are kept.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, WebError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| bad(format!("the query string cannot be read: {e}")))?;
    if pairs.len() > MAX_PARAMS {
        return Err(bad(format!("more than {MAX_PARAMS} parameters")));
    }
    if let Some((k, _)) = pairs.iter().find(|(k, _)| k.len() > MAX_PARAM_NAME_LEN) {
        return Err(bad(format!(
            "a parameter name longer than {MAX_PARAM_NAME_LEN} characters: {:?}…",
            k.chars().take(MAX_PARAM_NAME_LEN).collect::<String>()
        )));
    }
    if let Some((k, _)) = pairs.iter().find(|(_, v)| v.len() > MAX_PARAM_LEN) {
        return Err(invalid(
            k,
            format!("longer than {MAX_PARAM_LEN} characters"),
        ));
    }
    Ok(pairs)
}

fn address_value(name: &str, v: &str) -> Result<String, WebError> {
    let v = v.trim();
    let v = if v != "<>" {
        v.trim_start_matches('<').trim_end_matches('>').trim()
    } else {
        v
    };
    if v.is_empty() {
        return Err(empty(name));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(name, "control characters are not allowed".into()));
    }
    Ok(v.to_lowercase())
}

fn empty(name: &str) -> WebError {
    invalid(
        name,
        format!("empty; leave the parameter out, or give {}", accepted(name)),
    )
}

/// The items of a comma-separated list: in the API, none may be empty or padded.
fn list_items(name: &str, v: &str, strictness: Strictness) -> Result<Vec<String>, WebError> {
    let mut items = Vec::new();
    for item in v.split(',') {
        let trimmed = item.trim();
        if strictness == Strictness::Api && (trimmed.is_empty() || trimmed != item) {
            return Err(invalid(
                name,
                format!(
                    "{v:?} has an empty or space-padded item; give {}",
                    accepted(name)
                ),
            ));
        }
        if !trimmed.is_empty() {
            items.push(trimmed.to_owned());
        }
    }
    Ok(items)
}

impl SearchParams {
    /// Parse the pairs of a query string, read as `strictness` says, `now` being the
    /// default end of the window.
    pub fn parse(
        pairs: &[(String, String)],
        now: DateTime<Utc>,
        strictness: Strictness,
    ) -> Result<SearchParams, WebError> {
        let mut p = SearchParams {
            sender: None,
            recipient: None,
            address: None,
            domain: None,
            id: None,
            client: None,
            window: None,
            from: now - DEFAULT_WINDOW,
            to: now,
            statuses: Vec::new(),
            reasons: Vec::new(),
            sort: SortKey::Time,
            desc: true,
            limit: DEFAULT_PAGE_SIZE,
            after: None,
            explicit_times: false,
        };
        let (mut from, mut to, mut window) = (None, None, None);
        let mut given: Vec<&str> = Vec::new();
        for (k, raw) in pairs {
            let k = k.as_str();
            if !PARAMETERS.contains(&k) {
                return Err(bad(format!(
                    "unknown parameter {k:?} (known: {})",
                    PARAMETERS.join(", ")
                )));
            }
            let v = match strictness {
                Strictness::Form => raw.trim(),
                Strictness::Api => raw.as_str(),
            };
            if v.is_empty() {
                match strictness {
                    Strictness::Form => continue,
                    Strictness::Api => return Err(empty(k)),
                }
            }
            if strictness == Strictness::Api {
                if given.contains(&k) && !matches!(k, "status" | "reason") {
                    return Err(invalid(
                        k,
                        format!("given more than once; give it once, {}", accepted(k)),
                    ));
                }
                given.push(k);
            }
            match k {
                "sender" => p.sender = Some(address_value(k, v)?),
                "recipient" => p.recipient = Some(address_value(k, v)?),
                "address" => p.address = Some(address_value(k, v)?),
                "domain" => {
                    let d = address_value(k, v)?;
                    let d = d.trim_start_matches('@').to_owned();
                    if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                        return Err(invalid(
                            k,
                            format!("{v:?} is not a domain; give {}", accepted(k)),
                        ));
                    }
                    p.domain = Some(d);
                }
                "id" => {
                    let id = v
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .trim();
                    if id.is_empty() {
                        return Err(empty(k));
                    }
                    if id.chars().any(char::is_control) {
                        return Err(invalid(k, "control characters are not allowed".into()));
                    }
                    p.id = Some(id.to_owned());
                }
                "client" => {
                    let c = v.trim();
                    if c.is_empty() {
                        return Err(empty(k));
                    }
                    if c.chars().any(char::is_control) {
                        return Err(invalid(k, "control characters are not allowed".into()));
                    }
                    p.client = Some(c.to_owned());
                }
                "from" | "to" => {
                    if strictness == Strictness::Api && !time_shape(v) {
                        return Err(invalid(
                            k,
                            format!("{v:?} is not a time; give {}", accepted(k)),
                        ));
                    }
                    let t = Some(parse_time(k, v)?);
                    if k == "from" {
                        from = t;
                    } else {
                        to = t;
                    }
                }
                "window" => {
                    let Some((name, d)) = WINDOW_PRESETS.iter().find(|(n, _)| *n == v) else {
                        return Err(invalid(k, format!("{v:?} is not {}", accepted(k))));
                    };
                    window = Some((*name, *d));
                }
                "status" => {
                    for s in list_items(k, v, strictness)? {
                        if !STATUSES.contains(&s.as_str()) {
                            return Err(invalid(
                                k,
                                format!("{s:?} is not a status; give {}", accepted(k)),
                            ));
                        }
                        if !p.statuses.contains(&s) {
                            p.statuses.push(s);
                        }
                    }
                }
                "reason" => {
                    for r in list_items(k, v, strictness)? {
                        if r.len() > 32 || !r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                            return Err(invalid(
                                k,
                                format!("{r:?} is not a reason name; give {}", accepted(k)),
                            ));
                        }
                        if !p.reasons.contains(&r) {
                            p.reasons.push(r);
                        }
                    }
                }
                "sort" => {
                    let (desc, name) = match v.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, v),
                    };
                    p.sort = match name {
                        "time" => SortKey::Time,
                        "sender" => SortKey::Sender,
                        "recipient" => SortKey::Recipient,
                        "status" => SortKey::Status,
                        _ => {
                            return Err(invalid(k, format!("{v:?} is not {}", accepted(k))));
                        }
                    };
                    p.desc = desc;
                }
                "limit" => {
                    let n = if v.bytes().all(|b| b.is_ascii_digit()) {
                        v.parse::<usize>().ok()
                    } else {
                        None
                    };
                    p.limit = match n {
                        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                        _ => {
                            return Err(invalid(k, format!("{v:?} is not {}", accepted(k))));
                        }
                    }
                }
                // "after", the only one left
                _ => {
                    p.after = Some(Cursor::decode(v).ok_or_else(|| {
                        invalid(
                            k,
                            "not a cursor of this search (take `next` of the previous page)".into(),
                        )
                    })?)
                }
            }
        }
        match (from, to, window) {
            (_, _, Some((name, d))) if from.is_none() => {
                p.to = to.unwrap_or(now);
                p.from = p.to - d;
                p.window = Some(name.to_owned());
                p.explicit_times = to.is_some();
            }
            (f, t, _) => {
                p.explicit_times = f.is_some() || t.is_some();
                p.to = t.unwrap_or(now);
                p.from = f.unwrap_or(p.to - DEFAULT_WINDOW);
            }
        }
        if p.from >= p.to {
            return Err(invalid("from", "must be before to".into()));
        }
        if p.to - p.from > MAX_SEARCH_SPAN {
            return Err(invalid(
                if from.is_some() { "from" } else { "to" },
                format!(
                    "the time window spans more than {} days: narrow from/to",
                    MAX_SEARCH_SPAN.num_days()
                ),
            ));
        }
        if let Some(c) = &p.after
            && c.sort != p.sort.name()
        {
            return Err(invalid(
                "after",
                "the cursor belongs to another sort order".into(),
            ));
        }
        Ok(p)
    }

    /// The query string of this search (for links), without the cursor; `extra`
    /// pairs are appended.
    pub fn to_query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("sender", &self.sender),
            ("recipient", &self.recipient),
            ("address", &self.address),
            ("domain", &self.domain),
            ("id", &self.id),
            ("client", &self.client),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        match &self.window {
            Some(w) if !self.explicit_times => pairs.push(("window", w.clone())),
            _ => {
                pairs.push((
                    "from",
                    self.from
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ));
                pairs.push((
                    "to",
                    self.to.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ));
            }
        }
        if !self.statuses.is_empty() {
            pairs.push(("status", self.statuses.join(",")));
        }
        if !self.reasons.is_empty() {
            pairs.push(("reason", self.reasons.join(",")));
        }
        let sort = format!("{}{}", if self.desc { "-" } else { "" }, self.sort.name());
        if sort != "-time" {
            pairs.push(("sort", sort));
        }
        if self.limit != DEFAULT_PAGE_SIZE {
            pairs.push(("limit", self.limit.to_string()));
        }
        for (k, v) in extra {
            pairs.push((k, (*v).to_owned()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    /// The search as JSON, for the audit log.
    pub fn audit_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "sender": self.sender, "recipient": self.recipient, "address": self.address,
            "domain": self.domain, "id": self.id, "client": self.client,
            "from": self.from, "to": self.to, "status": self.statuses, "reason": self.reasons,
        })
    }
}

/// One recipient row of a search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRow {
    /// Host that logged the message.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// When the message arrived.
    pub arrived_at: DateTime<Utc>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Envelope sender (`''`: null sender).
    pub sender: Option<String>,
    /// Recipient.
    pub recipient: String,
    /// Original recipient, when alias expansion changed it.
    pub orig_recipient: Option<String>,
    /// Status.
    pub status: String,
    /// Failure reason.
    pub reason: Option<String>,
    /// Permanent failure.
    pub hard: Option<bool>,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// Relay.
    pub relay: Option<String>,
    /// The latest reply or reason text.
    pub response: Option<String>,
    /// Delivery attempts.
    pub attempts: i32,
    /// Latest attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Client address the message came from.
    pub client_addr: Option<String>,
    /// SASL user that submitted it.
    pub sasl_username: Option<String>,
    /// The message's page in the API (`/api/v1/messages/…`).
    pub message: String,
}

/// A page of results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The rows.
    pub rows: Vec<SearchRow>,
    /// The cursor of the next page, `None` on the last.
    pub next: Option<String>,
    /// The window searched.
    pub from: DateTime<Utc>,
    /// The window searched.
    pub to: DateTime<Utc>,
}

/// The path segment of a message: `host/queue_id/arrived_at` (RFC 3339, microseconds).
pub fn message_path(host: &str, queue_id: &str, arrived_at: DateTime<Utc>) -> String {
    format!(
        "{}/{}/{}",
        crate::html::url_segment(host),
        crate::html::url_segment(queue_id),
        arrived_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// Run the search `auth` asked for and write it to the audit log, on the request's own
/// connection: what the search page and `GET /api/v1/search` both do.
pub async fn search_audited(
    client: &deadpool_postgres::Client,
    auth: &crate::auth::Auth,
    p: &SearchParams,
) -> Result<SearchPage, WebError> {
    let page = search(client, &auth.scope, p, p.limit).await?;
    crate::auth::audit(
        client,
        &auth.name,
        &auth.client.addr,
        "search",
        p.audit_detail(),
        Some(page.rows.len() as i64),
    )
    .await?;
    Ok(page)
}

/// Run a search: at most `limit` rows (one more is read to know whether a next page
/// exists).
///
/// A search by recipient matches a row by its recipient or by its original recipient
/// (before alias expansion): an OR that no index serves in order, so PostgreSQL walked
/// the month backwards through the primary key and filtered (3 000 rows read for a page
/// of a busy address, every row of the month for one that has no mail). It is run as
/// two arms instead, one per index (`delivery_to_recipient`,
/// `delivery_to_orig_recipient`), each reading its first page in key order, merged:
/// the top rows of the two arms' top rows are the top rows of the OR. Both indexes
/// hold the page's whole order (V18), so this search runs from a prepared statement;
/// the others are planned for their values ([`Sql::query`]).
pub async fn search(
    client: &deadpool_postgres::Client,
    scope: &Scope,
    p: &SearchParams,
    limit: usize,
) -> Result<SearchPage, WebError> {
    // Which side drives the plan. A search by a message's own fields (sender, id,
    // client) starts from delivery_from's indexes and joins. Any other search walks
    // delivery_to (its key in time order, or the recipient indexes) and fetches each
    // row's message by primary key: the plain join is estimated at one row per
    // message, so PostgreSQL would otherwise join and sort every match of a busy
    // address (2.2 s for 97 k rows at 5 M recipients) before it could stop at a page.
    let by_message = p.sender.is_some() || p.id.is_some() || p.client.is_some();
    let join = if by_message {
        "JOIN delivery_from f USING (host, queue_id, arrived_at)"
    } else {
        "CROSS JOIN LATERAL (SELECT m.host, m.queue_id, m.arrived_at, m.message_id, \
         m.sender, m.client_addr, m.sasl_username, m.deleted_at, m.expired_at \
         FROM delivery_from m WHERE m.host = t.host AND m.queue_id = t.queue_id \
         AND m.arrived_at = t.arrived_at LIMIT 1) f"
    };
    let mut sql = Sql::new("");
    let select = format!(
        "SELECT f.host, f.queue_id, f.arrived_at, f.message_id, f.sender, t.recipient, \
         NULLIF(t.orig_recipient, ''), {STATUS_EXPR}, {REASON_EXPR}, \
         CASE WHEN {STATUS_EXPR} = 'expired' THEN true ELSE t.hard END, \
         t.dsn, t.relay, t.response, t.attempts, t.last_attempt_at, f.client_addr, \
         f.sasl_username, t.orig_recipient, ({sort}) :: text, {sort} AS sort_value, \
         t.arrived_at AS key_arrived_at, t.host AS key_host, t.queue_id AS key_queue_id, \
         t.recipient AS key_recipient, t.orig_recipient AS key_orig_recipient \
         FROM delivery_to t {join} WHERE ",
        sort = p.sort.expr()
    );
    let from = sql.bind(p.from);
    let to = sql.bind(p.to);
    let mut conds = vec![format!(
        "t.arrived_at >= {from} AND t.arrived_at < {to} AND f.arrived_at >= {from} \
         AND f.arrived_at < {to}"
    )];
    if let Some(s) = &p.sender {
        if s == "<>" {
            conds.push("f.sender = ''".into());
        } else {
            let v = sql.bind(s.clone());
            conds.push(format!("lower(f.sender) = {v}"));
        }
    }
    // The recipient's two arms (see above); the other conditions are shared.
    let recipient_arms = p.recipient.as_ref().map(|r| {
        let v = sql.bind(r.clone());
        [
            format!("lower(t.recipient) = {v}"),
            format!(
                "lower(t.orig_recipient) = {v} AND t.orig_recipient <> '' \
                 AND lower(t.recipient) <> {v}"
            ),
        ]
    });
    if let Some(a) = &p.address {
        let v = sql.bind(a.clone());
        // An OR across the two tables cannot use their indexes: the rows are found
        // through each index and joined back by key.
        conds.push(format!(
            "(t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient) IN ( \
               SELECT arrived_at, host, queue_id, recipient, orig_recipient FROM delivery_to \
               WHERE (lower(recipient) = {v} OR (lower(orig_recipient) = {v} \
                      AND orig_recipient <> '')) \
                 AND arrived_at >= {from} AND arrived_at < {to} \
               UNION ALL \
               SELECT d.arrived_at, d.host, d.queue_id, d.recipient, d.orig_recipient \
               FROM delivery_from s JOIN delivery_to d USING (host, queue_id, arrived_at) \
               WHERE lower(s.sender) = {v} AND s.arrived_at >= {from} AND s.arrived_at < {to})"
        ));
    }
    if let Some(d) = &p.domain {
        let v = sql.bind(d.clone());
        conds.push(format!(
            "(address_domain(t.recipient) = {v} OR address_domain(f.sender) = {v})"
        ));
    }
    if let Some(id) = &p.id {
        let v = sql.bind(id.clone());
        conds.push(format!("(f.message_id = {v} OR f.queue_id = {v})"));
    }
    if let Some(c) = &p.client {
        let v = sql.bind(c.clone());
        conds.push(format!(
            "(f.client_addr = {v} OR lower(f.sasl_username) = lower({v}))"
        ));
    }
    if !p.statuses.is_empty() {
        let v = sql.bind(p.statuses.clone());
        conds.push(format!("{STATUS_EXPR} = ANY({v}::text[])"));
    }
    if !p.reasons.is_empty() {
        let v = sql.bind(p.reasons.clone());
        conds.push(format!("({REASON_EXPR}) = ANY({v}::text[])"));
    }
    conds.push(scope.row_predicate(&mut sql, "f.sender", "t.recipient", "t.orig_recipient"));
    let key = format!(
        "{}, t.arrived_at, t.host, t.queue_id, t.recipient, t.orig_recipient",
        p.sort.expr()
    );
    if let Some(c) = &p.after {
        let value = if p.sort == SortKey::Time {
            let t = DateTime::parse_from_rfc3339(&c.value)
                .map_err(|_| invalid("after", "the cursor is damaged".into()))?
                .to_utc();
            sql.bind(t)
        } else {
            let v = sql.bind(c.value.clone());
            format!("{v}::text")
        };
        let rest = [
            sql.bind(c.arrived_at),
            sql.bind(c.host.clone()),
            sql.bind(c.queue_id.clone()),
            sql.bind(c.recipient.clone()),
            sql.bind(c.orig_recipient.clone()),
        ];
        conds.push(format!(
            "({key}) {} ({value}, {})",
            if p.desc { "<" } else { ">" },
            rest.join(", ")
        ));
        if p.sort == SortKey::Time {
            // The same bound on its own, which an index on (…, arrived_at) can start
            // from (a row comparison over expressions it cannot).
            conds.push(format!(
                "t.arrived_at {} {value}",
                if p.desc { "<=" } else { ">=" }
            ));
        }
    }
    let dir = if p.desc { "DESC" } else { "ASC" };
    let order = |columns: [&str; 6]| {
        columns
            .iter()
            .map(|c| format!("{c} {dir}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let arm_order = order([
        p.sort.expr(),
        "t.arrived_at",
        "t.host",
        "t.queue_id",
        "t.recipient",
        "t.orig_recipient",
    ]);
    let lim = sql.bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
    let conds = conds.join(" AND ");
    match &recipient_arms {
        None => sql.push(&format!("{select}{conds} ORDER BY {arm_order} LIMIT {lim}")),
        Some([by_recipient, by_orig]) => sql.push(&format!(
            "SELECT * FROM ( \
               ({select}{by_recipient} AND {conds} ORDER BY {arm_order} LIMIT {lim}) \
               UNION ALL \
               ({select}{by_orig} AND {conds} ORDER BY {arm_order} LIMIT {lim}) \
             ) u ORDER BY {} LIMIT {lim}",
            order([
                "sort_value",
                "key_arrived_at",
                "key_host",
                "key_queue_id",
                "key_recipient",
                "key_orig_recipient",
            ])
        )),
    }
    // A search by recipient in time order reads its rows straight from the recipient
    // indexes, whose order is the page's (migration V18): one generic plan serves every
    // address, so it is prepared once per connection instead of planned per request
    // (about 1 ms over the monthly partitions, as long as it runs). Other searches
    // depend on their values (how many rows an address or a domain has, which side
    // drives the join) and are planned for them.
    let one_plan_fits = recipient_arms.is_some()
        && p.sort == SortKey::Time
        && !by_message
        && p.address.is_none()
        && p.domain.is_none();
    let rows = if one_plan_fits {
        sql.query_prepared(client).await
    } else {
        sql.query(client).await
    }
    .map_err(db("searching"))?;
    let more = rows.len() > limit;
    let mut out = Vec::with_capacity(rows.len().min(limit));
    let mut next = None;
    for (i, r) in rows.iter().enumerate() {
        if i == limit {
            break;
        }
        let row = SearchRow {
            host: r.get(0),
            queue_id: r.get(1),
            arrived_at: r.get(2),
            message_id: r.get(3),
            sender: r.get(4),
            recipient: r.get(5),
            orig_recipient: r.get(6),
            status: r.get(7),
            reason: r.get(8),
            hard: r.get(9),
            dsn: r.get(10),
            relay: r.get(11),
            response: r.get(12),
            attempts: r.get(13),
            last_attempt_at: r.get(14),
            client_addr: r.get(15),
            sasl_username: r.get(16),
            message: format!(
                "/api/v1/messages/{}",
                message_path(&r.get::<_, String>(0), &r.get::<_, String>(1), r.get(2))
            ),
        };
        if more && i + 1 == limit {
            let value: Option<String> = r.get(18);
            let value = if p.sort == SortKey::Time {
                row.arrived_at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            } else {
                value.unwrap_or_default()
            };
            next = Some(
                Cursor {
                    sort: p.sort.name().to_owned(),
                    value,
                    arrived_at: row.arrived_at,
                    host: row.host.clone(),
                    queue_id: row.queue_id.clone(),
                    recipient: row.recipient.clone(),
                    orig_recipient: r.get(17),
                }
                .encode(),
            );
        }
        out.push(row);
    }
    Ok(SearchPage {
        rows: out,
        next,
        from: p.from,
        to: p.to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(Some(q)).unwrap()
    }

    #[test]
    fn defaults_and_presets() {
        let now = Utc::now();
        let p = SearchParams::parse(&[], now, Strictness::Form).unwrap();
        assert_eq!(p.to, now);
        assert_eq!(p.from, now - DEFAULT_WINDOW);
        assert_eq!(
            (p.sort, p.desc, p.limit),
            (SortKey::Time, true, DEFAULT_PAGE_SIZE)
        );
        let p = SearchParams::parse(
            &pairs("window=7d&status=sent,bounced&status=sent&recipient=%3CBob@X.org%3E&sender="),
            now,
            Strictness::Form,
        )
        .unwrap();
        assert_eq!(p.from, now - TimeDelta::days(7));
        assert_eq!(p.statuses, ["sent", "bounced"]);
        assert_eq!(p.recipient.as_deref(), Some("bob@x.org"));
        assert_eq!(p.sender, None);
    }

    #[test]
    fn bad_parameters_say_which() {
        let now = Utc::now();
        for (q, word) in [
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("limit=x", "limit"),
            ("status=lost", "status"),
            ("window=2y", "window"),
            ("from=yesterday", "from"),
            ("from=2025-01-01&to=2025-03-01", "31 days"),
            ("from=2025-01-02&to=2025-01-01", "before"),
            ("sort=size", "sort"),
            ("after=!!!", "after"),
            ("bogus=1", "bogus"),
            ("reason=DROP%20TABLE", "reason"),
            ("domain=a@b", "domain"),
        ] {
            let err = SearchParams::parse(&pairs(q), now, Strictness::Form).unwrap_err();
            assert!(
                matches!(err, WebError::BadRequest(_) | WebError::InvalidParam { .. }),
                "{q}"
            );
            assert!(err.to_string().contains(word), "{q}: {err}");
        }
    }

    #[test]
    fn cursor_round_trip_and_query() {
        let now = Utc::now();
        let c = Cursor {
            sort: "sender".into(),
            value: "a@b".into(),
            arrived_at: now,
            host: "mx1".into(),
            queue_id: "ABC".into(),
            recipient: "r@x".into(),
            orig_recipient: String::new(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()));
        let q = format!("sort=sender&after={}", c.encode());
        let p = SearchParams::parse(&pairs(&q), now, Strictness::Form).unwrap();
        assert_eq!(p.after, Some(c));
        assert!(
            SearchParams::parse(
                &pairs(&q.replace("sort=sender", "sort=-time")),
                now,
                Strictness::Form
            )
            .is_err()
        );
        let back = SearchParams::parse(&pairs(&p.to_query(&[])), now, Strictness::Api).unwrap();
        assert_eq!(back.sort, SortKey::Sender);
        assert!(!back.desc);
    }

    #[test]
    fn the_api_refuses_what_forms_may_send() {
        let now = Utc::now();
        // A form's empty and padded fields are absent or trimmed...
        let form = "window=&sort=&limit=&status=&reason=&from=&to=&after=&sender=&id=+&client=";
        let p = SearchParams::parse(&pairs(form), now, Strictness::Form).unwrap();
        assert_eq!(
            (p.sort, p.limit, p.window),
            (SortKey::Time, DEFAULT_PAGE_SIZE, None)
        );
        assert!(
            SearchParams::parse(
                &pairs("window=+7d+&status=sent,+bounced"),
                now,
                Strictness::Form
            )
            .is_ok()
        );
        // ...and in the API a 400 naming the parameter and what it accepts.
        for (q, name, says) in [
            ("window=", "window", "1h, 6h, 24h, 7d, 30d"),
            ("sort=", "sort", "time, sender"),
            ("limit=", "limit", "1 to 500"),
            ("status=", "status", "sent, deferred"),
            ("reason=", "reason", "lower-case"),
            ("from=", "from", "RFC 3339"),
            ("to=", "to", "RFC 3339"),
            ("after=", "after", "cursor"),
            ("sender=", "sender", "<>"),
            ("recipient=%20", "recipient", "address"),
            ("domain=@", "domain", "domain"),
            ("id=%3C%3E", "id", "Message-ID"),
            ("client=+", "client", "SASL"),
            ("window=+7d", "window", "one of"),
            ("status=sent,", "status", "empty"),
            ("status=sent,+bounced", "status", "space"),
            ("limit=+5", "limit", "whole number"),
            ("window=1h&window=7d", "window", "more than once"),
            ("sort=time&sort=-time", "sort", "more than once"),
            ("from=%2B02025-01-01", "from", "not a time"),
            ("from=2025-01-01t06:00:00Z", "from", "not a time"),
            ("from=2025-03-14T06:25Z", "from", "not a time"),
        ] {
            match SearchParams::parse(&pairs(q), now, Strictness::Api) {
                Err(WebError::InvalidParam { name: n, reason }) => {
                    assert_eq!(n, name, "{q}");
                    assert!(reason.contains(says), "{q}: {reason}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        // Lists may repeat; valid values pass.
        let p = SearchParams::parse(
            &pairs("status=sent&status=bounced,deferred&from=2025-03-14T06:25:00.5%2B01:00&to=2025-03-15"),
            now,
            Strictness::Api,
        )
        .unwrap();
        assert_eq!(p.statuses, ["sent", "bounced", "deferred"]);
    }

    #[test]
    fn time_shapes() {
        for ok in [
            "2025-03-14",
            "2025-03-14T06:25",
            "2025-03-14 06:25:01",
            "2025-03-14T06:25:01.123Z",
            "2025-03-14T06:25:01-05:00",
        ] {
            assert!(time_shape(ok), "{ok}");
        }
        for bad in [
            "",
            "2025-3-14",
            "+2025-03-14",
            "20251-03-14",
            "2025-03-14T",
            "2025-03-14t06:25",
            "2025-03-14T06:25:01.",
            "2025-03-14T06:25:01+0500",
            "2025-03-14T06:25:01z",
            "2025-03-14T06:25:01Z ",
        ] {
            assert!(!time_shape(bad), "{bad}");
        }
    }
}
