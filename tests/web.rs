//! `pftrack serve` against a real PostgreSQL loaded from the scenario fixtures, over
//! real HTTP: login and logout, wrong credentials, rate limits, CSRF, headers, scopes
//! (page, API and direct URL), every API response validated against the OpenAPI
//! document by a JSON Schema validator, hostile parameters, bearer tokens, CSV, the
//! audit log, and the read-only database role.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{TestDb, fixture, pftrack, psql};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

static ROLES: AtomicU32 = AtomicU32::new(0);

const ADMIN_PW: &str = "admin-password-1";
const DOMAIN_PW: &str = "domain-password-1";
const NET_PW: &str = "net-password-123";
const SELF_PW: &str = "self-password-12";
/// The fixtures' window (the scenarios are logged in March 2025).
const WINDOW: &str = "from=2025-03-01T00:00:00Z&to=2025-03-31T00:00:00Z";

/// A login role that is a member of pftrack_web_read, dropped at the end.
struct LoginRole {
    name: String,
    password: String,
}

impl LoginRole {
    fn new(db: &TestDb, member: bool) -> LoginRole {
        let n = ROLES.fetch_add(1, Ordering::SeqCst);
        let name = format!("pftrack_web_t{}_{n}", std::process::id());
        let password = format!("pw{}x{n}", std::process::id());
        let mut sql = format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'");
        if member {
            sql.push_str(" IN ROLE pftrack_web_read");
        }
        db.query(&sql);
        LoginRole { name, password }
    }

    fn url(&self, db: &TestDb) -> String {
        format!(
            "host=127.0.0.1 sslmode=disable user={} password={} dbname={}",
            self.name, self.password, db.name
        )
    }
}

impl Drop for LoginRole {
    fn drop(&mut self) {
        let _ =
            Command::new("psql")
                .arg(std::env::var("PFTRACK_TEST_ADMIN_URL").unwrap_or_else(|_| {
                    "host=/var/run/postgresql user=root dbname=postgres".into()
                }))
                .args([
                    "-X",
                    "-q",
                    "-c",
                    &format!("DROP ROLE IF EXISTS {}", self.name),
                ])
                .output();
    }
}

/// A running `pftrack serve`.
struct Server {
    child: Child,
    url: String,
    /// The server's stderr (a file: an unread pipe could fill up and stall it).
    log: std::path::PathBuf,
}

impl Server {
    fn start(database_url: &str, extra: &[&str]) -> Result<Server, String> {
        let n = ROLES.fetch_add(1, Ordering::SeqCst);
        let log =
            std::env::temp_dir().join(format!("pftrack-web-test-{}-{n}.log", std::process::id()));
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = pftrack()
            .args(["serve", "--database-url", database_url])
            .args(listen)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("pftrack serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads stdout");
        match line.trim().strip_prefix("pftrack serve: listening on ") {
            Some(url) => Ok(Server {
                child,
                url: url.to_owned(),
                log,
            }),
            None => {
                let _ = child.wait();
                let err = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                Err(err)
            }
        }
    }

    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn add_user(db: &TestDb, name: &str, role: &str, scope: &[&str], password: &str) {
    let mut args = vec![
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        "--database-url",
        &db.url,
    ];
    for s in scope {
        args.extend(["--scope", s]);
    }
    let mut child = pftrack()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pftrack user add runs");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("password written");
    let out = child.wait_with_output().expect("user add ends");
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database with every scenario (but new_year) loaded, users, a login role and a
/// server working through it.
struct World {
    server: Server,
    _role: LoginRole,
    db: TestDb,
    http: reqwest::Client,
}

impl World {
    fn new(label: &str) -> World {
        let db = TestDb::new(label);
        common::run_ok(&["migrate", "--database-url", &db.url]);
        for s in common::SCENARIOS.iter().filter(|s| **s != "new_year") {
            common::backfill(&db, &fixture(&format!("scenarios/{s}.log")), &[]);
        }
        add_user(&db, "admin", "admin", &[], ADMIN_PW);
        add_user(&db, "dom", "domain", &["example.com"], DOMAIN_PW);
        add_user(&db, "net", "domain", &["example.net"], NET_PW);
        add_user(&db, "bob", "self", &["bob@mx1.example.com"], SELF_PW);
        let role = LoginRole::new(&db, true);
        let server = Server::start(&role.url(&db), &[]).expect("serve starts as the web role");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        World {
            server,
            _role: role,
            db,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    async fn get(&self, path: &str, session: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(self.url(path));
        if let Some(s) = session {
            r = r.header("cookie", format!("pftrack_session={s}"));
        }
        r.send().await.expect("request")
    }

    async fn json(&self, path: &str, session: &str) -> (StatusCode, Value) {
        let r = self.get(path, Some(session)).await;
        let status = r.status();
        (status, r.json().await.expect("JSON body"))
    }

    /// Log in; returns the session token and the session's CSRF token.
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self.try_login(user, password).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
        let session = cookie_value(r.headers(), "pftrack_session").expect("session cookie");
        let page = self
            .get("/search", Some(&session))
            .await
            .text()
            .await
            .expect("page");
        let csrf = hidden_csrf(&page).expect("csrf field on the page");
        (session, csrf)
    }

    async fn try_login(&self, user: &str, password: &str) -> reqwest::Response {
        let form = self.get("/login", None).await;
        let cookie = cookie_value(form.headers(), "pftrack_login_csrf").expect("login csrf cookie");
        let page = form.text().await.expect("login page");
        let csrf = hidden_csrf(&page).expect("csrf field");
        assert_eq!(csrf, cookie);
        self.http
            .post(self.url("/login"))
            .header("cookie", format!("pftrack_login_csrf={cookie}"))
            .form(&[("user", user), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .expect("login post")
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn hidden_csrf(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}

fn assert_security_headers(path: &str, h: &HeaderMap) {
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{path}: CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{path}: {csp}");
    assert_eq!(
        h.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{path}"
    );
    assert_eq!(
        h.get("referrer-policy").map(|v| v.as_bytes()),
        Some(&b"same-origin"[..]),
        "{path}"
    );
    assert_eq!(
        h.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..]),
        "{path}"
    );
}

/// No inline script, inline style or event handler attribute, no external URL.
fn assert_no_inline(path: &str, html: &str) {
    let lower = html.to_lowercase();
    assert!(!lower.contains(" style="), "{path}: inline style");
    assert!(!lower.contains("<style"), "{path}: style element");
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap_or(0)];
        assert!(
            tag.contains(" src=\"/static/"),
            "{path}: inline script {tag}"
        );
    }
    assert!(!regex_like_handler(&lower), "{path}: an on…= handler");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
        assert!(!lower.contains(attr), "{path}: external reference {attr}");
    }
}

fn regex_like_handler(html: &str) -> bool {
    html.split(|c: char| c.is_whitespace()).any(|w| {
        w.starts_with("on")
            && w.contains('=')
            && w[2..w.find('=').unwrap_or(2)]
                .chars()
                .all(|c| c.is_ascii_lowercase())
            && w.find('=').unwrap_or(0) > 3
    })
}

/// The OpenAPI document and a validator for one of its schemas.
struct Spec(Value);

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(common::repo().join("crates/web/openapi.json"))
            .expect("openapi.json");
        Spec(serde_json::from_str(&text).expect("openapi.json is JSON"))
    }

