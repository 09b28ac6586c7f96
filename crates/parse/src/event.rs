//! The typed events the parser produces. Every `&'a str` borrows from the message.

use serde::Serialize;

/// A remote peer as Postfix logs it: `name[addr]` or `name[addr]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Peer<'a> {
    /// Hostname as resolved (`unknown` when it did not resolve); empty for `[addr]` forms.
    pub name: &'a str,
    /// IP address as logged inside the brackets (IPv4, IPv6, or a socket path such as
    /// `private/dovecot-lmtp` for a local LMTP relay).
    pub addr: &'a str,
    /// Port, when logged.
    pub port: Option<u16>,
}

/// `status=` of a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Delivered (2.x.x).
    Sent,
    /// Temporary failure, will be retried (4.x.x).
    Deferred,
    /// Permanent failure (5.x.x).
    Bounced,
    /// Gave up because the message is too old.
    Expired,
    /// Undeliverable and bounced; also `softbounce`, or anything else Postfix logs.
    Undeliverable,
}

/// The four parts of `delays=a/b/c/d`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delays {
    /// Time before the queue manager, including message transmission.
    pub before_qmgr: f32,
    /// Time in the queue manager.
    pub in_qmgr: f32,
    /// Connection setup time including DNS, HELO and TLS.
    pub conn_setup: f32,
    /// Message transmission time.
    pub transmission: f32,
}

/// One delivery attempt of one recipient (smtp, lmtp, local, virtual, pipe, error,
/// discard, retry): `QID: to=<…>, [orig_to=<…>,] relay=…, delay=…, delays=…, dsn=…,
/// status=… (response)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery<'a> {
    /// The queue id.
    pub queue_id: &'a str,
    /// Recipient as delivered.
    pub to: &'a str,
    /// Original recipient before alias/virtual expansion.
    pub orig_to: Option<&'a str>,
    /// `relay=` value as logged (`mx.example.com[1.2.3.4]:25`, `local`, `none`, …).
    pub relay: Option<&'a str>,
    /// `conn_use=` (connection reuse count).
    pub conn_use: Option<u32>,
    /// `delay=` in seconds.
    pub delay: Option<f32>,
    /// `delays=a/b/c/d`.
    pub delays: Option<Delays>,
    /// `dsn=` enhanced status code.
    pub dsn: Option<&'a str>,
    /// `status=`.
    pub status: DeliveryStatus,
    /// The `status=` word as logged (`sent`, `deferred`, `deliverable`,
    /// `undeliverable`, …); tells the [`DeliveryStatus::Undeliverable`] cases apart.
    pub status_word: &'a str,
    /// The text in parentheses after the status (may itself contain parentheses).
    pub response: &'a str,
    /// `queued as NEWQID` (content filter re-injection) or `forwarded as NEWQID`
    /// (local forwarding) found in the response.
    pub queued_as: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    /// The `relay=` value as a peer (`host[addr]:port`), when it has that form (not
    /// for `none`, `local`, or a transport name such as `dovecot`).
    pub fn relay_peer(&self) -> Option<Peer<'a>> {
        let relay = self.relay?;
        match crate::common::peer(relay) {
            Ok(("", p)) => Some(p),
            _ => None,
        }
    }
}

/// What an access restriction, milter, header/body check or proxy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectAction {
    /// `reject:`
    Reject,
    /// `defer:`
    Defer,
    /// `warn:`
    Warn,
    /// `hold:`
    Hold,
    /// `discard:`
    Discard,
    /// `filter:`
    Filter,
    /// `redirect:`
    Redirect,
    /// `reject_warning:` (a would-be reject under `warn_if_reject`)
    RejectWarning,
    /// `milter-reject:`
    MilterReject,
    /// `milter-discard:`
    MilterDiscard,
    /// `milter-hold:`
    MilterHold,
    /// `proxy-reject:`
    ProxyReject,
    /// `proxy-accept:`
    ProxyAccept,
    /// `prepend:`/`replace:`/`info:` and other header/body check actions.
    Other,
}

