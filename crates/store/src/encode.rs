//! A batch turned into binary COPY payloads, ready to be streamed to PostgreSQL.
//!
//! Encoding is pure CPU work. Doing it where the batch is built (the reader's thread)
//! instead of in the writer keeps PostgreSQL from waiting for it: while the server
//! works through one batch, the next one is already encoded. The payloads are the
//! format of `COPY … FROM STDIN (FORMAT binary)`: a header, one tuple per row (field
//! count, then each field as a length and its bytes in PostgreSQL's binary send format,
//! or -1 for NULL), a trailer.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use pftrack_classify::{Classifier, Input, Verdict};
use pftrack_events::{EventRules, MessageExpiry, RecipientFailure};
use pftrack_extract::{
    AuthFailure, Batch, MessageKey, MessageRow, Noqueue, RecipientEvent, RecipientKey,
    RecipientRow, RecipientStatus,
};
use pftrack_geo::{Geo, GeoInfo};
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::StoreError;
use crate::partition::MonthSet;

/// Signature, flags and header extension length of a binary COPY stream.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The rows of one table (or of one part of it) as a binary COPY stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct CopyData {
    /// The whole stream, header to trailer; empty when there are no rows.
    pub(crate) payload: Bytes,
    /// Number of rows in it.
    pub(crate) rows: u64,
}

/// A [`Batch`] as COPY streams: rows of messages whose life started in the batch (which
/// cannot be stored yet) apart from the others, each part in primary key order, so
/// concurrent writers lock rows in one order.
#[derive(Debug, Clone, Default)]
pub struct EncodedBatch {
    pub(crate) messages_new: CopyData,
    pub(crate) messages_known: CopyData,
    pub(crate) recipients_new: CopyData,
    pub(crate) recipients_known: CopyData,
    pub(crate) attempts_new: CopyData,
    pub(crate) attempts_known: CopyData,
    pub(crate) noqueue: CopyData,
    /// SASL authentication failures (`AUTH_COLUMNS`), in key order.
    pub(crate) auth_failures: CopyData,
    /// Rows of the event outbox (`EVENT_COLUMNS`), by id; empty when events are off.
    pub(crate) events: CopyData,
    /// The UTC months the rows of the partitioned tables fall in (their partitions
    /// must exist before the batch is written).
    pub(crate) months: MonthSet,
}

