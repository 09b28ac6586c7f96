//! Real Postfix lines through the parser into the counters, read back from the
//! exposition (as a scraper sees them).

use super::*;

/// `(daemon, message)` pairs as Postfix logs them.
const LINES: &[(&str, &str)] = &[
    ("smtpd", "connect from mail.example.com[192.0.2.10]"),
    (
        "smtpd",
        "4F9D1C0A2B: client=mail.example.com[192.0.2.10], sasl_method=PLAIN, sasl_username=alice",
    ),
    (
        "smtpd",
        "5A1B2C3D4E: client=other.example.net[198.51.100.7]",
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[203.0.113.5]: 554 5.7.1 <spam@example.org>: Relay access denied; from=<x@example.net> to=<spam@example.org> proto=ESMTP helo=<bad>",
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[203.0.113.5]: 450 4.7.1 <a@example.org>: Recipient address rejected: try later; from=<x@example.net> to=<a@example.org> proto=ESMTP helo=<bad>",
    ),
    (
        "smtpd",
        "lost connection after RCPT from unknown[203.0.113.5]",
    ),
    (
        "smtpd",
        "warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    ),
    (
        "smtpd",
        "disconnect from mail.example.com[192.0.2.10] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    ),
    (
        "cleanup",
        "4F9D1C0A2B: message-id=<20240101120000.ABC@example.com>",
    ),
    (
        "qmgr",
        "4F9D1C0A2B: from=<alice@example.com>, size=2048, nrcpt=3 (queue active)",
    ),
    (
        "smtp",
        "4F9D1C0A2B: to=<bob@example.org>, relay=mx.example.org[192.0.2.25]:25, delay=1.2, delays=0.1/0.02/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)",
    ),
    (
        "smtp",
        "4F9D1C0A2B: to=<carol@example.org>, relay=mx.example.org[192.0.2.25]:25, delay=1.3, delays=0.1/0.02/0.5/0.7, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1235)",
    ),
    (
        "smtp",
        "4F9D1C0A2B: to=<dave@example.net>, relay=none, delay=30, delays=0.1/0/30/0, dsn=4.4.1, status=deferred (connect to mx.example.net[198.51.100.1]:25: Connection timed out)",
    ),
    (
        "smtp",
        "connect to mx.example.net[198.51.100.1]:25: Connection timed out",
    ),
    (
        "smtp",
        "connect to mx2.example.net[198.51.100.2]:25: Connection refused",
    ),
    (
        "error",
        "4F9D1C0A2B: to=<eve@example.net>, relay=none, delay=40, delays=0.1/40/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to mx.example.net[198.51.100.1]:25: Connection timed out)",
    ),
    (
        "lmtp",
        "4F9D1C0A2B: to=<frank@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=0.05, delays=0.01/0/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 <frank@example.com> Saved)",
    ),
    (
        "pipe",
        "4F9D1C0A2B: to=<gina@example.com>, relay=dovecot, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered via dovecot service)",
    ),
    ("qmgr", "4F9D1C0A2B: removed"),
    (
        "qmgr",
        "6B7C8D9E0F: from=<old@example.com>, status=expired, returned to sender",
    ),
    (
        "bounce",
        "4F9D1C0A2B: sender non-delivery notification: 7C8D9E0F1A",
    ),
    ("smtpd", "this is no line Postfix writes"),
];

fn scrape() -> (Metrics, Registry) {
    let (metrics, registry) = Metrics::new(Input::Journal);
    for (daemon, message) in LINES {
        observe(&metrics, daemon, &pftrack_parse::parse(daemon, message));
    }
    (metrics, registry)
}

/// The value of the sample line `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let v = rest.strip_prefix(' ')?;
        v.split(' ').next()?.parse().ok()
    })
}

#[track_caller]
fn assert_sample(text: &str, series: &str, expected: f64) {
    match sample(text, series) {
        Some(v) => assert_eq!(v, expected, "{series}\n{text}"),
        None => panic!("no sample {series} in\n{text}"),
    }
}

