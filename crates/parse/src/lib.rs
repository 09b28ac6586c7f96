//! Zero-copy parser from one Postfix log message to a typed [`Event`].
//!
//! Input is the daemon name (the last component of the syslog identifier, e.g. `smtpd`)
//! and the message text; output is an [`Event`] whose strings borrow from the message.
//! Unrecognised messages become [`Event::Unknown`] (or [`Event::QueueOther`] when they
//! start with a queue id), so [`parse`] never fails and never panics.
//!
//! The grammar is written with nom's complete-input combinators, one small function
//! per grammar element. Dispatch looks at the first bytes of the message (queue id,
//! `NOQUEUE`, level prefixes, verbs) and uses the daemon name only where the text
//! alone is ambiguous (`QID: removed` from qmgr or postsuper, `CONNECT from` from
//! postscreen or tlsproxy), so custom transport names (`postfix/amavis/smtp`, a
//! `pipe` service called `dovecot`) parse like their base daemons.
//!
//! What is recognised, by message shape (see [`Event`] for the fields):
//!
//! | shape | events |
//! |---|---|
//! | `QID: to=<…>, relay=…, …, status=… (…)` from any daemon | [`Event::Delivery`] |
//! | `QID: client=…`, `QID: message-id=…`, `QID: uid=… from=<…>` | [`Event::SmtpdClient`], [`Event::MessageId`], [`Event::Pickup`] |
//! | `QID: from=<…>, size=…`, `QID: removed`, `QID: from=<…>, status=expired, …` | [`Event::QueueActive`], [`Event::Removed`], [`Event::Expired`] |
//! | `QID: ` or `NOQUEUE: ` + `ACTION: STAGE from host[ip]: reply; from=<…> …` | [`Event::Reject`] (smtpd, postscreen, cleanup milters, proxy) |
//! | `QID: ACTION: header … from origin; …: text` (also `body`) | [`Event::ContentCheck`] |
//! | `QID: … notification: NEWQID`, postsuper `QID: requeued` … | [`Event::Notification`], [`Event::Postsuper`] |
//! | smtpd `connect from`, `disconnect from`, `lost connection after`, TLS | [`Event::Connect`], [`Event::Disconnect`], [`Event::SessionEnded`], … |
//! | postscreen verdicts, dnsblog, tlsproxy, anvil, scache, master | the `Postscreen*`, [`Event::DnsblogListed`], … variants |
//! | `warning:`/`error:`/`fatal:`/`panic:` | [`Event::Warning`] (with queue id and client when named), … |
//! | `-v` traces (`function_name: …`) | [`Event::Verbose`] |
//! | anything else with a queue id / without | [`Event::QueueOther`] / [`Event::Unknown`] |
//!
//! Queue ids are recognised by their form (short: upper-case hex; long: base-52 time,
//! `z`, inode; see [`is_queue_id`]), never by length, so `hostname:` or `NOQUEUE:` are
//! not taken for one.
//!
//! This crate is **not** a syslog splitter (see `pftrack-input`), does no I/O, reads no
//! clock and keeps no state: correlating events into messages is `pftrack-extract`'s job.

mod admin;
mod cleanup;
mod common;
mod delivery;
mod event;
mod postscreen;
mod queue;
mod smtpd;

pub use common::{LONG_QID_TIME_MIN, SHORT_QID_MIN, is_queue_id};
pub use event::*;

use admin::Level;

/// Parse one Postfix message logged by `daemon` into an [`Event`].
///
/// Callers with raw bytes use `String::from_utf8_lossy`, which borrows when the bytes
/// are valid UTF-8.
pub fn parse<'a>(daemon: &str, message: &'a str) -> Event<'a> {
    let body = strip_solaris_tag(message);
    parse_body(daemon, body).unwrap_or(Event::Unknown { text: message })
}

/// Solaris syslogd inserts `[ID 197553 mail.info] ` before the message; drop it.
fn strip_solaris_tag(m: &str) -> &str {
    if let Some(r) = m.strip_prefix("[ID ")
        && let Some(end) = common::find(r, "] ")
    {
        return &r[end + 2..];
    }
    m
}