/// A recipient row with the verdict on its latest event.
type RecipientOut<'a> = (&'a RecipientKey, &'a RecipientRow, Option<Verdict>);
/// One event of the attempt history with its verdict.
type AttemptOut<'a> = (&'a RecipientKey, &'a RecipientEvent, Option<Verdict>);
/// A NOQUEUE row: fingerprint, count, verdict.
type NoqueueOut<'a> = (&'a Noqueue, i64, i32, Verdict);
/// A SASL failure: row, fingerprint, occurrence, what GeoIP says of its address.
type AuthOut<'a> = (&'a AuthFailure, i64, i32, GeoInfo);
/// An outbox row: id, type, when the fact happened, JSON payload.
type EventOut = (String, &'static str, DateTime<Utc>, Vec<u8>);

/// The outbox row of an event.
fn event_row(
    id: String,
    ty: pftrack_events::EventType,
    at: DateTime<Utc>,
    payload: &serde_json::Value,
) -> EventOut {
    let payload = serde_json::to_vec(payload).unwrap_or_default();
    (id, ty.as_str(), at, payload)
}

/// The `recipient.failed` row of an attempt, when `rules` select it.
fn recipient_event(
    rules: &EventRules,
    key: &RecipientKey,
    e: &RecipientEvent,
    verdict: &Verdict,
) -> Option<EventOut> {
    if !rules.recipient_failed(e.at, verdict.hard, verdict.reason.as_str()) {
        return None;
    }
    let f = RecipientFailure {
        host: &key.message.host,
        queue_id: &key.message.queue_id,
        arrived_at: key.message.arrived_at,
        recipient: &key.recipient,
        orig_recipient: &key.orig_recipient,
        status: e.status.as_str(),
        dsn: e.dsn.as_deref(),
        reason: verdict.reason.as_str(),
        hard: verdict.hard,
        rule: verdict.rule.as_str(),
        relay: e.relay.as_deref(),
        response: e.response.as_deref(),
        attempt_at: e.at,
    };
    let id = f.id();
    Some(event_row(
        id.clone(),
        pftrack_events::EventType::RecipientFailed,
        e.at,
        &f.payload(&id),
    ))
}

/// The classifier's verdict on a recipient event that is a failure; `None` for the
/// others (sent, discarded, deleted).
fn event_verdict(
    classifier: &Classifier,
    scratch: &mut Vec<bool>,
    e: &RecipientEvent,
) -> Option<Verdict> {
    recipient_verdict(
        classifier,
        scratch,
        e.status,
        e.dsn.as_deref(),
        e.response.as_deref(),
        e.relay.as_deref(),
    )
}

/// The verdict on a recipient event from the columns it is stored with: shared by the
/// load (through [`event_verdict`]) and `reclassify`, so that both give a stored row
/// the same verdict.
pub(crate) fn recipient_verdict(
    classifier: &Classifier,
    scratch: &mut Vec<bool>,
    status: RecipientStatus,
    dsn: Option<&str>,
    response: Option<&str>,
    relay: Option<&str>,
) -> Option<Verdict> {
    match status {
        RecipientStatus::Deferred
        | RecipientStatus::Bounced
        | RecipientStatus::Expired
        | RecipientStatus::Rejected => Some(classifier.classify_with(
            &Input {
                status: status.as_str(),
                dsn,
                text: response.unwrap_or_default(),
                relay,
                ..Input::default()
            },
            scratch,
        )),
        RecipientStatus::Sent | RecipientStatus::Discarded | RecipientStatus::Deleted => None,
    }
}

/// The verdict on a NOQUEUE reject from its stored columns: shared by the load and
/// `reclassify`, like [`recipient_verdict`].
pub(crate) fn noqueue_verdict(
    classifier: &Classifier,
    scratch: &mut Vec<bool>,
    dsn: Option<&str>,
    code: Option<i32>,
    reason: &str,
) -> Verdict {
    classifier.classify_with(
        &Input {
            status: "rejected",
            dsn,
            code: code.and_then(|c| u16::try_from(c).ok()),
            text: reason,
            ..Input::default()
        },
        scratch,
    )
}

impl EncodedBatch {
    /// Encode `batch`, classifying every failure with `classifier`. Fails only on a
    /// value PostgreSQL cannot represent.
    pub fn encode(batch: &Batch, classifier: &Classifier) -> Result<EncodedBatch, StoreError> {
        EncodedBatch::encode_with(batch, classifier, None)
    }

    /// Like [`EncodedBatch::encode`], with the outbox rows of the facts that `events`
    /// select (none when `None`: then nothing is allocated for events).
    pub fn encode_with(
        batch: &Batch,
        classifier: &Classifier,
        events: Option<&EventRules>,
    ) -> Result<EncodedBatch, StoreError> {
        EncodedBatch::encode_with_geo(batch, classifier, events, None)
    }

    /// Like [`EncodedBatch::encode_with`], SASL failures (and `auth.bruteforce`
    /// payloads) enriched with what `geo`'s databases say of the client address now:
    /// stored once, never rewritten by a later database.
    pub fn encode_with_geo(
        batch: &Batch,
        classifier: &Classifier,
        events: Option<&EventRules>,
        geo: Option<&Geo>,
    ) -> Result<EncodedBatch, StoreError> {
        let mut scratch = Vec::new();
        let mut messages: Vec<_> = batch.messages.iter().collect();
        messages.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (messages_new, messages_known): (Vec<_>, Vec<_>) =
            messages.into_iter().partition(|(_, row)| row.starts_life);

        let mut recipients: Vec<_> = batch.recipients.iter().collect();
        recipients
            .sort_unstable_by(|(a, _), (b, _)| recipient_key_order(a).cmp(&recipient_key_order(b)));
        // Each event is classified once: its attempt row and, when it is the latest,
        // its recipient row share the verdict.
        let mut recipients_new: Vec<RecipientOut<'_>> = Vec::new();
        let mut recipients_known: Vec<RecipientOut<'_>> = Vec::new();
        let mut attempts_new: Vec<AttemptOut<'_>> = Vec::new();
        let mut attempts_known: Vec<AttemptOut<'_>> = Vec::new();
        let mut event_rows: Vec<EventOut> = Vec::new();
        if let Some(rules) = events {
            for (key, row) in messages_new.iter().chain(&messages_known) {
                if let Some(at) = row
                    .update
                    .expired_at
                    .filter(|at| rules.message_expired(*at))
                {
                    let m = MessageExpiry {
                        host: &key.host,
                        queue_id: &key.queue_id,
                        arrived_at: key.arrived_at,
                        expired_at: at,
                    };
                    let id = m.id();
                    event_rows.push(event_row(
                        id.clone(),
                        pftrack_events::EventType::MessageExpired,
                        at,
                        &m.payload(&id),
                    ));
                }
                // A bounce (non-delivery notification) created for a message: its
                // sender is told (issue 12).
                if let Some(parent) = row.update.parent.as_ref().filter(|p| {
                    p.kind == pftrack_extract::LinkKind::NonDelivery
                        && rules.message_bounced_back(key.arrived_at)
                }) {
                    let b = pftrack_events::lasting::BouncedBack {
                        host: &key.host,
                        queue_id: &parent.queue_id,
                        arrived_at: parent.arrived_at,
                        ndr_queue_id: &key.queue_id,
                        ndr_arrived_at: key.arrived_at,
                    };
                    let id = b.id();
                    event_rows.push(event_row(
                        id.clone(),
                        pftrack_events::EventType::MessageBouncedBack,
                        key.arrived_at,
                        &b.payload(&id),
                    ));
                }
            }
        }
        for (key, row) in recipients {
            let new = batch.message_starts_life(&key.message);
            let attempts = if new {
                &mut attempts_new
            } else {
                &mut attempts_known
            };
            let first = attempts.len();
            let mut latest_verdict = None;
            for (i, event) in row.events().enumerate() {
                let verdict = event_verdict(classifier, &mut scratch, event);
                if let (Some(rules), Some(v)) = (events, &verdict) {
                    event_rows.extend(recipient_event(rules, key, event, v));
                }
                if i == 0 {
                    // The latest comes first.
                    latest_verdict.clone_from(&verdict);
                }
                attempts.push((key, event, verdict));
            }
            // Key order within the recipient: time, then status.
            attempts[first..].sort_unstable_by(|a, b| {
                (a.1.at, a.1.status.as_str()).cmp(&(b.1.at, b.1.status.as_str()))
            });
            let out = (key, row, latest_verdict);
            if new {
                recipients_new.push(out);
            } else {
                recipients_known.push(out);
            }
        }

        let mut noqueue: Vec<NoqueueOut<'_>> = batch
            .noqueue
            .iter()
            .map(|(n, c)| {
                let verdict = noqueue_verdict(
                    classifier,
                    &mut scratch,
                    n.dsn.as_deref(),
                    n.code,
                    &n.reason,
                );
                (n, fingerprint(n), *c, verdict)
            })
            .collect();
        noqueue.sort_unstable_by(|a, b| (&*a.0.host, a.0.at, a.1).cmp(&(&*b.0.host, b.0.at, b.1)));
        let lookup = |addr: &str| geo.map(|g| g.lookup(addr)).unwrap_or_default();
        let mut auth: Vec<AuthOut<'_>> = batch
            .auth_failures
            .iter()
            .map(|(f, occurrence)| (f, auth_fingerprint(f), *occurrence, lookup(&f.client_addr)))
            .collect();
        auth.sort_unstable_by(|a, b| {
            (&*a.0.host, a.0.at, a.1, a.2).cmp(&(&*b.0.host, b.0.at, b.1, b.2))
        });
        if let Some(rules) = events {
            for alarm in batch.auth_alarms.iter().filter(|a| rules.in_window(a.at)) {
                let info = lookup(&alarm.client_addr);
                let b = pftrack_events::auth::Bruteforce {
                    host: &alarm.host,
                    client_addr: &alarm.client_addr,
                    client_name: &alarm.client_name,
                    crossed_at: alarm.at,
                    occurrence: alarm.occurrence,
                    count: alarm.count,
                    first_at: alarm.first_at,
                    window_secs: alarm.window_secs,
                    usernames: &alarm.usernames,
                    country: info.country.as_deref(),
                    asn: info.asn,
                    as_org: info.as_org.as_deref(),
                };
                let id = b.id();
                event_rows.push(event_row(
                    id.clone(),
                    pftrack_events::EventType::AuthBruteforce,
                    alarm.at,
                    &b.payload(&id),
                ));
            }
        }
        // Every partition key of the batch: arrival of messages and recipients (their
        // attempts share it), logging time of NOQUEUE rows and SASL failures.
        let mut months = MonthSet::default();
        for (key, _) in messages_new.iter().chain(&messages_known) {
            months.note(key.arrived_at);
        }
        for (key, _, _) in recipients_new.iter().chain(&recipients_known) {
            months.note(key.message.arrived_at);
        }
        for n in &noqueue {
            months.note(n.0.at);
        }
        for a in &auth {
            months.note(a.0.at);
        }
        // By id, each once: the outbox's key order.
        event_rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        event_rows.dedup_by(|a, b| a.0 == b.0);

        Ok(EncodedBatch {
            messages_new: encode_rows(&messages_new, &FROM_TYPES, message_fields)?,
            messages_known: encode_rows(&messages_known, &FROM_TYPES, message_fields)?,
            recipients_new: encode_rows(&recipients_new, &TO_TYPES, recipient_fields)?,
            recipients_known: encode_rows(&recipients_known, &TO_TYPES, recipient_fields)?,
            attempts_new: encode_rows(&attempts_new, &ATTEMPT_TYPES, attempt_fields)?,
            attempts_known: encode_rows(&attempts_known, &ATTEMPT_TYPES, attempt_fields)?,
            noqueue: encode_rows(&noqueue, &NOQUEUE_TYPES, noqueue_fields)?,
            auth_failures: encode_rows(&auth, &AUTH_TYPES, auth_fields)?,
            events: encode_rows(&event_rows, &EVENT_TYPES, event_row_fields)?,
            months,
        })
    }

    /// Rows in the batch.
    pub fn rows(&self) -> u64 {
        self.messages_new.rows
            + self.messages_known.rows
            + self.recipients_new.rows
            + self.recipients_known.rows
            + self.attempts_new.rows
            + self.attempts_known.rows
            + self.noqueue.rows
            + self.auth_failures.rows
            + self.events.rows
    }

    /// Outbox rows (events) in the batch.
    pub fn events(&self) -> u64 {
        self.events.rows
    }

    /// Bytes the payloads take.
    pub fn payload_bytes(&self) -> usize {
        [
            &self.messages_new,
            &self.messages_known,
            &self.recipients_new,
            &self.recipients_known,
            &self.attempts_new,
            &self.attempts_known,
            &self.noqueue,
            &self.auth_failures,
            &self.events,
        ]
        .iter()
        .map(|c| c.payload.len())
        .sum()
    }
}

/// Encode `rows` as one COPY stream, `fields` giving each row's values in column order.
fn encode_rows<R>(
    rows: &[R],
    types: &[Type],
    fields: impl Fn(&R, &mut Emit<'_>) -> Result<(), StoreError>,
) -> Result<CopyData, StoreError> {
    if rows.is_empty() {
        return Ok(CopyData::default());
    }
    let field_count = i16::try_from(types.len()).map_err(|_| StoreError::Encode {
        reason: "too many columns".into(),
    })?;
    let mut buf = BytesMut::with_capacity(COPY_HEADER.len() + rows.len() * 256);
    buf.put_slice(COPY_HEADER);
    for row in rows {
        buf.put_i16(field_count);
        let mut column = 0;
        fields(row, &mut |value| {
            let ty = types.get(column).ok_or_else(|| StoreError::Encode {
                reason: "more values than columns".into(),
            })?;
            column += 1;
            // The length goes before the value; write a placeholder and fill it in.
            let at = buf.len();
            buf.put_i32(0);
            let written = value
                .to_sql_checked(ty, &mut buf)
                .map_err(|e| StoreError::Encode {
                    reason: e.to_string(),
                })?;
            let len = match written {
                IsNull::Yes => {
                    buf.truncate(at + 4);
                    -1
                }
                IsNull::No => {
                    i32::try_from(buf.len() - at - 4).map_err(|_| StoreError::Encode {
                        reason: "a value longer than 2 GiB".into(),
                    })?
                }
            };
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            Ok(())
        })?;
        if column != types.len() {
            return Err(StoreError::Encode {
                reason: "fewer values than columns".into(),
            });
        }
    }
    buf.put_i16(-1);
    Ok(CopyData {
        payload: buf.freeze(),
        rows: rows.len() as u64,
    })
}

type Emit<'a> = dyn FnMut(&(dyn ToSql + Sync)) -> Result<(), StoreError> + 'a;

fn message_fields(row: &(&MessageKey, &MessageRow), out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (key, row) = row;
    let u = &row.update;
    let parent_queue_id = u.parent.as_ref().map(|p| &*p.queue_id);
    let parent_arrived_at = u.parent.as_ref().map(|p| p.arrived_at);
    let parent_kind = u.parent.as_ref().map(|p| p.kind.as_str());
    let origin = u.origin.map(|o| o.as_str());
    out(&&*key.host)?;
    out(&&*key.queue_id)?;
    out(&key.arrived_at)?;
    out(&row.last_seen_at)?;
    out(&origin)?;
    out(&u.client_name)?;
    out(&u.client_addr)?;
    out(&u.sasl_method)?;
    out(&u.sasl_username)?;
    out(&u.pickup_uid)?;
    out(&u.message_id)?;
    out(&u.sender)?;
    out(&u.size)?;
    out(&u.nrcpt)?;
    out(&u.removed_at)?;
    out(&u.expired_at)?;
    out(&u.deleted_at)?;
    out(&u.rejected_at)?;
    out(&u.held_at)?;
    out(&u.released_at)?;
    out(&parent_queue_id)?;
    out(&parent_arrived_at)?;
    out(&parent_kind)?;
    out(&u.tags.as_ref().map(Jsonb))
}

/// A message's tags as a `jsonb` object (name → value). Written by hand rather than
/// through serde_json and tokio-postgres' `with-serde_json-1` feature: the map is flat
/// strings, so this is a few lines and builds no `serde_json::Value` per row.
#[derive(Debug)]
struct Jsonb<'a>(&'a std::collections::BTreeMap<String, String>);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        /// A JSON string: `"` and `\` escaped, control characters as `\u00XX`. NUL,
        /// which jsonb cannot hold, becomes U+FFFD.
        fn string(s: &str, out: &mut BytesMut) {
            out.put_u8(b'"');
            for c in s.chars() {
                match c {
                    '"' => out.put_slice(b"\\\""),
                    '\\' => out.put_slice(b"\\\\"),
                    '\0' => out.put_slice("\u{fffd}".as_bytes()),
                    c if u32::from(c) < 0x20 => {
                        out.put_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
                    }
                    c => out.put_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            out.put_u8(b'"');
        }
        // jsonb's binary format: version 1, then the JSON text.
        out.put_u8(1);
        out.put_u8(b'{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            string(name, out);
            out.put_u8(b':');
            string(value, out);
        }
        out.put_u8(b'}');
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod jsonb_tests {
    use super::*;

    #[test]
    fn tags_as_jsonb() {
        let tags = std::collections::BTreeMap::from([
            ("client-id".to_owned(), "acme".to_owned()),
            ("x-app".to_owned(), "a \"b\" \\ c\u{1}\0é".to_owned()),
        ]);
        let mut out = BytesMut::new();
        assert!(matches!(
            Jsonb(&tags).to_sql(&Type::JSONB, &mut out),
            Ok(IsNull::No)
        ));
        assert_eq!(
            &out[..],
            "\u{1}{\"client-id\":\"acme\",\"x-app\":\"a \\\"b\\\" \\\\ c\\u0001\u{fffd}é\"}"
                .as_bytes()
        );
        assert!(Jsonb::accepts(&Type::JSONB) && !Jsonb::accepts(&Type::JSON));
    }
}

fn recipient_fields(row: &RecipientOut<'_>, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (key, row, verdict) = row;
    recipient_key_fields(key, out)?;
    event_fields(row.latest(), out)?;
    out(&row.attempts)?;
    out(&row.first_attempt_at)?;
    out(&row.last_attempt_at)?;
    verdict_fields(verdict.as_ref(), out)
}

fn attempt_fields(row: &AttemptOut<'_>, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (key, event, verdict) = row;
    recipient_key_fields(key, out)?;
    event_fields(event, out)?;
    out(&event.attempt)?;
    verdict_fields(verdict.as_ref(), out)
}

/// The key columns of a recipient row (and of its attempts).
fn recipient_key_fields(key: &RecipientKey, out: &mut Emit<'_>) -> Result<(), StoreError> {
    out(&&*key.message.host)?;
    out(&&*key.message.queue_id)?;
    out(&key.message.arrived_at)?;
    out(&key.recipient)?;
    out(&key.orig_recipient)
}

/// What an event says, in the column order shared by recipients and attempts.
fn event_fields(e: &RecipientEvent, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let delay = |i: usize| e.delays.map(|d| d[i]);
    out(&e.status.as_str())?;
    out(&e.at)?;
    out(&e.dsn)?;
    out(&e.relay)?;
    out(&e.response)?;
    out(&e.delay)?;
    out(&delay(0))?;
    out(&delay(1))?;
    out(&delay(2))?;
    out(&delay(3))?;
    out(&e.queued_as)
}

/// failure_reason, hard, failure_rule.
fn verdict_fields(verdict: Option<&Verdict>, out: &mut Emit<'_>) -> Result<(), StoreError> {
    out(&verdict.map(|v| v.reason.as_str()))?;
    out(&verdict.and_then(|v| v.hard))?;
    out(&verdict.map(|v| v.rule.as_str()))
}

fn event_row_fields(row: &EventOut, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (id, ty, at, payload) = row;
    out(id)?;
    out(ty)?;
    out(at)?;
    out(&JsonbText(payload))
}

/// A JSON text as a `jsonb` value: the version byte, then the text (as for [`Jsonb`]).
#[derive(Debug)]
struct JsonbText<'a>(&'a [u8]);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    tokio_postgres::types::to_sql_checked!();
}

fn noqueue_fields(row: &NoqueueOut<'_>, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (nq, fingerprint, count, verdict) = row;
    out(&&*nq.host)?;
    out(&nq.at)?;
    out(fingerprint)?;
    out(&nq.daemon.as_str())?;
    out(&nq.action.as_str())?;
    out(&nq.stage.as_str())?;
    out(&nq.client_name)?;
    out(&nq.client_addr)?;
    out(&nq.code)?;
    out(&nq.dsn)?;
    out(&nq.reason.as_str())?;
    out(&nq.sender)?;
    out(&nq.recipient)?;
    out(&nq.helo)?;
    out(&nq.proto)?;
    out(count)?;
    verdict_fields(Some(verdict), out)
}

fn auth_fields(row: &AuthOut<'_>, out: &mut Emit<'_>) -> Result<(), StoreError> {
    let (f, fingerprint, occurrence, info) = row;
    out(&&*f.host)?;
    out(&f.at)?;
    out(fingerprint)?;
    out(occurrence)?;
    out(&f.service.as_str())?;
    out(&f.client_name.as_str())?;
    out(&f.client_addr.as_str())?;
    out(&f.client_port.map(i32::from))?;
    out(&f.reverse_dns_known())?;
    out(&f.method.as_str())?;
    out(&f.username)?;
    out(&f.reason.as_str())?;
    out(&f.aborted)?;
    out(&info.country)?;
    out(&info.asn.map(i64::from))?;
    out(&info.as_org)
}

/// A recipient row's primary key, in its column order (time first, so new keys go to
/// the right edge of the index).
fn recipient_key_order(k: &RecipientKey) -> (DateTime<Utc>, &str, &str, &str, &str) {
    (
        k.message.arrived_at,
        &k.message.host,
        &k.message.queue_id,
        &k.recipient,
        &k.orig_recipient,
    )
}

/// Columns of a message row, in the order rows are COPYed.
pub(crate) const FROM_COLUMNS: &str = "(host, queue_id, arrived_at, last_seen_at,
    origin, client_name, client_addr, sasl_method, sasl_username, pickup_uid, message_id, sender,
    size, nrcpt, removed_at, expired_at, deleted_at, rejected_at, held_at, released_at,
    parent_queue_id, parent_arrived_at, parent_kind, tags)";

