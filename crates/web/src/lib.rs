//! `pftrack-web`: the web UI and JSON API of `pftrack serve` (issue 13).
//!
//! **What it is.** An axum application over the delivery tables: a search page, a
//! message page and an overview page (server-rendered HTML, SVG charts drawn here, one
//! stylesheet and one small script served from the binary), and a JSON API under
//! `/api/v1/` documented by the OpenAPI 3.1 document `openapi.json` (served at
//! `/api/v1/openapi.json`), with RFC 9457 problem documents for errors and CSV export
//! of searches. Users (argon2id password hashes) have a role — `admin`, `domain`,
//! `self` — whose scope is turned into SQL in one place ([`scope`]) and applied by
//! every query on the server. Sessions are server-side (cookie: HttpOnly,
//! SameSite=Strict, Secure behind TLS), every form carries a CSRF token, logins are
//! rate-limited per user and per address, every response carries a strict CSP and
//! the other security headers, and searches are written to an audit log. Scripts use
//! bearer tokens. It reads through the NOLOGIN role `pftrack_web_read` (migration V10),
//! which may only write the web's own session and audit tables.
//!
//! **What it is not.** A loader or anything that changes delivery data; a TLS
//! terminator (run it behind a reverse proxy for TLS, docs/web.md); a user
//! administration UI (`pftrack user …` on the command line manages users, as the
//! table owner). It knows no log lines.

pub mod api;
pub mod assets;
pub mod auth;
pub mod charts;
pub mod error;
pub mod headers;
pub mod html;
pub mod limit;
pub mod lookup;
pub mod message;
pub mod overview;
pub mod pages;
pub mod scope;
pub mod search;
pub mod settings;
pub mod sql;
pub mod state;
pub mod users;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use auth::Peer;
pub use error::WebError;
pub use settings::{Cidr, Settings};
pub use state::AppState;

/// Largest request body accepted (forms are small; the API takes no bodies).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request taking longer than this is answered 503 (and its query cancelled).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-statement limit set on every database connection of the web role.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections of the web pool.
pub const WEB_POOL_SIZE: usize = 16;
/// The database role `pftrack serve` works as.
pub const WEB_ROLE: &str = "pftrack_web_read";

/// The application: pages, API and assets, with the security headers, the body
/// limit and the timeout.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::router())
        .nest("/api/v1", api::router())
        .with_state(state)
        // Layer order (outermost last): the headers apply to every response, even the
        // body limit's and the timeout's.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(headers::security_headers))
}

/// SQL run on every new connection of the web pool: work as [`WEB_ROLE`], with a
/// statement timeout, and without JIT compilation: the web's statements read a page of
/// rows by index, and a JIT compile (tens to a hundred milliseconds, seen at 5 M rows
/// whenever the planner's estimate of a month's rows crossed `jit_above_cost`) costs
/// more than any of them runs.
pub fn on_connect_sql() -> String {
    format!(
        "SET ROLE {WEB_ROLE}; SET statement_timeout = {}; SET default_transaction_read_only = off; \
         SET jit = off",
        STATEMENT_TIMEOUT.as_millis()
    )
}

/// Check that the pool reaches the database as a role that cannot write delivery
/// data, and that the web tables exist (migration V10).
pub async fn check_role(pool: &deadpool_postgres::Pool) -> Result<(), WebError> {
    let conn = pool.get().await?;
    let row = conn
        .query_one(
            "SELECT current_user::text, \
                    to_regclass('web_user') IS NOT NULL, \
                    has_table_privilege('delivery_to', 'INSERT, UPDATE, DELETE, TRUNCATE') \
                    OR has_table_privilege('delivery_from', 'INSERT, UPDATE, DELETE, TRUNCATE') \
                    OR has_table_privilege('delivery_attempt', 'INSERT, UPDATE, DELETE, TRUNCATE') \
                    OR has_table_privilege('web_user', 'INSERT, UPDATE, DELETE')",
            &[],
        )
        .await
        .map_err(error::db("checking the web role"))?;
    let user: String = row.get(0);
    if !row.get::<_, bool>(1) {
        return Err(WebError::Internal(
            "the web tables do not exist: run `pftrack migrate` (migration V10)".into(),
        ));
    }
    if row.get::<_, bool>(2) {
        return Err(WebError::Internal(format!(
            "the database role {user} can write delivery or user tables; pftrack serve \
             refuses to run so: it works as {WEB_ROLE} (docs/web.md)"
        )));
    }
    Ok(())
}

/// Serve on a TCP listener until `shutdown` resolves, then drain.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serve on a Unix socket until `shutdown` resolves, then drain.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
