//! The closed list of reasons: sisimai's 34 names, spelled exactly as sisimai spells them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a delivery failed (or, for three names, what a non-failure was).
///
/// The names are sisimai's current list (go-sisimai `eb/reason.go`); serde and
/// [`Reason::as_str`] use the lower-case name. The list is closed on purpose: a rule
/// naming an unknown reason is an error, so a typo never becomes a new class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Rejected because SPF, DKIM or DMARC checks failed.
    AuthFailure,
    /// Rejected or throttled because of the sending IP (or domain) reputation.
    BadReputation,
    /// Rejected because of the client IP or hostname, its HELO, a DNSBL listing, or greylisting.
    Blocked,
    /// Rejected because of the message header format or content encoding.
    ContentError,
    /// Delivered successfully (not a failure).
    Delivered,
    /// The message exceeds a size limit.
    EmailTooLarge,
    /// Delivery gave up after the queue lifetime.
    Expired,
    /// Failed because of STARTTLS (TLS required by either side, or the handshake failed).
    FailedStartTls,
    /// An ARF complaint forwarded by a mailbox provider (not a failure).
    Feedback,
    /// Refused by the recipient side's filtering (a recipient-related refusal after DATA, a per-recipient block).
    Filtered,
    /// The recipient mailbox has moved and mail is not forwarded.
    HasMoved,
    /// The recipient domain does not exist or cannot be routed.
    HostUnknown,
    /// The recipient mailbox is over quota.
    MailboxFull,
    /// A local mailer, pipe or delivery program failed.
    MailerError,
    /// A DNS lookup failure or another network problem (connection refused or lost, timeout, loop).
    NetworkError,
    /// Relaying denied.
    NoRelaying,
    /// The destination accepts no mail at all (null MX, no MX, not accepting messages).
    NotAccept,
    /// The message is not RFC 5322 compliant (duplicate headers and the like).
    NotCompliantRfc,
    /// Not decided: the text carries too little information, or no rule matched it.
    OnHold,
    /// Rejected for a policy violation on the destination host.
    PolicyViolation,
    /// Refused or deferred for exceeding a rate, volume or connection-count limit.
    RateLimited,
    /// Rejected because of the sender (envelope-from address or its domain).
    Rejected,
    /// The sending IP has no (or an invalid) PTR / reverse DNS record.
    RequirePtr,
    /// A security violation (authentication required, delivery not authorised).
    SecurityError,
    /// Rejected by a spam filter.
    SpamDetected,
    /// Not sent because the address is on the sending side's suppression list.
    Suppressed,
    /// The recipient account is suspended or disabled.
    Suspend,
    /// A syntax error in an SMTP command sent by the client.
    SyntaxError,
    /// A system or configuration error on the remote (or local delivery) host.
    SystemError,
    /// The destination host's disk or storage is full.
    SystemFull,
    /// No reason could be detected (no text at all).
    Undefined,
    /// The recipient mailbox does not exist.
    UserUnknown,
    /// An out-of-office auto-reply (not a failure).
    Vacation,
    /// Rejected by a virus scanner.
    VirusDetected,
}

impl Reason {
    /// Every reason, in alphabetical order of its name.
    pub const ALL: [Reason; 34] = [
        Reason::AuthFailure,
        Reason::BadReputation,
        Reason::Blocked,
        Reason::ContentError,
        Reason::Delivered,
        Reason::EmailTooLarge,
        Reason::Expired,
        Reason::FailedStartTls,
        Reason::Feedback,
        Reason::Filtered,
        Reason::HasMoved,
        Reason::HostUnknown,
        Reason::MailboxFull,
        Reason::MailerError,
        Reason::NetworkError,
        Reason::NoRelaying,
        Reason::NotAccept,
        Reason::NotCompliantRfc,
        Reason::OnHold,
        Reason::PolicyViolation,
        Reason::RateLimited,
        Reason::Rejected,
        Reason::RequirePtr,
        Reason::SecurityError,
        Reason::SpamDetected,
        Reason::Suppressed,
        Reason::Suspend,
        Reason::SyntaxError,
        Reason::SystemError,
        Reason::SystemFull,
        Reason::Undefined,
        Reason::UserUnknown,
        Reason::Vacation,
        Reason::VirusDetected,
    ];