const FROM_TYPES: [Type; 24] = [
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::JSONB,
];

/// Columns of a recipient row, in the order rows are COPYed.
pub(crate) const TO_COLUMNS: &str = "(host, queue_id, arrived_at, recipient,
    orig_recipient, status, status_at, dsn, relay, response, delay, delay_before_qmgr,
    delay_in_qmgr, delay_conn_setup, delay_transmission, queued_as, attempts, first_attempt_at,
    last_attempt_at, failure_reason, hard, failure_rule)";

const TO_TYPES: [Type; 22] = [
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::TEXT,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
];

/// Columns of an attempt row, in the order rows are COPYed (attempt_at and status in
/// the places of status and status_at of a recipient row).
pub(crate) const ATTEMPT_COLUMNS: &str = "(host, queue_id, arrived_at, recipient,
    orig_recipient, status, attempt_at, dsn, relay, response, delay, delay_before_qmgr,
    delay_in_qmgr, delay_conn_setup, delay_transmission, queued_as, is_attempt, failure_reason,
    hard, failure_rule)";

const ATTEMPT_TYPES: [Type; 20] = [
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::FLOAT4,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
];

/// Columns of a NOQUEUE row, in the order rows are COPYed.
pub(crate) const NOQUEUE_COLUMNS: &str = "(host, logged_at, fingerprint, daemon, action, stage,
    client_name, client_addr, code, dsn, reason, sender, recipient, helo, proto, count,
    failure_reason, hard, failure_rule)";

