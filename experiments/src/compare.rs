//! The comparison harness: replays every (workload, strategy, seed) in parallel and builds the
//! `cherrypick.compare/1` summary of DESIGN 5.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use optimizer::strategies::ModelSettings;
use optimizer::UnknownStrategy;
use serde::Serialize;

use crate::dataset::{DataError, Dataset, Scale};
use crate::metrics::{run_metrics, Row, RunMetrics};
use crate::replay::{replay_run, RunOptions, RunTrace};

/// Format tag of summary.json.
pub const SUMMARY_FORMAT: &str = "cherrypick.compare/1";

/// Errors of a comparison (all caused by its inputs).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    UnknownStrategy(#[from] UnknownStrategy),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Invalid(String),
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub strategies: Vec<String>,
    /// Seeds 1..=seeds are run.
    pub seeds: u64,
    pub budget: usize,
    pub max_runtime_s: Option<f64>,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Probes in flight at once in every replay (0 and 1: one after another).
    pub parallel: usize,
    /// Simulated seconds each probe spends besides its recorded runtime.
    pub launch_overhead_s: f64,
}

/// A job's result, filled in by whichever worker ran it.
type Slot = Option<Result<Run, UnknownStrategy>>;

/// One replayed run with its metrics.
#[derive(Debug, Clone)]
pub struct Run {
    /// Index into [`Comparison::workloads`].
    pub workload: usize,
    /// A one-at-a-time replay run beside a comparison with several probes in flight, for the
    /// wall-time figures only (never in the rows, traces or the other plots).
    pub sequential: bool,
    pub trace: RunTrace,
    pub metrics: RunMetrics,
}

/// A finished comparison: every run, in (workload, strategy, seed) order.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub dataset: String,
    pub workloads: Vec<String>,
    pub scales: Vec<Scale>,
    pub strategies: Vec<String>,
    pub seeds: u64,
    pub budget: usize,
    pub max_runtime_s: Option<f64>,
    /// Probes in flight at once, and the simulated launch overhead per probe (seconds).
    pub parallel: usize,
    pub launch_overhead_s: f64,
    pub runs: Vec<Run>,
    /// Wall time of all replays, in seconds.
    pub wall_s: f64,
    /// What each model strategy's inputs are on these workloads' catalogues.
    pub inputs: Vec<ModelInputs>,
}

/// A model strategy's inputs (`optimizer::Inputs`, as a line) and the workloads whose
/// catalogues give them.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInputs {
    pub strategy: String,
    pub inputs: String,
    pub workloads: Vec<String>,
}

/// The inputs of every model strategy in `strategies` on the workloads `selected`, workloads
/// with the same inputs together, in order of first appearance.
fn model_inputs(dataset: &Dataset, selected: &[usize], strategies: &[String]) -> Vec<ModelInputs> {
    let mut out: Vec<ModelInputs> = Vec::new();
    for s in strategies {
        let Some(Ok(model)) = ModelSettings::parse(s) else {
            continue;
        };
        for &w in selected {
            let workload = &dataset.workloads[w];
            let inputs = workload.space.inputs(model.features).to_string();
            match out
                .iter_mut()
                .find(|m| m.strategy == *s && m.inputs == inputs)
            {
                Some(m) => m.workloads.push(workload.name.clone()),
                None => out.push(ModelInputs {
                    strategy: s.clone(),
                    inputs,
                    workloads: vec![workload.name.clone()],
                }),
            }
        }
    }
    out
}

