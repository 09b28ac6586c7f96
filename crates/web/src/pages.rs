//! The HTML pages: login, search, message, overview; the assets; error pages.

use axum::Form;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use crate::auth::{
    ClientInfo, MAX_PASSWORD_LEN, MAX_USER_NAME_LEN, PageAuth, audit, check_origin, cookie,
    random_token, same_secret, set_cookie, token_hash,
};
use crate::charts;
use crate::error::{PageError, WebError, db};
use crate::html::{esc, layout, opt, opt_time, query, status, time};
use crate::search::{
    STATUSES, SearchParams, SortKey, Strictness, WINDOW_PRESETS, message_path, query_pairs,
};
use crate::state::AppState;

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/search") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/search", get(search))
        .route("/message/{host}/{queue_id}/{arrived_at}", get(message))
        .route("/overview", get(overview))
        .route("/static/{name}", get(asset))
        .fallback(|| async { PageError(WebError::NotFound) })
}

/// A minimal error page (no state needed: it links the assets by their hashed path).
pub fn error_page(status: StatusCode, detail: &str) -> Response {
    let assets = crate::assets::Assets::default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{code} · pftrack</title><link rel=\"stylesheet\" href=\"{}\"></head>\
         <body><header><a class=\"brand\" href=\"/\">pftrack</a></header><main id=\"main\">\
         <h1>{code}</h1><p class=\"error\">{}</p><p><a href=\"/search\">Back to the search</a></p>\
         </main></body></html>\n",
        assets.css_path(),
        esc(detail),
        code = esc(&format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )),
    )
    .into_response()
    .map_html()
}

trait MapHtml {
    fn map_html(self) -> Response;
}

impl MapHtml for Response {
    fn map_html(mut self) -> Response {
        self.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        self
    }
}

async fn asset(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.assets().get(&format!("/static/{name}")) {
        Some((content_type, body)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response(),
        None => PageError(WebError::NotFound).into_response(),
    }
}

fn login_page(state: &AppState, csrf: &str, message: Option<&str>, user: &str) -> Response {
    let body = format!(
        "<h1>Log in</h1>{}<form class=\"login\" method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>User <input name=\"user\" autocomplete=\"username\" required autofocus value=\"{}\" maxlength=\"{MAX_USER_NAME_LEN}\"></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"{MAX_PASSWORD_LEN}\"></label>\
         <div class=\"actions\"><button type=\"submit\">Log in</button></div></form>",
        message.map_or(String::new(), |m| format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(m)
        )),
        esc(csrf),
        esc(user),
    );
    layout(state, "Log in", None, &body)
}

