//! Quality metrics of replayed searches (DESIGN 5): normalised best-so-far cost after k
//! evaluations, P(optimum), the figures at the stop rule, and their median / p90 over runs.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::dataset::Scale;
use crate::replay::{Probe, RunTrace};

/// Ratios within this of 1 count as the optimum (guards against float noise in the division).
const OPTIMUM_TOLERANCE: f64 = 1e-9;

/// The figures of one run that the summary aggregates.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    /// Normalised cost after k = 1..=budget evaluations (held at its last value if the run ended
    /// early, for example when the catalogue is smaller than the budget).
    pub curve: Vec<f64>,
    /// Where the stop rule fired, if it did.
    pub stop_fired_at: Option<usize>,
    /// Evaluations, normalised cost and normalised search cost at the stop (the end of the run
    /// when the rule never fired).
    pub stop_evaluations: usize,
    pub stop_normalized: f64,
    pub stop_search_cost: f64,
    pub ask_ms: Vec<f64>,
    /// For each of [`REACH_LEVELS`]: the evaluation at which the best found first came within
    /// it (`None`: never within the run), and the search cost (all probes so far over the
    /// optimum's cost) at that evaluation, or of the whole run when it never did.
    pub reach: [(Option<usize>, f64); 3],
    /// For each of [`TIME_LEVELS`]: the simulated time (seconds from the start of the search) at
    /// which the best found first came within it (`None`: never), the time counted for it (the
    /// end of the run when never), and the search cost until then over the optimum's cost: what
    /// had been billed by then (finished probes in full, running ones for the share of their
    /// duration that had passed; one at a time that is every probe up to this one).
    pub time_reach: [(Option<f64>, f64, f64); 3],
}

/// The levels "evaluations until the best found is within 20%, within 10%, at the optimum"
/// are measured at (normalised cost), with their names in summary.json.
pub const REACH_LEVELS: [(&str, f64); 3] = [
    ("within_20pct", 1.2),
    ("within_10pct", 1.1),
    ("optimum", 1.0 + OPTIMUM_TOLERANCE),
];

/// The levels simulated wall time is measured until: within 10%, within 5%, at the optimum.
pub const TIME_LEVELS: [(&str, f64); 3] = [
    ("within_10pct", 1.1),
    ("within_5pct", 1.05),
    ("optimum", 1.0 + OPTIMUM_TOLERANCE),
];

/// Normalised best-so-far cost after each probe (`result[k-1]` is after k probes).
pub fn best_curve(probes: &[Probe], scale: &Scale) -> Vec<f64> {
    let mut best = scale.worst_ratio();
    probes
        .iter()
        .map(|p| {
            if let Some(r) = scale.found(p.config, &p.outcome) {
                best = best.min(r);
            }
            best
        })
        .collect()
}

/// Normalised cost after `k` evaluations of a curve (k = 0 means nothing run yet).
fn at(curve: &[f64], k: usize, worst: f64) -> f64 {
    match (k.min(curve.len()), curve.last()) {
        (0, _) | (_, None) => worst,
        (k, _) => curve[k - 1],
    }
}

