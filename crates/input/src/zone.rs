//! Time zones for stamps that carry no offset, and a cached local→UTC converter.

use std::str::FromStr;

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc,
};

/// The time zone of zone-less stamps (classic BSD, leading-year BSD, RFC 3339 without
/// offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`), as chrono's `Local` sees it.
    #[default]
    Local,
    /// UTC.
    Utc,
    /// A fixed offset.
    Fixed(FixedOffset),
    /// A named IANA zone.
    Named(chrono_tz::Tz),
}

/// Error for a zone string that is none of `local`, `UTC`, `±HH:MM` or an IANA name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown time zone {0:?} (expected local, UTC, +HH:MM or an IANA name such as Europe/Prague)"
)]
pub struct ZoneParseError(pub String);

impl FromStr for Zone {
    type Err = ZoneParseError;

    /// `local`, `UTC`/`Z`, `+01:00`/`-0530`, or an IANA name (`Europe/Prague`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::Utc);
        }
        if t.starts_with(['+', '-']) {
            return parse_offset(t)
                .map(Zone::Fixed)
                .ok_or_else(|| ZoneParseError(s.to_owned()));
        }
        t.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| ZoneParseError(s.to_owned()))
    }
}

fn parse_offset(t: &str) -> Option<FixedOffset> {
    let sign = if t.starts_with('-') { -1 } else { 1 };
    let digits: String = t[1..].chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits.get(0..2)?.parse().ok()?;
    let m: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// How far back [`LocalConverter`] looks for the offset in force before a DST gap, in
/// one-hour steps. Gaps are normally one hour; Samoa skipped a whole day in 2011.
const MAX_GAP_STEPS: i32 = 48;

/// Converts local times of one [`Zone`] to UTC, caching the offset per local minute.
///
/// Zone transitions fall on whole minutes (all in the tz database since the end of
/// local mean time), so a per-minute cache gives the same answers as asking every
/// time, at a fraction of the cost: consecutive log lines mostly share a minute.
///
/// Times in a DST fold (clocks set back) take the **earlier** instant; times in a gap
/// (clocks set forward) are read with the offset in force **before** the gap, as a
/// clock that had not jumped yet would show them. Neither case panics.
#[derive(Debug, Clone)]
pub struct LocalConverter {
    zone: Zone,
    /// Local date and minute of the day (`hour * 60 + minute`) of the cached offset.
    cached_minute: Option<(NaiveDate, u32)>,
    /// Offset in seconds to subtract from local time to get UTC.
    cached_offset: i32,
}

impl LocalConverter {
    /// A converter for `zone`.
    pub fn new(zone: Zone) -> Self {
        LocalConverter {
            zone,
            cached_minute: None,
            cached_offset: 0,
        }
    }

    /// The zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The UTC instant of a local time.
    pub fn to_utc(&mut self, local: NaiveDateTime) -> DateTime<Utc> {
        let offset = match self.zone {
            Zone::Utc => return local.and_utc(),
            Zone::Fixed(f) => f.local_minus_utc(),
            Zone::Local | Zone::Named(_) => {
                // The minute as date and minute of the day: cheaper than a timestamp.
                let minute = Some((local.date(), local.hour() * 60 + local.minute()));
                if minute != self.cached_minute {
                    self.cached_offset = offset_of(self.zone, local);
                    self.cached_minute = minute;
                }
                self.cached_offset
            }
        };
        if offset == 0 {
            // Subtracting nothing: skip chrono's checked arithmetic.
            return local.and_utc();
        }
        (local - TimeDelta::seconds(i64::from(offset))).and_utc()
    }

    /// The local time of a UTC instant (for a reference time such as a file's mtime).
    pub fn to_local(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        match self.zone {
            Zone::Local => utc.with_timezone(&chrono::Local).naive_local(),
            Zone::Utc => utc.naive_utc(),
            Zone::Fixed(f) => utc.with_timezone(&f).naive_local(),
            Zone::Named(tz) => utc.with_timezone(&tz).naive_local(),
        }
    }
}

/// Offset (seconds east of UTC) to apply to `local` in `zone`; see [`LocalConverter`]
/// for folds and gaps.
fn offset_of(zone: Zone, local: NaiveDateTime) -> i32 {
    match zone {
        Zone::Utc => 0,
        Zone::Fixed(f) => f.local_minus_utc(),
        Zone::Local => resolve(&chrono::Local, local),
        Zone::Named(tz) => resolve(&tz, local),
    }
}

fn resolve<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> i32 {
    match tz.offset_from_local_datetime(&local) {
        LocalResult::Single(o) => o.fix().local_minus_utc(),
        // Earlier instant = larger offset east.
        LocalResult::Ambiguous(a, b) => a.fix().local_minus_utc().max(b.fix().local_minus_utc()),
        LocalResult::None => {
            for step in 1..=MAX_GAP_STEPS {
                let before = local - TimeDelta::hours(i64::from(step));
                match tz.offset_from_local_datetime(&before) {
                    LocalResult::Single(o) => return o.fix().local_minus_utc(),
                    LocalResult::Ambiguous(a, b) => {
                        return a.fix().local_minus_utc().min(b.fix().local_minus_utc());
                    }
                    LocalResult::None => {}
                }
            }
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .unwrap()
    }

    #[test]
    fn parse_zones() {
        assert_eq!("local".parse::<Zone>(), Ok(Zone::Local));
        assert_eq!("UTC".parse::<Zone>(), Ok(Zone::Utc));
        assert_eq!(
            "+01:00".parse::<Zone>(),
            Ok(Zone::Fixed(FixedOffset::east_opt(3600).unwrap()))
        );
        assert_eq!(
            "-0530".parse::<Zone>(),
            Ok(Zone::Fixed(FixedOffset::east_opt(-19800).unwrap()))
        );
        assert_eq!(
            "Europe/Prague".parse::<Zone>(),
            Ok(Zone::Named(chrono_tz::Europe::Prague))
        );
        assert!("Mars/Olympus".parse::<Zone>().is_err());
        assert!("+25:00".parse::<Zone>().is_err());
    }

    #[test]
    fn named_zone_normal_fold_and_gap() {
        let mut c = LocalConverter::new(Zone::Named(chrono_tz::Europe::Prague));
        // Winter: +01:00.
        assert_eq!(
            c.to_utc(naive(2025, 1, 15, 12, 0, 0)).naive_utc(),
            naive(2025, 1, 15, 11, 0, 0)
        );
        // Gap 2025-03-30 02:00 → 03:00: 02:30 read with +01:00 (before the jump).
        assert_eq!(
            c.to_utc(naive(2025, 3, 30, 2, 30, 0)).naive_utc(),
            naive(2025, 3, 30, 1, 30, 0)
        );
        // Fold 2025-10-26 03:00 → 02:00: 02:30 is the earlier instant, +02:00.
        assert_eq!(
            c.to_utc(naive(2025, 10, 26, 2, 30, 0)).naive_utc(),
            naive(2025, 10, 26, 0, 30, 0)
        );
        // Cache: same minute, later second.
        assert_eq!(
            c.to_utc(naive(2025, 10, 26, 2, 30, 59)).naive_utc(),
            naive(2025, 10, 26, 0, 30, 59)
        );
        // Summer: +02:00.
        assert_eq!(
            c.to_utc(naive(2025, 7, 1, 12, 0, 0)).naive_utc(),
            naive(2025, 7, 1, 10, 0, 0)
        );
    }

    #[test]
    fn samoa_skipped_day_does_not_panic() {
        let mut c = LocalConverter::new(Zone::Named(chrono_tz::Pacific::Apia));
        let _ = c.to_utc(naive(2011, 12, 30, 12, 0, 0));
    }

    #[test]
    fn fixed_and_utc_round_trip() {
        let f = FixedOffset::east_opt(-7200).unwrap();
        let mut c = LocalConverter::new(Zone::Fixed(f));
        let utc = c.to_utc(naive(2025, 1, 1, 0, 0, 0));
        assert_eq!(utc.naive_utc(), naive(2025, 1, 1, 2, 0, 0));
        assert_eq!(c.to_local(utc), naive(2025, 1, 1, 0, 0, 0));
        let mut u = LocalConverter::new(Zone::Utc);
        assert_eq!(
            u.to_utc(naive(2025, 1, 1, 0, 0, 0)).naive_utc(),
            naive(2025, 1, 1, 0, 0, 0)
        );
    }
}
