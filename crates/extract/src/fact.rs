//! Owned delivery facts: partial updates of a message, a recipient or a NOQUEUE row.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Identity of one message: a queue id is only unique on its host and during its life,
/// so the arrival time (first line seen) is part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MessageKey {
    /// Host that logged the message.
    pub host: Arc<str>,
    /// Postfix queue id.
    pub queue_id: Arc<str>,
    /// Time of the first line seen for this life of the queue id.
    pub arrived_at: DateTime<Utc>,
}

/// How a message entered the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Received by smtpd (`QID: client=`).
    Smtpd,
    /// Submitted locally (`pickup: QID: uid=`).
    Pickup,
    /// Created by Postfix itself (a bounce, delay or success notification).
    Notification,
}

impl Origin {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Smtpd => "smtpd",
            Origin::Pickup => "pickup",
            Origin::Notification => "notification",
        }
    }
}

/// Why a message is linked to another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A non-delivery notification (bounce) for the parent.
    NonDelivery,
    /// A delay notification for the parent.
    Delay,
    /// A success (delivery status) notification for the parent.
    Success,
    /// A postmaster copy of a notification.
    Postmaster,
    /// The parent was handed to a content filter that re-injected it under this id.
    Reinjection,
    /// The parent was forwarded by local(8) under this id.
    Forward,
}

impl LinkKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::NonDelivery => "non_delivery",
            LinkKind::Delay => "delay",
            LinkKind::Success => "success",
            LinkKind::Postmaster => "postmaster",
            LinkKind::Reinjection => "reinjection",
            LinkKind::Forward => "forward",
        }
    }
}

/// The parent of a message (the message a notification is about, or the message a
/// content filter re-injected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentLink {
    /// Queue id of the parent.
    pub queue_id: Arc<str>,
    /// Arrival time of the parent.
    pub arrived_at: DateTime<Utc>,
    /// Why they are linked.
    pub kind: LinkKind,
}

/// Columns of a message (`delivery_from`) that one line may set. `None` means "this
/// line says nothing about it"; a later non-`None` value replaces an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MessageUpdate {
    /// How it entered the queue.
    pub origin: Option<Origin>,
    /// Client hostname.
    pub client_name: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// SASL mechanism.
    pub sasl_method: Option<String>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// pickup uid.
    pub pickup_uid: Option<i64>,
    /// Message-ID header (without angle brackets).
    pub message_id: Option<String>,
    /// Envelope sender (empty for the null sender).
    pub sender: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Number of recipients.
    pub nrcpt: Option<i32>,
    /// When qmgr or postsuper removed the queue file.
    pub removed_at: Option<DateTime<Utc>>,
    /// When the message expired (`status=expired` or `force-expired`).
    pub expired_at: Option<DateTime<Utc>>,
    /// When `postsuper -d` deleted it.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When cleanup, a milter or smtpd rejected or discarded the whole message.
    pub rejected_at: Option<DateTime<Utc>>,
    /// When it was last put on hold.
    pub held_at: Option<DateTime<Utc>>,
    /// When it was last released from hold.
    pub released_at: Option<DateTime<Utc>>,
    /// Parent message.
    pub parent: Option<ParentLink>,
    /// Message tags from header_checks INFO/WARN lines of the configured headers
    /// (`client-id: acme` → `client-id` → `acme`; names lower-case). Unlike the other
    /// fields a later update does not replace the map: it is merged per name, the later
    /// value winning (the store does the same with jsonb `||`).
    pub tags: Option<BTreeMap<String, String>>,
}

impl MessageUpdate {
    /// Apply a later update on top of this one: later non-`None` values win.
    pub fn merge(&mut self, later: MessageUpdate) {
        fn take<T>(slot: &mut Option<T>, later: Option<T>) {
            if later.is_some() {
                *slot = later;
            }
        }
        take(&mut self.origin, later.origin);
        take(&mut self.client_name, later.client_name);
        take(&mut self.client_addr, later.client_addr);
        take(&mut self.sasl_method, later.sasl_method);
        take(&mut self.sasl_username, later.sasl_username);
        take(&mut self.pickup_uid, later.pickup_uid);
        take(&mut self.message_id, later.message_id);
        take(&mut self.sender, later.sender);
        take(&mut self.size, later.size);
        take(&mut self.nrcpt, later.nrcpt);
        take(&mut self.removed_at, later.removed_at);
        take(&mut self.expired_at, later.expired_at);
        take(&mut self.deleted_at, later.deleted_at);
        take(&mut self.rejected_at, later.rejected_at);
        take(&mut self.held_at, later.held_at);
        take(&mut self.released_at, later.released_at);
        take(&mut self.parent, later.parent);
        // Per name, later wins: matches `COALESCE(tags, '{}') || EXCLUDED.tags`.
        if let Some(later) = later.tags {
            self.tags.get_or_insert_default().extend(later);
        }
    }
}

