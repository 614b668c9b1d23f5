//! Coordinate descent over the catalogue (the CherryPick paper's baseline): from a random start,
//! try every other value of one dimension holding the rest fixed, move to the cheapest, cycle
//! through the dimensions until a whole cycle brings no improvement, then restart from a random
//! untried configuration so the whole budget can be used.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::outcome::{History, Outcome};
use crate::rng::Rng;
use crate::space::{ConfigId, Space};
use crate::strategy::{Optimizer, Proposal};

use super::StrategyOptions;

/// Coordinate descent with random restarts.
#[derive(Debug, Clone)]
pub struct CoordinateDescent {
    space: Arc<Space>,
    max_runtime_s: Option<f64>,
    rng: Rng,
    issued: Vec<bool>,
    /// Cost of each told configuration that completed within the runtime limit.
    cost: Vec<Option<f64>>,
    history: History,
    center: Option<ConfigId>,
    /// Dimension being varied and the untried configurations along it.
    dim: usize,
    line: Vec<ConfigId>,
    queue: VecDeque<ConfigId>,
    /// Dimensions visited in a row without moving the centre.
    stale: usize,
}

impl CoordinateDescent {
    pub fn new(space: Arc<Space>, options: &StrategyOptions) -> CoordinateDescent {
        let n = space.len();
        CoordinateDescent {
            space,
            max_runtime_s: options.max_runtime_s,
            rng: Rng::derive(options.seed, 0x636f_6f72),
            issued: vec![false; n],
            cost: vec![None; n],
            history: History::default(),
            center: None,
            dim: 0,
            line: Vec::new(),
            queue: VecDeque::new(),
            stale: 0,
        }
    }

    /// Configurations that differ from `c` in dimension `j` and in as few other dimensions as
    /// the catalogue allows (none, in a full grid).
    fn neighbours(&self, c: ConfigId, j: usize) -> Vec<ConfigId> {
        let base = &self.space.config(c).values;
        let mut best = usize::MAX;
        let mut out = Vec::new();
        for (id, other) in self.space.configs().iter().enumerate() {
            if other.values[j] == base[j] {
                continue;
            }
            let extra = other
                .values
                .iter()
                .zip(base)
                .enumerate()
                .filter(|(k, (a, b))| *k != j && a != b)
                .count();
            if extra < best {
                best = extra;
                out.clear();
            }
            if extra == best {
                out.push(id);
            }
        }
        out
    }

    fn restart(&mut self) -> Option<ConfigId> {
        let free: Vec<ConfigId> = (0..self.space.len()).filter(|&i| !self.issued[i]).collect();
        if free.is_empty() {
            return None;
        }
        let pick = free[self.rng.below(free.len())];
        self.center = Some(pick);
        self.dim = 0;
        self.stale = 0;
        self.line.clear();
        self.queue.clear();
        Some(pick)
    }

    fn propose(&mut self, config: ConfigId) -> Proposal {
        self.issued[config] = true;
        Proposal {
            config,
            expected_improvement: None,
            stop: false,
        }
    }
}

impl Optimizer for CoordinateDescent {
    fn name(&self) -> &str {
        "coordinate"
    }

    fn ask(&mut self) -> Option<Proposal> {
        let dims = self.space.dimensions().len().max(1);
        // Each pass of the loop either proposes, moves to the next dimension, or restarts; a
        // restart always proposes, so the loop ends.
        for _ in 0..(4 * dims + 4) {
            let Some(center) = self.center else {
                let pick = self.restart()?;
                return Some(self.propose(pick));
            };
            while let Some(c) = self.queue.pop_front() {
                if !self.issued[c] {
                    return Some(self.propose(c));
                }
            }
            // The line is done (or was never started): move to its cheapest point.
            if !self.line.is_empty() {
                let cost = |c: ConfigId| self.cost[c].unwrap_or(f64::INFINITY);
                let best = self
                    .line
                    .iter()
                    .copied()
                    .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
                    .unwrap_or(center);
                if cost(best) < cost(center) {
                    self.center = Some(best);
                    self.stale = 0;
                } else {
                    self.stale += 1;
                }
                self.dim = (self.dim + 1) % dims;
                self.line.clear();
            }
            if self.stale >= dims {
                let pick = self.restart()?;
                return Some(self.propose(pick));
            }
            let center = self.center.unwrap_or(center);
            // A catalogue without dimensions (machine types only) has no line to walk.
            let line = if self.space.dimensions().is_empty() {
                Vec::new()
            } else {
                self.neighbours(center, self.dim)
            };
            self.queue = line.iter().copied().filter(|&c| !self.issued[c]).collect();
            if line.is_empty() || self.space.dimensions().is_empty() {
                self.stale += 1;
                self.dim = (self.dim + 1) % dims;
            } else {
                self.line = line;
                if self.queue.is_empty() {
                    // Everything on this line was already tried: judge it at once.
                    continue;
                }
            }
        }
        // Degenerate catalogues (no line anywhere): fall back to a random untried configuration.
        let pick = self.restart()?;
        Some(self.propose(pick))
    }

    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        // A configuration this space does not have is not recorded (nothing could use it).
        let Some(slot) = self.issued.get_mut(config) else {
            return;
        };
        *slot = true;
        if let Outcome::Completed {
            runtime_s,
            cost_usd,
            ..
        } = &outcome
        {
            if self.max_runtime_s.is_none_or(|t| *runtime_s <= t) {
                let c = &mut self.cost[config];
                *c = Some(c.map_or(*cost_usd, |old| old.min(*cost_usd)));
            }
        }
        self.history.push(config, outcome);
    }

    fn pending(&mut self, config: ConfigId) {
        if let Some(slot) = self.issued.get_mut(config) {
            *slot = true;
        }
    }

    fn history(&self) -> &History {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Config;

    /// Machine types only (no dimension): every configuration is asked once, then none.
    #[test]
    fn a_catalogue_without_dimensions_is_walked_by_restarts() {
        let configs = ["a", "b", "c"]
            .iter()
            .map(|n| Config {
                name: n.to_string(),
                values: Vec::new(),
                price_per_hour: 1.0,
            })
            .collect();
        let space = Arc::new(Space::new(Vec::new(), configs).unwrap());
        let mut s = CoordinateDescent::new(space, &StrategyOptions::default());
        let mut asked = Vec::new();
        while let Some(p) = s.ask() {
            asked.push(p.config);
            s.tell(
                p.config,
                Outcome::Completed {
                    runtime_s: 10.0 + p.config as f64,
                    cost_usd: 1.0,
                    metrics: Default::default(),
                },
            );
        }
        asked.sort_unstable();
        assert_eq!(asked, [0, 1, 2]);
    }
}
