//! Year inference for yearless syslog stamps, and conversion of stamps to UTC.
//!
//! Classic syslog stamps (`Dec 31 23:59:59`) have no year. [`YearInference`] gives
//! them one while a file is read front to back:
//!
//! 1. The **first** yearless stamp gets the latest year that puts it no later than
//!    the reference time plus [`REFERENCE_TOLERANCE`]. The reference is the file's
//!    mtime (the last line was written no later than that) or, with an explicit year,
//!    the last instant of that year ([`Reference::Year`]), so `--year Y` means "the
//!    file starts in Y".
//! 2. Every later stamp gets the year that makes it the earliest time not before the
//!    latest time seen so far minus [`OUT_OF_ORDER_TOLERANCE`]. A file that runs
//!    `Dec 31 → Jan 1` thus rolls over to the next year, while a line a few seconds
//!    out of order around midnight on New Year's Eve stays in the old year.
//!
//! A file written in November that holds December lines is therefore from the
//! previous year, and a file spanning December → January whose mtime is in January
//! gets its December lines in the previous year: the same years an explicit
//! `--year` for the December gives.
//!
//! [`Timestamper`] combines this with a [`LocalConverter`] to turn a
//! [`Stamp`](crate::syslog::Stamp) into a UTC instant; stamps with an offset ignore
//! the zone.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};

use crate::syslog::Stamp;
use crate::zone::{LocalConverter, Zone};

/// How much later than the reference time the first stamp of a file may be and still
/// be placed in the reference's year: covers clock skew between the logging host and
/// the file system, and a reference taken in another zone.
pub const REFERENCE_TOLERANCE: TimeDelta = TimeDelta::days(1);

/// How far a stamp may go back from the latest one seen in the same file and still be
/// taken as out of order rather than as the next year. Merged writers disorder lines
/// by seconds; a jump back of more than this is a New Year rollover.
pub const OUT_OF_ORDER_TOLERANCE: TimeDelta = TimeDelta::days(7);

/// How many years before the reference the first stamp may be placed when its day
/// does not exist in the nearer years (`Feb 29`).
const MAX_YEARS_BACK: i32 = 8;

/// What the year of a file's first yearless stamp is inferred from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// A time no earlier than the file's last line, such as its mtime.
    Time(DateTime<Utc>),
    /// The year of the file's first line.
    Year(i32),
}

/// Gives yearless stamps of one file a year; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct YearInference {
    /// The reference as a local time.
    reference: NaiveDateTime,
    /// Latest local time resolved so far.
    latest: Option<NaiveDateTime>,
    /// Month, day and resolved date of the previous yearless stamp: the fast path for
    /// the common case of many lines on the same day.
    previous: Option<(u8, u8, NaiveDate)>,
}

impl YearInference {
    /// Inference starting from `reference`, already expressed as a local time.
    pub fn new(reference_local: NaiveDateTime) -> Self {
        YearInference {
            reference: reference_local,
            latest: None,
            previous: None,
        }
    }

    /// Inference from a [`Reference`]; `to_local` turns a reference time into local
    /// time (see [`LocalConverter::to_local`]).
    pub fn from_reference(reference: Reference, converter: &LocalConverter) -> Self {
        let local = match reference {
            Reference::Time(t) => converter.to_local(t),
            Reference::Year(y) => NaiveDate::from_ymd_opt(y, 12, 31)
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .unwrap_or(NaiveDateTime::MAX),
        };
        YearInference::new(local)
    }

    /// Continue after a checkpoint whose latest resolved local time was `latest`.
    pub fn set_latest(&mut self, latest: NaiveDateTime) {
        self.latest = Some(latest);
        self.previous = None;
    }

    /// The latest local time resolved so far.
    pub fn latest(&self) -> Option<NaiveDateTime> {
        self.latest
    }