/// Runs the comparison on the workloads `selected` (indices into `dataset.workloads`).
pub fn run_compare(
    dataset: &Dataset,
    selected: &[usize],
    options: &CompareOptions,
) -> Result<Comparison, CompareError> {
    if options.budget == 0 || options.seeds == 0 || options.strategies.is_empty() {
        return Err(CompareError::Invalid(
            "budget, seeds and the strategy list must all be non-empty / positive".into(),
        ));
    }
    let scales = selected
        .iter()
        .map(|&w| dataset.workloads[w].scale(options.max_runtime_s))
        .collect::<Result<Vec<_>, _>>()?;
    // Fail fast on unknown strategies, before any work.
    if let Some(&w) = selected.first() {
        for s in &options.strategies {
            optimizer::build_strategy(
                s,
                dataset.workloads[w].space.clone(),
                &optimizer::StrategyOptions::default(),
            )?;
        }
    }
    // With several probes in flight, every replay is also run one at a time, so the wall-time
    // figures can be set against the sequential search's.
    let modes: &[bool] = if options.parallel > 1 {
        &[false, true]
    } else {
        &[false]
    };
    let jobs: Vec<(usize, usize, u64, bool)> = modes
        .iter()
        .flat_map(|&seq| {
            (0..selected.len()).flat_map(move |w| {
                (0..options.strategies.len())
                    .flat_map(move |s| (1..=options.seeds).map(move |seed| (w, s, seed, seq)))
            })
        })
        .collect();
    let run_options = RunOptions {
        budget: Some(options.budget),
        max_runtime_s: options.max_runtime_s,
        honour_stop: false,
        parallel: options.parallel,
        launch_overhead_s: options.launch_overhead_s,
    };
    let sequential_options = RunOptions {
        parallel: 1,
        ..run_options.clone()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Slot>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        // No more workers than runs: an idle one only costs its start.
        for _ in 0..options.threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(w, s, seed, sequential)) = jobs.get(i) else {
                    break;
                };
                let workload = &dataset.workloads[selected[w]];
                let result = replay_run(
                    workload,
                    &options.strategies[s],
                    seed,
                    if sequential {
                        &sequential_options
                    } else {
                        &run_options
                    },
                    &mut [],
                )
                .map(|trace| Run {
                    workload: w,
                    sequential,
                    metrics: run_metrics(&trace, &scales[w], options.budget),
                    trace,
                });
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(result);
                }
            });
        }
    });
    let wall_s = start.elapsed().as_secs_f64();
    let results = results
        .into_inner()
        .map_err(|_| CompareError::Invalid("a replay worker panicked".into()))?;
    let mut runs = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Some(r) => runs.push(r?),
            None => return Err(CompareError::Invalid("a replay job did not run".into())),
        }
    }
    Ok(Comparison {
        dataset: dataset.name.clone(),
        workloads: selected
            .iter()
            .map(|&w| dataset.workloads[w].name.clone())
            .collect(),
        scales,
        strategies: options.strategies.clone(),
        seeds: options.seeds,
        budget: options.budget,
        max_runtime_s: options.max_runtime_s,
        parallel: options.parallel.max(1),
        launch_overhead_s: options.launch_overhead_s,
        runs,
        wall_s,
        inputs: model_inputs(dataset, selected, &options.strategies),
    })
}

/// summary.json, exactly as DESIGN 5 specifies.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub format: &'static str,
    pub dataset: String,
    pub seeds: u64,
    pub budget: usize,
    /// Probes in flight at once in every replay, and the simulated seconds each probe spent
    /// besides its recorded runtime (the rows' `wall_time_until` figures depend on both).
    pub parallel: usize,
    pub launch_overhead_s: f64,
    pub results: Vec<ResultRow>,
    pub aggregate: Vec<AggregateRow>,
    /// With several probes in flight: the same replays run one at a time, pooled per strategy,
    /// for comparing wall time and search cost (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_sequential: Option<Vec<AggregateRow>>,
}

/// A (workload, strategy) cell.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    pub workload: String,
    pub strategy: String,
    pub optimum_cost: f64,
    #[serde(flatten)]
    pub row: Row,
}

/// A strategy pooled over all runs of all workloads.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateRow {
    pub strategy: String,
    #[serde(flatten)]
    pub row: Row,
}

impl Comparison {
    /// Runs of one (workload, strategy) cell; `workload = None` pools all workloads.
    pub fn runs_of(&self, workload: Option<usize>, strategy: &str) -> Vec<&RunMetrics> {
        self.runs
            .iter()
            .filter(|r| {
                !r.sequential
                    && r.trace.strategy == strategy
                    && workload.is_none_or(|w| r.workload == w)
            })
            .map(|r| &r.metrics)
            .collect()
    }

    /// The one-at-a-time runs of a strategy beside a parallel comparison (all workloads).
    pub fn sequential_runs_of(&self, strategy: &str) -> Vec<&Run> {
        self.runs
            .iter()
            .filter(|r| r.sequential && r.trace.strategy == strategy)
            .collect()
    }

