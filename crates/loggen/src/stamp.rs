//! Fast syslog timestamp formatting: the date part is formatted once per day.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// Month abbreviations as `strftime("%b")` writes them in the C locale.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How stamps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StampFormat {
    /// `Mmm dd HH:MM:SS` with a space-padded day (rsyslog's traditional file format,
    /// no year, no zone).
    #[default]
    Classic,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM` (rsyslog's `RSYSLOG_FileFormat`).
    Rfc3339,
}

/// Formats local times given as microseconds after a start time.
#[derive(Debug, Clone)]
pub(crate) struct StampWriter {
    format: StampFormat,
    start: NaiveDateTime,
    /// `+HH:MM` for RFC 3339.
    offset: String,
    /// Day number (since `start`'s midnight) of `date_prefix`.
    cached_day: i64,
    /// `Mmm dd ` or `YYYY-MM-DDT` of `cached_day`.
    date_prefix: String,
    /// Microseconds from `start`'s midnight to `start`.
    start_in_day_us: i64,
}

impl StampWriter {
    pub(crate) fn new(format: StampFormat, start: NaiveDateTime, utc_offset_seconds: i32) -> Self {
        let sign = if utc_offset_seconds < 0 { '-' } else { '+' };
        let abs = utc_offset_seconds.unsigned_abs();
        let start_in_day_us = (start - start.date().and_time(chrono::NaiveTime::MIN))
            .num_microseconds()
            .unwrap_or(0);
        StampWriter {
            format,
            start,
            offset: format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60),
            cached_day: i64::MIN,
            date_prefix: String::new(),
            start_in_day_us,
        }
    }

    /// The local date and time `t_us` microseconds after the start.
    pub(crate) fn datetime(&self, t_us: i64) -> NaiveDateTime {
        self.start + TimeDelta::microseconds(t_us)
    }

    /// Append the stamp of `t_us` (microseconds after the start, ≥ 0) to `out`.
    pub(crate) fn write(&mut self, t_us: i64, out: &mut String) {
        let since_midnight = self.start_in_day_us + t_us;
        let day = since_midnight.div_euclid(DAY_US);
        let in_day = since_midnight.rem_euclid(DAY_US);
        if day != self.cached_day {
            self.cached_day = day;
            let date: NaiveDate = self.start.date() + TimeDelta::days(day);
            self.date_prefix.clear();
            match self.format {
                StampFormat::Classic => {
                    let m = MONTHS[date.month0() as usize];
                    self.date_prefix
                        .push_str(&format!("{m} {:>2} ", date.day()));
                }
                StampFormat::Rfc3339 => {
                    self.date_prefix.push_str(&format!(
                        "{:04}-{:02}-{:02}T",
                        date.year(),
                        date.month(),
                        date.day()
                    ));
                }
            }
        }
        out.push_str(&self.date_prefix);
        let secs = in_day / 1_000_000;
        let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        push2(out, h);
        out.push(':');
        push2(out, m);
        out.push(':');
        push2(out, s);
        if self.format == StampFormat::Rfc3339 {
            let us = in_day % 1_000_000;
            out.push('.');
            let mut div = 100_000;
            while div > 0 {
                out.push(char::from(b'0' + (us / div % 10) as u8));
                div /= 10;
            }
            out.push_str(&self.offset);
        }
    }
}

fn push2(out: &mut String, v: i64) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Postfix's `format_tv` with two significant digits and a resolution of 10 ms (the
/// `delay_logging_resolution_limit` default): `0.12`, `1.7`, `563`, `0`.
pub(crate) fn delay(us: i64, out: &mut String) {
    const MILLION: i64 = 1_000_000;
    /// Two significant digits.
    const WID: i64 = 100;
    let us = us.max(0);
    let (mut sec, mut usec) = (us / MILLION, us % MILLION);
    let mut ures = MILLION / 100;
    if sec > 0 {
        let mut n = 1;
        while sec >= n && n <= WID / 10 {
            n *= 10;
        }
        ures = (MILLION / WID) * n;
    } else {
        while usec >= WID * ures {
            ures *= 10;
        }
    }
    if ures > 1 {
        usec += ures / 2;
        if usec >= MILLION {
            sec += 1;
            usec -= MILLION;
        }
    }
    out.push_str(&sec.to_string());
    if usec >= ures {
        out.push('.');
        let (mut rem, mut n) = (usec, MILLION / 10);
        while rem >= ures && n > 0 {
            out.push(char::from(b'0' + (rem / n) as u8));
            rem %= n;
            n /= 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(us: i64) -> String {
        let mut s = String::new();
        delay(us, &mut s);
        s
    }

    #[test]
    fn delays_like_postfix() {
        assert_eq!(d(0), "0");
        assert_eq!(d(3_000), "0");
        assert_eq!(d(7_000), "0.01");
        assert_eq!(d(120_000), "0.12");
        assert_eq!(d(100_000), "0.1");
        assert_eq!(d(660_000), "0.66");
        assert_eq!(d(1_660_000), "1.7");
        assert_eq!(d(5_000_000), "5");
        assert_eq!(d(563_400_000), "563");
        assert_eq!(d(999_000), "1");
        assert_eq!(d(12_340_000), "12");
    }

    #[test]
    fn stamps() {
        let start = NaiveDate::from_ymd_opt(2025, 12, 31)
            .and_then(|d| d.and_hms_opt(23, 59, 58))
            .unwrap();
        let mut w = StampWriter::new(StampFormat::Classic, start, 0);
        let mut s = String::new();
        w.write(0, &mut s);
        s.push('|');
        w.write(2_500_000, &mut s);
        assert_eq!(s, "Dec 31 23:59:58|Jan  1 00:00:00");
        let mut w = StampWriter::new(StampFormat::Rfc3339, start, 3600 + 1800);
        let mut s = String::new();
        w.write(1_234_567, &mut s);
        assert_eq!(s, "2025-12-31T23:59:59.234567+01:30");
    }
}