    /// The local date and time of `stamp`, placing yearless stamps in a year.
    pub fn resolve(&mut self, stamp: &Stamp) -> Result<NaiveDateTime, &'static str> {
        let time = NaiveTime::from_hms_nano_opt(
            u32::from(stamp.hour),
            u32::from(stamp.minute),
            u32::from(stamp.second),
            stamp.nanos,
        )
        .ok_or("bad time")?;
        let month = u32::from(stamp.month);
        let day = u32::from(stamp.day);
        let resolved = if let Some(year) = stamp.year {
            NaiveDate::from_ymd_opt(year, month, day)
                .ok_or("day does not exist")?
                .and_time(time)
        } else {
            let date = match self.previous {
                Some((m, d, date)) if m == stamp.month && d == stamp.day => date,
                _ => self.infer_date(month, day, time)?,
            };
            self.previous = Some((stamp.month, stamp.day, date));
            date.and_time(time)
        };
        if self.latest.is_none_or(|l| resolved > l) {
            self.latest = Some(resolved);
        }
        Ok(resolved)
    }

    fn infer_date(&self, month: u32, day: u32, time: NaiveTime) -> Result<NaiveDate, &'static str> {
        match self.latest {
            None => {
                let limit = self.reference + REFERENCE_TOLERANCE;
                let top = limit.date().year() + 1;
                (top - MAX_YEARS_BACK..=top)
                    .rev()
                    .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
                    .find(|d| d.and_time(time) <= limit)
                    .ok_or("day does not exist near the reference year")
            }
            Some(latest) => {
                let floor = latest - OUT_OF_ORDER_TOLERANCE;
                let y = latest.date().year();
                (y - 1..=y + 1)
                    .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
                    .find(|d| d.and_time(time) >= floor)
                    .ok_or("day does not exist in the inferred year")
            }
        }
    }
}

/// Turns the stamps of one file into UTC instants: year inference for yearless
/// stamps, then the configured zone for zone-less ones.
#[derive(Debug, Clone)]
pub struct Timestamper {
    years: YearInference,
    zone: LocalConverter,
}

impl Timestamper {
    /// A timestamper for one file.
    pub fn new(zone: Zone, reference: Reference) -> Self {
        let zone = LocalConverter::new(zone);
        Timestamper {
            years: YearInference::from_reference(reference, &zone),
            zone,
        }
    }

    /// Continue after a checkpoint: see [`YearInference::set_latest`].
    pub fn set_latest_local(&mut self, latest: NaiveDateTime) {
        self.years.set_latest(latest);
    }

    /// The latest local time resolved so far.
    pub fn latest_local(&self) -> Option<NaiveDateTime> {
        self.years.latest()
    }

