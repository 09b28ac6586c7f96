//! smtpd session lines: connect, disconnect, `QID: client=`, access decisions
//! (`reject`, `milter-reject`, `proxy-accept`, …), early session ends, SASL failures,
//! TLS and pipelining notices. The decision grammar is also used by postscreen and by
//! cleanup's milter lines, which log the same shape.

use nom::bytes::complete::tag;

use crate::common::{
    Res, ascii_till, ascii_till1, ascii_while1, find, number, peer, reply, rfind, split_trailer,
    trailer, upper_word,
};
use crate::event::{Event, Peer, Reject, RejectAction, SessionEnd};

/// `connect from host[ip]`. Anything after the peer is ignored (damaged logs append
/// commas or spaces).
pub(crate) fn connect(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("connect from ")(i)?;
    let (rest, client) = peer(rest)?;
    Ok((rest, Event::Connect { client }))
}

/// `disconnect from host[ip][ ehlo=1 mail=1 … commands=N[/M]]`.
pub(crate) fn disconnect(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("disconnect from ")(i)?;
    let (rest, client) = peer(rest)?;
    let counters = rest.trim_start_matches(' ').trim_end();
    Ok((
        "",
        Event::Disconnect {
            client,
            counters,
            commands: commands_counter(counters),
        },
    ))
}

/// The `N` of `commands=N` or `commands=N/M` in the counters of a disconnect line.
fn commands_counter(counters: &str) -> Option<u32> {
    let at = find(counters, "commands=")?;
    number::<u32>(&counters[at + "commands=".len()..])
        .ok()
        .map(|(_, n)| n)
}

/// The value of one `key=value` in a comma-separated list: up to the next `,`.
fn comma_value(i: &str) -> Res<'_, &str> {
    ascii_till(|c: u8| c == b',')(i)
}

/// `client=host[ip][, sasl_method=…][, sasl_username=…][, sasl_sender=…]
/// [, orig_queue_id=…][, orig_client=host[ip]]` after `QID: `; also a bare `client=`.
pub(crate) fn smtpd_client<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, _) = tag("client=")(i)?;
    let (mut rest, client) = match peer(rest) {
        Ok((r, p)) => (r, Some(p)),
        Err(_) => (rest, None),
    };
    let mut sasl_method = None;
    let mut sasl_username = None;
    let mut sasl_sender = None;
    let mut orig_queue_id = None;
    let mut orig_client = None;
    while let Some(r) = rest.strip_prefix(", ") {
        let Ok((r, key)) = ascii_while1(|c: u8| c.is_ascii_lowercase() || c == b'_')(r) else {
            break;
        };
        let Some(r) = r.strip_prefix('=') else { break };
        if key == "orig_client" {
            match peer(r) {
                Ok((r2, p)) => {
                    orig_client = Some(p);
                    rest = r2;
                    continue;
                }
                Err(_) => break,
            }
        }
        let (r, value) = comma_value(r)?;
        match key {
            "sasl_method" => sasl_method = Some(value),
            "sasl_username" => sasl_username = Some(value),
            "sasl_sender" => sasl_sender = Some(value),
            "orig_queue_id" => orig_queue_id = Some(value),
            _ => {}
        }
        rest = r;
    }
    Ok((
        rest,
        Event::SmtpdClient {
            queue_id,
            client,
            sasl_method,
            sasl_username,
            sasl_sender,
            orig_queue_id,
            orig_client,
        },
    ))
}

/// `lost connection|timeout|too many errors|bare <LF> received after STAGE[ (N
/// bytes)] from host[ip]`,
/// with the queue id (or `NOQUEUE`) already taken off by the caller.
pub(crate) fn session_end<'a>(queue_id: Option<&'a str>, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, how) = if let Some(r) = i.strip_prefix("lost connection after ") {
        (r, SessionEnd::LostConnection)
    } else if let Some(r) = i.strip_prefix("timeout after ") {
        (r, SessionEnd::Timeout)
    } else if let Some(r) = i.strip_prefix("too many errors after ") {
        (r, SessionEnd::TooManyErrors)
    } else if let Some(r) = i.strip_prefix("bare <LF> received after ") {
        (r, SessionEnd::BareNewline)
    } else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    };
    let (rest, stage) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, bytes) = match rest.strip_prefix(" (") {
        Some(r) => {
            // Some Postfix versions log `(approximately N bytes)`.
            let r = r.strip_prefix("approximately ").unwrap_or(r);
            let (r, n) = number::<u64>(r)?;
            let (r, _) = tag(" bytes)")(r)?;
            (r, Some(n))
        }
        None => (rest, None),
    };
    let (rest, client) = match rest.strip_prefix(" from ") {
        Some(r) => match peer(r) {
            Ok((r, p)) => (r, Some(p)),
            Err(_) => (r, None),
        },
        None => (rest, None),
    };
    Ok((
        rest,
        Event::SessionEnded {
            queue_id,
            how,
            stage,
            bytes,
            client,
        },
    ))
}

