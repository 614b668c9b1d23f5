//! Replay of recorded runs: a [`Runner`] that answers probes from a workload's records, and one
//! replayed search (`replay_run`) driven by `optimizer::drive`, with per-probe traces and the
//! time each `ask` took. Every replay runs on a simulated clock (a probe lasts its recorded time
//! plus a launch overhead), which orders the outcomes of probes run in parallel and gives the
//! wall time a search would have taken.

use std::future::Future;
use std::time::Instant;

use optimizer::{
    block_on, build_strategy, drive, ConfigId, DriveOptions, History, Observer, OnClock, Optimizer,
    Outcome, Proposal, Report, Runner, Space, StrategyOptions, Termination, UnknownStrategy,
    VirtualClock,
};

use crate::dataset::Workload;
use optimizer::rng::Rng;

/// Looks probes up in the recorded runs. With several recorded runs of one configuration it
/// picks one per (seed, configuration), so a seed fully determines a replay.
#[derive(Debug, Clone, Copy)]
pub struct ReplayRunner<'a> {
    workload: &'a Workload,
    seed: u64,
}

impl<'a> ReplayRunner<'a> {
    pub fn new(workload: &'a Workload, seed: u64) -> ReplayRunner<'a> {
        ReplayRunner { workload, seed }
    }
    /// The recorded run a probe of `config` gets, if the workload has one.
    fn pick(&self, config: ConfigId) -> Option<&'a Outcome> {
        let runs = &self.workload.runs[config];
        let pick = match runs.len() {
            0 | 1 => 0,
            n => Rng::derive(self.seed ^ 0x7265_706c_6179, config as u64).below(n),
        };
        runs.get(pick)
    }
    /// The recorded outcome a probe of `config` gets.
    pub fn outcome(&self, config: ConfigId) -> Outcome {
        self.pick(config).cloned().unwrap_or(Outcome::Failed {
            reason: "no recorded run".into(),
            elapsed_s: 0.0,
            cost_usd: 0.0,
        })
    }
    /// How long that recorded run took (0 without one).
    pub fn elapsed_s(&self, config: ConfigId) -> f64 {
        self.pick(config).map_or(0.0, Outcome::elapsed_s)
    }
}

impl Runner for ReplayRunner<'_> {
    fn run(
        &self,
        _space: &Space,
        config: ConfigId,
        _limits: &optimizer::ProbeLimits,
    ) -> impl Future<Output = Report> + Send {
        std::future::ready(Report::recorded(self.outcome(config)))
    }
}

/// How one replayed search ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub budget: Option<usize>,
    pub max_runtime_s: Option<f64>,
    /// End at the strategy's stop rule (`replay`) or only record where it fired (`compare`).
    pub honour_stop: bool,
    /// Probes in flight at once (0 and 1: one after another).
    pub parallel: usize,
    /// Simulated seconds every probe spends besides its recorded runtime (cluster creation and
    /// deletion, job submission).
    pub launch_overhead_s: f64,
}

/// One probe of a replayed search.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Which launch this was (0-based); probes are listed in the order they finished, which is
    /// the launch order unless several ran in parallel.
    pub launch: usize,
    /// Simulated seconds from the start of the search to this probe's launch and its end.
    pub launched_s: f64,
    pub finished_s: f64,
    pub config: ConfigId,
    pub outcome: Outcome,
    pub expected_improvement: Option<f64>,
    /// Milliseconds the `ask` that proposed this probe took.
    pub ms_ask: f64,
}

/// Everything one replayed search produced.
#[derive(Debug, Clone)]
pub struct RunTrace {
    pub strategy: String,
    pub seed: u64,
    pub probes: Vec<Probe>,
    /// Probes told when the stop rule first fired, if it did.
    pub stop_fired_at: Option<usize>,
    pub termination: Termination,
    /// Milliseconds of every `ask`, including a last one that proposed nothing.
    pub ask_ms: Vec<f64>,
}

