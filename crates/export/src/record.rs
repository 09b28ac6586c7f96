//! Record types, fields and values: what a line of an accounting file is made of.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ExportError;

/// The kinds of accounting records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// A recipient delivered (`status=sent`): to a mailbox, a relay or a content filter.
    Delivered,
    /// A delivery attempt that failed temporarily (`status=deferred`).
    Deferred,
    /// A recipient returned to the sender: `status=bounced`, or expired in the queue.
    Bounced,
    /// A recipient refused: before queueing (NOQUEUE, one record per occurrence) or
    /// after (cleanup, a milter).
    Rejected,
    /// A failed SASL authentication (smtpd's `SASL … authentication failed`).
    AuthFailure,
}

impl RecordType {
    /// Every type, in the order of `--types` defaults.
    pub const ALL: [RecordType; 5] = [
        RecordType::Delivered,
        RecordType::Deferred,
        RecordType::Bounced,
        RecordType::Rejected,
        RecordType::AuthFailure,
    ];

    /// The name in `--types` and in the `type` field.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Delivered => "delivered",
            RecordType::Deferred => "deferred",
            RecordType::Bounced => "bounced",
            RecordType::Rejected => "rejected",
            RecordType::AuthFailure => "auth-failure",
        }
    }

    /// The file name prefix of incremental exports (haraka's `d`, `df`, `b`, plus `r`
    /// and `af`).
    pub fn prefix(self) -> &'static str {
        match self {
            RecordType::Delivered => "d",
            RecordType::Deferred => "df",
            RecordType::Bounced => "b",
            RecordType::Rejected => "r",
            RecordType::AuthFailure => "af",
        }
    }

    /// From a name of [`RecordType::name`].
    pub fn parse(name: &str) -> Result<RecordType, ExportError> {
        RecordType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                ExportError::Usage(format!(
                    "unknown record type {name:?}; known: {}",
                    RecordType::ALL.map(RecordType::name).join(", ")
                ))
            })
    }

    /// A list such as `delivered,bounced` (empty: every type).
    pub fn parse_list(list: &str) -> Result<Vec<RecordType>, ExportError> {
        let mut types = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let t = RecordType::parse(name)?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        if types.is_empty() {
            types = RecordType::ALL.to_vec();
        }
        types.sort();
        Ok(types)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields a record can carry (haraka accounting_files' names in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The record type [type].
    Type,
    /// When Postfix logged the event [timeLogged].
    LoggedAt,
    /// When the message entered the queue [timeQueued]; empty for NOQUEUE rejects.
    QueuedAt,
    /// The host that logged it.
    Host,
    /// Postfix queue id [jobId]; empty for NOQUEUE rejects.
    QueueId,
    /// The `Message-ID` header, without `<>` [jobId].
    MessageId,
    /// Envelope sender (empty for the null sender `<>`).
    Sender,
    /// The recipient [rcpt].
    Recipient,
    /// The recipient before alias expansion (`orig_to=`).
    OrigRecipient,
    /// Message size in bytes.
    Size,
    /// The client's name as Postfix resolved it (`unknown` without reverse DNS) [srcMta].
    ClientName,
    /// The client's address [srcIp].
    ClientAddr,
    /// The HELO name; Postfix logs it only in NOQUEUE rejects [srcMta].
    Helo,
    /// The SASL login the message was submitted with.
    SaslUsername,
    /// `relay=` as logged: `name[address]:port`, `local`, `none`.
    Relay,
    /// The address inside `relay=` [destIp].
    RelayAddr,
    /// Enhanced status code [dsnStatus].
    Dsn,
    /// The remote server's reply or Postfix's reason [dsnMsg].
    Response,
    /// `delay=`, seconds [delay].
    Delay,
    /// Why it failed, a reason of docs/classification.md [bounceCat].
    Reason,
    /// Whether the failure is permanent.
    Hard,
    /// The SASL mechanism (the message's, or the failed attempt's).
    SaslMethod,
    /// The client address's country (ISO 3166-1 alpha-2) as stored with a SASL
    /// failure; empty for other types.
    Country,
    /// The client address's autonomous system number (SASL failures).
    Asn,
    /// The autonomous system's organisation (SASL failures).
    AsOrg,
}

impl Field {
    /// Every field, in the default order.
    pub const ALL: [Field; 25] = [
        Field::Type,
        Field::LoggedAt,
        Field::QueuedAt,
        Field::Host,
        Field::QueueId,
        Field::MessageId,
        Field::Sender,
        Field::Recipient,
        Field::OrigRecipient,
        Field::Size,
        Field::ClientName,
        Field::ClientAddr,
        Field::Helo,
        Field::SaslUsername,
        Field::Relay,
        Field::RelayAddr,
        Field::Dsn,
        Field::Response,
        Field::Delay,
        Field::Reason,
        Field::Hard,
        Field::SaslMethod,
        Field::Country,
        Field::Asn,
        Field::AsOrg,
    ];

    /// The name in `--fields` and in header lines.
    pub fn name(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::LoggedAt => "logged_at",
            Field::QueuedAt => "queued_at",
            Field::Host => "host",
            Field::QueueId => "queue_id",
            Field::MessageId => "message_id",
            Field::Sender => "sender",
            Field::Recipient => "recipient",
            Field::OrigRecipient => "orig_recipient",
            Field::Size => "size",
            Field::ClientName => "client_name",
            Field::ClientAddr => "client_addr",
            Field::Helo => "helo",
            Field::SaslUsername => "sasl_username",
            Field::Relay => "relay",
            Field::RelayAddr => "relay_addr",
            Field::Dsn => "dsn",
            Field::Response => "response",
            Field::Delay => "delay",
            Field::Reason => "reason",
            Field::Hard => "hard",
            Field::SaslMethod => "sasl_method",
            Field::Country => "country",
            Field::Asn => "asn",
            Field::AsOrg => "as_org",
        }
    }

    /// haraka accounting_files' name for the same thing, accepted in `--fields` too.
    fn haraka_name(self) -> Option<&'static str> {
        Some(match self {
            Field::LoggedAt => "timeLogged",
            Field::QueuedAt => "timeQueued",
            Field::Recipient => "rcpt",
            Field::ClientName => "srcMta",
            Field::ClientAddr => "srcIp",
            Field::RelayAddr => "destIp",
            Field::QueueId => "jobId",
            Field::Dsn => "dsnStatus",
            Field::Response => "dsnMsg",
            Field::Reason => "bounceCat",
            _ => return None,
        })
    }

    /// A comma-separated list of names (ours or haraka's); empty: every field.
    pub fn parse_list(list: &str) -> Result<Vec<Field>, ExportError> {
        let mut fields = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let field = Field::ALL
                .into_iter()
                .find(|f| f.name() == name || f.haraka_name() == Some(name))
                .ok_or_else(|| {
                    ExportError::Usage(format!(
                        "unknown field {name:?}; known: {}",
                        Field::ALL.map(Field::name).join(", ")
                    ))
                })?;
            if fields.contains(&field) {
                return Err(ExportError::Usage(format!("field {name:?} named twice")));
            }
            fields.push(field);
        }
        if fields.is_empty() {
            fields = Field::ALL.to_vec();
        }
        Ok(fields)
    }

    /// Names joined by commas, as stored with an export's files.
    pub fn list_name(fields: &[Field]) -> String {
        fields
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One field's value, borrowed from the database row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Not known or not applicable (empty in TSV and CSV, `null` in JSON).
    Null,
    /// Text.
    Str(&'a str),
    /// A whole number.
    Int(i64),
    /// Seconds.
    Float(f32),
    /// True or false.
    Bool(bool),
    /// An instant, written in RFC 3339 UTC.
    Time(DateTime<Utc>),
}

/// The address inside `relay=`'s brackets: `mx.example.com[192.0.2.1]:25` → `192.0.2.1`,
/// `[2001:db8::1]:25` → `2001:db8::1`; `None` for `local`, `none` and the like.
pub fn relay_addr(relay: &str) -> Option<&str> {
    let open = relay.rfind('[')?;
    let close = open + relay[open..].find(']')?;
    let addr = &relay[open + 1..close];
    // `host[private/dovecot-lmtp]` names a socket, not an address.
    addr.parse::<std::net::IpAddr>().is_ok().then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses() {
        assert_eq!(
            relay_addr("mx.example.com[192.0.2.1]:25"),
            Some("192.0.2.1")
        );
        assert_eq!(
            relay_addr("mx.example.net[2001:db8::1]:25"),
            Some("2001:db8::1")
        );
        assert_eq!(relay_addr("local"), None);
        assert_eq!(relay_addr("none"), None);
        assert_eq!(relay_addr("x[]:25"), None);
        assert_eq!(relay_addr("broken[1.2.3.4"), None);
        assert_eq!(relay_addr("private/dovecot-lmtp"), None);
        assert_eq!(relay_addr("mx1.example.com[private/dovecot-lmtp]"), None);
    }

    #[test]
    fn field_lists() {
        let f = Field::parse_list("type, timeLogged,rcpt,dsn,bounceCat").ok();
        assert_eq!(
            f,
            Some(vec![
                Field::Type,
                Field::LoggedAt,
                Field::Recipient,
                Field::Dsn,
                Field::Reason
            ])
        );
        assert_eq!(Field::parse_list("").ok(), Some(Field::ALL.to_vec()));
        assert!(Field::parse_list("type,nope").is_err());
        assert!(Field::parse_list("type,type").is_err());
    }

    #[test]
    fn type_lists() {
        assert_eq!(
            RecordType::parse_list("rejected,delivered,rejected").ok(),
            Some(vec![RecordType::Delivered, RecordType::Rejected])
        );
        assert_eq!(
            RecordType::parse_list("").ok(),
            Some(RecordType::ALL.to_vec())
        );
        assert!(RecordType::parse_list("sent").is_err());
    }
}