/// The action word before `: ` in a decision line, mapped to [`RejectAction`].
pub(crate) fn action_of(word: &str) -> RejectAction {
    match word {
        "reject" => RejectAction::Reject,
        "defer" => RejectAction::Defer,
        "warn" | "warning" => RejectAction::Warn,
        "hold" => RejectAction::Hold,
        "discard" => RejectAction::Discard,
        "filter" => RejectAction::Filter,
        "redirect" => RejectAction::Redirect,
        "reject_warning" => RejectAction::RejectWarning,
        "milter-reject" => RejectAction::MilterReject,
        "milter-discard" => RejectAction::MilterDiscard,
        "milter-hold" => RejectAction::MilterHold,
        "proxy-reject" => RejectAction::ProxyReject,
        "proxy-accept" => RejectAction::ProxyAccept,
        _ => RejectAction::Other,
    }
}

/// An action word: lower-case letters, `_` and `-`, followed by `: `.
pub(crate) fn action_word(i: &str) -> Res<'_, &str> {
    let (rest, word) = ascii_while1(|c: u8| c.is_ascii_lowercase() || c == b'_' || c == b'-')(i)?;
    let (rest, _) = tag(": ")(rest)?;
    Ok((rest, word))
}

/// A decision after the queue id (or `NOQUEUE`): `ACTION: STAGE from host[ip]: reply;
/// trailer`, or without client as proxy-accept/-reject log it, `ACTION: STAGE: reply;
/// trailer`. postscreen's `reject: connect from [ip]:port: …` has a lower-case stage.
pub(crate) fn decision<'a>(queue_id: Option<&'a str>, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, word) = action_word(i)?;
    let (rest, stage) = match upper_word(rest) {
        Ok(ok) => ok,
        Err(e) => match rest.strip_prefix("connect") {
            Some(r) => (r, &rest[..7]),
            None => return Err(e),
        },
    };
    let (body, client) = if let Some(r) = rest.strip_prefix(" from ") {
        let (r, p) = peer(r)?;
        // A truncated line may end right after the client.
        let r = r.strip_prefix(':').unwrap_or(r);
        (r.strip_prefix(' ').unwrap_or(r), Some(p))
    } else if let Some(r) = rest.strip_prefix(": ") {
        (r, None)
    } else if rest.is_empty() || rest == ":" {
        ("", None)
    } else {
        return Err(nom::Err::Error(nom::error::Error::new(
            rest,
            nom::error::ErrorKind::Tag,
        )));
    };
    Ok(("", reject_event(queue_id, word, stage, client, body)))
}

/// Build a [`Reject`] from the reply-and-trailer text after the client.
fn reject_event<'a>(
    queue_id: Option<&'a str>,
    word: &'a str,
    stage: &'a str,
    client: Option<Peer<'a>>,
    body: &'a str,
) -> Event<'a> {
    let (text, tail) = split_trailer(body);
    let (code, dsn, text) = reply(text);
    let t = match tail {
        Some(tail) => trailer(tail).map(|(_, t)| t).unwrap_or_default(),
        None => Default::default(),
    };
    Event::Reject(Reject {
        queue_id,
        action: action_of(word),
        action_word: word,
        stage,
        client,
        code,
        dsn,
        text,
        from: t.from,
        to: t.to,
        proto: t.proto,
        helo: t.helo,
    })
}