    /// The sisimai name (`userunknown`, `mailboxfull`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::AuthFailure => "authfailure",
            Reason::BadReputation => "badreputation",
            Reason::Blocked => "blocked",
            Reason::ContentError => "contenterror",
            Reason::Delivered => "delivered",
            Reason::EmailTooLarge => "emailtoolarge",
            Reason::Expired => "expired",
            Reason::FailedStartTls => "failedstarttls",
            Reason::Feedback => "feedback",
            Reason::Filtered => "filtered",
            Reason::HasMoved => "hasmoved",
            Reason::HostUnknown => "hostunknown",
            Reason::MailboxFull => "mailboxfull",
            Reason::MailerError => "mailererror",
            Reason::NetworkError => "networkerror",
            Reason::NoRelaying => "norelaying",
            Reason::NotAccept => "notaccept",
            Reason::NotCompliantRfc => "notcompliantrfc",
            Reason::OnHold => "onhold",
            Reason::PolicyViolation => "policyviolation",
            Reason::RateLimited => "ratelimited",
            Reason::Rejected => "rejected",
            Reason::RequirePtr => "requireptr",
            Reason::SecurityError => "securityerror",
            Reason::SpamDetected => "spamdetected",
            Reason::Suppressed => "suppressed",
            Reason::Suspend => "suspend",
            Reason::SyntaxError => "syntaxerror",
            Reason::SystemError => "systemerror",
            Reason::SystemFull => "systemfull",
            Reason::Undefined => "undefined",
            Reason::UserUnknown => "userunknown",
            Reason::Vacation => "vacation",
            Reason::VirusDetected => "virusdetected",
        }
    }

    /// Whether this reason describes a failure. `delivered`, `feedback` and `vacation`
    /// do not, and never carry a hard/soft flag.
    pub const fn is_failure(self) -> bool {
        !matches!(
            self,
            Reason::Delivered | Reason::Feedback | Reason::Vacation
        )
    }

    /// The one-line meaning, as documented on the variant (for `--help` texts and docs).
    pub const fn description(self) -> &'static str {
        match self {
            Reason::AuthFailure => "Rejected because SPF, DKIM or DMARC checks failed.",
            Reason::BadReputation => {
                "Rejected or throttled because of the sending IP (or domain) reputation."
            }
            Reason::Blocked => {
                "Rejected because of the client IP or hostname, its HELO, a DNSBL listing, or greylisting."
            }
            Reason::ContentError => {
                "Rejected because of the message header format or content encoding."
            }
            Reason::Delivered => "Delivered successfully (not a failure).",
            Reason::EmailTooLarge => "The message exceeds a size limit.",
            Reason::Expired => "Delivery gave up after the queue lifetime.",
            Reason::FailedStartTls => {
                "Failed because of STARTTLS (TLS required by either side, or the handshake failed)."
            }
            Reason::Feedback => "An ARF complaint forwarded by a mailbox provider (not a failure).",
            Reason::Filtered => {
                "Refused by the recipient side's filtering (a recipient-related refusal after DATA, a per-recipient block)."
            }
            Reason::HasMoved => "The recipient mailbox has moved and mail is not forwarded.",
            Reason::HostUnknown => "The recipient domain does not exist or cannot be routed.",
            Reason::MailboxFull => "The recipient mailbox is over quota.",
            Reason::MailerError => "A local mailer, pipe or delivery program failed.",
            Reason::NetworkError => {
                "A DNS lookup failure or another network problem (connection refused or lost, timeout, loop)."
            }
            Reason::NoRelaying => "Relaying denied.",
            Reason::NotAccept => {
                "The destination accepts no mail at all (null MX, no MX, not accepting messages)."
            }
            Reason::NotCompliantRfc => {
                "The message is not RFC 5322 compliant (duplicate headers and the like)."
            }
            Reason::OnHold => {
                "Not decided: the text carries too little information, or no rule matched it."
            }
            Reason::PolicyViolation => "Rejected for a policy violation on the destination host.",
            Reason::RateLimited => {
                "Refused or deferred for exceeding a rate, volume or connection-count limit."
            }
            Reason::Rejected => {
                "Rejected because of the sender (envelope-from address or its domain)."
            }
            Reason::RequirePtr => "The sending IP has no (or an invalid) PTR / reverse DNS record.",
            Reason::SecurityError => {
                "A security violation (authentication required, delivery not authorised)."
            }
            Reason::SpamDetected => "Rejected by a spam filter.",
            Reason::Suppressed => {
                "Not sent because the address is on the sending side's suppression list."
            }
            Reason::Suspend => "The recipient account is suspended or disabled.",
            Reason::SyntaxError => "A syntax error in an SMTP command sent by the client.",
            Reason::SystemError => {
                "A system or configuration error on the remote (or local delivery) host."
            }
            Reason::SystemFull => "The destination host's disk or storage is full.",
            Reason::Undefined => "No reason could be detected (no text at all).",
            Reason::UserUnknown => "The recipient mailbox does not exist.",
            Reason::Vacation => "An out-of-office auto-reply (not a failure).",
            Reason::VirusDetected => "Rejected by a virus scanner.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the 34 reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReason(pub String);

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown reason {:?}", self.0)
    }
}

impl std::error::Error for UnknownReason {}

impl FromStr for Reason {
    type Err = UnknownReason;

    /// Exact, lower-case names only: `UserUnknown` is not accepted, so that a rules file
    /// reads the same as the stored values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_four_names_round_trip() {
        assert_eq!(Reason::ALL.len(), 34);
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
        }
    }

    #[test]
    fn all_is_sorted_and_unique() {
        let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!("UserUnknown".parse::<Reason>().is_err());
        assert!("speeding".parse::<Reason>().is_err());
    }

    #[test]
    fn non_failures() {
        let non: Vec<_> = Reason::ALL
            .into_iter()
            .filter(|r| !r.is_failure())
            .collect();
        assert_eq!(non, [Reason::Delivered, Reason::Feedback, Reason::Vacation]);
    }
}
