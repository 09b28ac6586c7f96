//! The export's SQL: records of a period (by the time Postfix logged them) or of a
//! window of loading transactions (`loaded_xid`, migration V11), one row shape for
//! every type, bound parameters only.
//!
//! Every statement returns the columns of [`COLUMNS`], in that order; a period's
//! records sorted by the time logged (then host, queue id, recipient, so that equal
//! times come out in the same order every time), an incremental run's as found.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::record::{Field, RecordType, Value, relay_addr};

/// Settings of the export's session. JIT off: `generate_series` per NOQUEUE row makes
/// the planner expect a thousandfold more rows than there are, and JIT compiling the
/// statement would then cost more than running it (2 s of 2.4 s on a 1 M-line day).
/// More memory for the sort by time, so that a day's records sort in memory.
pub(crate) const SESSION: &str = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'";

/// The columns every statement returns (their positions are used by [`value`]).
const COLUMNS: &str = "type, logged_at, queued_at, host, queue_id, message_id, sender, recipient, \
     orig_recipient, size, client_name, client_addr, helo, sasl_username, relay, dsn, response, \
     delay, reason, hard, sasl_method, country, asn, as_org";

/// Attempt statuses → record types; `discarded` and `deleted` (by postsuper) are no
/// accounting records.
const ATTEMPT_TYPE: &str = "CASE a.status WHEN 'sent' THEN 'delivered' WHEN 'deferred' THEN \
     'deferred' WHEN 'rejected' THEN 'rejected' ELSE 'bounced' END";

/// The NOQUEUE actions that are a rejection.
const NOQUEUE_REJECTS: &str = "n.action IN ('reject', 'milter-reject', 'proxy-reject')";

/// The attempt statuses a set of types needs.
fn attempt_statuses(types: &[RecordType]) -> Vec<&'static str> {
    let mut s = Vec::new();
    for t in types {
        match t {
            RecordType::Delivered => s.push("sent"),
            RecordType::Deferred => s.push("deferred"),
            RecordType::Bounced => s.extend(["bounced", "expired"]),
            RecordType::Rejected => s.push("rejected"),
            RecordType::AuthFailure => {}
        }
    }
    s
}

fn attempts_select(condition: &str) -> String {
    format!(
        "SELECT {ATTEMPT_TYPE} AS type, a.attempt_at AS logged_at, a.arrived_at AS queued_at, \
                a.host, a.queue_id, f.message_id, f.sender, a.recipient, \
                nullif(a.orig_recipient, '') AS orig_recipient, f.size, f.client_name, \
                f.client_addr, NULL::text AS helo, f.sasl_username, a.relay, a.dsn, a.response, \
                a.delay, a.failure_reason AS reason, a.hard, f.sasl_method, NULL::text AS country, \
                NULL::bigint AS asn, NULL::text AS as_org
         FROM delivery_attempt a
         LEFT JOIN delivery_from f
           ON f.queue_id = a.queue_id AND f.host = a.host AND f.arrived_at = a.arrived_at
         WHERE a.is_attempt AND a.status = ANY($1::text[]) AND ({condition})"
    )
}

/// NOQUEUE rows as one record per occurrence (`occ` is the occurrence's number).
fn noqueue_select(from: &str, condition: &str) -> String {
    format!(
        "SELECT 'rejected' AS type, n.logged_at, NULL::timestamptz AS queued_at, n.host, \
                NULL::text AS queue_id, NULL::text AS message_id, n.sender, n.recipient, \
                NULL::text AS orig_recipient, NULL::bigint AS size, n.client_name, \
                n.client_addr, n.helo, NULL::text AS sasl_username, NULL::text AS relay, n.dsn, \
                concat_ws(' ', n.code::text, n.dsn, n.reason) AS response, NULL::real AS delay, n.failure_reason AS reason, n.hard, \
                NULL::text AS sasl_method, NULL::text AS country, NULL::bigint AS asn, \
                NULL::text AS as_org
         FROM {from}
         WHERE {NOQUEUE_REJECTS} AND ({condition})"
    )
}

/// Recipients still deferred when their message expired, as bounces at the expiry.
fn expired_select(condition: &str) -> String {
    format!(
        "SELECT 'bounced' AS type, f.expired_at AS logged_at, f.arrived_at AS queued_at, f.host, \
                f.queue_id, f.message_id, f.sender, t.recipient, \
                nullif(t.orig_recipient, '') AS orig_recipient, f.size, f.client_name, \
                f.client_addr, NULL::text AS helo, f.sasl_username, t.relay, t.dsn, t.response, \
                extract(epoch FROM f.expired_at - f.arrived_at)::real AS delay, \
                'expired' AS reason, true AS hard, f.sasl_method, NULL::text AS country, \
                NULL::bigint AS asn, NULL::text AS as_org
         FROM delivery_from f
         JOIN delivery_to t
           ON t.queue_id = f.queue_id AND t.host = f.host AND t.arrived_at = f.arrived_at
         WHERE f.expired_at IS NOT NULL AND t.status = 'deferred' AND f.expired_at >= t.status_at
           AND ({condition})"
    )
}

