//! What every runner shares about a probe's limits and its failures.

use std::collections::BTreeMap;

use std::time::Duration;

use optimizer::{Outcome, ProbeLimits};

use crate::spacefile::Objective;

/// The longest time limit accepted anywhere (a year). Longer ones mean "no limit" in practice,
/// and past about 1.8e19 s a limit does not fit a `Duration` at all, nor do the sums a backend
/// makes of it (a Dataproc cluster's lifetime): refused with a clear error instead.
pub const MAX_LIMIT_S: f64 = 365.0 * 24.0 * 3600.0;

/// A number of seconds refused as a time limit; `what` names the option or field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// Zero, negative, infinite or not a number.
    #[error("{what} must be a positive number of seconds, got {}", optimizer::Shown(*x))]
    NotPositive { what: String, x: f64 },
    /// More than [`MAX_LIMIT_S`].
    #[error("{what} is {} s, longer than a year ({MAX_LIMIT_S} s): leave it out for no limit", optimizer::Shown(*x))]
    TooLong { what: String, x: f64 },
    /// Not representable as a `Duration` (the message includes the reason).
    #[error("{what}: {} s: {error}", optimizer::Shown(*x))]
    Duration {
        what: String,
        x: f64,
        error: std::time::TryFromFloatSecsError,
    },
}

/// A user's number of seconds, checked: positive, finite and at most [`MAX_LIMIT_S`]. `what`
/// names the option or field in the error.
pub fn seconds(what: &str, x: f64) -> Result<Duration, LimitError> {
    let what = || what.to_string();
    if !(x.is_finite() && x > 0.0) {
        return Err(LimitError::NotPositive { what: what(), x });
    }
    if x > MAX_LIMIT_S {
        return Err(LimitError::TooLong { what: what(), x });
    }
    Duration::try_from_secs_f64(x).map_err(|error| LimitError::Duration {
        what: what(),
        x,
        error,
    })
}

/// Which of a probe's limits ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    TimedOut,
    Interrupted,
}

/// Resolves when the probe's time limit passes or the user interrupts the search; never
/// without either. Every runner races its work against this.
pub(crate) async fn limit_reached(limits: &ProbeLimits) -> LimitHit {
    let deadline = async {
        match limits.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let interrupted = async {
        match &limits.interrupt {
            Some(flag) => {
                while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = deadline => LimitHit::TimedOut,
        _ = interrupted => LimitHit::Interrupted,
    }
}

/// A failed probe, charged for the time it ran at `price` USD per hour (every backend's rule).
pub(crate) fn failed(reason: String, elapsed: f64, price: f64) -> Outcome {
    Outcome::Failed {
        reason,
        elapsed_s: elapsed,
        cost_usd: price * elapsed / 3600.0,
    }
}

/// A probe stopped at its time limit, charged up to there.
pub(crate) fn timed_out(elapsed: f64, price: f64) -> Outcome {
    Outcome::TimedOut {
        elapsed_s: elapsed,
        cost_usd: price * elapsed / 3600.0,
    }
}

/// The longest runtime a job may report (about 30 million years): a larger one is a job's bug,
/// and its cost would overflow what the journal and the search's sums can hold.
pub(crate) const MAX_REPORTED_S: f64 = 1e15;

/// A probe whose job reports a runtime past the probe's time limit: it would have been stopped
/// there, so it did not meet the limit (timed out at the limit, charged the longer of the limit
/// and `charged` seconds at `price`). `None` within the limit or without one.
pub(crate) fn past_limit(
    runtime_s: f64,
    limits: &ProbeLimits,
    charged: f64,
    price: f64,
) -> Option<Outcome> {
    let limit = limits.timeout?.as_secs_f64();
    over_limit(runtime_s, limits).then(|| Outcome::TimedOut {
        elapsed_s: limit,
        cost_usd: price * limit.max(charged) / 3600.0,
    })
}

/// Whether a job's reported runtime is past the probe's time limit (false without one).
pub(crate) fn over_limit(runtime_s: f64, limits: &ProbeLimits) -> bool {
    limits.timeout.is_some_and(|t| runtime_s > t.as_secs_f64())
}

/// A completed probe charged `price` (the space's, what the strategy models) for `runtime_s`;
/// with a runtime objective its cost at the configuration's own price is kept as the
/// `true_cost_usd` metric (every backend's rule).
pub(crate) fn completed(
    runtime_s: f64,
    price: f64,
    true_price: f64,
    objective: Objective,
    mut metrics: BTreeMap<String, f64>,
) -> Outcome {
    if objective == Objective::Runtime {
        metrics.insert("true_cost_usd".into(), true_price * runtime_s / 3600.0);
    }
    Outcome::Completed {
        runtime_s,
        cost_usd: price * runtime_s / 3600.0,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_finite_and_at_most_a_year() {
        assert_eq!(seconds("--x", 1.5), Ok(Duration::from_millis(1500)));
        let err = seconds("--probe-timeout", 0.0).unwrap_err();
        assert!(matches!(&err, LimitError::NotPositive { x, .. } if *x == 0.0));
        assert_eq!(
            err.to_string(),
            "--probe-timeout must be a positive number of seconds, got 0"
        );
        assert!(matches!(
            seconds("--x", f64::NAN),
            Err(LimitError::NotPositive { .. })
        ));
        let err = seconds("max_runtime_s", 1e9).unwrap_err();
        assert_eq!(
            err.to_string(),
            "max_runtime_s is 1000000000 s, longer than a year (31536000 s): leave it out for no limit"
        );
    }
}