    /// Validate `body` against the response schema of `path` (a template of the
    /// document), `status` and `content_type`.
    fn check(&self, template: &str, status: StatusCode, content_type: &str, body: &Value) {
        let responses = &self.0["paths"][template]["get"]["responses"];
        let schema = &responses[status.as_str()]["content"][content_type]["schema"];
        assert!(
            !schema.is_null(),
            "openapi.json documents no {status} {content_type} response for {template}"
        );
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.0["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::validator_for(&root).expect("a valid JSON Schema");
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{template} {status}: the body does not match openapi.json:\n{}\n{body:#}",
            errors.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_logout_csrf_headers_and_rate_limit() {
    let w = World::new("web_login");

    // Without a session: pages go to the login form, the API answers 401 problem+json.
    let r = w.get("/search", None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = w.get("/api/v1/search", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("www-authenticate"));

    // Wrong password, unknown user: 401, no session cookie.
    for (user, pw) in [("admin", "wrong-password"), ("nobody", ADMIN_PW)] {
        let r = w.try_login(user, pw).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{user}");
        assert!(cookie_value(r.headers(), "pftrack_session").is_none());
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Wrong user name or password")
        );
    }

    // Login: the cookie is HttpOnly and SameSite=Strict.
    let r = w.try_login("admin", ADMIN_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("pftrack_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    let (session, csrf) = w.login("admin", ADMIN_PW).await;

    // Every page and API answer carries the headers; pages have no inline code.
    let css_js: Vec<String>;
    {
        let page = w.get(&format!("/search?{WINDOW}"), Some(&session)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        css_js = html
            .match_indices("/static/app-")
            .map(|(i, _)| html[i..].split('"').next().unwrap().to_owned())
            .collect();
    }
    assert_eq!(css_js.len(), 2, "one stylesheet and one script");
    for path in [
        "/login".to_owned(),
        format!("/search?{WINDOW}"),
        format!("/overview?{WINDOW}"),
        "/message/mx1/2D9E8F7A6B/2025-03-14T07:00:01Z".to_owned(),
        "/api/v1/me".to_owned(),
        "/nope".to_owned(),
    ] {
        let r = w.get(&path, Some(&session)).await;
        assert!(
            r.status().is_success() || r.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            r.status()
        );
        assert_security_headers(&path, r.headers());
        if r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
        {
            assert_no_inline(&path, &r.text().await.unwrap());
        }
    }
    for asset in &css_js {
        let r = w.get(asset, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_security_headers(asset, r.headers());
    }

    // CSRF: logout without the token, with a wrong one, or from another origin is
    // refused; the login form without its cookie too.
    for (token, origin) in [
        ("", None),
        ("wrong", None),
        (csrf.as_str(), Some("https://evil.example")),
    ] {
        let mut req = w
            .http
            .post(w.url("/logout"))
            .header("cookie", format!("pftrack_session={session}"))
            .form(&[("csrf", token)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "csrf {token:?} origin {origin:?}"
        );
    }
    let r = w
        .http
        .post(w.url("/login"))
        .form(&[("user", "admin"), ("password", ADMIN_PW), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        w.get("/api/v1/me", Some(&session)).await.status(),
        StatusCode::OK,
        "still logged in"
    );

    // Logout: the session is gone on the server.
    let r = w
        .http
        .post(w.url("/logout"))
        .header("cookie", format!("pftrack_session={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        w.get("/api/v1/me", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.db.query("SELECT count(*) FROM web_session s JOIN web_user u ON u.id = s.user_id WHERE u.name = 'admin'").trim(), "1", "the other session remains");

    // Rate limit per user: after 5 failures even the right password is refused (429).
    for _ in 0..5 {
        assert_eq!(
            w.try_login("dom", "wrong-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = w.try_login("dom", DOMAIN_PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Another user from the same address still logs in.
    w.login("net", NET_PW).await;

    // The audit log has the logins, the failures and the searches.
    let audit =
        w.db.query("SELECT action, count(*) FROM web_audit GROUP BY 1 ORDER BY 1");
    for action in [
        "login|",
        "login_failed|",
        "login_refused|",
        "logout|",
        "search|",
        "message|",
        "overview|",
    ] {
        assert!(audit.contains(action), "audit lacks {action}: {audit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_address_and_bearer_tokens() {
    let w = World::new("web_limits");
    let out = common::run_ok(&[
        "user",
        "token",
        "add",
        "admin",
        "script",
        "--database-url",
        &w.db.url,
    ]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pft_"), "{token}");
    assert!(
        !w.db
            .query("SELECT encode(token_hash, 'hex') FROM web_token")
            .contains(&token)
    );
    let r = w
        .http
        .get(w.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "admin");
    // A page is for browsers: a bearer token does not open it.
    let r = w
        .http
        .get(w.url("/search"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Wrong tokens: 401; after 20 from one address, 429 for everyone there.
    for i in 0..20 {
        let r = w
            .http
            .get(w.url("/api/v1/me"))
            .bearer_auth(format!("pft_wrong{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = w
        .http
        .get(w.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        w.try_login("net", NET_PW).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A revoked token is refused (checked on a fresh server: the old one's address
    // is still blocked).
    common::run_ok(&[
        "user",
        "token",
        "remove",
        "admin",
        "script",
        "--database-url",
        &w.db.url,
    ]);
    assert_eq!(w.db.query("SELECT count(*) FROM web_token").trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_hide_what_is_not_yours() {
    let w = World::new("web_scopes");
    let (admin, _) = w.login("admin", ADMIN_PW).await;
    let (dom, _) = w.login("dom", DOMAIN_PW).await;
    let (net, _) = w.login("net", NET_PW).await;
    let (bob, _) = w.login("bob", SELF_PW).await;
    let recipients = |v: &Value| -> Vec<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recipient"].as_str().unwrap().to_owned())
            .collect()
    };

    // bob@mx1.example.com: the admin finds it, the example.com user does not.
    let q = format!("/api/v1/search?recipient=bob@mx1.example.com&{WINDOW}");
    let (s, all) = w.json(&q, &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert!(recipients(&all).len() >= 5, "{all}");
    let (s, none) = w.json(&q, &dom).await;
    assert_eq!(s, StatusCode::OK);
    assert!(recipients(&none).is_empty(), "{none}");
    let page = w
        .get(
            &format!("/search?recipient=bob@mx1.example.com&{WINDOW}"),
            Some(&dom),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("No mail matches") && !page.contains("4BC7D1A0F3"));
    // bob himself sees only his own rows.
    let (_, mine) = w
        .json(&format!("/api/v1/search?{WINDOW}&limit=500"), &bob)
        .await;
    let mine = recipients(&mine);
    assert!(
        !mine.is_empty() && mine.iter().all(|r| r == "bob@mx1.example.com"),
        "{mine:?}"
    );

    // Its message, by URL and by API: 404 for the domain user, 200 for the admin.
    let msg = "mx1/4BC7D1A0F3/2025-03-14T06:25:01Z";
    assert_eq!(
        w.get(&format!("/api/v1/messages/{msg}"), Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        w.get(&format!("/message/{msg}"), Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    let r = w.get(&format!("/api/v1/messages/{msg}"), Some(&dom)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        w.get(&format!("/message/{msg}"), Some(&dom)).await.status(),
        StatusCode::NOT_FOUND
    );

    // A message with recipients in two domains: the example.net user sees only the
    // example.net recipients and not the NDR (to alice@example.com); the sender's
    // domain (example.com) sees all three and the NDR.
    let multi = "/api/v1/messages/mx1/2D9E8F7A6B/2025-03-14T07:00:01Z";
    let (s, m) = w.json(multi, &net).await;
    assert_eq!(s, StatusCode::OK);
    let rcpts: Vec<&str> = m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(rcpts, ["carol@example.net", "dan@example.net"]);
    assert!(m["links"].as_array().unwrap().is_empty(), "{m}");
    let (_, m) = w.json(multi, &dom).await;
    assert_eq!(m["recipients"].as_array().unwrap().len(), 3);
    let links = m["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["kind"], "non_delivery");
    assert_eq!(links[0]["queue_id"], "3E0F1A2B3C");
    // The NDR's page links back to its parent; the bounced recipient shows its attempt.
    let (_, ndr) = w.json(links[0]["message"].as_str().unwrap(), &dom).await;
    assert_eq!(ndr["links"][0]["relation"], "parent");
    let page = w
        .get("/message/mx1/2D9E8F7A6B/2025-03-14T07:00:01Z", Some(&dom))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("non-delivery notification (NDR)")
            && page.contains("/message/mx1/3E0F1A2B3C/"),
        "{page}"
    );
    assert!(page.contains("status-bounced"));

    // The overview counts only what is in scope; SASL failures only for admins.
    let (_, o_admin) = w.json(&format!("/api/v1/overview?{WINDOW}"), &admin).await;
    let (_, o_dom) = w.json(&format!("/api/v1/overview?{WINDOW}"), &dom).await;
    let total = |o: &Value| {
        o["deliveries_per_hour"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["count"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert!(
        total(&o_dom) > 0 && total(&o_dom) < total(&o_admin),
        "{} {}",
        total(&o_dom),
        total(&o_admin)
    );
    assert!(o_admin["sasl_failures"].is_array());
    assert!(o_dom["sasl_failures"].is_null());

    // CSV of the domain user holds the same rows as its JSON search.
    let (_, json) = w
        .json(&format!("/api/v1/search?{WINDOW}&limit=500"), &dom)
        .await;
    let r = w
        .get(&format!("/api/v1/search.csv?{WINDOW}"), Some(&dom))
        .await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("arrived_at,host,queue_id,"));
    assert_eq!(
        csv.lines().count() - 1,
        json["rows"].as_array().unwrap().len()
    );
    assert!(!csv.contains("bob@mx1.example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_matches_openapi_and_refuses_bad_input() {
    let w = World::new("web_api");
    let spec = Spec::load();
    let (admin, _) = w.login("admin", ADMIN_PW).await;
    let (dom, _) = w.login("dom", DOMAIN_PW).await;

    let (s, doc) = w.json("/api/v1/openapi.json", &admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc, spec.0);

    // Every endpoint, for two roles, validated against its schema.
    let mut message_urls = Vec::new();
    for session in [&admin, &dom] {
        for (template, path) in [
            ("/search", format!("/search?{WINDOW}")),
            ("/search", format!("/search?{WINDOW}&sort=status&limit=3")),
            (
                "/search",
                format!("/search?{WINDOW}&status=bounced,expired&sort=-recipient"),
            ),
            ("/search", format!("/search?{WINDOW}&sender=%3C%3E")),
            (
                "/search",
                format!("/search?{WINDOW}&id=20250315080040.7E8F9A0B1C@mx1.example.com"),
            ),
            (
                "/search",
                format!("/search?{WINDOW}&client=198.51.100.2&domain=example.com"),
            ),
            ("/overview", format!("/overview?{WINDOW}")),
            ("/overview", "/overview?window=7d".to_owned()),
            ("/unclassified", format!("/unclassified?{WINDOW}")),
            ("/me", "/me".to_owned()),
        ] {
            let (status, body) = w.json(&format!("/api/v1{path}"), session).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            spec.check(template, status, "application/json", &body);
            if template == "/search" {
                for row in body["rows"].as_array().unwrap() {
                    message_urls.push(row["message"].as_str().unwrap().to_owned());
                }
            }
        }
        // Keyset pages: every row once, in order, whatever the page size.
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let after = next
                .as_deref()
                .map_or(String::new(), |n| format!("&after={n}"));
            let (status, body) = w
                .json(
                    &format!("/api/v1/search?{WINDOW}&limit=4&sort=sender{after}"),
                    session,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            spec.check("/search", status, "application/json", &body);
            for r in body["rows"].as_array().unwrap() {
                seen.push(format!("{}|{}", r["message"], r["recipient"]));
            }
            match body["next"].as_str() {
                Some(n) => next = Some(n.to_owned()),
                None => break,
            }
        }
        let (_, all) = w
            .json(
                &format!("/api/v1/search?{WINDOW}&limit=500&sort=sender"),
                session,
            )
            .await;
        let all: Vec<String> = all["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}|{}", r["message"], r["recipient"]))
            .collect();
        assert_eq!(seen, all, "keyset pages cover the rows exactly once");
    }
    // Recipient searches run as two arms (recipient, original recipient) merged: in
    // every order, pages of two rows hold exactly the rows of one big page, and those
    // are every row the address has in the window, by either name, once.
    let address_of = |sql: &str| w.db.query(sql).trim().to_owned();
    let busiest = address_of(
        "SELECT lower(recipient) FROM delivery_to GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    );
    let alias = address_of(
        "SELECT lower(orig_recipient) FROM delivery_to WHERE orig_recipient <> '' \
         GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    );
    assert!(!alias.is_empty(), "the fixtures have an alias expansion");
    for address in [&busiest, &alias] {
        let expected: usize =
            w.db.query(&format!(
                "SELECT count(*) FROM delivery_to WHERE (lower(recipient) = '{address}' \
                 OR lower(orig_recipient) = '{address}') \
                 AND arrived_at >= '2025-03-01T00:00:00Z' AND arrived_at < '2025-03-31T00:00:00Z'"
            ))
            .trim()
            .parse()
            .unwrap();
        assert!(expected >= 2, "{address}: {expected} rows");
        for sort in ["-time", "time", "status", "-recipient"] {
            let search = format!("/api/v1/search?{WINDOW}&recipient={address}&sort={sort}");
            let mut seen = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let after = next
                    .as_deref()
                    .map_or(String::new(), |n| format!("&after={n}"));
                let (status, body) = w.json(&format!("{search}&limit=2{after}"), &admin).await;
                assert_eq!(status, StatusCode::OK, "{search}: {body}");
                for r in body["rows"].as_array().unwrap() {
                    seen.push(format!(
                        "{}|{}|{}",
                        r["message"], r["recipient"], r["orig_recipient"]
                    ));
                }
                match body["next"].as_str() {
                    Some(n) => next = Some(n.to_owned()),
                    None => break,
                }
            }
            let (_, all) = w.json(&format!("{search}&limit=500"), &admin).await;
            let all: Vec<String> = all["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{}|{}|{}",
                        r["message"], r["recipient"], r["orig_recipient"]
                    )
                })
                .collect();
            assert_eq!(seen, all, "{search}: keyset pages");
            assert_eq!(all.len(), expected, "{search}: every row by either name");
        }
    }
    message_urls.sort();
    message_urls.dedup();
    assert!(message_urls.len() >= 10);
    for url in &message_urls {
        let (status, body) = w.json(url, &admin).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        spec.check(
            "/messages/{host}/{queue_id}/{arrived_at}",
            status,
            "application/json",
            &body,
        );
    }

    // Hostile input: 4xx problem+json, never 5xx.
    let long = "x".repeat(600);
    let hostile = [
        "/api/v1/search?limit=0".to_owned(),
        "/api/v1/search?limit=100000".to_owned(),
        "/api/v1/search?limit=-1".to_owned(),
        "/api/v1/search?from=2020-01-01&to=2025-01-01".to_owned(),
        "/api/v1/search?from=tomorrow".to_owned(),
        "/api/v1/search?to=2025-01-01&from=2025-02-01".to_owned(),
        "/api/v1/search?status=gone".to_owned(),
        "/api/v1/search?sort=size".to_owned(),
        "/api/v1/search?after=bm90IGEgY3Vyc29y".to_owned(),
        "/api/v1/search?after=%00%FF".to_owned(),
        "/api/v1/search?recipient=%00".to_owned(),
        format!("/api/v1/search?sender={long}"),
        "/api/v1/search?reason=%27%3B%20DROP%20TABLE%20web_user%3B--".to_owned(),
        "/api/v1/search?x=1".to_owned(),
        "/api/v1/search.csv?window=1y".to_owned(),
        "/api/v1/overview?recipient=a".to_owned(),
        "/api/v1/unclassified?from=x".to_owned(),
        "/api/v1/messages/mx1/ABC/not-a-time".to_owned(),
        "/api/v1/messages/mx1/ABC/2025-03-14T06:25:01Z".to_owned(),
        format!("/api/v1/messages/mx1/{long}/2025-03-14T06:25:01Z"),
        "/api/v1/messages/%00/%FF/2025-03-14T06:25:01Z".to_owned(),
        "/api/v1/nothing".to_owned(),
    ];
    for path in &hostile {
        let r = w.get(path, Some(&admin)).await;
        let status = r.status();
        assert!(status.is_client_error(), "{path}: {status}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], status.as_u16());
        let template = if path.starts_with("/api/v1/messages/") {
            "/messages/{host}/{queue_id}/{arrived_at}"
        } else {
            "/search"
        };
        if path.starts_with("/api/v1/search?") || template != "/search" {
            spec.check(template, status, "application/problem+json", &body);
        }
    }
    // The API takes a parameter as given: an empty, padded or malformed value, an empty
    // list item or a single value given twice is a 400 whose `invalid-params` names the
    // parameter (and `detail` says what it accepts)...
    for (path, template, name) in [
        ("/api/v1/search?window=", "/search", "window"),
        ("/api/v1/search?sort=", "/search", "sort"),
        ("/api/v1/search?limit=", "/search", "limit"),
        ("/api/v1/search?limit=%2B5", "/search", "limit"),
        ("/api/v1/search?status=sent,", "/search", "status"),
        ("/api/v1/search?recipient=", "/search", "recipient"),
        ("/api/v1/search?after=", "/search", "after"),
        ("/api/v1/search?window=1h&window=7d", "/search", "window"),
        ("/api/v1/search?window=%207d", "/search", "window"),
        ("/api/v1/search.csv?from=", "/search.csv", "from"),
        ("/api/v1/overview?window=", "/overview", "window"),
        (
            "/api/v1/unclassified?to=2025-03-14t00:00:00Z",
            "/unclassified",
            "to",
        ),
        (
            "/api/v1/messages/mx1/ABC/2025-03-14%2006:25:01Z",
            "/messages/{host}/{queue_id}/{arrived_at}",
            "arrived_at",
        ),
    ] {
        let r = w.get(path, Some(&admin)).await;
        let status = r.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["invalid-params"][0]["name"], name, "{path}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{name}: ")), "{path}: {detail}");
        spec.check(template, status, "application/problem+json", &body);
    }
    // ...while the pages' search form sends its empty fields, which mean "not given".
    assert_eq!(
        w.get(
            &format!("/search?{WINDOW}&window=&sort=&limit=&recipient=&status=&after="),
            Some(&admin)
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        w.get("/overview?window=&from=&to=", Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    // Odd but harmless input (invalid UTF-8 is read lossily): an answer, never a 5xx.
    for path in [
        "/api/v1/search?recipient=%FF%FE",
        "/api/v1/search?id=%3C%3E",
        "/api/v1/search?client=%E2%80%AE",
        "/search?domain=%F0%9F%92%A9",
    ] {
        let status = w.get(path, Some(&admin)).await.status();
        assert!(
            status.is_success() || status.is_client_error(),
            "{path}: {status}"
        );
    }
    // Pages answer bad parameters with a 400 page.
    assert_eq!(
        w.get("/search?limit=0", Some(&admin)).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        w.get("/overview?from=x", Some(&admin)).await.status(),
        StatusCode::BAD_REQUEST
    );
    // A huge body is refused before it is read (the server then closes that
    // connection: a client of its own, so the shared one keeps no broken connection).
    let r = reqwest::Client::new()
        .post(w.url("/login"))
        .body(vec![b'a'; 1 << 20])
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Garbage forms.
    let r = w
        .http
        .post(w.url("/login"))
        .body("user=%FF&password")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // The server is still fine, and no request failed on its side.
    assert_eq!(
        w.get("/api/v1/me", Some(&admin)).await.status(),
        StatusCode::OK
    );
    let log = w.server.log();
    assert!(!log.contains("Request failed"), "{log}");
}

#[test]
fn serve_works_only_as_a_read_only_role() {
    let db = TestDb::new("web_role");
    common::run_ok(&["migrate", "--database-url", &db.url]);
    common::backfill(&db, &fixture("scenarios/single_delivery.log"), &[]);
    let role = LoginRole::new(&db, true);
    let url = role.url(&db);
    // As the login role (a member of pftrack_web_read): reads work, writes to the
    // delivery tables and to users are refused by PostgreSQL.
    assert_eq!(
        psql(&url, "SELECT count(*) > 0 FROM delivery_to").trim(),
        "t"
    );
    for sql in [
        "INSERT INTO delivery_to (host, queue_id, arrived_at, recipient, status, status_at) VALUES ('h', 'q', now(), 'r', 'sent', now())",
        "UPDATE delivery_from SET sender = 'x'",
        "DELETE FROM delivery_attempt",
        "DELETE FROM noqueue",
        "UPDATE web_user SET role = 'admin'",
        "INSERT INTO web_user (name, role, password_hash) VALUES ('evil', 'admin', 'x')",
        "TRUNCATE web_audit",
        "DELETE FROM web_audit",
    ] {
        let out = Command::new("psql")
            .arg(&url)
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{sql} succeeded");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("permission denied"),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What serve needs to write is allowed.
    psql(
        &url,
        "INSERT INTO web_audit (user_name, action) VALUES ('t', 'test')",
    );
    // serve starts as that role.
    let server = Server::start(&url, &[]).expect("serve starts as the web role");
    drop(server);
    // A login role outside pftrack_web_read cannot SET ROLE: serve refuses, and says why.
    let outsider = LoginRole::new(&db, false);
    let err = Server::start(&outsider.url(&db), &[])
        .err()
        .expect("serve refuses");
    assert!(
        err.contains("pftrack_web_read") && err.contains("docs/web.md"),
        "{err}"
    );
}

#[test]
fn migrate_applies_v10_to_a_database_that_has_later_migrations() {
    // Migration numbers are reserved per feature and land out of order: a database
    // migrated before V10 landed has V11 and V12 but not V10.
    let db = TestDb::new("web_migrate_gap");
    common::run_ok(&["migrate", "--database-url", &db.url]);
    db.query(
        "DROP TABLE web_audit, web_token, web_session, web_user; \
         DROP FUNCTION pftrack_web_grants(); \
         DELETE FROM refinery_schema_history WHERE version = 10",
    );
    assert!(
        db.query("SELECT max(version) FROM refinery_schema_history")
            .trim()
            .parse::<i32>()
            .unwrap()
            > 10
    );
    common::run_ok(&["migrate", "--database-url", &db.url]);
    assert_eq!(
        db.query("SELECT to_regclass('web_user') IS NOT NULL")
            .trim(),
        "t"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM refinery_schema_history WHERE version = 10")
            .trim(),
        "1"
    );
    // refinery accepts the history written for it: a second run applies nothing.
    let out = common::run_ok(&["migrate", "--database-url", &db.url]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0 migration"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands() {
    let w = World::new("web_users");
    let url = w.db.url.clone();
    let fails = |args: &[&str], stdin: &str| -> String {
        let mut child = pftrack()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{stdin}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Mistakes are refused with a reason, and nothing is stored.
    let err = fails(
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        "another-password-1",
    );
    assert!(err.contains("exists already"), "{err}");
    let err = fails(
        &[
            "user",
            "add",
            "x",
            "--role",
            "domain",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        "long-enough-password",
    );
    assert!(err.contains("--scope"), "{err}");
    let err = fails(
        &[
            "user",
            "add",
            "x",
            "--role",
            "self",
            "--scope",
            "example.com",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        "long-enough-password",
    );
    assert!(err.contains("an address"), "{err}");
    let err = fails(
        &[
            "user",
            "add",
            "x",
            "--role",
            "root",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        "long-enough-password",
    );
    assert!(err.contains("role"), "{err}");
    let err = fails(
        &[
            "user",
            "add",
            "x",
            "--role",
            "admin",
            "--password-stdin",
            "--database-url",
            &url,
        ],
        "short",
    );
    assert!(err.contains("password"), "{err}");
    let err = fails(&["user", "remove", "nobody", "--database-url", &url], "");
    assert!(err.contains("no such user"), "{err}");
    // No password on the command line: there is no such option.
    let err = fails(
        &[
            "user",
            "add",
            "x",
            "--role",
            "admin",
            "--password",
            "pw-on-argv-1",
            "--database-url",
            &url,
        ],
        "",
    );
    assert!(err.contains("--password"), "{err}");

    let out = common::run_ok(&["user", "list", "--json", "--database-url", &url]);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "bob", "dom", "net"]);
    assert_eq!(users[2]["scope"], serde_json::json!(["example.com"]));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("argon2"),
        "no hashes listed"
    );
    assert!(
        w.db.query("SELECT password_hash FROM web_user WHERE name = 'dom'")
            .starts_with("$argon2id$")
    );

    // passwd: the old password stops working and the user's sessions end.
    let (session, _) = w.login("dom", DOMAIN_PW).await;
    let mut child = pftrack()
        .args([
            "user",
            "passwd",
            "dom",
            "--password-stdin",
            "--database-url",
            &url,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "a-new-password-2").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        w.get("/api/v1/me", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.try_login("dom", DOMAIN_PW).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (session, _) = w.login("dom", "a-new-password-2").await;
    // remove: the session and the tokens go with the user.
    common::run_ok(&[
        "user",
        "token",
        "add",
        "dom",
        "t1",
        "--expires",
        "1d",
        "--database-url",
        &url,
    ]);
    let out = common::run_ok(&["user", "token", "list", "dom", "--database-url", &url]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("t1\t"));
    common::run_ok(&["user", "remove", "dom", "--database-url", &url]);
    assert_eq!(
        w.get("/api/v1/me", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.db.query("SELECT count(*) FROM web_token").trim(), "0");
    // The unclassified list answers on its own.
    let (admin, _) = w.login("admin", ADMIN_PW).await;
    let (status, body) = w
        .json(&format!("/api/v1/unclassified?{WINDOW}"), &admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    Spec::load().check("/unclassified", status, "application/json", &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_only_from_trusted_proxies() {
    let w = World::new("web_proxy");
    // The default server trusts no proxy: X-Forwarded-* are ignored.
    let form = w.get("/login", None).await;
    let csrf = cookie_value(form.headers(), "pftrack_login_csrf").unwrap();
    let r = w
        .http
        .post(w.url("/login"))
        .header("cookie", format!("pftrack_login_csrf={csrf}"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .form(&[("user", "admin"), ("password", ADMIN_PW), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("pftrack_session=") && !c.contains("Secure")),
        "{set:?}"
    );
    assert_eq!(
        w.db.query("SELECT client_addr FROM web_audit WHERE action = 'login'")
            .trim(),
        "127.0.0.1"
    );
    // A forged X-Forwarded-Host does not make a cross-site Origin look same-site.
    let form = w.get("/login", None).await;
    let csrf = cookie_value(form.headers(), "pftrack_login_csrf").unwrap();
    let r = w
        .http
        .post(w.url("/login"))
        .header("cookie", format!("pftrack_login_csrf={csrf}"))
        .header("origin", "https://evil.example")
        .header("x-forwarded-host", "evil.example")
        .form(&[("user", "admin"), ("password", ADMIN_PW), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The per-address limit counts the peer, whatever X-Forwarded-For it sends: 20
    // wrong bearer tokens, each "from" another address, block 127.0.0.1.
    let token = bearer_token(&w.db, "admin");
    for i in 0..20 {
        let r = w
            .http
            .get(w.url("/api/v1/me"))
            .bearer_auth(format!("pft_wrong{i}"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = w
        .http
        .get(w.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "198.51.100.200")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // A server behind a trusted proxy at 127.0.0.1: the client is the forwarded address
    // (the rightmost untrusted one), and https makes the cookie Secure and __Host-.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(
        &config,
        "web:\n  trusted_proxies: [\"127.0.0.1\", \"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let role = LoginRole::new(&w.db, true);
    let proxied = Server::start(&role.url(&w.db), &["--config", config.to_str().unwrap()]).unwrap();
    let url = |p: &str| format!("{}{p}", proxied.url);
    let form = w
        .http
        .get(url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let csrf =
        cookie_value(form.headers(), "__Host-pftrack_login_csrf").expect("secure login cookie");
    // The Origin is the public name the proxy forwards (X-Forwarded-Host), not the
    // Host pftrack sees (127.0.0.1:port): believed from the trusted proxy.
    let r = w
        .http
        .post(url("/login"))
        .header("cookie", format!("__Host-pftrack_login_csrf={csrf}"))
        .header("origin", "https://mail-tracking.example")
        .header("x-forwarded-host", "mail-tracking.example")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.77, 10.1.2.3")
        .header("x-forwarded-proto", "https")
        .form(&[("user", "net"), ("password", NET_PW), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter()
            .any(|c| c.starts_with("__Host-pftrack_session=") && c.contains("; Secure")),
        "{set:?}"
    );
    assert_eq!(
        w.db.query(
            "SELECT client_addr FROM web_audit WHERE action = 'login' AND user_name = 'net'"
        )
        .trim(),
        "203.0.113.77"
    );
    // A form post whose Origin names another site is refused even through the proxy.
    let session = cookie_value(r.headers(), "__Host-pftrack_session").unwrap();
    let r = w
        .http
        .post(url("/logout"))
        .header("cookie", format!("__Host-pftrack_session={session}"))
        .header("origin", "https://evil.example")
        .header("x-forwarded-host", "mail-tracking.example")
        .header("x-forwarded-proto", "https")
        .form(&[("csrf", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Through the trusted proxy the per-address limit counts the forwarded client:
    // 20 wrong tokens from 203.0.113.50 block it, not 203.0.113.51 behind the same proxy.
    for i in 0..20 {
        let r = w
            .http
            .get(url("/api/v1/me"))
            .bearer_auth(format!("pft_wrong{i}"))
            .header("x-forwarded-for", "203.0.113.50")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for (client, expected) in [
        ("203.0.113.50", StatusCode::TOO_MANY_REQUESTS),
        ("203.0.113.51", StatusCode::OK),
    ] {
        let r = w
            .http
            .get(url("/api/v1/me"))
            .bearer_auth(&token)
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{client}");
    }
}

/// A bearer token of `user`, made by `pftrack user token add`.
fn bearer_token(db: &TestDb, user: &str) -> String {
    let out = common::run_ok(&[
        "user",
        "token",
        "add",
        user,
        &format!("t{}", ROLES.fetch_add(1, Ordering::SeqCst)),
        "--database-url",
        &db.url,
    ]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn serves_on_a_unix_socket() {
    let db = TestDb::new("web_unix");
    common::run_ok(&["migrate", "--database-url", &db.url]);
    let role = LoginRole::new(&db, true);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("web.sock");
    // A regular file where the socket goes is not removed: serve refuses.
    std::fs::write(&socket, "not a socket").unwrap();
    let listen = format!("unix:{}", socket.display());
    let err = Server::start(&role.url(&db), &["--listen", &listen])
        .err()
        .unwrap();
    assert!(err.contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
    // A socket left by an earlier run is replaced.
    std::fs::remove_file(&socket).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let server = Server::start(&role.url(&db), &["--listen", &listen]).unwrap();
    assert_eq!(server.url, listen);
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let out = Command::new("curl")
        .args(["-s", "-i", "--unix-socket"])
        .arg(&socket)
        .arg("http://pftrack.local/login")
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-security-policy:"), "{text}");
    assert!(text.contains("name=\"csrf\""), "{text}");
    // Peers on the socket are not trusted proxies unless configured: a forged
    // X-Forwarded-Proto does not make the cookie Secure; configured, it does.
    let login_cookie = |socket: &std::path::Path| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-i",
                "-H",
                "X-Forwarded-Proto: https",
                "--unix-socket",
            ])
            .arg(socket)
            .arg("http://pftrack.local/login")
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .unwrap_or_default()
            .to_owned()
    };
    let set = login_cookie(&socket);
    assert!(
        set.contains(" pftrack_login_csrf=") && !set.contains("Secure"),
        "{set}"
    );
    let trusted_socket = dir.path().join("trusted.sock");
    let config = dir.path().join("pftrack.yaml");
    std::fs::write(&config, "web:\n  trust_unix_socket: true\n").unwrap();
    let trusted = Server::start(
        &role.url(&db),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("unix:{}", trusted_socket.display()),
        ],
    )
    .unwrap();
    let set = login_cookie(&trusted_socket);
    assert!(
        set.contains(" __Host-pftrack_login_csrf=") && set.contains("; Secure"),
        "{set}"
    );
    drop(trusted);
    // SIGTERM: it drains and exits 0.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", server.log());
}

/// `pftrack status --server`'s JSON for `query` with `token`, and its exit code.
fn status_via_server(w: &World, token: &str, query: &str) -> (Option<i32>, String, String) {
    let out = pftrack()
        .args(["status", query, "--json", "--server", &w.server.url])
        .env("PFTRACK_TOKEN", token)
        .env_remove("PFTRACK_DATABASE_URL")
        .output()
        .expect("pftrack status runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The recipients of each message of `pftrack status --json`'s output.
fn status_recipients(json: &str) -> Vec<Vec<String>> {
    let v: Value = serde_json::from_str(json).expect("status --json is JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|m| {
            m["recipients"]
                .as_array()
                .expect("recipients")
                .iter()
                .map(|r| r["recipient"].as_str().expect("recipient").to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_through_the_server_is_the_direct_lookup_within_scope() {
    let w = World::new("web_lookup");
    let spec = Spec::load();
    let (admin, _) = w.login("admin", ADMIN_PW).await;
    let (dom, _) = w.login("dom", DOMAIN_PW).await;

    // The endpoint, for two roles, validated against openapi.json.
    for session in [&admin, &dom] {
        for q in [
            "kind=address&q=alice@example.com",
            "kind=queue-id&q=2D9E8F7A6B,2d9e8f7a6b",
            "kind=message-id&q=%3Cteam-meeting@example.com%3E",
            "kind=address&q=nobody@nowhere.invalid",
            "kind=address&q=bob@mx1.example.com&since=2025-03-01&until=2025-04-01T00:00:00Z&limit=2",
        ] {
            let (status, body) = w.json(&format!("/api/v1/lookup?{q}"), session).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            spec.check("/lookup", status, "application/json", &body);
        }
    }
    // Bad parameters: a 400 naming the parameter; no credentials: a 401.
    for (q, name) in [
        ("q=x", "kind"),
        ("kind=address", "q"),
        ("kind=fax&q=x", "kind"),
        ("kind=address&q=x&limit=0", "limit"),
        ("kind=address&q=x&limit=99999999999999999999999", "limit"),
        ("kind=address&q=x&since=soon", "since"),
        (
            "kind=address&q=x&since=2025-03-02&until=2025-03-01",
            "until",
        ),
        ("kind=address&q=x&tag=novalue", "tag"),
        ("kind=address&q=x&recipient=y", "recipient"),
        ("kind=address&q=x&q=y", "q"),
    ] {
        let r = w.get(&format!("/api/v1/lookup?{q}"), Some(&admin)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let body: Value = r.json().await.expect("problem JSON");
        spec.check(
            "/lookup",
            StatusCode::BAD_REQUEST,
            "application/problem+json",
            &body,
        );
        assert_eq!(body["invalid-params"][0]["name"], name, "{q}: {body}");
    }
    let r = w.get("/api/v1/lookup?kind=address&q=x", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The CLI through the server prints what the direct lookup prints, for an admin.
    let admin_token = bearer_token(&w.db, "admin");
    for query in [
        "bob@mx1.example.com",
        "2D9E8F7A6B",
        "<team-meeting@example.com>",
        "nobody@nowhere.invalid",
    ] {
        let direct = pftrack()
            .args(["status", query, "--json", "--database-url", &w.db.url])
            .output()
            .expect("pftrack status runs");
        let (code, served, err) = status_via_server(&w, &admin_token, query);
        assert_eq!(code, direct.status.code(), "{query}: {err}");
        assert_eq!(
            served,
            String::from_utf8_lossy(&direct.stdout),
            "{query}: the server's answer differs from the direct lookup"
        );
    }
    let (code, served, _) = status_via_server(&w, &admin_token, "2D9E8F7A6B");
    assert_eq!(code, Some(0));
    assert_eq!(
        status_recipients(&served),
        vec![vec![
            "carol@example.net".to_owned(),
            "dan@example.net".to_owned(),
            "erin@example.org".to_owned()
        ]]
    );

    // Scoped tokens: the sender's domain sees every recipient, a recipient's domain
    // only its own, an unrelated address nothing (exit 1, as when nothing matches).
    let (code, served, _) = status_via_server(&w, &bearer_token(&w.db, "dom"), "2D9E8F7A6B");
    assert_eq!(code, Some(0));
    assert_eq!(status_recipients(&served)[0].len(), 3, "{served}");
    let (code, served, _) = status_via_server(&w, &bearer_token(&w.db, "net"), "2D9E8F7A6B");
    assert_eq!(code, Some(0));
    assert_eq!(
        status_recipients(&served),
        vec![vec![
            "carol@example.net".to_owned(),
            "dan@example.net".to_owned()
        ]]
    );
    let (code, served, _) = status_via_server(&w, &bearer_token(&w.db, "bob"), "2D9E8F7A6B");
    assert_eq!((code, served.trim()), (Some(1), "[]"));

    // A wrong token, no token, a server that is not there: each says what to do.
    let (code, _, err) = status_via_server(&w, "not-a-token", "2D9E8F7A6B");
    assert!(
        code.is_some_and(|c| c > 1),
        "an error, not \"no match\" ({code:?})"
    );
    assert!(
        err.contains("refused the token") && err.contains("pftrack user token add"),
        "{err}"
    );
    let out = pftrack()
        .args(["status", "x@example.com", "--server", &w.server.url])
        .env_remove("PFTRACK_TOKEN")
        .output()
        .expect("pftrack status runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PFTRACK_TOKEN"),
        "{err}"
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let gone = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let out = pftrack()
        .args(["status", "x@example.com", "--server", &gone])
        .env("PFTRACK_TOKEN", &admin_token)
        .output()
        .expect("pftrack status runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot reach pftrack serve"),
        "{err}"
    );
}
