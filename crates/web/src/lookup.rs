//! `GET /api/v1/lookup`: what `pftrack status` finds — the messages an address, a
//! Message-ID or a queue id refers to, each with its recipients, their paths across the
//! fleet's hosts and the linked messages — read on one of the server's sessions, which
//! have planned these statements before. `pftrack status --server` asks this instead of
//! opening two new database sessions of its own, whose planning over every monthly
//! partition is most of a direct lookup's time (docs/scaling.md).
//!
//! The answer is the store's [`Found`], filtered by the caller's scope here, on the
//! server, with the rule the pages use ([`crate::scope`]): a message is shown when its
//! sender or one of its recipients is in scope, and of it only the recipients in scope
//! (all of them when the sender is), each path cut before the first hop under an
//! address out of scope. Linked messages (parent, children) are keys of other
//! messages whose scope this endpoint does not check, so only admins get them.
//!
//! This module does not render anything (the CLI does) and does not choose what kind of
//! lookup a query is (the CLI tries them in its order, one request each).

use pftrack_store::{Found, Lookup, MessageRecord, RecipientRecord, Window};

use crate::auth::{Auth, audit};
use crate::error::WebError;
use crate::scope::Scope;
use crate::search::parse_time;

/// The most messages one lookup returns (`limit`); `pftrack status --limit` is capped
/// to the same.
pub const MAX_LOOKUP_MESSAGES: usize = 500;

/// Messages returned when `limit` is not given (`pftrack status`'s default).
pub const DEFAULT_LOOKUP_MESSAGES: usize = 50;

/// The most queue ids one queue-id lookup takes (the CLI sends an id in the cases
/// Postfix may have logged it in, a handful).
pub const MAX_LOOKUP_QUEUE_IDS: usize = 16;

/// The parameters of `GET /api/v1/lookup`, in the order the API documents them.
pub const PARAMETERS: [&str; 6] = ["kind", "q", "since", "until", "tag", "limit"];

/// One lookup, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupParams {
    /// What to look for.
    pub lookup: Lookup,
    /// Time window and tag.
    pub window: Window,
    /// Newest messages returned.
    pub limit: usize,
}

