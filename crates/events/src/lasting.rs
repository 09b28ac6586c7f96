//! Events about states that last: a bounce that went back to the sender
//! (`message.bounced_back`), a recipient still deferred after a configured age
//! (`recipient.deferred_long`), and a mailbox that stays full (`recipient.failed`
//! with reason `mailboxfull` for a soft failure held over N days).
//!
//! `message.bounced_back` is written with the facts, like `recipient.failed`: when
//! the notification message is linked to its parent. The other two are found by a
//! periodic sweep of the stored rows (they are facts about time passing, which no log
//! line states); the sweep inserts them with these ids and `ON CONFLICT DO NOTHING`, so
//! however often it runs, each fact is one event. Each id is derived only from the
//! fact and from the configured age, so changing the age makes new facts (a recipient
//! deferred for 2 days is another fact than one deferred for 1 day).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{EventType, IdHasher, stamp};

/// Tag of the id of a mailbox-full held event (a `recipient.failed` of its own kind,
/// apart from the ids of failed attempts).
const MAILBOX_FULL_HELD_TAG: &str = "recipient.failed:mailboxfull-held";

/// What the sweep looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRules {
    /// Facts (the moment the age is reached) before this never become events.
    pub since: Option<DateTime<Utc>>,
    /// `recipient.deferred_long` after this long in the queue (`None`: off).
    pub deferred_long_after: Option<chrono::TimeDelta>,
    /// `recipient.failed` (mailboxfull) after a mailbox stayed full this long
    /// (`None`: off).
    pub mailbox_full_held: Option<chrono::TimeDelta>,
}

/// Default age of `recipient.deferred_long`: one day.
pub const DEFAULT_DEFERRED_LONG_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// Default time a mailbox stays full before `recipient.failed`: three days.
pub const DEFAULT_MAILBOX_FULL_HELD: chrono::TimeDelta = chrono::TimeDelta::days(3);

/// A non-delivery notification created for a message: its sender is told.
#[derive(Debug, Clone, Copy)]
pub struct BouncedBack<'a> {
    /// Host that logged it.
    pub host: &'a str,
    /// The original message (whose sender gets the bounce).
    pub queue_id: &'a str,
    /// When the original message arrived.
    pub arrived_at: DateTime<Utc>,
    /// The notification's queue id.
    pub ndr_queue_id: &'a str,
    /// When the notification was created.
    pub ndr_arrived_at: DateTime<Utc>,
}

impl BouncedBack<'_> {
    /// The id: type, host, original queue id and arrival (µs), notification queue id
    /// and arrival (µs).
    pub fn id(&self) -> String {
        IdHasher::new()
            .str(EventType::MessageBouncedBack.as_str())
            .str(self.host)
            .str(self.queue_id)
            .time(self.arrived_at)
            .str(self.ndr_queue_id)
            .time(self.ndr_arrived_at)
            .id()
    }

    /// The payload of the event with id `id`. (The store adds the original message's
    /// `sender` and `message_id` when it knows them.)
    pub fn payload(&self, id: &str) -> Value {
        json!({
            "type": EventType::MessageBouncedBack.as_str(),
            "id": id,
            "timestamp": stamp(self.ndr_arrived_at),
            "data": {
                "host": self.host,
                "queue_id": self.queue_id,
                "arrived_at": stamp(self.arrived_at),
                "ndr_queue_id": self.ndr_queue_id,
                "ndr_arrived_at": stamp(self.ndr_arrived_at),
            }
        })
    }
}

/// A recipient found by the sweep: still deferred (or, for mailbox full, deferred
/// with that reason) since `since`.
#[derive(Debug, Clone, Copy)]
pub struct Lasting<'a> {
    /// Host that logged it.
    pub host: &'a str,
    /// Queue id of the message.
    pub queue_id: &'a str,
    /// When the message arrived.
    pub arrived_at: DateTime<Utc>,
    /// Recipient.
    pub recipient: &'a str,
    /// Original recipient (`""` when none).
    pub orig_recipient: &'a str,
    /// Where the age counts from: the arrival (deferred long) or the first mailbox-full
    /// deferral (mailbox full held).
    pub since: DateTime<Utc>,
    /// The configured age, in seconds.
    pub age_secs: i64,
    /// Attempts so far.
    pub attempts: i32,
    /// The latest attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Its DSN, relay, response, reason.
    pub dsn: Option<&'a str>,
    /// Relay of the latest attempt.
    pub relay: Option<&'a str>,
    /// Response of the latest attempt.
    pub response: Option<&'a str>,
    /// Classified reason of the latest attempt.
    pub reason: Option<&'a str>,
}

