//! The per-message state machine: which life of a queue id a line belongs to.
//!
//! Memory holds only what is needed to key later lines: for every open message its
//! arrival time, when it was last seen and whether its once-only lines (`client=` or
//! `uid=`, `message-id=`) were seen; for recently closed ones their close time. Every
//! column value goes straight out as a [`Fact`], so the database, not memory, holds a
//! message's state. After a restart [`Extractor::prime`] rebuilds the same memory from
//! the stored rows, which is what makes a resumed run equal to an uninterrupted one.

use foldhash::HashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use pftrack_parse::{
    ContentCheck, DeliveryStatus, Event, NotificationKind, PostsuperAction, Reject, RejectAction,
};

use crate::auth::{
    AuthFailure, BruteforceRule, BruteforceWatch, MAX_AUTH_REASON_LEN, MAX_AUTH_USERNAME_LEN,
    bounded,
};
use crate::fact::{
    Fact, LinkKind, MessageKey, MessageUpdate, Noqueue, Origin, ParentLink, RecipientEvent,
    RecipientStatus,
};

/// A message not seen for this long is considered gone (its `removed` line was lost).
/// Postfix retries a deferred message at least every `maximal_backoff_time` (default
/// 4000 s) and gives up after `maximal_queue_lifetime` (default 5 days), so a queued
/// message is never silent this long.
pub const MAX_MESSAGE_IDLE: TimeDelta = TimeDelta::days(7);

/// Lines of a message that arrive shortly after its `removed` line (out of order within
/// the same second or two) still belong to it; a queue id is not reused this fast.
pub const CLOSED_GRACE: TimeDelta = TimeDelta::seconds(5);

/// A stored message that arrived this much later than a line cannot be that line's
/// message (the line comes from an older file read after a newer one).
pub const FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// Hard cap on open messages kept in memory; beyond it the least recently seen are
/// dropped. A real queue is far smaller; this bounds memory on broken input.
pub const MAX_OPEN_MESSAGES: usize = 250_000;

/// Identical NOQUEUE decisions are numbered within their instant (the first, the
/// second, …); numbers are remembered this long after the latest line, so that lines
/// of one instant that arrive slightly out of order still continue the count.
pub const NOQUEUE_OCCURRENCE_WINDOW: TimeDelta = TimeDelta::seconds(10);

/// Instants' NOQUEUE numbering kept in memory before a forced sweep (a flood of
/// distinct rejects within [`NOQUEUE_OCCURRENCE_WINDOW`] is swept early; only its
/// oldest numbers can be forgotten).
pub const MAX_NOQUEUE_OCCURRENCES: usize = 16_384;

/// How often (in lines) idle and closed entries are swept from memory.
const SWEEP_INTERVAL_LINES: u64 = 1 << 16;

#[derive(Debug, Clone)]
struct OpenMessage {
    /// The map key again, so a lookup by `&str` can hand out the shared id.
    queue_id: Arc<str>,
    arrived_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    origin_seen: bool,
    message_id_seen: bool,
}

impl OpenMessage {
    fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.last_seen + MAX_MESSAGE_IDLE >= at && self.arrived_at <= at + FUTURE_TOLERANCE
    }
}

#[derive(Debug, Clone, Copy)]
struct ClosedMessage {
    arrived_at: DateTime<Utc>,
    closed_at: DateTime<Utc>,
}

impl ClosedMessage {
    fn valid_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.closed_at - FUTURE_TOLERANCE && at <= self.closed_at + CLOSED_GRACE
    }
}

/// A stored message, to rebuild the extractor's memory after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimeEntry {
    /// The message.
    pub key: MessageKey,
    /// Its `last_seen_at`.
    pub last_seen_at: DateTime<Utc>,
    /// Its stored origin.
    pub origin: Option<Origin>,
    /// Whether its message-id was stored.
    pub message_id_seen: bool,
    /// When its life ended (`removed_at`, else `rejected_at`), if it did.
    pub closed_at: Option<DateTime<Utc>>,
}

/// What kind of line is looking for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// `client=` or `uid=`: the first line of a new life unless the open one has none.
    Origin,
    /// `message-id=`: once per life.
    MessageId,
    /// Any other line: attach to the current life, or start one.
    Attach,
}

/// Counters of what the extractor did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExtractStats {
    /// Events processed.
    pub events: u64,
    /// New message lives started.
    pub messages: u64,
    /// Recipient events emitted.
    pub recipient_events: u64,
    /// NOQUEUE facts emitted.
    pub noqueue: u64,
    /// SASL authentication failures emitted.
    pub auth_failures: u64,
    /// Brute-force alarms raised.
    pub bruteforce_alarms: u64,
    /// Parent links made.
    pub links: u64,
    /// Open messages dropped because they were idle too long or over the cap.
    pub evicted: u64,
}

type QueueMap<V> = HashMap<Arc<str>, HashMap<Arc<str>, V>>;

/// Turns events, in log order, into [`Fact`]s. Deterministic: the same events in the
/// same order, from the same primed state, give the same facts.
#[derive(Debug, Default)]
pub struct Extractor {
    open: QueueMap<OpenMessage>,
    closed: QueueMap<ClosedMessage>,
    open_count: usize,
    latest: Option<DateTime<Utc>>,
    since_sweep: u64,
    stats: ExtractStats,
    /// Lives started by the line being processed whose first fact is still to go out.
    started: Vec<MessageKey>,
    /// Facts of the line being processed (kept to reuse its allocation).
    line_facts: Vec<Fact>,
    /// How many times each NOQUEUE decision has been seen in its instant (the row
    /// includes host and time), within [`NOQUEUE_OCCURRENCE_WINDOW`].
    noqueue_seen: HashMap<Noqueue, i32>,
    /// The same numbering for identical SASL failures.
    auth_seen: HashMap<AuthFailure, i32>,
    /// Counts failures per client address for `auth.bruteforce`; `None`: no alarms.
    bruteforce: Option<BruteforceWatch>,
    /// Header names (lower-case) whose header_checks INFO/WARN lines become message
    /// tags; empty (the default): no tags.
    tag_headers: Vec<String>,
}

