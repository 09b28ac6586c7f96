//! postscreen, dnsblog and tlsproxy lines. postscreen logs clients as `[addr]:port`
//! and its verdicts as upper-case words (`PASS NEW`, `DNSBL rank`, `PREGREET`, …); its
//! `NOQUEUE: reject:` lines have smtpd's decision shape.

use nom::bytes::complete::tag;
use nom::character::complete::char;

use crate::common::{Res, ascii_till, ascii_till1, number, peer};
use crate::event::Event;

/// `CONNECT from [ip]:port to [ip]:port` (postscreen) or `CONNECT from|to [ip]:port`
/// (tlsproxy, handled by [`tlsproxy`]).
pub(crate) fn connect(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("CONNECT from ")(i)?;
    let (rest, client) = peer(rest)?;
    let (rest, server) = match rest.strip_prefix(" to ") {
        Some(r) => {
            let (r, p) = peer(r)?;
            (r, Some(p))
        }
        None => (rest, None),
    };
    Ok((rest, Event::PostscreenConnect { client, server }))
}

/// `PASS NEW [ip]:port` or `PASS OLD [ip]:port`.
pub(crate) fn pass(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("PASS ")(i)?;
    let (rest, new) = if let Some(r) = rest.strip_prefix("NEW ") {
        (r, true)
    } else {
        let (r, _) = tag("OLD ")(rest)?;
        (r, false)
    };
    let (rest, client) = peer(rest)?;
    Ok((rest, Event::PostscreenPass { new, client }))
}

/// `DNSBL rank N for [ip]:port`.
pub(crate) fn dnsbl_rank(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("DNSBL rank ")(i)?;
    let (rest, rank) = number::<i32>(rest)?;
    let (rest, _) = tag(" for ")(rest)?;
    let (rest, client) = peer(rest)?;
    Ok((rest, Event::PostscreenDnsblRank { rank, client }))
}

/// `PREGREET N after T from [ip]:port: text`.
pub(crate) fn pregreet(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("PREGREET ")(i)?;
    let (rest, bytes) = number::<u32>(rest)?;
    let (rest, _) = tag(" after ")(rest)?;
    let (rest, after) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" from ")(rest)?;
    let (rest, client) = peer(rest)?;
    let text = rest.strip_prefix(": ").unwrap_or(rest);
    Ok((
        "",
        Event::PostscreenPregreet {
            bytes,
            after,
            client,
            text,
        },
    ))
}

/// `HANGUP after T from [ip]:port in STAGE`.
pub(crate) fn hangup(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("HANGUP after ")(i)?;
    let (rest, after) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" from ")(rest)?;
    let (rest, client) = peer(rest)?;
    let stage = rest.strip_prefix(" in ").unwrap_or(rest).trim_start();
    Ok((
        "",
        Event::PostscreenHangup {
            after,
            client,
            stage,
        },
    ))
}

/// `DISCONNECT [ip]:port`.
pub(crate) fn disconnect(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("DISCONNECT ")(i)?;
    let (rest, client) = peer(rest)?;
    Ok((rest, Event::PostscreenDisconnect { client }))
}

/// The allow/deny list words postscreen logs before `[ip]:port`.
const LIST_WORDS: [&str; 8] = [
    "WHITELISTED",
    "ALLOWLISTED",
    "BLACKLISTED",
    "DENYLISTED",
    "WHITELIST VETO",
    "ALLOWLIST VETO",
    "BLACKLIST VETO",
    "DENYLIST VETO",
];

