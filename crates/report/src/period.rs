//! The report's period: `--since/--until` (RFC 3339) or `-d today|yesterday|DATE|DATE..DATE`,
//! days in UTC unless a time zone is given.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::ReportError;

/// A half-open interval `[since, until)` and the zone its days and hours are read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First instant included.
    pub since: DateTime<Utc>,
    /// First instant excluded.
    pub until: DateTime<Utc>,
    /// Zone of the per-day and per-hour buckets (and of `-d` days).
    pub tz: Tz,
}

impl Period {
    /// From `--since`/`--until` (RFC 3339; a missing end is "now", a missing start is
    /// 24 hours before the end) or `-d` (`day`), relative to `now`.
    pub fn resolve(
        since: Option<&str>,
        until: Option<&str>,
        day: Option<&str>,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<Period, ReportError> {
        if let Some(day) = day {
            if since.is_some() || until.is_some() {
                return Err(ReportError::Period(
                    "-d cannot be combined with --since/--until".into(),
                ));
            }
            let today = now.with_timezone(&tz).date_naive();
            let (first, last) = match day {
                "today" => (today, today),
                "yesterday" => {
                    let y = today - Days::new(1);
                    (y, y)
                }
                other => match other.split_once("..") {
                    Some((a, b)) => (parse_date(a)?, parse_date(b)?),
                    None => {
                        let d = parse_date(other)?;
                        (d, d)
                    }
                },
            };
            if last < first {
                return Err(ReportError::Period(format!(
                    "{day}: the last day is before the first"
                )));
            }
            return Ok(Period {
                since: midnight(first, tz)?,
                until: midnight(last + Days::new(1), tz)?,
                tz,
            });
        }
        let until = match until {
            Some(u) => parse_instant(u)?,
            None => now,
        };
        let since = match since {
            Some(s) => parse_instant(s)?,
            None => until - chrono::Duration::hours(24),
        };
        if until <= since {
            return Err(ReportError::Period("--until must be after --since".into()));
        }
        Ok(Period { since, until, tz })
    }
}

fn parse_date(s: &str) -> Result<NaiveDate, ReportError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
        ReportError::Period(format!(
            "{s:?}: expected today, yesterday, YYYY-MM-DD or DATE..DATE ({e})"
        ))
    })
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, ReportError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ReportError::Period(format!("{s:?}: expected an RFC 3339 time ({e})")))
}

/// The first instant of `day` in `tz` (a day starting in a DST gap starts at its
/// earliest existing instant).
fn midnight(day: NaiveDate, tz: Tz) -> Result<DateTime<Utc>, ReportError> {
    let mut t = day
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| ReportError::Period(format!("{day}: no midnight")))?;
    for _ in 0..4 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return Ok(dt.with_timezone(&Utc));
        }
        t += chrono::Duration::minutes(30);
    }
    Err(ReportError::Period(format!("{day}: no start in {tz}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn days() {
        let p = Period::resolve(None, None, Some("yesterday"), Tz::UTC, now()).ok();
        let p = p.map(|p| (p.since.to_rfc3339(), p.until.to_rfc3339()));
        assert_eq!(
            p,
            Some((
                "2025-03-13T00:00:00+00:00".into(),
                "2025-03-14T00:00:00+00:00".into()
            ))
        );
        let p = Period::resolve(
            None,
            None,
            Some("2025-03-01..2025-03-02"),
            Tz::Europe__Berlin,
            now(),
        )
        .ok()
        .map(|p| (p.since.to_rfc3339(), p.until.to_rfc3339()));
        assert_eq!(
            p,
            Some((
                "2025-02-28T23:00:00+00:00".into(),
                "2025-03-02T23:00:00+00:00".into()
            ))
        );
        assert!(
            Period::resolve(None, None, Some("2025-03-02..2025-03-01"), Tz::UTC, now()).is_err()
        );
        assert!(Period::resolve(None, None, Some("march"), Tz::UTC, now()).is_err());
    }

    #[test]
    fn instants() {
        let p = Period::resolve(Some("2025-03-14T06:00:00Z"), None, None, Tz::UTC, now()).ok();
        assert_eq!(p.map(|p| p.until), Some(now()));
        assert!(Period::resolve(Some("2025-03-15T00:00:00Z"), None, None, Tz::UTC, now()).is_err());
    }
}
