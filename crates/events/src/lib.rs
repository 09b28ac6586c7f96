//! Events: the delivery facts that systems outside pftrack must react to (a dead
//! mailbox, an expired message), chosen by rules from the configuration.
//!
//! This crate decides **which** facts become events ([`EventRules`]), gives each event
//! a stable id derived only from the fact ([`recipient_failed_id`],
//! [`message_expired_id`]) and builds its JSON payload. The store writes the events
//! into the `event_outbox` table in the same transaction as the delivery rows, and the
//! id is the outbox's primary key: a re-run, a resume or the same lines through a
//! second input produce the same id, so a fact never becomes a second event.
//!
//! It is **not** a sink or a dispatcher: it does no I/O, knows nothing of PostgreSQL,
//! HTTP or the classifier (the caller passes the verdict's reason, hardness and rule).

pub mod auth;
pub mod lasting;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The kinds of event pftrack produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A recipient failed hard for a reason that is the recipient's (by default
    /// userunknown, hostunknown, suspend, hasmoved, mailboxfull).
    RecipientFailed,
    /// A message stayed in the queue past `maximal_queue_lifetime` and was returned.
    MessageExpired,
    /// Repeated SASL authentication failures from one client (a password-guessing
    /// attack); its id and payload live in the `auth` module.
    AuthBruteforce,
    /// A non-delivery notification (bounce) went back to a message's sender; its id
    /// and payload live in the `lasting` module.
    MessageBouncedBack,
    /// A recipient is still deferred a configured time after its message arrived
    /// (found by a periodic sweep, `lasting` module).
    RecipientDeferredLong,
}

impl EventType {
    /// Every type, in a stable order.
    pub const ALL: [EventType; 5] = [
        EventType::RecipientFailed,
        EventType::MessageExpired,
        EventType::AuthBruteforce,
        EventType::MessageBouncedBack,
        EventType::RecipientDeferredLong,
    ];

    /// The name in payloads and in the outbox (`recipient.failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RecipientFailed => "recipient.failed",
            EventType::MessageExpired => "message.expired",
            EventType::AuthBruteforce => "auth.bruteforce",
            EventType::MessageBouncedBack => "message.bounced_back",
            EventType::RecipientDeferredLong => "recipient.deferred_long",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reasons (of the classification taxonomy) for which a hard failure is the
/// recipient's fault and fires `recipient.failed` by default. Sender-reputation
/// blocks (`blocklisted`, `spam`, `policy`…) are not the recipient's fault.
///
/// `mailboxfull` fires here on a *hard* failure (the remote side bounced with 5.2.2);
/// a soft mailbox-full deferral that persists fires `recipient.failed` through the
/// sweep of [`lasting`] ("mailboxfull held over N days").
pub const DEFAULT_RECIPIENT_FAILED_REASONS: [&str; 5] = [
    "userunknown",
    "hostunknown",
    "suspend",
    "hasmoved",
    "mailboxfull",
];

/// Which facts become events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRules {
    /// Facts before this instant never become events (backfills of history do not
    /// fire); `None`: no lower bound (a deliberate replay).
    pub since: Option<DateTime<Utc>>,
    /// Reasons for which a hard recipient failure fires `recipient.failed`.
    pub recipient_failed_reasons: Vec<String>,
    /// Whether `message.expired` fires.
    pub message_expired: bool,
    /// Whether `message.bounced_back` fires.
    pub message_bounced_back: bool,
}

impl Default for EventRules {
    /// The default rules, without a lower bound.
    fn default() -> Self {
        EventRules {
            since: None,
            recipient_failed_reasons: DEFAULT_RECIPIENT_FAILED_REASONS
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
            message_expired: true,
            message_bounced_back: true,
        }
    }
}

impl EventRules {
    /// Whether a fact at `at` is recent enough to be an event.
    pub fn in_window(&self, at: DateTime<Utc>) -> bool {
        self.since.is_none_or(|since| at >= since)
    }