fn invalid(name: &str, reason: impl Into<String>) -> WebError {
    WebError::InvalidParam {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

impl LookupParams {
    /// Read the query string's pairs: `kind` (`address`, `message-id`, `queue-id`) and
    /// `q` are required; `q` of a queue-id lookup may name several ids separated by
    /// commas. Unknown or repeated parameters are refused, so a typo does not widen the
    /// lookup unnoticed.
    pub fn parse(pairs: &[(String, String)]) -> Result<LookupParams, WebError> {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in pairs {
            if !PARAMETERS.contains(&k.as_str()) {
                return Err(invalid(
                    k,
                    format!(
                        "unknown parameter; this endpoint takes {}",
                        PARAMETERS.join(", ")
                    ),
                ));
            }
            if seen.contains(&k.as_str()) {
                return Err(invalid(k, "given twice"));
            }
            seen.push(k);
        }
        // Values as given: an empty one is a 400 like everywhere in the API (leave a
        // parameter out to not set it).
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let no_control = |name: &str, v: &str| {
            if v.chars().any(char::is_control) {
                Err(invalid(name, "control characters are not allowed"))
            } else {
                Ok(())
            }
        };
        let q = get("q")
            .ok_or_else(|| invalid("q", "required: what to look up"))?
            .trim();
        if q.is_empty() {
            return Err(invalid(
                "q",
                "empty: give an address, a Message-ID or queue ids",
            ));
        }
        no_control("q", q)?;
        let lookup = match get("kind") {
            Some("address") => Lookup::Address(q.to_owned()),
            Some("message-id") => Lookup::MessageId(q.to_owned()),
            Some("queue-id") => {
                let ids: Vec<String> = q
                    .split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect();
                if ids.is_empty() || ids.len() > MAX_LOOKUP_QUEUE_IDS {
                    return Err(invalid(
                        "q",
                        format!("1 to {MAX_LOOKUP_QUEUE_IDS} queue ids separated by commas"),
                    ));
                }
                Lookup::QueueId(ids)
            }
            Some(other) => {
                return Err(invalid(
                    "kind",
                    format!("{other:?} is not one of address, message-id, queue-id"),
                ));
            }
            None => {
                return Err(invalid("kind", "required: address, message-id or queue-id"));
            }
        };
        let since = get("since").map(|v| parse_time("since", v)).transpose()?;
        let until = get("until").map(|v| parse_time("until", v)).transpose()?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(invalid("until", "must be after since"));
        }
        let tag = match get("tag") {
            None => None,
            Some(t) => {
                no_control("tag", t)?;
                match t.split_once('=') {
                    // Tag names are stored in lower case (as `pftrack status --tag`).
                    Some((name, value)) if !name.is_empty() => {
                        Some((name.to_lowercase(), value.to_owned()))
                    }
                    _ => return Err(invalid("tag", "NAME=VALUE, e.g. tenant=acme")),
                }
            }
        };
        let limit = match get("limit") {
            None => DEFAULT_LOOKUP_MESSAGES,
            Some(v) => match v.parse::<usize>() {
                Ok(n)
                    if v.bytes().all(|b| b.is_ascii_digit())
                        && (1..=MAX_LOOKUP_MESSAGES).contains(&n) =>
                {
                    n
                }
                _ => {
                    return Err(invalid(
                        "limit",
                        format!("{v:?} is not a whole number from 1 to {MAX_LOOKUP_MESSAGES}"),
                    ));
                }
            },
        };
        Ok(LookupParams {
            lookup,
            window: Window { since, until, tag },
            limit,
        })
    }

    /// What the audit log records of this lookup.
    fn audit_detail(&self) -> serde_json::Value {
        let (kind, q) = match &self.lookup {
            Lookup::Address(a) => ("address", a.clone()),
            Lookup::MessageId(m) => ("message-id", m.clone()),
            Lookup::QueueId(ids) => ("queue-id", ids.join(",")),
        };
        serde_json::json!({
            "kind": kind,
            "q": q,
            "since": self.window.since,
            "until": self.window.until,
            "tag": self.window.tag.as_ref().map(|(n, v)| format!("{n}={v}")),
            "limit": self.limit,
        })
    }
}

/// The domain of an address, lower case (`address_domain()` of migration V2: after
/// the last `@`; none without one).
fn domain_of(address: &str) -> Option<String> {
    address
        .rfind('@')
        .map(|at| address[at + 1..].to_ascii_lowercase())
}

/// Whether `address` is one `scope` covers (admins: every address).
fn covers(scope: &Scope, address: Option<&str>) -> bool {
    match (scope, address) {
        (Scope::All, _) => true,
        (_, None) => false,
        (Scope::Domains(domains), Some(a)) => domain_of(a).is_some_and(|d| domains.contains(&d)),
        (Scope::Addresses(addresses), Some(a)) => {
            let a = a.to_ascii_lowercase();
            addresses.contains(&a)
        }
    }
}

/// [`Scope::row_predicate`] in Rust: a recipient row is visible when its message's
/// sender, its recipient or its original recipient is in scope.
fn row_visible(scope: &Scope, sender: Option<&str>, r: &RecipientRecord) -> bool {
    covers(scope, sender)
        || covers(scope, Some(&r.recipient))
        || covers(scope, r.orig_recipient.as_deref())
}

/// `found` as `scope` may see it (see the module's documentation).
pub fn restrict(scope: &Scope, mut found: Found) -> Found {
    if scope.is_all() {
        return found;
    }
    let visible = |m: &mut MessageRecord| {
        let sender = m.sender.clone();
        let by_sender = covers(scope, sender.as_deref());
        m.recipients
            .retain(|r| row_visible(scope, sender.as_deref(), r));
        // A path goes on under the addresses the next hosts gave the mail (an alias
        // expanded at the mailbox host): it stops before the first hop whose address
        // the user may not see, unless the sender makes the whole message visible.
        if !by_sender {
            for r in &mut m.recipients {
                if let Some(hidden) = r
                    .path
                    .iter()
                    .position(|h| !covers(scope, Some(&h.recipient)))
                {
                    r.path.truncate(hidden);
                }
            }
        }
        m.parent = None;
        m.children.clear();
        by_sender || !m.recipients.is_empty()
    };
    found.messages.retain_mut(visible);
    found
}

/// Run the lookup for `auth` on its request's connection, and record it in the audit
/// log with the number of messages returned.
pub async fn lookup_audited(
    conn: &deadpool_postgres::Client,
    auth: &Auth,
    params: &LookupParams,
) -> Result<Found, WebError> {
    let found = pftrack_store::find_messages_on(conn, &params.lookup, &params.window, params.limit)
        .await
        .map_err(|e| match e {
            // A statement's own error keeps its kind: one that ran out of time is a
            // 503 saying so, like every other endpoint's.
            pftrack_store::StoreError::Query { what, source } => {
                WebError::Database { what, source }
            }
            other => WebError::Internal(format!("the status lookup failed: {other}")),
        })?;
    let found = restrict(&auth.scope, found);
    audit(
        conn,
        &auth.name,
        &auth.client.addr,
        "lookup",
        params.audit_detail(),
        Some(found.messages.len() as i64),
    )
    .await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap_or_default()
    }

    fn err(q: &str) -> String {
        match LookupParams::parse(&pairs(q)) {
            Err(e) => e.to_string(),
            Ok(p) => format!("accepted: {p:?}"),
        }
    }

    #[test]
    fn parses_each_kind_with_defaults() {
        let p = LookupParams::parse(&pairs("kind=address&q=Bob%40Example.com")).unwrap();
        assert_eq!(p.lookup, Lookup::Address("Bob@Example.com".into()));
        assert_eq!(p.limit, DEFAULT_LOOKUP_MESSAGES);
        assert_eq!(p.window, Window::default());
        let p =
            LookupParams::parse(&pairs("kind=queue-id&q=4BC7D1A0F3,4bc7d1a0f3&limit=5")).unwrap();
        assert_eq!(
            p.lookup,
            Lookup::QueueId(vec!["4BC7D1A0F3".into(), "4bc7d1a0f3".into()])
        );
        assert_eq!(p.limit, 5);
        let p = LookupParams::parse(&pairs(
            "kind=message-id&q=%3Ca%40b%3E&since=2025-03-01T00:00:00Z&until=2025-04-01&tag=Tenant%3Dacme",
        ))
        .unwrap();
        assert_eq!(p.lookup, Lookup::MessageId("<a@b>".into()));
        assert!(p.window.since.is_some() && p.window.until.is_some());
        assert_eq!(p.window.tag, Some(("tenant".into(), "acme".into())));
    }

    #[test]
    fn refuses_bad_parameters_saying_which() {
        assert!(err("q=x").starts_with("kind: required"), "{}", err("q=x"));
        assert!(err("kind=address").starts_with("q: required"));
        assert!(err("kind=sender&q=x").starts_with("kind: \"sender\""));
        assert!(err("kind=address&q=x&limit=0").starts_with("limit:"));
        assert!(err("kind=address&q=x&limit=501").starts_with("limit:"));
        assert!(err("kind=address&q=x&limit=ten").starts_with("limit:"));
        assert!(err("kind=address&q=x&since=yesterday").starts_with("since:"));
        assert!(err("kind=address&q=x&since=2025-03-02&until=2025-03-01").starts_with("until:"));
        assert!(err("kind=address&q=x&tag=novalue").starts_with("tag:"));
        assert!(err("kind=address&q=x&recipient=y").starts_with("recipient: unknown"));
        assert!(err("kind=address&q=x&q=y").starts_with("q: given twice"));
        let many = vec!["A"; MAX_LOOKUP_QUEUE_IDS + 1].join(",");
        assert!(err(&format!("kind=queue-id&q={many}")).starts_with("q:"));
        assert!(err("kind=queue-id&q=,,").starts_with("q:"));
        assert!(err("kind=address&q=").starts_with("q: empty"));
        assert!(err("kind=address&q=a%00b").starts_with("q: control"));
        assert!(err("kind=address&q=x&since=").starts_with("since:"));
        assert!(err("kind=address&q=x&limit=%2B5").starts_with("limit:"));
        assert!(err("kind=address&q=x&limit=").starts_with("limit:"));
        assert!(err("kind=address&q=x&tag=a%3Db%00").starts_with("tag: control"));
        assert!(err("kind=address&q=x&tag=%3Dx").starts_with("tag:"));
    }

    fn record(sender: Option<&str>, recipients: &[(&str, Option<&str>)]) -> MessageRecord {
        let t = chrono::DateTime::UNIX_EPOCH;
        MessageRecord {
            host: "mx1".into(),
            queue_id: "ABC".into(),
            arrived_at: t,
            last_seen_at: t,
            sender: sender.map(str::to_owned),
            message_id: None,
            origin: None,
            client_name: None,
            client_addr: None,
            sasl_method: None,
            sasl_username: None,
            pickup_uid: None,
            size: None,
            nrcpt: None,
            counts: Default::default(),
            outcome: "delivered".into(),
            in_flight: false,
            removed_at: None,
            expired_at: None,
            deleted_at: None,
            rejected_at: None,
            held_at: None,
            released_at: None,
            parent: Some(pftrack_store::MessageLink {
                queue_id: "PARENT".into(),
                arrived_at: t,
                kind: None,
            }),
            children: Vec::new(),
            recipients: recipients
                .iter()
                .map(|(r, o)| RecipientRecord {
                    recipient: (*r).to_owned(),
                    orig_recipient: o.map(str::to_owned),
                    status: "sent".into(),
                    status_at: t,
                    dsn: None,
                    relay: None,
                    response: None,
                    attempts: 1,
                    delay: None,
                    first_attempt_at: None,
                    last_attempt_at: None,
                    queued_as: None,
                    continued_as: None,
                    failure_reason: None,
                    hard: None,
                    failure_rule: None,
                    path: Vec::new(),
                })
                .collect(),
        }
    }

    fn recipients(found: &Found) -> Vec<Vec<String>> {
        found
            .messages
            .iter()
            .map(|m| m.recipients.iter().map(|r| r.recipient.clone()).collect())
            .collect()
    }

    #[test]
    fn scopes_keep_only_what_is_yours() {
        let found = Found {
            messages: vec![
                record(
                    Some("x@other.org"),
                    &[("a@Example.COM", None), ("b@elsewhere.net", None)],
                ),
                record(Some("me@example.com"), &[("c@elsewhere.net", None)]),
                record(
                    Some("x@other.org"),
                    &[("d@elsewhere.net", Some("alias@example.com"))],
                ),
                record(None, &[("e@elsewhere.net", None)]),
            ],
            truncated: true,
        };
        let admin = restrict(&Scope::All, found.clone());
        assert_eq!(admin, found, "admins see everything, links included");

        let domain = restrict(&Scope::Domains(vec!["example.com".into()]), found.clone());
        assert_eq!(
            recipients(&domain),
            vec![
                vec!["a@Example.COM".to_owned()],
                vec!["c@elsewhere.net".to_owned()],
                vec!["d@elsewhere.net".to_owned()],
            ]
        );
        assert!(domain.truncated);
        assert!(
            domain
                .messages
                .iter()
                .all(|m| m.parent.is_none() && m.children.is_empty())
        );

        let mut relayed = found.clone();
        let hop = |recipient: &str| pftrack_store::Hop {
            host: "store1".into(),
            queue_id: "NEXT".into(),
            arrived_at: chrono::DateTime::UNIX_EPOCH,
            recipient: recipient.into(),
            status: "sent".into(),
            status_at: None,
            dsn: None,
            relay: None,
            response: None,
            link: "relay".into(),
        };
        relayed.messages[0].recipients[0].path = vec![
            hop("a@example.com"),
            hop("a.mailbox@internal.example.org"),
            hop("a@example.com"),
        ];
        let cut = restrict(&Scope::Domains(vec!["example.com".into()]), relayed);
        assert_eq!(
            cut.messages[0].recipients[0].path.len(),
            1,
            "cut before the hidden hop"
        );

        let me = restrict(
            &Scope::Addresses(vec!["a@example.com".into()]),
            found.clone(),
        );
        assert_eq!(recipients(&me), vec![vec!["a@Example.COM".to_owned()]]);

        let nobody = restrict(&Scope::Domains(vec!["example".into()]), found);
        assert!(
            nobody.messages.is_empty(),
            "a domain matches whole, not a suffix"
        );
    }
}
