//! Model-free baselines: grid (exhaustive, catalogue order) and random (seeded permutation).

use std::sync::Arc;

use crate::outcome::{History, Outcome};
use crate::rng::Rng;
use crate::space::{ConfigId, Space};
use crate::strategy::{Optimizer, Proposal};

/// Proposes configurations in a fixed order, skipping those already told or pending.
#[derive(Debug, Clone)]
struct Ordered {
    order: Vec<ConfigId>,
    issued: Vec<bool>,
    history: History,
}

impl Ordered {
    fn new(order: Vec<ConfigId>) -> Ordered {
        let n = order.len();
        Ordered {
            order,
            issued: vec![false; n],
            history: History::default(),
        }
    }
    fn ask(&mut self) -> Option<Proposal> {
        let next = self.order.iter().copied().find(|&id| !self.issued[id])?;
        self.issued[next] = true;
        Some(Proposal {
            config: next,
            expected_improvement: None,
            stop: false,
        })
    }
    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        // A configuration this space does not have is not recorded (nothing could use it).
        if let Some(slot) = self.issued.get_mut(config) {
            *slot = true;
            self.history.push(config, outcome);
        }
    }
    fn pending(&mut self, config: ConfigId) {
        if let Some(slot) = self.issued.get_mut(config) {
            *slot = true;
        }
    }
}

/// Exhaustive search in catalogue order.
#[derive(Debug, Clone)]
pub struct Grid(Ordered);

impl Grid {
    pub fn new(space: Arc<Space>) -> Grid {
        Grid(Ordered::new((0..space.len()).collect()))
    }
}

impl Optimizer for Grid {
    fn name(&self) -> &str {
        "grid"
    }
    fn ask(&mut self) -> Option<Proposal> {
        self.0.ask()
    }
    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        self.0.tell(config, outcome)
    }
    fn pending(&mut self, config: ConfigId) {
        self.0.pending(config)
    }
    fn history(&self) -> &History {
        &self.0.history
    }
}

/// Random search: a seeded permutation of the catalogue.
#[derive(Debug, Clone)]
pub struct RandomSearch(Ordered);

impl RandomSearch {
    pub fn new(space: Arc<Space>, seed: u64) -> RandomSearch {
        let mut order: Vec<ConfigId> = (0..space.len()).collect();
        Rng::derive(seed, 0x7261_6e64).shuffle(&mut order);
        RandomSearch(Ordered::new(order))
    }
}

impl Optimizer for RandomSearch {
    fn name(&self) -> &str {
        "random"
    }
    fn ask(&mut self) -> Option<Proposal> {
        self.0.ask()
    }
    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        self.0.tell(config, outcome)
    }
    fn pending(&mut self, config: ConfigId) {
        self.0.pending(config)
    }
    fn history(&self) -> &History {
        &self.0.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Config, Dimension, Kind, Value};

    fn space(n: usize) -> Arc<Space> {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = (0..n)
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: 1.0,
            })
            .collect();
        Arc::new(Space::new(dims, configs).unwrap())
    }

    fn done() -> Outcome {
        Outcome::Completed {
            runtime_s: 1.0,
            cost_usd: 1.0,
            metrics: Default::default(),
        }
    }

    #[test]
    fn grid_visits_catalogue_order_then_ends() {
        let mut g = Grid::new(space(3));
        let mut seen = vec![];
        while let Some(p) = g.ask() {
            seen.push(p.config);
            g.tell(p.config, done());
        }
        assert_eq!(seen, vec![0, 1, 2]);
    }

    #[test]
    fn random_is_a_seeded_permutation_with_pending_respected() {
        let run = |seed| {
            let mut r = RandomSearch::new(space(20), seed);
            let a = r.ask().unwrap().config;
            let b = r.ask().unwrap().config; // a still pending: must not come back
            assert_ne!(a, b);
            let mut seen = vec![a, b];
            r.tell(a, done());
            r.tell(b, done());
            while let Some(p) = r.ask() {
                seen.push(p.config);
                r.tell(p.config, done());
            }
            seen
        };
        let s1 = run(1);
        assert_eq!(s1, run(1));
        assert_ne!(s1, run(2));
        let mut sorted = s1.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }
}