    /// Whether a recipient failure at `at` (`hard`, classified `reason`) fires
    /// `recipient.failed`.
    pub fn recipient_failed(&self, at: DateTime<Utc>, hard: Option<bool>, reason: &str) -> bool {
        hard == Some(true)
            && self.in_window(at)
            && self.recipient_failed_reasons.iter().any(|r| r == reason)
    }

    /// Whether a notification that arrived at `at` for a bounce fires
    /// `message.bounced_back`.
    pub fn message_bounced_back(&self, at: DateTime<Utc>) -> bool {
        self.message_bounced_back && self.in_window(at)
    }

    /// Whether a message that expired at `at` fires `message.expired`.
    pub fn message_expired(&self, at: DateTime<Utc>) -> bool {
        self.message_expired && self.in_window(at)
    }
}

/// Two independent 64-bit FNV-1a hashes (different offset bases) over tagged fields.
struct IdHasher {
    a: u64,
    b: u64,
}

impl IdHasher {
    const PRIME: u64 = 0x0100_0000_01b3;

    fn new() -> IdHasher {
        // The FNV-1a offset basis, and for the second hash the basis of the FNV-1
        // specification's derivation with another seed text: both fixed forever.
        IdHasher {
            a: 0xcbf2_9ce4_8422_2325,
            b: 0x6c62_272e_07bb_0142,
        }
    }

    fn byte(&mut self, x: u8) {
        self.a = (self.a ^ u64::from(x)).wrapping_mul(Self::PRIME);
        // The second hash sees every byte complemented: independent of the first.
        self.b = (self.b ^ u64::from(!x)).wrapping_mul(Self::PRIME);
    }

    /// A field: a presence tag, its bytes, a terminator (so that `None`, `""` and the
    /// boundaries between fields stay apart).
    fn field(&mut self, s: Option<&[u8]>) -> &mut IdHasher {
        self.byte(u8::from(s.is_some()));
        for &x in s.unwrap_or_default() {
            self.byte(x);
        }
        self.byte(0xff);
        self
    }

    fn str(&mut self, s: &str) -> &mut IdHasher {
        self.field(Some(s.as_bytes()))
    }

    fn time(&mut self, t: DateTime<Utc>) -> &mut IdHasher {
        self.field(Some(&t.timestamp_micros().to_be_bytes()))
    }

    fn id(&self) -> String {
        format!("evt_{:016x}{:016x}", self.a, self.b)
    }
}

/// The id of the `recipient.failed` event of one attempt: `evt_` and 32 hex digits,
/// derived only from type, host, queue id, arrival (µs), recipient, original
/// recipient, attempt time (µs) and status. Stable across runs and versions: it is the
/// outbox's primary key.
#[allow(clippy::too_many_arguments)]
pub fn recipient_failed_id(
    host: &str,
    queue_id: &str,
    arrived_at: DateTime<Utc>,
    recipient: &str,
    orig_recipient: &str,
    attempt_at: DateTime<Utc>,
    status: &str,
) -> String {
    IdHasher::new()
        .str(EventType::RecipientFailed.as_str())
        .str(host)
        .str(queue_id)
        .time(arrived_at)
        .str(recipient)
        .str(orig_recipient)
        .time(attempt_at)
        .str(status)
        .id()
}

/// The id of the `message.expired` event of a message (type, host, queue id, arrival
/// in µs). Stable across runs and versions.
pub fn message_expired_id(host: &str, queue_id: &str, arrived_at: DateTime<Utc>) -> String {
    IdHasher::new()
        .str(EventType::MessageExpired.as_str())
        .str(host)
        .str(queue_id)
        .time(arrived_at)
        .id()
}

