//! Login rate limiting: failed logins counted per user name and per client address
//! over a sliding window. In memory (per `pftrack serve` process): a restart forgets
//! the counts, which only ever helps the legitimate user.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one user name may have within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_USER: usize = 5;
/// Failed logins (and bad bearer tokens) one client address may have within
/// [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_ADDRESS: usize = 20;
/// The sliding window of the limits.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most; beyond this the oldest entries are dropped, so a flood of
/// made-up user names cannot exhaust memory.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// The counters.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn user_key(user: &str) -> String {
    format!("u:{}", user.to_lowercase())
}

fn addr_key(addr: &str) -> String {
    format!("a:{addr}")
}

impl LoginLimiter {
    /// `Err(seconds to wait)` when the user or the address has used up its attempts.
    pub fn check(&self, user: Option<&str>, addr: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut map) = self.failures.lock() else {
            return Ok(());
        };
        let mut wait = 0;
        let keys = user
            .map(|u| (user_key(u), LOGIN_FAILURES_PER_USER))
            .into_iter()
            .chain(std::iter::once((
                addr_key(addr),
                LOGIN_FAILURES_PER_ADDRESS,
            )));
        for (key, limit) in keys {
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit
                    && let Some(oldest) = times.front()
                {
                    let left = LOGIN_WINDOW.saturating_sub(now.duration_since(*oldest));
                    wait = wait.max(left.as_secs().max(1));
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    /// Count a failure of `user` (when known) from `addr`.
    pub fn failed(&self, user: Option<&str>, addr: &str, now: Instant) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW)
            });
            if map.len() >= MAX_TRACKED_KEYS {
                map.clear();
            }
        }
        for key in user.map(user_key).into_iter().chain([addr_key(addr)]) {
            let times = map.entry(key).or_default();
            times.push_back(now);
            // Only the newest `limit` times matter; keep a few more at most.
            while times.len() > LOGIN_FAILURES_PER_ADDRESS {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the user's count (not the address's).
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&user_key(user));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_then_window_passes() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..LOGIN_FAILURES_PER_USER {
            assert!(l.check(Some("Ann"), "192.0.2.1", t0).is_ok());
            l.failed(Some("ann"), "192.0.2.1", t0);
        }
        let wait = l.check(Some("ANN"), "192.0.2.9", t0).unwrap_err();
        assert!(wait > 0 && wait <= LOGIN_WINDOW.as_secs());
        assert!(l.check(Some("bob"), "192.0.2.9", t0).is_ok());
        assert!(l.check(Some("ann"), "192.0.2.9", t0 + LOGIN_WINDOW).is_ok());
    }

    #[test]
    fn per_address() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..LOGIN_FAILURES_PER_ADDRESS {
            l.failed(Some(&format!("user{i}")), "198.51.100.7", t0);
        }
        assert!(l.check(Some("new"), "198.51.100.7", t0).is_err());
        assert!(l.check(None, "198.51.100.7", t0).is_err());
        assert!(l.check(Some("new"), "198.51.100.8", t0).is_ok());
    }
}
