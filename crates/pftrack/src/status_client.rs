//! `pftrack status --server URL`: the lookups of `pftrack status` asked of a running
//! `pftrack serve` (`GET /api/v1/lookup`, see `pftrack_web::lookup`) with a bearer
//! token from the environment. The server's sessions have planned the lookup's
//! statements before; a direct lookup opens two new sessions whose planning over every
//! monthly partition is most of its time.
//!
//! This module only fetches: `status` decides which lookups to try and renders what
//! comes back exactly as it renders a direct lookup.

use std::time::Duration;

use anyhow::{Context, bail};
use pftrack_store::{Found, Lookup, Window};

/// The environment variable holding the bearer token.
pub const TOKEN_VAR: &str = "PFTRACK_TOKEN";

/// The most messages the server returns per lookup (its `limit` maximum).
pub const MAX_SERVER_LIMIT: usize = 500;

/// How long one request may take, connecting included, before the lookup fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take (a server that is down usually refuses at once).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lookup endpoint, under the server's base URL.
const LOOKUP_PATH: &str = "api/v1/lookup";

/// A client of one server, with its token.
pub struct Client {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    token: String,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`, or with a path prefix when
    /// a proxy serves pftrack under one), its token from [`TOKEN_VAR`].
    pub fn new(base: &str, limit: usize) -> anyhow::Result<Client> {
        if limit > MAX_SERVER_LIMIT {
            bail!("--limit: at most {MAX_SERVER_LIMIT} through --server");
        }
        let token = std::env::var(TOKEN_VAR).unwrap_or_default();
        let token = token.trim().to_owned();
        if token.is_empty() {
            bail!(
                "--server needs a bearer token in the environment variable {TOKEN_VAR} \
                 (make one with `pftrack user token add USER NAME`)"
            );
        }
        let mut base = reqwest::Url::parse(base.trim())
            .with_context(|| format!("--server {base:?} is not a URL (http://host:port)"))?;
        if !matches!(base.scheme(), "http" | "https") {
            bail!("--server {base}: only http:// and https:// URLs are supported");
        }
        // A base without a trailing slash would lose its last path segment on join.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base
            .join(LOOKUP_PATH)
            .with_context(|| format!("--server {base}"))?;
        // The system's trusted certificates are loaded only for https: reading and
        // parsing them is most of this command's own time otherwise.
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(endpoint.scheme() == "https")
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pftrack-status/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Client {
            http,
            endpoint,
            token,
        })
    }

    /// One lookup.
    pub async fn lookup(
        &self,
        lookup: &Lookup,
        window: &Window,
        limit: usize,
    ) -> anyhow::Result<Found> {
        let url = lookup_url(&self.endpoint, lookup, window, limit);
        let base = self.endpoint.origin().ascii_serialization();
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| {
                format!("cannot reach pftrack serve at {base}: is it running and listening there?")
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(
                "pftrack serve at {base} refused the token in {TOKEN_VAR} (unknown, expired or \
                 removed): make a new one with `pftrack user token add USER NAME`"
            );
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!(
                "pftrack serve at {base} answered {status}: {}",
                problem_detail(&body)
            );
        }
        response.json::<Found>().await.with_context(|| {
            format!("pftrack serve at {base} sent a lookup answer this pftrack cannot read (another version?)")
        })
    }
}

/// The request URL of one lookup.
fn lookup_url(
    endpoint: &reqwest::Url,
    lookup: &Lookup,
    window: &Window,
    limit: usize,
) -> reqwest::Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        match lookup {
            Lookup::Address(a) => q.append_pair("kind", "address").append_pair("q", a),
            Lookup::MessageId(m) => q.append_pair("kind", "message-id").append_pair("q", m),
            Lookup::QueueId(ids) => q
                .append_pair("kind", "queue-id")
                .append_pair("q", &ids.join(",")),
        };
        let time = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        if let Some(since) = window.since {
            q.append_pair("since", &time(since));
        }
        if let Some(until) = window.until {
            q.append_pair("until", &time(until));
        }
        if let Some((name, value)) = &window.tag {
            q.append_pair("tag", &format!("{name}={value}"));
        }
        q.append_pair("limit", &limit.to_string());
    }
    url
}

/// The `detail` of an RFC 9457 problem document, else the body's start.
fn problem_detail(body: &str) -> String {
    /// How much of a body that is not a problem document is shown.
    const EXCERPT_CHARS: usize = 200;
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(EXCERPT_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_lookup_url_with_every_parameter_encoded() {
        let endpoint = reqwest::Url::parse("http://127.0.0.1:8025/pftrack/api/v1/lookup").unwrap();
        let window = Window {
            since: chrono::DateTime::from_timestamp(1_741_910_400, 0),
            until: None,
            tag: Some(("tenant".into(), "a&b".into())),
        };
        let url = lookup_url(
            &endpoint,
            &Lookup::Address("bob+x@example.com".into()),
            &window,
            7,
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8025/pftrack/api/v1/lookup?kind=address&q=bob%2Bx%40example.com\
             &since=2025-03-14T00%3A00%3A00.000000Z&tag=tenant%3Da%26b&limit=7"
        );
        let url = lookup_url(
            &endpoint,
            &Lookup::QueueId(vec!["4BC7D1A0F3".into(), "4bc7d1a0f3".into()]),
            &Window::default(),
            50,
        );
        assert!(
            url.as_str()
                .ends_with("?kind=queue-id&q=4BC7D1A0F3%2C4bc7d1a0f3&limit=50")
        );
    }

    #[test]
    fn shows_a_problem_documents_detail() {
        assert_eq!(
            problem_detail(
                r#"{"type":"about:blank","title":"Bad Request","detail":"limit: a whole number"}"#
            ),
            "limit: a whole number"
        );
        assert_eq!(problem_detail("plain text"), "plain text");
    }
}
