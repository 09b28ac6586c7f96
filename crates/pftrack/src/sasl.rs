//! SASL authentication failures in the loaders (issue 14): the brute-force rule of the
//! configuration and what a resumed load replays.

use chrono::{DateTime, TimeDelta, Utc};
use pftrack_extract::{AuthFailure, BruteforceRule, Extractor, NOQUEUE_OCCURRENCE_WINDOW};
use pftrack_store::Store;

/// The extractor of a loader: brute-force alarms by `rule` when it is set.
pub fn with_rule(extractor: Extractor, rule: Option<BruteforceRule>) -> Extractor {
    match rule {
        Some(rule) => extractor.with_bruteforce(rule),
        None => extractor,
    }
}

/// How far before the resume point stored failures are replayed: two windows (the
/// decision at a failure depends on failures that far back; see
/// `pftrack_extract::auth`), plus the numbering window of identical failures.
pub fn replay_span(rule: Option<BruteforceRule>) -> TimeDelta {
    rule.map_or(TimeDelta::zero(), |r| r.window * 2) + NOQUEUE_OCCURRENCE_WINDOW
}

/// The stored failures to replay when an input resumes at `resume_at` (none for a
/// fresh start).
pub async fn prime(
    store: &Store,
    resume_at: Option<DateTime<Utc>>,
    rule: Option<BruteforceRule>,
) -> anyhow::Result<Vec<(AuthFailure, i32)>> {
    Ok(match resume_at {
        Some(t) => store.auth_prime(t - replay_span(rule)).await?,
        None => Vec::new(),
    })
}