const NOQUEUE_TYPES: [Type; 19] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
];

/// Columns of a SASL failure row, in the order rows are COPYed.
pub(crate) const AUTH_COLUMNS: &str = "(host, logged_at, fingerprint, occurrence, service,
    client_name, client_addr, client_port, reverse_dns, sasl_method, sasl_username, reason,
    aborted, country, asn, as_org)";

const AUTH_TYPES: [Type; 16] = [
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
];

/// A stable 64-bit FNV-1a hash of the logged fields of a SASL failure but host and
/// time (key columns of their own); not of what GeoIP says. Stable across runs and
/// versions: it is part of the key.
fn auth_fingerprint(f: &AuthFailure) -> i64 {
    let port = f.client_port.map(|p| p.to_string());
    fnv_fields(&[
        Some(&f.service),
        Some(&f.client_name),
        Some(&f.client_addr),
        port.as_deref(),
        Some(&f.method),
        f.username.as_deref(),
        Some(&f.reason),
        Some(if f.aborted { "aborted" } else { "failed" }),
    ])
}

/// FNV-1a over fields, each with a tag byte (keeps `None`, `""` and field boundaries
/// apart) and a terminator.
fn fnv_fields(fields: &[Option<&str>]) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    for s in fields {
        let bytes = s.map(str::as_bytes);
        for b in std::iter::once(u8::from(bytes.is_some()))
            .chain(bytes.unwrap_or_default().iter().copied())
            .chain(std::iter::once(0xffu8))
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h as i64
}

