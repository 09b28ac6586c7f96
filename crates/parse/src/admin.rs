//! Housekeeping lines: anvil and scache statistics, master and postfix-script
//! lifecycle, and the `warning:`/`error:`/`fatal:`/`panic:` levels.

use nom::bytes::complete::tag;

use crate::common::{Res, ascii_till1, find, peer, qid_prefix, rfind};
use crate::event::{Event, Peer};

/// anvil `statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Mar 14
/// 06:25:01`, `statistics: max cache size 1 at …`: the metric is every word before
/// the value, the value the last word before ` for (` or ` at `.
pub(crate) fn anvil(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("statistics: ")(i)?;
    let (head, subject, at) = match find(rest, " for (") {
        Some(f) => {
            let after = &rest[f + " for (".len()..];
            let close = after.find(')').unwrap_or(after.len());
            let tail = &after[close..];
            let at = find(tail, " at ").map(|a| &tail[a + 4..]);
            (&rest[..f], Some(&after[..close]), at)
        }
        None => match rfind(rest, " at ") {
            Some(a) => (&rest[..a], None, Some(&rest[a + 4..])),
            None => (rest, None, None),
        },
    };
    let Some(sp) = head.rfind(' ') else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Space,
        )));
    };
    Ok((
        "",
        Event::AnvilStatistics {
            metric: &head[..sp],
            value: &head[sp + 1..],
            subject,
            at,
        },
    ))
}

/// The scache statistics metrics, each followed by its value text.
const SCACHE_METRICS: [&str; 4] = [
    "start interval",
    "domain lookup",
    "address lookup",
    "max simultaneous",
];

/// scache `statistics: start interval Jun 10 06:48:17`, `statistics: domain lookup
/// hits=0 miss=1 success=0%`, `statistics: max simultaneous domains=1 addresses=1
/// connection=1`.
pub(crate) fn scache(i: &str) -> Res<'_, Event<'_>> {
    let (rest, _) = tag("statistics: ")(i)?;
    for metric in SCACHE_METRICS {
        if let Some(r) = rest.strip_prefix(metric) {
            let value = r.trim_start_matches(' ');
            return Ok(("", Event::ScacheStatistics { metric, value }));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// The version in `-- version 3.7.11, configuration /etc/postfix`.
fn version(i: &str) -> Option<&str> {
    let at = find(i, "version ")?;
    let v = &i[at + "version ".len()..];
    let end = v.find([',', ' ']).unwrap_or(v.len());
    Some(&v[..end]).filter(|v| !v.is_empty())
}

/// master `daemon started -- version …`, `reload -- version …`, `terminating on
/// signal N`, `master exit time has arrived`; any daemon's `table X has changed --
/// restarting`.
pub(crate) fn master(i: &str) -> Res<'_, Event<'_>> {
    let action = if i.starts_with("daemon started") {
        "started"
    } else if i.starts_with("reload ") {
        "reload"
    } else if i.starts_with("terminating on signal") {
        "terminating"
    } else if i.starts_with("master exit time has arrived") {
        "exit"
    } else if i.starts_with("table ") && i.ends_with("has changed -- restarting") {
        "restarting"
    } else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    };
    Ok((
        "",
        Event::Lifecycle {
            action,
            version: version(i),
            text: i,
        },
    ))
}

/// postfix-script `starting|stopping|refreshing the Postfix mail system`, `waiting
/// for the Postfix mail system to terminate`, `the Postfix mail system is running:
/// PID: N`, `the Postfix mail system is not running`.
pub(crate) fn script(i: &str) -> Res<'_, Event<'_>> {
    let (rest, word) = ascii_till1(|c: u8| c == b' ')(i)?;
    let action = match word {
        "starting" | "stopping" | "refreshing" | "waiting" | "aborting" | "stopping:"
            if rest.contains("Postfix mail system") =>
        {
            word.trim_end_matches(':')
        }
        "the" if rest.starts_with(" Postfix mail system is running") => "running",
        "the" if rest.starts_with(" Postfix mail system is not running") => "not_running",
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Tag,
            )));
        }
    };
    Ok((
        "",
        Event::Lifecycle {
            action,
            version: None,
            text: i,
        },
    ))
}