impl Lasting<'_> {
    fn hasher(&self, tag: &str) -> IdHasher {
        let mut h = IdHasher::new();
        h.str(tag)
            .str(self.host)
            .str(self.queue_id)
            .time(self.arrived_at)
            .str(self.recipient)
            .str(self.orig_recipient)
            .str(&self.age_secs.to_string());
        h
    }

    /// When the fact happened: `since` plus the age.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.since + chrono::TimeDelta::seconds(self.age_secs)
    }

    /// The id of `recipient.deferred_long`: type, host, queue id, arrival (µs),
    /// recipient, original recipient, the age in seconds.
    pub fn deferred_long_id(&self) -> String {
        self.hasher(EventType::RecipientDeferredLong.as_str()).id()
    }

    /// The id of the mailbox-full-held `recipient.failed`: its own tag, host, queue
    /// id, arrival (µs), recipient, original recipient, the age in seconds.
    pub fn mailbox_full_held_id(&self) -> String {
        self.hasher(MAILBOX_FULL_HELD_TAG).id()
    }

    fn data(&self) -> Value {
        json!({
            "host": self.host,
            "queue_id": self.queue_id,
            "arrived_at": stamp(self.arrived_at),
            "recipient": self.recipient,
            "orig_recipient": (!self.orig_recipient.is_empty()).then_some(self.orig_recipient),
            "status": "deferred",
            "dsn": self.dsn,
            "reason": self.reason,
            "hard": false,
            "relay": self.relay,
            "response": self.response,
            "attempts": self.attempts,
            "attempt_at": self.last_attempt_at.map(stamp),
        })
    }

    /// The `recipient.deferred_long` payload.
    pub fn deferred_long_payload(&self, id: &str) -> Value {
        let mut data = self.data();
        data["deferred_for_secs"] = json!(self.age_secs);
        json!({
            "type": EventType::RecipientDeferredLong.as_str(),
            "id": id,
            "timestamp": stamp(self.occurred_at()),
            "data": data,
        })
    }

    /// The mailbox-full-held `recipient.failed` payload.
    pub fn mailbox_full_held_payload(&self, id: &str) -> Value {
        let mut data = self.data();
        data["reason"] = json!("mailboxfull");
        data["rule"] = json!("mailboxfull-held");
        data["held_since"] = json!(stamp(self.since));
        data["held_for_secs"] = json!(self.age_secs);
        json!({
            "type": EventType::RecipientFailed.as_str(),
            "id": id,
            "timestamp": stamp(self.occurred_at()),
            "data": data,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_741_950_000 + s, 0).unwrap()
    }

    fn lasting() -> Lasting<'static> {
        Lasting {
            host: "mx1",
            queue_id: "Q1",
            arrived_at: t(0),
            recipient: "erin@full.example.net",
            orig_recipient: "",
            since: t(0),
            age_secs: 86_400,
            attempts: 7,
            last_attempt_at: Some(t(80_000)),
            dsn: Some("4.2.2"),
            relay: None,
            response: Some("452 4.2.2 Mailbox full"),
            reason: Some("mailboxfull"),
        }
    }

    #[test]
    fn ids_depend_on_the_fact_and_the_age_only() {
        let l = lasting();
        let more = Lasting {
            attempts: 9,
            last_attempt_at: Some(t(90_000)),
            response: None,
            ..l
        };
        assert_eq!(l.deferred_long_id(), more.deferred_long_id());
        assert_ne!(l.deferred_long_id(), l.mailbox_full_held_id());
        let later_age = Lasting {
            age_secs: 2 * 86_400,
            ..l
        };
        assert_ne!(l.deferred_long_id(), later_age.deferred_long_id());
        let other = Lasting {
            recipient: "x@y",
            ..l
        };
        assert_ne!(l.deferred_long_id(), other.deferred_long_id());
        // Stable across versions (part of the outbox's keys); checked with the Python
        // implementation of docs/events.md.
        assert_eq!(l.deferred_long_id(), "evt_4f10c91c8ffe27cabd070bae9380f5c5");
    }

    #[test]
    fn payloads() {
        let l = lasting();
        let p = l.deferred_long_payload(&l.deferred_long_id());
        assert_eq!(p["type"], "recipient.deferred_long");
        assert_eq!(p["timestamp"], "2025-03-15T11:00:00.000000Z");
        assert_eq!(p["data"]["deferred_for_secs"], 86_400);
        let p = l.mailbox_full_held_payload(&l.mailbox_full_held_id());
        assert_eq!(p["type"], "recipient.failed");
        assert_eq!(p["data"]["reason"], "mailboxfull");
        assert_eq!(p["data"]["hard"], false);
        let b = BouncedBack {
            host: "mx1",
            queue_id: "P",
            arrived_at: t(0),
            ndr_queue_id: "N",
            ndr_arrived_at: t(1),
        };
        let p = b.payload(&b.id());
        assert_eq!(p["type"], "message.bounced_back");
        assert_eq!(p["data"]["ndr_queue_id"], "N");
        assert_ne!(
            b.id(),
            BouncedBack {
                ndr_queue_id: "M",
                ..b
            }
            .id()
        );
    }
}
