//! Label values: closed enums only, so no label can grow past its variants (no
//! addresses, domains, queue ids or raw paths ever become a label value).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write as _;

/// A closed enum whose label value is `as_str()`.
macro_rules! closed_label {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

closed_label! {
    /// Final status of a delivery line (`status=`).
    Status {
        /// `status=sent`
        Sent => "sent",
        /// `status=deferred`
        Deferred => "deferred",
        /// `status=bounced`
        Bounced => "bounced",
        /// `status=expired`
        Expired => "expired",
        /// `status=undeliverable` (address verification)
        Undeliverable => "undeliverable",
    }
}

impl From<pftrack_parse::DeliveryStatus> for Status {
    fn from(s: pftrack_parse::DeliveryStatus) -> Self {
        use pftrack_parse::DeliveryStatus as D;
        match s {
            D::Sent => Status::Sent,
            D::Deferred => Status::Deferred,
            D::Bounced => Status::Bounced,
            D::Expired => Status::Expired,
            D::Undeliverable => Status::Undeliverable,
        }
    }
}

closed_label! {
    /// The four parts of `delays=a/b/c/d`, named as kumina's exporter names them.
    Stage {
        /// `a`: before the queue manager (including message transmission).
        BeforeQueueManager => "before_queue_manager",
        /// `b`: in the queue manager (waiting for delivery).
        QueueManager => "queue_manager",
        /// `c`: connection setup (DNS, HELO, TLS).
        ConnectionSetup => "connection_setup",
        /// `d`: message transmission.
        Transmission => "transmission",
    }
}

closed_label! {
    /// The Postfix daemon of a record (the last part of the syslog identifier); names
    /// Postfix does not have are `other`.
    Daemon {
        /// smtpd
        Smtpd => "smtpd",
        /// smtp
        Smtp => "smtp",
        /// lmtp
        Lmtp => "lmtp",
        /// pipe
        Pipe => "pipe",
        /// local
        Local => "local",
        /// virtual
        Virtual => "virtual",
        /// error (deliveries to the error transport, e.g. deferrals on a retry)
        Error => "error",
        /// retry
        Retry => "retry",
        /// discard
        Discard => "discard",
        /// cleanup
        Cleanup => "cleanup",
        /// qmgr
        Qmgr => "qmgr",
        /// oqmgr
        Oqmgr => "oqmgr",
        /// pickup
        Pickup => "pickup",
        /// bounce
        Bounce => "bounce",
        /// postscreen
        Postscreen => "postscreen",
        /// dnsblog
        Dnsblog => "dnsblog",
        /// tlsproxy
        Tlsproxy => "tlsproxy",
        /// anvil
        Anvil => "anvil",
        /// scache
        Scache => "scache",
        /// master
        Master => "master",
        /// postsuper
        Postsuper => "postsuper",
        /// postqueue
        Postqueue => "postqueue",
        /// sendmail
        Sendmail => "sendmail",
        /// postdrop
        Postdrop => "postdrop",
        /// verify
        Verify => "verify",
        /// trivial-rewrite
        TrivialRewrite => "trivial-rewrite",
        /// proxymap
        Proxymap => "proxymap",
        /// tlsmgr
        Tlsmgr => "tlsmgr",
        /// showq
        Showq => "showq",
        /// flush
        Flush => "flush",
        /// spawn
        Spawn => "spawn",
        /// postfix-script and the `postfix` command
        Script => "postfix-script",
        /// postlog
        Postlog => "postlog",
        /// any other name
        Other => "other",
    }
}

impl Daemon {
    /// The daemon named `name` (the identifier's last part), `Other` if Postfix has none
    /// of that name.
    pub fn from_name(name: &str) -> Daemon {
        match name {
            "smtpd" => Daemon::Smtpd,
            "smtp" => Daemon::Smtp,
            "lmtp" => Daemon::Lmtp,
            "pipe" => Daemon::Pipe,
            "local" => Daemon::Local,
            "virtual" => Daemon::Virtual,
            "error" => Daemon::Error,
            "retry" => Daemon::Retry,
            "discard" => Daemon::Discard,
            "cleanup" => Daemon::Cleanup,
            "qmgr" => Daemon::Qmgr,
            "oqmgr" => Daemon::Oqmgr,
            "pickup" => Daemon::Pickup,
            "bounce" | "defer" | "trace" => Daemon::Bounce,
            "postscreen" => Daemon::Postscreen,
            "dnsblog" => Daemon::Dnsblog,
            "tlsproxy" => Daemon::Tlsproxy,
            "anvil" => Daemon::Anvil,
            "scache" => Daemon::Scache,
            "master" => Daemon::Master,
            "postsuper" => Daemon::Postsuper,
            "postqueue" => Daemon::Postqueue,
            "sendmail" => Daemon::Sendmail,
            "postdrop" => Daemon::Postdrop,
            "verify" => Daemon::Verify,
            "trivial-rewrite" => Daemon::TrivialRewrite,
            "proxymap" => Daemon::Proxymap,
            "tlsmgr" => Daemon::Tlsmgr,
            "showq" => Daemon::Showq,
            "flush" => Daemon::Flush,
            "spawn" => Daemon::Spawn,
            "postfix-script" | "postfix" => Daemon::Script,
            "postlog" => Daemon::Postlog,
            _ => Daemon::Other,
        }
    }
}

closed_label! {
    /// The delivery agents whose lines carry `status=`: one
    /// `postfix_<agent>_messages_processed_total{status}` family each.
    Agent {
        /// smtp
        Smtp => "smtp",
        /// lmtp
        Lmtp => "lmtp",
        /// pipe
        Pipe => "pipe",
        /// local
        Local => "local",
        /// virtual
        Virtual => "virtual",
        /// error
        Error => "error",
        /// retry
        Retry => "retry",
        /// discard
        Discard => "discard",
    }
}

impl Agent {
    /// The agent of a daemon name; `None` for daemons that deliver nothing.
    pub fn from_name(name: &str) -> Option<Agent> {
        Some(match name {
            "smtp" => Agent::Smtp,
            "lmtp" => Agent::Lmtp,
            "pipe" => Agent::Pipe,
            "local" => Agent::Local,
            "virtual" => Agent::Virtual,
            "error" => Agent::Error,
            "retry" => Agent::Retry,
            "discard" => Agent::Discard,
            _ => return None,
        })
    }
}

closed_label! {
    /// `sasl_method=` of an smtpd `client=` line; `""` when there is none (as kumina).
    SaslMethod {
        /// no SASL authentication
        None => "",
        /// PLAIN
        Plain => "PLAIN",
        /// LOGIN
        Login => "LOGIN",
        /// CRAM-MD5
        CramMd5 => "CRAM-MD5",
        /// DIGEST-MD5
        DigestMd5 => "DIGEST-MD5",
        /// XOAUTH2
        Xoauth2 => "XOAUTH2",
        /// OAUTHBEARER
        Oauthbearer => "OAUTHBEARER",
        /// SCRAM-SHA-1
        ScramSha1 => "SCRAM-SHA-1",
        /// SCRAM-SHA-256
        ScramSha256 => "SCRAM-SHA-256",
        /// EXTERNAL
        External => "EXTERNAL",
        /// GSSAPI
        Gssapi => "GSSAPI",
        /// any other mechanism
        Other => "other",
    }
}

impl SaslMethod {
    /// The method of a `sasl_method=` value (case-insensitive).
    pub fn from_name(name: Option<&str>) -> SaslMethod {
        let Some(name) = name else {
            return SaslMethod::None;
        };
        let name = name.trim_end_matches(',');
        SaslMethod::ALL
            .iter()
            .copied()
            .find(|m| *m != SaslMethod::None && m.as_str().eq_ignore_ascii_case(name))
            .unwrap_or(if name.is_empty() {
                SaslMethod::None
            } else {
                SaslMethod::Other
            })
    }
}

closed_label! {
    /// The SMTP stage after which a client connection was lost (`lost connection after
    /// RCPT`). kumina takes the first word; Postfix's own names are kept here.
    AfterStage {
        /// CONNECT
        Connect => "CONNECT",
        /// EHLO
        Ehlo => "EHLO",
        /// HELO
        Helo => "HELO",
        /// STARTTLS
        Starttls => "STARTTLS",
        /// AUTH
        Auth => "AUTH",
        /// MAIL
        Mail => "MAIL",
        /// RCPT
        Rcpt => "RCPT",
        /// DATA
        Data => "DATA",
        /// BDAT
        Bdat => "BDAT",
        /// END-OF-MESSAGE
        EndOfMessage => "END-OF-MESSAGE",
        /// RSET
        Rset => "RSET",
        /// QUIT
        Quit => "QUIT",
        /// NOOP
        Noop => "NOOP",
        /// VRFY
        Vrfy => "VRFY",
        /// ETRN
        Etrn => "ETRN",
        /// UNKNOWN (an unrecognised command)
        Unknown => "UNKNOWN",
        /// anything else
        Other => "other",
    }
}

impl AfterStage {
    /// The stage named `word` (as logged, e.g. `DATA (0 bytes)` starts with `DATA`).
    pub fn from_word(word: &str) -> AfterStage {
        let word = word.split([' ', '(']).next().unwrap_or("");
        AfterStage::ALL
            .iter()
            .copied()
            .find(|s| s.as_str().eq_ignore_ascii_case(word))
            .unwrap_or(AfterStage::Other)
    }
}

closed_label! {
    /// Why a delivery agent could not connect (`connect to …: Connection timed out`).
    ConnectFailure {
        /// Connection timed out
        TimedOut => "timed_out",
        /// Connection refused
        Refused => "refused",
        /// No route to host
        NoRoute => "no_route",
        /// Network is unreachable
        NetworkUnreachable => "network_unreachable",
        /// anything else (TLS, DNS, …)
        Other => "other",
    }
}

impl ConnectFailure {
    /// The failure named by the reason text.
    pub fn from_text(text: &str) -> ConnectFailure {
        if text.contains("timed out") {
            ConnectFailure::TimedOut
        } else if text.contains("refused") {
            ConnectFailure::Refused
        } else if text.contains("No route") {
            ConnectFailure::NoRoute
        } else if text.contains("unreachable") {
            ConnectFailure::NetworkUnreachable
        } else {
            ConnectFailure::Other
        }
    }
}

closed_label! {
    /// postscreen's verdicts and steps.
    PostscreenEvent {
        /// CONNECT from a client
        Connect => "connect",
        /// PASS NEW
        PassNew => "pass_new",
        /// PASS OLD
        PassOld => "pass_old",
        /// DNSBL rank
        DnsblRank => "dnsbl_rank",
        /// PREGREET
        Pregreet => "pregreet",
        /// HANGUP
        Hangup => "hangup",
        /// DISCONNECT
        Disconnect => "disconnect",
        /// listed on an access list (WHITELISTED, BLACKLISTED, …)
        Listed => "listed",
        /// a protocol violation (COMMAND PIPELINING, BARE NEWLINE, …)
        Violation => "violation",
    }
}

closed_label! {
    /// The input a record came from.
    Input {
        /// the systemd journal (`pftrack run`)
        Journal => "journal",
        /// a syslog file
        File => "file",
    }
}

closed_label! {
    /// A table the writer upserts into.
    Table {
        /// delivery_from
        Messages => "messages",
        /// delivery_to
        Recipients => "recipients",
        /// noqueue
        Noqueue => "noqueue",
    }
}

closed_label! {
    /// What pftrack was doing when the database failed.
    Operation {
        /// committing a batch
        Commit => "commit",
        /// refreshing the database gauges
        Gauges => "gauges",
    }
}

/// A failure reason: one of the classifier's closed list, or `other` for a stored
/// value this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReasonLabel(pub Option<pftrack_classify::Reason>);

impl EncodeLabelValue for ReasonLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.map_or("other", |r| r.as_str()))
    }
}