/// The body parser: `None` when nothing matched.
fn parse_body<'a>(daemon: &str, m: &'a str) -> Option<Event<'a>> {
    let first = *m.as_bytes().first()?;
    // Queue-id lines are the bulk of any log, so they go first.
    if first.is_ascii_alphanumeric()
        && let Ok((rest, qid)) = common::qid_prefix(m)
    {
        return Some(queued(daemon, qid, rest));
    }
    match first {
        b'N' => {
            if let Some(rest) = m.strip_prefix("NOQUEUE: ") {
                return noqueue(rest);
            }
            ok(postscreen::violation(m))
        }
        b'w' | b'e' | b'f' | b'p' => match admin::level(m) {
            Ok((rest, level)) => Some(leveled(level, rest)),
            Err(_) => None,
        },
        b'b' => ok(smtpd::session_end(None, m)),
        b'c' => ok(smtpd::connect(m))
            .or_else(|| ok(delivery::connect_failed(None, m)))
            .or_else(|| ok(delivery::tls_problem(m)))
            .or_else(|| ok(postscreen::cache_cleanup(m))),
        b'd' => ok(smtpd::disconnect(m)).or_else(|| ok(admin::master(m))),
        b'l' | b't' => ok(smtpd::session_end(None, m))
            .or_else(|| ok(admin::master(m)))
            .or_else(|| misc(daemon, m)),
        b'C' | b'D' if daemon == "tlsproxy" => ok(postscreen::tlsproxy(m)),
        b'C' => ok(postscreen::connect(m)).or_else(|| ok(postscreen::violation(m))),
        b'D' => ok(postscreen::disconnect(m))
            .or_else(|| ok(postscreen::dnsbl_rank(m)))
            .or_else(|| ok(postscreen::listed(m)))
            .or_else(|| ok(postscreen::violation(m)))
            .or_else(|| ok(queue::postsuper_summary(m))),
        b'P' => ok(postscreen::pass(m))
            .or_else(|| ok(postscreen::pregreet(m)))
            .or_else(|| ok(queue::postsuper_summary(m))),
        b'H' => ok(postscreen::hangup(m)),
        b'W' | b'A' | b'B' => ok(postscreen::listed(m))
            .or_else(|| ok(postscreen::violation(m)))
            .or_else(|| ok(smtpd::tls_established(m))),
        b'T' | b'U' | b'V' => ok(smtpd::tls_established(m)),
        b'R' | b'F' => ok(queue::postsuper_summary(m)),
        b'a' => ok(postscreen::dnsblog(m)),
        b'i' => ok(smtpd::improper_pipelining(m)),
        b's' => ok(admin::anvil(m))
            .filter(|_| daemon != "scache")
            .or_else(|| ok(admin::scache(m)))
            .or_else(|| ok(admin::script(m)))
            .or_else(|| ok(delivery::tls_problem(m))),
        b'r' => ok(admin::master(m)).or_else(|| ok(admin::script(m))),
        _ => None,
    }
    .or_else(|| misc(daemon, m))
}

/// Lines that fit no first-byte arm: TLS and lifecycle notices with uncommon starts,
/// and verbose traces last.
fn misc<'a>(_daemon: &str, m: &'a str) -> Option<Event<'a>> {
    // proxy-accept/-reject carry no queue id; Postfix before 2.3 also logged
    // `reject: RCPT from …` without `NOQUEUE: `.
    let lower = m.starts_with(|c: char| c.is_ascii_lowercase());
    lower
        .then(|| ok(smtpd::decision(None, m)))
        .flatten()
        .or_else(|| ok(delivery::tls_problem(m)))
        .or_else(|| ok(admin::script(m)))
        .or_else(|| ok(admin::master(m)))
        .or_else(|| ok(admin::verbose(m)))
}

/// The event of a successful nom parse, dropping the rest.
fn ok<'a>(r: common::Res<'a, Event<'a>>) -> Option<Event<'a>> {
    r.ok().map(|(_, e)| e)
}

/// A line after `NOQUEUE: `: a decision (`reject: RCPT from …`) or a session end.
fn noqueue(rest: &str) -> Option<Event<'_>> {
    ok(smtpd::decision(None, rest)).or_else(|| ok(smtpd::session_end(None, rest)))
}

/// A leveled line; `warning:` carries SASL failures and may carry a queue id.
fn leveled(level: Level, rest: &str) -> Event<'_> {
    if level == Level::Warning
        && let Ok((_, e)) = smtpd::sasl_failed(rest)
    {
        return e;
    }
    admin::leveled(level, rest)
}

/// A line after `QID: `. Falls back to [`Event::QueueOther`], never fails.
fn queued<'a>(daemon: &str, qid: &'a str, rest: &'a str) -> Event<'a> {
    queued_known(daemon, qid, rest).unwrap_or(Event::QueueOther {
        queue_id: qid,
        text: rest,
    })
}