impl Extractor {
    /// A fresh extractor with nothing in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tag messages by these headers (names compared case-insensitively): a cleanup
    /// header check line (`QID: info: header client-id: acme from …`, logged by a
    /// `header_checks` INFO or WARN action) for one of them sets the message tag
    /// `client-id` → `acme` ([`MessageUpdate::tags`]). An empty list (the default)
    /// tags nothing.
    pub fn with_tag_headers(mut self, headers: Vec<String>) -> Self {
        self.tag_headers = headers
            .into_iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        self
    }

    /// Raise [`Fact::AuthBruteforce`] alarms by `rule` (none by default).
    pub fn with_bruteforce(mut self, rule: BruteforceRule) -> Self {
        self.bruteforce = Some(BruteforceWatch::new(rule));
        self
    }

    /// Replay stored SASL failures (with their occurrence numbers), in time order:
    /// the numbering of identical failures goes on where an interrupted load stopped,
    /// and the brute-force window holds what it held then. Replay at least
    /// `2 × window` before the resume point (see [`crate::auth`]); no facts come out.
    pub fn prime_auth(&mut self, rows: impl IntoIterator<Item = (AuthFailure, i32)>) {
        for (row, occurrence) in rows {
            let latest = self.latest.map_or(row.at, |l| l.max(row.at));
            if let Some(watch) = &mut self.bruteforce {
                watch.observe(&row, occurrence, latest);
            }
            let seen = self.auth_seen.entry(row).or_insert(0);
            *seen = (*seen).max(occurrence);
        }
    }