/// Times every `ask` of the wrapped strategy; everything else passes through.
struct Timed {
    inner: Box<dyn Optimizer>,
    ask_ms: Vec<f64>,
}

impl Optimizer for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn ask(&mut self) -> Option<Proposal> {
        let start = Instant::now();
        let p = self.inner.ask();
        self.ask_ms.push(start.elapsed().as_secs_f64() * 1e3);
        p
    }
    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        self.inner.tell(config, outcome)
    }
    fn pending(&mut self, config: ConfigId) {
        self.inner.pending(config)
    }
    fn history(&self) -> &History {
        self.inner.history()
    }
    fn stop_detail(&self) -> Option<String> {
        self.inner.stop_detail()
    }
}

/// Collects probes, their expected improvement and their simulated times.
struct Recorder<'a> {
    clock: &'a VirtualClock,
    launched_s: Vec<f64>,
    probes: Vec<Probe>,
}

impl Observer for Recorder<'_> {
    fn on_launch(&mut self, index: usize, _proposal: &Proposal) {
        if self.launched_s.len() <= index {
            self.launched_s.resize(index + 1, f64::NAN);
        }
        self.launched_s[index] = self.clock.now();
    }
    fn on_outcome(&mut self, index: usize, proposal: &Proposal, report: &Report) {
        self.probes.push(Probe {
            launch: index,
            launched_s: self.launched_s.get(index).copied().unwrap_or(f64::NAN),
            finished_s: self.clock.now(),
            config: proposal.config,
            outcome: report.outcome.clone(),
            expected_improvement: proposal.expected_improvement,
            ms_ask: 0.0,
        });
    }
}

