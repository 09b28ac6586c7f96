//! Field-by-field checks against whyscream/postfix-grok-patterns' test vectors
//! (`test/*.yaml`: grok pattern, message body, expected field map).
//!
//! Each grok field name is mapped to one of our fields (see `check`). Grok splits
//! some texts further than we do (e.g. `postfix_status_data` vs
//! `postfix_status_message` out of the reply text); those are checked as "our text
//! contains the expected part". Fields we do not model are counted as unmapped.

mod common;

use std::collections::BTreeMap;

use common::View;
use pftrack_parse::{Event, parse};
use serde::Deserialize;

/// One grok test vector. Expected values are read as strings: the YAML scalars are
/// compared as text (`413E164734` is a queue id, not a float).
#[derive(Debug, Deserialize)]
struct Vector {
    pattern: String,
    data: String,
    results: Option<BTreeMap<String, String>>,
}

/// Outcome of one field check.
enum Check {
    Match,
    Mismatch(String),
    Unmapped,
}

/// Grok patterns whose vectors are fragments of a message (expanded key-value data,
/// a relay value, counters), not messages: not fed to the parser.
const FRAGMENT_PATTERNS: [&str; 3] = [
    "POSTFIX_COMMAND_COUNTER_DATA",
    "POSTFIX_DELAYS",
    "POSTFIX_RELAY",
];

/// Vectors we knowingly do not recognise, with the reason.
const KNOWN_UNKNOWN: [(&str, &str); 1] = [(
    "smtpd_0039.yaml",
    "`discarding EHLO keywords:` is configuration noise, not an event we model",
)];

/// The daemon a grok pattern name stands for: `^%{POSTFIX_TRIVIAL_REWRITE}$` ->
/// `trivial-rewrite`.
fn daemon_of_pattern(pattern: &str) -> Option<String> {
    let start = pattern.find("%{POSTFIX_")? + "%{POSTFIX_".len();
    let end = start + pattern[start..].find('}')?;
    let name = pattern[start..end].to_ascii_lowercase().replace('_', "-");
    Some(match name.as_str() {
        "tls-features" => "smtp".to_string(),
        "script" => "postfix-script".to_string(),
        _ => name,
    })
}

fn eq(ours: Option<&str>, expected: &str) -> Check {
    match ours {
        Some(o) if o == expected => Check::Match,
        other => Check::Mismatch(format!("ours {other:?}")),
    }
}

fn contains(ours: Option<&str>, expected: &str) -> Check {
    match ours {
        Some(o) if o.contains(expected) => Check::Match,
        other => Check::Mismatch(format!("ours {other:?} does not contain it")),
    }
}

