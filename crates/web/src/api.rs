//! The JSON API under `/api/v1/`: the same data as the pages, for scripts (bearer
//! tokens) and the browser (session cookie). Documented by `openapi.json`.

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::{ApiAuth, audit};
use crate::error::{ApiError, WebError};
use crate::message::MessageKey;
use crate::search::{MAX_EXPORT_ROWS, SearchParams, Strictness, query_pairs};
use crate::state::AppState;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/search", get(search))
        .route("/search.csv", get(search_csv))
        .route("/messages/{host}/{queue_id}/{arrived_at}", get(message))
        .route("/overview", get(overview))
        .route("/unclassified", get(unclassified))
        .route("/lookup", get(lookup))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError(WebError::NotFound)
}

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[derive(Serialize)]
struct Me {
    name: String,
    role: String,
    scope: Vec<String>,
}

async fn me(ApiAuth(auth, _conn): ApiAuth) -> axum::Json<Me> {
    let scope = match &auth.scope {
        crate::scope::Scope::All => Vec::new(),
        crate::scope::Scope::Domains(v) | crate::scope::Scope::Addresses(v) => v.clone(),
    };
    axum::Json(Me {
        name: auth.name,
        role: auth.role,
        scope,
    })
}

/// `pftrack status --server`: see [`crate::lookup`].
async fn lookup(
    ApiAuth(auth, conn): ApiAuth,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<pftrack_store::Found>, ApiError> {
    let p = crate::lookup::LookupParams::parse(&query_pairs(raw.as_deref())?)?;
    let found = crate::lookup::lookup_audited(&conn, &auth, &p).await?;
    Ok(axum::Json(found))
}

async fn search(
    ApiAuth(auth, conn): ApiAuth,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<crate::search::SearchPage>, ApiError> {
    let p = SearchParams::parse(&query_pairs(raw.as_deref())?, Utc::now(), Strictness::Api)?;
    let page = crate::search::search_audited(&conn, &auth, &p).await?;
    Ok(axum::Json(page))
}

/// A CSV field: always quoted; a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` so
/// that spreadsheets do not run it as a formula.
fn csv_field(out: &mut String, value: &str) {
    out.push('"');
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// The CSV columns of an export.
pub const CSV_COLUMNS: [&str; 17] = [
    "arrived_at",
    "host",
    "queue_id",
    "message_id",
    "sender",
    "recipient",
    "orig_recipient",
    "status",
    "reason",
    "hard",
    "dsn",
    "relay",
    "attempts",
    "last_attempt_at",
    "client_addr",
    "sasl_username",
    "response",
];

async fn search_csv(
    ApiAuth(auth, conn): ApiAuth,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = SearchParams::parse(&query_pairs(raw.as_deref())?, Utc::now(), Strictness::Api)?;
    let page = crate::search::search(&conn, &auth.scope, &p, MAX_EXPORT_ROWS).await?;
    audit(
        &conn,
        &auth.name,
        &auth.client.addr,
        "export",
        p.audit_detail(),
        Some(page.rows.len() as i64),
    )
    .await?;
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for r in &page.rows {
        let fields = [
            ts(r.arrived_at),
            r.host.clone(),
            r.queue_id.clone(),
            r.message_id.clone().unwrap_or_default(),
            r.sender.clone().unwrap_or_default(),
            r.recipient.clone(),
            r.orig_recipient.clone().unwrap_or_default(),
            r.status.clone(),
            r.reason.clone().unwrap_or_default(),
            r.hard.map(|h| h.to_string()).unwrap_or_default(),
            r.dsn.clone().unwrap_or_default(),
            r.relay.clone().unwrap_or_default(),
            r.attempts.to_string(),
            r.last_attempt_at.map(ts).unwrap_or_default(),
            r.client_addr.clone().unwrap_or_default(),
            r.sasl_username.clone().unwrap_or_default(),
            r.response.clone().unwrap_or_default(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, f);
        }
        out.push_str("\r\n");
    }
    let mut response = out.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"pftrack-search.csv\""),
    );
    if page.next.is_some() {
        // More rows matched than one export holds: narrow the search.
        h.insert("pftrack-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Parse a message key from path segments.
pub fn message_key(
    host: String,
    queue_id: String,
    arrived_at: &str,
) -> Result<MessageKey, WebError> {
    // RFC 3339's date-time (chrono would also take a space for the `T`).
    let parsed = match arrived_at.as_bytes().get(10) {
        Some(b'T' | b't') => DateTime::parse_from_rfc3339(arrived_at).ok(),
        _ => None,
    };
    let arrived_at = parsed
        .ok_or_else(|| WebError::InvalidParam {
            name: "arrived_at".into(),
            reason: format!(
                "{arrived_at:?} is not an RFC 3339 date-time such as \
                 2025-03-14T06:25:01.123456Z (take message links from a search)"
            ),
        })?
        .to_utc();
    if host.len() > 255 || queue_id.len() > 64 {
        return Err(WebError::NotFound);
    }
    Ok(MessageKey {
        host,
        queue_id,
        arrived_at,
    })
}

async fn message(
    ApiAuth(auth, conn): ApiAuth,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<axum::Json<crate::message::Message>, ApiError> {
    let Path((host, queue_id, arrived_at)) =
        path.map_err(|e| WebError::BadRequest(format!("the message path: {e}")))?;
    let key = message_key(host, queue_id, &arrived_at)?;
    Ok(axum::Json(
        crate::message::load_audited(&conn, &auth, &key).await?,
    ))
}

/// The time window of the overview: `window`, `from`, `to` only.
pub fn window(raw: Option<&str>, strictness: Strictness) -> Result<SearchParams, WebError> {
    let pairs = query_pairs(raw)?;
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "window" | "from" | "to"))
    {
        return Err(WebError::BadRequest(format!(
            "unknown parameter {k:?} (known: window, from, to)"
        )));
    }
    SearchParams::parse(&pairs, Utc::now(), strictness)
}

async fn overview(
    ApiAuth(auth, conn): ApiAuth,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<crate::overview::Overview>, ApiError> {
    let w = window(raw.as_deref(), Strictness::Api)?;
    let o = crate::overview::load(&conn, &auth.scope, w.from, w.to).await?;
    audit(
        &conn,
        &auth.name,
        &auth.client.addr,
        "overview",
        serde_json::json!({"from": w.from, "to": w.to}),
        None,
    )
    .await?;
    Ok(axum::Json(o))
}

#[derive(Serialize)]
struct UnclassifiedList {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    items: Vec<crate::overview::Unclassified>,
}

async fn unclassified(
    ApiAuth(auth, conn): ApiAuth,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<UnclassifiedList>, ApiError> {
    let w = window(raw.as_deref(), Strictness::Api)?;
    let items = crate::overview::unclassified(&conn, &auth.scope, w.from, w.to).await?;
    Ok(axum::Json(UnclassifiedList {
        from: w.from,
        to: w.to,
        items,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        let mut s = String::new();
        csv_field(&mut s, "a\"b");
        csv_field(&mut s, "=cmd()");
        assert_eq!(s, "\"a\"\"b\"\"'=cmd()\"");
    }

    #[test]
    fn openapi_is_json_3_1() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
