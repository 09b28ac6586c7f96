//! Texts Postfix writes itself, recognised by the wording of its source, and the
//! built-in rules file for everything else.
//!
//! The wordings come from Postfix 3.x: `src/smtp/smtp_connect.c` (`connect to
//! host[addr]:port: <errno text>`), `smtp_trouble.c` (`lost connection with … while …`,
//! `conversation with … timed out while …`), `smtp_proto.c` (TLS, `message size …
//! exceeds size limit …`, loops), `smtp_addr.c` and `src/dns/dns_lookup.c` (`Host or
//! domain name not found. Name service error for name=… type=…: Host not found, try
//! again`, null MX), `src/local/*.c` and `src/virtual/*.c` (`unknown user: "…"`,
//! mailbox and maildir write errors, lookups), `src/global/pipe_command.c` and
//! `sys_exits.c` (`Command died with …`, `temporary failure`), `deliver_pass.c` and
//! `qmgr_deliver.c` (`mail transport unavailable`, `delivery temporarily suspended: …`).
//! These are matched by literal prefixes and suffixes, which is much cheaper than the
//! regex set, and most failures in a real log are of this kind.

use crate::Reason;

/// The built-in rules, in the user rules' format (source name `builtin`).
pub(crate) const BUILTIN_RULES: &str = include_str!("builtin-rules.yaml");

/// Source name of the built-in rules file.
pub(crate) const BUILTIN_SOURCE: &str = "builtin";

/// Source name of the rules written in code below.
pub(crate) const POSTFIX_SOURCE: &str = "postfix";

/// Prefix qmgr puts before the reason when a destination is throttled after a failure.
const SUSPENDED: &str = "delivery temporarily suspended: ";

/// What `pipe`/`local` write for a command's sysexits code (`sys_exits.c`) when the
/// code says the delivery program itself failed; the codes with a meaning of their own
/// (`user unknown`, `permission denied`, `service unavailable`, `local configuration
/// error`) are left to the rules.
const PIPE_EXIT_TEXTS: &[&str] = &[
    "command line usage error",
    "data format error",
    "cannot open input",
    "internal software error",
    "system resource problem",
    "critical OS file missing",
    "can't create user output file",
    "input/output error",
    "remote error in protocol",
];

/// The rules written in code: (name, reason). [`postfix_own`] returns an index.
pub(crate) const POSTFIX_RULES: &[(&str, Reason)] = &[
    ("status-sent", Reason::Delivered),
    ("status-expired", Reason::Expired),
    ("connect-refused", Reason::NetworkError),
    ("connect-timeout", Reason::NetworkError),
    ("connect-no-route", Reason::NetworkError),
    ("connect-failed", Reason::NetworkError),
    ("lost-connection", Reason::NetworkError),
    ("conversation-timeout", Reason::NetworkError),
    ("dns-try-again", Reason::NetworkError),
    ("dns-host-not-found", Reason::HostUnknown),
    ("dns-error", Reason::NetworkError),
    ("null-mx", Reason::NotAccept),
    ("mail-loops-back", Reason::SystemError),
    ("tls-failed", Reason::FailedStartTls),
    ("message-size", Reason::EmailTooLarge),
    ("smtputf8-required", Reason::ContentError),
    ("local-config-error", Reason::SystemError),
    ("local-unknown-user", Reason::UserUnknown),
    ("local-quota", Reason::MailboxFull),
    ("local-disk-full", Reason::SystemFull),
    ("local-write-failed", Reason::SystemError),
    ("forwarding-loop", Reason::NetworkError),
    ("local-file-restricted", Reason::SecurityError),
    ("command-failed", Reason::MailerError),
    ("temporary-failure", Reason::MailerError),
    ("transport-unavailable", Reason::SystemError),
];

/// Index of a name in [`POSTFIX_RULES`], checked at compile time by the tests.
const fn idx(name: &str) -> usize {
    let mut i = 0;
    while i < POSTFIX_RULES.len() {
        if const_eq(POSTFIX_RULES[i].0, name) {
            return i;
        }
        i += 1;
    }
    // An unknown name is a programming error caught by `every_name_resolves`; return
    // an index that fails loudly in tests rather than panicking at run time.
    usize::MAX
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub(crate) const STATUS_SENT: usize = idx("status-sent");
pub(crate) const STATUS_EXPIRED: usize = idx("status-expired");

/// Where a remote reply quoted by Postfix sits in a text: `[delivery temporarily
/// suspended: ]host NAME[ADDR] said: REPLY` or `… refused to talk to me: REPLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quoted<'a> {
    /// NAME.
    pub(crate) host: &'a str,
    /// Offset of ` said: ` / ` refused to talk to me: `.
    pub(crate) marker: usize,
    /// Offset of REPLY.
    pub(crate) reply: usize,
}

