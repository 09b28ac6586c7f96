//! Sink settings as the configuration file states them (`events.sinks`,
//! `events.dispatch`), validated once into [`Sink`]s.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::DispatchError;
use crate::retry::RetryPolicy;
use crate::sign::Secret;

/// Default time limit of one attempt (a request, a command).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default attempts in flight per sink.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most attempts in flight per sink.
pub const MAX_CONCURRENCY: usize = 256;
/// Most events in one batched webhook request.
pub const MAX_BATCH_SIZE: usize = 1000;
/// Longest sink name.
pub const MAX_SINK_NAME: usize = 64;
/// Default wait between polls of the outbox when no NOTIFY arrives.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default bound on pending deliveries (all sinks).
pub const DEFAULT_MAX_PENDING: u64 = 1_000_000;

/// The kind of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// HTTP POST of the JSON, signed.
    Webhook,
    /// A command with the JSON on stdin.
    Exec,
    /// `NOTIFY` on a PostgreSQL channel.
    Notify,
}

impl SinkKind {
    /// The name in the configuration and in `event_sink.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Exec => "exec",
            SinkKind::Notify => "notify",
        }
    }
}

/// One entry of `events.sinks`. Which keys apply depends on `type`; the others are
/// refused. `Debug` shows the URL without credentials or query.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Name: letters, digits, `-` and `_` (the key of its deliveries).
    pub name: String,
    /// `webhook`, `exec` or `notify`.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// Only these event types (default: all).
    pub types: Option<Vec<String>>,
    /// Only events with one of these reasons (events without a reason pass).
    pub reasons: Option<Vec<String>>,
    /// webhook: the endpoint (http or https).
    pub url: Option<String>,
    /// webhook: a file holding the secret `whsec_…`.
    pub secret_file: Option<PathBuf>,
    /// webhook: an environment variable holding the secret.
    pub secret_env: Option<String>,
    /// webhook: events per request (1: one event per request, the body an object;
    /// more: a JSON array).
    pub batch_size: Option<usize>,
    /// exec: program and arguments.
    pub command: Option<Vec<String>>,
    /// notify: the channel.
    pub channel: Option<String>,
    /// Time limit of one attempt (`10s`).
    pub timeout: Option<String>,
    /// How long to keep retrying (`3d`).
    pub retry_for: Option<String>,
    /// First wait after a failure (`5s`).
    pub backoff_min: Option<String>,
    /// Longest wait (`1h`).
    pub backoff_max: Option<String>,
    /// Attempts in flight at once.
    pub concurrency: Option<usize>,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_deref().map(|u| match reqwest::Url::parse(u) {
            Ok(url) => redact_url(&url),
            Err(_) => "(not a URL)".to_owned(),
        });
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &url)
            .field("secret_file", &self.secret_file)
            .field("secret_env", &self.secret_env)
            .field("command", &self.command)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// `events.dispatch`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Whether `pftrack run` dispatches (default true when sinks are configured;
    /// false leaves it to `pftrack dispatch`).
    pub in_run: Option<bool>,
    /// Poll the outbox this often even without a NOTIFY (`1s`).
    pub poll_interval: Option<String>,
    /// Bound on pending deliveries; beyond it the oldest are marked failed (and can
    /// be retried) with a warning.
    pub max_pending: Option<u64>,
}

/// Validated dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// See [`DispatchConfig::poll_interval`].
    pub poll_interval: Duration,
    /// See [`DispatchConfig::max_pending`].
    pub max_pending: u64,
    /// See [`DispatchConfig::in_run`].
    pub in_run: bool,
}

impl DispatchConfig {
    /// Validate.
    pub fn settings(&self) -> Result<DispatchSettings, DispatchError> {
        let poll_interval = match &self.poll_interval {
            Some(p) => {
                crate::duration::parse(p).map_err(|e| config_err("dispatch", "poll_interval", e))?
            }
            None => DEFAULT_POLL_INTERVAL,
        };
        if poll_interval.is_zero() {
            return Err(config_err(
                "dispatch",
                "poll_interval",
                "must be more than 0".into(),
            ));
        }
        Ok(DispatchSettings {
            poll_interval,
            max_pending: self.max_pending.unwrap_or(DEFAULT_MAX_PENDING).max(1),
            in_run: self.in_run.unwrap_or(true),
        })
    }
}

/// Where a sink sends. `Debug` shows the URL without credentials or query.
#[derive(Clone)]
pub enum Target {
    /// POST to `url`, signed with `secret`.
    Webhook {
        /// The endpoint.
        url: reqwest::Url,
        /// Its key.
        secret: Secret,
        /// Events per request.
        batch_size: usize,
    },
    /// Run a program.
    Exec {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
    /// NOTIFY a channel.
    Notify {
        /// The channel.
        channel: String,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Webhook {
                url, batch_size, ..
            } => f
                .debug_struct("Webhook")
                .field("url", &redact_url(url))
                .field("secret", &"redacted")
                .field("batch_size", batch_size)
                .finish(),
            Target::Exec { program, args } => f
                .debug_struct("Exec")
                .field("program", program)
                .field("args", args)
                .finish(),
            Target::Notify { channel } => {
                f.debug_struct("Notify").field("channel", channel).finish()
            }
        }
    }
}