/// SASL authentication failures (V9): the SASL server's reason as the response
/// (`aborted` when the client gave up).
fn auth_select(condition: &str) -> String {
    format!(
        "SELECT 'auth-failure' AS type, s.logged_at, NULL::timestamptz AS queued_at, s.host, \
                NULL::text AS queue_id, NULL::text AS message_id, NULL::text AS sender, \
                NULL::text AS recipient, NULL::text AS orig_recipient, NULL::bigint AS size, \
                s.client_name, s.client_addr, NULL::text AS helo, s.sasl_username, \
                NULL::text AS relay, NULL::text AS dsn, \
                CASE WHEN s.aborted THEN 'authentication aborted' \
                     ELSE nullif(s.reason, '') END AS response, \
                NULL::real AS delay, NULL::text AS reason, NULL::boolean AS hard, \
                s.sasl_method, s.country, s.asn, s.as_org
         FROM auth_failure s
         WHERE {condition}"
    )
}

/// Expired messages not exported into the directory `$4` yet.
pub(crate) const NOT_EXPORTED_EXPIRY: &str = "NOT EXISTS (SELECT 1 FROM export_expired e \
     WHERE e.target = $4 AND e.queue_id = f.queue_id AND e.host = f.host \
     AND e.arrived_at = f.arrived_at)";

/// Records, in the same snapshot as the export that wrote their bounces, the expired
/// messages of `$1`'s directory as exported.
pub(crate) const RECORD_EXPIRIES: &str = "INSERT INTO export_expired (target, host, queue_id, \
     arrived_at) SELECT $1, f.host, f.queue_id, f.arrived_at FROM delivery_from f \
     WHERE f.expired_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM export_expired e \
     WHERE e.target = $1 AND e.queue_id = f.queue_id AND e.host = f.host \
     AND e.arrived_at = f.arrived_at)";

/// A statement and its parameters' values (`$1` statuses; then two bounds).
pub(crate) struct Statement {
    pub sql: String,
    pub statuses: Vec<&'static str>,
}

fn assemble(
    types: &[RecordType],
    attempts: String,
    expired: String,
    noqueue: Vec<String>,
    auth: String,
    ordered: bool,
) -> Statement {
    let statuses = attempt_statuses(types);
    let mut parts = vec![attempts];
    if types.contains(&RecordType::Bounced) {
        parts.push(expired);
    }
    if types.contains(&RecordType::Rejected) {
        parts.extend(noqueue);
    }
    if types.contains(&RecordType::AuthFailure) {
        parts.push(auth);
    }
    let order = if ordered {
        // Down to the record type: an expiry and the last deferral of the same
        // recipient share their time, and without it their order would be whatever
        // order the scan met them in (which partitioning changed).
        " ORDER BY logged_at, host, queue_id, recipient, type"
    } else {
        ""
    };
    Statement {
        sql: format!(
            "SELECT {COLUMNS} FROM (\n{}\n) r{order}",
            parts.join("\nUNION ALL\n")
        ),
        statuses,
    }
}

/// Records logged in `[$2, $3)`.
pub(crate) fn period(types: &[RecordType]) -> Statement {
    assemble(
        types,
        attempts_select("a.attempt_at >= $2 AND a.attempt_at < $3"),
        expired_select("f.expired_at >= $2 AND f.expired_at < $3"),
        vec![noqueue_select(
            "noqueue n CROSS JOIN LATERAL generate_series(1, n.count) AS occ",
            "n.logged_at >= $2 AND n.logged_at < $3",
        )],
        auth_select("s.logged_at >= $2 AND s.logged_at < $3"),
        true,
    )
}