/// Find the quoted reply by position (no substring search: the markers follow the
/// host's `]` directly), or `None` for any other text.
pub(crate) fn quoted_reply(text: &str) -> Option<Quoted<'_>> {
    let skip = if text.starts_with(SUSPENDED) {
        SUSPENDED.len()
    } else {
        0
    };
    let rest = text[skip..].strip_prefix("host ")?;
    let base = skip + "host ".len();
    let b = rest.as_bytes();
    let name_end = b.iter().position(|&c| c == b'[' || c == b' ')?;
    let mut i = name_end;
    if b[i] == b'[' {
        i += b[i..].iter().position(|&c| c == b']')? + 1;
    }
    let after = &rest[i..];
    [" said: ", " refused to talk to me: "]
        .into_iter()
        .find(|m| after.starts_with(m))
        .map(|m| Quoted {
            host: &rest[..name_end],
            marker: base + i,
            reply: base + i + m.len(),
        })
}

/// Whether a text is a remote server's reply (quoted by Postfix, or a bare reply
/// starting with its code) rather than Postfix's own words.
pub(crate) fn looks_remote(text: &str, quoted: Option<&Quoted<'_>>) -> bool {
    quoted.is_some() || text.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Classify a text Postfix wrote itself: an index into [`POSTFIX_RULES`], or `None`
/// when the wording is not one of Postfix's.
pub(crate) fn postfix_own(text: &str) -> Option<usize> {
    let t = text.strip_prefix(SUSPENDED).unwrap_or(text);
    let found = if let Some(rest) = t.strip_prefix("connect to ") {
        // "connect to host[addr]:port: <strerror>"
        if rest.ends_with("Connection refused") {
            "connect-refused"
        } else if rest.ends_with("timed out") {
            "connect-timeout"
        } else if rest.ends_with("No route to host") || rest.ends_with("Network is unreachable") {
            "connect-no-route"
        } else {
            "connect-failed"
        }
    } else if t.starts_with("lost connection with ") {
        "lost-connection"
    } else if t.starts_with("conversation with ") && t.contains(" timed out while ") {
        "conversation-timeout"
    } else if t.starts_with("Host or domain name not found. ")
        || t.starts_with("Name service error for ")
        || t.starts_with("unable to look up host ")
    {
        dns(t)
    } else if t.ends_with(": host not found") {
        "dns-host-not-found"
    } else if t.starts_with("Domain ") && t.ends_with("does not accept mail (nullMX)") {
        "null-mx"
    } else if t.starts_with("Name server loop for ")
        || t.starts_with("unable to find primary relay")
    {
        "dns-error"
    } else if t.starts_with("mail for ") && t.ends_with(" loops back to myself") {
        "mail-loops-back"
    } else if t.starts_with("TLS is required, but")
        || t.starts_with("Cannot start TLS: ")
        || t.starts_with("Sender requested REQUIRETLS")
        || t.starts_with("client TLS configuration problem")
        || t.starts_with("Server certificate not ")
        || t.starts_with("TLSA lookup error")
    {
        "tls-failed"
    } else if t.starts_with("message size ") && t.contains(" exceeds size limit ") {
        "message-size"
    } else if t.starts_with("message requires SMTPUTF8") {
        "smtputf8-required"
    } else if t.starts_with("unknown user: ") {
        "local-unknown-user"
    } else if t.starts_with("cannot update mailbox ")
        || t.starts_with("maildir delivery failed: ")
        || t.starts_with("delivery failed to mailbox ")
        || t.starts_with("create maildir file ")
        || t.starts_with("cannot append message to file ")
    {
        local_write(t)
    } else if t.starts_with("mail forwarding loop for ")
        || t.starts_with("alias database loop for ")
        || t == "recipient nesting limit exceeded"
    {
        "forwarding-loop"
    } else if t == "mail to file is restricted" || t == "file is executable" {
        "local-file-restricted"
    } else if t.starts_with("Command died with ") || t.starts_with("Command time limit exceeded") {
        "command-failed"
    } else if t == "temporary failure" || t.starts_with("temporary failure.") {
        "temporary-failure"
    } else if PIPE_EXIT_TEXTS.iter().any(|x| {
        t.strip_prefix(x)
            .is_some_and(|r| r.is_empty() || r.starts_with('.'))
    }) {
        "command-failed"
    } else if t == "mail transport unavailable" || t == "unknown mail transport error" {
        "transport-unavailable"
    } else if t == "user lookup error"
        || t == "table lookup failure"
        || t == "mail system configuration error"
        || t == "alias database unavailable"
        || t == "cannot find alias database owner"
        || t.starts_with("cannot access home directory ")
        || t.eq_ignore_ascii_case("server configuration error")
        || t.starts_with("network address conversion failed")
        || t == "all network protocols are disabled"
        || t.starts_with("local data error while talking to ")
        || t == "server unavailable or unable to receive mail"
        || (t.starts_with("destination ")
            && (t.ends_with(" is not a regular file") || t.ends_with(" is not owned by recipient")))
    {
        "local-config-error"
    } else {
        return None;
    };
    Some(idx(found))
}

/// DNS failures: `try again` and other temporary errors are network problems; a
/// definite "not found" means the domain does not exist.
fn dns(t: &str) -> &'static str {
    if t.ends_with("try again") || t.contains("Temporary failure") {
        "dns-try-again"
    } else if t.ends_with("Host not found")
        || t.contains("Host found but no data record")
        || t.contains("invalid host or domain name")
        || t.contains("Name or service not known")
        || t.contains("No address associated with hostname")
    {
        "dns-host-not-found"
    } else {
        "dns-error"
    }
}

