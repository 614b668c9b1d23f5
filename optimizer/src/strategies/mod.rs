//! Search strategies behind the [`Optimizer`] trait, and the factory that builds one by name.

mod coordinate;
mod model;
mod settings;
mod simple;

use std::sync::Arc;

pub use crate::space::Features;
pub use coordinate::CoordinateDescent;
pub use model::ModelStrategy;
pub use settings::{
    Acquisition, FailedRuns, HyperMode, ModelSettings, PendingRuns, SettingError, StopRule,
    StopWarp, Target,
};
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

/// A strategy name the factory does not know, or a `name:key=value` override it refuses.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnknownStrategy {
    #[error("unknown strategy `{0}` (known: bo, cherrypick, coordinate, random, grid; bo and cherrypick take `:key=value` options)")]
    Name(String),
    /// The cause is the error's source, so a report that prints the chain gives it once.
    #[error("strategy `{spec}`")]
    Setting {
        spec: String,
        #[source]
        source: SettingError,
    },
}

/// Builds the strategy called `name` over `space`. The model-based ones (`bo`, `cherrypick`)
/// take overrides spelled `bo:key=value:key=value` (see [`ModelSettings::set`]).
pub fn build_strategy(
    name: &str,
    space: Arc<Space>,
    options: &StrategyOptions,
) -> Result<Box<dyn Optimizer>, UnknownStrategy> {
    if let Some(settings) = ModelSettings::parse(name) {
        let settings = settings.map_err(|source| UnknownStrategy::Setting {
            spec: name.to_string(),
            source,
        })?;
        return Ok(Box::new(ModelStrategy::new(space, options, settings)));
    }
    Ok(match name {
        "coordinate" => Box::new(CoordinateDescent::new(space, options)),
        "grid" => Box::new(Grid::new(space)),
        "random" => Box::new(RandomSearch::new(space, options.seed)),
        other => return Err(UnknownStrategy::Name(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::space::{Config, Dimension, Kind, Value};

    /// A 3 x 4 x 5 grid catalogue with a smooth cost surface whose optimum is (nodes 8, size 2,
    /// family b); configurations with nodes = 1 and size = 1 fail after a long time.
    fn space() -> Arc<Space> {
        let dims = vec![
            Dimension {
                name: "family".into(),
                kind: Kind::Categorical {
                    levels: vec!["a".into(), "b".into(), "c".into()],
                },
            },
            Dimension {
                name: "size".into(),
                kind: Kind::Numeric { log: false },
            },
            Dimension {
                name: "nodes".into(),
                kind: Kind::Numeric { log: false },
            },
        ];
        let mut configs = vec![];
        for f in ["a", "b", "c"] {
            for size in [1.0, 2.0, 4.0, 8.0] {
                for nodes in [1.0, 2.0, 4.0, 8.0, 16.0] {
                    configs.push(Config {
                        name: format!("{f}-{size}-{nodes}"),
                        values: vec![Value::Cat(f.into()), Value::Num(size), Value::Num(nodes)],
                        price_per_hour: size * nodes * 0.1,
                    });
                }
            }
        }
        Arc::new(Space::new(dims, configs).unwrap())
    }

    fn run(space: &Space, id: usize) -> Outcome {
        let c = space.config(id);
        let (Value::Cat(f), Value::Num(size), Value::Num(nodes)) =
            (&c.values[0], &c.values[1], &c.values[2])
        else {
            unreachable!()
        };
        if *size == 1.0 && *nodes == 1.0 {
            return Outcome::Failed {
                reason: "out of memory".into(),
                elapsed_s: 7200.0,
                cost_usd: c.price_per_hour * 2.0,
            };
        }
        let fam = match f.as_str() {
            "a" => 1.3,
            "b" => 1.0,
            _ => 1.15,
        };
        let cost = fam
            * (1.0 + 0.3 * (nodes.log2() - 3.0).powi(2) + 0.2 * (size.log2() - 1.0).powi(2))
            * 0.05;
        Outcome::Completed {
            runtime_s: cost / c.price_per_hour * 3600.0,
            cost_usd: cost,
            metrics: Default::default(),
        }
    }

    fn trace(name: &str, seed: u64, budget: usize, limit: Option<f64>) -> Vec<(usize, bool)> {
        let space = space();
        let mut s = build_strategy(
            name,
            space.clone(),
            &StrategyOptions {
                seed,
                max_runtime_s: limit,
            },
        )
        .unwrap();
        let mut out = vec![];
        for _ in 0..budget {
            let Some(p) = s.ask() else { break };
            out.push((p.config, p.stop));
            s.tell(p.config, run(&space, p.config));
        }
        out
    }

    #[test]
    fn every_strategy_is_deterministic_and_never_repeats() {
        for name in STRATEGY_NAMES {
            let a = trace(name, 3, 60, None);
            assert_eq!(a, trace(name, 3, 60, None), "{name} is not deterministic");
            assert_eq!(a.len(), 60, "{name} must use the whole catalogue");
            let mut ids: Vec<usize> = a.iter().map(|p| p.0).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 60, "{name} proposed a configuration twice");
        }
    }

    #[test]
    fn pending_configurations_are_not_proposed_again() {
        for name in STRATEGY_NAMES {
            let space = space();
            let mut s = build_strategy(name, space.clone(), &StrategyOptions::default()).unwrap();
            // Prime the model-based ones past their initial design.
            for _ in 0..4 {
                let p = s.ask().unwrap();
                s.tell(p.config, run(&space, p.config));
            }
            let a = s.ask().unwrap().config;
            let b = s.ask().unwrap().config;
            let c = s.ask().unwrap().config;
            assert!(a != b && b != c && a != c, "{name}: {a} {b} {c}");
            for id in [a, b, c] {
                s.tell(id, run(&space, id));
            }
        }
    }

    #[test]
    fn model_strategies_find_the_optimum_and_report_improvement() {
        let space = space();
        let optimum = (0..space.len())
            .filter_map(|i| run(&space, i).completed_cost())
            .fold(f64::INFINITY, f64::min);
        for name in ["bo", "cherrypick"] {
            let mut hits = 0;
            for seed in 0..5 {
                let mut s = build_strategy(
                    name,
                    space.clone(),
                    &StrategyOptions {
                        seed,
                        max_runtime_s: None,
                    },
                )
                .unwrap();
                let mut saw_ei = false;
                for _ in 0..20 {
                    let p = s.ask().unwrap();
                    if let Some(ei) = p.expected_improvement {
                        assert!(ei >= 0.0 && ei.is_finite(), "{name}: EI {ei}");
                        saw_ei = true;
                    }
                    s.tell(p.config, run(&space, p.config));
                }
                assert!(saw_ei, "{name} never reported expected improvement");
                let best = s.history().best(None).unwrap().outcome.cost_paid();
                if best <= optimum * 1.0000001 {
                    hits += 1;
                }
            }
            assert!(
                hits >= 4,
                "{name} found the optimum in only {hits} of 5 runs within 20"
            );
        }
    }

    #[test]
    fn cherrypick_stop_rule_needs_six_runs() {
        let t = trace("cherrypick", 1, 30, None);
        let first = t.iter().position(|p| p.1);
        assert!(first.is_some_and(|i| i >= 6), "stop fired at {first:?}");
    }

    #[test]
    fn runtime_limit_is_respected_by_the_incumbent_and_avoided() {
        // Limit the runtime so that the unconstrained optimum (8 nodes, size 2) is too slow.
        let space = space();
        let limit = 200.0;
        let feasible = |i: usize| {
            run(&space, i)
                .completed_runtime()
                .is_some_and(|r| r <= limit)
        };
        let best_feasible = (0..space.len())
            .filter(|&i| feasible(i))
            .filter_map(|i| run(&space, i).completed_cost())
            .fold(f64::INFINITY, f64::min);
        assert!(best_feasible.is_finite());
        for name in ["bo", "cherrypick"] {
            let t = trace(name, 2, 25, Some(limit));
            let infeasible = t.iter().filter(|p| !feasible(p.0)).count();
            assert!(
                infeasible < 15,
                "{name} probed {infeasible} infeasible configs of 25"
            );
        }
    }

    #[test]
    fn model_variants_are_deterministic_and_find_the_optimum() {
        let space = space();
        let optimum = (0..space.len())
            .filter_map(|i| run(&space, i).completed_cost())
            .fold(f64::INFINITY, f64::min);
        for spec in [
            "bo:samples=6",
            "bo:features=products",
            "bo:failed=worst",
            "bo:design=log",
            "cherrypick:samples=4",
        ] {
            let a = trace(spec, 5, 25, None);
            assert_eq!(a, trace(spec, 5, 25, None), "{spec} is not deterministic");
            let found = a
                .iter()
                .filter_map(|p| run(&space, p.0).completed_cost())
                .fold(f64::INFINITY, f64::min);
            assert!(
                found <= optimum * 1.0000001,
                "{spec} missed the optimum in 25"
            );
        }
    }

    #[test]
    fn likely_best_stop_waits_for_its_minimum_and_then_fires() {
        let t = trace(
            "bo:stop=likely:margin=0.05:prob=0.1:min-runs=8",
            2,
            60,
            None,
        );
        let first = t.iter().position(|p| p.1);
        assert!(
            first.is_some_and(|i| (8..40).contains(&i)),
            "stop fired at {first:?}"
        );
        // A stricter statement (any improvement at all, 1% chance) never fires sooner.
        let strict = trace("bo:stop=likely:margin=0:prob=0.01:min-runs=8", 2, 60, None);
        let strict_first = strict.iter().position(|p| p.1).unwrap_or(60);
        assert!(strict_first >= first.unwrap(), "{strict_first} < {first:?}");
    }

    #[test]
    fn a_model_strategy_without_initial_design_still_proposes() {
        let space = space();
        let settings = ModelSettings {
            initial: 0,
            ..ModelSettings::bo()
        };
        let mut s = ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
        for _ in 0..8 {
            let p = s.ask().unwrap();
            s.tell(p.config, run(&space, p.config));
        }
        // A configuration the space does not have is ignored, not a panic.
        s.tell(space.len() + 3, run(&space, 0));
        assert_eq!(s.history().len(), 8);
        assert!(s.ask().is_some());
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(build_strategy("nope", space(), &StrategyOptions::default()).is_err());
        let err = build_strategy("bo:initial=x", space(), &StrategyOptions::default())
            .err()
            .unwrap();
        // The spec in the message, the cause as its source: a report printing the chain
        // gives each once.
        let e = err.to_string();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            e.contains("bo:initial=x") && !e.contains("whole number"),
            "{e}"
        );
        assert!(cause.contains("whole number"), "{cause}");
    }
}