/// Starts of verbose (`-v`, `debug_peer_list`) trace lines that are not of the
/// `function_name: text` form.
const VERBOSE_STARTS: [&str; 33] = [
    "< ",
    "> ",
    ">>> ",
    "send attr ",
    "input attribute ",
    "request: ",
    "request ignored",
    "done incoming queue scan",
    "done deferred queue scan",
    "start sorted recipient list",
    "end sorted recipient list",
    "connect to subsystem ",
    "initial envelope ",
    "extracted envelope ",
    "rewrite stream ",
    "proxymap stream ",
    "wakeup ",
    "process generation: ",
    "start move queue ",
    "end move queue ",
    "connection established",
    "connection closed",
    "idle timeout -- exiting",
    "master disconnect -- exiting",
    "Compiled against ",
    "Run-time linked against ",
    "host name lookup methods",
    "before input_transp_cleanup",
    "after input_transp_cleanup",
    "cleanup flags = ",
    "mynetworks: ",
    "fsspace: ",
    "open incoming/",
];

/// A C function or parameter name as verbose logging prints it first: lower-case
/// letters, digits and at least one `_` (`qmgr_active_feed`, `match_string`).
fn c_identifier(s: &str) -> bool {
    s.contains('_')
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A verbose trace line: `function_name: text`, `parameter_name = value`, an SMTP
/// conversation trace (`< host[ip]: MAIL FROM:…`, `> host[ip]: 250 Ok`), or one of
/// [`VERBOSE_STARTS`]. Returns the function or parameter name when there is one.
pub(crate) fn verbose(i: &str) -> Res<'_, Event<'_>> {
    let head_end = i.find([':', ' ']).unwrap_or(i.len());
    let head = &i[..head_end];
    let tail = &i[head_end..];
    if c_identifier(head) && (tail.starts_with(": ") || tail.starts_with(" = ") || tail == ":") {
        return Ok((
            "",
            Event::Verbose {
                function: Some(head),
                text: i,
            },
        ));
    }
    let socket_wanted =
        find(i, " socket: wanted attribute: ").is_some_and(|at| !i[..at].contains(' '));
    if socket_wanted || VERBOSE_STARTS.iter().any(|s| i.starts_with(s)) {
        return Ok((
            "",
            Event::Verbose {
                function: None,
                text: i,
            },
        ));
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// The log level prefixes Postfix's `msg_warn` & co. write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Warning,
    Error,
    Fatal,
    Panic,
}

/// `warning: `, `error: `, `fatal: ` or `panic: `.
pub(crate) fn level(i: &str) -> Res<'_, Level> {
    for (word, level) in [
        ("warning: ", Level::Warning),
        ("error: ", Level::Error),
        ("fatal: ", Level::Fatal),
        ("panic: ", Level::Panic),
    ] {
        if let Some(r) = i.strip_prefix(word) {
            return Ok((r, level));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// A generic leveled message; a `warning:` may carry a queue id (`warning: QID:
/// text`) and name the SMTP client it is about.
pub(crate) fn leveled(level: Level, text: &str) -> Event<'_> {
    match level {
        Level::Warning => match qid_prefix(text) {
            Ok((rest, q)) => Event::Warning {
                queue_id: Some(q),
                client: warning_client(rest),
                text: rest,
            },
            Err(_) => Event::Warning {
                queue_id: None,
                client: warning_client(text),
                text,
            },
        },
        Level::Error => Event::Error { text },
        Level::Fatal => Event::Fatal { text },
        Level::Panic => Event::Panic { text },
    }
}

/// The SMTP client a warning is about, for the forms smtpd and postscreen log:
/// `hostname H does not resolve to address A[: reason]`, `A: hostname H
/// verification failed: …`, `A: address not listed for hostname H`, `host[ip]:
/// text`, and `… from host[ip] …` (rate limits, non-SMTP commands, illegal address
/// syntax).
fn warning_client(text: &str) -> Option<Peer<'_>> {
    if let Some(r) = text.strip_prefix("hostname ") {
        let (name, r) = r.split_once(' ')?;
        let r = r.strip_prefix("does not resolve to address ")?;
        // An IPv6 address holds colons: the address ends at `: `, a space or the end.
        let end = match (find(r, ": "), r.find(' ')) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => r.len(),
        };
        return Some(Peer {
            name,
            addr: &r[..end],
            port: None,
        });
    }
    for marker in [": hostname ", ": address not listed for hostname "] {
        if let Some(at) = find(text, marker) {
            let addr = &text[..at];
            if !addr.contains(' ') && !addr.contains('[') {
                let r = &text[at + marker.len()..];
                let end = r.find(' ').unwrap_or(r.len());
                return Some(Peer {
                    name: &r[..end],
                    addr,
                    port: None,
                });
            }
        }
    }
    if let Ok((r, p)) = peer(text)
        && r.starts_with(':')
    {
        return Some(p);
    }
    let mut from = 0;
    while let Some(at) = find(&text[from..], " from ") {
        let start = from + at + " from ".len();
        if let Ok((_, p)) = peer(&text[start..]) {
            return Some(p);
        }
        from = start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anvil_lines() {
        let (_, e) = anvil(
            "statistics: max connection rate 1/60s for (smtpd:61.238.241.86) at Oct 26 18:13:50",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::AnvilStatistics {
                metric: "max connection rate",
                value: "1/60s",
                subject: Some("smtpd:61.238.241.86"),
                at: Some("Oct 26 18:13:50"),
            }
        );
        let (_, e) = anvil(
            "statistics: max connection count 1 for (smtpd:2604:8d00:0:1::3) at Oct 26 17:46:59",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::AnvilStatistics {
                subject: Some("smtpd:2604:8d00:0:1::3"),
                value: "1",
                ..
            }
        ));
        let (_, e) = anvil("statistics: max cache size 1 at Oct 26 18:13:50").unwrap();
        assert_eq!(
            e,
            Event::AnvilStatistics {
                metric: "max cache size",
                value: "1",
                subject: None,
                at: Some("Oct 26 18:13:50")
            }
        );
    }

    #[test]
    fn scache_lines() {
        let (_, e) = scache("statistics: domain lookup hits=0 miss=1 success=0%").unwrap();
        assert_eq!(
            e,
            Event::ScacheStatistics {
                metric: "domain lookup",
                value: "hits=0 miss=1 success=0%"
            }
        );
        let (_, e) = scache("statistics: start interval Jun 10 06:48:17").unwrap();
        assert_eq!(
            e,
            Event::ScacheStatistics {
                metric: "start interval",
                value: "Jun 10 06:48:17"
            }
        );
        assert!(scache("statistics: max cache size 1").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(
            version("daemon started -- version 3.7.11, configuration /etc/postfix"),
            Some("3.7.11")
        );
        assert_eq!(version("terminating on signal 15"), None);
    }

    #[test]
    fn master_lines() {
        let (_, e) =
            master("daemon started -- version 2.11.0, configuration /etc/postfix").unwrap();
        assert!(matches!(
            e,
            Event::Lifecycle {
                action: "started",
                version: Some("2.11.0"),
                ..
            }
        ));
        let (_, e) = master("reload -- version 3.5.10, configuration /etc/postfix").unwrap();
        assert!(matches!(
            e,
            Event::Lifecycle {
                action: "reload",
                version: Some("3.5.10"),
                ..
            }
        ));
        let (_, e) = master("terminating on signal 15").unwrap();
        assert!(matches!(
            e,
            Event::Lifecycle {
                action: "terminating",
                version: None,
                ..
            }
        ));
        assert!(master("something else").is_err());
    }

    #[test]
    fn script_lines() {
        let (_, e) = script("starting the Postfix mail system").unwrap();
        assert!(matches!(
            e,
            Event::Lifecycle {
                action: "starting",
                ..
            }
        ));
        let (_, e) = script("the Postfix mail system is running: PID: 1234").unwrap();
        assert!(matches!(
            e,
            Event::Lifecycle {
                action: "running",
                ..
            }
        ));
        assert!(script("starting something else").is_err());
    }

    #[test]
    fn verbose_lines() {
        for (line, function) in [
            ("qmgr_active_feed: queue deferred", Some("qmgr_active_feed")),
            ("master_notify: status 0", Some("master_notify")),
            (
                "unknown_address_tempfail_action = defer_if_permit",
                Some("unknown_address_tempfail_action"),
            ),
            ("private/smtp socket: wanted attribute: status", None),
            (
                "> localhost[::1]: 220 server1.alsoft.org ESMTP Postfix",
                None,
            ),
            ("input attribute name: flags", None),
        ] {
            let (_, e) = verbose(line).unwrap();
            assert_eq!(
                e,
                Event::Verbose {
                    function,
                    text: line
                },
                "{line}"
            );
        }
        for line in [
            "statistics: max cache size 1",
            "warning: x",
            "Deleted: 1 message",
            "hello world",
        ] {
            assert!(verbose(line).is_err(), "{line}");
        }
    }

    #[test]
    fn warning_clients() {
        for (text, name, addr) in [
            (
                "hostname bad.example.com does not resolve to address 192.0.2.44: Name or service not known",
                "bad.example.com",
                "192.0.2.44",
            ),
            (
                "hostname h.example does not resolve to address 2001:db8::1: Name or service not known",
                "h.example",
                "2001:db8::1",
            ),
            (
                "hostname h.example does not resolve to address 2001:db8::1",
                "h.example",
                "2001:db8::1",
            ),
            (
                "122.179.84.12: address not listed for hostname abts.example.in",
                "abts.example.in",
                "122.179.84.12",
            ),
            (
                "2001:db8::7: hostname x.example verification failed: Name or service not known",
                "x.example",
                "2001:db8::7",
            ),
            (
                "Connection rate limit exceeded: 31 from spamhost.domain.org[192.0.2.123] for service smtpd",
                "spamhost.domain.org",
                "192.0.2.123",
            ),
            (
                "non-SMTP command from unknown[192.0.2.9]: GET / HTTP/1.1",
                "unknown",
                "192.0.2.9",
            ),
            (
                "unknown[192.0.2.8]: SASL LOGIN authentication aborted",
                "unknown",
                "192.0.2.8",
            ),
        ] {
            assert_eq!(
                warning_client(text),
                Some(Peer {
                    name,
                    addr,
                    port: None
                }),
                "{text}"
            );
        }
        assert_eq!(
            warning_client("database /etc/postfix/x.db is older than source file"),
            None
        );
        assert_eq!(warning_client("mail from x loops back to myself"), None);
    }

    #[test]
    fn levels() {
        assert_eq!(level("warning: x"), Ok(("x", Level::Warning)));
        assert_eq!(level("panic: x"), Ok(("x", Level::Panic)));
        assert!(level("info: x").is_err());
        assert_eq!(
            leveled(Level::Warning, "ABCDEF12: queue file size limit exceeded"),
            Event::Warning {
                queue_id: Some("ABCDEF12"),
                client: None,
                text: "queue file size limit exceeded"
            }
        );
        assert_eq!(
            leveled(
                Level::Warning,
                "hostname x does not resolve to address 1.2.3.4"
            ),
            Event::Warning {
                queue_id: None,
                client: Some(Peer {
                    name: "x",
                    addr: "1.2.3.4",
                    port: None
                }),
                text: "hostname x does not resolve to address 1.2.3.4"
            }
        );
        assert_eq!(
            leveled(Level::Fatal, "usage"),
            Event::Fatal { text: "usage" }
        );
    }
}
