//! SASL authentication failures (`warning: host[addr]: SASL LOGIN authentication
//! failed: …`) and brute-force detection over them.
//!
//! Each failure becomes one [`AuthFailure`] row, numbered among identical failures in
//! its instant (like NOQUEUE decisions), so that a line read again never becomes a
//! second row. [`BruteforceWatch`] counts failures per (host, client address) in a
//! sliding window and raises a [`BruteforceAlarm`] when the count *crosses* the
//! threshold: at failure `f` when at least `threshold` failures of the address lie
//! within `window` up to `f`, and fewer did at the address's previous failure. A
//! steady attack therefore raises one alarm, a new wave after a lull another. The
//! decision at `f` depends only on failures within two windows before it, which is what
//! [`crate::Extractor::prime_auth`] replays after a restart.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::HashMap;
use serde::Serialize;

/// Longest reason text kept, in bytes (cut at a character boundary). Postfix logs the
/// SASL server's reply unbounded; real ones are a few dozen bytes, so this only bounds
/// what a damaged or hostile line can put in the database.
pub const MAX_AUTH_REASON_LEN: usize = 1024;

/// Longest SASL username kept, in bytes. Postfix itself logs at most 100 (`%.100s`).
pub const MAX_AUTH_USERNAME_LEN: usize = 256;

/// Client addresses whose recent failures [`BruteforceWatch`] keeps before a forced
/// sweep (those without a failure within the window are dropped first; a flood of
/// more distinct addresses than this within one window forgets them all).
pub const MAX_WATCHED_CLIENTS: usize = 100_000;

/// The highest threshold accepted: the watch keeps at most this many failure times
/// per address.
pub const MAX_BRUTEFORCE_THRESHOLD: u32 = 10_000;

/// Distinct usernames an alarm names at most (the most frequent first, then by name).
pub const MAX_ALARM_USERNAMES: usize = 20;

/// One SASL authentication failure as logged by smtpd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct AuthFailure {
    /// Host that logged it.
    pub host: Arc<str>,
    /// When.
    pub at: DateTime<Utc>,
    /// The syslog identifier of the smtpd that logged it (`postfix/submission/smtpd`),
    /// which names the Postfix instance and master.cf service.
    pub service: String,
    /// Client hostname as logged (`unknown` when its address has no reverse DNS name).
    pub client_name: String,
    /// Client address as logged inside the brackets.
    pub client_addr: String,
    /// Client port, when `smtpd_client_port_logging` is on.
    pub client_port: Option<u16>,
    /// SASL mechanism (`LOGIN`, `PLAIN`, …).
    pub method: String,
    /// `sasl_username=`, when logged and known.
    pub username: Option<String>,
    /// The SASL server's reason (at most [`MAX_AUTH_REASON_LEN`] bytes); empty when
    /// none was logged.
    pub reason: String,
    /// The client gave up (`authentication aborted`) rather than failed.
    pub aborted: bool,
}

impl AuthFailure {
    /// Whether the client's address resolved to a name (smtpd logs `unknown` when it
    /// did not, or when forward and reverse DNS disagree).
    pub fn reverse_dns_known(&self) -> bool {
        !self.client_name.is_empty() && self.client_name != "unknown"
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// When failures of one client address count as brute force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BruteforceRule {
    /// Failures within `window` that raise an alarm (1 ..= [`MAX_BRUTEFORCE_THRESHOLD`]).
    pub threshold: u32,
    /// The sliding window.
    pub window: TimeDelta,
}

impl Default for BruteforceRule {
    /// 10 failures within 10 minutes.
    fn default() -> Self {
        BruteforceRule {
            threshold: 10,
            window: TimeDelta::minutes(10),
        }
    }
}

/// Failures from one client address crossed the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BruteforceAlarm {
    /// Host that logged the failures.
    pub host: Arc<str>,
    /// The client address.
    pub client_addr: String,
    /// Time of the failure that crossed the threshold.
    pub at: DateTime<Utc>,
    /// Which of the identical failures in that instant it was (see
    /// [`crate::Fact::AuthFailure`]).
    pub occurrence: i32,
    /// Failures of the address within the window up to `at` (the threshold).
    pub count: u32,
    /// The earliest of them.
    pub first_at: DateTime<Utc>,
    /// The window, in seconds.
    pub window_secs: i64,
    /// The distinct usernames they tried (at most [`MAX_ALARM_USERNAMES`]).
    pub usernames: Vec<String>,
    /// The client's name as logged at `at`.
    pub client_name: String,
}

