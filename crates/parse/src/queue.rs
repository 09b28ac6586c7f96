//! Queue-file lines after `QID: `: pickup (`uid=`), qmgr (`from=… (queue active)`,
//! `removed`, expiry, `skipped`), bounce notifications and postsuper actions.

use nom::bytes::complete::tag;
use nom::character::complete::char;

use crate::common::{Res, address, find, number, queue_id};
use crate::event::{Event, NotificationKind, PostsuperAction};

/// pickup `uid=N from=<sender>`.
pub(crate) fn pickup<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, _) = tag("uid=")(i)?;
    let (rest, uid) = match number::<u32>(rest) {
        Ok((r, n)) => (r, Some(n)),
        Err(_) => (rest, None),
    };
    let (rest, _) = tag(" from=")(rest)?;
    let (rest, from) = address(rest)?;
    Ok((
        rest,
        Event::Pickup {
            queue_id,
            uid,
            from,
        },
    ))
}

/// qmgr `from=<sender>, size=N, nrcpt=N (queue active)` or `from=<sender>,
/// status=expired|force-expired, returned to sender`.
pub(crate) fn qmgr_from<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let (rest, _) = tag("from=")(i)?;
    let (rest, from) = address(rest)?;
    let (rest, _) = tag(", ")(rest)?;
    if let Some(r) = rest.strip_prefix("size=") {
        let (r, size) = number::<u64>(r)?;
        let (r, _) = tag(", nrcpt=")(r)?;
        let (r, nrcpt) = number::<u32>(r)?;
        return Ok((
            r,
            Event::QueueActive {
                queue_id,
                from,
                size: Some(size),
                nrcpt: Some(nrcpt),
            },
        ));
    }
    let (rest, _) = tag("status=")(rest)?;
    let (rest, forced) = if let Some(r) = rest.strip_prefix("force-expired") {
        (r, true)
    } else {
        let (r, _) = tag("expired")(rest)?;
        (r, false)
    };
    Ok((
        rest,
        Event::Expired {
            queue_id,
            from,
            forced,
        },
    ))
}

/// bounce `sender non-delivery notification: NEWQID` and the delay, success and
/// postmaster variants.
pub(crate) fn notification<'a>(queue_id: &'a str, i: &'a str) -> Res<'a, Event<'a>> {
    let Some(at) = find(i, " notification: ") else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    };
    let what = &i[..at];
    let notification = if what.starts_with("postmaster ") {
        NotificationKind::Postmaster
    } else {
        match what {
            "sender non-delivery" => NotificationKind::NonDelivery,
            "sender delay" => NotificationKind::Delay,
            "sender delivery status" | "sender success" => NotificationKind::Success,
            _ => {
                return Err(nom::Err::Error(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::Tag,
                )));
            }
        }
    };
    let (rest, new_queue_id) = self::queue_id(&i[at + " notification: ".len()..])?;
    Ok((
        rest,
        Event::Notification {
            queue_id,
            notification,
            new_queue_id,
        },
    ))
}