/// True when `rest` is `word` alone, or `word` followed by something that cannot
/// continue a word (damaged logs append commas).
fn is_word(rest: &str, word: &str) -> bool {
    rest.strip_prefix(word)
        .is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == ' '))
}

/// The known shapes after `QID: `, dispatched on the first byte.
fn queued_known<'a>(daemon: &str, qid: &'a str, rest: &'a str) -> Option<Event<'a>> {
    let first = *rest.as_bytes().first()?;
    let q = Some(qid);
    let found = match first {
        b't' => ok(delivery::delivery(qid, rest)).or_else(|| ok(smtpd::session_end(q, rest))),
        b'c' => ok(smtpd::smtpd_client(qid, rest))
            .or_else(|| ok(delivery::connect_failed(q, rest)))
            .or_else(|| ok(delivery::conversation(q, rest))),
        b'm' => ok(cleanup::message_id(qid, rest)),
        b'f' => ok(queue::qmgr_from(qid, rest)),
        b'u' => ok(queue::pickup(qid, rest)),
        b'r' => {
            if is_word(rest, "removed") {
                Some(if daemon == "postsuper" {
                    Event::Postsuper {
                        queue_id: qid,
                        action: PostsuperAction::Removed,
                    }
                } else {
                    Event::Removed { queue_id: qid }
                })
            } else {
                ok(cleanup::message_id(qid, rest)).or_else(|| postsuper(qid, rest))
            }
        }
        b'e' | b'p' => postsuper(qid, rest),
        b's' if rest.starts_with("skipped, still being delivered") => {
            Some(Event::Skipped { queue_id: qid })
        }
        b'l' => ok(smtpd::session_end(q, rest)).or_else(|| ok(delivery::conversation(q, rest))),
        b'h' | b'P' | b'S' => ok(delivery::conversation(q, rest)),
        _ => None,
    };
    found
        .or_else(|| ok(queue::notification(qid, rest)))
        .or_else(|| decision_or_check(qid, rest))
}

/// `QID: requeued|placed on hold|released from hold|expired` (postsuper).
fn postsuper<'a>(qid: &'a str, rest: &'a str) -> Option<Event<'a>> {
    match queue::postsuper_action(rest) {
        Ok((r, action)) if !r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == ' ') => {
            Some(Event::Postsuper {
                queue_id: qid,
                action,
            })
        }
        _ => None,
    }
}

