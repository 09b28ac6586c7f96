//! Who is asking: passwords (argon2id), sessions (server-side, cookie holds a random
//! token whose SHA-256 is stored), bearer tokens for scripts, the client's address
//! (through trusted proxies only), CSRF checks, and the audit log.

use std::net::{IpAddr, SocketAddr};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, header, request::Parts};
use axum::serve::IncomingStream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, PageError, WebError, db};
use crate::scope::Scope;
use crate::state::AppState;

/// Session cookie name over plain HTTP.
pub const SESSION_COOKIE: &str = "pftrack_session";
/// Session cookie name over TLS: the `__Host-` prefix pins it to this host and path.
pub const SECURE_SESSION_COOKIE: &str = "__Host-pftrack_session";
/// The login form's CSRF cookie (double submit: the form carries the same value).
pub const LOGIN_CSRF_COOKIE: &str = "pftrack_login_csrf";
/// Its name over TLS.
pub const SECURE_LOGIN_CSRF_COOKIE: &str = "__Host-pftrack_login_csrf";
/// Prefix of bearer tokens, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "pft_";
/// Random bytes in session tokens, CSRF tokens and bearer tokens (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest user name.
pub const MAX_USER_NAME_LEN: usize = 128;
/// A bearer token's `last_used_at` is written at most this often.
pub const TOKEN_TOUCH_INTERVAL_SECS: i64 = 60;

/// How the peer connected: TCP (with its address) or the Unix socket.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A peer on the Unix socket (a local reverse proxy).
    Unix,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::Tcp(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(_stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer::Unix
    }
}

/// A fresh random token (URL-safe base64 of [`TOKEN_BYTES`] bytes from the OS-seeded
/// CSPRNG).
pub fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// An argon2id PHC string of `password` (the crate's defaults: 19 MiB, 2 passes).
/// CPU-bound: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, WebError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `phc`. CPU-bound.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Equal in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure over TLS.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Where the request came from, and whether it came over TLS.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client's address: the peer's, or the last hop a trusted proxy named in
    /// `X-Forwarded-For`; `unix` / `unknown` when there is none.
    pub addr: String,
    /// Over TLS (a trusted proxy said `X-Forwarded-Proto: https`) or configured so.
    pub secure: bool,
    /// The peer is a trusted proxy (its `X-Forwarded-*` headers are believed).
    pub via_trusted_proxy: bool,
}

impl Client {
    /// From the connection and the headers, believing forwarded headers only from
    /// trusted proxies.
    pub fn from_parts(parts: &Parts, state: &AppState) -> Client {
        let settings = state.settings();
        let peer = parts.extensions.get::<ConnectInfo<Peer>>().map(|c| c.0);
        let (peer_addr, trusted) = match peer {
            Some(Peer::Tcp(a)) => (
                a.ip().to_string(),
                settings.trusted_proxies.iter().any(|c| c.contains(a.ip())),
            ),
            Some(Peer::Unix) => ("unix".to_owned(), settings.trust_unix_socket),
            None => ("unknown".to_owned(), false),
        };
        if !trusted {
            return Client {
                addr: peer_addr,
                secure: settings.secure_cookies,
                via_trusted_proxy: false,
            };
        }
        // The rightmost address that is not itself a trusted proxy: what the nearest
        // proxy saw, which a client cannot forge by sending its own header.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let addr = forwarded
            .iter()
            .rev()
            .find(|ip| !settings.trusted_proxies.iter().any(|c| c.contains(**ip)))
            .or(forwarded.first())
            .map_or(peer_addr, ToString::to_string);
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Client {
            addr,
            secure: settings.secure_cookies || https,
            via_trusted_proxy: true,
        }
    }

    /// The session cookie's name for this client.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The login CSRF cookie's name for this client.
    pub fn login_csrf_cookie(&self) -> &'static str {
        if self.secure {
            SECURE_LOGIN_CSRF_COOKIE
        } else {
            LOGIN_CSRF_COOKIE
        }
    }
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct Auth {
    /// `web_user.id`.
    pub user_id: i64,
    /// The user name.
    pub name: String,
    /// `admin`, `domain` or `self`.
    pub role: String,
    /// What the user may see.
    pub scope: Scope,
    /// The session's CSRF token; `None` for bearer tokens (no cookies, no CSRF).
    pub csrf: Option<String>,
    /// The session token's hash (to log out).
    pub session: Option<Vec<u8>>,
    /// Where the request came from.
    pub client: Client,
}

/// The request's database connection: taken once, by authentication, and used by the
/// handler for everything else (a second checkout would queue the request in the pool
/// twice under load).
pub type Conn = deadpool_postgres::Object;

