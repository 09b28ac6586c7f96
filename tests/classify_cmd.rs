//! `pftrack classify`: one text, a JSONL stream (fields kept, bad lines reported, exit
//! 0), user rules from `--rules` and from the configuration, and `--check` (the example
//! rules file passes; a bad file names file:line:column and exits 1). No database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn pftrack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pftrack"));
    // An empty configuration, so that /etc/pftrack/pftrack.yaml never leaks in.
    c.env_remove("RUST_LOG");
    c
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn empty_config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("pftrack.yaml");
    std::fs::write(&p, "log_level: warn\n").unwrap();
    p
}

#[test]
fn one_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args([
            "classify",
            "--dsn",
            "5.1.1",
            "--text",
            "host mx.example.com[192.0.2.1] said: 550 5.1.1 <a@example.com>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "userunknown");
    assert_eq!(v["hard"], true);
    assert_eq!(v["status"], "bounced");
    assert_eq!(v["dsn"], "5.1.1");
    assert!(v["rule"].as_str().unwrap().starts_with("builtin:"), "{v}");

    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args([
            "classify",
            "--status",
            "deferred",
            "--text",
            "connect to mx.example.com[192.0.2.1]:25: Connection timed out",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "networkerror");
    assert_eq!(v["hard"], false);
    assert_eq!(v["rule"], "postfix:connect-timeout");
}

#[test]
fn jsonl_stream() {
    let dir = tempfile::tempdir().unwrap();
    let input = concat!(
        "{\"status\":\"deferred\",\"dsn\":\"4.2.2\",\"text\":\"host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)\",\"queue_id\":\"ABC123\"}\n",
        "{\"status\":\"bounced\",\"dsn\":null,\"text\":\"Host or domain name not found. Name service error for name=example.invalid type=MX: Host not found\",\"relay\":\"none\"}\n",
        "this is not json\n",
        "{\"status\":\"bounced\"}\n",
        "{\"status\":\"sent\",\"dsn\":\"2.0.0\",\"text\":\"250 2.0.0 Ok: queued as 4XyZ\"}\n",
    );
    let mut cmd = pftrack();
    cmd.arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--jsonl"]);
    let out = with_stdin(cmd, input);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["queue_id"], "ABC123");
    assert_eq!(lines[0]["reason"], "mailboxfull");
    assert_eq!(lines[0]["hard"], false);
    assert_eq!(lines[1]["reason"], "hostunknown");
    assert_eq!(lines[1]["hard"], true);
    assert_eq!(lines[1]["relay"], "none");
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].is_string());
    assert_eq!(lines[3]["line"], 4);
    assert_eq!(lines[4]["reason"], "delivered");
    assert_eq!(lines[4]["hard"], Value::Null);
}

#[test]
fn user_rules_from_flag_and_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: local-quota-wording\n    reason: mailboxfull\n    text: 'bit bucket overflowed'\n",
    )
    .unwrap();
    let text = "host mx.example.com[192.0.2.1] said: 552 Requested mail action aborted: the bit bucket overflowed";
    // Without the rules: the built-in rules decide.
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--text", text])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(v["reason"], "mailboxfull", "{v}");
    // With --rules.
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--text", text, "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "mailboxfull", "{v}");
    assert_eq!(
        v["rule"],
        format!("{}:2:local-quota-wording", rules.display())
    );
    // From the configuration.
    let config = dir.path().join("with-rules.yaml");
    std::fs::write(
        &config,
        format!("classify:\n  rules: {}\n", rules.display()),
    )
    .unwrap();
    let out = pftrack()
        .arg("--config")
        .arg(&config)
        .args(["classify", "--text", text])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "mailboxfull", "{v}");
}

#[test]
fn check_accepts_the_example_and_names_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/classify-rules.example.yaml");
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--check"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "rules:\n  - name: fine\n    reason: blocked\n    code: 554\n  - name: typo\n    reason: mailboxful\n    text: quota\n",
    )
    .unwrap();
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:6:", bad.display())), "{err}");
    assert!(err.contains("mailboxful"), "{err}");

    let bad_regex = dir.path().join("regex.yaml");
    std::fs::write(
        &bad_regex,
        "rules:\n  - name: r\n    reason: blocked\n    text: 'blocked (using'\n",
    )
    .unwrap();
    let out = pftrack()
        .arg("--config")
        .arg(empty_config(dir.path()))
        .args(["classify", "--check"])
        .arg(&bad_regex)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:11:", bad_regex.display())),
        "{err}"
    );
}