/// Computes a run's metrics for a report with `budget` evaluations.
pub fn run_metrics(trace: &RunTrace, scale: &Scale, budget: usize) -> RunMetrics {
    let raw = best_curve(&trace.probes, scale);
    let worst = scale.worst_ratio();
    let curve = (1..=budget).map(|k| at(&raw, k, worst)).collect();
    let stop_evaluations = trace
        .stop_fired_at
        .unwrap_or(trace.probes.len())
        .min(trace.probes.len());
    let spent: f64 = trace.probes[..stop_evaluations]
        .iter()
        .map(|p| p.outcome.cost_paid())
        .sum();
    let cost_to = |k: usize| -> f64 {
        trace.probes[..k]
            .iter()
            .map(|p| p.outcome.cost_paid())
            .sum::<f64>()
            / scale.optimum
    };
    let reach = REACH_LEVELS.map(|(_, level)| {
        let first = raw.iter().position(|&r| r <= level).map(|i| i + 1);
        (first, cost_to(first.unwrap_or(raw.len())))
    });
    let run_end = trace
        .probes
        .iter()
        .map(|p| p.finished_s)
        .fold(0.0, f64::max);
    let time_reach = TIME_LEVELS.map(|(_, level)| {
        let first = raw.iter().position(|&r| r <= level);
        let at = first.map(|i| trace.probes[i].finished_s);
        let until = at.unwrap_or(run_end);
        // What had been billed by then: finished probes in full, running ones for the share of
        // their time they had run.
        let cost: f64 = trace
            .probes
            .iter()
            .map(|p| {
                let span = p.finished_s - p.launched_s;
                let share = if span > 0.0 {
                    ((until - p.launched_s) / span).clamp(0.0, 1.0)
                } else if p.launched_s <= until {
                    1.0
                } else {
                    0.0
                };
                p.outcome.cost_paid() * share
            })
            .sum();
        (at, until, cost / scale.optimum)
    });
    RunMetrics {
        curve,
        reach,
        time_reach,
        stop_fired_at: trace.stop_fired_at,
        stop_evaluations,
        stop_normalized: at(&raw, stop_evaluations, worst),
        stop_search_cost: spent / scale.optimum,
        ask_ms: trace.ask_ms.clone(),
    }
}

/// Mean normalised best cost after `k` evaluations.
pub fn mean_at(runs: &[&RunMetrics], k: usize) -> f64 {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.curve.get(k - 1).or(r.curve.last()))
        .copied()
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The evaluation counts (10 and 15, those within `budget`) after which `mine` has a higher mean
/// normalised cost than `theirs`: where a strategy is worse than a baseline on a workload.
pub fn worse_at(
    mine: &[&RunMetrics],
    theirs: &[&RunMetrics],
    budget: usize,
) -> Vec<(usize, f64, f64)> {
    [10, 15]
        .into_iter()
        .filter(|&k| k <= budget)
        .map(|k| (k, mean_at(mine, k), mean_at(theirs, k)))
        .filter(|(_, a, z)| a > &(z + 1e-9))
        .collect()
}

/// Whether a normalised cost is the optimum.
pub fn is_optimum(ratio: f64) -> bool {
    ratio <= 1.0 + OPTIMUM_TOLERANCE
}

/// The q-quantile (0..=1) with linear interpolation between order statistics (numpy's default).
/// NaN-free input is assumed; an empty slice gives 0.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Median and 90th percentile.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quantiles {
    pub median: f64,
    pub p90: f64,
}

impl Quantiles {
    pub fn of(values: &[f64]) -> Quantiles {
        Quantiles {
            median: quantile(values, 0.5),
            p90: quantile(values, 0.9),
        }
    }
}

/// Values for k = 1..=n, serialised as a JSON object keyed "1".."n" in numeric order.
#[derive(Debug, Clone, PartialEq)]
pub struct ByEval<T>(pub Vec<T>);

impl<T> ByEval<T> {
    /// Value after `k` evaluations (1-based).
    pub fn at(&self, k: usize) -> Option<&T> {
        k.checked_sub(1).and_then(|i| self.0.get(i))
    }
}

impl<T: Serialize> Serialize for ByEval<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (i, v) in self.0.iter().enumerate() {
            map.serialize_entry(&(i + 1).to_string(), v)?;
        }
        map.end()
    }
}

/// The figures at the stop rule (DESIGN 5 `stop`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StopRow {
    pub evaluations_mean: f64,
    pub evaluations_median: f64,
    pub normalized_cost_median: f64,
    pub normalized_cost_p90: f64,
    pub p_optimum: f64,
    pub search_cost_normalized_median: f64,
    /// Means over runs, from which what a search costs all told follows: the job run R times
    /// after its search costs about `search_cost_normalized_mean + R * normalized_cost_mean`
    /// times the optimum's cost of one run.
    pub normalized_cost_mean: f64,
    pub search_cost_normalized_mean: f64,
}

/// How soon runs got within one of [`REACH_LEVELS`] of the optimum. A run that never did counts
/// as budget + 1 evaluations (and its whole search cost), and is counted in `not_reached`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReachRow {
    pub evaluations_mean: f64,
    pub evaluations_median: f64,
    /// Share of runs that never got there within the budget.
    pub not_reached: f64,
    /// Median over runs of the summed cost of every probe until then, over the optimum's cost.
    pub search_cost_normalized_median: f64,
}