/// Status of one recipient of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    /// Delivered.
    Sent,
    /// Temporarily failed; will be retried.
    Deferred,
    /// Permanently failed.
    Bounced,
    /// Given up because the message expired.
    Expired,
    /// Refused by smtpd, cleanup or a milter after the queue file existed.
    Rejected,
    /// Discarded by a header/body check or milter.
    Discarded,
    /// Deleted by `postsuper -d`.
    Deleted,
}

impl RecipientStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Sent => "sent",
            RecipientStatus::Deferred => "deferred",
            RecipientStatus::Bounced => "bounced",
            RecipientStatus::Expired => "expired",
            RecipientStatus::Rejected => "rejected",
            RecipientStatus::Discarded => "discarded",
            RecipientStatus::Deleted => "deleted",
        }
    }
}

/// One thing that happened to one recipient: a delivery attempt, or a reject/discard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipientEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Whether this was a delivery attempt (counts in `attempts`).
    pub attempt: bool,
    /// Resulting status.
    pub status: RecipientStatus,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// `relay=`.
    pub relay: Option<String>,
    /// Response or reason text.
    pub response: Option<String>,
    /// `delay=` seconds.
    pub delay: Option<f32>,
    /// `delays=a/b/c/d` seconds.
    pub delays: Option<[f32; 4]>,
    /// `queued as` / `forwarded as` id in the response.
    pub queued_as: Option<String>,
}

/// NOQUEUE decision: a reject, defer or warning before any queue file existed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Noqueue {
    /// Host that logged it.
    pub host: Arc<str>,
    /// When.
    pub at: DateTime<Utc>,
    /// Logging daemon (`smtpd`, `postscreen`, …).
    pub daemon: String,
    /// `reject`, `defer`, `warn`, `reject_warning`, …
    pub action: String,
    /// SMTP stage.
    pub stage: String,
    /// Client hostname.
    pub client_name: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// Reply code.
    pub code: Option<i32>,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// Reason text.
    pub reason: String,
    /// `from=`.
    pub sender: Option<String>,
    /// `to=`.
    pub recipient: Option<String>,
    /// `helo=`.
    pub helo: Option<String>,
    /// `proto=`.
    pub proto: Option<String>,
}

/// One fact derived from one log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// Something about a message (always emitted for every line that touches one, so
    /// `last_seen_at` is right).
    Message {
        /// Which message.
        key: MessageKey,
        /// Time of the line.
        seen_at: DateTime<Utc>,
        /// What the line says.
        update: MessageUpdate,
        /// True for the first fact of a life this extractor started (not one it was
        /// primed with): no stored row can exist for it yet, unless another input
        /// already wrote the same message. The store inserts such rows without looking.
        starts_life: bool,
    },
    /// Something about one recipient of a message.
    Recipient {
        /// Which message.
        key: MessageKey,
        /// Recipient address as delivered.
        recipient: String,
        /// Original recipient, empty when none was logged.
        orig_recipient: String,
        /// What happened.
        event: RecipientEvent,
    },
    /// A NOQUEUE decision.
    Noqueue {
        /// The decision.
        row: Noqueue,
        /// Which occurrence of identical decisions in the same instant this is (1 for
        /// the first): the row's count is the highest, so reading a line again never
        /// adds to it.
        occurrence: i32,
    },
    /// A SASL authentication failure.
    AuthFailure {
        /// The failure.
        row: crate::auth::AuthFailure,
        /// Which occurrence of identical failures in the same instant this is (1 for
        /// the first): with the row, the key of the stored failure, so reading a line
        /// again never stores it twice.
        occurrence: i32,
    },
    /// Failures from one client address crossed the brute-force threshold (right
    /// after the [`Fact::AuthFailure`] that crossed it).
    AuthBruteforce(crate::auth::BruteforceAlarm),
}