/// An smtpd (or postscreen, cleanup, milter) decision about a command:
/// `NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 <x>: Relay access denied; from=<a>
/// to=<b> proto=ESMTP helo=<h>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject<'a> {
    /// `None` for `NOQUEUE`.
    pub queue_id: Option<&'a str>,
    /// What was done.
    pub action: RejectAction,
    /// The action word as logged (`reject`, `milter-reject`, `info`, `permit`, …);
    /// tells the [`RejectAction::Other`] cases apart.
    pub action_word: &'a str,
    /// SMTP stage: `CONNECT`, `HELO`, `EHLO`, `MAIL`, `RCPT`, `DATA`, `BDAT`,
    /// `END-OF-MESSAGE`, `VRFY`, `ETRN`, …
    pub stage: &'a str,
    /// The client, when logged.
    pub client: Option<Peer<'a>>,
    /// SMTP reply code.
    pub code: Option<u16>,
    /// Enhanced status code.
    pub dsn: Option<&'a str>,
    /// The reply text after code and dsn, up to the `; from=` trailer.
    pub text: &'a str,
    /// `from=<…>` (envelope sender; empty for the null sender).
    pub from: Option<&'a str>,
    /// `to=<…>`.
    pub to: Option<&'a str>,
    /// `proto=`.
    pub proto: Option<&'a str>,
    /// `helo=<…>`.
    pub helo: Option<&'a str>,
}

/// A header or body check (or milter) action logged by cleanup:
/// `QID: warning: header Subject: hi from host[ip]; from=<a> to=<b> proto=ESMTP
/// helo=<h>: optional text`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentCheck<'a> {
    /// The queue id.
    pub queue_id: &'a str,
    /// What was done.
    pub action: RejectAction,
    /// The raw action word (`reject`, `discard`, `prepend`, `replace`, `info`, …).
    pub action_word: &'a str,
    /// `header`, `body`, `mime-header`, `nested-header`, `END-OF-MESSAGE` (milter), …
    pub part: &'a str,
    /// The header line or body text that matched.
    pub content: &'a str,
    /// The client, when logged.
    pub client: Option<Peer<'a>>,
    /// `from=<…>`.
    pub from: Option<&'a str>,
    /// `to=<…>`.
    pub to: Option<&'a str>,
    /// `proto=`.
    pub proto: Option<&'a str>,
    /// `helo=<…>`.
    pub helo: Option<&'a str>,
    /// The optional text after the trailer (`: 5.7.1 text`).
    pub text: Option<&'a str>,
}

/// The longest header value [`ContentCheck::header`] returns, in bytes. cleanup logs at
/// most 200 bytes of the matched header line (`%.200s`, name included), so a value as
/// Postfix logs it always fits; the bound only protects against damaged or foreign lines.
pub const HEADER_VALUE_MAX: usize = 200;

impl<'a> ContentCheck<'a> {
    /// For a header check (`part` is `header`, or `mime-header`/`nested-header` as some
    /// logs write it), the header's name and value: `client-id: acme` → `("client-id",
    /// "acme")`. The name is as logged (compare it case-insensitively); the value is as
    /// logged without the blanks around it, cut to [`HEADER_VALUE_MAX`] bytes at a
    /// character boundary. `None` for body checks, milter actions and content that is
    /// not `NAME: value` (a name has no blank, control character or `:`).
    pub fn header(&self) -> Option<(&'a str, &'a str)> {
        if !self.part.ends_with("header") {
            return None;
        }
        let content = self.content;
        let colon = memchr::memchr(b':', content.as_bytes())?;
        // Postfix's is_header() accepts blanks between the name and the colon.
        let name = content[..colon].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let value = content[colon + 1..].trim_matches([' ', '\t']);
        let mut end = value.len().min(HEADER_VALUE_MAX);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Some((name, &value[..end]))
    }
}

/// What happened to a queue file according to postsuper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostsuperAction {
    /// `removed` (`postsuper -d`).
    Removed,
    /// `requeued` (`postsuper -r`).
    Requeued,
    /// `placed on hold` (`postsuper -h`).
    PlacedOnHold,
    /// `released from hold` (`postsuper -H`).
    ReleasedFromHold,
    /// `expired` (`postsuper -e`/`-f`).
    Expired,
}

/// Which notification bounce(8) created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// `sender non-delivery notification`
    NonDelivery,
    /// `sender delay notification`
    Delay,
    /// `sender delivery status notification` (success DSN)
    Success,
    /// `postmaster non-delivery notification` and other postmaster copies.
    Postmaster,
}