#[test]
fn fixture_lines_give_the_expected_counters() {
    let (_m, registry) = scrape();
    let text = render(&registry);
    for (series, value) in [
        ("postfix_smtpd_connects_total{service=\"postfix\"}", 1.0),
        ("postfix_smtpd_disconnects_total{service=\"postfix\"}", 1.0),
        (
            "postfix_smtpd_messages_processed_total{sasl_method=\"PLAIN\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtpd_messages_processed_total{sasl_method=\"\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtpd_messages_processed_total{sasl_method=\"LOGIN\",service=\"postfix\"}",
            0.0,
        ),
        (
            "postfix_smtpd_messages_rejected_total{code=\"554\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtpd_messages_rejected_total{code=\"450\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtpd_connections_lost_total{after_stage=\"RCPT\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtpd_sasl_authentication_failures_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_cleanup_messages_processed_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtp_messages_processed_total{status=\"sent\",service=\"postfix\"}",
            2.0,
        ),
        (
            "postfix_smtp_messages_processed_total{status=\"deferred\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtp_messages_processed_total{status=\"bounced\",service=\"postfix\"}",
            0.0,
        ),
        (
            "postfix_smtp_deferred_messages_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_error_messages_processed_total{status=\"deferred\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_lmtp_messages_processed_total{status=\"sent\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_pipe_messages_processed_total{status=\"sent\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtp_connection_timed_out_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtp_connection_failures_total{reason=\"timed_out\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_smtp_connection_failures_total{reason=\"refused\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_qmgr_messages_removed_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_qmgr_messages_expired_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_bounce_non_delivery_notification_total{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_qmgr_messages_inserted_recipients_count{service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_qmgr_messages_inserted_recipients_sum{service=\"postfix\"}",
            3.0,
        ),
        (
            "postfix_qmgr_messages_inserted_receipients_sum{service=\"postfix\"}",
            3.0,
        ),
        (
            "postfix_qmgr_messages_inserted_size_bytes_sum{service=\"postfix\"}",
            2048.0,
        ),
        (
            "postfix_smtp_delivery_delay_seconds_count{stage=\"transmission\",service=\"postfix\"}",
            3.0,
        ),
        (
            "postfix_smtp_delivery_delay_seconds_bucket{le=\"1.0\",stage=\"transmission\",service=\"postfix\"}",
            3.0,
        ),
        (
            "postfix_pipe_delivery_delay_seconds_count{relay=\"dovecot\",stage=\"queue_manager\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_lmtp_delivery_delay_seconds_count{stage=\"connection_setup\",service=\"postfix\"}",
            1.0,
        ),
        (
            "postfix_unsupported_log_entries_total{daemon=\"smtpd\",service=\"postfix\"}",
            1.0,
        ),
        ("pftrack_records_unknown_total{input=\"journal\"}", 1.0),
        (
            "pftrack_records_recognized_total{input=\"journal\"}",
            (LINES.len() - 1) as f64,
        ),
    ] {
        assert_sample(&text, series, value);
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# UNIT postfix_smtp_delivery_delay_seconds seconds"));
}

#[test]
fn no_label_value_comes_from_the_text() {
    let (_m, registry) = scrape();
    let text = render(&registry);
    for needle in ["example", "192.0.2", "4F9D1C0A2B", "alice", "@"] {
        assert!(
            !text.contains(needle),
            "label value {needle:?} leaked:\n{text}"
        );
    }
}

#[test]
fn pipe_relays_are_capped() {
    let (metrics, registry) = Metrics::new(Input::Journal);
    for i in 0..(PIPE_RELAYS_MAX + 10) {
        let line = format!(
            "4F9D1C0A2B: to=<g@example.com>, relay=transport{i}, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered)"
        );
        observe(&metrics, "pipe", &pftrack_parse::parse("pipe", &line));
    }
    let text = render(&registry);
    let relays: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("postfix_pipe_delivery_delay_seconds_count"))
        .filter_map(|l| l.split("relay=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(relays.len(), PIPE_RELAYS_MAX + 1, "{relays:?}");
    assert!(relays.contains("other"));
    assert_sample(
        &text,
        "postfix_pipe_delivery_delay_seconds_count{relay=\"other\",stage=\"transmission\",service=\"postfix\"}",
        10.0,
    );
}

#[test]
fn instances_are_counted_apart_and_capped() {
    let (metrics, registry) = Metrics::new(Input::Journal);
    let line = "connect from mail.example.com[192.0.2.10]";
    let event = pftrack_parse::parse("smtpd", line);
    observe_service(&metrics, "postfix", "smtpd", &event);
    observe_service(&metrics, "postfix-out", "smtpd", &event);
    observe_service(&metrics, "postfix-out", "smtpd", &event);
    for i in 0..SERVICES_MAX + 5 {
        observe_service(&metrics, &format!("postfix-x{i}"), "smtpd", &event);
    }
    let text = render(&registry);
    assert_sample(
        &text,
        "postfix_smtpd_connects_total{service=\"postfix\"}",
        1.0,
    );
    assert_sample(
        &text,
        "postfix_smtpd_connects_total{service=\"postfix-out\"}",
        2.0,
    );
    // 2 named above, SERVICES_MAX - 2 of the x's, the other 7 as `other`.
    assert_sample(
        &text,
        "postfix_smtpd_connects_total{service=\"other\"}",
        7.0,
    );
    let services = text
        .lines()
        .filter(|l| l.starts_with("postfix_smtpd_connects_total{"))
        .count();
    assert_eq!(services, SERVICES_MAX + 1, "{text}");
}

#[test]
fn label_parsers() {
    assert_eq!(SaslMethod::from_name(Some("plain")), SaslMethod::Plain);
    assert_eq!(SaslMethod::from_name(Some("FOO")), SaslMethod::Other);
    assert_eq!(SaslMethod::from_name(None), SaslMethod::None);
    assert_eq!(AfterStage::from_word("DATA (0 bytes)"), AfterStage::Data);
    assert_eq!(
        AfterStage::from_word("END-OF-MESSAGE"),
        AfterStage::EndOfMessage
    );
    assert_eq!(AfterStage::from_word("whatever"), AfterStage::Other);
    assert_eq!(Daemon::from_name("postfix-out"), Daemon::Other);
}

#[test]
fn failures_gauge_sets_absent_reasons_to_zero() {
    let (metrics, registry) = Metrics::new(Input::Journal);
    metrics
        .db
        .set_failures([("userunknown", 3), ("mailboxfull", 2), ("nonsense", 1)]);
    metrics.db.set_failures([("userunknown", 4), ("bogus", 2)]);
    let text = render(&registry);
    assert_sample(
        &text,
        "pftrack_failures_last_hour{reason=\"userunknown\"}",
        4.0,
    );
    assert_sample(
        &text,
        "pftrack_failures_last_hour{reason=\"mailboxfull\"}",
        0.0,
    );
    assert_sample(&text, "pftrack_failures_last_hour{reason=\"other\"}", 2.0);
}

#[tokio::test]
async fn serves_get_metrics_and_nothing_else() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_m, registry) = scrape();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, std::sync::Arc::new(registry), async {
        let _ = stop_rx.await;
    }));
    let ask = |req: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let ok = ask(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains(CONTENT_TYPE));
    assert!(ok.contains("postfix_smtpd_connects_total{service=\"postfix\"} 1"));
    assert!(ok.ends_with("# EOF\n"));
    let classic = ask("GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(classic.contains(CLASSIC_CONTENT_TYPE), "{classic}");
    assert!(
        classic.contains(
            "# TYPE postfix_smtpd_connects_total counter\npostfix_smtpd_connects_total{service=\"postfix\"} 1\n"
        )
    );
    assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    let nf = ask("GET / HTTP/1.1\r\n\r\n").await;
    assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
    let na = ask("POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(na.starts_with("HTTP/1.1 405"), "{na}");
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    let big: &'static str = Box::leak(big.into_boxed_str());
    let tl = ask(big).await;
    assert!(tl.starts_with("HTTP/1.1 431"), "{tl}");
    stop_tx.send(()).unwrap();
    server.await.unwrap();
}
