//! `parse` never panics and stays linear: property tests over arbitrary text for every
//! daemon name, structured prefixes that reach deep into the grammar, huge lines,
//! and replacement characters from lossy UTF-8 decoding.

use std::time::{Duration, Instant};

use pftrack_parse::{Event, parse};
use proptest::prelude::*;

/// Daemon names the dispatcher knows about, plus unknown ones.
const DAEMONS: [&str; 22] = [
    "smtpd",
    "smtp",
    "lmtp",
    "local",
    "virtual",
    "pipe",
    "error",
    "discard",
    "retry",
    "cleanup",
    "qmgr",
    "pickup",
    "bounce",
    "postsuper",
    "postscreen",
    "dnsblog",
    "tlsproxy",
    "anvil",
    "scache",
    "master",
    "postfix-script",
    "frobnicator",
];

/// Message starts that lead into each grammar, so random tails exercise the inner
/// parsers rather than failing at the first byte.
const PREFIXES: [&str; 40] = [
    "",
    "ABCDEF123: ",
    "3bZLDk1V50z37Dv: ",
    "ABCDEF123: to=<",
    "ABCDEF123: to=<a@b>, relay=",
    "ABCDEF123: to=<a@b>, relay=x[1.2.3.4]:25, delay=1, delays=1/2/3/4, dsn=2.0.0, status=sent (",
    "ABCDEF123: client=",
    "ABCDEF123: client=x[1.2.3.4], sasl_method=",
    "ABCDEF123: message-id=",
    "ABCDEF123: from=<",
    "ABCDEF123: from=<a>, size=",
    "ABCDEF123: uid=",
    "ABCDEF123: reject: ",
    "ABCDEF123: reject: RCPT from ",
    "ABCDEF123: warning: header ",
    "ABCDEF123: info: body x from ",
    "ABCDEF123: milter-reject: END-OF-MESSAGE from x[1.2.3.4]: ",
    "ABCDEF123: sender ",
    "ABCDEF123: host ",
    "ABCDEF123: lost connection ",
    "NOQUEUE: ",
    "NOQUEUE: reject: RCPT from x[",
    "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 ",
    "connect from ",
    "disconnect from x[1.2.3.4] ",
    "lost connection after DATA (",
    "warning: ",
    "warning: x[1.2.3.4]: SASL ",
    "warning: hostname ",
    "CONNECT from [",
    "PASS NEW [",
    "PREGREET 1 after ",
    "HANGUP after 1 from [",
    "DNSBL rank ",
    "statistics: ",
    "addr 1.2.3.4 listed by domain ",
    "daemon started -- version ",
    "Anonymous TLS connection established from ",
    "connect to x[1.2.3.4]:25: ",
    "[ID 1 mail.info] ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(daemon in prop::sample::select(DAEMONS.to_vec()), text in any::<String>()) {
        let _ = parse(daemon, &text);
    }

    #[test]
    fn grammar_prefixes_with_arbitrary_tails(
        daemon in prop::sample::select(DAEMONS.to_vec()),
        prefix in prop::sample::select(PREFIXES.to_vec()),
        tail in "[ -~\u{fffd}\u{e9}\u{4e2d}]{0,200}",
    ) {
        let text = format!("{prefix}{tail}");
        let event = parse(daemon, &text);
        // Unknown keeps the whole message; everything else borrows from it.
        if let Event::Unknown { text: t } = event {
            prop_assert_eq!(t, text.as_str());
        }
    }

    #[test]
    fn arbitrary_daemon_names(daemon in any::<String>(), text in "[ -~]{0,120}") {
        let _ = parse(&daemon, &text);
    }
}

/// Size of the huge lines.
const HUGE: usize = 1 << 20;

/// Generous limit for one huge line in an unoptimised test build on a busy machine:
/// linear parsing of 1 MB takes well under a second, a quadratic one hours.
const HUGE_LINE_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn one_megabyte_lines() {
    let fill = |unit: &str| unit.repeat(HUGE / unit.len());
    let lines = [
        fill("a"),
        fill(";"),
        fill(" "),
        fill("ABCDEF"),
        format!("ABCDEF123: {}", fill("; from=<a>")),
        format!(
            "ABCDEF123: warning: header Subject: {}",
            fill("x from y; from=<a>")
        ),
        format!(
            "ABCDEF123: reject: RCPT from x[1.2.3.4]: 554 {}",
            fill("; ")
        ),
        format!("ABCDEF123: to=<{}", fill("a")),
        format!("ABCDEF123: to=<a>{}", fill(", relay=x")),
        format!("ABCDEF123: to=<a>, status=sent ({}", fill("queued as ")),
        format!("warning: {}", fill(" from x")),
        format!("warning: hostname {}", fill("x ")),
        format!("statistics: {}", fill(" for (")),
        format!("ABCDEF123: client=x[1.2.3.4]{}", fill(", sasl_method=a")),
        format!("disconnect from x[1.2.3.4] {}", fill("commands=")),
        format!("{}: removed", fill("A")),
        format!("{}z1: removed", fill("b")),
        format!("< {}", fill("\u{fffd}")),
        fill("\u{fffd}"),
    ];
    for line in &lines {
        let start = Instant::now();
        for daemon in ["smtpd", "postsuper"] {
            let _ = parse(daemon, line);
        }
        let took = start.elapsed();
        let head: String = line.chars().take(24).collect();
        eprintln!("{took:?} for {head:?}…");
        assert!(
            took < HUGE_LINE_LIMIT,
            "{took:?} for a line starting {head:?}"
        );
    }
}

#[test]
fn replacement_characters() {
    // Lossy decoding of invalid bytes puts U+FFFD anywhere, including inside
    // addresses, queue ids and delimiters.
    let raw: &[&[u8]] = &[
        b"ABCDEF123: to=<a\xff@b>, relay=x[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (ok)",
        b"ABC\xffDEF123: removed",
        b"connect from h\xc3\x28st[1.2.3.4]",
        b"NOQUEUE: reject: RCPT from x[1.2.\xfe3.4]: 554 5.7.1 no; from=<\xff> to=<b>",
        b"ABCDEF123: warning: header Subject: \xe2\x82 from x[1.2.3.4]; from=<a>",
        b"\xff\xfe\xfd",
    ];
    for bytes in raw {
        let text = String::from_utf8_lossy(bytes);
        for daemon in DAEMONS {
            let _ = parse(daemon, &text);
        }
    }
    let text = String::from_utf8_lossy(raw[0]);
    match parse("smtp", &text) {
        Event::Delivery(d) => assert_eq!(d.to, "a\u{fffd}@b"),
        other => panic!("{other:?}"),
    }
}
