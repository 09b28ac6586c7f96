//! One error type for the web layer and its two surfaces: the API answers RFC 9457
//! `application/problem+json` ([`ApiError`]), pages render an error page or send the
//! browser to the login form ([`PageError`]). Both take status and wording from
//! [`WebError::status`] and [`WebError::public_detail`]; causes of server-side
//! failures are logged here, once, and never sent to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A parameter or form field is wrong; the text says which and why.
    #[error("{0}")]
    BadRequest(String),
    /// A query parameter is wrong: its name, and what is wrong with it including what
    /// it accepts. The problem document also names it in `invalid-params`.
    #[error("{name}: {reason}")]
    InvalidParam {
        /// The parameter.
        name: String,
        /// What is wrong, and what it accepts.
        reason: String,
    },
    /// No valid session or bearer token.
    #[error("authentication required: log in, or send `Authorization: Bearer <token>`")]
    Unauthenticated,
    /// A form without the session's CSRF token, or a cross-site request.
    #[error("the form's CSRF token is missing or wrong: reload the page and submit it again")]
    Csrf,
    /// Nothing there, or not in the user's scope (the two are not told apart).
    #[error("not found (or not within your scope)")]
    NotFound,
    /// Too many failed logins for this user or client address.
    #[error("too many failed logins; try again in {retry_after} s")]
    RateLimited {
        /// Seconds until the window admits a new attempt.
        retry_after: u64,
    },
    /// The body was larger than the limit.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A statement failed.
    #[error("database error while {what}: {}", db_message(source))]
    Database {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection could be had.
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Anything else on the server's side.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The server's message (and detail) of a database error, else the driver's.
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!(
            "{} ({}){}",
            d.message(),
            d.code().code(),
            d.detail().map_or(String::new(), |x| format!(": {x}"))
        ),
        None => e.to_string(),
    }
}

/// Shorthand for a database error's context.
pub fn db(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> WebError {
    move |source| WebError::Database { what, source }
}

impl WebError {
    /// The HTTP status: the one table for both surfaces.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) | WebError::InvalidParam { .. } => StatusCode::BAD_REQUEST,
            WebError::Unauthenticated => StatusCode::UNAUTHORIZED,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Database { source, .. } if is_timeout(source) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebError::Database { .. } | WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the client is told: the message for client errors, a generic sentence
    /// for server errors (whose cause is logged instead).
    pub fn public_detail(&self) -> String {
        match self {
            WebError::Database { source, .. } if is_timeout(source) => {
                "the query took too long: narrow the time window or add a filter".to_owned()
            }
            WebError::Database { .. } | WebError::Internal(_) => {
                "something went wrong on the server; the cause is in its log".to_owned()
            }
            WebError::Pool(_) => {
                "the database cannot be reached right now; try again shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "Request failed.");
        }
    }
}

fn is_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

/// The API surface: `application/problem+json`.
#[derive(Debug)]
pub struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        problem(&self.0)
    }
}

/// An RFC 9457 problem document for `err`. A wrong query parameter is also named in
/// the extension member `invalid-params` (`[{"name", "reason"}]`, the form of RFC 9457's
/// own example), so a script can tell which without reading `detail`.
pub fn problem(err: &WebError) -> Response {
    let status = err.status();
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": err.public_detail(),
    });
    if let WebError::InvalidParam { name, reason } = err {
        body["invalid-params"] = serde_json::json!([{"name": name, "reason": reason}]);
    }
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    match err {
        WebError::Unauthenticated => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pftrack\""),
            );
        }
        WebError::RateLimited { retry_after } => {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    response
}

/// The page surface: an HTML error page, or a redirect to the login form.
#[derive(Debug)]
pub struct PageError(pub WebError);

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        if matches!(self.0, WebError::Unauthenticated) {
            return (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, HeaderValue::from_static("/login"))],
            )
                .into_response();
        }
        let status = self.0.status();
        let mut response = crate::pages::error_page(status, &self.0.public_detail());
        *response.status_mut() = status;
        if let WebError::RateLimited { retry_after } = self.0
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
