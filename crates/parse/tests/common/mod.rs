//! Helpers shared by the corpus tests: where the corpora are, and line splitting
//! with `pftrack_input::syslog`.

#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use pftrack_input::syslog::split;
use pftrack_parse::{DeliveryStatus, Event, NotificationKind, Peer, PostsuperAction, SessionEnd};

/// The shared corpora directory, read in place.
pub fn corpora() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: corpora directory {} is missing", dir.display());
        None
    }
}

/// The daemon of a syslog identifier: its last `/` component.
pub fn daemon(ident: &[u8]) -> String {
    let id = String::from_utf8_lossy(ident);
    pftrack_input::daemon_of(&id).to_string()
}

/// Lines of a file as byte slices, without the trailing `\n` (and `\r`).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// A flat, neutral view of an event for comparison with other parsers' field maps:
/// `(name, value)` pairs with our field names (`queue_id`, `client.addr`, `to`, …).
/// Peers are split into `.name`, `.addr`, `.port`; `client` is the SMTP client,
/// `server` the remote server of an outgoing connection (or postscreen's local end).
#[derive(Debug, Default)]
pub struct View(pub Vec<(&'static str, String)>);

impl View {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn put(&mut self, name: &'static str, value: impl ToString) {
        self.0.push((name, value.to_string()));
    }

    fn opt(&mut self, name: &'static str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.put(name, v);
        }
    }

    fn peer(&mut self, which: &'static str, p: Option<Peer<'_>>) {
        let Some(p) = p else { return };
        let (name, addr, port) = match which {
            "client" => ("client.name", "client.addr", "client.port"),
            _ => ("server.name", "server.addr", "server.port"),
        };
        if !p.name.is_empty() {
            self.put(name, p.name);
        }
        self.put(addr, p.addr);
        self.opt(port, p.port);
    }
}

/// Format a delay the way Postfix prints it (no trailing `.0`).
pub fn secs(f: f32) -> String {
    format!("{f}")
}

/// The neutral view of `event` (see [`View`]).
pub fn view(event: &Event<'_>) -> View {
    let mut v = View::default();
    match event {
        Event::Connect { client } => {
            v.put("action", "connect");
            v.peer("client", Some(*client));
        }
        Event::Disconnect {
            client,
            counters,
            commands,
        } => {
            v.put("action", "disconnect");
            v.peer("client", Some(*client));
            v.put("counters", counters);
            v.opt("commands", *commands);
        }
        Event::SmtpdClient {
            queue_id,
            client,
            sasl_method,
            sasl_username,
            sasl_sender,
            orig_queue_id,
            orig_client,
        } => {
            v.put("queue_id", queue_id);
            v.peer("client", *client);
            v.opt("sasl_method", *sasl_method);
            v.opt("sasl_username", *sasl_username);
            v.opt("sasl_sender", *sasl_sender);
            v.opt("orig_queue_id", *orig_queue_id);
            v.opt(
                "orig_client",
                orig_client.map(|p| format!("{}[{}]", p.name, p.addr)),
            );
        }
        Event::Reject(r) => {
            v.opt("queue_id", r.queue_id);
            v.put("action", r.action_word);
            v.put("stage", r.stage);
            v.peer("client", r.client);
            v.opt("code", r.code);
            v.opt("dsn", r.dsn);
            v.put("text", r.text);
            v.opt("from", r.from);
            v.opt("to", r.to);
            v.opt("proto", r.proto);
            v.opt("helo", r.helo);
        }
        Event::ContentCheck(c) => {
            v.put("queue_id", c.queue_id);
            v.put("action", c.action_word);
            v.put("part", c.part);
            v.put("content", c.content);
            v.peer("client", c.client);
            v.opt("from", c.from);
            v.opt("to", c.to);
            v.opt("proto", c.proto);
            v.opt("helo", c.helo);
            v.opt("text", c.text);
        }
        Event::SessionEnded {
            queue_id,
            how,
            stage,
            bytes,
            client,
        } => {
            v.opt("queue_id", *queue_id);
            let how = match how {
                SessionEnd::LostConnection => "lost connection",
                SessionEnd::Timeout => "timeout",
                SessionEnd::TooManyErrors => "too many errors",
                SessionEnd::BareNewline => "bare <LF> received",
            };
            v.put("action", how);
            v.put("stage", stage);
            v.opt("bytes", *bytes);
            v.peer("client", *client);
        }
        Event::SaslFailed {
            client,
            mechanism,
            reason,
            sasl_username,
            aborted,
        } => {
            v.peer("client", Some(*client));
            v.put("mechanism", mechanism);
            v.put("text", reason);
            v.opt("sasl_username", *sasl_username);
            if *aborted {
                v.put("sasl_outcome", "aborted");
            }
        }
        Event::ImproperPipelining {
            stage,
            client,
            text,
        } => {
            v.put("stage", stage);
            v.peer("client", Some(*client));
            v.put("text", text);
        }
        Event::TlsEstablished {
            incoming,
            trust,
            peer,
            detail,
        } => {
            v.put("trust", trust);
            v.peer(if *incoming { "client" } else { "server" }, Some(*peer));
            v.put("detail", detail);
        }
        Event::TlsProblem { peer, text, detail } => {
            let incoming = text.starts_with("SSL_accept");
            v.peer(if incoming { "client" } else { "server" }, *peer);
            v.put("text", text);
            v.put("detail", detail);
        }
        Event::TlsProxy { peer, .. } => v.peer("client", Some(*peer)),
        Event::PostscreenConnect { client, server } => {
            v.peer("client", Some(*client));
            v.peer("server", *server);
        }
        Event::PostscreenPass { new, client } => {
            v.put("list", if *new { "PASS NEW" } else { "PASS OLD" });
            v.peer("client", Some(*client));
        }
        Event::PostscreenDnsblRank { rank, client } => {
            v.put("violation", "DNSBL");
            v.put("rank", rank);
            v.peer("client", Some(*client));
        }
        Event::PostscreenPregreet {
            bytes,
            after,
            client,
            text,
        } => {
            v.put("violation", "PREGREET");
            v.put("bytes", bytes);
            v.put("after", after);
            v.peer("client", Some(*client));
            v.put("text", text);
        }
        Event::PostscreenHangup {
            after,
            client,
            stage,
        } => {
            v.put("violation", "HANGUP");
            v.put("after", after);
            v.peer("client", Some(*client));
            v.put("stage", stage);
        }
        Event::PostscreenDisconnect { client } => v.peer("client", Some(*client)),
        Event::PostscreenListed { list, client } => {
            v.put("list", list);
            v.peer("client", Some(*client));
        }
        Event::PostscreenViolation {
            violation,
            client,
            detail,
        } => {
            v.put("violation", violation);
            v.peer("client", Some(*client));
            v.put("detail", detail);
            if let Some(after) = detail.strip_prefix("after ") {
                v.put("stage", after.split(": ").next().unwrap_or(after));
            }
        }
        Event::CacheCleanup {
            table,
            retained,
            dropped,
        } => {
            v.put("table", table);
            v.put("retained", retained);
            v.put("dropped", dropped);
        }
        Event::DnsblogListed {
            addr,
            domain,
            reply,
        } => {
            v.put("client.addr", addr);
            v.put("domain", domain);
            v.put("reply", reply);
        }
        Event::MessageId {
            queue_id,
            message_id,
            resent,
        } => {
            v.put("queue_id", queue_id);
            v.put(
                if *resent {
                    "resent_message_id"
                } else {
                    "message_id"
                },
                message_id,
            );
        }
        Event::Pickup {
            queue_id,
            uid,
            from,
        } => {
            v.put("queue_id", queue_id);
            v.opt("uid", *uid);
            v.put("from", from);
        }
        Event::QueueActive {
            queue_id,
            from,
            size,
            nrcpt,
        } => {
            v.put("queue_id", queue_id);
            v.put("from", from);
            v.opt("size", *size);
            v.opt("nrcpt", *nrcpt);
        }
        Event::Removed { queue_id } => {
            v.put("queue_id", queue_id);
            v.put("action", "removed");
        }
        Event::Expired {
            queue_id,
            from,
            forced,
        } => {
            v.put("queue_id", queue_id);
            v.put("from", from);
            v.put("status", if *forced { "force-expired" } else { "expired" });
        }
        Event::Skipped { queue_id } => {
            v.put("queue_id", queue_id);
            v.put("action", "skipped, still being delivered");
        }
        Event::Delivery(d) => {
            v.put("queue_id", d.queue_id);
            v.put("to", d.to);
            v.opt("orig_to", d.orig_to);
            v.opt("relay", d.relay);
            v.peer("server", d.relay_peer());
            v.opt("conn_use", d.conn_use);
            v.opt("delay", d.delay.map(secs));
            v.opt(
                "delays",
                d.delays.map(|x| {
                    format!(
                        "{}/{}/{}/{}",
                        secs(x.before_qmgr),
                        secs(x.in_qmgr),
                        secs(x.conn_setup),
                        secs(x.transmission)
                    )
                }),
            );
            v.opt("dsn", d.dsn);
            v.put("status", d.status_word);
            v.put(
                "status_class",
                match d.status {
                    DeliveryStatus::Sent => "sent",
                    DeliveryStatus::Deferred => "deferred",
                    DeliveryStatus::Bounced => "bounced",
                    DeliveryStatus::Expired => "expired",
                    _ => "undeliverable",
                },
            );
            v.put("response", d.response);
            v.opt("queued_as", d.queued_as);
        }
        Event::ConnectFailed {
            queue_id,
            server,
            reason,
        } => {
            v.opt("queue_id", *queue_id);
            v.peer("server", Some(*server));
            v.put("text", reason);
        }
        Event::SmtpConversation {
            queue_id,
            peer,
            text,
        } => {
            v.opt("queue_id", *queue_id);
            v.peer("server", *peer);
            v.put("text", text);
        }
        Event::Notification {
            queue_id,
            notification,
            new_queue_id,
        } => {
            v.put("queue_id", queue_id);
            v.put(
                "notification",
                match notification {
                    NotificationKind::NonDelivery => "non-delivery",
                    NotificationKind::Delay => "delay",
                    NotificationKind::Success => "delivery status",
                    _ => "postmaster",
                },
            );
            v.put("new_queue_id", new_queue_id);
        }
        Event::Postsuper { queue_id, action } => {
            v.put("queue_id", queue_id);
            v.put(
                "action",
                match action {
                    PostsuperAction::Removed => "removed",
                    PostsuperAction::Requeued => "requeued",
                    PostsuperAction::PlacedOnHold => "placed on hold",
                    PostsuperAction::ReleasedFromHold => "released from hold",
                    _ => "expired",
                },
            );
        }
        Event::PostsuperSummary { action, count } => {
            v.put("action", action);
            v.put("count", count);
        }
        Event::AnvilStatistics {
            metric,
            value,
            subject,
            at,
        } => {
            v.put("metric", metric);
            v.put("value", value);
            v.opt("subject", *subject);
            v.opt("at", *at);
        }
        Event::ScacheStatistics { metric, value } => {
            v.put("metric", metric);
            v.put("value", value);
        }
        Event::Lifecycle {
            action,
            version,
            text,
        } => {
            v.put("action", action);
            v.opt("version", *version);
            v.put("text", text);
        }
        Event::Warning {
            queue_id,
            client,
            text,
        } => {
            v.opt("queue_id", *queue_id);
            v.peer("client", *client);
            v.put("level", "warning");
            v.put("text", text);
        }
        Event::Error { text } => {
            v.put("level", "error");
            v.put("text", text);
        }
        Event::Fatal { text } => {
            v.put("level", "fatal");
            v.put("text", text);
        }
        Event::Panic { text } => {
            v.put("level", "panic");
            v.put("text", text);
        }
        Event::Verbose { text, .. } => v.put("text", text),
        Event::QueueOther { queue_id, text } => {
            v.put("queue_id", queue_id);
            v.put("text", text);
        }
        Event::Unknown { text } => v.put("text", text),
        _ => {}
    }
    v
}