/// How soon, in simulated wall time, runs got within one of [`TIME_LEVELS`] of the optimum. A
/// run that never did counts with its whole duration (and search cost) and in `not_reached`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimeRow {
    pub seconds_mean: f64,
    pub seconds_median: f64,
    pub not_reached: f64,
    /// Median over runs of what had been billed by then, over the optimum's cost.
    pub search_cost_normalized_median: f64,
}

/// One ROW of summary.json: a (workload or aggregate, strategy) cell over its runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub normalized_cost_at: ByEval<Quantiles>,
    pub p_optimum_at: ByEval<f64>,
    /// `null` when the stop rule fired in none of the runs: the strategy has no stop rule (grid,
    /// random) or it never fired within the budget. Runs of a strategy with a stop rule in which
    /// it did not fire count as stopping at their last evaluation.
    pub stop: Option<StopRow>,
    pub ms_per_ask_median: f64,
    /// Keyed by the names in [`REACH_LEVELS`] (`within_20pct`, `within_10pct`, `optimum`).
    pub evaluations_until: std::collections::BTreeMap<&'static str, ReachRow>,
    /// Keyed by the names in [`TIME_LEVELS`] (`within_10pct`, `within_5pct`, `optimum`):
    /// simulated wall time of the search (recorded runtimes plus the launch overhead, with as
    /// many probes in flight as the comparison allowed).
    pub wall_time_until: std::collections::BTreeMap<&'static str, TimeRow>,
}

