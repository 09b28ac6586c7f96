//! cleanup lines: `message-id=`, `resent-message-id=` and the header/body check
//! actions (`QID: ACTION: PART CONTENT from ORIGIN; from=<…> to=<…> proto=… helo=<…>:
//! text`). cleanup's milter decisions (`QID: milter-reject: END-OF-MESSAGE from …`)
//! have smtpd's decision shape and are parsed by [`crate::smtpd::decision`].

use nom::bytes::complete::tag;

use crate::common::{Res, angle, ascii_while1, peer, starts_trailer, trailer};
use crate::event::{ContentCheck, Event};
use crate::smtpd::{action_of, action_word};

/// `message-id=<id>` or `resent-message-id=<id>`; the id may lack angle brackets
/// (non-RFC ids, taken to the end of the line) or be empty.
pub(crate) fn message_id<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, resent) = match i.strip_prefix("resent-") {
        Some(r) => (r, true),
        None => (i, false),
    };
    let (rest, _) = tag("message-id=")(rest)?;
    let message_id = if let Some(inner) = rest.strip_prefix('<') {
        match angle(rest) {
            Ok((_, id)) => id,
            // `<` without `>`: keep what is there.
            Err(_) => inner,
        }
    } else {
        rest.trim_end()
    };
    Ok((
        "",
        Event::MessageId {
            queue_id,
            message_id,
            resent,
        },
    ))
}

/// The part a header/body check matched: `header`, `body`, `content`,
/// `mime-header`, `nested-header`, …
fn part(i: &str) -> Res<'_, &str> {
    ascii_while1(|c: u8| c.is_ascii_lowercase() || c == b'-')(i)
}

/// Where the content ends: the first `;` that is preceded by ` from ORIGIN` (origin
/// has no space) and followed by a trailer field, `: text` or nothing. Returns the
/// content, the origin and the text after the `;`.
fn split_origin(s: &str) -> Option<(&str, &str, &str)> {
    for pos in memchr::memchr_iter(b';', s.as_bytes()) {
        let after = &s[pos + 1..];
        if !(starts_trailer(after) || after.starts_with(':')) {
            continue;
        }
        // The origin is the word right before the `;`; look back only that far, so
        // a line with many `;` stays linear.
        let before = &s[..pos];
        let Some(space) = memchr::memrchr(b' ', before.as_bytes()) else {
            continue;
        };
        let origin = &before[space + 1..];
        let Some(content) = before[..space].strip_suffix(" from") else {
            continue;
        };
        if origin.is_empty() {
            continue;
        }
        return Some((content, origin, after));
    }
    None
}

