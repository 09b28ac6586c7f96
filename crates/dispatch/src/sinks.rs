//! One attempt at one sink: a signed POST, a command, a NOTIFY.

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::DispatchError;
use crate::config::{Sink, Target};
use crate::retry::Outcome;
use crate::sign::Secret;

/// Bytes of a response body or of a command's stderr kept for the error message.
pub const ERROR_TEXT_MAX: usize = 512;

/// How long a killed command's output is still read.
const KILLED_OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// What one attempt did: the outcome and, when it failed, why.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
}

impl Attempt {
    fn ok() -> Attempt {
        Attempt {
            outcome: Outcome::Success,
            error: None,
        }
    }

    fn failed(outcome: Outcome, error: String) -> Attempt {
        Attempt {
            outcome,
            error: Some(error),
        }
    }
}

/// The HTTP client of a webhook sink: its timeout, no redirects (a 3xx is a failure
/// to be fixed, not followed), rustls.
pub(crate) fn http_client(sink: &Sink) -> Result<reqwest::Client, DispatchError> {
    reqwest::Client::builder()
        .timeout(sink.timeout)
        .connect_timeout(sink.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pftrack/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(sink.concurrency)
        .build()
        .map_err(|e| DispatchError::Client(e.without_url().to_string()))
}

/// Text of at most `ERROR_TEXT_MAX` bytes, on a character boundary, one line.
fn snippet(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(ERROR_TEXT_MAX)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// POST `body` as message `id`, signed with `secret`.
pub(crate) async fn post(
    client: &reqwest::Client,
    timeout: Duration,
    url: &reqwest::Url,
    secret: &Secret,
    id: &str,
    body: Vec<u8>,
) -> Attempt {
    let timestamp = Utc::now().timestamp();
    let signature = secret.sign(id, timestamp, &body);
    let shown = crate::config::redact_url(url);
    let sent = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            let e = e.without_url();
            let why = if e.is_timeout() {
                format!("timed out after {:.1} s", timeout.as_secs_f64())
            } else {
                // The chain says what happened (refused, reset, bad answer).
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                text
            };
            return Attempt::failed(Outcome::Transient, format!("POST {shown}: {why}"));
        }
    };
    let status = response.status().as_u16();
    // Read a little of the body: for the error text, and so that the connection can
    // be reused; a slow or endless body is cut by the timeout.
    let mut kept = Vec::new();
    while kept.len() < ERROR_TEXT_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                if (200..300).contains(&status) {
                    // Accepted; the body does not matter.
                    break;
                }
                return Attempt::failed(
                    Outcome::Transient,
                    format!("POST {shown}: HTTP {status}, then {}", e.without_url()),
                );
            }
        }
    }
    if (200..300).contains(&status) {
        return Attempt::ok();
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Attempt::failed(
        Outcome::Status {
            code: status,
            retry_after,
        },
        format!("POST {shown}: HTTP {status}: {}", snippet(&kept)),
    )
}

/// Run the sink's command with `body` on stdin; killed (with its process group) after
/// the sink's timeout.
pub(crate) async fn exec(sink: &Sink, id: &str, ty: &str, body: &[u8]) -> Attempt {
    let Target::Exec { program, args } = &sink.target else {
        return Attempt::failed(Outcome::Transient, "not an exec sink".into());
    };
    let shown = program.display().to_string();
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .env("PFTRACK_EVENT_ID", id)
        .env("PFTRACK_EVENT_TYPE", ty)
        .env("PFTRACK_SINK", &sink.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Attempt::failed(Outcome::Transient, format!("cannot run {shown}: {e}")),
    };
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let body = body.to_vec();
    let feed = async move {
        if let Some(stdin) = stdin.as_mut() {
            // A command that does not read its input is its own business.
            let _ = stdin.write_all(&body).await;
            let _ = stdin.shutdown().await;
        }
        drop(stdin);
    };
    let errors = tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        if let Some(stderr) = stderr.as_mut() {
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        // Keep the end: the last words say most.
                        if kept.len() > 4 * ERROR_TEXT_MAX {
                            kept.drain(..kept.len() - ERROR_TEXT_MAX);
                        }
                    }
                }
            }
        }
        kept
    });
    let run = async {
        feed.await;
        child.wait().await
    };
    let status = match tokio::time::timeout(sink.timeout, run).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Attempt::failed(Outcome::Transient, format!("{shown}: {e}")),
        Err(_) => {
            kill_group(pid).await;
            let _ = child.kill().await;
            errors.abort();
            return Attempt::failed(
                Outcome::Transient,
                format!(
                    "{shown} did not finish within {:.1} s: killed",
                    sink.timeout.as_secs_f64()
                ),
            );
        }
    };
    let stderr = tokio::time::timeout(KILLED_OUTPUT_GRACE, errors)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if status.success() {
        return Attempt::ok();
    }
    let tail = &stderr[stderr.len().saturating_sub(ERROR_TEXT_MAX)..];
    Attempt::failed(
        Outcome::Transient,
        format!("{shown} exited with {status}: {}", snippet(tail)),
    )
}

/// SIGKILL the process group `pid` leads (the command and what it started), through
/// kill(1): this crate has no unsafe code for kill(2).
async fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// `NOTIFY channel, payload` with `{"id", "type", "sink"}`.
pub(crate) async fn notify(
    store: &pftrack_store::Store,
    channel: &str,
    sink: &str,
    id: &str,
    ty: &str,
) -> Attempt {
    let payload = serde_json::json!({"id": id, "type": ty, "sink": sink}).to_string();
    let client = match store.connection().await {
        Ok(c) => c,
        Err(e) => return Attempt::failed(Outcome::Transient, e.to_string()),
    };
    match client
        .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
    {
        Ok(_) => Attempt::ok(),
        Err(e) => Attempt::failed(Outcome::Transient, format!("NOTIFY {channel}: {e}")),
    }
}

/// Send a signed test event to `sink` now, outside the outbox: `Ok` with what was
/// sent, or the error.
pub async fn send_test_event(store: &pftrack_store::Store, sink: &Sink) -> Result<String, String> {
    let id = format!("evt_test_{:032x}", rand::random::<u128>());
    let payload = serde_json::json!({
        "type": "pftrack.test",
        "id": id,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {"sink": sink.name, "message": "a test event sent by `pftrack events test`"}
    });
    let body = payload.to_string().into_bytes();
    let attempt = match &sink.target {
        Target::Webhook { url, secret, .. } => {
            let client = http_client(sink).map_err(|e| e.to_string())?;
            post(&client, sink.timeout, url, secret, &id, body).await
        }
        Target::Exec { .. } => exec(sink, &id, "pftrack.test", &body).await,
        Target::Notify { channel } => notify(store, channel, &sink.name, &id, "pftrack.test").await,
    };
    match attempt.error {
        None => Ok(format!(
            "{id} delivered to {} ({})",
            sink.name,
            sink.target_text()
        )),
        Some(e) => Err(format!("{id} not delivered to {}: {e}", sink.name)),
    }
}
