//! One message: envelope, client, every visible recipient with its attempt history,
//! and the linked messages (parent, notifications, content-filter re-injection,
//! forwards) that the user may see.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{WebError, db};
use crate::scope::Scope;
use crate::search::message_path;
use crate::sql::Sql;

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

/// The message `key` as `scope` sees it; `NotFound` when absent or out of scope.
pub async fn load(
    client: &deadpool_postgres::Client,
    scope: &Scope,
    key: &MessageKey,
) -> Result<Message, WebError> {
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
    let row = client
        .query_opt(sql.text.as_str(), &sql.params())
        .await
        .map_err(db("reading a message"))?
        .ok_or(WebError::NotFound)?;

    // Recipients in scope.
    let mut sql = Sql::new(&format!(
        "SELECT t.recipient, NULLIF(t.orig_recipient, ''), {status}, \
         CASE WHEN {status} = 'expired' THEN 'expired' ELSE t.failure_reason END, \
         CASE WHEN {status} = 'expired' THEN true ELSE t.hard END, \
         t.dsn, t.relay, t.response, t.attempts, t.orig_recipient \
         FROM delivery_to t JOIN delivery_from f USING (host, queue_id, arrived_at) WHERE ",
        status = "effective_status(t.status, t.status_at, f.expired_at, f.deleted_at)"
    ));
    let (q, h, a) = (
        sql.bind(key.queue_id.clone()),
        sql.bind(key.host.clone()),
        sql.bind(key.arrived_at),
    );
    let pred = scope.row_predicate(&mut sql, "f.sender", "t.recipient", "t.orig_recipient");
    sql.push(&format!(
        "t.queue_id = {q} AND t.host = {h} AND t.arrived_at = {a} AND {pred} \
         ORDER BY t.recipient, t.orig_recipient"
    ));
    let recipient_rows = client
        .query(sql.text.as_str(), &sql.params())
        .await
        .map_err(db("reading a message's recipients"))?;
    let attempts = client
        .query(
            "SELECT recipient, orig_recipient, attempt_at, status, dsn, relay, response, delay, \
             failure_reason, hard FROM delivery_attempt \
             WHERE arrived_at = $1 AND host = $2 AND queue_id = $3 ORDER BY attempt_at, status",
            &[&key.arrived_at, &key.host, &key.queue_id],
        )
        .await
        .map_err(db("reading a message's attempts"))?;
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

    // Linked messages: the parent, and the children; each only when visible.
    let mut sql = Sql::new("");
    let (q, h, a) = (
        sql.bind(key.queue_id.clone()),
        sql.bind(key.host.clone()),
        sql.bind(key.arrived_at),
    );
    let parent_q: Option<String> = row.get(13);
    let parent_a: Option<DateTime<Utc>> = row.get(14);
    let (pq, pa) = (sql.bind(parent_q), sql.bind(parent_a));
    let kind = {
        let k: Option<String> = row.get(15);
        sql.bind(k)
    };
    let vis = visible_predicate(scope, &mut sql, "f");
    sql.push(&format!(
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
    let links = client
        .query(sql.text.as_str(), &sql.params())
        .await
        .map_err(db("reading linked messages"))?
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