/// `QID: ACTION: …` as an smtpd/cleanup-milter decision or a header/body check.
fn decision_or_check<'a>(qid: &'a str, rest: &'a str) -> Option<Event<'a>> {
    if !rest.starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    ok(smtpd::decision(Some(qid), rest)).or_else(|| ok(cleanup::content_check(qid, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solaris_tag() {
        assert_eq!(
            strip_solaris_tag("[ID 197553 mail.info] connect from x[1.2.3.4]"),
            "connect from x[1.2.3.4]"
        );
        assert_eq!(strip_solaris_tag("connect from x"), "connect from x");
        assert_eq!(strip_solaris_tag("[ID broken"), "[ID broken");
    }

    #[test]
    fn words() {
        assert!(is_word("removed", "removed"));
        assert!(is_word("removed,,,,", "removed"));
        assert!(!is_word("removed from x", "removed"));
        assert!(!is_word("removedx", "removed"));
    }

    #[test]
    fn dispatch_queue_lines() {
        assert_eq!(
            parse("qmgr", "1234567890A: removed"),
            Event::Removed {
                queue_id: "1234567890A"
            }
        );
        assert_eq!(
            parse("postsuper", "3nsRhm5bH5z306M: removed"),
            Event::Postsuper {
                queue_id: "3nsRhm5bH5z306M",
                action: PostsuperAction::Removed
            }
        );
        assert_eq!(
            parse("postsuper", "ABCDEF123: placed on hold"),
            Event::Postsuper {
                queue_id: "ABCDEF123",
                action: PostsuperAction::PlacedOnHold
            }
        );
        assert_eq!(
            parse("qmgr", "D4748404B37D: skipped, still being delivered"),
            Event::Skipped {
                queue_id: "D4748404B37D"
            }
        );
        assert_eq!(
            parse(
                "smtp",
                "D4748404B37D: enabling PIX workarounds: disable_esmtp for x[1.2.3.4]:25"
            ),
            Event::QueueOther {
                queue_id: "D4748404B37D",
                text: "enabling PIX workarounds: disable_esmtp for x[1.2.3.4]:25"
            }
        );
        assert!(matches!(
            parse(
                "amavis-smtp",
                "ABCDEF12: to=<a@b>, relay=x, delay=1, status=sent (ok)"
            ),
            Event::Delivery(_)
        ));
        assert!(matches!(
            parse(
                "smtpd",
                "00ADB3C0899: reject: RCPT from example.com[192.0.2.1]: 550 5.1.1 <sales@server.com>: Recipient address rejected; from=<a@b> to=<c@d> proto=ESMTP helo=<h>"
            ),
            Event::Reject(Reject {
                queue_id: Some("00ADB3C0899"),
                ..
            })
        ));
        assert!(matches!(
            parse(
                "cleanup",
                "D6DDA23B0F: milter-reject: END-OF-MESSAGE from unknown[99.88.77.66]: 4.7.1 Greylisting in action, try again later; from=<a@b> to=<c@d> proto=ESMTP helo=<h>"
            ),
            Event::Reject(Reject {
                action: RejectAction::MilterReject,
                code: None,
                dsn: Some("4.7.1"),
                ..
            })
        ));
        assert!(matches!(
            parse(
                "cleanup",
                "7D830C2C10F: info: header client-id: first-client-id from localhost[127.0.0.1]; from=<a@b> to=<a@b> proto=ESMTP helo=<jlinb>"
            ),
            Event::ContentCheck(ContentCheck {
                action: RejectAction::Other,
                action_word: "info",
                ..
            })
        ));
        assert!(matches!(
            parse(
                "bounce",
                "732BB407C3: sender non-delivery notification: 5DE184083C"
            ),
            Event::Notification {
                new_queue_id: "5DE184083C",
                ..
            }
        ));
    }

    #[test]
    fn dispatch_other_lines() {
        assert!(matches!(
            parse("smtpd", "connect from unknown[127.0.0.1]"),
            Event::Connect { .. }
        ));
        assert!(matches!(
            parse("smtpd", "[ID 197553 mail.info] connect from a[1.2.3.4]"),
            Event::Connect { .. }
        ));
        assert!(matches!(
            parse(
                "smtpd",
                "NOQUEUE: reject: RCPT from a[1.2.3.4]: 554 5.7.1 x; from=<> to=<b>"
            ),
            Event::Reject(_)
        ));
        assert!(matches!(
            parse(
                "smtpd",
                "NOQUEUE: lost connection after DATA (0 bytes) from a[1.2.3.4]"
            ),
            Event::SessionEnded { bytes: Some(0), .. }
        ));
        assert!(matches!(
            parse(
                "smtpd",
                "warning: unknown[82.221.106.233]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
            ),
            Event::SaslFailed { .. }
        ));
        assert!(matches!(
            parse(
                "smtpd",
                "warning: hostname x.example does not resolve to address 1.2.3.4"
            ),
            Event::Warning { queue_id: None, .. }
        ));
        assert!(matches!(
            parse("postscreen", "CONNECT from [1.2.3.4]:5 to [5.6.7.8]:25"),
            Event::PostscreenConnect { .. }
        ));
        assert!(matches!(
            parse("tlsproxy", "CONNECT from [1.2.3.4]:5"),
            Event::TlsProxy { .. }
        ));
        assert!(matches!(
            parse(
                "master",
                "daemon started -- version 3.7.11, configuration /etc/postfix"
            ),
            Event::Lifecycle { .. }
        ));
        assert!(matches!(
            parse("postsuper", "Deleted: 3 messages"),
            Event::PostsuperSummary { count: 3, .. }
        ));
        assert!(matches!(
            parse("anvil", "statistics: max cache size 1 at Oct 26 18:13:50"),
            Event::AnvilStatistics { .. }
        ));
        assert!(matches!(
            parse(
                "scache",
                "statistics: domain lookup hits=0 miss=1 success=0%"
            ),
            Event::ScacheStatistics { .. }
        ));
        assert_eq!(parse("smtpd", ""), Event::Unknown { text: "" });
        assert_eq!(
            parse("smtpd", "hello world"),
            Event::Unknown {
                text: "hello world"
            }
        );
        assert!(matches!(
            parse("smtpd", "NOQUEUE: frobbed"),
            Event::Unknown { .. }
        ));
    }

    #[test]
    fn decision_stages() {
        for (line, stage, code) in [
            (
                "NOQUEUE: reject: EHLO from host[10.0.0.1]: 504 5.5.2 <bogus>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<bogus>",
                "EHLO",
                Some(504),
            ),
            (
                "NOQUEUE: reject_warning: HELO from host[10.0.0.1]: 554 <to@sample.net>: Relay access denied; proto=SMTP helo=<example.com>",
                "HELO",
                Some(554),
            ),
            (
                "NOQUEUE: reject: ETRN from host[10.0.0.1]: 554 5.7.1 <example.com>: Etrn command rejected: Access denied; proto=ESMTP helo=<example.com>",
                "ETRN",
                Some(554),
            ),
            (
                "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com[192.0.2.109]: 550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce; from=<> to=<some@example.com> proto=ESMTP helo=<domain.tld>",
                "BDAT",
                Some(550),
            ),
            (
                "1D8CC1CA0A7F: milter-reject: DATA from x.example.com[192.0.2.151]: 550 5.7.1 Command rejected; from=<a@b> to=<c@d> proto=ESMTP helo=<h>",
                "DATA",
                Some(550),
            ),
            (
                "NOQUEUE: milter-reject: CONNECT from milterS.example.com[10.0.0.2]: 451 4.7.1 Service unavailable - try again later; proto=SMTP",
                "CONNECT",
                Some(451),
            ),
        ] {
            let Event::Reject(r) = parse("smtpd", line) else {
                panic!("{line}")
            };
            assert_eq!((r.stage, r.code), (stage, code), "{line}");
        }
        // postscreen separates the trailer fields with `, `.
        let Event::Reject(r) = parse(
            "postscreen",
            "NOQUEUE: reject: RCPT from [182.98.255.184]:2413: 550 5.5.1 Protocol error; from=<lvtowxfdp@yahoo.com>, to=<tom@example.com>, proto=SMTP, helo=<mx32.usaindiamunish.net>",
        ) else {
            panic!()
        };
        assert_eq!(
            r.client,
            Some(Peer {
                name: "",
                addr: "182.98.255.184",
                port: Some(2413)
            })
        );
        assert_eq!(
            (r.from, r.to, r.proto),
            (
                Some("lvtowxfdp@yahoo.com"),
                Some("tom@example.com"),
                Some("SMTP")
            )
        );
        assert_eq!(r.helo, Some("mx32.usaindiamunish.net"));
    }

    #[test]
    fn cleanup_actions() {
        for (line, action, word, text) in [
            (
                "DEADBEEF: hold: header Subject: Hold Test from local; from=<efrom@example.com> to=<eto@sample.net>: optional text...",
                RejectAction::Hold,
                "hold",
                Some("optional text..."),
            ),
            (
                "DEADBEEF: redirect: body Original drugs from hb.example.com[10.0.0.1]; from=<efrom@example.com> to=<eto@sample.net> proto=SMTP helo=<example.com>: user@domain",
                RejectAction::Redirect,
                "redirect",
                Some("user@domain"),
            ),
            (
                "DEADBEEF: discard: header Subject: **SPAM** Blah... from hb.example.com[10.0.0.1]; from=<efrom@example.com> to=<eto@sample.net> proto=ESMTP helo=<example.com>",
                RejectAction::Discard,
                "discard",
                None,
            ),
            (
                "DEADBEEF: filter: header To: to@example.com from hb.example.com[10.0.0.1]; from=<efrom@example.com> to=<eto@sample.net> proto=ESMTP helo=<example.com>: transport:destination",
                RejectAction::Filter,
                "filter",
                Some("transport:destination"),
            ),
            (
                "DEADBEEF: replace: header Rubble: flintstone from localhost[127.0.0.1]; from=<efrom@apple.com> to=<eto@sample.net> proto=ESMTP helo=<example.com>: text...",
                RejectAction::Other,
                "replace",
                Some("text..."),
            ),
            (
                "DEADBEEF: reject: body Subject: Cheap cialis from local; from=<root@localhost>: optional text...",
                RejectAction::Reject,
                "reject",
                Some("optional text..."),
            ),
            (
                "48rT2v1hQrz1J0N: prepend: header X-Spam-Status: Yes, score=45.1 from mx2.example.org[192.0.2.41]; from=<a@b> to=<c@d> proto=ESMTP helo=<mx2>: X-Spam-Status: Yes",
                RejectAction::Other,
                "prepend",
                Some("X-Spam-Status: Yes"),
            ),
        ] {
            let Event::ContentCheck(c) = parse("cleanup", line) else {
                panic!("{line}")
            };
            assert_eq!(
                (c.action, c.action_word, c.text),
                (action, word, text),
                "{line}"
            );
        }
        // A Received: header with `;` and ` from ` inside the content.
        let Event::ContentCheck(c) = parse(
            "cleanup",
            "DEADBEEF: hold: header Received: from x.com (x.com[10.0.0.1])??by example.com (Postfix) with ESMTP id 630BF??for <X>; Thu, 20 Oct 2006 13:27: from example.com[10.0.0.1]; from=<efrom@example.com> to=<eto@sample.net> proto=ESMTP helo=<example.com>",
        ) else {
            panic!()
        };
        assert!(
            c.content.ends_with("Thu, 20 Oct 2006 13:27:"),
            "{}",
            c.content
        );
        assert_eq!(c.client.map(|p| p.addr), Some("10.0.0.1"));
        // cleanup's milter decisions have the decision shape.
        for (line, action) in [
            (
                "DEADBEEF: milter-hold: END-OF-MESSAGE from milterC.example.com[10.0.0.3]: milter triggers HOLD action; from=<efrom@example.com> to=<eto@example.net> proto=ESMTP helo=<example.com>",
                RejectAction::MilterHold,
            ),
            (
                "DEADBEEF: milter-discard: END-OF-MESSAGE from milterC.example.com[10.0.0.4]: milter triggers DISCARD action; from=<efrom@example.com> to=<eto@example.net> proto=ESMTP helo=<example.com>",
                RejectAction::MilterDiscard,
            ),
        ] {
            let Event::Reject(r) = parse("cleanup", line) else {
                panic!("{line}")
            };
            assert_eq!(
                (r.action, r.stage, r.queue_id),
                (action, "END-OF-MESSAGE", Some("DEADBEEF"))
            );
        }
    }

    #[test]
    fn client_with_sasl_sender() {
        let e = parse(
            "smtpd",
            "DEADBEEF: client=example.com[192.168.0.1], sasl_method=LOGIN, sasl_username=user@example.com, sasl_sender=<id352ib@sample.net>",
        );
        let Event::SmtpdClient {
            sasl_method,
            sasl_username,
            sasl_sender,
            ..
        } = e
        else {
            panic!()
        };
        assert_eq!(sasl_method, Some("LOGIN"));
        assert_eq!(sasl_username, Some("user@example.com"));
        assert_eq!(sasl_sender, Some("<id352ib@sample.net>"));
    }

    #[test]
    fn levels_and_lifecycle() {
        assert_eq!(
            parse(
                "smtpd",
                "panic: myfree: corrupt or unallocated memory block"
            ),
            Event::Panic {
                text: "myfree: corrupt or unallocated memory block"
            }
        );
        assert_eq!(
            parse(
                "postfix-script",
                "fatal: the Postfix mail system is already running"
            ),
            Event::Fatal {
                text: "the Postfix mail system is already running"
            }
        );
        assert!(matches!(
            parse(
                "master",
                "error: open database /etc/postfix/x.db: No such file"
            ),
            Event::Error { .. }
        ));
        assert!(matches!(
            parse("postfix-script", "stopping the Postfix mail system"),
            Event::Lifecycle {
                action: "stopping",
                ..
            }
        ));
        assert!(matches!(
            parse("postfix-script", "refreshing the Postfix mail system"),
            Event::Lifecycle {
                action: "refreshing",
                ..
            }
        ));
    }

    #[test]
    fn serde_kind_tag() {
        let e = parse(
            "qmgr",
            "838FC8A5F: from=<out@example.org>, size=939, nrcpt=1 (queue active)",
        );
        let json = serde_json::to_value(&e).expect("serialise");
        assert_eq!(json["kind"], e.kind());
        assert_eq!(json["queue_id"], "838FC8A5F");
        assert_eq!(json["size"], 939);
        let e = parse(
            "smtpd",
            "NOQUEUE: reject: RCPT from a[192.0.2.1]: 554 5.7.1 no; from=<> to=<b@c>",
        );
        let json = serde_json::to_value(&e).expect("serialise");
        assert_eq!(json["kind"], "reject");
        assert_eq!(json["action"], "reject");
        assert_eq!(json["client"]["addr"], "192.0.2.1");
    }
}