/// A time as in payloads: RFC 3339, UTC, microseconds.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A recipient's failed attempt, with the classifier's verdict.
#[derive(Debug, Clone, Copy)]
pub struct RecipientFailure<'a> {
    /// Host that logged it.
    pub host: &'a str,
    /// Queue id of the message.
    pub queue_id: &'a str,
    /// When the message arrived.
    pub arrived_at: DateTime<Utc>,
    /// Recipient address.
    pub recipient: &'a str,
    /// Original recipient (`""` when none).
    pub orig_recipient: &'a str,
    /// `bounced`, `deferred`, …
    pub status: &'a str,
    /// Enhanced status code.
    pub dsn: Option<&'a str>,
    /// Classified reason.
    pub reason: &'a str,
    /// Whether the failure is permanent.
    pub hard: Option<bool>,
    /// Rule that classified it.
    pub rule: &'a str,
    /// Relay tried.
    pub relay: Option<&'a str>,
    /// The remote response or Postfix's text.
    pub response: Option<&'a str>,
    /// When the attempt happened.
    pub attempt_at: DateTime<Utc>,
}

impl RecipientFailure<'_> {
    /// The event's id ([`recipient_failed_id`]).
    pub fn id(&self) -> String {
        recipient_failed_id(
            self.host,
            self.queue_id,
            self.arrived_at,
            self.recipient,
            self.orig_recipient,
            self.attempt_at,
            self.status,
        )
    }

    /// The payload of the event with id `id`.
    pub fn payload(&self, id: &str) -> Value {
        json!({
            "type": EventType::RecipientFailed.as_str(),
            "id": id,
            "timestamp": stamp(self.attempt_at),
            "data": {
                "host": self.host,
                "queue_id": self.queue_id,
                "arrived_at": stamp(self.arrived_at),
                "recipient": self.recipient,
                "orig_recipient": (!self.orig_recipient.is_empty()).then_some(self.orig_recipient),
                "status": self.status,
                "dsn": self.dsn,
                "reason": self.reason,
                "hard": self.hard,
                "rule": self.rule,
                "relay": self.relay,
                "response": self.response,
                "attempt_at": stamp(self.attempt_at),
            }
        })
    }
}

/// A message that expired.
#[derive(Debug, Clone, Copy)]
pub struct MessageExpiry<'a> {
    /// Host that logged it.
    pub host: &'a str,
    /// Queue id of the message.
    pub queue_id: &'a str,
    /// When the message arrived.
    pub arrived_at: DateTime<Utc>,
    /// When it expired.
    pub expired_at: DateTime<Utc>,
}