/// An SMTP reply code of a reject: 400–599, anything else is `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// The label for `code` (bounded to 200 values and `other`).
    pub fn new(code: Option<u16>) -> ReplyCode {
        match code {
            Some(c @ 400..=599) => ReplyCode(c),
            _ => ReplyCode(0),
        }
    }
}

impl EncodeLabelValue for ReplyCode {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        if self.0 == 0 {
            encoder.write_str("other")
        } else {
            write!(encoder, "{}", self.0)
        }
    }
}

/// The syslog name of a Postfix instance (the identifier without its last part:
/// `postfix`, `postfix-out`, `postfix/submission`): named by the operator's
/// configuration, at most [`crate::SERVICES_MAX`] distinct values, then `other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceName(pub std::sync::Arc<str>);

impl EncodeLabelValue for ServiceName {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// `{service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ServiceLabels {
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{status, service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StatusLabels {
    /// the delivery status
    pub status: Status,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{stage, service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StageLabels {
    /// the delay part
    pub stage: Stage,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{relay, stage, service}` of pipe delays: the relay is the master.cf service name of
/// the pipe transport (configured by the operator, never an address); see
/// [`crate::PIPE_RELAYS_MAX`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PipeStageLabels {
    /// the pipe transport's name
    pub relay: String,
    /// the delay part
    pub stage: Stage,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{sasl_method, service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SaslLabels {
    /// the SASL mechanism
    pub sasl_method: SaslMethod,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{code, service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CodeLabels {
    /// the SMTP reply code
    pub code: ReplyCode,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{after_stage, service}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AfterStageLabels {
    /// the SMTP stage
    pub after_stage: AfterStage,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{daemon, service}` of unsupported lines. (kumina names the daemon `service`; here
/// `service` is the instance, as on every other family.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UnsupportedLabels {
    /// the daemon
    pub daemon: Daemon,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{reason, service}` of connection failures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConnectFailureLabels {
    /// why
    pub reason: ConnectFailure,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{event, service}` of postscreen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PostscreenLabels {
    /// the step or verdict
    pub event: PostscreenEvent,
    /// the Postfix instance
    pub service: ServiceName,
}

/// `{input}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct InputLabels {
    /// the input kind
    pub input: Input,
}

/// `{table}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TableLabels {
    /// the table
    pub table: Table,
}

/// `{operation}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OperationLabels {
    /// the operation
    pub operation: Operation,
}

/// `{reason}` of classified failures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    /// the failure reason
    pub reason: ReasonLabel,
}
