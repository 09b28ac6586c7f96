//! What to do after an attempt: the pure retry policy.
//!
//! 2xx: delivered. 410 Gone: the endpoint is disabled (the event stays pending until
//! it is enabled again). Other 4xx except 408 and 429: failed at once (the request
//! itself is refused; retrying cannot help). Everything else (3xx, 408, 429, 5xx, a
//! timeout, a refused or reset connection, a command that failed or hung): retried
//! with exponential backoff and jitter while the retry window (`retry_for`, from the
//! first attempt) lasts, `Retry-After` honoured up to `backoff_max`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx, exit 0, NOTIFY sent).
    Success,
    /// An HTTP answer other than 2xx; `Retry-After` when it gave one.
    Status {
        /// The status code.
        code: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or reset, timeout, garbage, a command that exited
    /// non-zero or was killed. Retried.
    Transient,
}

/// The decision on an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Done.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Given up: a non-retriable answer, or the retry window is over.
    Failed,
    /// 410 Gone: disable the sink; the event stays pending.
    Disable,
}

/// Backoff and retry window of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt (doubled after each further one).
    pub backoff_min: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// How long after the first attempt retries go on.
    pub retry_for: Duration,
}

/// Default first wait.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Default longest wait.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Default retry window: three days.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(3 * 86_400);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            retry_for: DEFAULT_RETRY_FOR,
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts, before jitter.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        self.backoff_min
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.backoff_max)
    }

    /// Decide after attempt number `attempts` (1 for the first) of a delivery whose
    /// retry window started at `since`. `jitter` in [0, 1] takes up to half of the
    /// wait away (so that many retries do not come back at once).
    pub fn decide(
        &self,
        outcome: &Outcome,
        attempts: u32,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Verdict {
        let mut wait = self.backoff(attempts);
        match outcome {
            Outcome::Success => return Verdict::Delivered,
            Outcome::Status { code: 410, .. } => return Verdict::Disable,
            Outcome::Status { code, .. } if (200..300).contains(code) => {
                return Verdict::Delivered;
            }
            Outcome::Status { code, .. }
                if (400..500).contains(code) && *code != 408 && *code != 429 =>
            {
                return Verdict::Failed;
            }
            Outcome::Status {
                retry_after: Some(after),
                ..
            } => wait = wait.max(*after).min(self.backoff_max),
            Outcome::Status { .. } | Outcome::Transient => {}
        }
        let jitter = jitter.clamp(0.0, 1.0);
        let wait = wait.mul_f64(1.0 - jitter / 2.0);
        let at = now + chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
        let deadline =
            since + chrono::TimeDelta::from_std(self.retry_for).unwrap_or(chrono::TimeDelta::MAX);
        if at > deadline {
            Verdict::Failed
        } else {
            Verdict::RetryAt(at)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn status(code: u16) -> Outcome {
        Outcome::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn answers() {
        let p = RetryPolicy::default();
        let d = |o: &Outcome| p.decide(o, 1, t(0), t(0), 0.0);
        let retry = Verdict::RetryAt(t(5));
        let table = [
            (Outcome::Success, Verdict::Delivered),
            (status(200), Verdict::Delivered),
            (status(204), Verdict::Delivered),
            (status(301), retry.clone()),
            (status(400), Verdict::Failed),
            (status(401), Verdict::Failed),
            (status(404), Verdict::Failed),
            (status(408), retry.clone()),
            (status(410), Verdict::Disable),
            (status(413), Verdict::Failed),
            (status(429), retry.clone()),
            (status(500), retry.clone()),
            (status(502), retry.clone()),
            (status(503), retry.clone()),
            (Outcome::Transient, retry),
        ];
        for (outcome, verdict) in table {
            assert_eq!(d(&outcome), verdict, "{outcome:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(5));
        assert_eq!(p.backoff(2), Duration::from_secs(10));
        assert_eq!(p.backoff(5), Duration::from_secs(80));
        assert_eq!(p.backoff(20), Duration::from_secs(3600));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(3600));
        // Full jitter takes half the wait away.
        assert_eq!(
            p.decide(&Outcome::Transient, 2, t(0), t(0), 1.0),
            Verdict::RetryAt(t(5))
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = RetryPolicy::default();
        let o = |s| Outcome::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(
            p.decide(&o(120), 1, t(0), t(0), 0.0),
            Verdict::RetryAt(t(120))
        );
        assert_eq!(
            p.decide(&o(999_999), 1, t(0), t(0), 0.0),
            Verdict::RetryAt(t(3600))
        );
    }

    #[test]
    fn the_window_ends_retries() {
        let p = RetryPolicy::default();
        let three_days = 3 * 86_400;
        assert_eq!(
            p.decide(&Outcome::Transient, 30, t(0), t(three_days - 3600), 0.0),
            Verdict::RetryAt(t(three_days))
        );
        assert_eq!(
            p.decide(&Outcome::Transient, 30, t(0), t(three_days - 3599), 0.0),
            Verdict::Failed
        );
        // A success is a success however late.
        assert_eq!(
            p.decide(&Outcome::Success, 30, t(0), t(10 * three_days), 0.0),
            Verdict::Delivered
        );
    }
}
