//! The HTML format: one self-contained file, inline CSS and SVG bar charts, no
//! scripts and no external assets (it renders the same in a mail reader).

use std::fmt::Write as _;

use crate::text::trim;
use crate::{AddressStat, ReasonGroup, Report, Traffic, adj_time, adj_units};

/// Series colours: received, delivered, deferred, bounced, rejected.
const COLOURS: [&str; 5] = ["#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#9c755f"];
const SERIES: [&str; 5] = ["received", "delivered", "deferred", "bounced", "rejected"];

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn units(v: i64) -> String {
    let (v, u) = adj_units(v);
    if u == ' ' {
        v.to_string()
    } else {
        format!("{v}{u}")
    }
}

/// The document up to the report's first section: title, style, period line.
pub(crate) fn head(
    title: &str,
    period: &crate::PeriodInfo,
    generated_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut o = String::new();
    let title = esc(title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>\
body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em;color:#222;max-width:1100px}}\
h1{{font-size:1.4em}}h2{{font-size:1.1em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}}\
table{{border-collapse:collapse;font-size:.9em}}td,th{{padding:.15em .6em;text-align:right}}\
td.l,th.l{{text-align:left}}tr:nth-child(even){{background:#f4f4f4}}\
.totals td:first-child{{font-weight:600}}.muted{{color:#777}}.legend span{{margin-right:1em}}\
.cols{{display:flex;flex-wrap:wrap;gap:2em}}svg text{{font-size:11px;fill:#333}}\
</style></head><body>\n<h1>{title}</h1>\n<p class=\"muted\">{} .. {} ({}), generated {}</p>\n",
        esc(&period.since.to_rfc3339()),
        esc(&period.until.to_rfc3339()),
        esc(&period.timezone),
        esc(&generated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    );
    o
}

pub(crate) fn render(r: &Report) -> String {
    let mut o = head(&r.title(), &r.period, r.generated_at);

    let g = &r.grand_totals;
    o.push_str("<h2>Grand Totals</h2>\n<div class=\"cols\"><table class=\"totals\">\n");
    let rows: [(&str, i64); 11] = [
        ("received", g.received),
        ("delivered", g.delivered),
        ("forwarded", g.forwarded),
        ("deferred", g.deferred),
        ("deferrals", g.deferrals),
        ("bounced", g.bounced),
        ("expired", g.expired),
        ("rejected", g.rejected),
        ("reject warnings", g.reject_warnings),
        ("held", g.held),
        ("discarded", g.discarded),
    ];
    for (k, v) in rows {
        let _ = writeln!(o, "<tr><td class=\"l\">{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table><table class=\"totals\">\n");
    let rows2: [(&str, String); 8] = [
        ("bytes received", units(g.bytes_received)),
        ("bytes delivered", units(g.bytes_delivered)),
        ("senders", g.senders.to_string()),
        ("sending hosts/domains", g.sending_domains.to_string()),
        ("recipients", g.recipients.to_string()),
        ("recipient hosts/domains", g.recipient_domains.to_string()),
        (
            "content filter hand-offs",
            g.content_filter_handoffs.to_string(),
        ),
        ("non-delivery notifications", g.ndrs.to_string()),
    ];
    for (k, v) in rows2 {
        let _ = writeln!(o, "<tr><td class=\"l\">{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table></div>\n");

    if r.per_day.len() > 1 {
        o.push_str("<h2>Per-Day Traffic Summary</h2>\n");
        traffic_chart(&mut o, &r.per_day, "per-day traffic");
        traffic_table(&mut o, "date", &r.per_day);
    }
    o.push_str("<h2>Per-Hour Traffic Summary</h2>\n");
    traffic_chart(&mut o, &r.per_hour, "per-hour traffic");
    traffic_table(&mut o, "time", &r.per_hour);

    o.push_str("<h2>Host/Domain Summary: Message Delivery</h2>\n");
    hbar_chart(
        &mut o,
        &r.delivery_domains
            .iter()
            .map(|d| (d.domain.clone(), d.sent))
            .collect::<Vec<_>>(),
        COLOURS[1],
    );
    o.push_str("<table><tr><th>sent cnt</th><th>bytes</th><th>defers</th><th>avg dly</th><th>max dly</th><th class=\"l\">host/domain</th></tr>\n");
    for d in &r.delivery_domains {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            d.sent,
            units(d.bytes),
            d.defers,
            adj_time(d.avg_delay),
            adj_time(d.max_delay),
            esc(&d.domain)
        );
    }
    o.push_str("</table>\n<h2>Host/Domain Summary: Messages Received</h2>\n");
    hbar_chart(
        &mut o,
        &r.reception_domains
            .iter()
            .map(|d| (d.domain.clone(), d.messages))
            .collect::<Vec<_>>(),
        COLOURS[0],
    );
    o.push_str("<table><tr><th>msg cnt</th><th>bytes</th><th class=\"l\">host/domain</th></tr>\n");
    for d in &r.reception_domains {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            d.messages,
            units(d.bytes),
            esc(&d.domain)
        );
    }
    o.push_str("</table>\n<div class=\"cols\">");
    addresses(
        &mut o,
        "Senders by message count",
        &r.senders_by_count,
        false,
    );
    addresses(
        &mut o,
        "Recipients by message count",
        &r.recipients_by_count,
        false,
    );
    addresses(&mut o, "Senders by message size", &r.senders_by_size, true);
    addresses(
        &mut o,
        "Recipients by message size",
        &r.recipients_by_size,
        true,
    );
    o.push_str("</div>\n");
    reasons(&mut o, "message deferral detail", &r.deferrals, COLOURS[2]);
    reasons(&mut o, "message bounce detail", &r.bounces, COLOURS[3]);
    reasons(&mut o, "message reject detail", &r.rejects, COLOURS[4]);

    o.push_str("<h2>problem recipients</h2>\n");
    if r.problem_recipients.is_empty() {
        o.push_str("<p class=\"muted\">none</p>\n");
    } else {
        o.push_str("<table><tr><th>bounced</th><th>deferred</th><th class=\"l\">recipient</th><th class=\"l\">latest reason</th></tr>\n");
        for p in &r.problem_recipients {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                p.bounced,
                p.deferred,
                esc(&p.address),
                esc(p.last_reason.as_deref().unwrap_or("-"))
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h2>slowest deliveries</h2>\n");
    if r.slowest_deliveries.is_empty() {
        o.push_str("<p class=\"muted\">none</p>\n");
    } else {
        o.push_str("<table><tr><th>delay</th><th class=\"l\">time</th><th class=\"l\">host</th><th class=\"l\">queue id</th><th class=\"l\">recipient</th><th class=\"l\">relay</th></tr>\n");
        for s in &r.slowest_deliveries {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                adj_time(s.delay),
                s.at.format("%Y-%m-%d %H:%M:%S"),
                esc(&s.host),
                esc(&s.queue_id),
                esc(&s.recipient),
                esc(s.relay.as_deref().unwrap_or("-"))
            );
        }
        o.push_str("</table>\n");
    }
    crate::auth::html(&mut o, &r.auth);
    o.push_str("</body></html>\n");
    o
}

/// The SASL section alone (`pftrack report --auth`).
pub(crate) fn render_auth(r: &crate::AuthReport) -> String {
    let mut o = head(&r.title(), &r.period, r.generated_at);
    crate::auth::html(&mut o, &r.auth);
    o.push_str("</body></html>\n");
    o
}

fn values(t: &Traffic) -> [i64; 5] {
    [t.received, t.delivered, t.deferred, t.bounced, t.rejected]
}

/// Grouped vertical bars, one group per row of `rows`, one bar per series.
fn traffic_chart(o: &mut String, rows: &[Traffic], label: &str) {
    let max = rows.iter().flat_map(values).max().unwrap_or(0).max(1);
    let (h, top, bottom, left) = (220.0_f64, 10.0, 40.0, 40.0);
    let group = (1000.0 - left) / rows.len().max(1) as f64;
    let bar = (group - 4.0) / 5.0;
    let plot = h - top - bottom;
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"{h}\" viewBox=\"0 0 1000 {h}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    let _ = write!(
        o,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"1000\" y2=\"{}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        top + plot,
        top + plot,
        left - 4.0,
        top + 10.0,
        left - 4.0,
        top + plot
    );
    for (i, t) in rows.iter().enumerate() {
        let x0 = left + i as f64 * group + 2.0;
        for (j, v) in values(t).iter().enumerate() {
            let bh = plot * (*v as f64) / (max as f64);
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                x0 + j as f64 * bar,
                top + plot - bh,
                bar.max(0.5),
                bh,
                COLOURS[j],
                esc(&t.label),
                SERIES[j]
            );
        }
        let short = t
            .label
            .get(..2)
            .filter(|_| t.label.len() == 9)
            .unwrap_or(&t.label);
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x0 + group / 2.0,
            top + plot + 14.0,
            esc(short)
        );
    }
    for (j, name) in SERIES.iter().enumerate() {
        let x = left + j as f64 * 110.0;
        let _ = write!(
            o,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            h - 14.0,
            COLOURS[j],
            x + 14.0,
            h - 5.0
        );
    }
    o.push_str("</svg>\n");
}

fn traffic_table(o: &mut String, first: &str, rows: &[Traffic]) {
    let _ = write!(o, "<table><tr><th class=\"l\">{first}</th>");
    for s in SERIES {
        let _ = write!(o, "<th>{s}</th>");
    }
    o.push_str("</tr>\n");
    for t in rows {
        let _ = write!(o, "<tr><td class=\"l\">{}</td>", esc(&t.label));
        for v in values(t) {
            let _ = write!(o, "<td>{v}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

/// Horizontal bars: one per (label, value).
pub(crate) fn hbar_chart(o: &mut String, rows: &[(String, i64)], colour: &str) {
    if rows.is_empty() {
        o.push_str("<p class=\"muted\">none</p>\n");
        return;
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (row_h, label_w, width) = (18.0_f64, 300.0_f64, 1000.0_f64);
    let h = row_h * rows.len() as f64 + 4.0;
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{h}\" viewBox=\"0 0 {width} {h}\" role=\"img\">"
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let w = (width - label_w - 60.0) * (*v as f64) / (max as f64);
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{v}</text>",
            label_w - 6.0,
            y + 12.0,
            esc(&trim(label, 45)),
            row_h - 4.0,
            label_w + w + 4.0,
            y + 12.0
        );
    }
    o.push_str("</svg>\n");
}

fn addresses(o: &mut String, title: &str, rows: &[AddressStat], by_size: bool) {
    let _ = write!(o, "<div><h2>{}</h2>", esc(title));
    if rows.is_empty() {
        o.push_str("<p class=\"muted\">none</p></div>\n");
        return;
    }
    o.push_str("<table>");
    for a in rows {
        let n = if by_size {
            units(a.bytes)
        } else {
            a.messages.to_string()
        };
        let _ = write!(
            o,
            "<tr><td>{n}</td><td class=\"l\">{}</td></tr>",
            esc(&a.address)
        );
    }
    o.push_str("</table></div>\n");
}

fn reasons(o: &mut String, title: &str, groups: &[ReasonGroup], colour: &str) {
    let _ = writeln!(o, "<h2>{}</h2>", esc(title));
    if groups.is_empty() {
        o.push_str("<p class=\"muted\">none</p>\n");
        return;
    }
    let bars: Vec<(String, i64)> = groups
        .iter()
        .map(|g| (format!("{} ({})", g.reason, hard(g.hard)), g.count))
        .collect();
    hbar_chart(o, &bars, colour);
    o.push_str("<table><tr><th>count</th><th class=\"l\">reason / text</th></tr>\n");
    for g in groups {
        let _ = writeln!(
            o,
            "<tr><td><b>{}</b></td><td class=\"l\"><b>{}</b> ({})</td></tr>",
            g.count,
            esc(&g.reason),
            hard(g.hard)
        );
        for t in &g.texts {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td></tr>",
                t.count,
                esc(&trim(&t.text, 110))
            );
        }
    }
    o.push_str("</table>\n");
}

fn hard(h: Option<bool>) -> &'static str {
    match h {
        Some(true) => "hard",
        Some(false) => "soft",
        None => "?",
    }
}