/// How an SMTP session ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// `lost connection after STAGE`
    LostConnection,
    /// `timeout after STAGE`
    Timeout,
    /// `too many errors after STAGE`
    TooManyErrors,
    /// `bare <LF> received after STAGE` (Postfix 3.9 with `smtpd_forbid_bare_newline`)
    BareNewline,
}

/// A typed Postfix event. The serde form is tagged with `kind` (snake_case variant
/// name) and flattens the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event<'a> {
    /// smtpd `connect from host[ip]`.
    Connect {
        /// The client.
        client: Peer<'a>,
    },
    /// smtpd `disconnect from host[ip] ehlo=1 mail=1 … commands=5`.
    Disconnect {
        /// The client.
        client: Peer<'a>,
        /// The command counters as logged (`ehlo=1 mail=1 rcpt=0/1 … commands=2/3`).
        counters: &'a str,
        /// Total commands accepted (`commands=N` or the N of `commands=N/M`).
        commands: Option<u32>,
    },
    /// smtpd `QID: client=host[ip][, sasl_method=…, sasl_username=…, …]`.
    SmtpdClient {
        /// The queue id.
        queue_id: &'a str,
        /// The client (absent when the line has nothing after `client=`).
        client: Option<Peer<'a>>,
        /// `sasl_method=`
        sasl_method: Option<&'a str>,
        /// `sasl_username=`
        sasl_username: Option<&'a str>,
        /// `sasl_sender=`
        sasl_sender: Option<&'a str>,
        /// `orig_queue_id=` (XCLIENT/XFORWARD from a content filter)
        orig_queue_id: Option<&'a str>,
        /// `orig_client=`
        orig_client: Option<Peer<'a>>,
    },
    /// An access decision with or without queue id (`NOQUEUE: reject: …`,
    /// `QID: reject: RCPT …`, milter-reject, proxy-reject, …).
    Reject(Reject<'a>),
    /// A cleanup header/body check or milter action on a queued message.
    ContentCheck(ContentCheck<'a>),
    /// `[QID: |NOQUEUE: ]lost connection|timeout|too many errors after STAGE[ (N
    /// bytes)] from host[ip]` (the queue id prefix is logged by Postfix ≥ 3.10).
    SessionEnded {
        /// The queue id, when logged (`None` for `NOQUEUE` or older Postfix).
        queue_id: Option<&'a str>,
        /// How it ended.
        how: SessionEnd,
        /// The SMTP stage (`DATA`, `EHLO`, `CONNECT`, `RCPT`, `END-OF-MESSAGE`, …).
        stage: &'a str,
        /// Bytes received, for `after DATA (N bytes)` and `after BDAT (N bytes)`.
        bytes: Option<u64>,
        /// The client.
        client: Option<Peer<'a>>,
    },
    /// smtpd's `warning: host[ip]: SASL LOGIN authentication failed: reason[,
    /// sasl_username=x]` (Postfix ≥ 3.9 appends the username, `(unavailable)` when
    /// unknown; before 2.x the reason and its colon may be missing), or `warning:
    /// host[ip]: SASL LOGIN authentication aborted` (the client sent `*`).
    SaslFailed {
        /// The client (`unknown[addr]` when its address has no reverse DNS name).
        client: Peer<'a>,
        /// The SASL mechanism as logged (`LOGIN`, `PLAIN`, `CRAM-MD5`, …).
        mechanism: &'a str,
        /// The reason text (the SASL server's reply; `(reason unavailable)` when it
        /// gave none); empty for an aborted authentication or a line without one.
        reason: &'a str,
        /// `sasl_username=`; `None` when not logged or logged as `(unavailable)`.
        sasl_username: Option<&'a str>,
        /// True for `authentication aborted` (the client gave up with `*`).
        aborted: bool,
    },
    /// smtpd `improper command pipelining after STAGE from host[ip]: text`.
    ImproperPipelining {
        /// The command after which the client sent too early.
        stage: &'a str,
        /// The client.
        client: Peer<'a>,
        /// What the client sent (possibly empty).
        text: &'a str,
    },
    /// `Anonymous|Trusted|Verified|Untrusted TLS connection established from|to …`.
    TlsEstablished {
        /// `from` (smtpd, incoming) or `to` (smtp, outgoing).
        incoming: bool,
        /// Trust level word (`Anonymous`, `Untrusted`, `Trusted`, `Verified`); empty for
        /// Postfix before 2.5, which logged none.
        trust: &'a str,
        /// The peer.
        peer: Peer<'a>,
        /// Protocol, cipher and key details as logged.
        detail: &'a str,
    },
    /// TLS trouble logged without a level: `certificate verification failed for
    /// host[ip]:25: untrusted issuer …`, `SSL_accept error from host[ip]: -1`,
    /// `SSL_connect error to …`, `Cannot start TLS: handshake failure`.
    TlsProblem {
        /// The peer, when logged.
        peer: Option<Peer<'a>>,
        /// The whole message.
        text: &'a str,
        /// The text after the peer (the reason).
        detail: &'a str,
    },
    /// tlsproxy `CONNECT from|to [ip]:port` and `DISCONNECT [ip]:port`.
    TlsProxy {
        /// True for `CONNECT`, false for `DISCONNECT`.
        connect: bool,
        /// For `CONNECT`: `from` (server role, true) or `to` (client role, false).
        incoming: Option<bool>,
        /// The remote end.
        peer: Peer<'a>,
    },
    /// postscreen `CONNECT from [ip]:port to [ip]:port`.
    PostscreenConnect {
        /// The client.
        client: Peer<'a>,
        /// The local address.
        server: Option<Peer<'a>>,
    },
    /// postscreen `PASS NEW|OLD [ip]:port`.
    PostscreenPass {
        /// `NEW` (first pass) or not.
        new: bool,
        /// The client.
        client: Peer<'a>,
    },
    /// postscreen `DNSBL rank N for [ip]:port`.
    PostscreenDnsblRank {
        /// The summed rank.
        rank: i32,
        /// The client.
        client: Peer<'a>,
    },
    /// postscreen `PREGREET N after T from [ip]:port: text`.
    PostscreenPregreet {
        /// Bytes sent before the greeting.
        bytes: u32,
        /// Time after connect, as logged.
        after: &'a str,
        /// The client.
        client: Peer<'a>,
        /// What it sent.
        text: &'a str,
    },
    /// postscreen `HANGUP after T from [ip]:port in STAGE`.
    PostscreenHangup {
        /// Time after connect, as logged.
        after: &'a str,
        /// The client.
        client: Peer<'a>,
        /// The test or stage it was in.
        stage: &'a str,
    },
    /// postscreen `DISCONNECT [ip]:port`.
    PostscreenDisconnect {
        /// The client.
        client: Peer<'a>,
    },
    /// postscreen allow/deny list hits: `WHITELISTED|ALLOWLISTED|BLACKLISTED|DENYLISTED
    /// [ip]:port`, `WHITELIST VETO`, `ALLOWLIST VETO`.
    PostscreenListed {
        /// The word as logged.
        list: &'a str,
        /// The client.
        client: Peer<'a>,
    },
    /// postscreen protocol violations: `COMMAND PIPELINING|TIME LIMIT|COUNT LIMIT|LENGTH
    /// LIMIT`, `BARE NEWLINE`, `NON-SMTP COMMAND`.
    PostscreenViolation {
        /// The violation as logged (`COMMAND PIPELINING`, `BARE NEWLINE`, …).
        violation: &'a str,
        /// The client.
        client: Peer<'a>,
        /// The rest of the line (`after 0.1 … `).
        detail: &'a str,
    },
    /// postscreen/verify `cache btree:/path full|partial cleanup: retained=N dropped=N
    /// entries`.
    CacheCleanup {
        /// The cache table (`btree:/var/lib/postfix/postscreen_cache`).
        table: &'a str,
        /// Entries kept.
        retained: u64,
        /// Entries dropped.
        dropped: u64,
    },
    /// dnsblog `addr 1.2.3.4 listed by domain zen.spamhaus.org as 127.0.0.2`.
    DnsblogListed {
        /// The address looked up.
        addr: &'a str,
        /// The DNSBL domain.
        domain: &'a str,
        /// The reply address.
        reply: &'a str,
    },
    /// cleanup `QID: message-id=<…>` or `QID: resent-message-id=<…>`.
    MessageId {
        /// The queue id.
        queue_id: &'a str,
        /// The id without angle brackets (possibly empty).
        message_id: &'a str,
        /// True for `resent-message-id`.
        resent: bool,
    },
    /// pickup `QID: uid=N from=<sender>`.
    Pickup {
        /// The queue id.
        queue_id: &'a str,
        /// Submitting user id.
        uid: Option<u32>,
        /// Envelope sender.
        from: &'a str,
    },
    /// qmgr `QID: from=<sender>, size=N, nrcpt=N (queue active)`.
    QueueActive {
        /// The queue id.
        queue_id: &'a str,
        /// Envelope sender (empty for the null sender).
        from: &'a str,
        /// Message size in bytes.
        size: Option<u64>,
        /// Number of recipients.
        nrcpt: Option<u32>,
    },
    /// qmgr `QID: removed`.
    Removed {
        /// The queue id.
        queue_id: &'a str,
    },
    /// qmgr `QID: from=<sender>, status=expired, returned to sender` (or `force-expired`).
    Expired {
        /// The queue id.
        queue_id: &'a str,
        /// Envelope sender.
        from: &'a str,
        /// True for `status=force-expired` (after `postsuper -e`).
        forced: bool,
    },
    /// qmgr `QID: skipped, still being delivered`.
    Skipped {
        /// The queue id.
        queue_id: &'a str,
    },
    /// A delivery attempt of one recipient.
    Delivery(Delivery<'a>),
    /// smtp/lmtp `connect to host[ip]:port: reason` (optionally with a queue id).
    ConnectFailed {
        /// The queue id, when logged.
        queue_id: Option<&'a str>,
        /// The server.
        server: Peer<'a>,
        /// Why (`Connection refused`, `Connection timed out`, …).
        reason: &'a str,
    },
    /// Other smtp/lmtp conversation trouble with a queue id: `QID: lost connection
    /// with host[ip] while …`, `QID: host … said: …`, `QID: host … refused to talk to
    /// me: …`, `QID: conversation with … timed out …`, `QID: SASL authentication
    /// failed; server … said: …`.
    SmtpConversation {
        /// The queue id, when logged.
        queue_id: Option<&'a str>,
        /// The remote server (`host X[ip]`, `with X[ip]`, `server X[ip]`), when the
        /// text names one.
        peer: Option<Peer<'a>>,
        /// The text after the queue id.
        text: &'a str,
    },
    /// bounce `QID: sender non-delivery notification: NEWQID` and friends.
    Notification {
        /// The queue id of the original message.
        queue_id: &'a str,
        /// Which notification.
        notification: NotificationKind,
        /// The queue id of the notification message.
        new_queue_id: &'a str,
    },
    /// postsuper `QID: removed|requeued|placed on hold|released from hold|expired`.
    Postsuper {
        /// The queue id.
        queue_id: &'a str,
        /// What postsuper did.
        action: PostsuperAction,
    },
    /// postsuper summary: `Deleted: N messages`, `Requeued: N messages`, ….
    PostsuperSummary {
        /// The verb (`Deleted`, `Requeued`, `Placed on hold`, `Released from hold`).
        action: &'a str,
        /// The count.
        count: u64,
    },
    /// anvil `statistics: max connection rate 1/60s for (smtp:1.2.3.4) at Mar 14 06:25:01`
    /// and the other statistics lines.
    AnvilStatistics {
        /// What is measured (`max connection rate`, `max connection count`, `max cache
        /// size`, `max message rate`, `max recipient rate`, `max newtls rate`, …).
        metric: &'a str,
        /// The value as logged (`1/60s`, `3`).
        value: &'a str,
        /// `service:client` in parentheses, when logged.
        subject: Option<&'a str>,
        /// The `at …` timestamp text, when logged.
        at: Option<&'a str>,
    },
    /// scache `statistics: start interval …`, `statistics: domain lookup hits=0 miss=1
    /// success=0%`, `statistics: address lookup …`, `statistics: max simultaneous …`.
    ScacheStatistics {
        /// `start interval`, `domain lookup`, `address lookup` or `max simultaneous`.
        metric: &'a str,
        /// The rest of the line (`hits=0 miss=1 success=0%`, a timestamp, …).
        value: &'a str,
    },
    /// master and postfix-script lifecycle: `daemon started -- version 3.7.11, …`,
    /// `reload -- version …`, `terminating on signal 15`, `starting the Postfix mail
    /// system`, `stopping the Postfix mail system`, `refreshing the Postfix mail system`.
    Lifecycle {
        /// `started`, `reload`, `terminating`, `starting`, `stopping`, `refreshing`, ….
        action: &'a str,
        /// The Postfix version, when logged.
        version: Option<&'a str>,
        /// The whole message.
        text: &'a str,
    },
    /// `warning: …` (also `warning: QID: …`).
    Warning {
        /// The queue id after `warning: `, when present.
        queue_id: Option<&'a str>,
        /// The SMTP client the warning is about, when its text names one (`hostname H
        /// does not resolve to address A`, `… from host[ip] …`, `host[ip]: …`).
        client: Option<Peer<'a>>,
        /// The text after `warning: ` (and the queue id).
        text: &'a str,
    },
    /// `error: …`.
    Error {
        /// The text.
        text: &'a str,
    },
    /// `fatal: …`.
    Fatal {
        /// The text.
        text: &'a str,
    },
    /// `panic: …`.
    Panic {
        /// The text.
        text: &'a str,
    },
    /// A verbose trace line (`-v` on a daemon, or `debug_peer_list`): `function_name:
    /// text`, `parameter = value`, `< host[ip]: command`, `> host[ip]: reply`, ….
    /// Recognised so that debug-heavy logs do not drown real unknowns.
    Verbose {
        /// The C function (or parameter) name the line starts with, when it has one.
        function: Option<&'a str>,
        /// The whole message.
        text: &'a str,
    },
    /// A Postfix line with a queue id that no other arm recognised
    /// (`QID: something new`); still useful to tie the line to its message.
    QueueOther {
        /// The queue id.
        queue_id: &'a str,
        /// The text after `QID: `.
        text: &'a str,
    },
    /// Anything no arm recognised; keeps the text.
    Unknown {
        /// The whole message.
        text: &'a str,
    },
}

impl Event<'_> {
    /// The event's kind, as in its serde `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Connect { .. } => "connect",
            Event::Disconnect { .. } => "disconnect",
            Event::SmtpdClient { .. } => "smtpd_client",
            Event::Reject(_) => "reject",
            Event::ContentCheck(_) => "content_check",
            Event::SessionEnded { .. } => "session_ended",
            Event::SaslFailed { .. } => "sasl_failed",
            Event::ImproperPipelining { .. } => "improper_pipelining",
            Event::TlsEstablished { .. } => "tls_established",
            Event::TlsProblem { .. } => "tls_problem",
            Event::TlsProxy { .. } => "tls_proxy",
            Event::PostscreenConnect { .. } => "postscreen_connect",
            Event::PostscreenPass { .. } => "postscreen_pass",
            Event::PostscreenDnsblRank { .. } => "postscreen_dnsbl_rank",
            Event::PostscreenPregreet { .. } => "postscreen_pregreet",
            Event::PostscreenHangup { .. } => "postscreen_hangup",
            Event::PostscreenDisconnect { .. } => "postscreen_disconnect",
            Event::PostscreenListed { .. } => "postscreen_listed",
            Event::PostscreenViolation { .. } => "postscreen_violation",
            Event::CacheCleanup { .. } => "cache_cleanup",
            Event::DnsblogListed { .. } => "dnsblog_listed",
            Event::MessageId { .. } => "message_id",
            Event::Pickup { .. } => "pickup",
            Event::QueueActive { .. } => "queue_active",
            Event::Removed { .. } => "removed",
            Event::Expired { .. } => "expired",
            Event::Skipped { .. } => "skipped",
            Event::Delivery(_) => "delivery",
            Event::ConnectFailed { .. } => "connect_failed",
            Event::SmtpConversation { .. } => "smtp_conversation",
            Event::Notification { .. } => "notification",
            Event::Postsuper { .. } => "postsuper",
            Event::PostsuperSummary { .. } => "postsuper_summary",
            Event::AnvilStatistics { .. } => "anvil_statistics",
            Event::ScacheStatistics { .. } => "scache_statistics",
            Event::Lifecycle { .. } => "lifecycle",
            Event::Warning { .. } => "warning",
            Event::Error { .. } => "error",
            Event::Fatal { .. } => "fatal",
            Event::Panic { .. } => "panic",
            Event::Verbose { .. } => "verbose",
            Event::QueueOther { .. } => "queue_other",
            Event::Unknown { .. } => "unknown",
        }
    }

    /// True unless the event is [`Event::Unknown`].
    pub fn is_recognized(&self) -> bool {
        !matches!(self, Event::Unknown { .. })
    }
}
