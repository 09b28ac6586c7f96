//! Read queries behind `pftrack status`: find the messages an address, a Message-ID or
//! a queue id refers to, then read their rows from the `message_status` and
//! `delivery_status` views (migration V2; V5 adds each recipient's failure reason) in
//! three prepared statements.
//!
//! Every lookup starts from an index: `lower(recipient)`, `lower(orig_recipient)`,
//! `lower(sender)`, `message_id`, or the primary keys (which start with `queue_id`).
//! [`Store::explain_find`] shows the plans, so a test can check that.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use crate::{Store, StoreError};

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An address, matched case-insensitively (ASCII, as `lower()` in the "C"
    /// collation) against recipients, original recipients and senders.
    Address(String),
    /// A `Message-ID` header value, without the angle brackets.
    MessageId(String),
    /// A Postfix queue id (short hexadecimal or long form). Any of the given spellings
    /// may match (short ids are upper-case; the caller may add that spelling).
    QueueId(Vec<String>),
}

/// Limits on the arrival time of the messages looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Arrived at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Arrived before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only messages with this tag (name, value): `delivery_from.tags`, e.g. the
    /// client application a sender's header names.
    pub tag: Option<(String, String)>,
}

/// A link between two messages of the same host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageLink {
    /// Queue id of the other message.
    pub queue_id: String,
    /// When the other message arrived (with the queue id, its identity).
    pub arrived_at: DateTime<Utc>,
    /// `non_delivery`, `delay`, `success`, `postmaster`, `reinjection` or `forward`.
    pub kind: Option<String>,
}

/// Recipients of a message counted by status (the statuses of `delivery_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusCounts {
    /// All recipient rows.
    pub recipients: i64,
    /// Delivered.
    pub sent: i64,
    /// Still being retried.
    pub deferred: i64,
    /// Refused for good.
    pub bounced: i64,
    /// Deferred until the queue lifetime ran out.
    pub expired: i64,
    /// Rejected after the queue file existed.
    pub rejected: i64,
    /// Discarded by a rule.
    pub discarded: i64,
    /// Deleted by the administrator.
    pub deleted: i64,
}

/// One recipient of a found message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecipientRecord {
    /// Address delivered to.
    pub recipient: String,
    /// Address before alias or virtual expansion, when Postfix logged one.
    pub orig_recipient: Option<String>,
    /// Status as in `delivery_status`.
    pub status: String,
    /// Time of that status.
    pub status_at: DateTime<Utc>,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// `relay=` of the latest attempt.
    pub relay: Option<String>,
    /// The server's reply or the reason.
    pub response: Option<String>,
    /// Delivery attempts logged.
    pub attempts: i32,
    /// `delay=` of the latest attempt, seconds.
    pub delay: Option<f32>,
    /// First delivery attempt.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Latest delivery attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Queue id in the reply (`queued as X`).
    pub queued_as: Option<String>,
    /// The message continuing this one on the same host (content filter, forwarding).
    pub continued_as: Option<MessageLink>,
    /// Why the latest attempt failed (a reason of `docs/classification.md`); `None`
    /// when it did not fail. A recipient whose message expired is `expired`.
    pub failure_reason: Option<String>,
    /// Whether that failure is permanent (`Some(true)`) or transient; `None` when not
    /// a failure or nothing tells.
    pub hard: Option<bool>,
    /// The rule that decided the reason, to explain or override it.
    pub failure_rule: Option<String>,
    /// Where the recipient went after this message, hop by hop (migration V12's
    /// `delivery_path()` without hop 0): the same host's re-injection or forward, then
    /// other hosts' messages it was relayed to. Empty when it went nowhere this
    /// database knows; the last hop is its fate at the end of the chain.
    pub path: Vec<Hop>,
}