async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Auth, Conn), WebError> {
    let client = Client::from_parts(parts, state);
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let conn = state.pool().get().await?;
    if let Some(token) = bearer {
        state
            .limiter()
            .check(None, &client.addr, std::time::Instant::now())
            .map_err(|retry_after| WebError::RateLimited { retry_after })?;
        let statement = crate::sql::prepared(
            &conn,
            "SELECT u.id, u.name, u.role, u.scope, t.id, \
                    t.last_used_at IS NULL \
                    OR t.last_used_at < now() - make_interval(secs => $2) \
             FROM web_token t JOIN web_user u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > now())",
        )
        .await
        .map_err(db("looking up a bearer token"))?;
        let row = conn
            .query_opt(
                &statement,
                &[&token_hash(token), &(TOKEN_TOUCH_INTERVAL_SECS as f64)],
            )
            .await
            .map_err(db("looking up a bearer token"))?;
        let Some(row) = row else {
            state
                .limiter()
                .failed(None, &client.addr, std::time::Instant::now());
            return Err(WebError::Unauthenticated);
        };
        if row.get::<_, bool>(5) {
            conn.execute(
                "UPDATE web_token SET last_used_at = now() WHERE id = $1",
                &[&row.get::<_, i64>(4)],
            )
            .await
            .map_err(db("noting a bearer token's use"))?;
        }
        let role: String = row.get(2);
        let scope = Scope::from_role(&role, row.get(3)).ok_or(WebError::Unauthenticated)?;
        let auth = Auth {
            user_id: row.get(0),
            name: row.get(1),
            role,
            scope,
            csrf: None,
            session: None,
            client,
        };
        return Ok((auth, conn));
    }
    let token = cookie(&parts.headers, client.session_cookie())
        .or_else(|| cookie(&parts.headers, SESSION_COOKIE))
        .ok_or(WebError::Unauthenticated)?;
    let hash = token_hash(token);
    let statement = crate::sql::prepared(
        &conn,
        "SELECT u.id, u.name, u.role, u.scope, s.csrf_token \
         FROM web_session s JOIN web_user u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > now()",
    )
    .await
    .map_err(db("looking up a session"))?;
    let row = conn
        .query_opt(&statement, &[&hash])
        .await
        .map_err(db("looking up a session"))?
        .ok_or(WebError::Unauthenticated)?;
    let role: String = row.get(2);
    let scope = Scope::from_role(&role, row.get(3)).ok_or(WebError::Unauthenticated)?;
    let auth = Auth {
        user_id: row.get(0),
        name: row.get(1),
        role,
        scope,
        csrf: Some(row.get(4)),
        session: Some(hash),
        client,
    };
    Ok((auth, conn))
}

impl Auth {
    /// Check a submitted form's CSRF token against the session's, and the request's
    /// `Origin` (when sent) against its `Host`.
    pub fn check_csrf(&self, headers: &HeaderMap, submitted: &str) -> Result<(), WebError> {
        check_origin(headers, self.client.via_trusted_proxy)?;
        match &self.csrf {
            Some(expected) if same_secret(expected, submitted) => Ok(()),
            _ => Err(WebError::Csrf),
        }
    }
}

/// A cross-site `Origin` on a form post is refused (a second line behind SameSite
/// cookies and CSRF tokens). The host compared with is `X-Forwarded-Host` when a
/// trusted proxy sent the request, else `Host`.
pub fn check_origin(headers: &HeaderMap, via_trusted_proxy: bool) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get("x-forwarded-host")
        .filter(|_| via_trusted_proxy)
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    if origin == "null" || !origin_host.eq_ignore_ascii_case(host) {
        return Err(WebError::Csrf);
    }
    Ok(())
}

/// Auth for API routes, with the request's connection: rejections are problem+json.
pub struct ApiAuth(pub Auth, pub Conn);

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (auth, conn) = authenticate(parts, state).await?;
        Ok(ApiAuth(auth, conn))
    }
}

/// Auth for pages, with the request's connection: without a session the browser goes
/// to the login form.
pub struct PageAuth(pub Auth, pub Conn);

impl FromRequestParts<AppState> for PageAuth {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let (auth, conn) = authenticate(parts, state).await?;
        if auth.csrf.is_none() {
            // Pages are for browsers with sessions; scripts use the API.
            return Err(PageError(WebError::Unauthenticated));
        }
        Ok(PageAuth(auth, conn))
    }
}

/// The client, for routes without authentication (login).
pub struct ClientInfo(pub Client);

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientInfo(Client::from_parts(parts, state)))
    }
}

/// The statement of [`audit`].
pub const AUDIT_INSERT: &str = "INSERT INTO web_audit (user_name, client_addr, action, detail, \
     results) VALUES ($1, $2, $3, $4, $5)";

/// Write one audit row on the request's connection. A failure fails the request: a search that cannot be
/// audited is not answered.
pub async fn audit(
    conn: &deadpool_postgres::Client,
    user: &str,
    client_addr: &str,
    action: &str,
    detail: serde_json::Value,
    results: Option<i64>,
) -> Result<(), WebError> {
    // The request's own connection: taking a second one while holding the first
    // could exhaust the pool under load (every request waiting for a second).
    let results = results.map(|r| i32::try_from(r).unwrap_or(i32::MAX));
    let statement = crate::sql::prepared(conn, AUDIT_INSERT)
        .await
        .map_err(db("writing the audit log"))?;
    conn.execute(
        &statement,
        &[&user, &client_addr, &action, &detail, &results],
    )
    .await
    .map_err(db("writing the audit log"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token();
        assert_ne!(a, random_token());
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 32);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, "short"));
    }

    #[test]
    fn cookies_and_origin() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; pftrack_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(header::HOST, "mail.example:8080".parse().unwrap());
        assert!(check_origin(&h, false).is_ok());
        h.insert(header::ORIGIN, "http://mail.example:8080".parse().unwrap());
        assert!(check_origin(&h, false).is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_origin(&h, false).is_err());
        // X-Forwarded-Host counts only from a trusted proxy.
        h.insert("x-forwarded-host", "evil.example".parse().unwrap());
        assert!(check_origin(&h, false).is_err());
        assert!(check_origin(&h, true).is_ok());
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(check_origin(&h, true).is_err());
    }
}