    /// The number of this occurrence of `row` within its instant: 1 for the first.
    fn auth_occurrence(&mut self, row: &AuthFailure) -> i32 {
        if self.auth_seen.len() >= MAX_NOQUEUE_OCCURRENCES {
            let horizon = self.latest.unwrap_or(row.at) - NOQUEUE_OCCURRENCE_WINDOW;
            self.auth_seen.retain(|r, _| r.at >= horizon);
            if self.auth_seen.len() >= MAX_NOQUEUE_OCCURRENCES {
                self.auth_seen.clear();
            }
        }
        match self.auth_seen.get_mut(row) {
            Some(n) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                self.auth_seen.insert(row.clone(), 1);
                1
            }
        }
    }

    /// A SASL failure: its row and, when it crosses the threshold, an alarm.
    #[allow(clippy::too_many_arguments)]
    fn auth_failed(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        identifier: &str,
        client: &pftrack_parse::Peer<'_>,
        mechanism: &str,
        reason: &str,
        username: Option<&str>,
        aborted: bool,
        out: &mut impl FnMut(Fact),
    ) {
        self.stats.auth_failures += 1;
        let row = AuthFailure {
            host: host.clone(),
            at,
            service: identifier.to_owned(),
            client_name: client.name.to_owned(),
            client_addr: client.addr.to_owned(),
            client_port: client.port,
            method: mechanism.to_owned(),
            username: username.map(|u| bounded(u, MAX_AUTH_USERNAME_LEN)),
            reason: bounded(reason, MAX_AUTH_REASON_LEN),
            aborted,
        };
        let occurrence = self.auth_occurrence(&row);
        let latest = self.latest.unwrap_or(at);
        let alarm = self
            .bruteforce
            .as_mut()
            .and_then(|w| w.observe(&row, occurrence, latest));
        out(Fact::AuthFailure { row, occurrence });
        if let Some(alarm) = alarm {
            self.stats.bruteforce_alarms += 1;
            out(Fact::AuthBruteforce(alarm));
        }
    }

    /// The message tag a header check line gives, when it names a configured header.
    fn tag_of(&self, c: &ContentCheck<'_>) -> Option<BTreeMap<String, String>> {
        if self.tag_headers.is_empty() {
            return None;
        }
        let (name, value) = c.header()?;
        let name = self
            .tag_headers
            .iter()
            .find(|h| h.eq_ignore_ascii_case(name))?;
        Some(BTreeMap::from([(name.clone(), value.to_owned())]))
    }

    /// Rebuild memory from stored messages (open ones and recently closed ones).
    pub fn prime(&mut self, entries: impl IntoIterator<Item = PrimeEntry>) {
        for e in entries {
            let MessageKey {
                host,
                queue_id,
                arrived_at,
            } = e.key;
            match e.closed_at {
                Some(closed_at) => {
                    self.closed.entry(host).or_default().insert(
                        queue_id,
                        ClosedMessage {
                            arrived_at,
                            closed_at,
                        },
                    );
                }
                None => {
                    let msg = OpenMessage {
                        queue_id: queue_id.clone(),
                        arrived_at,
                        last_seen: e.last_seen_at,
                        origin_seen: matches!(e.origin, Some(Origin::Smtpd | Origin::Pickup)),
                        message_id_seen: e.message_id_seen,
                    };
                    if self
                        .open
                        .entry(host)
                        .or_default()
                        .insert(queue_id, msg)
                        .is_none()
                    {
                        self.open_count += 1;
                    }
                }
            }
        }
    }

    /// Remember how often identical NOQUEUE decisions were seen in their instant
    /// (stored rows of instants a resumed input had reached: their `count`), so that
    /// the numbering goes on where the interrupted load stopped.
    pub fn prime_noqueue(&mut self, rows: impl IntoIterator<Item = (Noqueue, i32)>) {
        for (row, count) in rows {
            let seen = self.noqueue_seen.entry(row).or_insert(0);
            *seen = (*seen).max(count);
        }
    }

    /// The number of this occurrence of `row` within its instant: 1 for the first.
    /// A NOQUEUE row's count is the highest number seen, so the same line read again
    /// (a re-run, another input holding the same lines) never adds to it.
    fn noqueue_occurrence(&mut self, row: &Noqueue) -> i32 {
        if self.noqueue_seen.len() >= MAX_NOQUEUE_OCCURRENCES {
            let horizon = self.latest.unwrap_or(row.at) - NOQUEUE_OCCURRENCE_WINDOW;
            self.noqueue_seen.retain(|r, _| r.at >= horizon);
            self.auth_seen.retain(|r, _| r.at >= horizon);
            if self.noqueue_seen.len() >= MAX_NOQUEUE_OCCURRENCES {
                // A flood of distinct decisions within the window: forget them all
                // (identical ones in one instant are then counted from one again).
                self.noqueue_seen.clear();
            }
        }
        match self.noqueue_seen.get_mut(row) {
            Some(n) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                self.noqueue_seen.insert(row.clone(), 1);
                1
            }
        }
    }

    /// What the extractor did so far.
    pub fn stats(&self) -> ExtractStats {
        self.stats
    }

    /// Number of open messages in memory.
    pub fn open_messages(&self) -> usize {
        self.open_count
    }

    /// Process one event logged by `daemon` on `host` at `at`, sending facts to `out`.
    /// (SASL failures then name `daemon` as their service; see
    /// [`Extractor::process_logged`].)
    pub fn process(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        daemon: &str,
        event: &Event<'_>,
        out: &mut impl FnMut(Fact),
    ) {
        self.process_logged(host, at, daemon, event, out);
    }

    /// Process one event logged on `host` at `at` under the syslog `identifier`
    /// (`postfix/submission/smtpd`; its last component is the daemon), sending facts
    /// to `out`.
    pub fn process_logged(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        identifier: &str,
        event: &Event<'_>,
        out: &mut impl FnMut(Fact),
    ) {
        self.stats.events += 1;
        self.maybe_sweep(at);
        let mut facts = std::mem::take(&mut self.line_facts);
        if let Event::SaslFailed {
            client,
            mechanism,
            reason,
            sasl_username,
            aborted,
        } = event
        {
            self.auth_failed(
                host,
                at,
                identifier,
                client,
                mechanism,
                reason,
                *sasl_username,
                *aborted,
                &mut |f| facts.push(f),
            );
        } else {
            let daemon = identifier
                .rfind('/')
                .map_or(identifier, |i| &identifier[i + 1..]);
            self.process_event(host, at, daemon, event, &mut |f| facts.push(f));
        }
        for mut fact in facts.drain(..) {
            if let Fact::Message {
                key, starts_life, ..
            } = &mut fact
                && let Some(i) = self.started.iter().position(|k| k == key)
            {
                self.started.swap_remove(i);
                *starts_life = true;
            }
            out(fact);
        }
        // Every branch that starts a life also emits a fact for it; nothing is left.
        self.started.clear();
        self.line_facts = facts;
    }

    fn process_event(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        daemon: &str,
        event: &Event<'_>,
        out: &mut impl FnMut(Fact),
    ) {
        match event {
            Event::SmtpdClient {
                queue_id,
                client,
                sasl_method,
                sasl_username,
                orig_queue_id,
                ..
            } => {
                let key = self.resolve(host, queue_id, at, Lookup::Origin);
                let mut update = MessageUpdate {
                    origin: Some(Origin::Smtpd),
                    client_name: client.map(|c| c.name.to_owned()),
                    client_addr: client.map(|c| c.addr.to_owned()),
                    sasl_method: sasl_method.map(str::to_owned),
                    sasl_username: sasl_username.map(str::to_owned),
                    ..MessageUpdate::default()
                };
                if let Some(orig) = orig_queue_id.filter(|orig| orig != queue_id)
                    && let Some(parent) = self.find_open(host, orig, at)
                    && parent.arrived_at <= key.arrived_at
                {
                    update.parent = Some(ParentLink {
                        queue_id: parent.queue_id,
                        arrived_at: parent.arrived_at,
                        kind: LinkKind::Reinjection,
                    });
                    self.stats.links += 1;
                }
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::Pickup {
                queue_id,
                uid,
                from,
            } => {
                let key = self.resolve(host, queue_id, at, Lookup::Origin);
                let update = MessageUpdate {
                    origin: Some(Origin::Pickup),
                    pickup_uid: uid.map(i64::from),
                    sender: Some((*from).to_owned()),
                    ..MessageUpdate::default()
                };
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::MessageId {
                queue_id,
                message_id,
                resent,
            } => {
                let lookup = if *resent {
                    Lookup::Attach
                } else {
                    Lookup::MessageId
                };
                let key = self.resolve(host, queue_id, at, lookup);
                let update = MessageUpdate {
                    message_id: (!*resent).then(|| (*message_id).to_owned()),
                    ..MessageUpdate::default()
                };
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::QueueActive {
                queue_id,
                from,
                size,
                nrcpt,
            } => {
                let key = self.resolve(host, queue_id, at, Lookup::Attach);
                let update = MessageUpdate {
                    sender: Some((*from).to_owned()),
                    size: size.and_then(|s| i64::try_from(s).ok()),
                    nrcpt: nrcpt.and_then(|n| i32::try_from(n).ok()),
                    ..MessageUpdate::default()
                };
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::Removed { queue_id } => {
                let key = self.resolve(host, queue_id, at, Lookup::Attach);
                self.close(host, &key, at);
                let update = MessageUpdate {
                    removed_at: Some(at),
                    ..MessageUpdate::default()
                };
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::Expired { queue_id, from, .. } => {
                let key = self.resolve(host, queue_id, at, Lookup::Attach);
                let update = MessageUpdate {
                    sender: Some((*from).to_owned()),
                    expired_at: Some(at),
                    ..MessageUpdate::default()
                };
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::Postsuper { queue_id, action } => {
                let key = self.resolve(host, queue_id, at, Lookup::Attach);
                let mut update = MessageUpdate::default();
                match action {
                    PostsuperAction::Removed => {
                        self.close(host, &key, at);
                        update.deleted_at = Some(at);
                        update.removed_at = Some(at);
                    }
                    PostsuperAction::PlacedOnHold => update.held_at = Some(at),
                    PostsuperAction::ReleasedFromHold => update.released_at = Some(at),
                    PostsuperAction::Requeued | PostsuperAction::Expired => {}
                }
                out(Fact::Message {
                    key,
                    starts_life: false,
                    seen_at: at,
                    update,
                });
            }
            Event::Delivery(d) => {
                let key = self.resolve(host, d.queue_id, at, Lookup::Attach);
                if let Some(child) = d.queued_as.filter(|q| *q != d.queue_id) {
                    self.link_continuation(host, &key, child, d.response, at, out);
                }
                let status = match d.status {
                    DeliveryStatus::Sent => RecipientStatus::Sent,
                    DeliveryStatus::Deferred => RecipientStatus::Deferred,
                    DeliveryStatus::Bounced | DeliveryStatus::Undeliverable => {
                        RecipientStatus::Bounced
                    }
                    DeliveryStatus::Expired => RecipientStatus::Expired,
                };
                let event = RecipientEvent {
                    at,
                    attempt: true,
                    status,
                    dsn: d.dsn.map(str::to_owned),
                    relay: d.relay.map(str::to_owned),
                    response: Some(d.response.to_owned()),
                    delay: d.delay,
                    delays: d
                        .delays
                        .map(|x| [x.before_qmgr, x.in_qmgr, x.conn_setup, x.transmission]),
                    queued_as: d.queued_as.map(str::to_owned),
                };
                self.stats.recipient_events += 1;
                out(Fact::Message {
                    key: key.clone(),
                    starts_life: false,
                    seen_at: at,
                    update: MessageUpdate::default(),
                });
                out(Fact::Recipient {
                    key,
                    recipient: d.to.to_owned(),
                    orig_recipient: d.orig_to.unwrap_or_default().to_owned(),
                    event,
                });
            }
            Event::Notification {
                queue_id,
                notification,
                new_queue_id,
            } => {
                let parent = self.resolve(host, queue_id, at, Lookup::Attach);
                out(Fact::Message {
                    key: parent.clone(),
                    starts_life: false,
                    seen_at: at,
                    update: MessageUpdate::default(),
                });
                if new_queue_id != queue_id {
                    let child = self.resolve(host, new_queue_id, at, Lookup::Attach);
                    let kind = match notification {
                        NotificationKind::NonDelivery => LinkKind::NonDelivery,
                        NotificationKind::Delay => LinkKind::Delay,
                        NotificationKind::Success => LinkKind::Success,
                        NotificationKind::Postmaster => LinkKind::Postmaster,
                    };
                    self.stats.links += 1;
                    let update = MessageUpdate {
                        origin: Some(Origin::Notification),
                        parent: Some(ParentLink {
                            queue_id: parent.queue_id,
                            arrived_at: parent.arrived_at,
                            kind,
                        }),
                        ..MessageUpdate::default()
                    };
                    out(Fact::Message {
                        key: child,
                        starts_life: false,
                        seen_at: at,
                        update,
                    });
                }
            }
            Event::Reject(r) => match r.queue_id {
                None => {
                    self.stats.noqueue += 1;
                    let row = noqueue(host, at, daemon, r);
                    let occurrence = self.noqueue_occurrence(&row);
                    out(Fact::Noqueue { row, occurrence });
                }
                Some(queue_id) => self.queued_reject(host, at, queue_id, r, out),
            },
            Event::ContentCheck(c) => self.content_check(host, at, c, out),
            _ => {}
        }
    }

    /// A reject, discard or hold of a message that already has a queue file.
    fn queued_reject(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        queue_id: &str,
        r: &Reject<'_>,
        out: &mut impl FnMut(Fact),
    ) {
        let key = self.resolve(host, queue_id, at, Lookup::Attach);
        let whole_message = matches!(r.stage, "END-OF-MESSAGE" | "DATA" | "BDAT");
        let mut update = MessageUpdate {
            sender: r.from.map(str::to_owned),
            ..MessageUpdate::default()
        };
        let status = match r.action {
            RejectAction::Reject | RejectAction::MilterReject | RejectAction::ProxyReject => {
                Some(RecipientStatus::Rejected)
            }
            RejectAction::Discard | RejectAction::MilterDiscard => Some(RecipientStatus::Discarded),
            RejectAction::Hold | RejectAction::MilterHold => {
                update.held_at = Some(at);
                None
            }
            _ => None,
        };
        let ends_message = match status {
            Some(RecipientStatus::Discarded) => true,
            Some(_) => whole_message || r.action == RejectAction::MilterReject,
            None => false,
        };
        if ends_message {
            update.rejected_at = Some(at);
            self.close(host, &key, at);
        }
        out(Fact::Message {
            key: key.clone(),
            starts_life: false,
            seen_at: at,
            update,
        });
        if let (Some(status), Some(to)) = (status, r.to) {
            let response = reply_text(r.code, r.dsn, r.text);
            out(self.refusal(key, to, at, status, r.dsn, response));
        }
    }

    /// A header/body check or milter action logged by cleanup.
    fn content_check(
        &mut self,
        host: &Arc<str>,
        at: DateTime<Utc>,
        c: &ContentCheck<'_>,
        out: &mut impl FnMut(Fact),
    ) {
        let key = self.resolve(host, c.queue_id, at, Lookup::Attach);
        let mut update = MessageUpdate {
            sender: c.from.map(str::to_owned),
            // Per-client attribution: a configured header's value becomes a tag.
            tags: self.tag_of(c),
            ..MessageUpdate::default()
        };
        let status = match c.action {
            RejectAction::Reject | RejectAction::MilterReject => Some(RecipientStatus::Rejected),
            RejectAction::Discard | RejectAction::MilterDiscard => Some(RecipientStatus::Discarded),
            RejectAction::Hold | RejectAction::MilterHold => {
                update.held_at = Some(at);
                None
            }
            _ => None,
        };
        if status.is_some() {
            update.rejected_at = Some(at);
            self.close(host, &key, at);
        }
        out(Fact::Message {
            key: key.clone(),
            starts_life: false,
            seen_at: at,
            update,
        });
        if let (Some(status), Some(to)) = (status, c.to) {
            let response = match c.text {
                Some(text) => format!("{} {}: {}", c.part, c.content, text),
                None => format!("{} {}", c.part, c.content),
            };
            out(self.refusal(key, to, at, status, None, response));
        }
    }

    /// The recipient fact of a reject or discard (not a delivery attempt).
    fn refusal(
        &mut self,
        key: MessageKey,
        to: &str,
        at: DateTime<Utc>,
        status: RecipientStatus,
        dsn: Option<&str>,
        response: String,
    ) -> Fact {
        self.stats.recipient_events += 1;
        Fact::Recipient {
            key,
            recipient: to.to_owned(),
            orig_recipient: String::new(),
            event: RecipientEvent {
                at,
                attempt: false,
                status,
                dsn: dsn.map(str::to_owned),
                relay: None,
                response: Some(response),
                delay: None,
                delays: None,
                queued_as: None,
            },
        }
    }

    /// `queued as CHILD` / `forwarded as CHILD` in a delivery: when CHILD is a message
    /// open on the same host that arrived no earlier, it continues this one.
    fn link_continuation(
        &mut self,
        host: &Arc<str>,
        parent: &MessageKey,
        child: &str,
        response: &str,
        at: DateTime<Utc>,
        out: &mut impl FnMut(Fact),
    ) {
        let Some(child) = self.find_open(host, child, at) else {
            return;
        };
        if child.arrived_at < parent.arrived_at {
            return;
        }
        let kind = if response.contains("forwarded as") {
            LinkKind::Forward
        } else {
            LinkKind::Reinjection
        };
        if let Some(msg) = self
            .open
            .get_mut(host)
            .and_then(|m| m.get_mut(&*child.queue_id))
        {
            msg.last_seen = msg.last_seen.max(at);
        }
        self.stats.links += 1;
        let update = MessageUpdate {
            parent: Some(ParentLink {
                queue_id: parent.queue_id.clone(),
                arrived_at: parent.arrived_at,
                kind,
            }),
            ..MessageUpdate::default()
        };
        out(Fact::Message {
            key: child,
            starts_life: false,
            seen_at: at,
            update,
        });
    }

    /// The open message with this queue id on this host, if any, without creating one.
    fn find_open(&self, host: &Arc<str>, queue_id: &str, at: DateTime<Utc>) -> Option<MessageKey> {
        let (qid, msg) = self.open.get(host)?.get_key_value(queue_id)?;
        msg.valid_at(at).then(|| MessageKey {
            host: host.clone(),
            queue_id: qid.clone(),
            arrived_at: msg.arrived_at,
        })
    }

    /// Find (or start) the life of `queue_id` this line belongs to, and mark it seen.
    fn resolve(
        &mut self,
        host: &Arc<str>,
        queue_id: &str,
        at: DateTime<Utc>,
        lookup: Lookup,
    ) -> MessageKey {
        let by_host = self.open.entry(host.clone()).or_default();
        if let Some(msg) = by_host.get_mut(queue_id) {
            // A once-per-life line from before the life's latest line is not a new life
            // (time does not run backwards for one queue id): it is the same lines read
            // again, through another input.
            let read_again = at >= msg.arrived_at && at < msg.last_seen;
            let reusable = msg.valid_at(at)
                && (read_again
                    || match lookup {
                        Lookup::Origin => !msg.origin_seen,
                        Lookup::MessageId => !msg.message_id_seen,
                        Lookup::Attach => true,
                    });
            if reusable {
                msg.last_seen = msg.last_seen.max(at);
                match lookup {
                    Lookup::Origin => msg.origin_seen = true,
                    Lookup::MessageId => msg.message_id_seen = true,
                    Lookup::Attach => {}
                }
                return MessageKey {
                    host: host.clone(),
                    queue_id: msg.queue_id.clone(),
                    arrived_at: msg.arrived_at,
                };
            }
        }
        if lookup == Lookup::Attach
            && let Some((qid, closed)) = self
                .closed
                .get(host)
                .and_then(|m| m.get_key_value(queue_id))
            && closed.valid_at(at)
        {
            return MessageKey {
                host: host.clone(),
                queue_id: qid.clone(),
                arrived_at: closed.arrived_at,
            };
        }
        // A line from before the close of the last life of this id cannot start a later
        // life: Postfix reuses a queue id only after the message was removed. It is the
        // same lines read again (a copy of the log through another input, after that
        // life was loaded): the closed life is opened again under its own key, which
        // exists already (so it does not count as started).
        let closed = self.closed.get(host).and_then(|m| m.get(queue_id)).copied();
        if let Some(c) = closed
            && at >= c.arrived_at
            && at < c.closed_at
            && !by_host.contains_key(queue_id)
        {
            let qid: Arc<str> = Arc::from(queue_id);
            by_host.insert(
                qid.clone(),
                OpenMessage {
                    queue_id: qid.clone(),
                    arrived_at: c.arrived_at,
                    last_seen: at,
                    origin_seen: lookup == Lookup::Origin,
                    message_id_seen: lookup == Lookup::MessageId,
                },
            );
            self.open_count += 1;
            if let Some(m) = self.closed.get_mut(host) {
                m.remove(queue_id);
            }
            return MessageKey {
                host: host.clone(),
                queue_id: qid,
                arrived_at: c.arrived_at,
            };
        }
        // A new life of this queue id. Classic syslog stamps have whole seconds, so a
        // life that starts in the same second as the previous one of this id would get
        // its key; the arrival is moved a microsecond past the previous one instead.
        // (Only a previous life that had ended by then: see above.)
        let previous = by_host
            .get(queue_id)
            .map(|m| m.arrived_at)
            .into_iter()
            .chain(closed.filter(|c| c.closed_at <= at).map(|c| c.arrived_at))
            .max();
        let arrived_at = match previous {
            Some(p) if p >= at => p + TimeDelta::microseconds(1),
            _ => at,
        };
        let qid: Arc<str> = Arc::from(queue_id);
        let msg = OpenMessage {
            queue_id: qid.clone(),
            arrived_at,
            last_seen: at,
            origin_seen: lookup == Lookup::Origin,
            message_id_seen: lookup == Lookup::MessageId,
        };
        if by_host.insert(qid.clone(), msg).is_none() {
            self.open_count += 1;
        }
        self.stats.messages += 1;
        let key = MessageKey {
            host: host.clone(),
            queue_id: qid,
            arrived_at,
        };
        self.started.push(key.clone());
        key
    }

    /// End the life of an open message (it stays reachable for [`CLOSED_GRACE`]).
    fn close(&mut self, host: &Arc<str>, key: &MessageKey, at: DateTime<Utc>) {
        let Some(by_host) = self.open.get_mut(host) else {
            return;
        };
        let matches = by_host
            .get(&*key.queue_id)
            .is_some_and(|m| m.arrived_at == key.arrived_at);
        if matches {
            by_host.remove(&*key.queue_id);
            self.open_count -= 1;
            self.closed.entry(host.clone()).or_default().insert(
                key.queue_id.clone(),
                ClosedMessage {
                    arrived_at: key.arrived_at,
                    closed_at: at,
                },
            );
        }
    }

    /// Drop entries that can no longer match: idle open messages, closed ones past
    /// their grace, and the least recently seen beyond [`MAX_OPEN_MESSAGES`].
    fn maybe_sweep(&mut self, at: DateTime<Utc>) {
        let latest = self.latest.map_or(at, |l| l.max(at));
        self.latest = Some(latest);
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_INTERVAL_LINES && self.open_count <= MAX_OPEN_MESSAGES {
            return;
        }
        self.since_sweep = 0;
        let mut evicted = 0u64;
        for by_host in self.open.values_mut() {
            by_host.retain(|_, m| {
                let keep = m.last_seen + MAX_MESSAGE_IDLE >= latest;
                evicted += u64::from(!keep);
                keep
            });
        }
        for by_host in self.closed.values_mut() {
            by_host.retain(|_, c| c.closed_at + CLOSED_GRACE >= latest);
        }
        let horizon = latest - NOQUEUE_OCCURRENCE_WINDOW;
        self.noqueue_seen.retain(|r, _| r.at >= horizon);
        let mut count: usize = self.open.values().map(HashMap::len).sum();
        if count > MAX_OPEN_MESSAGES {
            let mut seen: Vec<DateTime<Utc>> = self
                .open
                .values()
                .flat_map(|m| m.values().map(|o| o.last_seen))
                .collect();
            seen.sort_unstable();
            // Keep the newest half of the cap, so sweeps of this kind stay rare.
            let cutoff = seen[count - MAX_OPEN_MESSAGES / 2];
            for by_host in self.open.values_mut() {
                by_host.retain(|_, m| {
                    let keep = m.last_seen >= cutoff;
                    evicted += u64::from(!keep);
                    keep
                });
            }
            count = self.open.values().map(HashMap::len).sum();
        }
        self.open_count = count;
        self.stats.evicted += evicted;
    }
}

fn reply_text(code: Option<u16>, dsn: Option<&str>, text: &str) -> String {
    match (code, dsn) {
        (Some(c), Some(d)) => format!("{c} {d} {text}"),
        (Some(c), None) => format!("{c} {text}"),
        (None, Some(d)) => format!("{d} {text}"),
        (None, None) => text.to_owned(),
    }
}

fn noqueue(host: &Arc<str>, at: DateTime<Utc>, daemon: &str, r: &Reject<'_>) -> Noqueue {
    Noqueue {
        host: host.clone(),
        at,
        daemon: daemon.to_owned(),
        action: action_name(r.action).to_owned(),
        stage: r.stage.to_owned(),
        client_name: r.client.map(|c| c.name.to_owned()),
        client_addr: r.client.map(|c| c.addr.to_owned()),
        code: r.code.map(i32::from),
        dsn: r.dsn.map(str::to_owned),
        reason: r.text.to_owned(),
        sender: r.from.map(str::to_owned),
        recipient: r.to.map(str::to_owned),
        helo: r.helo.map(str::to_owned),
        proto: r.proto.map(str::to_owned),
    }
}

fn action_name(a: RejectAction) -> &'static str {
    match a {
        RejectAction::Reject => "reject",
        RejectAction::Defer => "defer",
        RejectAction::Warn => "warn",
        RejectAction::Hold => "hold",
        RejectAction::Discard => "discard",
        RejectAction::Filter => "filter",
        RejectAction::Redirect => "redirect",
        RejectAction::RejectWarning => "reject_warning",
        RejectAction::MilterReject => "milter-reject",
        RejectAction::MilterDiscard => "milter-discard",
        RejectAction::MilterHold => "milter-hold",
        RejectAction::ProxyReject => "proxy-reject",
        RejectAction::ProxyAccept => "proxy-accept",
        RejectAction::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Run `(time, daemon, message)` lines through one extractor into one batch.
    fn run(ex: &mut Extractor, lines: &[(&str, &str, &str)]) -> Batch {
        let host: Arc<str> = Arc::from("mx1");
        let mut batch = Batch::new();
        for (t, daemon, msg) in lines {
            let event = pftrack_parse::parse(daemon, msg);
            ex.process(&host, at(t), daemon, &event, &mut |f| batch.add(f));
        }
        batch
    }

    fn arrivals(batch: &Batch) -> Vec<DateTime<Utc>> {
        let mut v: Vec<_> = batch.messages.keys().map(|k| k.arrived_at).collect();
        v.sort();
        v
    }

    #[test]
    fn reuse_in_the_same_second_gets_a_distinct_key() {
        let mut ex = Extractor::new();
        let b = run(
            &mut ex,
            &[
                (
                    "2025-03-14T08:07:59Z",
                    "smtpd",
                    "0F4D2CD4CF: client=a.example[192.0.2.1]",
                ),
                ("2025-03-14T08:07:59Z", "qmgr", "0F4D2CD4CF: removed"),
                (
                    "2025-03-14T08:07:59Z",
                    "smtpd",
                    "0F4D2CD4CF: client=b.example[192.0.2.2]",
                ),
                ("2025-03-14T08:07:59Z", "qmgr", "0F4D2CD4CF: removed"),
            ],
        );
        let a = arrivals(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1] - a[0], TimeDelta::microseconds(1));
    }

    #[test]
    fn second_client_line_starts_a_new_life_without_removed() {
        let mut ex = Extractor::new();
        let b = run(
            &mut ex,
            &[
                (
                    "2025-03-14T13:30:00Z",
                    "smtpd",
                    "8D9E0F1A2B: client=a.example[192.0.2.1]",
                ),
                (
                    "2025-03-14T14:45:00Z",
                    "smtpd",
                    "8D9E0F1A2B: client=b.example[192.0.2.2]",
                ),
                ("2025-03-14T14:45:01Z", "qmgr", "8D9E0F1A2B: removed"),
            ],
        );
        assert_eq!(
            arrivals(&b),
            vec![at("2025-03-14T13:30:00Z"), at("2025-03-14T14:45:00Z")]
        );
    }

    #[test]
    fn notification_link_does_not_depend_on_line_order() {
        let lines_bounce_first = [
            (
                "2025-03-14T07:00:01Z",
                "smtpd",
                "2D9E8F7A6B: client=a.example[192.0.2.1]",
            ),
            (
                "2025-03-14T07:00:03Z",
                "bounce",
                "2D9E8F7A6B: sender non-delivery notification: 3E0F1A2B3C",
            ),
            (
                "2025-03-14T07:00:03Z",
                "cleanup",
                "3E0F1A2B3C: message-id=<ndr@mx1>",
            ),
        ];
        let lines_cleanup_first = [
            lines_bounce_first[0],
            lines_bounce_first[2],
            lines_bounce_first[1],
        ];
        for lines in [&lines_bounce_first[..], &lines_cleanup_first[..]] {
            let b = run(&mut Extractor::new(), lines);
            let child = b
                .messages
                .iter()
                .find(|(k, _)| &*k.queue_id == "3E0F1A2B3C")
                .unwrap();
            let parent = child.1.update.parent.as_ref().expect("linked");
            assert_eq!(&*parent.queue_id, "2D9E8F7A6B");
            assert_eq!(parent.kind, LinkKind::NonDelivery);
            assert_eq!(child.1.update.message_id.as_deref(), Some("ndr@mx1"));
        }
    }

    #[test]
    fn late_line_after_removed_attaches_within_the_grace() {
        let mut ex = Extractor::new();
        let b = run(
            &mut ex,
            &[
                (
                    "2025-03-14T07:00:01Z",
                    "smtpd",
                    "2D9E8F7A6B: client=a.example[192.0.2.1]",
                ),
                ("2025-03-14T07:00:03Z", "qmgr", "2D9E8F7A6B: removed"),
                (
                    "2025-03-14T07:00:04Z",
                    "postsuper",
                    "2D9E8F7A6B: placed on hold",
                ),
            ],
        );
        assert_eq!(b.messages.len(), 1);
        // Past the grace it is another life.
        let b = run(
            &mut ex,
            &[("2025-03-14T07:01:00Z", "qmgr", "2D9E8F7A6B: removed")],
        );
        assert_eq!(arrivals(&b), vec![at("2025-03-14T07:01:00Z")]);
    }

    #[test]
    fn priming_from_stored_rows_continues_like_one_run() {
        let first = [
            (
                "2025-03-14T08:00:00Z",
                "smtpd",
                "6C7D8E9F0A: client=a.example[192.0.2.1]",
            ),
            (
                "2025-03-14T08:00:00Z",
                "cleanup",
                "6C7D8E9F0A: message-id=<m@a>",
            ),
        ];
        let second = [
            (
                "2025-03-14T08:10:00Z",
                "cleanup",
                "6C7D8E9F0A: message-id=<m2@a>",
            ),
            ("2025-03-14T08:10:01Z", "qmgr", "6C7D8E9F0A: removed"),
        ];
        // One run.
        let mut one = Extractor::new();
        run(&mut one, &first);
        let expected = arrivals(&run(&mut one, &second));
        // A restart between the halves, primed from what the first half stored.
        let stored = run(&mut Extractor::new(), &first);
        let prime = stored.messages.iter().map(|(k, row)| PrimeEntry {
            key: k.clone(),
            last_seen_at: row.last_seen_at,
            origin: row.update.origin,
            message_id_seen: row.update.message_id.is_some(),
            closed_at: row.update.removed_at.or(row.update.rejected_at),
        });
        let mut resumed = Extractor::new();
        resumed.prime(prime);
        assert_eq!(arrivals(&run(&mut resumed, &second)), expected);
        // The second message-id line started a new life in both.
        assert_eq!(expected, vec![at("2025-03-14T08:10:00Z")]);
    }

    #[test]
    fn idle_messages_are_forgotten_and_memory_stays_bounded() {
        let mut ex = Extractor::new();
        let host: Arc<str> = Arc::from("mx1");
        let start = at("2025-01-01T00:00:00Z");
        for i in 0..(SWEEP_INTERVAL_LINES * 2) {
            // Messages that never end, one every 30 s: only a week's worth may stay.
            let t = start + TimeDelta::seconds(i as i64 * 30);
            let msg = format!("{:010X}: client=a.example[192.0.2.1]", i);
            let event = pftrack_parse::parse("smtpd", &msg);
            ex.process(&host, t, "smtpd", &event, &mut |_| {});
        }
        let week_of_lines = (MAX_MESSAGE_IDLE.num_seconds() / 30) as usize;
        assert!(ex.open_messages() <= week_of_lines + SWEEP_INTERVAL_LINES as usize);
        assert!(ex.stats().evicted > 0);
    }

    #[test]
    fn only_the_first_fact_of_a_started_life_says_so() {
        let host: Arc<str> = Arc::from("mx1");
        let lines = [
            (
                "2025-03-14T08:00:00Z",
                "smtpd",
                "4A1B2C3D4E: client=a.example[192.0.2.1]",
            ),
            (
                "2025-03-14T08:00:00Z",
                "cleanup",
                "4A1B2C3D4E: message-id=<m1@example>",
            ),
            // The bounce starts the notification's life before its own lines.
            (
                "2025-03-14T08:00:01Z",
                "bounce",
                "4A1B2C3D4E: sender non-delivery notification: 5F6A7B8C9D",
            ),
            (
                "2025-03-14T08:00:01Z",
                "qmgr",
                "5F6A7B8C9D: from=<>, size=2000, nrcpt=1 (queue active)",
            ),
            ("2025-03-14T08:00:02Z", "qmgr", "4A1B2C3D4E: removed"),
            // The same id again later: a new life, which starts again.
            (
                "2025-03-14T09:00:00Z",
                "smtpd",
                "4A1B2C3D4E: client=b.example[192.0.2.2]",
            ),
        ];
        let mut starts = Vec::new();
        let mut ex = Extractor::new();
        for (t, daemon, msg) in lines {
            let event = pftrack_parse::parse(daemon, msg);
            ex.process(&host, at(t), daemon, &event, &mut |f| {
                if let Fact::Message {
                    key, starts_life, ..
                } = f
                {
                    starts.push((key.queue_id.to_string(), key.arrived_at, starts_life));
                }
            });
        }
        let started: Vec<_> = starts
            .iter()
            .filter(|s| s.2)
            .map(|s| (&*s.0, s.1))
            .collect();
        assert_eq!(
            started,
            vec![
                ("4A1B2C3D4E", at("2025-03-14T08:00:00Z")),
                ("5F6A7B8C9D", at("2025-03-14T08:00:01Z")),
                ("4A1B2C3D4E", at("2025-03-14T09:00:00Z")),
            ]
        );

        // A primed message is known: its next line does not start it.
        let mut resumed = Extractor::new();
        resumed.prime([PrimeEntry {
            key: MessageKey {
                host: host.clone(),
                queue_id: Arc::from("5F6A7B8C9D"),
                arrived_at: at("2025-03-14T08:00:01Z"),
            },
            last_seen_at: at("2025-03-14T08:00:01Z"),
            origin: Some(Origin::Notification),
            message_id_seen: false,
            closed_at: None,
        }]);
        let event = pftrack_parse::parse("qmgr", "5F6A7B8C9D: removed");
        let mut flags = Vec::new();
        resumed.process(
            &host,
            at("2025-03-14T08:00:03Z"),
            "qmgr",
            &event,
            &mut |f| {
                if let Fact::Message { starts_life, .. } = f {
                    flags.push(starts_life);
                }
            },
        );
        assert_eq!(flags, vec![false]);
    }

    /// Lines of one message with two client-id header check lines (INFO, then WARN
    /// with another case and value) and an unlisted header.
    const TAGGED: &[(&str, &str, &str)] = &[
        (
            "2025-03-14T08:00:00Z",
            "smtpd",
            "3F1A2B4C5D: client=app.example[192.0.2.7]",
        ),
        (
            "2025-03-14T08:00:00Z",
            "cleanup",
            "3F1A2B4C5D: info: header client-id: acme from app.example[192.0.2.7]; from=<a@example.com> to=<b@example.net> proto=ESMTP helo=<app>",
        ),
        (
            "2025-03-14T08:00:00Z",
            "cleanup",
            "3F1A2B4C5D: info: header X-Mailer: Acme 1.0 from app.example[192.0.2.7]; from=<a@example.com> to=<b@example.net> proto=ESMTP helo=<app>",
        ),
        (
            "2025-03-14T08:00:01Z",
            "cleanup",
            "3F1A2B4C5D: warning: header Client-ID: acme-batch from app.example[192.0.2.7]; from=<a@example.com> to=<b@example.net> proto=ESMTP helo=<app>: tagged",
        ),
        ("2025-03-14T08:00:02Z", "qmgr", "3F1A2B4C5D: removed"),
    ];

    #[test]
    fn configured_headers_become_tags_later_value_wins() {
        let mut ex = Extractor::new().with_tag_headers(vec!["CLIENT-ID".into(), " ".into()]);
        let b = run(&mut ex, TAGGED);
        let row = b.messages.values().next().unwrap();
        assert_eq!(
            row.update.tags,
            Some(BTreeMap::from([("client-id".into(), "acme-batch".into())]))
        );
        // Line by line, the first header check line carries the first value.
        let mut ex = Extractor::new().with_tag_headers(vec!["client-id".into(), "x-mailer".into()]);
        let mut tags = Vec::new();
        let host: Arc<str> = Arc::from("mx1");
        for (t, daemon, msg) in TAGGED {
            let event = pftrack_parse::parse(daemon, msg);
            ex.process(&host, at(t), daemon, &event, &mut |f| {
                if let Fact::Message { update, .. } = f {
                    tags.push(update.tags);
                }
            });
        }
        assert_eq!(
            tags,
            vec![
                None,
                Some(BTreeMap::from([("client-id".into(), "acme".into())])),
                Some(BTreeMap::from([("x-mailer".into(), "Acme 1.0".into())])),
                Some(BTreeMap::from([("client-id".into(), "acme-batch".into())])),
                None,
            ]
        );
    }

    #[test]
    fn no_tag_headers_no_tags() {
        let b = run(&mut Extractor::new(), TAGGED);
        assert!(b.messages.values().all(|r| r.update.tags.is_none()));
        let b = run(&mut Extractor::new().with_tag_headers(vec![]), TAGGED);
        assert!(b.messages.values().all(|r| r.update.tags.is_none()));
    }

    #[test]
    fn tags_merge_per_name() {
        let mut first = MessageUpdate {
            tags: Some(BTreeMap::from([
                ("client-id".into(), "a".into()),
                ("x-mailer".into(), "m".into()),
            ])),
            ..MessageUpdate::default()
        };
        first.merge(MessageUpdate::default());
        first.merge(MessageUpdate {
            tags: Some(BTreeMap::from([("client-id".into(), "b".into())])),
            ..MessageUpdate::default()
        });
        assert_eq!(
            first.tags,
            Some(BTreeMap::from([
                ("client-id".into(), "b".into()),
                ("x-mailer".into(), "m".into()),
            ]))
        );
    }

    #[test]
    fn sasl_failures_are_numbered_and_primed_like_one_run() {
        let host: Arc<str> = Arc::from("mx1");
        let line = "warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: \
                    (reason unavailable), sasl_username=admin";
        let lines = [
            ("2025-03-14T11:00:00Z", line),
            ("2025-03-14T11:00:00Z", line),
            ("2025-03-14T11:00:01Z", line),
        ];
        let rule = BruteforceRule {
            threshold: 3,
            window: TimeDelta::seconds(60),
        };
        let feed = |ex: &mut Extractor, lines: &[(&str, &str)]| {
            let mut batch = Batch::new();
            for (t, msg) in lines {
                let event = pftrack_parse::parse("smtpd", msg);
                ex.process_logged(&host, at(t), "postfix/submission/smtpd", &event, &mut |f| {
                    batch.add(f)
                });
            }
            batch
        };
        let whole = feed(&mut Extractor::new().with_bruteforce(rule), &lines);
        let numbers: Vec<i32> = whole.auth_failures.iter().map(|(_, n)| *n).collect();
        assert_eq!(numbers, vec![1, 2, 1]);
        assert_eq!(whole.auth_failures[0].0.service, "postfix/submission/smtpd");
        assert_eq!(whole.auth_failures[0].0.username.as_deref(), Some("admin"));
        assert!(!whole.auth_failures[0].0.reverse_dns_known());
        assert_eq!(whole.auth_alarms.len(), 1);
        assert_eq!(whole.auth_alarms[0].at, at("2025-03-14T11:00:01Z"));
        assert!(whole.messages.is_empty() && whole.noqueue.is_empty());

        // Resumed after the second line: primed with what was stored, the same facts.
        let mut resumed = Extractor::new().with_bruteforce(rule);
        resumed.prime_auth(whole.auth_failures[..2].iter().cloned());
        let rest = feed(&mut resumed, &lines[2..]);
        assert_eq!(rest.auth_failures, whole.auth_failures[2..].to_vec());
        assert_eq!(rest.auth_alarms, whole.auth_alarms);
        // Without priming, the same line would be counted from scratch: no alarm.
        let cold = feed(&mut Extractor::new().with_bruteforce(rule), &lines[2..]);
        assert!(cold.auth_alarms.is_empty());
    }
}