/// One message a recipient passed through after the one looked up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hop {
    /// Host that logged it.
    pub host: String,
    /// Its queue id.
    pub queue_id: String,
    /// When it arrived there.
    pub arrived_at: DateTime<Utc>,
    /// The recipient there (rewritten by an alias or virtual map, maybe).
    pub recipient: String,
    /// Its status there; `unknown` when that message has no delivery of the recipient
    /// logged (yet).
    pub status: String,
    /// Time of that status.
    pub status_at: Option<DateTime<Utc>>,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// `relay=` there.
    pub relay: Option<String>,
    /// The reply or reason there.
    pub response: Option<String>,
    /// How it got there from the previous hop: `reinjection`, `forward` or `relay`.
    pub link: String,
}

/// One found message with its recipients and links.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MessageRecord {
    /// Host that logged it.
    pub host: String,
    /// Postfix queue id.
    pub queue_id: String,
    /// First line of this message life.
    pub arrived_at: DateTime<Utc>,
    /// Latest line.
    pub last_seen_at: DateTime<Utc>,
    /// Envelope sender (`""` for the null sender).
    pub sender: Option<String>,
    /// `Message-ID` header without `<>`.
    pub message_id: Option<String>,
    /// `smtpd`, `pickup` or `notification`.
    pub origin: Option<String>,
    /// Client host name.
    pub client_name: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// SASL mechanism.
    pub sasl_method: Option<String>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// Submitting uid (pickup).
    pub pickup_uid: Option<i64>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Recipients announced by qmgr.
    pub nrcpt: Option<i32>,
    /// Recipients by status.
    pub counts: StatusCounts,
    /// Overall outcome (see `message_status` in docs/queries.md).
    pub outcome: String,
    /// Life not ended and seen within the extractor's idle limit.
    pub in_flight: bool,
    /// Queue file removed.
    pub removed_at: Option<DateTime<Utc>>,
    /// Queue lifetime ran out.
    pub expired_at: Option<DateTime<Utc>>,
    /// Deleted by `postsuper -d`.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Rejected after the queue file existed.
    pub rejected_at: Option<DateTime<Utc>>,
    /// Put on hold.
    pub held_at: Option<DateTime<Utc>>,
    /// Released from hold.
    pub released_at: Option<DateTime<Utc>>,
    /// The message this one is about or continues.
    pub parent: Option<MessageLink>,
    /// Notifications about this message and its continuations, oldest first.
    pub children: Vec<MessageLink>,
    /// Recipients, by address.
    pub recipients: Vec<RecipientRecord>,
}

/// The result of a lookup.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    /// Matching messages, oldest first.
    pub messages: Vec<MessageRecord>,
    /// More messages matched than the limit; the newest ones were kept.
    pub truncated: bool,
}

