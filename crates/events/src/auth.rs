//! `auth.bruteforce`: failures of SASL authentication from one client address crossed
//! the configured threshold within the configured window (the extractor decides when;
//! see `pftrack_extract::auth`). This module gives the event its stable id and its
//! payload.
//!
//! The id is derived from the failure that crossed the threshold — host, client
//! address, its time (µs) and its occurrence number among identical failures of that
//! instant — and from nothing else (not the count, the usernames or the GeoIP answer),
//! so a re-run, a resume or a second input with the same lines gives the same id and
//! the outbox keeps one event.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{EventType, IdHasher, stamp};

/// The id of an `auth.bruteforce` event: `evt_` and 32 hex digits from type, host,
/// client address, the time (µs) and occurrence of the failure that crossed the
/// threshold. Stable across runs and versions: it is the outbox's primary key.
pub fn auth_bruteforce_id(
    host: &str,
    client_addr: &str,
    crossed_at: DateTime<Utc>,
    occurrence: i32,
) -> String {
    IdHasher::new()
        .str(EventType::AuthBruteforce.as_str())
        .str(host)
        .str(client_addr)
        .time(crossed_at)
        .field(Some(&occurrence.to_be_bytes()))
        .id()
}

/// Failures from one client that crossed the brute-force threshold.
#[derive(Debug, Clone, Copy)]
pub struct Bruteforce<'a> {
    /// Host that logged the failures.
    pub host: &'a str,
    /// The client address.
    pub client_addr: &'a str,
    /// The client's name as logged (`unknown` without reverse DNS).
    pub client_name: &'a str,
    /// Time of the failure that crossed the threshold.
    pub crossed_at: DateTime<Utc>,
    /// Its occurrence number in that instant.
    pub occurrence: i32,
    /// Failures within the window up to `crossed_at`.
    pub count: u32,
    /// The earliest of them.
    pub first_at: DateTime<Utc>,
    /// The window, in seconds.
    pub window_secs: i64,
    /// The usernames tried (most frequent first).
    pub usernames: &'a [String],
    /// ISO country code of the address, when a GeoIP database knew it.
    pub country: Option<&'a str>,
    /// Autonomous system number, when known.
    pub asn: Option<u32>,
    /// Autonomous system organisation, when known.
    pub as_org: Option<&'a str>,
}

impl Bruteforce<'_> {
    /// The event's id ([`auth_bruteforce_id`]).
    pub fn id(&self) -> String {
        auth_bruteforce_id(
            self.host,
            self.client_addr,
            self.crossed_at,
            self.occurrence,
        )
    }

    /// The payload of the event with id `id`.
    pub fn payload(&self, id: &str) -> Value {
        json!({
            "type": EventType::AuthBruteforce.as_str(),
            "id": id,
            "timestamp": stamp(self.crossed_at),
            "data": {
                "host": self.host,
                "client_addr": self.client_addr,
                "client_name": self.client_name,
                "count": self.count,
                "window_seconds": self.window_secs,
                "first_at": stamp(self.first_at),
                "last_at": stamp(self.crossed_at),
                "usernames": self.usernames,
                "country": self.country,
                "asn": self.asn,
                "as_org": self.as_org,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    fn alarm(usernames: &[String]) -> Bruteforce<'_> {
        Bruteforce {
            host: "mx1",
            client_addr: "1.128.0.1",
            client_name: "unknown",
            crossed_at: t(1_741_950_600),
            occurrence: 1,
            count: 10,
            first_at: t(1_741_950_100),
            window_secs: 600,
            usernames,
            country: Some("AU"),
            asn: Some(1221),
            as_org: Some("Telstra Pty Ltd"),
        }
    }

    #[test]
    fn id_is_stable_and_depends_only_on_the_crossing_failure() {
        let users = vec!["admin".to_owned()];
        let a = alarm(&users);
        // Part of the outbox's keys: never change. Checked against an independent
        // implementation (Python, in the commit that added it).
        assert_eq!(a.id(), "evt_24d304c6180969671d2ac7f522ef7fbf");
        let other = [
            Bruteforce { host: "mx2", ..a },
            Bruteforce {
                client_addr: "1.128.0.2",
                ..a
            },
            Bruteforce {
                crossed_at: t(1),
                ..a
            },
            Bruteforce { occurrence: 2, ..a },
        ];
        for o in other {
            assert_ne!(o.id(), a.id());
        }
        let none: Vec<String> = Vec::new();
        let same = Bruteforce {
            count: 11,
            usernames: &none,
            country: None,
            asn: None,
            as_org: None,
            first_at: t(0),
            ..a
        };
        assert_eq!(same.id(), a.id());
    }

    #[test]
    fn payload_carries_the_alarm() {
        let users = vec!["admin".to_owned(), "info".to_owned()];
        let a = alarm(&users);
        let p = a.payload(&a.id());
        assert_eq!(p["type"], "auth.bruteforce");
        assert_eq!(p["data"]["client_addr"], "1.128.0.1");
        assert_eq!(p["data"]["count"], 10);
        assert_eq!(p["data"]["window_seconds"], 600);
        assert_eq!(p["data"]["usernames"][1], "info");
        assert_eq!(p["data"]["asn"], 1221);
        assert_eq!(p["data"]["country"], "AU");
        assert_eq!(p["data"]["last_at"], "2025-03-14T11:10:00.000000Z");
    }
}