/// `host[ip]: SASL MECH authentication failed: reason[, sasl_username=user]` or
/// `host[ip]: SASL MECH authentication aborted` after `warning: ` (smtpd_sasl_glue.c).
/// `sasl_username=(unavailable)` (Postfix could not tell) gives `None`.
pub(crate) fn sasl_failed(i: &str) -> Res<'_, Event<'_>> {
    let (rest, client) = peer(i)?;
    let (rest, _) = tag(": SASL ")(rest)?;
    let (rest, mechanism) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" authentication ")(rest)?;
    if let Some(after) = rest.strip_prefix("aborted")
        && after.trim_end().is_empty()
    {
        return Ok((
            "",
            Event::SaslFailed {
                client,
                mechanism,
                reason: "",
                sasl_username: None,
                aborted: true,
            },
        ));
    }
    let (rest, _) = tag("failed")(rest)?;
    // Old versions (and some SASL back ends) end the line here, or after the colon.
    let rest = match rest.strip_prefix(':') {
        Some(r) => r.strip_prefix(' ').unwrap_or(r),
        None if rest.trim_end().is_empty() => "",
        None => {
            return Err(nom::Err::Error(nom::error::Error::new(
                rest,
                nom::error::ErrorKind::Tag,
            )));
        }
    };
    let (reason, sasl_username) = match rfind(rest, ", sasl_username=") {
        Some(at) => {
            let user = rest[at + ", sasl_username=".len()..].trim_end();
            (&rest[..at], (user != "(unavailable)").then_some(user))
        }
        None => (rest.trim_end(), None),
    };
    Ok((
        "",
        Event::SaslFailed {
            client,
            mechanism,
            reason,
            sasl_username,
            aborted: false,
        },
    ))
}

/// `TRUST TLS connection established from|to host[ip][:port]: details` (smtpd, smtp,
/// lmtp, tlsproxy).
pub(crate) fn tls_established(i: &str) -> Res<'_, Event<'_>> {
    // Postfix before 2.5 logged no trust level.
    let (rest, trust) = match i.strip_prefix("TLS connection established ") {
        Some(r) => (r, ""),
        None => {
            let (r, trust) = ascii_while1(|c: u8| c.is_ascii_alphabetic())(i)?;
            let (r, _) = tag(" TLS connection established ")(r)?;
            (r, trust)
        }
    };
    let (rest, incoming) = if let Some(r) = rest.strip_prefix("from ") {
        (r, true)
    } else {
        let (r, _) = tag("to ")(rest)?;
        (r, false)
    };
    let (rest, peer) = peer(rest)?;
    let detail = rest
        .strip_prefix(':')
        .unwrap_or(rest)
        .trim_start_matches(' ');
    Ok((
        "",
        Event::TlsEstablished {
            incoming,
            trust,
            peer,
            detail,
        },
    ))
}