/// Columns of an outbox row, in the order rows are COPYed (recorded_at is the default).
pub(crate) const EVENT_COLUMNS: &str = "(id, type, occurred_at, payload)";

const EVENT_TYPES: [Type; 4] = [Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ, Type::JSONB];

/// A stable 64-bit FNV-1a hash of every NOQUEUE column but host and time (which are
/// key columns of their own). Stable across runs and versions: it is part of the key.
fn fingerprint(n: &Noqueue) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |s: Option<&str>| {
        // A tag byte keeps None, "" and field boundaries apart.
        let bytes = s.map(str::as_bytes);
        for b in std::iter::once(if bytes.is_some() { 1u8 } else { 0u8 })
            .chain(bytes.unwrap_or_default().iter().copied())
            .chain(std::iter::once(0xffu8))
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    let code = n.code.map(|c| c.to_string());
    feed(Some(&n.daemon));
    feed(Some(&n.action));
    feed(Some(&n.stage));
    feed(n.client_name.as_deref());
    feed(n.client_addr.as_deref());
    feed(code.as_deref());
    feed(n.dsn.as_deref());
    feed(Some(&n.reason));
    feed(n.sender.as_deref());
    feed(n.recipient.as_deref());
    feed(n.helo.as_deref());
    feed(n.proto.as_deref());
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pftrack_extract::{Fact, MessageUpdate};
    use std::sync::Arc;

    fn message(queue_id: &str, starts_life: bool) -> Fact {
        Fact::Message {
            key: MessageKey {
                host: Arc::from("mx1"),
                queue_id: Arc::from(queue_id),
                arrived_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            },
            seen_at: DateTime::from_timestamp(1_700_000_001, 0).unwrap_or_default(),
            update: MessageUpdate {
                sender: Some("a@example.org".into()),
                ..MessageUpdate::default()
            },
            starts_life,
        }
    }

    #[test]
    fn events_only_when_enabled_and_in_the_window() {
        let classifier = Classifier::builder().build().unwrap();
        let mut batch = Batch::new();
        let mut expired = message("4A1B2C3D4E", true);
        if let Fact::Message { update, .. } = &mut expired {
            update.expired_at = DateTime::from_timestamp(1_700_000_100, 0);
        }
        batch.add(expired);
        assert_eq!(
            EncodedBatch::encode(&batch, &classifier).unwrap().events(),
            0
        );
        let mut rules = EventRules::default();
        let encoded = EncodedBatch::encode_with(&batch, &classifier, Some(&rules)).unwrap();
        assert_eq!(encoded.events(), 1);
        let p = &encoded.events.payload;
        let id = pftrack_events::message_expired_id(
            "mx1",
            "4A1B2C3D4E",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        assert!(p.windows(id.len()).any(|w| w == id.as_bytes()));
        // The jsonb value: its length, the version byte, the JSON text.
        assert!(p.windows(2).any(|w| w == b"\x01{"));
        rules.since = DateTime::from_timestamp(1_700_000_101, 0);
        let encoded = EncodedBatch::encode_with(&batch, &classifier, Some(&rules)).unwrap();
        assert_eq!(encoded.events(), 0);
    }

    #[test]
    fn an_empty_batch_has_no_payload() {
        let encoded =
            EncodedBatch::encode(&Batch::new(), &Classifier::builder().build().unwrap()).unwrap();
        assert_eq!(encoded.rows(), 0);
        assert_eq!(encoded.payload_bytes(), 0);
    }

    #[test]
    fn new_and_known_messages_go_to_separate_streams_in_copy_format() {
        let mut batch = Batch::new();
        batch.add(message("4A1B2C3D4E", true));
        batch.add(message("5F6A7B8C9D", false));
        let encoded =
            EncodedBatch::encode(&batch, &Classifier::builder().build().unwrap()).unwrap();
        assert_eq!(encoded.messages_new.rows, 1);
        assert_eq!(encoded.messages_known.rows, 1);
        let p = &encoded.messages_new.payload;
        assert!(p.starts_with(COPY_HEADER));
        // Field count of the first tuple, then the host as length + bytes.
        let tuple = &p[COPY_HEADER.len()..];
        assert_eq!(&tuple[..2], &24i16.to_be_bytes());
        assert_eq!(&tuple[2..6], &3i32.to_be_bytes());
        assert_eq!(&tuple[6..9], b"mx1");
        // The trailer.
        assert_eq!(&p[p.len() - 2..], &(-1i16).to_be_bytes());
        // NULLs are a length of -1 without bytes: origin is the fifth field.
        let null = (-1i32).to_be_bytes();
        assert!(tuple.windows(4).any(|w| w == null));
    }
}
