//! The text format: pflogsumm's layout and number style.

use std::fmt::Write as _;

use crate::{AddressStat, ReasonGroup, Report, Traffic, adj_time, adj_units};

fn heading(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}\n{}", "-".repeat(title.len()));
}

fn units(v: i64) -> String {
    let (v, u) = adj_units(v);
    format!("{v:>6}{u}")
}

pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.title());
    let _ = writeln!(
        out,
        "period: {} .. {} ({})",
        r.period.since.to_rfc3339(),
        r.period.until.to_rfc3339(),
        r.period.timezone
    );
    let g = &r.grand_totals;
    heading(&mut out, "Grand Totals");
    let _ = writeln!(out, "messages\n");
    let total = g.delivered + g.rejected + g.discarded;
    let pct = |n: i64| if total > 0 { n * 100 / total } else { 0 };
    let lines: [(i64, String); 12] = [
        (g.received, "received".into()),
        (g.delivered, "delivered".into()),
        (g.forwarded, "forwarded".into()),
        (
            g.deferred,
            if g.deferrals > 0 {
                format!("deferred  ({} deferrals)", g.deferrals)
            } else {
                "deferred".into()
            },
        ),
        (g.bounced, "bounced".into()),
        (g.expired, "expired (not in pflogsumm)".into()),
        (g.rejected, format!("rejected ({}%)", pct(g.rejected))),
        (g.reject_warnings, "reject warnings".into()),
        (g.held, "held".into()),
        (g.discarded, format!("discarded ({}%)", pct(g.discarded))),
        (
            g.content_filter_handoffs,
            "content filter hand-offs (not in pflogsumm's received/delivered)".into(),
        ),
        (
            g.ndrs,
            "non-delivery notifications (not in pflogsumm)".into(),
        ),
    ];
    for (n, label) in lines {
        let _ = writeln!(out, " {}  {label}", units(n));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, " {}  bytes received", units(g.bytes_received));
    let _ = writeln!(out, " {}  bytes delivered", units(g.bytes_delivered));
    let _ = writeln!(out, " {}  senders", units(g.senders));
    let _ = writeln!(out, " {}  sending hosts/domains", units(g.sending_domains));
    let _ = writeln!(out, " {}  recipients", units(g.recipients));
    let _ = writeln!(
        out,
        " {}  recipient hosts/domains",
        units(g.recipient_domains)
    );

    if r.per_day.len() > 1 {
        heading(&mut out, "Per-Day Traffic Summary");
        traffic(&mut out, "date", &r.per_day);
    }
    heading(&mut out, "Per-Hour Traffic Summary");
    traffic(&mut out, "time", &r.per_hour);

    heading(&mut out, "Host/Domain Summary: Message Delivery");
    if r.delivery_domains.is_empty() {
        let _ = writeln!(out, " none");
    } else {
        let _ = writeln!(
            out,
            " sent cnt  bytes   defers   avg dly max dly host/domain\n -------- -------  -------  ------- ------- -----------"
        );
        for d in &r.delivery_domains {
            let _ = writeln!(
                out,
                " {}  {}  {}  {:>7} {:>7}  {}",
                units(d.sent),
                units(d.bytes),
                units(d.defers),
                adj_time(d.avg_delay),
                adj_time(d.max_delay),
                d.domain
            );
        }
    }
    heading(&mut out, "Host/Domain Summary: Messages Received");
    if r.reception_domains.is_empty() {
        let _ = writeln!(out, " none");
    } else {
        let _ = writeln!(
            out,
            " msg cnt   bytes   host/domain\n -------- -------  -----------"
        );
        for d in &r.reception_domains {
            let _ = writeln!(
                out,
                " {}  {}  {}",
                units(d.messages),
                units(d.bytes),
                d.domain
            );
        }
    }
    addresses(
        &mut out,
        "Senders by message count",
        &r.senders_by_count,
        false,
    );
    addresses(
        &mut out,
        "Recipients by message count",
        &r.recipients_by_count,
        false,
    );
    addresses(
        &mut out,
        "Senders by message size",
        &r.senders_by_size,
        true,
    );
    addresses(
        &mut out,
        "Recipients by message size",
        &r.recipients_by_size,
        true,
    );

    reasons(&mut out, "message deferral detail", &r.deferrals);
    reasons(&mut out, "message bounce detail", &r.bounces);
    reasons(&mut out, "message reject detail", &r.rejects);

    if r.problem_recipients.is_empty() {
        let _ = writeln!(out, "\nproblem recipients: none");
    } else {
        heading(&mut out, "problem recipients");
        let _ = writeln!(out, " bounced deferred  recipient (latest reason)");
        for p in &r.problem_recipients {
            let _ = writeln!(
                out,
                " {:>7} {:>8}  {} ({})",
                p.bounced,
                p.deferred,
                p.address,
                p.last_reason.as_deref().unwrap_or("-")
            );
        }
    }
    if r.slowest_deliveries.is_empty() {
        let _ = writeln!(out, "\nslowest deliveries: none");
    } else {
        heading(&mut out, "slowest deliveries");
        for s in &r.slowest_deliveries {
            let _ = writeln!(
                out,
                " {:>7}  {} {} {} -> {} via {}",
                adj_time(s.delay),
                s.at.format("%Y-%m-%d %H:%M:%S"),
                s.host,
                s.queue_id,
                s.recipient,
                s.relay.as_deref().unwrap_or("-")
            );
        }
    }
    crate::auth::text(&mut out, &r.auth);
    out
}

/// The SASL section alone (`pftrack report --auth`).
pub(crate) fn render_auth(r: &crate::AuthReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", r.title());
    let _ = writeln!(
        out,
        "period: {} .. {} ({})",
        r.period.since.to_rfc3339(),
        r.period.until.to_rfc3339(),
        r.period.timezone
    );
    crate::auth::text(&mut out, &r.auth);
    out
}

fn traffic(out: &mut String, first: &str, rows: &[Traffic]) {
    let width = rows.iter().map(|t| t.label.len()).max().unwrap_or(9).max(9);
    let _ = writeln!(
        out,
        "    {first:<width$}  received  delivered   deferred    bounced     rejected"
    );
    let _ = writeln!(out, "    {}", "-".repeat(width + 58));
    for t in rows {
        let _ = writeln!(
            out,
            "    {:<width$} {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
            t.label, t.received, t.delivered, t.deferred, t.bounced, t.rejected
        );
    }
}

fn addresses(out: &mut String, title: &str, rows: &[AddressStat], by_size: bool) {
    if rows.is_empty() {
        let _ = writeln!(out, "\n{title}: none");
        return;
    }
    heading(out, title);
    for a in rows {
        let n = if by_size { a.bytes } else { a.messages };
        let _ = writeln!(out, " {}   {}", units(n), a.address);
    }
}

fn reasons(out: &mut String, title: &str, groups: &[ReasonGroup]) {
    if groups.is_empty() {
        let _ = writeln!(out, "\n{title}: none");
        return;
    }
    heading(out, title);
    for g in groups {
        let hard = match g.hard {
            Some(true) => "hard",
            Some(false) => "soft",
            None => "?",
        };
        let _ = writeln!(out, "  {} ({hard}) (total: {})", g.reason, g.count);
        for t in &g.texts {
            let _ = writeln!(out, "    {:>6}   {}", t.count, trim(&t.text, 66));
        }
    }
}

/// pflogsumm shortens detail texts and marks the cut with "...".
pub(crate) fn trim(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}
