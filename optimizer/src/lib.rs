//! cherrypick's optimiser: the search space, a Gaussian-process surrogate, acquisition functions,
//! search strategies behind one ask/tell trait, stop rules, and the search driver.

pub mod acquisition;
pub mod clock;
pub mod driver;
pub mod gp;
pub mod journal;
pub mod outcome;
pub mod rng;
pub mod slice;
pub mod sobol;
pub mod space;
pub mod strategies;
pub mod strategy;

pub use clock::{OnClock, VirtualClock};
pub use driver::{
    block_on, drive, worst_case_cost, DriveOptions, Observer, ProbeLimits, Report, Runner,
    SearchResult,
};
pub use journal::ProbeLog;
pub use outcome::{History, Observation, Outcome, SPEND_METRIC};
pub use space::{Config, ConfigId, Dimension, Inputs, Kind, LeftOut, Space, SpaceError, Value};
pub use strategies::{build_strategy, StrategyOptions, UnknownStrategy, STRATEGY_NAMES};
pub use strategy::{Optimizer, Proposal, Termination};

/// Whether this machine runs two threads at once (asked once): where it does, a fit runs its
/// starts two at a time and the ask that confirms a stop draws two chains at once, with the
/// same numbers as one after the other.
pub(crate) fn spare_core() -> bool {
    static SPARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPARE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}