    /// The UTC instant of `stamp`.
    pub fn to_utc(&mut self, stamp: &Stamp) -> Result<DateTime<Utc>, &'static str> {
        let local = self.years.resolve(stamp)?;
        Ok(match stamp.offset {
            Some(offset) => (local - TimeDelta::seconds(i64::from(offset))).and_utc(),
            None => self.zone.to_utc(local),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(month: u8, day: u8, hour: u8) -> Stamp {
        Stamp {
            year: None,
            month,
            day,
            hour,
            minute: 0,
            second: 0,
            nanos: 0,
            offset: None,
        }
    }

    fn utc(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap()
            .and_utc()
    }

    fn years(reference: Reference, stamps: &[Stamp]) -> Vec<i32> {
        let mut t = YearInference::from_reference(reference, &LocalConverter::new(Zone::Utc));
        stamps
            .iter()
            .map(|s| t.resolve(s).unwrap().year())
            .collect()
    }

    #[test]
    fn november_file_with_december_lines_is_previous_year() {
        let got = years(
            Reference::Time(utc(2025, 11, 20)),
            &[stamp(12, 5, 0), stamp(12, 6, 0)],
        );
        assert_eq!(got, [2024, 2024]);
        // A November line in a November file is this year.
        assert_eq!(
            years(Reference::Time(utc(2025, 11, 20)), &[stamp(11, 19, 0)]),
            [2025]
        );
        // Tolerance: a line up to a day after the mtime stays in the mtime's year.
        assert_eq!(
            years(Reference::Time(utc(2025, 11, 20)), &[stamp(11, 21, 0)]),
            [2025]
        );
        assert_eq!(
            years(Reference::Time(utc(2025, 11, 20)), &[stamp(11, 23, 0)]),
            [2024]
        );
    }

    #[test]
    fn december_to_january_rollover_within_a_file() {
        let lines = [
            stamp(12, 30, 10),
            stamp(12, 31, 23),
            stamp(1, 1, 0),
            stamp(1, 2, 5),
        ];
        let by_mtime = years(Reference::Time(utc(2026, 1, 3)), &lines);
        assert_eq!(by_mtime, [2025, 2025, 2026, 2026]);
        // An explicit year for the file's start gives the same answer.
        let by_year = years(Reference::Year(2025), &lines);
        assert_eq!(by_year, by_mtime);
    }

    #[test]
    fn out_of_order_line_at_new_year_stays_in_old_year() {
        let mut late = stamp(12, 31, 23);
        late.minute = 59;
        late.second = 58;
        let lines = [stamp(12, 31, 22), stamp(1, 1, 0), late, stamp(1, 1, 1)];
        assert_eq!(
            years(Reference::Year(2025), &lines),
            [2025, 2026, 2025, 2026]
        );
    }

    #[test]
    fn long_quiet_gap_still_rolls_over() {
        // June, then next March: a jump back in month order is the next year.
        let lines = [stamp(6, 1, 0), stamp(3, 1, 0)];
        assert_eq!(years(Reference::Year(2024), &lines), [2024, 2025]);
    }

    #[test]
    fn february_29() {
        // First line Feb 29 with a 2025 reference: the latest leap year before, 2024.
        assert_eq!(
            years(Reference::Time(utc(2025, 6, 1)), &[stamp(2, 29, 0)]),
            [2024]
        );
        // Carried into a non-leap year: reported, not panicking.
        let mut t =
            YearInference::from_reference(Reference::Year(2025), &LocalConverter::new(Zone::Utc));
        assert!(t.resolve(&stamp(2, 28, 0)).is_ok());
        assert!(t.resolve(&stamp(2, 29, 0)).is_err());
        // Feb 30 never exists.
        assert!(t.resolve(&stamp(2, 30, 0)).is_err());
    }

    #[test]
    fn stamps_with_year_and_offset() {
        let mut t = Timestamper::new(
            Zone::Named(chrono_tz::Europe::Prague),
            Reference::Year(2000),
        );
        let mut s = stamp(3, 14, 6);
        s.year = Some(2025);
        s.offset = Some(3600);
        assert_eq!(
            t.to_utc(&s).unwrap().naive_utc().to_string(),
            "2025-03-14 05:00:00"
        );
        // Zone-less with year: Prague winter time.
        s.offset = None;
        assert_eq!(
            t.to_utc(&s).unwrap().naive_utc().to_string(),
            "2025-03-14 05:00:00"
        );
        // Yearless: the year comes from the inference state (latest seen 2025-03-14).
        let s = stamp(3, 15, 6);
        assert_eq!(
            t.to_utc(&s).unwrap().naive_utc().to_string(),
            "2025-03-15 05:00:00"
        );
    }

    #[test]
    fn reference_near_new_year_in_local_zone() {
        // mtime 2025-12-31 23:30 UTC is already 2026-01-01 in Prague; a Jan 1 line
        // must land in 2026, not 2025.
        let mtime = NaiveDate::from_ymd_opt(2025, 12, 31)
            .and_then(|d| d.and_hms_opt(23, 30, 0))
            .unwrap()
            .and_utc();
        let mut t = Timestamper::new(
            Zone::Named(chrono_tz::Europe::Prague),
            Reference::Time(mtime),
        );
        let got = t.to_utc(&stamp(1, 1, 0)).unwrap();
        assert_eq!(got.naive_utc().to_string(), "2025-12-31 23:00:00");
    }
}
