//! Search strategies behind the [`Optimizer`] trait, and the factory that builds one by name.

mod simple;

use std::sync::Arc;

pub use simple::{Grid, RandomSearch};

use crate::space::Space;
use crate::strategy::Optimizer;

/// Every strategy name the factory knows, in the order reports list them.
pub const STRATEGY_NAMES: &[&str] = &["bo", "cherrypick", "coordinate", "random", "grid"];

/// Settings shared by all strategies.
#[derive(Debug, Clone, Default)]
pub struct StrategyOptions {
    /// Seeds every random choice the strategy makes.
    pub seed: u64,
    /// Runtime limit in seconds: configurations predicted to exceed it are avoided, and the
    /// incumbent must meet it.
    pub max_runtime_s: Option<f64>,
}

/// Unknown strategy name.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown strategy `{0}` (known: bo, cherrypick, coordinate, random, grid)")]
pub struct UnknownStrategy(pub String);

/// Builds the strategy called `name` over `space`.
pub fn build_strategy(
    name: &str,
    space: Arc<Space>,
    options: &StrategyOptions,
) -> Result<Box<dyn Optimizer>, UnknownStrategy> {
    Ok(match name {
        "grid" => Box::new(Grid::new(space)),
        "random" => Box::new(RandomSearch::new(space, options.seed)),
        other => return Err(UnknownStrategy(other.to_string())),
    })
}