/// A validated sink.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Its name.
    pub name: String,
    /// Where it sends.
    pub target: Target,
    /// Only these types (`None`: all).
    pub types: Option<Vec<String>>,
    /// Only these reasons (`None`: all).
    pub reasons: Option<Vec<String>>,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

fn config_err(sink: &str, key: &str, reason: String) -> DispatchError {
    DispatchError::Config {
        sink: sink.to_owned(),
        key: key.to_owned(),
        reason,
    }
}

impl Sink {
    /// The kind.
    pub fn kind(&self) -> SinkKind {
        match self.target {
            Target::Webhook { .. } => SinkKind::Webhook,
            Target::Exec { .. } => SinkKind::Exec,
            Target::Notify { .. } => SinkKind::Notify,
        }
    }

    /// What it sends to, safe to log and store: a URL without credentials or query,
    /// the program, the channel.
    pub fn target_text(&self) -> String {
        match &self.target {
            Target::Webhook { url, .. } => redact_url(url),
            Target::Exec { program, .. } => program.display().to_string(),
            Target::Notify { channel } => channel.clone(),
        }
    }

    /// Whether an event of `ty` with `reason` passes the filter (the trigger of V8
    /// applies the same rule in SQL).
    pub fn accepts(&self, ty: &str, reason: Option<&str>) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == ty))
            && match (&self.reasons, reason) {
                (Some(rs), Some(r)) => rs.iter().any(|x| x == r),
                _ => true,
            }
    }
}

/// `url` without user, password or query, for logs and the `event_sink` table.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

