//! The ask/tell interface every search strategy implements, proposals, stop rules and termination.

use serde::{Deserialize, Serialize};

use crate::outcome::{History, Outcome};
use crate::space::ConfigId;

/// What a strategy proposes to run next.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub config: ConfigId,
    /// Expected improvement of this proposal, relative to the incumbent (0.1 = 10%), when the
    /// strategy has a model; `None` for model-free strategies and the initial design.
    pub expected_improvement: Option<f64>,
    /// Set when the strategy's own stop rule says the search should end before this probe.
    /// Drivers that honour stop rules end the search here; replay comparisons record where it
    /// fired and keep going so they can also report cost against evaluations.
    pub stop: bool,
}

/// A search strategy: proposes configurations and learns from their outcomes.
///
/// `ask` marks its proposal pending until it is told, so batch drivers can ask several times
/// before telling; it returns `None` once every configuration is told or pending.
pub trait Optimizer: Send {
    /// Strategy name as used on the command line (`bo`, `cherrypick`, `grid`, ...).
    fn name(&self) -> &str;
    fn ask(&mut self) -> Option<Proposal>;
    /// Records the outcome of `config`. A `config` outside the strategy's space is ignored.
    fn tell(&mut self, config: ConfigId, outcome: Outcome);
    /// Marks `config` pending (as if asked) without asking: a resumed search launches the
    /// probes that were running when it stopped before it asks anything. A `config` outside the
    /// strategy's space is ignored.
    fn pending(&mut self, config: ConfigId);
    fn history(&self) -> &History;
    /// What the strategy's stop rule measured at the last `ask` (for the message that ends a
    /// search), when it has one.
    fn stop_detail(&self) -> Option<String> {
        None
    }
}

/// Why a search ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Termination {
    /// The strategy's stop rule fired (for example expected improvement below a threshold).
    StopRule { detail: String },
    /// The evaluation budget was used up.
    Budget { evaluations: usize },
    /// The next probe could cost more than the spend limit allows.
    SpendLimit { spent_usd: f64, limit_usd: f64 },
    /// Every configuration in the catalogue has been run.
    SpaceExhausted,
    /// Stopped by the user (Ctrl-C) after recording what finished.
    Interrupted,
    /// The backend could launch no further probe safely (a cluster it could not delete is
    /// still billed): nothing new was launched, the probes in flight were waited for.
    Halted { detail: String },
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Termination::StopRule { detail } => write!(f, "stop rule: {detail}"),
            Termination::Budget { evaluations } => {
                let s = if *evaluations == 1 { "" } else { "s" };
                write!(f, "budget of {evaluations} evaluation{s} used")
            }
            Termination::SpendLimit {
                spent_usd,
                limit_usd,
            } => {
                // Six significant digits: fixed decimals showed a $1e-9 limit as $0.0000.
                let usd = |x: &f64| {
                    crate::Shown(format!("{x:.5e}").parse::<f64>().unwrap_or(*x)).to_string()
                };
                write!(
                    f,
                    "spend limit: ${} spent, next probe could pass ${}",
                    usd(spent_usd),
                    usd(limit_usd)
                )
            }
            Termination::SpaceExhausted => write!(f, "every configuration has been run"),
            Termination::Interrupted => write!(f, "interrupted"),
            Termination::Halted { detail } => write!(f, "halted: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Termination;

    #[test]
    fn a_spend_limit_shows_its_amounts_whatever_their_size() {
        let t = |spent_usd, limit_usd| {
            Termination::SpendLimit {
                spent_usd,
                limit_usd,
            }
            .to_string()
        };
        assert_eq!(
            t(0.0, 1e-9),
            "spend limit: $0 spent, next probe could pass $1e-9"
        );
        assert_eq!(
            t(0.0123456789, 0.02),
            "spend limit: $0.0123457 spent, next probe could pass $0.02"
        );
    }

    #[test]
    fn a_budget_of_one_is_said_in_the_singular() {
        let said = |evaluations| Termination::Budget { evaluations }.to_string();
        assert_eq!(said(1), "budget of 1 evaluation used");
        assert_eq!(said(12), "budget of 12 evaluations used");
    }
}