#[derive(Debug, Default)]
struct Watched {
    /// The latest failures (at most `threshold`), oldest first, with their usernames.
    recent: VecDeque<(DateTime<Utc>, Option<Arc<str>>)>,
    /// Whether the count had reached the threshold at the latest failure.
    above: bool,
}

/// The sliding-window counter behind `auth.bruteforce`.
#[derive(Debug)]
pub struct BruteforceWatch {
    rule: BruteforceRule,
    clients: HashMap<(Arc<str>, Box<str>), Watched>,
}

impl BruteforceWatch {
    /// A watch with nothing in memory. The threshold is clamped to
    /// 1 ..= [`MAX_BRUTEFORCE_THRESHOLD`] (configuration checks it first).
    pub fn new(rule: BruteforceRule) -> Self {
        BruteforceWatch {
            rule: BruteforceRule {
                threshold: rule.threshold.clamp(1, MAX_BRUTEFORCE_THRESHOLD),
                window: rule.window.max(TimeDelta::seconds(1)),
            },
            clients: HashMap::default(),
        }
    }

    /// The rule in force.
    pub fn rule(&self) -> BruteforceRule {
        self.rule
    }

    /// Count `f` (its `occurrence` in its instant); the alarm when it crosses the
    /// threshold. `latest` is the latest line time seen (for sweeping).
    pub fn observe(
        &mut self,
        f: &AuthFailure,
        occurrence: i32,
        latest: DateTime<Utc>,
    ) -> Option<BruteforceAlarm> {
        if self.clients.len() >= MAX_WATCHED_CLIENTS {
            let horizon = latest - self.rule.window;
            self.clients
                .retain(|_, w| w.recent.back().is_some_and(|(t, _)| *t > horizon));
            if self.clients.len() >= MAX_WATCHED_CLIENTS {
                self.clients.clear();
            }
        }
        let key = (f.host.clone(), Box::from(f.client_addr.as_str()));
        let w = self.clients.entry(key).or_default();
        let horizon = f.at - self.rule.window;
        while w.recent.front().is_some_and(|(t, _)| *t <= horizon) {
            w.recent.pop_front();
        }
        // No earlier failure within the window: whatever the count was then, it has
        // fallen below the threshold since (matters only for a threshold of 1).
        let was_above = w.above && !w.recent.is_empty();
        let threshold = self.rule.threshold as usize;
        if w.recent.len() >= threshold {
            w.recent.pop_front();
        }
        w.recent
            .push_back((f.at, f.username.as_deref().map(Arc::from)));
        w.above = w.recent.len() >= threshold;
        if !w.above || was_above {
            return None;
        }
        let mut names: Vec<(usize, &str)> = Vec::new();
        for name in w.recent.iter().filter_map(|(_, u)| u.as_deref()) {
            match names.iter_mut().find(|(_, n)| *n == name) {
                Some((count, _)) => *count += 1,
                None => names.push((1, name)),
            }
        }
        names.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        Some(BruteforceAlarm {
            host: f.host.clone(),
            client_addr: f.client_addr.clone(),
            at: f.at,
            occurrence,
            count: u32::try_from(w.recent.len()).unwrap_or(u32::MAX),
            first_at: w.recent.front().map_or(f.at, |(t, _)| *t),
            window_secs: self.rule.window.num_seconds(),
            usernames: names
                .into_iter()
                .take(MAX_ALARM_USERNAMES)
                .map(|(_, n)| n.to_owned())
                .collect(),
            client_name: f.client_name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn failure(at: i64, addr: &str, user: &str) -> AuthFailure {
        AuthFailure {
            host: Arc::from("mx1"),
            at: DateTime::from_timestamp(at, 0).unwrap(),
            service: "postfix/smtpd".into(),
            client_name: "unknown".into(),
            client_addr: addr.into(),
            client_port: None,
            method: "LOGIN".into(),
            username: Some(user.into()),
            reason: "authentication failure".into(),
            aborted: false,
        }
    }

    fn run(watch: &mut BruteforceWatch, times: &[i64]) -> Vec<i64> {
        times
            .iter()
            .filter_map(|t| {
                let f = failure(*t, "192.0.2.1", "admin");
                watch.observe(&f, 1, f.at).map(|a| a.at.timestamp())
            })
            .collect()
    }

    #[test]
    fn fires_once_when_crossing_and_again_after_a_lull() {
        let rule = BruteforceRule {
            threshold: 3,
            window: TimeDelta::seconds(60),
        };
        let mut w = BruteforceWatch::new(rule);
        // 3 within 60 s at t=20; it stays above (no second alarm); a lull; again.
        assert_eq!(
            run(&mut w, &[0, 10, 20, 30, 40, 50, 200, 210, 220, 300]),
            vec![20, 220]
        );
        // Spread out: never 3 within a window.
        let mut w = BruteforceWatch::new(rule);
        assert_eq!(run(&mut w, &[0, 40, 80, 120, 160]), Vec::<i64>::new());
    }

    #[test]
    fn a_threshold_of_one_fires_after_each_quiet_window() {
        let mut w = BruteforceWatch::new(BruteforceRule {
            threshold: 1,
            window: TimeDelta::seconds(60),
        });
        assert_eq!(run(&mut w, &[0, 10, 100, 300, 320]), vec![0, 100, 300]);
    }

    #[test]
    fn the_alarm_names_the_usernames_and_count() {
        let mut w = BruteforceWatch::new(BruteforceRule {
            threshold: 3,
            window: TimeDelta::seconds(60),
        });
        let mut alarm = None;
        for (t, u) in [(0, "bob"), (1, "admin"), (2, "admin")] {
            let f = failure(t, "2001:db8::1", u);
            alarm = w.observe(&f, 1, f.at);
        }
        let a = alarm.unwrap();
        assert_eq!(a.count, 3);
        assert_eq!(a.usernames, vec!["admin".to_owned(), "bob".to_owned()]);
        assert_eq!(a.first_at.timestamp(), 0);
        assert_eq!(a.window_secs, 60);
        // Another address is counted apart.
        let f = failure(3, "192.0.2.7", "x");
        assert_eq!(w.observe(&f, 1, f.at), None);
    }

    #[test]
    fn replaying_two_windows_gives_the_same_decisions() {
        let rule = BruteforceRule {
            threshold: 3,
            window: TimeDelta::seconds(60),
        };
        let times: Vec<i64> = vec![0, 5, 10, 15, 70, 140, 150, 151, 152, 300, 301, 302, 303];
        let mut whole = BruteforceWatch::new(rule);
        let all = run(&mut whole, &times);
        for cut in 1..times.len() {
            // Resume at `cut`: replay the failures within two windows before it.
            let resume = times[cut - 1];
            let mut w = BruteforceWatch::new(rule);
            let primed: Vec<i64> = times[..cut]
                .iter()
                .copied()
                .filter(|t| *t > resume - 120)
                .collect();
            run(&mut w, &primed);
            let rest = run(&mut w, &times[cut..]);
            let expected: Vec<i64> = all.iter().copied().filter(|t| *t > resume).collect();
            assert_eq!(rest, expected, "cut at {cut}");
        }
    }

    #[test]
    fn bounded_cuts_at_a_char_boundary() {
        assert_eq!(bounded("aé", 2), "a");
        assert_eq!(bounded("abc", 10), "abc");
    }
}
