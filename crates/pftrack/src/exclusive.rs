//! One loader per input, as the commands see it: take the inputs' locks before reading
//! their positions, wait (saying for whom) or refuse, and the error that ends a loader
//! finding its input taken (exit code [`EXIT_INPUT_BUSY`]).
//!
//! The locks themselves and the compare-and-set of positions are the store's
//! (`pftrack_store::InputLocks`, `StoreError::PositionMoved`); `docs/operation.md`
//! ("Two loaders") tells users what happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pftrack_store::{Busy, HostSpan, InputLocks, LockHolder, Store, StoreError};

/// Exit code of a loader that found its input held by another (with `--no-wait`), or
/// whose input's stored position moved under it.
pub const EXIT_INPUT_BUSY: u8 = 3;

/// How often a waiting loader tries the locks again.
pub const LOCK_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How often a waiting loader repeats what it waits for.
pub const WAIT_REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// Set (to 1) only by the test that shows the compare-and-set of positions alone
/// prevents double counting: the loader then takes no lock. Never for production.
pub const UNSAFE_NO_LOCK_ENV: &str = "PFTRACK_UNSAFE_SKIP_INPUT_LOCK";

/// A loader gave up because another one loads the same input.
#[derive(Debug)]
pub struct InputBusy {
    /// The input, as the user named it.
    pub input: String,
    /// Who holds it, when PostgreSQL could tell.
    pub holder: Option<LockHolder>,
}

impl std::fmt::Display for InputBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is being loaded by ", self.input)?;
        match &self.holder {
            Some(h) => write!(f, "{h}")?,
            None => write!(f, "another pftrack (which just let go: try again)")?,
        }
        write!(
            f,
            "; not loading it twice. Wait for it to finish (without --no-wait this command \
             waits), or stop it if it should not run"
        )
    }
}

impl std::error::Error for InputBusy {}

/// True when `err` means "another loader has this input": exit with
/// [`EXIT_INPUT_BUSY`].
pub fn is_input_busy(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<InputBusy>().is_some()
            || matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::PositionMoved { .. })
            )
    })
}

/// The `application_name` of a lock connection: `pftrack <command> <pid>@<host>`.
pub fn application_name(command: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("pftrack {command} {}@{host}", std::process::id())
}

/// What a loader does when an input is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait, saying for whom now and then.
    Wait,
    /// Fail with [`InputBusy`].
    Refuse,
}

/// Take the locks of `sources` (`names` says how to call each for people), waiting or
/// refusing as `when_busy` says. `None` when locking is switched off for a test.
pub async fn lock_inputs(
    store: &Store,
    sources: &[String],
    names: &dyn Fn(&str) -> String,
    command: &str,
    when_busy: WhenBusy,
) -> anyhow::Result<Option<InputLocks>> {
    if std::env::var(UNSAFE_NO_LOCK_ENV).is_ok_and(|v| v == "1") {
        tracing::warn!("{UNSAFE_NO_LOCK_ENV}=1: loading without input locks (for tests only).");
        return Ok(None);
    }
    let mut locks = store
        .input_locks(sources, &application_name(command))
        .await?;
    let mut reported: Option<(String, Instant)> = None;
    loop {
        match locks.try_acquire().await? {
            None => {
                if reported.is_some() {
                    eprintln!("pftrack: the inputs are free now; loading.");
                }
                return Ok(Some(locks));
            }
            Some(Busy { source, holder }) => {
                let busy = InputBusy {
                    input: names(&source),
                    holder,
                };
                if when_busy == WhenBusy::Refuse {
                    return Err(busy.into());
                }
                let due = reported.as_ref().is_none_or(|(last, at)| {
                    *last != source || at.elapsed() >= WAIT_REPORT_INTERVAL
                });
                if due {
                    eprintln!(
                        "pftrack: waiting: {} is being loaded by {}; this {command} goes on \
                         when it is done (--no-wait exits instead)",
                        busy.input,
                        busy.holder
                            .as_ref()
                            .map_or_else(|| "another pftrack".to_owned(), ToString::to_string)
                    );
                    reported = Some((source, Instant::now()));
                }
                tokio::time::sleep(LOCK_RETRY_INTERVAL).await;
            }
        }
    }
}

/// Per host, the span of record times read since the last checkpoint of one input.
#[derive(Debug, Default)]
pub struct HostSpans {
    spans: Vec<(Arc<str>, DateTime<Utc>, DateTime<Utc>)>,
}

impl HostSpans {
    /// A record of `host` logged at `at`.
    #[inline]
    pub fn add(&mut self, host: &Arc<str>, at: DateTime<Utc>) {
        // A log names one host or a few: a short list, usually hit at its head by
        // pointer (hosts are interned).
        for (h, first, last) in &mut self.spans {
            if Arc::ptr_eq(h, host) || **h == **host {
                if at < *first {
                    *first = at;
                }
                if at > *last {
                    *last = at;
                }
                return;
            }
        }
        self.spans.push((Arc::clone(host), at, at));
    }

    /// The spans so far, leaving none.
    pub fn take(&mut self) -> Vec<HostSpan> {
        self.spans
            .drain(..)
            .map(|(host, first, last)| HostSpan {
                host: host.to_string(),
                first,
                last,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_per_host() {
        let mut spans = HostSpans::default();
        let mx1: Arc<str> = Arc::from("mx1");
        let mx2: Arc<str> = Arc::from("mx2");
        let t = |s| DateTime::from_timestamp(s, 0).unwrap_or_default();
        spans.add(&mx1, t(10));
        spans.add(&mx2, t(11));
        spans.add(&mx1, t(5));
        spans.add(&Arc::from("mx1"), t(20));
        let got = spans.take();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].host.as_str(), got[0].first, got[0].last),
            ("mx1", t(5), t(20))
        );
        assert_eq!(
            (got[1].host.as_str(), got[1].first, got[1].last),
            ("mx2", t(11), t(11))
        );
        assert!(spans.take().is_empty());
    }

    #[test]
    fn busy_names_the_holder() {
        let busy = InputBusy {
            input: "/var/log/mail.log".into(),
            holder: Some(LockHolder {
                backend_pid: 77,
                application_name: Some("pftrack backfill 12@mx1".into()),
                client_addr: None,
                since: None,
            }),
        };
        let text = busy.to_string();
        assert!(text.starts_with(
            "/var/log/mail.log is being loaded by pftrack backfill 12@mx1 (PostgreSQL backend 77)"
        ));
        assert!(is_input_busy(&anyhow::Error::new(busy)));
    }
}
