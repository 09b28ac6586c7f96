//! One message: envelope, client, every visible recipient with its attempt history,
//! and the linked messages (parent, notifications, content-filter re-injection,
//! forwards) that the user may see.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{WebError, db};
use crate::scope::Scope;
use crate::search::message_path;
use crate::sql::{Sql, prepared};

/// A message's attempts, every recipient's (filtered by scope with the recipient rows).
const ATTEMPTS: &str = "SELECT recipient, orig_recipient, attempt_at, status, dsn, relay, response, \
     delay, failure_reason, hard FROM delivery_attempt \
     WHERE arrived_at = $1 AND host = $2 AND queue_id = $3 ORDER BY attempt_at, status";

/// A message's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// Host.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// Arrival.
    pub arrived_at: DateTime<Utc>,
}

/// One event of a recipient.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// When.
    pub at: DateTime<Utc>,
    /// What (`deferred`, `sent`, `bounced`, …).
    pub status: String,
    /// Enhanced status code.
    pub dsn: Option<String>,
    /// Relay.
    pub relay: Option<String>,
    /// The reply or reason.
    pub response: Option<String>,
    /// `delay=`, seconds.
    pub delay: Option<f32>,
    /// Failure reason.
    pub reason: Option<String>,
    /// Permanent.
    pub hard: Option<bool>,
}

/// One recipient with its history.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    /// Recipient.
    pub recipient: String,
    /// Before alias expansion.
    pub orig_recipient: Option<String>,
    /// Status now.
    pub status: String,
    /// Failure reason now.
    pub reason: Option<String>,
    /// Permanent.
    pub hard: Option<bool>,
    /// Latest DSN.
    pub dsn: Option<String>,
    /// Latest relay.
    pub relay: Option<String>,
    /// Latest reply.
    pub response: Option<String>,
    /// Delivery attempts.
    pub attempts: i32,
    /// Every event, oldest first.
    pub history: Vec<Attempt>,
}

/// A linked message.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// `parent` (this message is about or continues it), `child` (a notification,
    /// re-injection or forward of this one).
    pub relation: String,
    /// `non_delivery`, `delay`, `success`, `postmaster`, `reinjection`, `forward`.
    pub kind: Option<String>,
    /// Host.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// Arrival.
    pub arrived_at: DateTime<Utc>,
    /// The linked message in the API.
    pub message: String,
}

/// The whole story of a message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Host.
    pub host: String,
    /// Queue id.
    pub queue_id: String,
    /// Arrival.
    pub arrived_at: DateTime<Utc>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Envelope sender.
    pub sender: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Recipients Postfix counted.
    pub nrcpt: Option<i32>,
    /// `smtpd`, `pickup`, `notification`.
    pub origin: Option<String>,
    /// Client host name.
    pub client_name: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// SASL mechanism.
    pub sasl_method: Option<String>,
    /// SASL user.
    pub sasl_username: Option<String>,
    /// Queue file removed.
    pub removed_at: Option<DateTime<Utc>>,
    /// Expired.
    pub expired_at: Option<DateTime<Utc>>,
    /// Deleted by postsuper.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Rejected after queueing.
    pub rejected_at: Option<DateTime<Utc>>,
    /// Recipients the user may see.
    pub recipients: Vec<Recipient>,
    /// Linked messages the user may see.
    pub links: Vec<Link>,
    /// This message's page.
    pub permalink: String,
}

/// Whether the message aliased `f` is visible: admin, its sender in scope, or one of
/// its recipient rows in scope.
pub fn visible_predicate(scope: &Scope, sql: &mut Sql, f: &str) -> String {
    if scope.is_all() {
        return "true".to_owned();
    }
    let sender = scope.row_predicate(sql, &format!("{f}.sender"), "''", "''");
    let row = scope.row_predicate(
        sql,
        &format!("{f}.sender"),
        "v.recipient",
        "v.orig_recipient",
    );
    format!(
        "({sender} OR EXISTS (SELECT 1 FROM delivery_to v WHERE v.queue_id = {f}.queue_id \
         AND v.host = {f}.host AND v.arrived_at = {f}.arrived_at AND {row}))"
    )
}