/// Replays `strategy` with `seed` on `workload`; `extra` observers see every probe live.
pub fn replay_run(
    workload: &Workload,
    strategy: &str,
    seed: u64,
    options: &RunOptions,
    extra: &mut [&mut dyn Observer],
) -> Result<RunTrace, UnknownStrategy> {
    let inner = build_strategy(
        strategy,
        workload.space.clone(),
        &StrategyOptions {
            seed,
            max_runtime_s: options.max_runtime_s,
        },
    )?;
    let mut timed = Timed {
        inner,
        // One ask per probe at most (and the one that finds none left): never more than the
        // catalogue, whatever budget was asked for.
        ask_ms: Vec::with_capacity(options.budget.unwrap_or(64).min(workload.space.len()) + 1),
    };
    let clock = VirtualClock::new();
    let recorded = ReplayRunner::new(workload, seed);
    let overhead = options.launch_overhead_s;
    let runner = OnClock::new(recorded, &clock, move |c| recorded.elapsed_s(c) + overhead);
    let drive_options = DriveOptions {
        budget: options.budget,
        honour_stop: options.honour_stop,
        max_runtime_s: options.max_runtime_s,
        parallel: options.parallel,
        ..Default::default()
    };
    let mut recorder = Recorder {
        clock: &clock,
        launched_s: Vec::new(),
        probes: Vec::new(),
    };
    let result = {
        let mut observers: Vec<&mut dyn Observer> = Vec::with_capacity(extra.len() + 1);
        observers.push(&mut recorder);
        for o in extra.iter_mut() {
            observers.push(&mut **o);
        }
        block_on(drive(
            &workload.space,
            &mut timed,
            &runner,
            &drive_options,
            &mut observers,
        ))
    };
    let mut probes = recorder.probes;
    // Launch i was proposed by ask i: the driver asks once per launch, in order (only the last
    // ask, the one that ended the search, launched nothing).
    for p in probes.iter_mut() {
        p.ms_ask = timed.ask_ms.get(p.launch).copied().unwrap_or(f64::NAN);
    }
    Ok(RunTrace {
        strategy: strategy.to_string(),
        seed,
        probes,
        stop_fired_at: result.stop_fired_at,
        termination: result.termination,
        ask_ms: timed.ask_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use optimizer::{Config, Dimension, Kind, Value};

    fn workload() -> Workload {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs: Vec<Config> = (0..6)
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: 1.0,
            })
            .collect();
        let done = |t: f64| Outcome::Completed {
            runtime_s: t,
            cost_usd: t / 3600.0,
            metrics: Default::default(),
        };
        let runs = (0..6)
            .map(|i| {
                (0..3)
                    .map(|r| done(100.0 + 10.0 * i as f64 + r as f64))
                    .collect()
            })
            .collect();
        Workload::new("w".into(), Space::new(dims, configs).unwrap(), runs)
    }

    #[test]
    fn replay_is_deterministic_per_seed_and_respects_budget() {
        let w = workload();
        let opts = RunOptions {
            budget: Some(4),
            ..Default::default()
        };
        let a = replay_run(&w, "random", 3, &opts, &mut []).unwrap();
        let b = replay_run(&w, "random", 3, &opts, &mut []).unwrap();
        assert_eq!(a.probes.len(), 4);
        let strip = |t: &RunTrace| {
            t.probes
                .iter()
                .map(|p| (p.config, p.outcome.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a), strip(&b));
        assert!(matches!(
            a.termination,
            Termination::Budget { evaluations: 4 }
        ));
        // Repeated runs: the pick depends on the seed, and some seed picks a different run.
        let r1 = ReplayRunner::new(&w, 1);
        assert_eq!(r1.outcome(2), r1.outcome(2));
        assert!((0..20).any(|s| ReplayRunner::new(&w, s).outcome(2) != r1.outcome(2)));
        assert!(replay_run(&w, "no-such", 1, &opts, &mut []).is_err());
    }

    #[test]
    fn probes_take_their_recorded_time_on_the_simulated_clock_in_parallel_too() {
        let w = workload();
        let run = |parallel: usize| {
            let opts = RunOptions {
                parallel,
                launch_overhead_s: 10.0,
                ..Default::default()
            };
            replay_run(&w, "grid", 1, &opts, &mut []).unwrap()
        };
        let seq = run(1);
        let par = run(3);
        for t in [&seq, &par] {
            assert_eq!(t.probes.len(), 6);
            for p in &t.probes {
                let took = p.finished_s - p.launched_s;
                assert!((took - (p.outcome.elapsed_s() + 10.0)).abs() < 1e-9);
            }
        }
        // One at a time: each probe starts when the previous one ends.
        for pair in seq.probes.windows(2) {
            assert_eq!(pair[1].launched_s, pair[0].finished_s);
        }
        // Three at a time: never more than three running, and done in about half the time.
        for p in &par.probes {
            let running = par
                .probes
                .iter()
                .filter(|q| q.launched_s <= p.launched_s && q.finished_s > p.launched_s)
                .count();
            assert!(running <= 3, "{running} probes running at {}", p.launched_s);
        }
        let end = |t: &RunTrace| t.probes.iter().map(|p| p.finished_s).fold(0.0, f64::max);
        assert!(
            end(&par) < 0.5 * end(&seq),
            "{} vs {}",
            end(&par),
            end(&seq)
        );
        // Listed in the order they finished, each asked once.
        assert!(par
            .probes
            .windows(2)
            .all(|p| p[0].finished_s <= p[1].finished_s));
        let mut launches: Vec<usize> = par.probes.iter().map(|p| p.launch).collect();
        launches.sort_unstable();
        assert_eq!(launches, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn grid_replay_runs_to_exhaustion_without_a_budget() {
        let w = workload();
        let t = replay_run(&w, "grid", 1, &RunOptions::default(), &mut []).unwrap();
        assert_eq!(t.probes.len(), 6);
        assert_eq!(t.termination, Termination::SpaceExhausted);
        assert_eq!(t.ask_ms.len(), 7, "the last ask proposes nothing");
    }
}
