//! Bar charts as SVG, drawn on the server with presentation attributes only (no
//! script, no style attribute): each bar links to the search of its hour.

use chrono::{DateTime, TimeDelta, Utc};

use crate::html::{esc, query};

/// Colours of statuses in charts (also readable on dark backgrounds).
pub fn status_colour(status: &str) -> &'static str {
    match status {
        "sent" => "#2da44e",
        "deferred" => "#d4a72c",
        "bounced" => "#e5534b",
        "expired" => "#a40e26",
        "rejected" => "#db6d28",
        _ => "#8c959f",
    }
}

/// Hours drawn at most (a longer window is drawn by its last hours).
pub const MAX_CHART_HOURS: i64 = 24 * 31;

/// One bar segment: hour, series name, value.
pub struct Point<'a> {
    /// Start of the hour.
    pub hour: DateTime<Utc>,
    /// Series (status).
    pub series: &'a str,
    /// Value.
    pub value: i64,
}

/// A stacked bar chart per hour of `[from, to)`. `link(hour, series)` gives each
/// segment's target.
pub fn hourly(
    title: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    points: &[Point<'_>],
    series: &[&str],
    link: &dyn Fn(DateTime<Utc>, &str) -> String,
) -> String {
    let start = from.duration_trunc_hour();
    let hours = ((to - start).num_hours() + 1).clamp(1, MAX_CHART_HOURS);
    let start = to.duration_trunc_hour() - TimeDelta::hours(hours - 1);
    let (width, height, left, bottom) = (720.0_f64, 200.0_f64, 44.0_f64, 22.0_f64);
    let plot_w = width - left - 6.0;
    let plot_h = height - bottom - 8.0;
    let mut totals = vec![0i64; hours as usize];
    for p in points {
        let i = (p.hour - start).num_hours();
        if (0..hours).contains(&i) {
            totals[i as usize] += p.value;
        }
    }
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let bar_w = plot_w / hours as f64;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    // Axis: zero line and maximum.
    out.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#8c959f\" stroke-width=\"1\"/>\
         <text x=\"{tx}\" y=\"14\" text-anchor=\"end\">{max}</text>\
         <text x=\"{tx}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        y0 = 8.0 + plot_h,
        x1 = width - 6.0,
        tx = left - 4.0,
    ));
    let mut stack = vec![0i64; hours as usize];
    for s in series {
        for p in points.iter().filter(|p| p.series == *s && p.value > 0) {
            let i = (p.hour - start).num_hours();
            if !(0..hours).contains(&i) {
                continue;
            }
            let i = i as usize;
            let h = p.value as f64 / max as f64 * plot_h;
            let y = 8.0 + plot_h - (stack[i] as f64 / max as f64 * plot_h) - h;
            stack[i] += p.value;
            let x = left + i as f64 * bar_w;
            out.push_str(&format!(
                "<a href=\"{}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
                 fill=\"{}\"><title>{} {}: {}</title></rect></a>",
                esc(&link(p.hour, s)),
                (bar_w - 1.0).max(0.5),
                status_colour(s),
                p.hour.format("%Y-%m-%d %H:00 UTC"),
                esc(s),
                p.value
            ));
        }
    }
    // Hour labels: about six along the axis.
    let step = (hours / 6).max(1);
    for i in (0..hours).step_by(step as usize) {
        // A label must fit before the right edge.
        if left + i as f64 * bar_w > width - 40.0 {
            break;
        }
        let t = start + TimeDelta::hours(i);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            left + i as f64 * bar_w,
            height - 6.0,
            t.format(if hours > 48 { "%m-%d" } else { "%H:00" })
        ));
    }
    out.push_str("</svg>");
    out
}

/// Search link for one hour (and a status).
pub fn hour_search(hour: DateTime<Utc>, status: Option<&str>) -> String {
    let from = hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (hour + TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut pairs = vec![("from", from.as_str()), ("to", to.as_str())];
    if let Some(s) = status {
        pairs.push(("status", s));
    }
    format!("/search?{}", query(&pairs))
}

trait TruncHour {
    fn duration_trunc_hour(self) -> Self;
}

impl TruncHour for DateTime<Utc> {
    fn duration_trunc_hour(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(TimeDelta::hours(1)).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_without_inline_style() {
        let to = Utc::now();
        let from = to - TimeDelta::hours(3);
        let hour = TruncHour::duration_trunc_hour(to - TimeDelta::hours(1));
        let points = [
            Point {
                hour,
                series: "sent",
                value: 5,
            },
            Point {
                hour,
                series: "bounced",
                value: 2,
            },
        ];
        let svg = hourly("t<", from, to, &points, &["sent", "bounced"], &|h, s| {
            hour_search(h, Some(s))
        });
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("t&lt;"));
        assert!(!svg.contains("style="));
        assert!(svg.contains("status=bounced"));
    }
}