/// The message `key` as `auth` sees it, and the audit row saying it was asked for;
/// `NotFound` (audited too) when absent or out of scope. What the message page and
/// `GET /api/v1/messages/…` both do.
///
/// Two round trips on the request's connection: the message itself (which also says
/// whether it is visible), then its recipients, their attempts, the linked messages
/// and the audit row, sent together (tokio-postgres pipelines the queries of one
/// client that are awaited together; PostgreSQL runs them one after the other).
/// Every statement is prepared once per connection ([`crate::sql::prepared`]): each
/// looks rows up by key, so one plan fits every message.
pub async fn load_audited(
    client: &deadpool_postgres::Client,
    auth: &crate::auth::Auth,
    key: &MessageKey,
) -> Result<Message, WebError> {
    let scope = &auth.scope;
    let audit = |found: bool| {
        crate::auth::audit(
            client,
            &auth.name,
            &auth.client.addr,
            "message",
            serde_json::json!({"host": key.host, "queue_id": key.queue_id, "arrived_at": key.arrived_at}),
            Some(i64::from(found)),
        )
    };
    let mut sql = Sql::new(
        "SELECT f.message_id, f.sender, f.size, f.nrcpt, f.origin, f.client_name, \
         f.client_addr, f.sasl_method, f.sasl_username, f.removed_at, f.expired_at, \
         f.deleted_at, f.rejected_at, f.parent_queue_id, f.parent_arrived_at, f.parent_kind \
         FROM delivery_from f WHERE ",
    );
    let (q, h, a) = (
        sql.bind(key.queue_id.clone()),
        sql.bind(key.host.clone()),
        sql.bind(key.arrived_at),
    );
    let vis = visible_predicate(scope, &mut sql, "f");
    sql.push(&format!(
        "f.queue_id = {q} AND f.host = {h} AND f.arrived_at = {a} AND {vis}"
    ));
    let statement = prepared(client, &sql.text)
        .await
        .map_err(db("reading a message"))?;
    let Some(row) = client
        .query_opt(&statement, &sql.params())
        .await
        .map_err(db("reading a message"))?
    else {
        audit(false).await?;
        return Err(WebError::NotFound);
    };

    // Recipients in scope.
    let mut recipients_sql = Sql::new(&format!(
        "SELECT t.recipient, NULLIF(t.orig_recipient, ''), {status}, \
         CASE WHEN {status} = 'expired' THEN 'expired' ELSE t.failure_reason END, \
         CASE WHEN {status} = 'expired' THEN true ELSE t.hard END, \
         t.dsn, t.relay, t.response, t.attempts, t.orig_recipient \
         FROM delivery_to t JOIN delivery_from f USING (host, queue_id, arrived_at) WHERE ",
        status = "effective_status(t.status, t.status_at, f.expired_at, f.deleted_at)"
    ));
    let (q, h, a) = (
        recipients_sql.bind(key.queue_id.clone()),
        recipients_sql.bind(key.host.clone()),
        recipients_sql.bind(key.arrived_at),
    );
    let pred = scope.row_predicate(
        &mut recipients_sql,
        "f.sender",
        "t.recipient",
        "t.orig_recipient",
    );
    recipients_sql.push(&format!(
        "t.queue_id = {q} AND t.host = {h} AND t.arrived_at = {a} AND {pred} \
         ORDER BY t.recipient, t.orig_recipient"
    ));

    // Linked messages: the parent, and the children; each only when visible.
    let mut links_sql = Sql::new("");
    let (q, h, a) = (
        links_sql.bind(key.queue_id.clone()),
        links_sql.bind(key.host.clone()),
        links_sql.bind(key.arrived_at),
    );
    let parent_q: Option<String> = row.get(13);
    let parent_a: Option<DateTime<Utc>> = row.get(14);
    let (pq, pa) = (links_sql.bind(parent_q), links_sql.bind(parent_a));
    let kind = {
        let k: Option<String> = row.get(15);
        links_sql.bind(k)
    };
    let vis = visible_predicate(scope, &mut links_sql, "f");
    links_sql.push(&format!(
        "SELECT l.relation, l.kind, f.host, f.queue_id, f.arrived_at FROM ( \
           SELECT 'parent' AS relation, {kind}::text AS kind, {h}::text AS host, \
                  {pq}::text AS queue_id, {pa}::timestamptz AS arrived_at \
           UNION ALL \
           SELECT 'child', c.parent_kind, c.host, c.queue_id, c.arrived_at FROM delivery_from c \
           WHERE c.host = {h} AND c.parent_queue_id = {q} AND c.parent_arrived_at = {a} \
         ) l JOIN delivery_from f ON f.queue_id = l.queue_id AND f.host = l.host \
                                 AND f.arrived_at = l.arrived_at \
         WHERE {vis} ORDER BY l.relation DESC, f.arrived_at, f.queue_id"
    ));

    let (recipients_statement, attempts_statement, links_statement) = tokio::try_join!(
        prepared(client, &recipients_sql.text),
        prepared(client, ATTEMPTS),
        prepared(client, &links_sql.text),
    )
    .map_err(db("preparing a message's queries"))?;
    let recipient_params = recipients_sql.params();
    let links_params = links_sql.params();
    let (recipient_rows, attempts, link_rows, ()) = tokio::try_join!(
        async {
            client
                .query(&recipients_statement, &recipient_params)
                .await
                .map_err(db("reading a message's recipients"))
        },
        async {
            client
                .query(
                    &attempts_statement,
                    &[&key.arrived_at, &key.host, &key.queue_id],
                )
                .await
                .map_err(db("reading a message's attempts"))
        },
        async {
            client
                .query(&links_statement, &links_params)
                .await
                .map_err(db("reading linked messages"))
        },
        audit(true),
    )?;
    let recipients = recipient_rows
        .iter()
        .map(|r| {
            let recipient: String = r.get(0);
            let orig_key: String = r.get(9);
            let history = attempts
                .iter()
                .filter(|a| a.get::<_, &str>(0) == recipient && a.get::<_, &str>(1) == orig_key)
                .map(|a| Attempt {
                    at: a.get(2),
                    status: a.get(3),
                    dsn: a.get(4),
                    relay: a.get(5),
                    response: a.get(6),
                    delay: a.get(7),
                    reason: a.get(8),
                    hard: a.get(9),
                })
                .collect();
            Recipient {
                recipient,
                orig_recipient: r.get(1),
                status: r.get(2),
                reason: r.get(3),
                hard: r.get(4),
                dsn: r.get(5),
                relay: r.get(6),
                response: r.get(7),
                attempts: r.get(8),
                history,
            }
        })
        .collect();

    let links = link_rows
        .iter()
        .map(|l| Link {
            relation: l.get(0),
            kind: l.get(1),
            host: l.get(2),
            queue_id: l.get(3),
            arrived_at: l.get(4),
            message: format!(
                "/api/v1/messages/{}",
                message_path(&l.get::<_, String>(2), &l.get::<_, String>(3), l.get(4))
            ),
        })
        .collect();
    Ok(Message {
        host: key.host.clone(),
        queue_id: key.queue_id.clone(),
        arrived_at: key.arrived_at,
        message_id: row.get(0),
        sender: row.get(1),
        size: row.get(2),
        nrcpt: row.get(3),
        origin: row.get(4),
        client_name: row.get(5),
        client_addr: row.get(6),
        sasl_method: row.get(7),
        sasl_username: row.get(8),
        removed_at: row.get(9),
        expired_at: row.get(10),
        deleted_at: row.get(11),
        rejected_at: row.get(12),
        recipients,
        links,
        permalink: format!(
            "/message/{}",
            message_path(&key.host, &key.queue_id, key.arrived_at)
        ),
    })
}