/// Lower bound used when no `since` is given (before any Postfix log).
const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// Upper bound used when no `until` is given: far in the future, well inside
/// PostgreSQL's timestamp range.
fn latest() -> DateTime<Utc> {
    // 9999-12-31T00:00:00Z; the fallback cannot be reached (the constant is valid).
    DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Rows read per wanted message in the recipient branches of [`ADDRESS_KEYS_SQL`]: a
/// message names an address once, or a few times with different `orig_to`; reading
/// this many rows per message finds the wanted number of distinct messages unless a
/// message names the address more often than this, which Postfix logs do not show.
pub const ROWS_PER_MESSAGE: i64 = 4;

/// Keys of messages with `$1` as recipient, original recipient or sender, newest first.
/// Each branch walks its `(lower(address), arrived_at)` index backwards and stops after
/// `$5` rows (`$4` messages × [`ROWS_PER_MESSAGE`]), so a busy address costs no more
/// than a rare one; `UNION` merges the messages found in several roles. The two
/// arguments are the conditions on the tag (`$6 = $7`) of the recipient branches and
/// of the sender branch: empty in [`ADDRESS_KEYS_SQL`], so that a lookup without a tag
/// does not plan the tag's sub-queries over every monthly partition (1.2 ms of the
/// 6.5 ms this statement takes to plan in a new session at 50 M recipient rows).
macro_rules! address_keys_sql {
    ($recipient_tag:literal, $sender_tag:literal) => {
        concat!(
            "\
SELECT host, queue_id, arrived_at FROM (
    (SELECT host, queue_id, arrived_at
     FROM delivery_to
     WHERE lower(recipient) = lower($1::text COLLATE \"C\")
       AND arrived_at >= $2 AND arrived_at < $3",
            $recipient_tag,
            "
     ORDER BY arrived_at DESC
     LIMIT $5)
    UNION
    (SELECT host, queue_id, arrived_at
     FROM delivery_to
     WHERE lower(orig_recipient) = lower($1::text COLLATE \"C\") AND orig_recipient <> ''
       AND arrived_at >= $2 AND arrived_at < $3",
            $recipient_tag,
            "
     ORDER BY arrived_at DESC
     LIMIT $5)
    UNION
    (SELECT host, queue_id, arrived_at
     FROM delivery_from
     WHERE lower(sender) = lower($1::text COLLATE \"C\")
       AND arrived_at >= $2 AND arrived_at < $3",
            $sender_tag,
            "
     ORDER BY arrived_at DESC
     LIMIT $4)
) k
ORDER BY arrived_at DESC, host, queue_id
LIMIT $4"
        )
    };
}

/// [`address_keys_sql!`] without a tag: parameters `$1`–`$5`.
pub const ADDRESS_KEYS_SQL: &str = address_keys_sql!("", "");

/// [`address_keys_sql!`] of messages tagged `$6 = $7`: parameters `$1`–`$7`.
pub const ADDRESS_KEYS_TAGGED_SQL: &str = address_keys_sql!(
    "
       AND EXISTS (SELECT 1 FROM delivery_from g
            WHERE g.queue_id = delivery_to.queue_id AND g.host = delivery_to.host
              AND g.arrived_at = delivery_to.arrived_at AND g.tags ->> $6 = $7)",
    "
       AND tags ->> $6 = $7"
);

/// Keys of messages with `$1` as Message-ID (index `delivery_from_message_id`).
pub const MESSAGE_ID_KEYS_SQL: &str = "\
SELECT host, queue_id, arrived_at FROM delivery_from
WHERE message_id = $1 AND arrived_at >= $2 AND arrived_at < $3
  AND ($5::text IS NULL OR tags ->> $5 = $6)
ORDER BY arrived_at DESC, host, queue_id
LIMIT $4";

/// Keys of messages with one of the queue ids `$1` (the primary key starts with it).
pub const QUEUE_ID_KEYS_SQL: &str = "\
SELECT host, queue_id, arrived_at FROM delivery_from
WHERE queue_id = ANY($1::text[]) AND arrived_at >= $2 AND arrived_at < $3
  AND ($5::text IS NULL OR tags ->> $5 = $6)
ORDER BY arrived_at DESC, host, queue_id
LIMIT $4";

const MESSAGES_SQL: &str = "\
SELECT m.host, m.queue_id, m.arrived_at, m.last_seen_at, m.sender, m.message_id, m.origin,
       m.client_name, m.client_addr, m.sasl_method, m.sasl_username, m.pickup_uid, m.size,
       m.nrcpt, m.recipients, m.sent, m.deferred, m.bounced, m.expired, m.rejected,
       m.discarded, m.deleted, m.outcome, m.in_flight, m.removed_at, m.expired_at,
       m.deleted_at, m.rejected_at, m.held_at, m.released_at, m.parent_queue_id,
       m.parent_arrived_at, m.parent_kind
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(host, queue_id, arrived_at)
JOIN message_status m
  ON m.queue_id = k.queue_id AND m.host = k.host AND m.arrived_at = k.arrived_at
ORDER BY m.arrived_at, m.host, m.queue_id";

const RECIPIENTS_SQL: &str = "\
SELECT d.host, d.queue_id, d.arrived_at, d.recipient, d.orig_recipient, d.status, d.status_at,
       d.dsn, d.relay, d.response, d.attempts, d.delay, d.first_attempt_at, d.last_attempt_at,
       d.queued_as, d.continued_as_queue_id, d.continued_as_arrived_at, d.failure_reason, d.hard,
       d.failure_rule
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(host, queue_id, arrived_at)
JOIN delivery_status d
  ON d.queue_id = k.queue_id AND d.host = k.host AND d.arrived_at = k.arrived_at
ORDER BY d.recipient, d.orig_recipient";

/// The paths of the recipients of the given messages, hop 0 left out: one
/// `delivery_paths()` call (migration V19) follows them all at once; recipients that go
/// nowhere (not sent, no `queued as` id, or relayed outside the database) end at hop 0.
const PATHS_SQL: &str = "\
SELECT p.start_host, p.start_queue_id, p.start_arrived_at, p.start_recipient,
       coalesce(p.start_orig_recipient, ''), p.hop, p.host, p.queue_id, p.arrived_at,
       p.recipient, p.status, p.status_at, p.dsn, p.relay, p.response, p.link
FROM delivery_paths($1::text[], $2::text[], $3::timestamptz[]) p
WHERE p.hop > 0
ORDER BY p.start_host, p.start_queue_id, p.start_arrived_at, p.start_recipient,
         p.start_orig_recipient, p.hop";

const CHILDREN_SQL: &str = "\
SELECT c.host, c.parent_queue_id, c.parent_arrived_at, c.queue_id, c.arrived_at, c.parent_kind
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS k(host, queue_id, arrived_at)
JOIN delivery_from c
  ON c.host = k.host AND c.parent_queue_id = k.queue_id AND c.parent_arrived_at = k.arrived_at
ORDER BY c.arrived_at, c.queue_id";

type Key = (String, String, DateTime<Utc>);

impl Lookup {
    fn keys_sql(&self, window: &Window) -> &'static str {
        match self {
            Lookup::Address(_) if window.tag.is_some() => ADDRESS_KEYS_TAGGED_SQL,
            Lookup::Address(_) => ADDRESS_KEYS_SQL,
            Lookup::MessageId(_) => MESSAGE_ID_KEYS_SQL,
            Lookup::QueueId(_) => QUEUE_ID_KEYS_SQL,
        }
    }
}

impl Store {
    /// Find the messages `lookup` refers to that arrived within `window`: the newest
    /// `limit` of them, returned oldest first, each with its recipients and links.
    pub async fn find_messages(
        &self,
        lookup: &Lookup,
        window: &Window,
        limit: usize,
    ) -> Result<Found, StoreError> {
        let client = self.client().await?;
        // The paths (and the linked messages) are read on a second session, in
        // parallel with the messages and recipients: a lookup's time is mostly one
        // backend waiting for pages read one at a time (about 250 for 50 messages read
        // from disk) and planning over every monthly partition, and the paths' pages
        // (the next hosts' messages) are not the others'. While the first session
        // looks the keys up, the second is made ready (its plan of the path read
        // built, which loads the partitions' catalogue entries); each starts its reads
        // as soon as it can. Without a second session (no connection to spare),
        // everything runs on the first.
        let (keys_found, keys_wanted) = tokio::sync::oneshot::channel::<Vec<Key>>();
        let first = async {
            let (keys, truncated) = message_keys(&client, lookup, window, limit).await?;
            // The second side may have given up (no session): nobody to tell then.
            let _ = keys_found.send(keys.clone());
            if keys.is_empty() {
                return Ok((keys, truncated, Vec::new(), Vec::new()));
            }
            let (message_rows, recipients) = message_reads(&client, &KeyColumns::of(&keys)).await?;
            Ok::<_, StoreError>((keys, truncated, message_rows, recipients))
        };
        let second = async {
            let Some(session) = self.path_reader().await else {
                return Ok(None);
            };
            // No keys: the first side failed (its error is the one reported).
            let Ok(keys) = keys_wanted.await else {
                return Ok(None);
            };
            if keys.is_empty() {
                return Ok(Some((Vec::new(), Vec::new())));
            }
            // Both sides first read the same pages: each message's row and its
            // recipients' (the paths start there). In the same order, one side would
            // wait for each page the other is reading; oldest first here (the first
            // side goes newest first), each reads about half and finds the rest read.
            let oldest_first: Vec<Key> = keys.into_iter().rev().collect();
            path_reads(&session, &KeyColumns::of(&oldest_first))
                .await
                .map(Some)
        };
        // Both sides run together; when nothing matched, the answer does not wait for
        // the second session's preparation.
        tokio::pin!(first, second);
        let mut second_done = None;
        let first = loop {
            tokio::select! {
                done = &mut first => break done,
                done = &mut second, if second_done.is_none() => second_done = Some(done),
            }
        };
        let (keys, truncated, message_rows, recipients) = first?;
        if keys.is_empty() {
            return Ok(Found::default());
        }
        let second = match second_done {
            Some(done) => done,
            None => second.await,
        };
        let (hops, children) = match second? {
            Some(read) => read,
            None => path_reads(&client, &KeyColumns::of(&keys)).await?,
        };
        Ok(assemble(
            &message_rows,
            &recipients,
            &hops,
            &children,
            truncated,
        ))
    }

    /// A second session for [`Store::find_messages`]'s path read, made ready: the
    /// path read run once with no keys, which plans it (`delivery_paths()`'s query
    /// included) over every partition. `None` when the pool or the server has no
    /// connection to spare, or that fails: the caller then reads the paths on its own
    /// session.
    async fn path_reader(&self) -> Option<deadpool_postgres::Object> {
        let client = self.client().await.ok()?;
        let none: [&(dyn ToSql + Sync); 3] = [
            &Vec::<&str>::new(),
            &Vec::<&str>::new(),
            &Vec::<DateTime<Utc>>::new(),
        ];
        let warmed = read(
            &client,
            PATHS_SQL,
            &none,
            "preparing the path read (second session)",
            "planning the path read (second session)",
        );
        match warmed.await {
            Ok(_) => Some(client),
            Err(e) => {
                tracing::debug!(error = %e, "no second session for the path read");
                None
            }
        }
    }

    /// The plans of [`Store::find_messages`]'s key lookup and message read for the
    /// same arguments (`EXPLAIN`, or `EXPLAIN ANALYZE` when `analyze`), one text.
    pub async fn explain_find(
        &self,
        lookup: &Lookup,
        window: &Window,
        limit: usize,
        analyze: bool,
    ) -> Result<String, StoreError> {
        let client = self.client().await?;
        let verb = if analyze {
            "EXPLAIN (ANALYZE, BUFFERS) "
        } else {
            "EXPLAIN "
        };
        let sql = format!("{verb}{}", lookup.keys_sql(window));
        let rows = query_keys(&client, sql.as_str(), lookup, window, limit)
            .await
            .map_err(|e| StoreError::query("explaining the message lookup", e))?;
        let mut text = String::from("-- key lookup\n");
        for r in rows {
            text.push_str(r.get::<_, &str>(0));
            text.push('\n');
        }
        // The reads by key, explained for the keys the lookup finds: nothing else has
        // read their pages yet, as in a lookup.
        let (keys, _) = message_keys(&client, lookup, window, limit).await?;
        let columns = KeyColumns::of(&keys);
        let params = columns.params();
        for (what, sql) in [
            ("message read", MESSAGES_SQL),
            ("recipient read", RECIPIENTS_SQL),
            ("path read", PATHS_SQL),
            ("link read", CHILDREN_SQL),
        ] {
            let rows = client
                .query(&format!("{verb}{sql}"), &params)
                .await
                .map_err(|e| StoreError::query("explaining the message read", e))?;
            text.push_str(&format!("-- {what}\n"));
            for r in rows {
                text.push_str(r.get::<_, &str>(0));
                text.push('\n');
            }
        }
        Ok(text)
    }
}

/// [`Store::find_messages`] on one session the caller holds: what a long-lived reader
/// (`pftrack serve`'s pool, whose sessions have planned these statements before) does.
/// The reads run one after the other on `client`, pipelined where they can be: on a
/// warm session there is no planning left to overlap, so a second session would only
/// take a connection from the pool.
pub async fn find_messages_on(
    client: &deadpool_postgres::ClientWrapper,
    lookup: &Lookup,
    window: &Window,
    limit: usize,
) -> Result<Found, StoreError> {
    let (keys, truncated) = message_keys(client, lookup, window, limit).await?;
    if keys.is_empty() {
        return Ok(Found::default());
    }
    let columns = KeyColumns::of(&keys);
    let ((message_rows, recipients), (hops, children)) = tokio::try_join!(
        message_reads(client, &columns),
        path_reads(client, &columns),
    )?;
    Ok(assemble(
        &message_rows,
        &recipients,
        &hops,
        &children,
        truncated,
    ))
}

/// The messages read, with their recipients, the recipients' paths and the linked
/// messages put in place.
fn assemble(
    message_rows: &[tokio_postgres::Row],
    recipients: &[tokio_postgres::Row],
    hops: &[tokio_postgres::Row],
    children: &[tokio_postgres::Row],
    truncated: bool,
) -> Found {
    let mut messages: Vec<MessageRecord> = message_rows.iter().map(message_from_row).collect();
    for r in recipients {
        let key: Key = (r.get(0), r.get(1), r.get(2));
        if let Some(m) = find(&mut messages, &key) {
            m.recipients.push(recipient_from_row(r));
        }
    }

    for r in hops {
        let key: Key = (r.get(0), r.get(1), r.get(2));
        let recipient: &str = r.get(3);
        let orig: &str = r.get(4);
        let Some(m) = find(&mut messages, &key) else {
            continue;
        };
        let Some(rcpt) = m.recipients.iter_mut().find(|x| {
            x.recipient == recipient && x.orig_recipient.as_deref().unwrap_or("") == orig
        }) else {
            continue;
        };
        rcpt.path.push(Hop {
            host: r.get(6),
            queue_id: r.get(7),
            arrived_at: r.get(8),
            recipient: r.get(9),
            status: r.get(10),
            status_at: r.get(11),
            dsn: r.get(12),
            relay: r.get(13),
            response: r.get(14),
            link: r.get::<_, Option<String>>(15).unwrap_or_default(),
        });
    }

    for r in children {
        let key: Key = (r.get(0), r.get(1), r.get(2));
        if let Some(m) = find(&mut messages, &key) {
            m.children.push(MessageLink {
                queue_id: r.get(3),
                arrived_at: r.get(4),
                kind: r.get(5),
            });
        }
    }
    Found {
        messages,
        truncated,
    }
}

/// The keys of the newest `limit` messages `lookup` finds within `window`, newest
/// first, and whether more matched.
async fn message_keys(
    client: &deadpool_postgres::ClientWrapper,
    lookup: &Lookup,
    window: &Window,
    limit: usize,
) -> Result<(Vec<Key>, bool), StoreError> {
    let stmt = client
        .prepare_cached(lookup.keys_sql(window))
        .await
        .map_err(|e| StoreError::query("preparing the message lookup", e))?;
    let rows = query_keys(client, &stmt, lookup, window, limit)
        .await
        .map_err(|e| StoreError::query("looking up messages", e))?;
    let mut keys: Vec<Key> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let truncated = keys.len() > limit;
    keys.truncate(limit);
    Ok((keys, truncated))
}

/// Run `statement` — the lookup's key query ([`Lookup::keys_sql`]), or that query's
/// `EXPLAIN` — with the lookup's parameters: one more message than `limit` (to tell
/// whether there were more).
async fn query_keys<T>(
    client: &deadpool_postgres::ClientWrapper,
    statement: &T,
    lookup: &Lookup,
    window: &Window,
    limit: usize,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>
where
    T: ?Sized + tokio_postgres::ToStatement,
{
    let since = window.since.unwrap_or(EARLIEST);
    let until = window.until.unwrap_or_else(latest);
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = fetch.saturating_mul(ROWS_PER_MESSAGE);
    let (tag_name, tag_value) = tag_params(window);
    let searched: &(dyn ToSql + Sync) = match lookup {
        Lookup::Address(a) | Lookup::MessageId(a) => a,
        Lookup::QueueId(ids) => ids,
    };
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![searched, &since, &until, &fetch];
    // The address lookup reads `rows` index entries per branch; its tag parameters
    // exist only in its tagged form (ADDRESS_KEYS_TAGGED_SQL). The other lookups
    // always take the tag (NULL for none).
    let by_address = matches!(lookup, Lookup::Address(_));
    if by_address {
        params.push(&rows);
    }
    if !by_address || window.tag.is_some() {
        params.extend([&tag_name as &(dyn ToSql + Sync), &tag_value]);
    }
    client.query(statement, &params).await
}

/// The message keys as three arrays, the parameters of the reads by key.
struct KeyColumns<'a> {
    hosts: Vec<&'a str>,
    queue_ids: Vec<&'a str>,
    arrived: Vec<DateTime<Utc>>,
}

impl<'a> KeyColumns<'a> {
    fn of(keys: &'a [Key]) -> KeyColumns<'a> {
        KeyColumns {
            hosts: keys.iter().map(|k| k.0.as_str()).collect(),
            queue_ids: keys.iter().map(|k| k.1.as_str()).collect(),
            arrived: keys.iter().map(|k| k.2).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.hosts, &self.queue_ids, &self.arrived]
    }
}

/// One read by message keys, with what to call its two steps in errors.
struct KeyRead {
    sql: &'static str,
    preparing: &'static str,
    doing: &'static str,
}

const MESSAGE_READ: KeyRead = KeyRead {
    sql: MESSAGES_SQL,
    preparing: "preparing the message read",
    doing: "reading messages",
};

const RECIPIENT_READ: KeyRead = KeyRead {
    sql: RECIPIENTS_SQL,
    preparing: "preparing the recipient read",
    doing: "reading recipients",
};

const PATH_READ: KeyRead = KeyRead {
    sql: PATHS_SQL,
    preparing: "preparing the path read",
    doing: "reading recipient paths",
};

const LINK_READ: KeyRead = KeyRead {
    sql: CHILDREN_SQL,
    preparing: "preparing the link read",
    doing: "reading linked messages",
};

/// The message read and the recipient read of the messages `keys`.
async fn message_reads(
    client: &deadpool_postgres::ClientWrapper,
    keys: &KeyColumns<'_>,
) -> Result<(Vec<tokio_postgres::Row>, Vec<tokio_postgres::Row>), StoreError> {
    read_pair(client, keys, &MESSAGE_READ, &RECIPIENT_READ).await
}

/// The path read and the linked-message read of the messages `keys`.
async fn path_reads(
    client: &deadpool_postgres::ClientWrapper,
    keys: &KeyColumns<'_>,
) -> Result<(Vec<tokio_postgres::Row>, Vec<tokio_postgres::Row>), StoreError> {
    read_pair(client, keys, &PATH_READ, &LINK_READ).await
}

/// Two reads of the messages `keys`, pipelined on `client`: sent at once, they share
/// the round trips (tokio-postgres pipelines the requests of one connection), which a
/// loaded machine makes slow.
async fn read_pair(
    client: &deadpool_postgres::ClientWrapper,
    keys: &KeyColumns<'_>,
    first: &KeyRead,
    second: &KeyRead,
) -> Result<(Vec<tokio_postgres::Row>, Vec<tokio_postgres::Row>), StoreError> {
    let params = keys.params();
    tokio::try_join!(
        read(client, first.sql, &params, first.preparing, first.doing),
        read(client, second.sql, &params, second.preparing, second.doing),
    )
}

/// Prepare `sql` (cached on the connection) and run it with the message keys.
async fn read(
    client: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync); 3],
    preparing: &'static str,
    doing: &'static str,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(|e| StoreError::query(preparing, e))?;
    client
        .query(&stmt, params)
        .await
        .map_err(|e| StoreError::query(doing, e))
}

/// The tag filter as two bound parameters (both NULL: no filter).
fn tag_params(window: &Window) -> (Option<&str>, Option<&str>) {
    match &window.tag {
        Some((name, value)) => (Some(name.as_str()), Some(value.as_str())),
        None => (None, None),
    }
}

fn find<'a>(messages: &'a mut [MessageRecord], key: &Key) -> Option<&'a mut MessageRecord> {
    messages
        .iter_mut()
        .find(|m| m.host == key.0 && m.queue_id == key.1 && m.arrived_at == key.2)
}