/// Key-value pairs of grok's `postfix_keyvalue_data` (`to=<a>, relay=x, …` or
/// `from=<a> to=<b> proto=ESMTP helo=<h>`), angle brackets removed.
fn keyvalues(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(eq_at) = rest.find('=') {
        let key = rest[..eq_at].trim_start_matches([',', ' ']).to_string();
        let after = &rest[eq_at + 1..];
        let (value, next) = if let Some(inner) = after.strip_prefix('<') {
            let close = inner.find('>').unwrap_or(inner.len());
            (&inner[..close], &inner[(close + 1).min(inner.len())..])
        } else {
            let end = after.find([',', ' ']).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value.to_string()));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

/// Compare one expected grok field with our event.
fn check(key: &str, expected: &str, v: &View, event: &Event<'_>) -> Check {
    let kind = event.kind();
    match key {
        "postfix_queueid" if expected == "NOQUEUE" => match v.get("queue_id") {
            None => Check::Match,
            Some(q) => Check::Mismatch(format!("ours {q}")),
        },
        "postfix_queueid" => eq(v.get("queue_id"), expected),
        "postfix_client_hostname" => eq(v.get("client.name"), expected),
        "postfix_client_ip" | "postfix_client_ip_unknown" if kind == "anvil_statistics" => {
            match v.get("subject") {
                Some(s) if s.ends_with(&format!(":{expected}")) => Check::Match,
                other => Check::Mismatch(format!("subject {other:?}")),
            }
        }
        "postfix_service" => match v.get("subject") {
            Some(s) if s.starts_with(&format!("{expected}:")) => Check::Match,
            other => Check::Mismatch(format!("subject {other:?}")),
        },
        "postfix_client_ip" | "postfix_client_ip_unknown" => eq(v.get("client.addr"), expected),
        "postfix_client_port" => eq(v.get("client.port"), expected),
        "postfix_relay_hostname" if kind == "queue_other" => Check::Unmapped,
        "postfix_relay_ip" | "postfix_relay_port" if kind == "queue_other" => Check::Unmapped,
        "postfix_relay_hostname" => eq(v.get("server.name"), expected),
        "postfix_relay_ip" | "postfix_server_ip" => eq(v.get("server.addr"), expected),
        "postfix_relay_port" | "postfix_server_port" => eq(v.get("server.port"), expected),
        "postfix_status" => eq(v.get("status"), expected),
        "postfix_smtp_response"
        | "postfix_local_response"
        | "postfix_pipe_response"
        | "postfix_error_response" => match kind {
            "delivery" => eq(v.get("response"), expected),
            _ => contains(v.get("text"), expected),
        },
        "postfix_smtp_stage" if kind == "smtp_conversation" => {
            contains(v.get("text"), &format!("(in reply to {expected} command)"))
        }
        "postfix_smtp_stage" | "postfix_proxy_smtp_stage" => eq(v.get("stage"), expected),
        "postfix_action" => eq(v.get("action"), expected),
        "postfix_status_code" | "postfix_proxy_status_code" => eq(v.get("code"), expected),
        "postfix_status_code_enhanced" | "postfix_proxy_status_code_enhanced" => {
            eq(v.get("dsn"), expected)
        }
        // Grok splits the reply text into a bracketed datum and a message; ours is
        // the whole text.
        "postfix_status_message" | "postfix_status_data" | "postfix_postscreen_toobusy_data" => {
            contains(v.get("text"), expected)
        }
        "postfix_message_level" if kind == "content_check" => eq(v.get("action"), expected),
        "postfix_message_level" => eq(v.get("level"), expected),
        "postfix_message" => match kind {
            "removed" | "skipped" => eq(v.get("action"), expected),
            "sasl_failed" => {
                let ours = format!(
                    "SASL {} authentication failed: {}",
                    v.get("mechanism").unwrap_or(""),
                    v.get("text").unwrap_or("")
                );
                eq(Some(&ours), expected)
            }
            "content_check" => eq(Some(&content_message(v)), expected),
            _ => eq(v.get("text"), expected),
        },
        "postfix_message-id" => eq(v.get("message_id"), expected),
        "postfix_milter_result" => eq(v.get("action"), &format!("milter-{expected}")),
        "postfix_milter_message" if kind == "content_check" => {
            eq(Some(&content_message(v)), expected)
        }
        // `END-OF-MESSAGE from host[ip]: 5.7.1 text`: ours is the text part.
        "postfix_milter_message" => match v.get("text") {
            Some(t) if expected.ends_with(t) => Check::Match,
            other => Check::Mismatch(format!("ours {other:?}")),
        },
        "postfix_milter_data" | "postfix_prepend_value" => eq(v.get("text"), expected),
        "postfix_prepend_type" => eq(v.get("part"), expected),
        "postfix_prepend_trigger" => eq(v.get("content"), expected),
        "postfix_bounce_queueid" => eq(v.get("new_queue_id"), expected),
        "postfix_bounce_recipient" => {
            let ours = match v.get("notification") {
                Some("postmaster") => "postmaster",
                Some(_) => "sender",
                None => "",
            };
            eq(Some(ours), expected)
        }
        // Our kind for postmaster copies does not keep the reason.
        "postfix_bounce_reason" if v.get("notification") == Some("postmaster") => Check::Unmapped,
        "postfix_bounce_reason" => eq(v.get("notification"), expected),
        "postfix_postsuper_action" | "postfix_postsuper_summary_action" => {
            eq(v.get("action"), expected)
        }
        "postfix_postsuper_summary_count" => eq(v.get("count"), expected),
        "postfix_postscreen_violation" => eq(v.get("violation"), expected),
        "postfix_postscreen_violation_time" => eq(v.get("after"), expected),
        "postfix_postscreen_access" => eq(v.get("list"), expected),
        "postfix_postscreen_dnsbl_rank" => eq(v.get("rank"), expected),
        "postfix_postscreen_cache_retained" | "postfix_verify_cache_retained" => {
            eq(v.get("retained"), expected)
        }
        "postfix_postscreen_cache_dropped" | "postfix_verify_cache_dropped" => {
            eq(v.get("dropped"), expected)
        }
        "postfix_dnsbl_domain" => eq(v.get("domain"), expected),
        "postfix_dnsbl_result" => eq(v.get("reply"), expected),
        "postfix_tls_trustlevel" => eq(v.get("trust"), expected),
        "postfix_tls_version"
        | "postfix_tls_cipher"
        | "postfix_tls_cipher_size"
        | "postfix_tls_key_exchange"
        | "postfix_tls_server_signature"
        | "postfix_tls_server_signature_size"
        | "postfix_tls_server_signature_curve"
        | "postfix_tls_server_digest" => contains(v.get("detail"), expected),
        "postfix_tls_error" => eq(v.get("detail"), expected),
        "postfix_smtp_lostconn_data" => match kind {
            "connect_failed" => eq(v.get("text"), expected),
            "tls_problem" => eq(v.get("detail"), expected),
            _ => match v.get("text") {
                Some(t) if t.starts_with(expected) => Check::Match,
                other => Check::Mismatch(format!("ours {other:?}")),
            },
        },
        "postfix_smtpd_lostconn_data" if kind == "session_ended" => eq(v.get("action"), expected),
        "postfix_smtpd_lostconn_data" => match v.get("text") {
            Some(t) if t.starts_with(expected) => Check::Match,
            other => Check::Mismatch(format!("ours {other:?}")),
        },
        "postfix_smtp_lostconn_reason" => contains(v.get("text"), expected),
        "postfix_command_counter_data" => eq(v.get("counters"), expected),
        "postfix_anvil_cache_size" | "postfix_anvil_conn_count" => eq(v.get("value"), expected),
        "postfix_anvil_conn_rate" => eq(v.get("value").and_then(|x| x.split('/').next()), expected),
        "postfix_anvil_conn_period" => {
            eq(v.get("value").and_then(|x| x.split('/').nth(1)), expected)
        }
        "postfix_anvil_timestamp" => eq(v.get("at"), expected),
        "postfix_scache_timestamp" => eq(v.get("value"), expected),
        "postfix_scache_hits" => contains(v.get("value"), &format!("hits={expected} ")),
        "postfix_scache_miss" => contains(v.get("value"), &format!("miss={expected} ")),
        "postfix_scache_success" => contains(v.get("value"), &format!("success={expected}%")),
        "postfix_scache_domains" => contains(v.get("value"), &format!("domains={expected}")),
        "postfix_scache_addresses" => contains(v.get("value"), &format!("addresses={expected}")),
        "postfix_scache_connection" => contains(v.get("value"), &format!("connection={expected}")),
        "postfix_version" => eq(v.get("version"), expected),
        "postfix_config_path" => contains(v.get("text"), &format!("configuration {expected}")),
        "postfix_termination_signal" => contains(v.get("text"), &format!("signal {expected}")),
        "postfix_proxy_result" => eq(v.get("action"), &format!("proxy-{expected}")),
        "postfix_proxy_message" => match v.get("text") {
            Some(t) if expected.ends_with(t) => Check::Match,
            other => Check::Mismatch(format!("ours {other:?}")),
        },
        "postfix_from" => eq(v.get("from"), expected),
        _ => Check::Unmapped,
    }
}

/// The `PART CONTENT from ORIGIN` text grok keeps as one message for content checks.
fn content_message(v: &View) -> String {
    let origin = match (v.get("client.name"), v.get("client.addr")) {
        (Some(n), Some(a)) => format!("{n}[{a}]"),
        _ => "local".to_string(),
    };
    format!(
        "{} {} from {origin}",
        v.get("part").unwrap_or(""),
        v.get("content").unwrap_or("")
    )
}

/// The keys of `postfix_keyvalue_data` that name one of our fields.
fn check_keyvalues(data: &str, v: &View) -> Vec<(String, Check)> {
    keyvalues(data)
        .into_iter()
        .map(|(k, val)| {
            let c = match k.as_str() {
                "client" => {
                    let ours = match (v.get("client.name"), v.get("client.addr")) {
                        (Some(n), Some(a)) => Some(format!("{n}[{a}]")),
                        _ => None,
                    };
                    eq(ours.as_deref(), &val)
                }
                "to" | "orig_to" | "relay" | "conn_use" | "delay" | "delays" | "dsn" | "from"
                | "size" | "nrcpt" | "proto" | "helo" | "sasl_method" | "sasl_username"
                | "sasl_sender" | "orig_queue_id" | "uid" => eq(v.get(k.as_str()), &val),
                _ => Check::Unmapped,
            };
            (format!("keyvalue {k}"), c)
        })
        .collect()
}

#[test]
fn grok_vectors() {
    let Some(dir) = common::corpora() else { return };
    let dir = dir.join("postfix-grok-patterns/test");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read grok test dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let (mut matched, mut vectors) = (0, 0);
    let mut unmapped = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read vector");
        let vector: Vector =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if FRAGMENT_PATTERNS.iter().any(|p| vector.pattern.contains(p))
            || (vector.pattern.contains("TLS_FEATURES") && !vector.data.contains("to="))
        {
            continue;
        }
        let daemon = daemon_of_pattern(&vector.pattern).expect("pattern names a daemon");
        let event = parse(&daemon, &vector.data);
        vectors += 1;
        if !event.is_recognized() {
            if !KNOWN_UNKNOWN.iter().any(|(f, _)| *f == name) {
                failures.push(format!("{name}: not recognised: {}", vector.data));
            }
            continue;
        }
        let v = common::view(&event);
        let mut checks = Vec::new();
        for (key, value) in vector.results.iter().flatten() {
            let expected = value.clone();
            if key == "postfix_keyvalue_data" {
                checks.extend(check_keyvalues(&expected, &v));
            } else {
                checks.push((key.clone(), check(key, &expected, &v, &event)));
            }
        }
        for (key, c) in checks {
            match c {
                Check::Match => matched += 1,
                Check::Unmapped => {
                    unmapped.insert(key);
                }
                Check::Mismatch(why) => {
                    failures.push(format!("{name}: {key}: {why}\n    {}", vector.data))
                }
            }
        }
    }
    eprintln!(
        "grok: {vectors} vectors, {matched} fields matched, {} failures; unmapped fields: {unmapped:?}",
        failures.len()
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(matched > 300, "too few fields checked: {matched}");
    assert!(
        failures.is_empty(),
        "{} grok field mismatches",
        failures.len()
    );
}