/// `improper command pipelining after STAGE from host[ip]: text`.
pub(crate) fn improper_pipelining(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("improper command pipelining after ")(i)?;
    let (rest, stage) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" from ")(rest)?;
    let (rest, client) = peer(rest)?;
    let text = rest
        .strip_prefix(':')
        .unwrap_or(rest)
        .trim_start_matches(' ');
    Ok((
        "",
        Event::ImproperPipelining {
            stage,
            client,
            text,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(name: &'a str, addr: &'a str, port: Option<u16>) -> Peer<'a> {
        Peer { name, addr, port }
    }

    #[test]
    fn connect_lines() {
        let (_, e) = connect("connect from unknown[192.0.2.1]").unwrap();
        assert_eq!(
            e,
            Event::Connect {
                client: p("unknown", "192.0.2.1", None)
            }
        );
        let (_, e) = connect("connect from OURMAILDOMAIN.com[127.0.0.1],,,,").unwrap();
        assert_eq!(
            e,
            Event::Connect {
                client: p("OURMAILDOMAIN.com", "127.0.0.1", None)
            }
        );
        assert!(connect("connect to x[1.2.3.4]:25: refused").is_err());
    }

    #[test]
    fn disconnect_lines() {
        let (_, e) =
            disconnect("disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 quit=1 commands=2/3")
                .unwrap();
        assert_eq!(
            e,
            Event::Disconnect {
                client: p("unknown", "192.0.2.1", None),
                counters: "ehlo=1 auth=0/1 quit=1 commands=2/3",
                commands: Some(2),
            }
        );
        let (_, e) = disconnect("disconnect from localhost[127.0.0.1]").unwrap();
        assert_eq!(
            e,
            Event::Disconnect {
                client: p("localhost", "127.0.0.1", None),
                counters: "",
                commands: None
            }
        );
    }

    #[test]
    fn client_lines() {
        let (_, e) = smtpd_client(
            "2490911026E1",
            "client=OURMAILDOMAIN.com[127.0.0.1], sasl_method=LOGIN, sasl_username=jordy",
        )
        .unwrap();
        let Event::SmtpdClient {
            client,
            sasl_method,
            sasl_username,
            sasl_sender,
            ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(client, Some(p("OURMAILDOMAIN.com", "127.0.0.1", None)));
        assert_eq!(
            (sasl_method, sasl_username, sasl_sender),
            (Some("LOGIN"), Some("jordy"), None)
        );

        let (_, e) = smtpd_client("4104E3D", "client=").unwrap();
        assert!(matches!(e, Event::SmtpdClient { client: None, .. }));

        let (_, e) = smtpd_client(
            "3D1A91A0B8",
            "client=localhost[127.0.0.1], orig_queue_id=9B6C71A0A7, orig_client=mail.example.org[198.51.100.7]",
        )
        .unwrap();
        let Event::SmtpdClient {
            orig_queue_id,
            orig_client,
            ..
        } = e
        else {
            panic!()
        };
        assert_eq!(orig_queue_id, Some("9B6C71A0A7"));
        assert_eq!(
            orig_client,
            Some(p("mail.example.org", "198.51.100.7", None))
        );
    }

    #[test]
    fn session_ends() {
        let (_, e) = session_end(
            None,
            "lost connection after DATA (0 bytes) from x[192.0.2.1]",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::SessionEnded {
                queue_id: None,
                how: SessionEnd::LostConnection,
                stage: "DATA",
                bytes: Some(0),
                client: Some(p("x", "192.0.2.1", None)),
            }
        );
        let (_, e) =
            session_end(Some("ABCDEF1"), "timeout after END-OF-MESSAGE from y[::1]").unwrap();
        assert!(matches!(
            e,
            Event::SessionEnded {
                queue_id: Some("ABCDEF1"),
                how: SessionEnd::Timeout,
                stage: "END-OF-MESSAGE",
                ..
            }
        ));
        let (_, e) = session_end(None, "too many errors after RCPT from z[192.0.2.9]").unwrap();
        assert!(matches!(
            e,
            Event::SessionEnded {
                how: SessionEnd::TooManyErrors,
                stage: "RCPT",
                ..
            }
        ));
        let (_, e) = session_end(
            None,
            "lost connection after DATA (approximately 2841 bytes) from e[96.44.171.76]",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::SessionEnded {
                stage: "DATA",
                bytes: Some(2841),
                ..
            }
        ));
        let (_, e) = session_end(
            None,
            "bare <LF> received after CONNECT from example.net[1.2.3.4]",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::SessionEnded {
                how: SessionEnd::BareNewline,
                stage: "CONNECT",
                ..
            }
        ));
        assert!(session_end(None, "connect from x[1.2.3.4]").is_err());
    }

    #[test]
    fn actions() {
        assert_eq!(
            action_word("milter-reject: END"),
            Ok(("END", "milter-reject"))
        );
        assert!(action_word("Reject: x").is_err());
        assert_eq!(action_of("reject_warning"), RejectAction::RejectWarning);
        assert_eq!(action_of("proxy-accept"), RejectAction::ProxyAccept);
        assert_eq!(action_of("permit"), RejectAction::Other);
    }

    #[test]
    fn decisions() {
        let (_, e) = decision(
            None,
            "reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: 554 5.7.1 <smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.org> proto=SMTP helo=<198.51.100.17>",
        )
        .unwrap();
        let Event::Reject(r) = e else { panic!() };
        assert_eq!(r.action, RejectAction::Reject);
        assert_eq!(r.stage, "RCPT");
        assert_eq!(r.client, Some(p("1-2-3-4-example.com", "1.2.3.4", None)));
        assert_eq!((r.code, r.dsn), (Some(554), Some("5.7.1")));
        assert_eq!(r.text, "<smtp@example.com>: Relay access denied");
        assert_eq!(
            (r.from, r.to),
            (Some("john@example.com"), Some("smtp@example.org"))
        );
        assert_eq!((r.proto, r.helo), (Some("SMTP"), Some("198.51.100.17")));

        // proxy-accept has no client.
        let (_, e) = decision(
            None,
            "proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as 9BE3547AFE; from=<a> to=<b> proto=ESMTP helo=<c>",
        )
        .unwrap();
        let Event::Reject(r) = e else { panic!() };
        assert_eq!(
            (r.action, r.stage, r.client),
            (RejectAction::ProxyAccept, "END-OF-MESSAGE", None)
        );
        assert_eq!(r.text, "Ok: queued as 9BE3547AFE");

        // postscreen: no code, no trailer.
        let (_, e) = decision(
            None,
            "reject: CONNECT from [192.0.2.1]:4711: too many connections",
        )
        .unwrap();
        let Event::Reject(r) = e else { panic!() };
        assert_eq!(r.client, Some(p("", "192.0.2.1", Some(4711))));
        assert_eq!((r.code, r.text), (None, "too many connections"));

        // Truncated: no trailer at all.
        let (_, e) = decision(
            None,
            "reject: VRFY from x[72.53.132.234]: 550 5.1.1 : Recipient address rejected: User unknown in local recipient tab",
        )
        .unwrap();
        let Event::Reject(r) = e else { panic!() };
        assert_eq!(r.stage, "VRFY");
        assert_eq!(
            r.text,
            ": Recipient address rejected: User unknown in local recipient tab"
        );
        assert_eq!(r.from, None);

        assert!(decision(None, "warning: header Subject: x from y[1.2.3.4]; from=<>").is_err());
    }

    #[test]
    fn sasl() {
        let (_, e) =
            sasl_failed("unknown[82.221.106.233]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
                .unwrap();
        assert_eq!(
            e,
            Event::SaslFailed {
                client: p("unknown", "82.221.106.233", None),
                mechanism: "LOGIN",
                reason: "UGFzc3dvcmQ6",
                sasl_username: None,
                aborted: false,
            }
        );
        // Postfix ≥ 3.9 when the username is not known.
        let (_, e) = sasl_failed(
            "unknown[2001:db8::1]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=(unavailable)",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::SaslFailed {
                client: Peer {
                    name: "unknown",
                    addr: "2001:db8::1",
                    port: None
                },
                reason: "(reason unavailable)",
                sasl_username: None,
                aborted: false,
                ..
            }
        ));
        // The client gave up (`*`).
        let (_, e) =
            sasl_failed("mail.example.com[192.0.2.9]:587: SASL PLAIN authentication aborted")
                .unwrap();
        assert!(matches!(
            e,
            Event::SaslFailed {
                client: Peer {
                    name: "mail.example.com",
                    addr: "192.0.2.9",
                    port: Some(587)
                },
                mechanism: "PLAIN",
                reason: "",
                aborted: true,
                ..
            }
        ));
        // Old Postfix: no reason at all.
        let (_, e) =
            sasl_failed("example.com[192.168.0.1]: SASL DIGEST-MD5 authentication failed").unwrap();
        assert!(matches!(
            e,
            Event::SaslFailed {
                mechanism: "DIGEST-MD5",
                reason: "",
                aborted: false,
                ..
            }
        ));
        // Not these.
        assert!(
            sasl_failed("example.com[192.168.0.1]: SASL LOGIN authentication failedX").is_err()
        );
        assert!(
            sasl_failed("example.com[192.168.0.1]: SASL LOGIN authentication aborted now").is_err()
        );
        assert!(sasl_failed("example.com[192.168.0.1]: SASL LOGIN authentication").is_err());
        assert!(sasl_failed("SASL authentication failure: Password verification failed").is_err());
        let (_, e) = sasl_failed(
            "unknown[192.0.2.4]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=info@example.com",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::SaslFailed {
                reason: "(reason unavailable)",
                sasl_username: Some("info@example.com"),
                ..
            }
        ));
    }

    #[test]
    fn tls() {
        let (_, e) = tls_established(
            "Anonymous TLS connection established from julie.example.com[10.163.89.202]: TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::TlsEstablished {
                incoming: true,
                trust: "Anonymous",
                peer: p("julie.example.com", "10.163.89.202", None),
                detail: "TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)",
            }
        );
        let (_, e) = tls_established(
            "Verified TLS connection established to mail.sys4.de[2001:1578:400:111::7]:25: TLSv1 with cipher X (256/256 bits)",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::TlsEstablished {
                incoming: false,
                trust: "Verified",
                ..
            }
        ));
    }

    #[test]
    fn pipelining() {
        let (_, e) = improper_pipelining(
            "improper command pipelining after DATA from unknown[181.21.131.88]:",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::ImproperPipelining {
                stage: "DATA",
                client: p("unknown", "181.21.131.88", None),
                text: "",
            }
        );
    }
}
