//! A batch: facts of consecutive lines merged per row, ready to be written in one
//! transaction.
//!
//! Every merge here is associative and matches the SQL upsert the store runs, so that
//! splitting the same lines into batches differently (a crash, a resume, another batch
//! size) yields the same database: "later non-null wins" for message columns, the
//! latest event (ties: the later line) for a recipient's status, sums for counters,
//! min/max for times.

use foldhash::HashMap;

use chrono::{DateTime, Utc};

use crate::auth::{AuthFailure, BruteforceAlarm};
use crate::fact::{Fact, MessageKey, MessageUpdate, Noqueue, RecipientEvent};

/// Merged state of one message within a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    /// Latest line time seen in this batch.
    pub last_seen_at: DateTime<Utc>,
    /// Merged column updates.
    pub update: MessageUpdate,
    /// The message's life started in this batch (see [`Fact::Message`]): its row, and
    /// those of its recipients, cannot be stored yet.
    pub starts_life: bool,
}

/// Key of one recipient row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientKey {
    /// The message.
    pub message: MessageKey,
    /// Recipient as delivered.
    pub recipient: String,
    /// Original recipient or empty.
    pub orig_recipient: String,
}

/// Merged state of one recipient within a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientRow {
    /// Number of distinct delivery attempts in this batch.
    pub attempts: i32,
    /// Earliest attempt in this batch.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Latest attempt in this batch.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The latest event (by time, then by line order), which decides the status.
    latest: RecipientEvent,
    /// The recipient's other distinct events in this batch. With `latest`, the attempt
    /// history: an event is known by its time and status (see [`same_event`]), so the
    /// same line read twice is one event. Usually empty (one event per recipient and
    /// batch), which costs no allocation.
    earlier: Vec<RecipientEvent>,
}

/// True when `a` and `b` are the same event of one recipient: the key of the attempt
/// history. Postfix logs one status line per recipient and delivery attempt, and
/// never two attempts of one recipient within the same instant of its clock.
pub fn same_event(a: &RecipientEvent, b: &RecipientEvent) -> bool {
    a.at == b.at && a.status == b.status
}

impl RecipientRow {
    fn new(event: RecipientEvent) -> Self {
        let at = event.attempt.then_some(event.at);
        RecipientRow {
            attempts: i32::from(event.attempt),
            first_attempt_at: at,
            last_attempt_at: at,
            latest: event,
            earlier: Vec::new(),
        }
    }

    /// The latest event, which decides the status.
    pub fn latest(&self) -> &RecipientEvent {
        &self.latest
    }

    /// Every distinct event of the recipient in this batch, the latest first.
    pub fn events(&self) -> impl Iterator<Item = &RecipientEvent> {
        std::iter::once(&self.latest).chain(&self.earlier)
    }

    fn merge(&mut self, event: RecipientEvent) {
        if self.events().any(|e| same_event(e, &event)) {
            // The same line again (a log that holds it twice): one attempt.
            return;
        }
        if event.attempt {
            self.attempts = self.attempts.saturating_add(1);
            self.first_attempt_at =
                Some(self.first_attempt_at.map_or(event.at, |t| t.min(event.at)));
            self.last_attempt_at = Some(self.last_attempt_at.map_or(event.at, |t| t.max(event.at)));
        }
        if event.at >= self.latest.at {
            let earlier = std::mem::replace(&mut self.latest, event);
            self.earlier.push(earlier);
        } else {
            self.earlier.push(event);
        }
    }
}

/// Facts of consecutive lines, merged per row. The maps use foldhash, seeded per
/// process: several times faster than SipHash on these short keys, and still not
/// predictable enough for crafted addresses to make lookups collide.
#[derive(Debug, Default)]
pub struct Batch {
    /// Messages touched, with their merged updates.
    pub messages: HashMap<MessageKey, MessageRow>,
    /// Recipients touched.
    pub recipients: HashMap<RecipientKey, RecipientRow>,
    /// NOQUEUE rows with the highest occurrence number seen (see [`Fact::Noqueue`]).
    pub noqueue: HashMap<Noqueue, i32>,
    /// SASL authentication failures with their occurrence numbers, in line order.
    pub auth_failures: Vec<(AuthFailure, i32)>,
    /// Brute-force alarms, in line order.
    pub auth_alarms: Vec<BruteforceAlarm>,
    /// Number of facts added.
    pub facts: u64,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold one fact in. Facts must be added in line order.
    pub fn add(&mut self, fact: Fact) {
        self.facts += 1;
        match fact {
            Fact::Message {
                key,
                seen_at,
                update,
                starts_life,
            } => match self.messages.get_mut(&key) {
                Some(row) => {
                    row.last_seen_at = row.last_seen_at.max(seen_at);
                    row.update.merge(update);
                }
                None => {
                    self.messages.insert(
                        key,
                        MessageRow {
                            last_seen_at: seen_at,
                            update,
                            starts_life,
                        },
                    );
                }
            },
            Fact::Recipient {
                key,
                recipient,
                orig_recipient,
                event,
            } => {
                let key = RecipientKey {
                    message: key,
                    recipient,
                    orig_recipient,
                };
                match self.recipients.get_mut(&key) {
                    Some(row) => row.merge(event),
                    None => {
                        self.recipients.insert(key, RecipientRow::new(event));
                    }
                }
            }
            Fact::Noqueue { row, occurrence } => {
                let count = self.noqueue.entry(row).or_insert(0);
                *count = (*count).max(occurrence);
            }
            Fact::AuthFailure { row, occurrence } => self.auth_failures.push((row, occurrence)),
            Fact::AuthBruteforce(alarm) => self.auth_alarms.push(alarm),
        }
    }

    /// Whether the life of `message` started in this batch, so that neither its row
    /// nor those of its recipients can be stored yet.
    pub fn message_starts_life(&self, message: &MessageKey) -> bool {
        self.messages.get(message).is_some_and(|m| m.starts_life)
    }

    /// Number of rows the batch will write.
    pub fn rows(&self) -> usize {
        self.messages.len()
            + self
                .recipients
                .values()
                .map(|r| 2 + r.earlier.len())
                .sum::<usize>()
            + self.noqueue.len()
            + self.auth_failures.len()
            + self.auth_alarms.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.facts == 0
    }
}
