//! What running one configuration produced, and the history of observations a strategy learns from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::space::ConfigId;

/// Metric of a completed probe holding what it really cost in USD when that is more than its
/// `cost_usd` (see [`Outcome::spend_usd`]).
pub const SPEND_METRIC: &str = "spend_usd";

/// The result of one probe (one run of the workload under one configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The job finished; `cost_usd` is what the probe cost.
    Completed {
        runtime_s: f64,
        cost_usd: f64,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metrics: BTreeMap<String, f64>,
    },
    /// The job failed; the time it ran is still paid for.
    Failed {
        reason: String,
        elapsed_s: f64,
        cost_usd: f64,
    },
    /// The probe hit its time limit and was stopped; paid in full up to the limit.
    TimedOut { elapsed_s: f64, cost_usd: f64 },
}

impl Outcome {
    /// Cost of a completed run, `None` otherwise.
    pub fn completed_cost(&self) -> Option<f64> {
        match self {
            Outcome::Completed { cost_usd, .. } => Some(*cost_usd),
            _ => None,
        }
    }
    /// Runtime of a completed run, `None` otherwise.
    pub fn completed_runtime(&self) -> Option<f64> {
        match self {
            Outcome::Completed { runtime_s, .. } => Some(*runtime_s),
            _ => None,
        }
    }
    /// What the probe cost, whatever its status.
    pub fn cost_paid(&self) -> f64 {
        match self {
            Outcome::Completed { cost_usd, .. }
            | Outcome::Failed { cost_usd, .. }
            | Outcome::TimedOut { cost_usd, .. } => *cost_usd,
        }
    }
    /// USD the probe really cost. Usually its cost; a backend that bills more than the job's own
    /// runtime (a cluster billed from creation to deletion) reports the bill as the
    /// [`SPEND_METRIC`] metric of a completed probe, and that is what spend limits count.
    pub fn spend_usd(&self) -> f64 {
        let cost = self.cost_paid();
        match self {
            Outcome::Completed { metrics, .. } => match metrics.get(SPEND_METRIC) {
                Some(&s) if s.is_finite() && s > cost => s,
                _ => cost,
            },
            _ => cost,
        }
    }
    /// Wall time the probe took, whatever its status.
    pub fn elapsed_s(&self) -> f64 {
        match self {
            Outcome::Completed { runtime_s, .. } => *runtime_s,
            Outcome::Failed { elapsed_s, .. } | Outcome::TimedOut { elapsed_s, .. } => *elapsed_s,
        }
    }
    /// Short label: `completed`, `failed` or `timed-out`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::TimedOut { .. } => "timed-out",
        }
    }
}

/// One told probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub config: ConfigId,
    pub outcome: Outcome,
}

/// Everything told so far, in order, with the running incumbent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    observations: Vec<Observation>,
}

impl History {
    pub fn push(&mut self, config: ConfigId, outcome: Outcome) {
        self.observations.push(Observation { config, outcome });
    }
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }
    pub fn len(&self) -> usize {
        self.observations.len()
    }
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }
    /// Cheapest completed observation that satisfies `max_runtime_s` (if given).
    pub fn best(&self, max_runtime_s: Option<f64>) -> Option<&Observation> {
        self.observations
            .iter()
            .filter(|o| match (&o.outcome, max_runtime_s) {
                (Outcome::Completed { runtime_s, .. }, Some(t)) => *runtime_s <= t,
                (Outcome::Completed { .. }, None) => true,
                _ => false,
            })
            .min_by(|a, b| a.outcome.cost_paid().total_cmp(&b.outcome.cost_paid()))
    }
    /// USD paid for every probe, failed ones included (see [`Outcome::spend_usd`]).
    pub fn total_spend(&self) -> f64 {
        // A fold from +0.0: `sum()` of no floats is -0.0, shown as `$-0.000000`.
        self.observations
            .iter()
            .map(|o| o.outcome.spend_usd())
            .fold(0.0, |a, b| a + b)
    }
    /// Whether `config` has been told at least once.
    pub fn contains(&self, config: ConfigId) -> bool {
        self.observations.iter().any(|o| o.config == config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_spend_is_positive_zero() {
        // `$-0.000000 spent` was printed after a search that launched nothing.
        let spend = History::default().total_spend();
        assert!(spend == 0.0 && spend.is_sign_positive());
        assert_eq!(format!("{spend:.6}"), "0.000000");
    }
}