impl Row {
    /// Aggregates runs (all with curves of the same length).
    pub fn of(runs: &[&RunMetrics]) -> Row {
        let budget = runs.iter().map(|r| r.curve.len()).max().unwrap_or(0);
        let n = runs.len().max(1) as f64;
        let mut column = Vec::with_capacity(runs.len());
        let mut costs = Vec::with_capacity(budget);
        let mut p_opt = Vec::with_capacity(budget);
        for k in 0..budget {
            column.clear();
            column.extend(runs.iter().filter_map(|r| r.curve.get(k)));
            costs.push(Quantiles::of(&column));
            p_opt.push(column.iter().filter(|&&x| is_optimum(x)).count() as f64 / n);
        }
        let stop = runs.iter().any(|r| r.stop_fired_at.is_some()).then(|| {
            let evals: Vec<f64> = runs.iter().map(|r| r.stop_evaluations as f64).collect();
            let cost: Vec<f64> = runs.iter().map(|r| r.stop_normalized).collect();
            let search: Vec<f64> = runs.iter().map(|r| r.stop_search_cost).collect();
            StopRow {
                evaluations_mean: mean(&evals),
                evaluations_median: quantile(&evals, 0.5),
                normalized_cost_median: quantile(&cost, 0.5),
                normalized_cost_p90: quantile(&cost, 0.9),
                p_optimum: cost.iter().filter(|&&x| is_optimum(x)).count() as f64 / n,
                search_cost_normalized_median: quantile(&search, 0.5),
                normalized_cost_mean: mean(&cost),
                search_cost_normalized_mean: mean(&search),
            }
        });
        let asks: Vec<f64> = runs.iter().flat_map(|r| r.ask_ms.iter().copied()).collect();
        let evaluations_until = REACH_LEVELS
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let evals: Vec<f64> = runs
                    .iter()
                    .map(|r| r.reach[i].0.map_or(budget + 1, |k| k) as f64)
                    .collect();
                let cost: Vec<f64> = runs.iter().map(|r| r.reach[i].1).collect();
                let missed = runs.iter().filter(|r| r.reach[i].0.is_none()).count();
                let row = ReachRow {
                    evaluations_mean: mean(&evals),
                    evaluations_median: quantile(&evals, 0.5),
                    not_reached: missed as f64 / n,
                    search_cost_normalized_median: quantile(&cost, 0.5),
                };
                (*name, row)
            })
            .collect();
        let wall_time_until = TIME_LEVELS
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let secs: Vec<f64> = runs.iter().map(|r| r.time_reach[i].1).collect();
                let cost: Vec<f64> = runs.iter().map(|r| r.time_reach[i].2).collect();
                let missed = runs.iter().filter(|r| r.time_reach[i].0.is_none()).count();
                let row = TimeRow {
                    seconds_mean: mean(&secs),
                    seconds_median: quantile(&secs, 0.5),
                    not_reached: missed as f64 / n,
                    search_cost_normalized_median: quantile(&cost, 0.5),
                };
                (*name, row)
            })
            .collect();
        Row {
            evaluations_until,
            wall_time_until,
            normalized_cost_at: ByEval(costs),
            p_optimum_at: ByEval(p_opt),
            stop,
            ms_per_ask_median: quantile(&asks, 0.5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strategy is flagged worse at 10 or 15 evaluations only where the runs went that far.
    #[test]
    fn worse_is_judged_only_within_the_budget() {
        let run = |curve: Vec<f64>| RunMetrics {
            stop_evaluations: curve.len(),
            curve,
            stop_fired_at: None,
            stop_normalized: 1.0,
            stop_search_cost: 1.0,
            ask_ms: Vec::new(),
            reach: [(None, 0.0); 3],
            time_reach: [(None, 0.0, 0.0); 3],
        };
        let (mine, theirs) = (run(vec![2.0; 3]), run(vec![1.5; 3]));
        assert!(worse_at(&[&mine], &[&theirs], 3).is_empty());
        let (mine, theirs) = (run(vec![2.0; 15]), run(vec![1.5; 15]));
        let worse: Vec<usize> = worse_at(&[&mine], &[&theirs], 15)
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(worse, [10, 15]);
    }
    use optimizer::{Outcome, Termination};

    fn probe(config: usize, cost: Option<f64>) -> Probe {
        Probe {
            launch: config,
            launched_s: 0.0,
            finished_s: 0.0,
            config,
            outcome: match cost {
                Some(c) => Outcome::Completed {
                    runtime_s: c * 3600.0,
                    cost_usd: c,
                    metrics: Default::default(),
                },
                None => Outcome::Failed {
                    reason: "x".into(),
                    elapsed_s: 10.0,
                    cost_usd: 5.0,
                },
            },
            expected_improvement: None,
            ms_ask: 1.0,
        }
    }

    /// Four configurations costing 2, 4, 8 and (failed) - optimum 2, worst 8.
    fn scale() -> Scale {
        Scale {
            optimum: 2.0,
            worst: 8.0,
            feasible: vec![Some(2.0), Some(4.0), Some(8.0), None],
        }
    }

    fn trace(probes: Vec<Probe>, stop: Option<usize>) -> RunTrace {
        let n = probes.len();
        RunTrace {
            strategy: "t".into(),
            seed: 1,
            probes,
            stop_fired_at: stop,
            termination: Termination::Budget { evaluations: n },
            ask_ms: vec![1.0; n],
        }
    }

    #[test]
    fn curve_counts_failures_and_starts_at_the_worst() {
        let t = trace(
            vec![
                probe(3, None),
                probe(1, Some(4.0)),
                probe(2, Some(8.0)),
                probe(0, Some(2.0)),
            ],
            Some(2),
        );
        let m = run_metrics(&t, &scale(), 5);
        assert_eq!(m.curve, vec![4.0, 2.0, 2.0, 1.0, 1.0]);
        assert_eq!(m.stop_evaluations, 2);
        assert_eq!(m.stop_normalized, 2.0);
        // failed probe 5 USD + 4 USD, over the optimum's 2 USD
        assert_eq!(m.stop_search_cost, 4.5);
    }

    #[test]
    fn row_aggregates_median_p90_and_p_optimum() {
        let s = scale();
        let runs: Vec<RunMetrics> = [
            trace(vec![probe(0, Some(2.0))], None),
            trace(vec![probe(1, Some(4.0)), probe(0, Some(2.0))], Some(1)),
            trace(vec![probe(2, Some(8.0)), probe(2, Some(8.0))], None),
        ]
        .iter()
        .map(|t| run_metrics(t, &s, 2))
        .collect();
        let refs: Vec<&RunMetrics> = runs.iter().collect();
        let row = Row::of(&refs);
        // after 1: ratios {1, 2, 4}: median 2, p90 = 2 + 0.8*(4-2) = 3.6
        assert_eq!(
            row.normalized_cost_at.at(1),
            Some(&Quantiles {
                median: 2.0,
                p90: 3.6
            })
        );
        // after 2: ratios {1, 1, 4}
        assert_eq!(row.normalized_cost_at.at(2).unwrap().median, 1.0);
        assert!((row.p_optimum_at.0[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((row.p_optimum_at.0[1] - 2.0 / 3.0).abs() < 1e-12);
        let stop = row.stop.unwrap();
        // stops at 1, 1 (fired), 2 evaluations
        assert!((stop.evaluations_mean - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(stop.evaluations_median, 1.0);
        // normalised at stop: 1, 2, 4
        assert_eq!(stop.normalized_cost_median, 2.0);
        assert!((stop.p_optimum - 1.0 / 3.0).abs() < 1e-12);
        // search cost: 2/2=1, 4/2=2, 16/2=8 -> median 2
        assert_eq!(stop.search_cost_normalized_median, 2.0);
        assert_eq!(row.ms_per_ask_median, 1.0);
        let no_stop = Row::of(&refs[..1]);
        assert_eq!(no_stop.stop, None);
        let json = serde_json::to_string(&row.p_optimum_at).unwrap();
        assert!(json.starts_with("{\"1\":"), "{json}");
    }

    #[test]
    fn evaluations_until_within_a_level_count_misses_as_budget_plus_one() {
        let s = scale();
        // Reaches 2x at 1, the optimum at 3; the second run never gets within 20%.
        let runs: Vec<RunMetrics> = [
            trace(
                vec![probe(1, Some(4.0)), probe(3, None), probe(0, Some(2.0))],
                None,
            ),
            trace(vec![probe(2, Some(8.0)), probe(1, Some(4.0))], None),
        ]
        .iter()
        .map(|t| run_metrics(t, &s, 4))
        .collect();
        assert_eq!(runs[0].reach[2], (Some(3), 5.5));
        assert_eq!(runs[1].reach[1], (None, 6.0));
        let refs: Vec<&RunMetrics> = runs.iter().collect();
        let row = Row::of(&refs);
        let opt = &row.evaluations_until["optimum"];
        assert_eq!(opt.evaluations_mean, 4.0, "3 and budget + 1 = 5");
        assert_eq!(opt.not_reached, 0.5);
        assert_eq!(opt.search_cost_normalized_median, 5.75);
        let json = serde_json::to_value(&row).unwrap();
        assert!(json["evaluations_until"]["within_10pct"]["evaluations_median"].is_number());
    }

    #[test]
    fn wall_time_until_a_level_bills_running_probes_for_the_time_they_ran() {
        let s = scale();
        // Two in parallel: config 1 (4 USD) over 0..100 s, config 0 (the optimum, 2 USD) over
        // 0..40 s, then config 2 (8 USD) over 40..140 s. The optimum is found at 40 s.
        let timed = |config, cost, launched_s, finished_s| Probe {
            launched_s,
            finished_s,
            ..probe(config, Some(cost))
        };
        let t = trace(
            vec![
                timed(0, 2.0, 0.0, 40.0),
                timed(1, 4.0, 0.0, 100.0),
                timed(2, 8.0, 40.0, 140.0),
            ],
            None,
        );
        let m = run_metrics(&t, &s, 3);
        // By 40 s: 2 USD finished, 40% of the 4 USD probe, nothing of the one launched at 40 s.
        let (at, until, cost) = m.time_reach[2];
        assert_eq!((at, until), (Some(40.0), 40.0));
        assert!((cost - (2.0 + 1.6) / 2.0).abs() < 1e-12, "{cost}");
        // A level never reached counts the whole run and everything it billed.
        let never = trace(vec![timed(2, 8.0, 0.0, 50.0)], None);
        let m = run_metrics(&never, &s, 3);
        assert_eq!(m.time_reach[1], (None, 50.0, 4.0));
        let row = Row::of(&[&m]);
        assert_eq!(row.wall_time_until["within_5pct"].not_reached, 1.0);
        assert_eq!(row.wall_time_until["within_5pct"].seconds_median, 50.0);
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.9) - 4.6).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
    }
}