impl MessageExpiry<'_> {
    /// The event's id ([`message_expired_id`]).
    pub fn id(&self) -> String {
        message_expired_id(self.host, self.queue_id, self.arrived_at)
    }

    /// The payload of the event with id `id`.
    pub fn payload(&self, id: &str) -> Value {
        json!({
            "type": EventType::MessageExpired.as_str(),
            "id": id,
            "timestamp": stamp(self.expired_at),
            "data": {
                "host": self.host,
                "queue_id": self.queue_id,
                "arrived_at": stamp(self.arrived_at),
                "expired_at": stamp(self.expired_at),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 123_456_000).unwrap()
    }

    fn failure() -> RecipientFailure<'static> {
        RecipientFailure {
            host: "mx1",
            queue_id: "4E5F6A7B8C",
            arrived_at: t(1_741_950_000),
            recipient: "ghost@remote.example.net",
            orig_recipient: "",
            status: "bounced",
            dsn: Some("5.1.1"),
            reason: "userunknown",
            hard: Some(true),
            rule: "dsn-5.1.1",
            relay: Some("mx.remote.example.net[198.51.100.50]:25"),
            response: Some("550 5.1.1 User unknown"),
            attempt_at: t(1_741_950_001),
        }
    }

    #[test]
    fn ids_are_stable_across_versions() {
        // These values are part of the outbox's keys: they must never change. They
        // were checked against an independent implementation (Python, docs/events.md).
        assert_eq!(failure().id(), "evt_76f8292a6d1896bcf6ef3b9de6095c7b");
        assert_eq!(
            message_expired_id("mx1", "5A1B2C3D4E", t(1_741_593_600)),
            "evt_479e945767d7f86f24ef4688074372dc"
        );
    }

    #[test]
    fn ids_depend_on_every_fact_field_and_only_on_them() {
        let base = failure();
        let id = base.id();
        assert_eq!(id.len(), 4 + 32);
        assert!(id.starts_with("evt_"));
        let variants = [
            RecipientFailure {
                host: "mx2",
                ..base
            },
            RecipientFailure {
                queue_id: "X",
                ..base
            },
            RecipientFailure {
                arrived_at: t(1),
                ..base
            },
            RecipientFailure {
                recipient: "a@b",
                ..base
            },
            RecipientFailure {
                orig_recipient: "a@b",
                ..base
            },
            RecipientFailure {
                attempt_at: t(2),
                ..base
            },
            RecipientFailure {
                status: "deferred",
                ..base
            },
        ];
        for v in variants {
            assert_ne!(v.id(), id, "{v:?}");
        }
        // The verdict and the texts are not part of the fact's identity.
        let reclassified = RecipientFailure {
            reason: "other",
            rule: "x",
            response: None,
            ..base
        };
        assert_eq!(reclassified.id(), id);
        // Field boundaries count.
        assert_ne!(
            recipient_failed_id("ab", "c", t(0), "r", "", t(0), "bounced"),
            recipient_failed_id("a", "bc", t(0), "r", "", t(0), "bounced")
        );
        assert_ne!(
            message_expired_id("mx1", "Q", t(0)),
            recipient_failed_id("mx1", "Q", t(0), "", "", t(0), "")
        );
    }

    #[test]
    fn payload_carries_the_fact() {
        let f = failure();
        let id = f.id();
        let p = f.payload(&id);
        assert_eq!(p["type"], "recipient.failed");
        assert_eq!(p["id"], id.as_str());
        assert_eq!(p["timestamp"], "2025-03-14T11:00:01.123456Z");
        assert_eq!(p["data"]["recipient"], "ghost@remote.example.net");
        assert_eq!(p["data"]["orig_recipient"], Value::Null);
        assert_eq!(p["data"]["reason"], "userunknown");
        assert_eq!(p["data"]["hard"], true);
        assert_eq!(p["data"]["dsn"], "5.1.1");
        let e = MessageExpiry {
            host: "mx1",
            queue_id: "Q",
            arrived_at: t(0),
            expired_at: t(10),
        };
        let p = e.payload(&e.id());
        assert_eq!(p["type"], "message.expired");
        assert_eq!(p["data"]["expired_at"], "1970-01-01T00:00:10.123456Z");
    }

    #[test]
    fn rules_select_hard_recipient_faults_in_the_window() {
        let mut rules = EventRules::default();
        assert!(rules.recipient_failed(t(5), Some(true), "userunknown"));
        assert!(rules.recipient_failed(t(5), Some(true), "mailboxfull"));
        assert!(!rules.recipient_failed(t(5), Some(false), "mailboxfull"));
        assert!(!rules.recipient_failed(t(5), None, "userunknown"));
        assert!(!rules.recipient_failed(t(5), Some(true), "blocklisted"));
        assert!(rules.message_expired(t(5)));
        rules.since = Some(t(5));
        assert!(rules.recipient_failed(t(5), Some(true), "userunknown"));
        assert!(!rules.recipient_failed(t(4), Some(true), "userunknown"));
        assert!(!rules.message_expired(t(4)));
        rules.message_expired = false;
        assert!(!rules.message_expired(t(6)));
    }

    #[test]
    fn type_names_round_trip() {
        for ty in EventType::ALL {
            assert_eq!(EventType::parse(ty.as_str()), Some(ty));
        }
        assert_eq!(EventType::parse("nope"), None);
        assert_eq!(
            EventType::parse("auth.bruteforce"),
            Some(EventType::AuthBruteforce)
        );
    }
}