/// Records stored by transactions in `[$2, $3)` (`loaded_xid`), and the bounces of
/// expired messages not exported into the directory `$4` yet. With `first`, rows
/// stored before migration V11 (no `loaded_xid`) are taken too: the first export of a
/// directory starts at the beginning.
pub(crate) fn window(types: &[RecordType], first: bool) -> Statement {
    let pre_v11 = |col: &str| {
        if first {
            format!(" OR {col} IS NULL")
        } else {
            String::new()
        }
    };
    let attempts = attempts_select(&format!(
        "(a.loaded_xid >= $2 AND a.loaded_xid < $3){}",
        pre_v11("a.loaded_xid")
    ));
    // Rows never raised: every occurrence belongs to the row's transaction.
    let plain = noqueue_select(
        "noqueue n CROSS JOIN LATERAL generate_series(1, n.count) AS occ",
        &format!(
            "n.count_steps IS NULL AND ((n.loaded_xid >= $2 AND n.loaded_xid < $3){})",
            pre_v11("n.loaded_xid")
        ),
    );
    // Rows raised by later transactions: the occurrences of each step in the window
    // (a step's transaction, NULL before V11, is 0 here).
    let stepped = noqueue_select(
        "noqueue n CROSS JOIN LATERAL (
             SELECT coalesce(lag(c) OVER (ORDER BY i), 0) AS prev, c, coalesce(x, 0) AS x
             FROM unnest(n.count_steps, n.count_step_xids) WITH ORDINALITY AS u(c, x, i)
         ) st CROSS JOIN LATERAL generate_series(st.prev + 1, st.c) AS occ",
        &format!(
            "n.count_steps IS NOT NULL AND (n.loaded_xid >= $2{}) AND st.x >= $2 AND st.x < $3",
            pre_v11("n.loaded_xid")
        ),
    );
    assemble(
        types,
        attempts,
        expired_select(NOT_EXPORTED_EXPIRY),
        vec![plain, stepped],
        auth_select(&format!(
            "(s.loaded_xid >= $2 AND s.loaded_xid < $3){}",
            pre_v11("s.loaded_xid")
        )),
        // Unsorted: rows stream out as PostgreSQL finds them while the files are
        // written (a sort would hold everything back until it is done), and a later
        // run adds old-dated records anyway.
        false,
    )
}

/// The record type of a row.
pub(crate) fn record_type(row: &Row) -> Option<RecordType> {
    match row.try_get::<_, &str>(0).ok()? {
        "delivered" => Some(RecordType::Delivered),
        "deferred" => Some(RecordType::Deferred),
        "bounced" => Some(RecordType::Bounced),
        "rejected" => Some(RecordType::Rejected),
        "auth-failure" => Some(RecordType::AuthFailure),
        _ => None,
    }
}

/// One field of a row (a value of an unexpected SQL type reads as unknown).
pub(crate) fn value(row: &Row, field: Field) -> Value<'_> {
    fn text(row: &Row, i: usize) -> Value<'_> {
        match row.try_get::<_, Option<&str>>(i) {
            Ok(Some(s)) => Value::Str(s),
            _ => Value::Null,
        }
    }
    fn time(row: &Row, i: usize) -> Value<'_> {
        match row.try_get::<_, Option<DateTime<Utc>>>(i) {
            Ok(Some(t)) => Value::Time(t),
            _ => Value::Null,
        }
    }
    match field {
        Field::Type => text(row, 0),
        Field::LoggedAt => time(row, 1),
        Field::QueuedAt => time(row, 2),
        Field::Host => text(row, 3),
        Field::QueueId => text(row, 4),
        Field::MessageId => text(row, 5),
        Field::Sender => text(row, 6),
        Field::Recipient => text(row, 7),
        Field::OrigRecipient => text(row, 8),
        Field::Size => match row.try_get::<_, Option<i64>>(9) {
            Ok(Some(n)) => Value::Int(n),
            _ => Value::Null,
        },
        Field::ClientName => text(row, 10),
        Field::ClientAddr => text(row, 11),
        Field::Helo => text(row, 12),
        Field::SaslUsername => text(row, 13),
        Field::Relay => text(row, 14),
        Field::RelayAddr => match row.try_get::<_, Option<&str>>(14) {
            Ok(Some(relay)) => relay_addr(relay).map_or(Value::Null, Value::Str),
            _ => Value::Null,
        },
        Field::Dsn => text(row, 15),
        Field::Response => text(row, 16),
        Field::Delay => match row.try_get::<_, Option<f32>>(17) {
            Ok(Some(x)) => Value::Float(x),
            _ => Value::Null,
        },
        Field::Reason => text(row, 18),
        Field::Hard => match row.try_get::<_, Option<bool>>(19) {
            Ok(Some(b)) => Value::Bool(b),
            _ => Value::Null,
        },
        Field::SaslMethod => text(row, 20),
        Field::Country => text(row, 21),
        Field::Asn => match row.try_get::<_, Option<i64>>(22) {
            Ok(Some(n)) => Value::Int(n),
            _ => Value::Null,
        },
        Field::AsOrg => text(row, 23),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_take_only_what_the_types_need() {
        let s = period(&[RecordType::Delivered]);
        assert_eq!(s.statuses, vec!["sent"]);
        assert!(!s.sql.contains("noqueue"));
        let s = window(&[RecordType::Bounced, RecordType::Rejected], false);
        assert_eq!(s.statuses, vec!["bounced", "expired", "rejected"]);
        assert!(s.sql.contains("count_steps IS NOT NULL"));
        assert!(!s.sql.contains("IS NULL)"));
        assert!(
            window(&RecordType::ALL, true)
                .sql
                .contains("loaded_xid IS NULL")
        );
    }
}