impl SinkConfig {
    /// Validate, reading the secret from its file or variable.
    pub fn validate(&self) -> Result<Sink, DispatchError> {
        let name = &self.name;
        let err = |key: &str, reason: String| config_err(name, key, reason);
        if name.is_empty()
            || name.len() > MAX_SINK_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(
                "name",
                format!("use 1 to {MAX_SINK_NAME} letters, digits, - or _"),
            ));
        }
        let allowed: &[&str] = match self.kind {
            SinkKind::Webhook => &["url", "secret_file", "secret_env", "batch_size"],
            SinkKind::Exec => &["command"],
            SinkKind::Notify => &["channel"],
        };
        let given = [
            ("url", self.url.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("secret_env", self.secret_env.is_some()),
            ("batch_size", self.batch_size.is_some()),
            ("command", self.command.is_some()),
            ("channel", self.channel.is_some()),
        ];
        if let Some((key, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            return Err(err(
                key,
                format!("does not apply to a {} sink", self.kind.as_str()),
            ));
        }
        if let Some(types) = &self.types
            && let Some(t) = types
                .iter()
                .find(|t| pftrack_events::EventType::parse(t).is_none())
        {
            let known: Vec<&str> = pftrack_events::EventType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect();
            return Err(err(
                "types",
                format!("unknown event type {t:?} (known: {})", known.join(", ")),
            ));
        }
        let duration = |key: &str, v: &Option<String>, default: Duration| match v {
            Some(text) => crate::duration::parse(text).map_err(|e| err(key, e)),
            None => Ok(default),
        };
        let timeout = duration("timeout", &self.timeout, DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(err("timeout", "must be more than 0".into()));
        }
        let retry = RetryPolicy {
            backoff_min: duration(
                "backoff_min",
                &self.backoff_min,
                crate::retry::DEFAULT_BACKOFF_MIN,
            )?,
            backoff_max: duration(
                "backoff_max",
                &self.backoff_max,
                crate::retry::DEFAULT_BACKOFF_MAX,
            )?,
            retry_for: duration(
                "retry_for",
                &self.retry_for,
                crate::retry::DEFAULT_RETRY_FOR,
            )?,
        };
        if retry.backoff_min.is_zero() || retry.backoff_max < retry.backoff_min {
            return Err(err(
                "backoff_max",
                "backoff_min must be more than 0 and backoff_max at least backoff_min".into(),
            ));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(err(
                "concurrency",
                format!("between 1 and {MAX_CONCURRENCY}"),
            ));
        }
        let target = match self.kind {
            SinkKind::Webhook => {
                let text = self
                    .url
                    .as_deref()
                    .ok_or_else(|| err("url", "required".into()))?;
                let url =
                    reqwest::Url::parse(text).map_err(|e| err("url", format!("not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(err("url", "must be http or https".into()));
                }
                let secret_text = match (&self.secret_file, &self.secret_env) {
                    (Some(file), None) => std::fs::read_to_string(file).map_err(|e| {
                        err(
                            "secret_file",
                            format!("cannot read {}: {e}", file.display()),
                        )
                    })?,
                    (None, Some(var)) => std::env::var(var).map_err(|_| {
                        err(
                            "secret_env",
                            format!("the environment variable {var} is not set"),
                        )
                    })?,
                    _ => {
                        return Err(err(
                            "secret_file",
                            "give exactly one of secret_file and secret_env (the secret is \
                             never written in the configuration itself)"
                                .into(),
                        ));
                    }
                };
                let secret = Secret::parse(&secret_text).map_err(|e| err("secret", e))?;
                let batch_size = self.batch_size.unwrap_or(1);
                if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
                    return Err(err("batch_size", format!("between 1 and {MAX_BATCH_SIZE}")));
                }
                Target::Webhook {
                    url,
                    secret,
                    batch_size,
                }
            }
            SinkKind::Exec => {
                let command = self.command.as_deref().unwrap_or_default();
                let Some((program, args)) = command.split_first() else {
                    return Err(err("command", "required: [program, arguments…]".into()));
                };
                Target::Exec {
                    program: PathBuf::from(program),
                    args: args.to_vec(),
                }
            }
            SinkKind::Notify => {
                let channel = self
                    .channel
                    .clone()
                    .ok_or_else(|| err("channel", "required".into()))?;
                if channel.is_empty() || channel.len() > 63 {
                    return Err(err("channel", "1 to 63 bytes".into()));
                }
                Target::Notify { channel }
            }
        };
        Ok(Sink {
            name: name.clone(),
            target,
            types: self.types.clone(),
            reasons: self.reasons.clone(),
            timeout,
            retry,
            concurrency,
        })
    }
}

/// Validate every sink; names must be unique.
pub fn validate_sinks(sinks: &[SinkConfig]) -> Result<Vec<Sink>, DispatchError> {
    let mut out: Vec<Sink> = Vec::with_capacity(sinks.len());
    for s in sinks {
        let sink = s.validate()?;
        if out.iter().any(|o| o.name == sink.name) {
            return Err(config_err(
                &sink.name,
                "name",
                "two sinks have this name".into(),
            ));
        }
        out.push(sink);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn webhook(url: &str) -> SinkConfig {
        SinkConfig {
            name: "crm".into(),
            kind: SinkKind::Webhook,
            types: None,
            reasons: None,
            url: Some(url.into()),
            secret_file: None,
            secret_env: Some("PFTRACK_TEST_DISPATCH_SECRET".into()),
            batch_size: None,
            command: None,
            channel: None,
            timeout: None,
            retry_for: None,
            backoff_min: None,
            backoff_max: None,
            concurrency: None,
        }
    }

    #[test]
    fn urls_are_shown_without_secrets() {
        let url =
            reqwest::Url::parse("https://user:pw@hooks.example.com:8443/in?token=abc").unwrap();
        assert_eq!(redact_url(&url), "https://hooks.example.com:8443/in?…");
    }

    #[test]
    fn validation() {
        let dir = std::env::temp_dir().join(format!("pftrack-dispatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, format!("{}\n", Secret::generate())).unwrap();
        let mut c = webhook("https://hooks.example.com/in");
        c.secret_env = None;
        c.secret_file = Some(secret.clone());
        c.url = Some("https://user:pw@hooks.example.com/in?token=abc".into());
        let s = c.validate().unwrap();
        assert_eq!(s.kind(), SinkKind::Webhook);
        for shown in [format!("{s:?}"), format!("{c:?}")] {
            assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
            assert!(shown.contains("https://hooks.example.com/in?…"), "{shown}");
        }
        assert_eq!(s.retry, RetryPolicy::default());

        let mut bad = c.clone();
        bad.secret_file = None;
        assert!(bad.validate().unwrap_err().to_string().contains("secret"));
        let mut bad = c.clone();
        bad.url = Some("ftp://x/".into());
        assert!(bad.validate().is_err());
        let mut bad = c.clone();
        bad.channel = Some("x".into());
        assert!(bad.validate().unwrap_err().to_string().contains("channel"));
        let mut bad = c.clone();
        bad.name = "a b".into();
        assert!(bad.validate().is_err());
        let mut bad = c.clone();
        bad.types = Some(vec!["recipient.faild".into()]);
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("unknown event type")
        );
        let mut bad = c.clone();
        bad.timeout = Some("10 parsecs".into());
        assert!(bad.validate().is_err());
        assert!(validate_sinks(&[c.clone(), c.clone()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn filters() {
        let mut c = webhook("http://x/");
        c.kind = SinkKind::Notify;
        c.url = None;
        c.secret_env = None;
        c.channel = Some("ch".into());
        c.types = Some(vec!["recipient.failed".into()]);
        c.reasons = Some(vec!["userunknown".into()]);
        let s = c.validate().unwrap();
        assert!(s.accepts("recipient.failed", Some("userunknown")));
        assert!(!s.accepts("recipient.failed", Some("mailboxfull")));
        assert!(!s.accepts("message.expired", None));
        c.types = None;
        let s = c.validate().unwrap();
        assert!(s.accepts("message.expired", None));
    }
}
