//! `pftrack status <address | message-id | queue-id>`: what happened to a message.
//!
//! The argument is classified (see [`plan`]) and looked up through the store's indexed
//! queries; each matching message is shown with its arrival, sender, client, every
//! recipient's status and attempts (and for a failure its reason, hard or soft), and
//! its links to notifications and continuations.
//! A table on a terminal (coloured only there), a JSON array with `--json`. Exit code
//! 1 when nothing matched.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use pftrack_store::{
    Found, Hop, Lookup, MessageLink, MessageRecord, RecipientRecord, Store, Window,
};
use serde::Serialize;

use crate::config::Config;

/// Messages shown when `--limit` is not given (the newest ones).
pub const DEFAULT_LIMIT: usize = 50;

/// Recipients listed per message in the table; JSON always has all of them.
pub const MAX_TABLE_RECIPIENTS: usize = 25;

/// Longest queue id Postfix writes (long ids are 12 or more characters; leave room).
const MAX_QUEUE_ID_LEN: usize = 24;

/// Shortest queue id (short hexadecimal ids are at least 6 characters in practice).
const MIN_QUEUE_ID_LEN: usize = 5;

/// Arguments of `pftrack status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// An address (recipient, original recipient or sender), a Message-ID (`<…>`) or
    /// a queue id.
    query: String,
    /// Only messages that arrived since: a duration back from now (`2d`, `12h`), a date
    /// (`2025-03-14`, local midnight), `today`, `yesterday`, or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only messages that arrived before this (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Print a JSON array of message objects.
    #[arg(long)]
    json: bool,
    /// Show at most this many messages (the newest).
    #[arg(long, default_value_t = DEFAULT_LIMIT)]
    limit: usize,
    /// What the argument is, instead of guessing.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// Print the query plans (EXPLAIN ANALYZE) instead of the messages.
    #[arg(long)]
    explain: bool,
    /// Only messages with this tag, `NAME=VALUE` (a header named in `tags.headers`,
    /// e.g. `client-id=acme`).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_tag)]
    tag: Option<(String, String)>,
    /// Ask a running `pftrack serve` at this URL (`http://127.0.0.1:8025`) instead of
    /// the database: its sessions have planned the lookup before, so it answers
    /// faster, and a user with a scoped token sees only what the token's user may.
    /// The token is read from the environment variable PFTRACK_TOKEN (make one with
    /// `pftrack user token add USER NAME`); it is never taken on the command line.
    #[arg(long, value_name = "URL", env = "PFTRACK_SERVER")]
    pub server: Option<String>,
}

/// `--tag NAME=VALUE`; names are stored in lower case.
fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_ascii_lowercase(), value.to_owned()))
        }
        _ => Err(format!(
            "{s:?} is not NAME=VALUE (for example client-id=acme)"
        )),
    }
}

/// What a `status` argument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An e-mail address.
    Address,
    /// A Message-ID header value.
    MessageId,
    /// A Postfix queue id.
    QueueId,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::MessageId => "Message-ID",
            Kind::QueueId => "queue id",
        }
    }
}

/// The lookups to try for `query`, in order; the first that finds something wins.
///
/// * `<…>`: a Message-ID, then (pasted from a log line `to=<…>`) an address;
/// * contains `@`: an address, then a Message-ID without brackets;
/// * letters and digits only, 5 to 24 of them: a queue id (also upper-cased, as short
///   ids are written), then a Message-ID;
/// * anything else: a Message-ID.
pub fn plan(query: &str, kind: Option<Kind>) -> anyhow::Result<Vec<(Kind, Lookup)>> {
    let q = query.trim();
    if q.is_empty() {
        bail!("nothing to look for: give an address, a Message-ID or a queue id");
    }
    let bracketed = q
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .map(str::trim);
    let bare = bracketed.unwrap_or(q);
    let address = || (Kind::Address, Lookup::Address(bare.to_owned()));
    let message_id = || (Kind::MessageId, Lookup::MessageId(bare.to_owned()));
    let queue_id = || {
        let mut ids = vec![bare.to_owned()];
        let upper = bare.to_ascii_uppercase();
        if upper != bare && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            ids.push(upper);
        }
        (Kind::QueueId, Lookup::QueueId(ids))
    };
    if bare.is_empty() {
        bail!("nothing to look for between < and >");
    }
    Ok(match kind {
        Some(Kind::Address) => vec![address()],
        Some(Kind::MessageId) => vec![message_id()],
        Some(Kind::QueueId) => vec![queue_id()],
        None if bracketed.is_some() && bare.contains('@') => vec![message_id(), address()],
        None if bracketed.is_some() => vec![message_id()],
        None if bare.contains('@') => vec![address(), message_id()],
        None if looks_like_queue_id(bare) => vec![queue_id(), message_id()],
        None => vec![message_id()],
    })
}