/// Mailbox and maildir write errors: the errno text at the end tells quota from a
/// full disk (Postfix's `mbox_dsn` maps `EDQUOT`/`EFBIG` to 5.2.2, `ENOSPC` to 4.3.0).
fn local_write(t: &str) -> &'static str {
    if t.contains("Disk quota exceeded") || t.contains("File too large") || t.contains("quota") {
        "local-quota"
    } else if t.contains("No space left on device") {
        "local-disk-full"
    } else {
        "local-write-failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<(&'static str, Reason)> {
        postfix_own(text).map(|i| POSTFIX_RULES[i])
    }

    #[test]
    fn every_name_resolves() {
        for (i, (name, _)) in POSTFIX_RULES.iter().enumerate() {
            assert_eq!(idx(name), i, "{name}");
        }
        assert!(STATUS_SENT < POSTFIX_RULES.len() && STATUS_EXPIRED < POSTFIX_RULES.len());
    }

    #[test]
    fn postfix_wordings() {
        use Reason::*;
        let cases = [
            (
                "connect to mx.example.com[192.0.2.1]:25: Connection refused",
                NetworkError,
            ),
            (
                "connect to mx.example.com[192.0.2.1]:25: Connection timed out",
                NetworkError,
            ),
            (
                "delivery temporarily suspended: connect to a[192.0.2.1]:25: No route to host",
                NetworkError,
            ),
            (
                "lost connection with mx.example.com[192.0.2.1] while receiving the initial server greeting",
                NetworkError,
            ),
            (
                "conversation with mx.example.com[192.0.2.1] timed out while sending end of data -- message may be sent more than once",
                NetworkError,
            ),
            (
                "Host or domain name not found. Name service error for name=example.com type=MX: Host not found, try again",
                NetworkError,
            ),
            (
                "Host or domain name not found. Name service error for name=example.com type=AAAA: Host not found",
                HostUnknown,
            ),
            (
                "Domain example.com does not accept mail (nullMX)",
                NotAccept,
            ),
            ("mail for example.com loops back to myself", SystemError),
            (
                "TLS is required, but was not offered by host mx.example.com[192.0.2.1]",
                FailedStartTls,
            ),
            ("Cannot start TLS: handshake failure", FailedStartTls),
            (
                "message size 30000000 exceeds size limit 10240000 of server mx.example.com[192.0.2.1]",
                EmailTooLarge,
            ),
            ("unknown user: \"bob\"", UserUnknown),
            (
                "cannot update mailbox /var/mail/bob for user bob. error writing message: Disk quota exceeded",
                MailboxFull,
            ),
            (
                "maildir delivery failed: create maildir file /home/b/Maildir/tmp/x: No space left on device",
                SystemFull,
            ),
            (
                "Command died with signal 11: \"/usr/sbin/dbmail-smtp\"",
                MailerError,
            ),
            ("temporary failure", MailerError),
            (
                "temporary failure. Command output: procmail: quota",
                MailerError,
            ),
            (
                "can't create user output file. Command output: x",
                MailerError,
            ),
            ("mail transport unavailable", SystemError),
            ("user lookup error", SystemError),
        ];
        for (text, want) in cases {
            assert_eq!(reason(text).map(|r| r.1), Some(want), "{text}");
        }
    }

    #[test]
    fn remote_texts_are_not_postfix_own() {
        let t = "host mx.example.com[192.0.2.1] said: 550 5.1.1 User unknown (in reply to RCPT TO command)";
        let q = quoted_reply(t).unwrap();
        assert_eq!(q.host, "mx.example.com");
        assert_eq!(&t[q.marker..q.reply], " said: ");
        assert!(looks_remote(t, Some(&q)));
        assert_eq!(postfix_own(t), None);
        let t = "delivery temporarily suspended: host mx[192.0.2.1] refused to talk to me: 421 x";
        assert_eq!(&t[quoted_reply(t).unwrap().reply..], "421 x");
        assert!(looks_remote("550 5.7.1 <x>: Relay access denied", None));
        assert_eq!(quoted_reply("host mx said nothing"), None);
        assert!(!looks_remote(
            "connect to a[192.0.2.1]:25: Connection refused",
            None
        ));
    }
}