async fn login_form(State(state): State<AppState>, ClientInfo(client): ClientInfo) -> Response {
    let csrf = random_token();
    let mut r = login_page(&state, &csrf, None, "");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        client.login_csrf_cookie(),
        &csrf,
        3600,
        client.secure,
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    ClientInfo(client): ClientInfo,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|e| WebError::BadRequest(format!("the login form: {e}")))?;
    check_origin(&headers, client.via_trusted_proxy)?;
    let cookie_csrf = cookie(&headers, client.login_csrf_cookie()).unwrap_or("");
    if cookie_csrf.is_empty() || !same_secret(cookie_csrf, &form.csrf) {
        return Err(WebError::Csrf.into());
    }
    let user = form.user.trim().to_owned();
    if user.is_empty() || user.len() > MAX_USER_NAME_LEN || form.password.len() > MAX_PASSWORD_LEN {
        return Err(WebError::BadRequest("user name or password too long or empty".into()).into());
    }
    let now = std::time::Instant::now();
    let conn = state.pool().get().await?;
    if let Err(retry_after) = state.limiter().check(Some(&user), &client.addr, now) {
        audit(
            &conn,
            &user,
            &client.addr,
            "login_refused",
            serde_json::json!({"reason": "rate limit"}),
            None,
        )
        .await?;
        return Err(WebError::RateLimited { retry_after }.into());
    }
    let row = conn
        .query_opt(
            "SELECT id, password_hash FROM web_user WHERE name = $1",
            &[&user],
        )
        .await
        .map_err(db("looking up a user"))?;
    let (id, hash) = match &row {
        Some(r) => (Some(r.get::<_, i64>(0)), r.get::<_, String>(1)),
        None => (None, state.dummy_hash().to_owned()),
    };
    let password = form.password;
    let ok = tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
        .await
        .map_err(|e| WebError::Internal(format!("password check: {e}")))?;
    let Some(id) = id.filter(|_| ok) else {
        state.limiter().failed(Some(&user), &client.addr, now);
        audit(
            &conn,
            &user,
            &client.addr,
            "login_failed",
            serde_json::json!({}),
            None,
        )
        .await?;
        let mut r = login_page(
            &state,
            &form.csrf,
            Some("Wrong user name or password."),
            &user,
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(r);
    };
    state.limiter().succeeded(&user);
    let token = random_token();
    let ttl = state.settings().session_ttl;
    let expires =
        Utc::now() + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(12));
    conn.execute(
        "INSERT INTO web_session (token_hash, user_id, csrf_token, expires_at, client_addr) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &token_hash(&token),
            &id,
            &random_token(),
            &expires,
            &client.addr,
        ],
    )
    .await
    .map_err(db("creating a session"))?;
    // Expired sessions go as new ones come (no timer needed).
    conn.execute("DELETE FROM web_session WHERE expires_at < now()", &[])
        .await
        .map_err(db("removing expired sessions"))?;
    audit(
        &conn,
        &user,
        &client.addr,
        "login",
        serde_json::json!({}),
        None,
    )
    .await?;
    let mut r = Redirect::to("/search").into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        client.session_cookie(),
        &token,
        ttl.as_secs(),
        client.secure,
    )) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        client.login_csrf_cookie(),
        "",
        0,
        client.secure,
    )) {
        h.append(header::SET_COOKIE, v);
    }
    *r.status_mut() = StatusCode::SEE_OTHER;
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    PageAuth(auth, conn): PageAuth,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| WebError::Csrf)?;
    auth.check_csrf(&headers, &form.csrf)?;
    if let Some(hash) = &auth.session {
        conn.execute("DELETE FROM web_session WHERE token_hash = $1", &[hash])
            .await
            .map_err(db("ending a session"))?;
    }
    audit(
        &conn,
        &auth.name,
        &auth.client.addr,
        "logout",
        serde_json::json!({}),
        None,
    )
    .await?;
    let mut r = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/login"))],
    )
        .into_response();
    for name in [
        crate::auth::SESSION_COOKIE,
        crate::auth::SECURE_SESSION_COOKIE,
    ] {
        let secure = name.starts_with("__Host-") || auth.client.secure;
        if let Ok(v) = HeaderValue::from_str(&set_cookie(name, "", 0, secure)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

fn input(name: &str, label: &str, value: Option<&str>, placeholder: &str) -> String {
    format!(
        "<label>{label}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\" maxlength=\"{}\"></label>",
        esc(value.unwrap_or("")),
        esc(placeholder),
        crate::search::MAX_PARAM_LEN
    )
}

fn search_form(p: &SearchParams) -> String {
    let mut f = String::from(
        "<form method=\"get\" action=\"/search\" role=\"search\"><fieldset><legend>Search</legend><div class=\"fields\">",
    );
    f.push_str(&input(
        "recipient",
        "Recipient",
        p.recipient.as_deref(),
        "bob@example.com",
    ));
    f.push_str(&input(
        "sender",
        "Sender",
        p.sender.as_deref(),
        "alice@example.org or <>",
    ));
    f.push_str(&input(
        "address",
        "Sender or recipient",
        p.address.as_deref(),
        "",
    ));
    f.push_str(&input(
        "domain",
        "Domain",
        p.domain.as_deref(),
        "example.com",
    ));
    f.push_str(&input("id", "Message-ID or queue id", p.id.as_deref(), ""));
    f.push_str(&input(
        "client",
        "Client address or SASL user",
        p.client.as_deref(),
        "",
    ));
    f.push_str("<label>Window<select name=\"window\">");
    let chosen = if p.explicit_times {
        ""
    } else {
        p.window.as_deref().unwrap_or("24h")
    };
    f.push_str(&format!(
        "<option value=\"\"{}>custom (from/to)</option>",
        if chosen.is_empty() { " selected" } else { "" }
    ));
    for (name, _) in WINDOW_PRESETS {
        f.push_str(&format!(
            "<option value=\"{name}\"{}>last {name}</option>",
            if name == chosen { " selected" } else { "" }
        ));
    }
    f.push_str("</select></label>");
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let (from, to) = if p.explicit_times {
        (fmt(p.from), fmt(p.to))
    } else {
        (String::new(), String::new())
    };
    f.push_str(&input(
        "from",
        "From (UTC)",
        Some(&from),
        "2025-03-14T06:00",
    ));
    f.push_str(&input("to", "To (UTC)", Some(&to), "now"));
    f.push_str(&input(
        "reason",
        "Reason",
        Some(&p.reasons.join(",")),
        "userunknown,mailboxfull",
    ));
    f.push_str("</div><div class=\"checks\" role=\"group\" aria-label=\"status\">");
    for s in STATUSES {
        f.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"status\" value=\"{s}\"{}> {}</label>",
            if p.statuses.iter().any(|x| x == s) {
                " checked"
            } else {
                ""
            },
            status(s)
        ));
    }
    f.push_str("</div><div class=\"actions\"><button type=\"submit\">Search</button><a href=\"/search\">Reset</a></div></fieldset></form>");
    f
}