fn message_from_row(r: &tokio_postgres::Row) -> MessageRecord {
    let parent_queue_id: Option<String> = r.get(30);
    let parent_arrived_at: Option<DateTime<Utc>> = r.get(31);
    let parent = match (parent_queue_id, parent_arrived_at) {
        (Some(queue_id), Some(arrived_at)) => Some(MessageLink {
            queue_id,
            arrived_at,
            kind: r.get(32),
        }),
        _ => None,
    };
    MessageRecord {
        host: r.get(0),
        queue_id: r.get(1),
        arrived_at: r.get(2),
        last_seen_at: r.get(3),
        sender: r.get(4),
        message_id: r.get(5),
        origin: r.get(6),
        client_name: r.get(7),
        client_addr: r.get(8),
        sasl_method: r.get(9),
        sasl_username: r.get(10),
        pickup_uid: r.get(11),
        size: r.get(12),
        nrcpt: r.get(13),
        counts: StatusCounts {
            recipients: r.get(14),
            sent: r.get(15),
            deferred: r.get(16),
            bounced: r.get(17),
            expired: r.get(18),
            rejected: r.get(19),
            discarded: r.get(20),
            deleted: r.get(21),
        },
        outcome: r.get(22),
        in_flight: r.get(23),
        removed_at: r.get(24),
        expired_at: r.get(25),
        deleted_at: r.get(26),
        rejected_at: r.get(27),
        held_at: r.get(28),
        released_at: r.get(29),
        parent,
        children: Vec::new(),
        recipients: Vec::new(),
    }
}

