//! Fake names, domains, addresses and server replies. Addresses use the
//! documentation ranges (RFC 5737, RFC 3849) and reserved names.

/// Local parts of users.
pub(crate) const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "info",
    "sales",
    "support",
    "billing",
    "noreply",
    "newsletter",
    "hr",
    "jobs",
    "office",
];

/// Aliases of the local domain that expand to a user (`orig_to`).
pub(crate) const ALIASES: &[&str] = &["postmaster", "abuse", "webmaster", "root", "contact"];

/// Remote domains with their MX host and address.
pub(crate) const REMOTE: &[(&str, &str, &str)] = &[
    ("example.net", "mx1.example.net", "198.51.100.10"),
    ("example.org", "mail.example.org", "198.51.100.20"),
    ("mail.example", "mx.mail.example", "203.0.113.25"),
    ("corp.example", "smtp-in.corp.example", "203.0.113.40"),
    ("shop.test", "mx01.shop.test", "192.0.2.61"),
    ("news.invalid", "mx.news.invalid", "192.0.2.77"),
    ("univ.example", "mx-a.univ.example", "2001:db8:25::1"),
    ("bigmail.example", "mx3.bigmail.example", "198.51.100.203"),
    ("isp.test", "relay.isp.test", "203.0.113.130"),
    ("gov.example", "inbound.gov.example", "2001:db8:77::25"),
];

/// HELO names of clients.
pub(crate) const HELOS: &[&str] = &[
    "mail.example.net",
    "localhost",
    "ylmf-pc",
    "WIN-7H3K2",
    "smtp.corp.example",
    "[192.0.2.15]",
    "out.isp.test",
];

/// Deferral reasons: (dsn, relay is `none`, text; `{mx}`/`{ip}` replaced).
pub(crate) const DEFERRALS: &[(&str, bool, &str)] = &[
    (
        "4.4.1",
        true,
        "connect to {mx}[{ip}]:25: Connection timed out",
    ),
    (
        "4.4.1",
        true,
        "connect to {mx}[{ip}]:25: Connection refused",
    ),
    (
        "4.7.1",
        false,
        "host {mx}[{ip}] said: 451 4.7.1 Greylisting in action, please come back later (in reply to RCPT TO command)",
    ),
    (
        "4.2.2",
        false,
        "host {mx}[{ip}] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
    ),
    (
        "4.4.2",
        false,
        "lost connection with {mx}[{ip}] while receiving the initial server greeting",
    ),
    (
        "4.3.0",
        false,
        "host {mx}[{ip}] said: 421 4.3.0 Temporary System Problem. Try again later (in reply to end of DATA command)",
    ),
];

/// Permanent SMTP failures: (dsn, text; `{mx}`, `{ip}`, `{rcpt}` replaced).
pub(crate) const BOUNCES: &[(&str, &str)] = &[
    (
        "5.1.1",
        "host {mx}[{ip}] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
    ),
    (
        "5.7.1",
        "host {mx}[{ip}] said: 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org (in reply to RCPT TO command)",
    ),
    (
        "5.2.2",
        "host {mx}[{ip}] said: 552 5.2.2 Mailbox quota exceeded (in reply to end of DATA command)",
    ),
    (
        "5.7.26",
        "host {mx}[{ip}] said: 550-5.7.26 Unauthenticated email is not accepted from this domain 550 5.7.26 Please contact your administrator (in reply to end of DATA command)",
    ),
];

/// Replies of remote servers that accepted a message; `{id}` replaced.
pub(crate) const ACCEPTS: &[&str] = &[
    "250 2.0.0 Ok: queued as {id}",
    "250 2.0.0 OK  1710397501 {id}.12 - gsmtp",
    "250 Requested mail action okay, completed: id={id}",
    "250 2.6.0 <{id}@mail.example> [InternalId=1099] Queued mail for delivery",
];

/// SMTP reject texts of smtpd: (code, dsn, text; `{rcpt}`, `{ip}` replaced).
pub(crate) const NOQUEUE: &[(&str, &str, &str)] = &[
    ("554", "5.7.1", "<{rcpt}>: Relay access denied"),
    (
        "450",
        "4.1.2",
        "<{rcpt}>: Recipient address rejected: Domain not found",
    ),
    (
        "550",
        "5.1.1",
        "<{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table",
    ),
    (
        "554",
        "5.7.1",
        "Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}",
    ),
    (
        "450",
        "4.7.1",
        "Client host rejected: cannot find your hostname, [{ip}]",
    ),
];
