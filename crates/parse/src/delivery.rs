//! Delivery-agent lines: the per-recipient `QID: to=<…>, relay=…, …, status=… (…)`
//! record that every delivery agent (and qmgr, for deferrals it decides itself) logs
//! through Postfix's `log_adhoc()`, plus the smtp/lmtp client's connection and
//! conversation notices.

use nom::bytes::complete::tag;
use nom::character::complete::char;

use crate::common::{
    Res, address, ascii_till1, ascii_while1, is_queue_id, number, paren_tail, peer, seconds,
    till_byte,
};
use crate::event::{Delays, Delivery, DeliveryStatus, Event};

/// `a/b/c/d` of `delays=`.
pub(crate) fn delays(i: &str) -> Res<'_, Delays> {
    let (rest, before_qmgr) = seconds(i)?;
    let (rest, _) = char('/')(rest)?;
    let (rest, in_qmgr) = seconds(rest)?;
    let (rest, _) = char('/')(rest)?;
    let (rest, conn_setup) = seconds(rest)?;
    let (rest, _) = char('/')(rest)?;
    let (rest, transmission) = seconds(rest)?;
    Ok((
        rest,
        Delays {
            before_qmgr,
            in_qmgr,
            conn_setup,
            transmission,
        },
    ))
}

/// The `status=` word mapped to [`DeliveryStatus`].
pub(crate) fn status_of(word: &str) -> DeliveryStatus {
    match word {
        "sent" => DeliveryStatus::Sent,
        "deferred" => DeliveryStatus::Deferred,
        "bounced" => DeliveryStatus::Bounced,
        "expired" => DeliveryStatus::Expired,
        _ => DeliveryStatus::Undeliverable,
    }
}

/// The queue id after the last `queued as ` or `forwarded as ` in a delivery
/// response, when it has the form of a Postfix queue id. Scans backwards for `as `
/// (memrchr on `a`) instead of searching both phrases.
pub(crate) fn queued_as(response: &str) -> Option<&str> {
    let b = response.as_bytes();
    let at = memchr::memrchr_iter(b'a', b).find(|&at| {
        b[at..].starts_with(b"as ")
            && (b[..at].ends_with(b"queued ") || b[..at].ends_with(b"forwarded "))
    })?;
    let tail = &response[at + 3..];
    let end = tail
        .bytes()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(tail.len());
    let id = &tail[..end];
    is_queue_id(id).then_some(id)
}

/// A value up to the next `,` (relay, dsn and unknown fields), found with memchr:
/// relay values run to dozens of bytes.
fn field_value(i: &str) -> Res<'_, &str> {
    Ok(till_byte(i, b','))
}

/// `to=<…>[, orig_to=<…>], relay=…[, conn_use=N], delay=…, delays=a/b/c/d[, tls=…],
/// dsn=…, status=WORD (response)` after `QID: `. Fields are read by name, so older
/// lines without `dsn=`/`delays=` and newer ones with extra fields both parse; the
/// line must reach `status=`.
pub(crate) fn delivery<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (mut rest, _) = tag("to=")(i)?;
    let (r, to) = address(rest)?;
    rest = r;
    let mut d = Delivery {
        queue_id,
        to,
        orig_to: None,
        relay: None,
        conn_use: None,
        delay: None,
        delays: None,
        dsn: None,
        status: DeliveryStatus::Undeliverable,
        status_word: "",
        response: "",
        queued_as: None,
    };
    loop {
        let r = match rest.strip_prefix(", ") {
            Some(r) => r,
            None => rest.strip_prefix(',').ok_or_else(|| {
                nom::Err::Error(nom::error::Error::new(rest, nom::error::ErrorKind::Tag))
            })?,
        };
        let (r, key) = ascii_while1(|c: u8| c.is_ascii_lowercase() || c == b'_')(r)?;
        let (r, _) = char('=')(r)?;
        match key {
            "orig_to" => {
                let (r2, v) = address(r)?;
                d.orig_to = Some(v);
                rest = r2;
            }
            "relay" => {
                let (r2, v) = field_value(r)?;
                d.relay = Some(v);
                rest = r2;
            }
            "conn_use" => {
                let (r2, v) = number::<u32>(r)?;
                d.conn_use = Some(v);
                rest = r2;
            }
            "delay" => {
                let (r2, v) = seconds(r)?;
                d.delay = Some(v);
                rest = r2;
            }
            "delays" => {
                let (r2, v) = delays(r)?;
                d.delays = Some(v);
                rest = r2;
            }
            "dsn" => {
                let (r2, v) = field_value(r)?;
                d.dsn = Some(v);
                rest = r2;
            }
            "status" => {
                let (r2, word) = ascii_till1(|c: u8| c == b' ' || c == b',')(r)?;
                d.status = status_of(word);
                d.status_word = word;
                let r2 = r2.trim_start_matches(' ');
                d.response = paren_tail(r2);
                d.queued_as = queued_as(d.response);
                return Ok(("", Event::Delivery(d)));
            }
            _ => {
                let (r2, _) = field_value(r)?;
                rest = r2;
            }
        }
    }
}