/// `WHITELISTED [ip]:port`, `ALLOWLIST VETO [ip]:port`, ….
pub(crate) fn listed(i: &str) -> Res<'_, Event<'_>> {
    for word in LIST_WORDS {
        if let Some(r) = i.strip_prefix(word) {
            let (r, _) = char(' ')(r)?;
            let (r, client) = peer(r)?;
            return Ok((r, Event::PostscreenListed { list: word, client }));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// The protocol violations postscreen logs as `WORDS from [ip]:port after …`.
const VIOLATIONS: [&str; 8] = [
    "COMMAND PIPELINING",
    "COMMAND TIME LIMIT",
    "COMMAND COUNT LIMIT",
    "COMMAND LENGTH LIMIT",
    "BARE NEWLINE",
    "NON-SMTP COMMAND",
    "DATA without valid RCPT",
    "BDAT without valid RCPT",
];

/// `COMMAND PIPELINING from [ip]:port after CMD: text`, `BARE NEWLINE from … after
/// CMD`, `NON-SMTP COMMAND from … after CMD: text`, ….
pub(crate) fn violation(i: &str) -> Res<'_, Event<'_>> {
    for word in VIOLATIONS {
        if let Some(r) = i.strip_prefix(word) {
            let (r, _) = tag(" from ")(r)?;
            let (r, client) = peer(r)?;
            let detail = r.trim_start_matches(' ');
            return Ok((
                "",
                Event::PostscreenViolation {
                    violation: word,
                    client,
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

/// `cache TYPE:PATH full|partial cleanup: retained=N dropped=N entries` (postscreen,
/// verify).
pub(crate) fn cache_cleanup(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("cache ")(i)?;
    let (rest, table) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = match rest.strip_prefix(" full") {
        Some(r) => (r, ()),
        None => (tag(" partial")(rest)?.0, ()),
    };
    let (rest, _) = tag(" cleanup: retained=")(rest)?;
    let (rest, retained) = number::<u64>(rest)?;
    let (rest, _) = tag(" dropped=")(rest)?;
    let (rest, dropped) = number::<u64>(rest)?;
    Ok((
        rest,
        Event::CacheCleanup {
            table,
            retained,
            dropped,
        },
    ))
}

/// dnsblog `addr IP listed by domain DOMAIN as REPLY[ REPLY…]`.
pub(crate) fn dnsblog(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("addr ")(i)?;
    let (rest, addr) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" listed by domain ")(rest)?;
    let (rest, domain) = ascii_till1(|c: u8| c == b' ')(rest)?;
    let (rest, _) = tag(" as ")(rest)?;
    let (rest, reply) = ascii_till(|c: u8| c == b'\n')(rest)?;
    Ok((
        rest,
        Event::DnsblogListed {
            addr,
            domain,
            reply: reply.trim_end(),
        },
    ))
}

/// tlsproxy `CONNECT from|to [ip]:port` and `DISCONNECT [ip]:port`.
pub(crate) fn tlsproxy(i: &str) -> Res<'_, Event<'_>> {
    if let Some(r) = i.strip_prefix("DISCONNECT ") {
        let (r, peer) = peer(r)?;
        return Ok((
            r,
            Event::TlsProxy {
                connect: false,
                incoming: None,
                peer,
            },
        ));
    }
    let (rest, _) = tag("CONNECT ")(i)?;
    let (rest, incoming) = if let Some(r) = rest.strip_prefix("from ") {
        (r, true)
    } else {
        let (r, _) = tag("to ")(rest)?;
        (r, false)
    };
    let (rest, peer) = peer(rest)?;
    Ok((
        rest,
        Event::TlsProxy {
            connect: true,
            incoming: Some(incoming),
            peer,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Peer;

    fn p(addr: &str, port: u16) -> Peer<'_> {
        Peer {
            name: "",
            addr,
            port: Some(port),
        }
    }

    #[test]
    fn connects() {
        let (_, e) = connect("CONNECT from [61.238.241.86]:53024 to [89.105.204.244]:25").unwrap();
        assert_eq!(
            e,
            Event::PostscreenConnect {
                client: p("61.238.241.86", 53024),
                server: Some(p("89.105.204.244", 25)),
            }
        );
    }

    #[test]
    fn passes() {
        let (_, e) = pass("PASS NEW [2607:f8b0:4003:c01::23a]:36051").unwrap();
        assert_eq!(
            e,
            Event::PostscreenPass {
                new: true,
                client: p("2607:f8b0:4003:c01::23a", 36051)
            }
        );
        let (_, e) = pass("PASS OLD [61.238.241.86]:53024").unwrap();
        assert!(matches!(e, Event::PostscreenPass { new: false, .. }));
        assert!(pass("PASS MAYBE [1.2.3.4]:5").is_err());
    }

    #[test]
    fn dnsbl() {
        let (_, e) = dnsbl_rank("DNSBL rank 3 for [111.73.45.149]:1038").unwrap();
        assert_eq!(
            e,
            Event::PostscreenDnsblRank {
                rank: 3,
                client: p("111.73.45.149", 1038)
            }
        );
    }

    #[test]
    fn pregreets() {
        let (_, e) = pregreet("PREGREET 6 after 1.2 from [216.81.72.72]:43421: RSET\r\n").unwrap();
        assert_eq!(
            e,
            Event::PostscreenPregreet {
                bytes: 6,
                after: "1.2",
                client: p("216.81.72.72", 43421),
                text: "RSET\r\n"
            }
        );
    }

    #[test]
    fn hangups() {
        let (_, e) =
            hangup("HANGUP after 63 from [111.73.45.149]:1038 in tests after SMTP handshake")
                .unwrap();
        assert_eq!(
            e,
            Event::PostscreenHangup {
                after: "63",
                client: p("111.73.45.149", 1038),
                stage: "tests after SMTP handshake",
            }
        );
    }

    #[test]
    fn disconnects() {
        let (_, e) = disconnect("DISCONNECT [216.81.72.72]:43421").unwrap();
        assert_eq!(
            e,
            Event::PostscreenDisconnect {
                client: p("216.81.72.72", 43421)
            }
        );
    }

    #[test]
    fn lists() {
        let (_, e) = listed("WHITELIST VETO [61.238.241.86]:53024").unwrap();
        assert_eq!(
            e,
            Event::PostscreenListed {
                list: "WHITELIST VETO",
                client: p("61.238.241.86", 53024)
            }
        );
        let (_, e) = listed("DENYLISTED [61.238.241.86]:53024").unwrap();
        assert!(matches!(
            e,
            Event::PostscreenListed {
                list: "DENYLISTED",
                ..
            }
        ));
        assert!(listed("GREYLISTED [1.2.3.4]:5").is_err());
    }

    #[test]
    fn violations() {
        let (_, e) =
            violation("NON-SMTP COMMAND from [93.174.93.51]:45284 after CONNECT: GET / HTTP/1.1")
                .unwrap();
        assert_eq!(
            e,
            Event::PostscreenViolation {
                violation: "NON-SMTP COMMAND",
                client: p("93.174.93.51", 45284),
                detail: "after CONNECT: GET / HTTP/1.1",
            }
        );
        let (_, e) = violation("BARE NEWLINE from [88.208.233.4]:42606 after .").unwrap();
        assert!(matches!(
            e,
            Event::PostscreenViolation {
                violation: "BARE NEWLINE",
                detail: "after .",
                ..
            }
        ));
    }

    #[test]
    fn cache() {
        let (_, e) = cache_cleanup("cache btree:/var/lib/postfix-in/postscreen_cache full cleanup: retained=242 dropped=7 entries").unwrap();
        assert_eq!(
            e,
            Event::CacheCleanup {
                table: "btree:/var/lib/postfix-in/postscreen_cache",
                retained: 242,
                dropped: 7
            }
        );
    }

    #[test]
    fn dnsblog_lines() {
        let (_, e) =
            dnsblog("addr 61.238.241.86 listed by domain psbl.surriel.com as 127.0.0.2").unwrap();
        assert_eq!(
            e,
            Event::DnsblogListed {
                addr: "61.238.241.86",
                domain: "psbl.surriel.com",
                reply: "127.0.0.2"
            }
        );
    }

    #[test]
    fn tlsproxy_lines() {
        let (_, e) = tlsproxy("CONNECT from [82.118.17.142]:51637").unwrap();
        assert_eq!(
            e,
            Event::TlsProxy {
                connect: true,
                incoming: Some(true),
                peer: p("82.118.17.142", 51637)
            }
        );
        let (_, e) = tlsproxy("DISCONNECT [82.118.17.142]:51637").unwrap();
        assert_eq!(
            e,
            Event::TlsProxy {
                connect: false,
                incoming: None,
                peer: p("82.118.17.142", 51637)
            }
        );
    }
}