/// `ACTION: PART CONTENT from ORIGIN; trailer[: text]` after `QID: `.
pub(crate) fn content_check<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, word) = action_word(i)?;
    let (rest, part) = part(rest)?;
    let (rest, _) = tag(" ")(rest)?;
    let Some((content, origin, after)) = split_origin(rest) else {
        return Err(nom::Err::Error(nom::error::Error::new(
            rest,
            nom::error::ErrorKind::Verify,
        )));
    };
    let client = match peer(origin) {
        Ok((_, p)) => Some(p),
        Err(_) => None,
    };
    let (tail, t) = trailer(after)?;
    let text = tail
        .strip_prefix(':')
        .map(|t| t.trim_start_matches(' '))
        .filter(|t| !t.is_empty());
    Ok((
        "",
        Event::ContentCheck(ContentCheck {
            queue_id,
            action: action_of(word),
            action_word: word,
            part,
            content,
            client,
            from: t.from,
            to: t.to,
            proto: t.proto,
            helo: t.helo,
            text,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Peer, RejectAction};

    #[test]
    fn message_ids() {
        let (_, e) = message_id(
            "3mPVKl0Mhjz7sXv",
            "message-id=<E1ZB06G-0006n5-Vp@anc-dev-web1.slc.example.net>",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::MessageId {
                queue_id: "3mPVKl0Mhjz7sXv",
                message_id: "E1ZB06G-0006n5-Vp@anc-dev-web1.slc.example.net",
                resent: false,
            }
        );
        let (_, e) = message_id("ABCDEF1", "message-id=msgId-3bYsfs23wBzs7Dv").unwrap();
        assert!(matches!(
            e,
            Event::MessageId {
                message_id: "msgId-3bYsfs23wBzs7Dv",
                ..
            }
        ));
        let (_, e) = message_id("ABCDEF1", "message-id=<>").unwrap();
        assert!(matches!(e, Event::MessageId { message_id: "", .. }));
        let (_, e) = message_id("ABCDEF1", "message-id=").unwrap();
        assert!(matches!(e, Event::MessageId { message_id: "", .. }));
        let (_, e) = message_id("ABCDEF1", "resent-message-id=<a@b>").unwrap();
        assert!(matches!(
            e,
            Event::MessageId {
                message_id: "a@b",
                resent: true,
                ..
            }
        ));
    }

    #[test]
    fn parts() {
        assert_eq!(part("mime-header Content"), Ok((" Content", "mime-header")));
        assert!(part("END-OF-MESSAGE").is_err());
    }

    #[test]
    fn origin_split() {
        assert_eq!(
            split_origin("Subject: hi from me from x[1.2.3.4]; from=<a>"),
            Some(("Subject: hi from me", "x[1.2.3.4]", " from=<a>"))
        );
        assert_eq!(
            split_origin("Received: from a (b; c) from local;: text"),
            Some(("Received: from a (b; c)", "local", ": text"))
        );
        assert_eq!(split_origin("no origin; here"), None);
    }

    #[test]
    fn header_checks() {
        let (_, e) = content_check(
            "52520490001",
            "warning: header Subject: =?ISO-8859-1?Q?Alumni?= from unknown[192.168.25.183]; from=<alumni@uni-corvinus.hu> to=<melinda@esnet.hu> proto=ESMTP helo=<msgserv2.uni-corvinus.hu>",
        )
        .unwrap();
        let Event::ContentCheck(c) = e else { panic!() };
        assert_eq!(
            (c.action, c.action_word, c.part),
            (RejectAction::Warn, "warning", "header")
        );
        assert_eq!(c.content, "Subject: =?ISO-8859-1?Q?Alumni?=");
        assert_eq!(
            c.client,
            Some(Peer {
                name: "unknown",
                addr: "192.168.25.183",
                port: None
            })
        );
        assert_eq!(
            (c.from, c.to),
            (Some("alumni@uni-corvinus.hu"), Some("melinda@esnet.hu"))
        );
        assert_eq!(
            (c.proto, c.helo, c.text),
            (Some("ESMTP"), Some("msgserv2.uni-corvinus.hu"), None)
        );

        let (_, e) = content_check(
            "66BFB3C3487",
            "warning: header Subject: [seapig-shop] Order confirmation from local; from=<shop@seapig-shop.tld>",
        )
        .unwrap();
        let Event::ContentCheck(c) = e else { panic!() };
        assert_eq!((c.client, c.from), (None, Some("shop@seapig-shop.tld")));

        let (_, e) = content_check(
            "ABCDEF123",
            "reject: header Date: Sun, 1 Jan 2006 from x[1.2.3.4]; from=<a> to=<b> proto=SMTP helo=<h>: 5.7.1 Message content rejected",
        )
        .unwrap();
        let Event::ContentCheck(c) = e else { panic!() };
        assert_eq!(
            (c.action, c.text),
            (RejectAction::Reject, Some("5.7.1 Message content rejected"))
        );

        // A milter decision is not a content check.
        assert!(
            content_check(
                "ABCDEF123",
                "milter-reject: END-OF-MESSAGE from x[1.2.3.4]: 4.7.1 no; from=<a>"
            )
            .is_err()
        );
    }

    /// The client application named in a header, logged by a `header_checks` INFO
    /// action (real lines from the postfix-deliverability-analytics corpus) or WARN.
    #[test]
    fn header_info_and_warn() {
        let e = crate::parse(
            "cleanup",
            "7D830C2C10FXXXX: info: header client-id: first-client-id from localhost[127.0.0.1]; from=<liska@fg.cz> to=<liska@fg.cz> proto=ESMTP helo=<jlinb>",
        );
        let Event::ContentCheck(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (c.queue_id, c.action, c.action_word, c.part),
            ("7D830C2C10FXXXX", RejectAction::Other, "info", "header")
        );
        assert_eq!(c.header(), Some(("client-id", "first-client-id")));
        assert_eq!((c.from, c.to), (Some("liska@fg.cz"), Some("liska@fg.cz")));
        assert_eq!(
            (c.proto, c.helo, c.text),
            (Some("ESMTP"), Some("jlinb"), None)
        );

        let e = crate::parse(
            "cleanup",
            "3bYsfs23wBzs7Dv: info: header client-id: test-mail-module from localhost[127.0.0.1]; from=<liska@fg.cz> to=<liska@fg.cz> proto=ESMTP helo=<jlinb>",
        );
        let Event::ContentCheck(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(c.header(), Some(("client-id", "test-mail-module")));

        // WARN with optional text; local submission (`from local`), no proto/helo.
        let e = crate::parse(
            "cleanup",
            "66BFB3C3487: warning: header X-Mailer: Acme Mailer 2.1 (build 7) from local; from=<shop@example.com>: tagged by client",
        );
        let Event::ContentCheck(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(c.action, RejectAction::Warn);
        assert_eq!(c.header(), Some(("X-Mailer", "Acme Mailer 2.1 (build 7)")));
        assert_eq!(c.text, Some("tagged by client"));

        // A value with `:` and `from` in it; an empty value.
        let e = crate::parse(
            "cleanup",
            "ABCDEF123: info: header Client-ID : app: from cron from x[1.2.3.4]; from=<a>",
        );
        let Event::ContentCheck(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(c.header(), Some(("Client-ID", "app: from cron")));
        let e = crate::parse(
            "cleanup",
            "ABCDEF123: info: header client-id: from x[1.2.3.4]; from=<a>",
        );
        let Event::ContentCheck(c) = e else {
            panic!("{e:?}")
        };
        assert_eq!(c.header(), Some(("client-id", "")));
    }

    #[test]
    fn header_not_a_header() {
        let check = |part, content| ContentCheck {
            queue_id: "ABCDEF123",
            action: RejectAction::Other,
            action_word: "info",
            part,
            content,
            client: None,
            from: None,
            to: None,
            proto: None,
            helo: None,
            text: None,
        };
        assert_eq!(check("body", "client-id: acme").header(), None);
        assert_eq!(check("header", "no colon here").header(), None);
        assert_eq!(check("header", "two words: x").header(), None);
        assert_eq!(check("header", ": x").header(), None);
        assert_eq!(
            check("mime-header", "Content-Type: text/plain").header(),
            Some(("Content-Type", "text/plain"))
        );
        // Bounded at a character boundary.
        let long = format!("X-Client: {}", "é".repeat(150));
        let (_, v) = check("header", &long).header().unwrap();
        assert_eq!(v.len(), crate::HEADER_VALUE_MAX);
        let long = format!("X-Client: a{}", "é".repeat(150));
        let (_, v) = check("header", &long).header().unwrap();
        assert_eq!(v.len(), crate::HEADER_VALUE_MAX - 1);
    }
}