/// `connect to host[ip]:port: reason` (smtp, lmtp), optionally after `QID: `.
pub(crate) fn connect_failed<'a>(queue_id: Option<&'a str>, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, _) = tag("connect to ")(i)?;
    let (rest, server) = peer(rest)?;
    let (rest, _) = char(':')(rest)?;
    let reason = rest.trim_start_matches(' ');
    Ok((
        "",
        Event::ConnectFailed {
            queue_id,
            server,
            reason,
        },
    ))
}

/// Starts of the smtp/lmtp conversation notices that follow a queue id, each with
/// the length of the text before the server's name (0 when none follows).
const CONVERSATION_STARTS: [(&str, usize); 6] = [
    ("host ", 5),
    ("lost connection with ", 21),
    ("conversation with ", 18),
    ("SASL authentication failed; server ", 35),
    ("Protocol error", 0),
    ("server ", 7),
];

/// `QID: host X said: …`, `QID: lost connection with X while …`, `QID:
/// conversation with X timed out while …` and friends.
pub(crate) fn conversation<'a>(queue_id: Option<&'a str>, i: &'a str) -> Res<'a, Event<'a>> {
    for (start, before_peer) in CONVERSATION_STARTS {
        if i.starts_with(start) {
            let peer = if before_peer == 0 {
                None
            } else {
                peer(&i[before_peer..]).ok().map(|(_, p)| p)
            };
            return Ok((
                "",
                Event::SmtpConversation {
                    queue_id,
                    peer,
                    text: i,
                },
            ));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// TLS trouble the smtp client and server log without a level: `certificate
/// verification failed for host[ip]:25: reason`, `SSL_connect error to host[ip]:25:
/// reason`, `SSL_accept error from host[ip]: reason`, `server certificate
/// verification failed for …`.
pub(crate) fn tls_problem(i: &str) -> Res<'_, Event<'_>> {
    for lead in [
        "certificate verification failed for ",
        "server certificate verification failed for ",
        "client certificate verification failed for ",
        "SSL_connect error to ",
        "SSL_accept error from ",
        "TLS handshake failed for ",
        "setting up TLS connection to ",
        "setting up TLS connection from ",
        "Cannot start TLS: ",
    ] {
        if let Some(r) = i.strip_prefix(lead) {
            let (peer, detail) = match peer(r) {
                Ok((r, p)) => (
                    Some(p),
                    r.strip_prefix(':').unwrap_or(r).trim_start_matches(' '),
                ),
                Err(_) => (None, r),
            };
            return Ok((
                "",
                Event::TlsProblem {
                    peer,
                    text: i,
                    detail,
                },
            ));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Peer;

    #[test]
    fn delays_field() {
        let (rest, d) = delays("0.44/0.01/0.05/0.01, dsn").unwrap();
        assert_eq!(rest, ", dsn");
        assert_eq!(
            d,
            Delays {
                before_qmgr: 0.44,
                in_qmgr: 0.01,
                conn_setup: 0.05,
                transmission: 0.01
            }
        );
        assert!(delays("1/2/3").is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of("sent"), DeliveryStatus::Sent);
        assert_eq!(status_of("deferred"), DeliveryStatus::Deferred);
        assert_eq!(status_of("bounced"), DeliveryStatus::Bounced);
        assert_eq!(status_of("expired"), DeliveryStatus::Expired);
        assert_eq!(status_of("softbounce"), DeliveryStatus::Undeliverable);
    }

    #[test]
    fn queued_as_ids() {
        assert_eq!(
            queued_as("250 2.0.0 Ok: queued as 5058FBC3A"),
            Some("5058FBC3A")
        );
        assert_eq!(
            queued_as("250 2.0.0 Ok: queued as 3mPVKl3YVXz2pS5Z"),
            Some("3mPVKl3YVXz2pS5Z")
        );
        assert_eq!(queued_as("forwarded as 3A4B5C6D7E"), Some("3A4B5C6D7E"));
        assert_eq!(
            queued_as(
                "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 8CF0B2E3B)"
            ),
            Some("8CF0B2E3B")
        );
        assert_eq!(queued_as("250 OK id=1WUooQ-0001rh-A8"), None);
        assert_eq!(queued_as("250 queued as mail"), None);
    }

    #[test]
    fn delivery_line() {
        let (_, e) = delivery(
            "3mPVKl0Mhjz7sXv",
            "to=<56597@continuity.delivery>, relay=10.2.2.85[10.2.2.85]:2527, conn_use=2, delay=0.51, delays=0.44/0.01/0.05/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 3mPVKl3YVXz2pS5Z)",
        )
        .unwrap();
        let Event::Delivery(d) = e else { panic!() };
        assert_eq!(d.to, "56597@continuity.delivery");
        assert_eq!(d.relay, Some("10.2.2.85[10.2.2.85]:2527"));
        assert_eq!(d.conn_use, Some(2));
        assert_eq!(d.delay, Some(0.51));
        assert_eq!(d.dsn, Some("2.0.0"));
        assert_eq!(d.status, DeliveryStatus::Sent);
        assert_eq!(d.response, "250 2.0.0 Ok: queued as 3mPVKl3YVXz2pS5Z");
        assert_eq!(d.queued_as, Some("3mPVKl3YVXz2pS5Z"));
    }

    #[test]
    fn delivery_variants() {
        // Postfix 2.x: no dsn=, no delays=.
        let (_, e) = delivery(
            "CCAE27A4",
            "to=<cpan-testers@perl.org>, relay=mx.develooper.com[63.251.223.176], delay=9, status=sent (250 Queued! 1108907778 qp 18309 <x@y>)",
        )
        .unwrap();
        let Event::Delivery(d) = e else { panic!() };
        assert_eq!((d.dsn, d.delays, d.delay), (None, None, Some(9.0)));
        // to= without brackets, orig_to, nested parentheses, trailing commas.
        let (_, e) = delivery(
            "B12B9110102D",
            "to=a@b.example, orig_to=<sniptybounce>, relay=local, delay=1.2, delays=0.66/0.28/0/0.27, dsn=5.1.1, status=bounced (host x[1.2.3.4] said: 550 no (in reply to RCPT TO command)),,,,",
        )
        .unwrap();
        let Event::Delivery(d) = e else { panic!() };
        assert_eq!((d.to, d.orig_to), ("a@b.example", Some("sniptybounce")));
        assert_eq!(
            d.response,
            "host x[1.2.3.4] said: 550 no (in reply to RCPT TO command)"
        );
        assert_eq!(d.status, DeliveryStatus::Bounced);
        // Unknown fields are skipped.
        let (_, e) = delivery(
            "ABCDEF12",
            "to=<a@b>, relay=x[1.2.3.4]:25, delay=1, delays=1/0/0/0, tls=dane/failed, dsn=2.0.0, status=sent (250 ok)",
        )
        .unwrap();
        let Event::Delivery(d) = e else { panic!() };
        assert_eq!(d.status, DeliveryStatus::Sent);
        assert_eq!(
            d.relay_peer(),
            Some(Peer {
                name: "x",
                addr: "1.2.3.4",
                port: Some(25)
            })
        );
        // Cut short before status=.
        assert!(delivery("ABCDEF12", "to=<56597@con").is_err());
    }

    #[test]
    fn connect_failures() {
        let (_, e) = connect_failed(
            None,
            "connect to mx01.mail.com[74.208.5.22]:25: Connection timed out",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::ConnectFailed {
                queue_id: None,
                server: Peer {
                    name: "mx01.mail.com",
                    addr: "74.208.5.22",
                    port: Some(25)
                },
                reason: "Connection timed out",
            }
        );
    }

    #[test]
    fn conversations() {
        let (_, e) = conversation(
            Some("C3C50C2C132"),
            "host in.smtp.cz[81.95.97.102] said: 450 4.7.1 x (in reply to RCPT TO command)",
        )
        .unwrap();
        let Event::SmtpConversation { queue_id, peer, .. } = e else {
            panic!()
        };
        assert_eq!(queue_id, Some("C3C50C2C132"));
        assert_eq!(
            peer,
            Some(Peer {
                name: "in.smtp.cz",
                addr: "81.95.97.102",
                port: None
            })
        );
        let (_, e) = conversation(
            Some("D0F29603B4"),
            "SASL authentication failed; server xyz.example.com[1.2.3.4] said: 535 5.7.8 Error",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::SmtpConversation {
                peer: Some(Peer {
                    addr: "1.2.3.4",
                    ..
                }),
                ..
            }
        ));
        for (start, n) in CONVERSATION_STARTS {
            assert!(n == 0 || n == start.len(), "{start}");
        }
        assert!(conversation(None, "enabling PIX workarounds").is_err());
    }

    #[test]
    fn tls_problems() {
        let (_, e) = tls_problem(
            "certificate verification failed for smtp.host196.example.com[10.0.0.2]:25: untrusted issuer /C=ch",
        )
        .unwrap();
        let Event::TlsProblem { peer, detail, .. } = e else {
            panic!()
        };
        assert_eq!(peer.map(|p| p.addr), Some("10.0.0.2"));
        assert_eq!(detail, "untrusted issuer /C=ch");
        assert!(tls_problem("connect from x[1.2.3.4]").is_err());
    }
}