fn looks_like_queue_id(s: &str) -> bool {
    (MIN_QUEUE_ID_LEN..=MAX_QUEUE_ID_LEN).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Parse a `--since`/`--until` value relative to `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let t = text.trim();
    let local_midnight = |d: NaiveDate| -> anyhow::Result<DateTime<Utc>> {
        local_to_utc(d.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    match t {
        "now" => return Ok(now),
        "today" => return local_midnight(now.with_timezone(&Local).date_naive()),
        "yesterday" => {
            let today = now.with_timezone(&Local).date_naive();
            return local_midnight(today.pred_opt().unwrap_or(today));
        }
        _ => {}
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && t.ends_with(['s', 'm', 'h', 'd', 'w']) {
        let d = crate::duration::parse(t)?;
        return now
            .checked_sub_signed(d)
            .context("the duration reaches too far back");
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return local_to_utc(naive);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local_midnight(date);
    }
    bail!(
        "cannot read {t:?} as a time: use a duration (2d, 12h), a date (2025-03-14), \
         today, yesterday, or an RFC 3339 time"
    )
}

fn local_to_utc(naive: NaiveDateTime) -> anyhow::Result<DateTime<Utc>> {
    // In a DST gap or overlap, take the earliest valid reading.
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{naive} does not exist in the local time zone"))
}

/// Where the lookups go.
enum Source {
    /// Two new sessions of this process (`Store::find_messages`).
    Database(Store),
    /// A running `pftrack serve`'s `GET /api/v1/lookup`.
    Server(crate::status_client::Client),
}

/// Run `pftrack status`: look `args.query` up in the database at `url`, or through
/// `--server` (then `url` may be `None`).
pub async fn run(
    args: &StatusArgs,
    config: &Config,
    url: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let window = Window {
        since: args
            .since
            .as_deref()
            .map(|s| parse_time(s, now))
            .transpose()
            .context("--since")?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time(s, now))
            .transpose()
            .context("--until")?,
        tag: args.tag.clone(),
    };
    if let (Some(s), Some(u)) = (window.since, window.until)
        && s >= u
    {
        bail!("--since must be before --until");
    }
    let limit = args.limit.max(1);
    let lookups = plan(&args.query, args.kind)?;
    let source = match (&args.server, url) {
        (Some(server), _) => {
            if args.explain {
                bail!("--explain shows the database's plans: run it without --server");
            }
            Source::Server(crate::status_client::Client::new(server, limit)?)
        }
        (None, Some(url)) => Source::Database(
            Store::connect_for_lookups(url, config.database.ca_file.as_deref()).await?,
        ),
        (None, None) => bail!(
            "no database to ask: give --database-url (or PFTRACK_DATABASE_URL, or \
             `database.url` in the configuration), or --server for a running `pftrack serve`"
        ),
    };

    // Buffered: the JSON writer makes thousands of small writes, and a locked stdout
    // is only line-buffered (one system call per line).
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if let (true, Source::Database(store)) = (args.explain, &source) {
        for (kind, lookup) in &lookups {
            let plans = store
                .explain_find(lookup, &window, limit, true)
                .await
                .map_err(hint_migrate)?;
            writeln!(stdout, "== as {}\n{plans}", kind.describe())?;
        }
        stdout.flush()?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut matched: Option<(Kind, Lookup, Found)> = None;
    for (kind, lookup) in lookups {
        let found = match &source {
            Source::Database(store) => store
                .find_messages(&lookup, &window, limit)
                .await
                .map_err(hint_migrate)?,
            Source::Server(client) => client.lookup(&lookup, &window, limit).await?,
        };
        if !found.messages.is_empty() {
            matched = Some((kind, lookup, found));
            break;
        }
    }
    let Some((kind, lookup, found)) = matched else {
        if args.json {
            writeln!(stdout, "[]")?;
            stdout.flush()?;
        }
        eprintln!(
            "pftrack: no message matches {:?}{}",
            args.query.trim(),
            describe_window(&window)
        );
        return Ok(ExitCode::from(1));
    };
    if found.truncated {
        eprintln!(
            "pftrack: showing the newest {} matching messages; narrow with --since/--until or raise --limit",
            found.messages.len()
        );
    }
    let address = match &lookup {
        Lookup::Address(a) => Some(a.to_ascii_lowercase()),
        _ => None,
    };
    if args.json {
        let out: Vec<JsonMessage<'_>> = found
            .messages
            .iter()
            .map(|m| JsonMessage::new(m, kind, address.as_deref()))
            .collect();
        serde_json::to_writer_pretty(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        let style = Style::detect();
        let text = render_table(&found.messages, address.as_deref(), style);
        stdout.write_all(text.as_bytes())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn describe_window(w: &Window) -> String {
    match (w.since, w.until) {
        (None, None) => String::new(),
        (Some(s), None) => format!(" since {}", local(s)),
        (None, Some(u)) => format!(" before {}", local(u)),
        (Some(s), Some(u)) => format!(" between {} and {}", local(s), local(u)),
    }
}

/// Add a hint when the views of migration V2 are missing.
fn hint_migrate(e: pftrack_store::StoreError) -> anyhow::Error {
    let err = anyhow::Error::new(e);
    // The driver's error, further down the chain, names the missing relation.
    if format!("{err:#}").contains("does not exist") {
        err.context("the database lacks pftrack's views: run `pftrack migrate` first")
    } else {
        err
    }
}

/// Which of the message's fields the looked-up address is.
fn matched_fields(m: &MessageRecord, address: &str) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if m.recipients
        .iter()
        .any(|r| r.recipient.eq_ignore_ascii_case(address))
    {
        fields.push("recipient");
    }
    if m.recipients.iter().any(|r| {
        r.orig_recipient
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(address))
    }) {
        fields.push("orig_recipient");
    }
    if m.sender
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(address))
    {
        fields.push("sender");
    }
    fields
}

fn recipient_matches(r: &RecipientRecord, address: Option<&str>) -> bool {
    address.is_some_and(|a| {
        r.recipient.eq_ignore_ascii_case(a)
            || r.orig_recipient
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(a))
    })
}

// ---- JSON -------------------------------------------------------------------------

#[derive(Serialize)]
struct JsonLink<'a> {
    queue_id: &'a str,
    arrived_at: DateTime<Utc>,
    kind: Option<&'a str>,
}

impl<'a> JsonLink<'a> {
    fn new(l: &'a MessageLink) -> Self {
        JsonLink {
            queue_id: &l.queue_id,
            arrived_at: l.arrived_at,
            kind: l.kind.as_deref(),
        }
    }
}

/// Where a recipient went next: the same host's re-injection or forward, or another
/// host's message it was relayed to (`queued as`).
#[derive(Serialize)]
struct JsonContinuation<'a> {
    host: &'a str,
    queue_id: &'a str,
    arrived_at: DateTime<Utc>,
    kind: Option<&'a str>,
}

impl<'a> JsonContinuation<'a> {
    fn new(host: &'a str, r: &'a RecipientRecord) -> Option<Self> {
        match (r.path.first(), &r.continued_as) {
            (Some(h), _) => Some(JsonContinuation {
                host: &h.host,
                queue_id: &h.queue_id,
                arrived_at: h.arrived_at,
                kind: Some(&h.link),
            }),
            (None, Some(c)) => Some(JsonContinuation {
                host,
                queue_id: &c.queue_id,
                arrived_at: c.arrived_at,
                kind: c.kind.as_deref(),
            }),
            (None, None) => None,
        }
    }
}

/// One hop of a recipient's path after the message looked up.
#[derive(Serialize)]
struct JsonHop<'a> {
    host: &'a str,
    queue_id: &'a str,
    arrived_at: DateTime<Utc>,
    link: &'a str,
    recipient: &'a str,
    status: &'a str,
    status_at: Option<DateTime<Utc>>,
    dsn: Option<&'a str>,
    relay: Option<&'a str>,
    response: Option<&'a str>,
}

impl<'a> JsonHop<'a> {
    fn new(h: &'a Hop) -> Self {
        JsonHop {
            host: &h.host,
            queue_id: &h.queue_id,
            arrived_at: h.arrived_at,
            link: &h.link,
            recipient: &h.recipient,
            status: &h.status,
            status_at: h.status_at,
            dsn: h.dsn.as_deref(),
            relay: h.relay.as_deref(),
            response: h.response.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct JsonCounts {
    recipients: i64,
    sent: i64,
    deferred: i64,
    bounced: i64,
    expired: i64,
    rejected: i64,
    discarded: i64,
    deleted: i64,
}

#[derive(Serialize)]
struct JsonRecipient<'a> {
    recipient: &'a str,
    orig_recipient: Option<&'a str>,
    status: &'a str,
    status_at: DateTime<Utc>,
    dsn: Option<&'a str>,
    relay: Option<&'a str>,
    response: Option<&'a str>,
    attempts: i32,
    delay: Option<f32>,
    first_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    queued_as: Option<&'a str>,
    continued_as: Option<JsonContinuation<'a>>,
    failure_reason: Option<&'a str>,
    hard: Option<bool>,
    failure_rule: Option<&'a str>,
    /// The fate at the end of the path (the recipient itself when it has none), as the
    /// final_* columns of delivery_status.
    final_status: &'a str,
    final_host: &'a str,
    final_queue_id: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    path: Vec<JsonHop<'a>>,
}

#[derive(Serialize)]
struct JsonMessage<'a> {
    host: &'a str,
    queue_id: &'a str,
    arrived_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    outcome: &'a str,
    in_flight: bool,
    matched_by: Kind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matched_fields: Vec<&'static str>,
    sender: Option<&'a str>,
    message_id: Option<&'a str>,
    origin: Option<&'a str>,
    client_name: Option<&'a str>,
    client_addr: Option<&'a str>,
    sasl_method: Option<&'a str>,
    sasl_username: Option<&'a str>,
    pickup_uid: Option<i64>,
    size: Option<i64>,
    nrcpt: Option<i32>,
    counts: JsonCounts,
    removed_at: Option<DateTime<Utc>>,
    expired_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    rejected_at: Option<DateTime<Utc>>,
    held_at: Option<DateTime<Utc>>,
    released_at: Option<DateTime<Utc>>,
    parent: Option<JsonLink<'a>>,
    children: Vec<JsonLink<'a>>,
    recipients: Vec<JsonRecipient<'a>>,
}

impl<'a> JsonMessage<'a> {
    fn new(m: &'a MessageRecord, kind: Kind, address: Option<&str>) -> Self {
        let c = &m.counts;
        JsonMessage {
            host: &m.host,
            queue_id: &m.queue_id,
            arrived_at: m.arrived_at,
            last_seen_at: m.last_seen_at,
            outcome: &m.outcome,
            in_flight: m.in_flight,
            matched_by: kind,
            matched_fields: address.map(|a| matched_fields(m, a)).unwrap_or_default(),
            sender: m.sender.as_deref(),
            message_id: m.message_id.as_deref(),
            origin: m.origin.as_deref(),
            client_name: m.client_name.as_deref(),
            client_addr: m.client_addr.as_deref(),
            sasl_method: m.sasl_method.as_deref(),
            sasl_username: m.sasl_username.as_deref(),
            pickup_uid: m.pickup_uid,
            size: m.size,
            nrcpt: m.nrcpt,
            counts: JsonCounts {
                recipients: c.recipients,
                sent: c.sent,
                deferred: c.deferred,
                bounced: c.bounced,
                expired: c.expired,
                rejected: c.rejected,
                discarded: c.discarded,
                deleted: c.deleted,
            },
            removed_at: m.removed_at,
            expired_at: m.expired_at,
            deleted_at: m.deleted_at,
            rejected_at: m.rejected_at,
            held_at: m.held_at,
            released_at: m.released_at,
            parent: m.parent.as_ref().map(JsonLink::new),
            children: m.children.iter().map(JsonLink::new).collect(),
            recipients: m
                .recipients
                .iter()
                .map(|r| JsonRecipient {
                    recipient: &r.recipient,
                    orig_recipient: r.orig_recipient.as_deref(),
                    status: &r.status,
                    status_at: r.status_at,
                    dsn: r.dsn.as_deref(),
                    relay: r.relay.as_deref(),
                    response: r.response.as_deref(),
                    attempts: r.attempts,
                    delay: r.delay,
                    first_attempt_at: r.first_attempt_at,
                    last_attempt_at: r.last_attempt_at,
                    queued_as: r.queued_as.as_deref(),
                    continued_as: JsonContinuation::new(&m.host, r),
                    failure_reason: r.failure_reason.as_deref(),
                    hard: r.hard,
                    failure_rule: r.failure_rule.as_deref(),
                    final_status: r.path.last().map_or(&r.status, |h| &h.status),
                    final_host: r.path.last().map_or(&m.host, |h| &h.host),
                    final_queue_id: r.path.last().map_or(&m.queue_id, |h| &h.queue_id),
                    path: r.path.iter().map(JsonHop::new).collect(),
                })
                .collect(),
        }
    }
}

// ---- table ------------------------------------------------------------------------

/// ANSI colours, on only for a terminal (and not with `NO_COLOR` or `TERM=dumb`).
#[derive(Debug, Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn detect() -> Style {
        let term_ok = std::env::var("TERM").map_or(true, |t| t != "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: std::io::stdout().is_terminal() && term_ok && !no_color,
        }
    }

    fn paint(self, text: &str, code: &str) -> String {
        if self.color && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(self, text: &str) -> String {
        self.paint(text, "1")
    }

    fn dim(self, text: &str) -> String {
        self.paint(text, "2")
    }

    /// Colour of a status or outcome.
    fn status(self, status: &str) -> String {
        let code = match status {
            "sent" => "32",
            "deferred" | "partial" => "33",
            "bounced" | "expired" | "rejected" | "failed" => "31",
            "discarded" | "deleted" => "35",
            _ => "",
        };
        self.paint(status, code)
    }
}

/// A time in the local zone, to the second.
fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn local_opt(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), local)
}

fn link_text(l: &MessageLink) -> String {
    match &l.kind {
        Some(kind) => format!(
            "{} {} (arrived {})",
            kind.replace('_', "-"),
            l.queue_id,
            local(l.arrived_at)
        ),
        None => format!("{} (arrived {})", l.queue_id, local(l.arrived_at)),
    }
}

fn counts_text(m: &MessageRecord) -> String {
    let c = &m.counts;
    let parts: Vec<String> = [
        (c.sent, "sent"),
        (c.deferred, "deferred"),
        (c.bounced, "bounced"),
        (c.expired, "expired"),
        (c.rejected, "rejected"),
        (c.discarded, "discarded"),
        (c.deleted, "deleted"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "no recipients logged".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Render messages as aligned text blocks, one per message.
fn render_table(messages: &[MessageRecord], address: Option<&str>, style: Style) -> String {
    let mut out = String::new();
    let zone = Local::now().format("%:z").to_string();
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} {}  arrived {} {}  {}: {}",
            style.bold(&m.host),
            style.bold(&m.queue_id),
            local(m.arrived_at),
            zone,
            style.status(&m.outcome),
            counts_text(m),
        );
        let mut field = |name: &str, value: String| {
            let _ = writeln!(out, "  {:<11}{value}", style.dim(name));
        };
        let sender = match m.sender.as_deref() {
            Some("") => "<> (null sender: a notification)".to_owned(),
            Some(s) => s.to_owned(),
            None => "-".to_owned(),
        };
        field("sender", sender);
        if let Some(id) = &m.message_id {
            field("message-id", format!("<{id}>"));
        }
        let mut client = match (&m.client_name, &m.client_addr) {
            (Some(n), Some(a)) => format!("{n}[{a}]"),
            (None, Some(a)) => format!("[{a}]"),
            (Some(n), None) => n.clone(),
            (None, None) => String::new(),
        };
        if let Some(user) = &m.sasl_username {
            let method = m
                .sasl_method
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let _ = write!(client, " sasl {user}{method}");
        }
        if let Some(uid) = m.pickup_uid {
            let _ = write!(client, " uid {uid}");
        }
        let mut origin = m.origin.clone().unwrap_or_else(|| "-".to_owned());
        if !client.trim().is_empty() {
            let _ = write!(origin, " from {}", client.trim());
        }
        field("origin", origin);
        let mut size = Vec::new();
        if let Some(s) = m.size {
            size.push(format!("{s} bytes"));
        }
        if let Some(n) = m.nrcpt {
            size.push(format!("{n} recipient{}", if n == 1 { "" } else { "s" }));
        }
        if !size.is_empty() {
            field("size", size.join(", "));
        }
        if let Some(p) = &m.parent {
            field("parent", link_text(p));
        }
        for c in &m.children {
            field("child", link_text(c));
        }
        for (name, at) in [
            ("held", m.held_at),
            ("released", m.released_at),
            ("rejected", m.rejected_at),
            ("expired", m.expired_at),
            ("deleted", m.deleted_at),
            ("removed", m.removed_at),
        ] {
            if let Some(at) = at {
                field(name, local(at));
            }
        }
        if m.removed_at.is_none() && m.rejected_at.is_none() {
            field(
                "queue",
                if m.in_flight {
                    format!("still in the queue (last seen {})", local(m.last_seen_at))
                } else {
                    format!("no end logged (last seen {})", local(m.last_seen_at))
                },
            );
        }
        render_recipients(&mut out, m, address, style);
    }
    out
}

fn render_recipients(out: &mut String, m: &MessageRecord, address: Option<&str>, style: Style) {
    if m.recipients.is_empty() {
        return;
    }
    // Too many to list: the looked-up address first, then the others in order.
    let shown: Vec<&RecipientRecord> = if m.recipients.len() > MAX_TABLE_RECIPIENTS {
        let mut v: Vec<&RecipientRecord> = m
            .recipients
            .iter()
            .filter(|r| recipient_matches(r, address))
            .take(MAX_TABLE_RECIPIENTS)
            .collect();
        for r in &m.recipients {
            if v.len() >= MAX_TABLE_RECIPIENTS {
                break;
            }
            if !recipient_matches(r, address) {
                v.push(r);
            }
        }
        v
    } else {
        m.recipients.iter().collect()
    };
    // The failure reason next to the status, when any shown recipient has one (a
    // message without failures keeps the columns it always had).
    let with_reason = shown.iter().any(|r| r.failure_reason.is_some());
    let mut header = vec!["RECIPIENT", "STATUS"];
    if with_reason {
        header.push("REASON");
    }
    header.extend(["ATTEMPTS", "FIRST ATTEMPT", "LAST ATTEMPT", "DSN", "RELAY"]);
    // Numbers right-aligned.
    let attempts_column = header.iter().position(|h| *h == "ATTEMPTS");
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            let who = match &r.orig_recipient {
                Some(o) if o != &r.recipient => format!("{} (to {o})", r.recipient),
                _ => r.recipient.clone(),
            };
            let mut row = vec![who, r.status.clone()];
            if with_reason {
                row.push(reason_text(r));
            }
            row.extend([
                r.attempts.to_string(),
                local_opt(r.first_attempt_at),
                local_opt(r.last_attempt_at),
                r.dsn.clone().unwrap_or_else(|| "-".to_owned()),
                r.relay.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    let mut line = String::from("  ");
    for (i, (h, w)) in header.iter().zip(&widths).enumerate() {
        if i == header.len() - 1 {
            line.push_str(h);
        } else {
            let _ = write!(line, "{h:<w$}  ");
        }
    }
    let _ = writeln!(out, "{}", style.dim(line.trim_end()));
    for (r, row) in shown.iter().zip(&rows) {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            let text = if i == 1 {
                style.status(cell)
            } else {
                cell.clone()
            };
            if i == row.len() - 1 {
                line.push_str(&text);
            } else if Some(i) == attempts_column {
                let _ = write!(line, "{}{text}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{text}{}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        let mut notes = Vec::new();
        if let Some(resp) = &r.response {
            notes.push(resp.clone());
        }
        if let Some(c) = &r.continued_as {
            notes.push(format!("continued as {}", link_text(c)));
        } else if let Some(h) = r.path.first() {
            notes.push(format!(
                "continued as {} {} {} (arrived {})",
                h.link,
                h.host,
                h.queue_id,
                local(h.arrived_at)
            ));
        }
        if r.status != "sent" && r.attempts == 0 {
            notes.push(format!("{} at {}", r.status, local(r.status_at)));
        }
        for note in notes {
            let _ = writeln!(out, "      {}", style.dim(&note));
        }
        if !r.path.is_empty() {
            // Not dimmed: each hop's status is coloured.
            let _ = writeln!(out, "      {}", path_text(m, r, style));
        }
        // Why it failed at the end of its path.
        if let Some(end) = r.path.last()
            && end.status != "sent"
            && let Some(resp) = &end.response
        {
            let note = format!("at {} {}: {resp}", end.host, end.queue_id);
            let _ = writeln!(out, "      {}", style.dim(&note));
        }
    }
    if shown.len() < m.recipients.len() {
        let _ = writeln!(
            out,
            "  … {} more recipients (--json lists them all)",
            m.recipients.len() - shown.len()
        );
    }
}

/// The path of a recipient through hosts and messages, each hop with its status:
/// `path: mx1 4Lq0… sent → reinjection mx1 4Lq1… sent → relay store1 7C2D… bounced 5.2.2`.
fn path_text(m: &MessageRecord, r: &RecipientRecord, style: Style) -> String {
    let mut text = format!(
        "path: {} {} {}",
        m.host,
        m.queue_id,
        style.status(&r.status)
    );
    for h in &r.path {
        let _ = write!(
            text,
            " → {} {} {} {}",
            h.link,
            h.host,
            h.queue_id,
            style.status(&h.status)
        );
        if h.status != "sent"
            && let Some(dsn) = &h.dsn
        {
            let _ = write!(text, " {dsn}");
        }
        if !h.recipient.eq_ignore_ascii_case(&r.recipient) {
            let _ = write!(text, " (to {})", h.recipient);
        }
    }
    text
}

/// A recipient's failure reason and whether it is hard or soft (`userunknown, hard`);
/// `-` when it did not fail.
fn reason_text(r: &RecipientRecord) -> String {
    match (&r.failure_reason, r.hard) {
        (Some(reason), Some(true)) => format!("{reason}, hard"),
        (Some(reason), Some(false)) => format!("{reason}, soft"),
        (Some(reason), None) => reason.clone(),
        (None, _) => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(q: &str) -> Vec<Kind> {
        plan(q, None).unwrap().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn classifies_arguments() {
        assert_eq!(kinds("Bob@Example.com"), [Kind::Address, Kind::MessageId]);
        assert_eq!(
            kinds("<team-meeting@example.com>"),
            [Kind::MessageId, Kind::Address]
        );
        assert_eq!(kinds("2D9E8F7A6B"), [Kind::QueueId, Kind::MessageId]);
        assert_eq!(kinds("4Lq0c60QJdz9fLV"), [Kind::QueueId, Kind::MessageId]);
        assert_eq!(kinds("abc.def$x"), [Kind::MessageId]);
        assert_eq!(kinds("<no-at-sign>"), [Kind::MessageId]);
        assert!(plan("  ", None).is_err());
        assert!(plan("<>", None).is_err());
    }

    #[test]
    fn strips_brackets_and_adds_upper_case_short_ids() {
        let p = plan("<x@y>", None).unwrap();
        assert_eq!(p[0].1, Lookup::MessageId("x@y".to_owned()));
        let p = plan("2d9e8f7a6b", None).unwrap();
        assert_eq!(
            p[0].1,
            Lookup::QueueId(vec!["2d9e8f7a6b".to_owned(), "2D9E8F7A6B".to_owned()])
        );
        let p = plan("bob@x", Some(Kind::MessageId)).unwrap();
        assert_eq!(
            p,
            vec![(Kind::MessageId, Lookup::MessageId("bob@x".into()))]
        );
    }

    #[test]
    fn parses_times() {
        let now = DateTime::parse_from_rfc3339("2025-03-14T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("2d", now).unwrap().to_rfc3339(),
            "2025-03-12T12:00:00+00:00"
        );
        assert_eq!(
            parse_time("2025-03-01T00:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2025-02-28T23:00:00+00:00"
        );
        assert!(parse_time("2025-03-14", now).is_ok());
        assert!(parse_time("yesterday", now).unwrap() < now);
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("5y", now).is_err());
    }
}