    /// The runs in the comparison's own mode.
    pub fn main_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| !r.sequential)
    }

    /// Builds the summary.
    pub fn summary(&self) -> Summary {
        let mut results = Vec::new();
        for (w, name) in self.workloads.iter().enumerate() {
            for s in &self.strategies {
                results.push(ResultRow {
                    workload: name.clone(),
                    strategy: s.clone(),
                    optimum_cost: self.scales[w].optimum,
                    row: Row::of(&self.runs_of(Some(w), s)),
                });
            }
        }
        let aggregate = self
            .strategies
            .iter()
            .map(|s| AggregateRow {
                strategy: s.clone(),
                row: Row::of(&self.runs_of(None, s)),
            })
            .collect();
        let aggregate_sequential = (self.parallel > 1).then(|| {
            self.strategies
                .iter()
                .map(|s| AggregateRow {
                    strategy: s.clone(),
                    row: Row::of(
                        &self
                            .sequential_runs_of(s)
                            .iter()
                            .map(|r| &r.metrics)
                            .collect::<Vec<_>>(),
                    ),
                })
                .collect()
        });
        Summary {
            aggregate_sequential,
            format: SUMMARY_FORMAT,
            dataset: self.dataset.clone(),
            seeds: self.seeds,
            budget: self.budget,
            parallel: self.parallel,
            launch_overhead_s: self.launch_overhead_s,
            results,
            aggregate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Workload;
    use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};

    fn dataset() -> Dataset {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs: Vec<Config> = (0..12)
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: 1.0 + i as f64,
            })
            .collect();
        let runs = (0..12)
            .map(|i| {
                let t = 600.0 / (1.0 + i as f64) + 40.0 * i as f64;
                vec![Outcome::Completed {
                    runtime_s: t,
                    cost_usd: (1.0 + i as f64) * t / 3600.0,
                    metrics: Default::default(),
                }]
            })
            .collect();
        Dataset {
            name: "toy".into(),
            source: "toy".into(),
            workloads: vec![Workload::new(
                "w".into(),
                Space::new(dims, configs).unwrap(),
                runs,
            )],
        }
    }

    #[test]
    fn a_parallel_comparison_sets_its_runs_beside_the_same_ones_run_one_at_a_time() {
        let d = dataset();
        let options = |parallel| CompareOptions {
            strategies: vec!["bo".into(), "random".into()],
            seeds: 3,
            budget: 8,
            max_runtime_s: None,
            threads: 2,
            parallel,
            launch_overhead_s: 60.0,
        };
        let one = run_compare(&d, &[0], &options(1)).unwrap();
        let four = run_compare(&d, &[0], &options(4)).unwrap();
        assert_eq!(one.runs.len(), 6);
        assert_eq!(four.runs.len(), 12, "each replay also run one at a time");
        assert!(one.summary().aggregate_sequential.is_none());
        let summary = four.summary();
        let seq = summary.aggregate_sequential.as_ref().unwrap();
        // The one-at-a-time rows are exactly the sequential comparison's.
        for (a, b) in seq.iter().zip(&one.summary().aggregate) {
            assert_eq!(a.strategy, b.strategy);
            assert_eq!(a.row.normalized_cost_at, b.row.normalized_cost_at);
            assert_eq!(a.row.wall_time_until, b.row.wall_time_until);
        }
        // Four in flight: the same probes of random take less simulated time.
        let time = |s: &Summary| s.aggregate[1].row.wall_time_until["optimum"].seconds_mean;
        assert!(time(&summary) < time(&one.summary()));
        assert_eq!(four.main_runs().count(), 6);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["parallel"], 4);
        assert!(json["aggregate_sequential"].is_array());
        assert!(serde_json::to_value(one.summary()).unwrap()["aggregate_sequential"].is_null());
    }

    #[test]
    fn the_model_strategies_inputs_are_told_per_catalogue() {
        let mut d = dataset();
        let w = d.workloads[0].clone();
        // The same runs, the catalogue with a column that never varies.
        let mut dims = w.space.dimensions().to_vec();
        dims.push(Dimension {
            name: "zone".into(),
            kind: Kind::Categorical {
                levels: vec!["a".into()],
            },
        });
        let configs: Vec<Config> = w
            .space
            .configs()
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.values.push(Value::Cat("a".into()));
                c
            })
            .collect();
        d.workloads.push(Workload::new(
            "zoned".into(),
            Space::new(dims, configs).unwrap(),
            w.runs.clone(),
        ));
        d.workloads.push(Workload {
            name: "again".into(),
            ..w
        });
        let got = model_inputs(
            &d,
            &[0, 1, 2],
            &["random".into(), "bo".into(), "cherrypick".into()],
        );
        let line = |strategy: &str, inputs: &str, workloads: &[&str]| ModelInputs {
            strategy: strategy.into(),
            inputs: inputs.into(),
            workloads: workloads.iter().map(|w| w.to_string()).collect(),
        };
        assert_eq!(
            got,
            [
                line("bo", "x", &["w", "again"]),
                line("bo", "x; left out: zone (constant)", &["zoned"]),
                line("cherrypick", "x", &["w", "again"]),
                line("cherrypick", "x; left out: zone (constant)", &["zoned"]),
            ]
        );
    }
}