/// postsuper `removed`, `requeued`, `placed on hold`, `released from hold`,
/// `expired` (the words qmgr also uses for `removed`; the caller decides by daemon).
pub(crate) fn postsuper_action(i: &str) -> Res<'_, PostsuperAction> {
    for (word, action) in [
        ("removed", PostsuperAction::Removed),
        ("requeued", PostsuperAction::Requeued),
        ("placed on hold", PostsuperAction::PlacedOnHold),
        ("released from hold", PostsuperAction::ReleasedFromHold),
        ("expired", PostsuperAction::Expired),
    ] {
        if let Some(r) = i.strip_prefix(word) {
            return Ok((r, action));
        }
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// postsuper summary `Deleted: N messages` (also `Requeued`, `Placed on hold`,
/// `Released from hold`, `Force-expired`, `Renamed to match inode number`).
pub(crate) fn postsuper_summary(i: &str) -> Res<'_, Event<'_>> {
    let Some(colon) = find(i, ": ") else {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Char,
        )));
    };
    let action = &i[..colon];
    if !matches!(
        action,
        "Deleted"
            | "Requeued"
            | "Placed on hold"
            | "Released from hold"
            | "Force-expired"
            | "Renamed to match inode number"
    ) {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        )));
    }
    let (rest, count) = number::<u64>(&i[colon + 2..])?;
    let (rest, _) = char(' ')(rest)?;
    let (rest, _) = tag("message")(rest)?;
    Ok((rest, Event::PostsuperSummary { action, count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_line() {
        let (_, e) = pickup("2D7291020EE", "uid=0 from=<root>").unwrap();
        assert_eq!(
            e,
            Event::Pickup {
                queue_id: "2D7291020EE",
                uid: Some(0),
                from: "root"
            }
        );
        assert!(pickup("2D7291020EE", "uid=0").is_err());
    }

    #[test]
    fn qmgr_lines() {
        let (_, e) = qmgr_from(
            "838FC8A5F",
            "from=<out@example.org>, size=939, nrcpt=1 (queue active)",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::QueueActive {
                queue_id: "838FC8A5F",
                from: "out@example.org",
                size: Some(939),
                nrcpt: Some(1)
            }
        );
        let (_, e) = qmgr_from(
            "ED373F8043E",
            "from=rory@rory-dev.localdomain, size=270, nrcpt=1 (queue active)",
        )
        .unwrap();
        assert!(matches!(
            e,
            Event::QueueActive {
                from: "rory@rory-dev.localdomain",
                ..
            }
        ));
        let (_, e) = qmgr_from(
            "BACE842E72",
            "from=<noreply@domain.com>, status=expired, returned to sender",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::Expired {
                queue_id: "BACE842E72",
                from: "noreply@domain.com",
                forced: false
            }
        );
        let (_, e) = qmgr_from(
            "BACE842E72",
            "from=<>, status=force-expired, returned to sender",
        )
        .unwrap();
        assert_eq!(
            e,
            Event::Expired {
                queue_id: "BACE842E72",
                from: "",
                forced: true
            }
        );
        assert!(qmgr_from("BACE842E72", "from=<a>, frobbed").is_err());
    }

    #[test]
    fn notifications() {
        for (text, kind) in [
            (
                "sender non-delivery notification: ADD2F8052",
                NotificationKind::NonDelivery,
            ),
            (
                "sender delivery status notification: 1DF35917",
                NotificationKind::Success,
            ),
            (
                "sender delay notification: 0A87A1A08",
                NotificationKind::Delay,
            ),
            (
                "postmaster non-delivery notification: 47335405A44",
                NotificationKind::Postmaster,
            ),
        ] {
            let (_, e) = notification("17CCA8044", text).unwrap();
            let Event::Notification {
                notification,
                new_queue_id,
                ..
            } = e
            else {
                panic!()
            };
            assert_eq!(notification, kind);
            assert_eq!(new_queue_id, &text[text.len() - new_queue_id.len()..]);
        }
        assert!(notification("17CCA8044", "sender non-delivery notification: NOQUEUE").is_err());
    }

    #[test]
    fn postsuper() {
        assert_eq!(
            postsuper_action("placed on hold"),
            Ok(("", PostsuperAction::PlacedOnHold))
        );
        assert_eq!(
            postsuper_action("released from hold"),
            Ok(("", PostsuperAction::ReleasedFromHold))
        );
        assert!(postsuper_action("frobbed").is_err());
        assert_eq!(
            postsuper_summary("Deleted: 3 messages"),
            Ok((
                "s",
                Event::PostsuperSummary {
                    action: "Deleted",
                    count: 3
                }
            ))
        );
        assert_eq!(
            postsuper_summary("Requeued: 1 message"),
            Ok((
                "",
                Event::PostsuperSummary {
                    action: "Requeued",
                    count: 1
                }
            ))
        );
        assert!(postsuper_summary("Frobbed: 1 message").is_err());
    }
}