fn recipient_from_row(r: &tokio_postgres::Row) -> RecipientRecord {
    let continued_queue_id: Option<String> = r.get(15);
    let continued_arrived_at: Option<DateTime<Utc>> = r.get(16);
    RecipientRecord {
        recipient: r.get(3),
        orig_recipient: r.get(4),
        status: r.get(5),
        status_at: r.get(6),
        dsn: r.get(7),
        relay: r.get(8),
        response: r.get(9),
        attempts: r.get(10),
        delay: r.get(11),
        first_attempt_at: r.get(12),
        last_attempt_at: r.get(13),
        queued_as: r.get(14),
        continued_as: match (continued_queue_id, continued_arrived_at) {
            (Some(queue_id), Some(arrived_at)) => Some(MessageLink {
                queue_id,
                arrived_at,
                kind: None,
            }),
            _ => None,
        },
        failure_reason: r.get(17),
        hard: r.get(18),
        failure_rule: r.get(19),
        path: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_are_valid_postgres_times() {
        assert_eq!(EARLIEST.timestamp(), 0);
        assert_eq!(latest().to_rfc3339(), "9999-12-31T00:00:00+00:00");
    }

    #[test]
    fn every_lookup_orders_newest_first_with_a_limit() {
        for sql in [
            ADDRESS_KEYS_SQL,
            ADDRESS_KEYS_TAGGED_SQL,
            MESSAGE_ID_KEYS_SQL,
            QUEUE_ID_KEYS_SQL,
        ] {
            assert!(sql.contains("ORDER BY arrived_at DESC"), "{sql}");
            assert!(sql.trim_end().ends_with("LIMIT $4"), "{sql}");
        }
    }
}