fn sort_link(p: &SearchParams, key: SortKey, label: &str) -> String {
    let (desc, mark) = if p.sort == key {
        (!p.desc, if p.desc { " ↓" } else { " ↑" })
    } else {
        (key == SortKey::Time, "")
    };
    let mut q = p.clone();
    q.sort = key;
    q.desc = desc;
    let aria = if p.sort == key {
        format!(
            " aria-sort=\"{}\"",
            if p.desc { "descending" } else { "ascending" }
        )
    } else {
        String::new()
    };
    format!(
        "<th scope=\"col\"{aria}><a href=\"/search?{}\">{}{mark}</a></th>",
        esc(&q.to_query(&[])),
        esc(label)
    )
}

async fn search(
    State(state): State<AppState>,
    PageAuth(auth, conn): PageAuth,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    let p = match SearchParams::parse(&pairs, Utc::now(), Strictness::Form) {
        Ok(p) => p,
        Err(e @ (WebError::BadRequest(_) | WebError::InvalidParam { .. })) => {
            let msg = e.to_string();
            let p = SearchParams::parse(&[], Utc::now(), Strictness::Form)?;
            let body = format!(
                "<h1>Search</h1>{}<p class=\"error\" role=\"alert\">{}</p>",
                search_form(&p),
                esc(&msg)
            );
            let mut r = layout(&state, "Search", Some(&auth), &body);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    let page = crate::search::search_audited(&conn, &auth, &p).await?;
    let mut body = format!("<h1>Search</h1>{}", search_form(&p));
    body.push_str(&format!(
        "<p class=\"muted\">{} row(s), arrivals from {} to {}. <a href=\"/api/v1/search.csv?{}\">CSV</a> · <a href=\"/api/v1/search?{}\">JSON</a></p>",
        page.rows.len(),
        time(p.from),
        time(p.to),
        esc(&p.to_query(&[])),
        esc(&p.to_query(&[])),
    ));
    if page.rows.is_empty() {
        body.push_str("<p>No mail matches in this window (and your scope). Widen the window or change the filters.</p>");
    } else {
        // class results: below 40rem each row is stacked, one labelled line per cell
        // (data-label), so that no column is squeezed to a few characters.
        body.push_str("<div class=\"table-wrap\"><table class=\"results\"><thead><tr>");
        body.push_str(&sort_link(&p, SortKey::Time, "Arrival"));
        body.push_str(&sort_link(&p, SortKey::Sender, "From"));
        body.push_str(&sort_link(&p, SortKey::Recipient, "To"));
        body.push_str(&sort_link(&p, SortKey::Status, "Status"));
        body.push_str("<th scope=\"col\">Reason</th><th scope=\"col\">DSN</th><th scope=\"col\">Relay</th><th scope=\"col\">Attempts</th></tr></thead><tbody>");
        for r in &page.rows {
            let link = format!(
                "/message/{}",
                message_path(&r.host, &r.queue_id, r.arrived_at)
            );
            let sender = match r.sender.as_deref() {
                Some("") => "&lt;&gt;".to_owned(),
                s => opt(s),
            };
            body.push_str(&format!(
                "<tr><td data-label=\"Arrival\"><a href=\"{}\">{}</a></td><td class=\"text\" data-label=\"From\">{}</td><td class=\"text\" data-label=\"To\">{}{}</td><td data-label=\"Status\">{}</td><td data-label=\"Reason\">{}</td><td data-label=\"DSN\">{}</td><td class=\"text\" data-label=\"Relay\">{}</td><td class=\"num\" data-label=\"Attempts\">{}</td></tr>",
                esc(&link),
                time(r.arrived_at),
                sender,
                esc(&r.recipient),
                r.orig_recipient.as_deref().map_or(String::new(), |o| format!(" <span class=\"muted\">(to {})</span>", esc(o))),
                status(&r.status),
                opt(r.reason.as_deref()),
                opt(r.dsn.as_deref()),
                opt(r.relay.as_deref()),
                r.attempts
            ));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("<nav class=\"pager\" aria-label=\"pages\">");
    if raw.as_deref().is_some_and(|q| q.contains("after=")) {
        body.push_str(&format!(
            "<a href=\"/search?{}\">First page</a>",
            esc(&p.to_query(&[]))
        ));
    }
    if let Some(next) = &page.next {
        body.push_str(&format!(
            "<a href=\"/search?{}\" rel=\"next\">Next page</a>",
            esc(&p.to_query(&[("after", next)]))
        ));
    }
    body.push_str("</nav>");
    Ok(layout(&state, "Search", Some(&auth), &body))
}

async fn message(
    State(state): State<AppState>,
    PageAuth(auth, conn): PageAuth,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Result<Response, PageError> {
    let Path((host, queue_id, arrived_at)) =
        path.map_err(|e| WebError::BadRequest(format!("the message path: {e}")))?;
    let key = crate::api::message_key(host, queue_id, &arrived_at)?;
    let m = crate::message::load_audited(&conn, &auth, &key).await?;
    let mut b = format!(
        "<h1>Message {} <span class=\"muted\">on {}</span></h1>\
         <p><a href=\"{}\">Permalink</a> <button type=\"button\" data-copy=\"{}\">Copy link</button> \
         · <a href=\"/api/v1/messages/{}\">JSON</a></p><dl class=\"facts\">",
        esc(&m.queue_id),
        esc(&m.host),
        esc(&m.permalink),
        esc(&m.permalink),
        esc(&message_path(&m.host, &m.queue_id, m.arrived_at)),
    );
    let sender = match m.sender.as_deref() {
        Some("") => "&lt;&gt; (null sender)".to_owned(),
        s => opt(s),
    };
    let client = match (&m.client_name, &m.client_addr) {
        (None, None) => "–".to_owned(),
        (n, a) => format!("{}[{}]", opt(n.as_deref()), opt(a.as_deref())),
    };
    for (k, v) in [
        ("Arrived", time(m.arrived_at)),
        ("From", sender),
        ("Message-ID", opt(m.message_id.as_deref())),
        ("Size", m.size.map_or("–".into(), |s| format!("{s} bytes"))),
        ("Recipients", m.nrcpt.map_or("–".into(), |n| n.to_string())),
        ("Origin", opt(m.origin.as_deref())),
        ("Client", client),
        (
            "SASL",
            match (&m.sasl_method, &m.sasl_username) {
                (None, None) => "–".into(),
                (meth, u) => format!("{} {}", opt(u.as_deref()), opt(meth.as_deref())),
            },
        ),
        ("Removed", opt_time(m.removed_at)),
    ] {
        b.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>"));
    }
    for (k, t) in [
        ("Expired", m.expired_at),
        ("Deleted", m.deleted_at),
        ("Rejected", m.rejected_at),
    ] {
        if let Some(t) = t {
            b.push_str(&format!("<dt>{k}</dt><dd>{}</dd>", time(t)));
        }
    }
    b.push_str("</dl>");
    if !m.links.is_empty() {
        b.push_str("<h2>Linked messages</h2><ul>");
        for l in &m.links {
            let what = match (l.relation.as_str(), l.kind.as_deref()) {
                ("parent", Some("non_delivery")) => "the message this bounce notification is about",
                ("parent", Some("reinjection")) => "before the content filter",
                ("parent", Some("forward")) => "the message this one forwards",
                ("parent", _) => "parent message",
                (_, Some("non_delivery")) => "non-delivery notification (NDR)",
                (_, Some("delay")) => "delay notification",
                (_, Some("success")) => "success notification",
                (_, Some("reinjection")) => "re-injected after the content filter",
                (_, Some("forward")) => "forwarded copy",
                (_, Some("postmaster")) => "postmaster notification",
                _ => "linked message",
            };
            b.push_str(&format!(
                "<li>{}: <a href=\"/message/{}\">{} on {}</a>, {}</li>",
                esc(what),
                esc(&message_path(&l.host, &l.queue_id, l.arrived_at)),
                esc(&l.queue_id),
                esc(&l.host),
                time(l.arrived_at)
            ));
        }
        b.push_str("</ul>");
    }
    b.push_str("<h2>Recipients</h2>");
    if m.recipients.is_empty() {
        b.push_str("<p>No recipient of this message is logged (or within your scope).</p>");
    }
    for r in &m.recipients {
        b.push_str(&format!(
            "<section class=\"recipient\"><h3>{}{} {}</h3><p>{} {} {} · {} attempt(s)</p><ol class=\"timeline\">",
            esc(&r.recipient),
            r.orig_recipient.as_deref().map_or(String::new(), |o| format!(" <span class=\"muted\">(to {})</span>", esc(o))),
            status(&r.status),
            r.reason.as_deref().map_or(String::new(), |x| format!("reason {}", esc(x))),
            r.dsn.as_deref().map_or(String::new(), |x| format!("dsn {}", esc(x))),
            r.relay.as_deref().map_or(String::new(), |x| format!("relay {}", esc(x))),
            r.attempts,
        ));
        for a in &r.history {
            b.push_str(&format!(
                "<li>{} {} {} {} {}<div class=\"text muted\">{}</div></li>",
                time(a.at),
                status(&a.status),
                a.dsn.as_deref().map_or(String::new(), esc),
                a.relay
                    .as_deref()
                    .map_or(String::new(), |x| format!("via {}", esc(x))),
                a.reason.as_deref().map_or(String::new(), |x| format!(
                    "({}{})",
                    esc(x),
                    match a.hard {
                        Some(true) => ", hard",
                        Some(false) => ", soft",
                        None => "",
                    }
                )),
                a.response.as_deref().map_or(String::new(), esc),
            ));
        }
        b.push_str("</ol></section>");
    }
    Ok(layout(
        &state,
        &format!("Message {}", m.queue_id),
        Some(&auth),
        &b,
    ))
}

fn window_links(w: &SearchParams) -> String {
    let mut s = String::from("<p>Window: ");
    for (name, _) in WINDOW_PRESETS {
        let current = !w.explicit_times && w.window.as_deref().unwrap_or("24h") == name;
        if current {
            s.push_str(&format!("<strong>last {name}</strong> "));
        } else {
            s.push_str(&format!(
                "<a href=\"/overview?window={name}\">last {name}</a> "
            ));
        }
    }
    s.push_str("</p>");
    s
}

async fn overview(
    State(state): State<AppState>,
    PageAuth(auth, conn): PageAuth,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let w = crate::api::window(raw.as_deref(), Strictness::Form)?;
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
    let range = |extra: &[(&str, &str)]| {
        let from = w.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let to = w.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut pairs = vec![("from", from.as_str()), ("to", to.as_str())];
        pairs.extend_from_slice(extra);
        format!("/search?{}", query(&pairs))
    };
    let mut b = format!(
        "<h1>Overview</h1>{}<p class=\"muted\">From {} to {}. <a href=\"/api/v1/overview?{}\">JSON</a></p>",
        window_links(&w),
        time(o.from),
        time(o.to),
        esc(&w.to_query(&[]))
    );
    b.push_str("<h2>Deliveries per hour by status</h2>");
    let points: Vec<charts::Point<'_>> = o
        .deliveries_per_hour
        .iter()
        .map(|p| charts::Point {
            hour: p.hour,
            series: &p.status,
            value: p.count,
        })
        .collect();
    b.push_str(&charts::hourly(
        "Recipient events per hour by status",
        o.from,
        o.to,
        &points,
        &STATUSES,
        &|h, s| charts::hour_search(h, Some(s)),
    ));
    b.push_str("<div class=\"legend\">");
    for s in STATUSES {
        b.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            esc(&range(&[("status", s)])),
            status(s)
        ));
    }
    b.push_str("</div><h2>NOQUEUE rejects per hour</h2>");
    let points: Vec<charts::Point<'_>> = o
        .rejects_per_hour
        .iter()
        .map(|p| charts::Point {
            hour: p.hour,
            series: "rejected",
            value: p.count,
        })
        .collect();
    b.push_str(&charts::hourly(
        "NOQUEUE rejects per hour",
        o.from,
        o.to,
        &points,
        &["rejected"],
        &|h, _| charts::hour_search(h, Some("rejected")),
    ));
    b.push_str("<div class=\"grid2\"><section><h2>Top failure reasons</h2>");
    if o.top_reasons.is_empty() {
        b.push_str("<p>No failures.</p>");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">Reason</th><th scope=\"col\">Kind</th><th scope=\"col\">Failures</th></tr></thead><tbody>");
        for r in &o.top_reasons {
            b.push_str(&format!(
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&range(&[("reason", &r.reason)])),
                esc(&r.reason),
                match r.hard {
                    Some(true) => "hard",
                    Some(false) => "soft",
                    None => "–",
                },
                r.count
            ));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section><section><h2>Top deferring destinations</h2>");
    if o.top_deferring.is_empty() {
        b.push_str("<p>No deferrals.</p>");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">Recipient domain</th><th scope=\"col\">Deferrals</th></tr></thead><tbody>");
        for d in &o.top_deferring {
            b.push_str(&format!(
                "<tr><td><a href=\"{}\">{}</a></td><td class=\"num\">{}</td></tr>",
                esc(&range(&[("domain", &d.domain), ("status", "deferred")])),
                esc(&d.domain),
                d.count
            ));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section></div><h2>Unclassified failures</h2>");
    if o.unclassified.is_empty() {
        b.push_str("<p>None: every failure in this window was classified.</p>");
    } else {
        b.push_str("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Count</th><th scope=\"col\">Pattern</th><th scope=\"col\">Last seen</th><th scope=\"col\">Example</th></tr></thead><tbody>");
        for u in &o.unclassified {
            let example = match &u.example_message {
                Some(api) => format!(
                    "<a href=\"{}\">{}</a>",
                    esc(&api.replacen("/api/v1/messages/", "/message/", 1)),
                    opt(u.example.as_deref())
                ),
                None => format!(
                    "{} <span class=\"muted\">(NOQUEUE)</span>",
                    opt(u.example.as_deref())
                ),
            };
            b.push_str(&format!("<tr><td class=\"num\">{}</td><td class=\"text\">{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                u.count, esc(&u.pattern), time(u.last_seen), example));
        }
        b.push_str("</tbody></table></div>");
    }
    if let Some(sasl) = &o.sasl_failures {
        b.push_str("<h2>SASL authentication failures</h2>");
        if sasl.is_empty() {
            b.push_str("<p>None.</p>");
        } else {
            b.push_str("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Client address</th><th scope=\"col\">Country</th><th scope=\"col\">Failures</th><th scope=\"col\">User names</th><th scope=\"col\">Last</th></tr></thead><tbody>");
            for s in sasl {
                b.push_str(&format!("<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    esc(&range(&[("client", &s.client_addr)])), esc(&s.client_addr), opt(s.country.as_deref()), s.failures, s.usernames, time(s.last_at)));
            }
            b.push_str("</tbody></table></div>");
        }
    }
    Ok(layout(&state, "Overview", Some(&auth), &b))
}
