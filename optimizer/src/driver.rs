//! The one search loop: ask a strategy, run the proposal with a [`Runner`], tell the outcome,
//! report to observers, and decide when to stop. Live search, replay of recorded runs and
//! benchmarks all drive strategies through [`drive`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::journal::ProbeLog;
use crate::outcome::{Observation, Outcome};
use crate::space::{ConfigId, Space};
use crate::strategy::{Optimizer, Proposal, Termination};

/// Limits that apply to one probe.
#[derive(Debug, Clone, Default)]
pub struct ProbeLimits {
    /// Wall-time limit of the probe; a runner stops the job and reports `TimedOut` past it.
    pub timeout: Option<Duration>,
    /// Set when the user asked the search to stop; runners may abort a running probe.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Everything a runner says about one probe, handed back through the loop (never through shared
/// state): the outcome the strategy learns from, what the backend kept of the job's output, what
/// the probe was billed, and whether the outcome was read from a record instead of run now.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub outcome: Outcome,
    /// The job's command line, exit code and output tails, when the backend runs a process.
    pub log: Option<ProbeLog>,
    /// USD the probe was billed (what spend limits count): at least the outcome's cost; more when
    /// the backend pays for more than the job's runtime (a cluster billed from creation to
    /// deletion, which it also records in the outcome as [`crate::SPEND_METRIC`]).
    pub billed_usd: f64,
    /// The outcome comes from a record (a journal being replayed), not from running the job.
    pub recorded: bool,
}

impl Report {
    /// A probe that ran, billed what its outcome says ([`Outcome::spend_usd`]).
    pub fn new(outcome: Outcome) -> Report {
        Report {
            billed_usd: outcome.spend_usd(),
            outcome,
            log: None,
            recorded: false,
        }
    }
    /// An outcome read back from a record.
    pub fn recorded(outcome: Outcome) -> Report {
        Report {
            recorded: true,
            ..Report::new(outcome)
        }
    }
    pub fn with_log(mut self, log: ProbeLog) -> Report {
        self.log = Some(log);
        self
    }
}

impl From<Outcome> for Report {
    fn from(outcome: Outcome) -> Report {
        Report::new(outcome)
    }
}

/// Runs the workload under one configuration (local threads, Spark, Dataproc, a command, or a
/// lookup in recorded runs) and reports what happened. Failures are outcomes, not errors.
pub trait Runner {
    fn run(
        &self,
        space: &Space,
        config: ConfigId,
        limits: &ProbeLimits,
    ) -> impl Future<Output = Report> + Send;

    /// The most a probe of `config` can cost within `limits` (what `--max-spend` checks before
    /// launching it). By default the configuration's price for the whole time limit; a backend
    /// that bills for more than the job (a cluster's creation and deletion) says so here.
    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        worst_case_cost(space, config, limits)
    }

    /// Why no further probe may be launched, once that is so (a cluster the backend could not
    /// delete, still billed): the search launches nothing new, waits for the probes in flight
    /// and ends with [`Termination::Halted`]. By default never.
    fn halted(&self) -> Option<String> {
        None
    }
}

/// Side effects of a search (progress display, journal, traces) hook in here.
pub trait Observer {
    /// A probe is about to be launched. `index` counts probes from 0.
    fn on_launch(&mut self, _index: usize, _proposal: &Proposal) {}
    /// A probe finished and was told to the strategy: `proposal` is what was asked, `report`
    /// what the runner said.
    fn on_outcome(&mut self, _index: usize, _proposal: &Proposal, _report: &Report) {}
    /// A probe a stop signal cancelled came back unfinished: it is not told to the strategy (a
    /// resumed search runs it again), but `report.billed_usd` was spent.
    fn on_abandoned(&mut self, _index: usize, _proposal: &Proposal, _report: &Report) {}
    /// The strategy's stop rule ended the search after `told` probes (nothing new is launched;
    /// probes in flight are still waited for and told).
    fn on_stop_rule(&mut self, _told: usize, _detail: &str) {}
    /// The search ended.
    fn on_finish(&mut self, _result: &SearchResult) {}
}

/// How the loop ends.
#[derive(Debug, Clone, Default)]
pub struct DriveOptions {
    /// Maximum number of probes (including any already told before the drive started).
    pub budget: Option<usize>,
    /// End at the strategy's stop rule. When false the loop records where the rule first fired
    /// and carries on to the budget (how replay comparisons report cost against evaluations).
    pub honour_stop: bool,
    /// Never launch a probe whose worst-case cost (price x timeout) would take total spend past
    /// this many USD.
    pub max_spend_usd: Option<f64>,
    /// Runtime limit of the job (objective constraint); the best configuration must meet it.
    pub max_runtime_s: Option<f64>,
    pub limits: ProbeLimits,
    /// Probes in flight at once (0 and 1 both mean one after another).
    pub parallel: usize,
    /// Probes to launch before asking anything (a resumed search's probes that were running
    /// when it stopped); the strategy is told they are pending. They count against the budget
    /// and the spend limit like any other launch.
    pub relaunch: Vec<Proposal>,
    /// Spent before this drive on probes the strategy was never told (a resumed search's
    /// cancelled ones); counted against the spend limit and in the result's spend.
    pub spent_before_usd: f64,
    /// The stop rule already ended the search this drive resumes, after this many probes told,
    /// measuring this: with `honour_stop` the strategy is asked nothing (the probes in
    /// `relaunch` still run) and the drive ends there as the uninterrupted search did.
    pub stopped: Option<(usize, String)>,
}

/// What a drive produced.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub termination: Termination,
    /// Cheapest completed probe meeting the runtime limit, if any.
    pub best: Option<Observation>,
    pub evaluations: usize,
    /// Number of probes told when the stop rule first fired (whether or not it was honoured).
    pub stop_fired_at: Option<usize>,
    pub spent_usd: f64,
}

/// Drives `optimizer` with `runner` until a termination condition holds.
///
/// With [`DriveOptions::parallel`] above 1, up to that many probes run at once: whenever one
/// finishes it is told and the next is asked. The budget counts launched probes; the spend check
/// before a launch counts what was billed plus the worst case of every probe still running (a
/// proposal that does not fit waits for a running probe to finish, and the search ends only when
/// it does not fit with nothing running); once any end condition holds nothing new is launched,
/// and probes in flight are waited for and told (they are paid for). Observers see `on_outcome`
/// in completion order, each with the index of its launch. With `parallel` 1 this is the
/// sequential loop: ask, run, tell.
pub async fn drive<R: Runner>(
    space: &Space,
    optimizer: &mut dyn Optimizer,
    runner: &R,
    options: &DriveOptions,
    observers: &mut [&mut dyn Observer],
) -> SearchResult {
    let parallel = options.parallel.max(1);
    let mut stop_fired_at = None;
    // Probes told before this drive (a resumed search's journal) were billed what they record.
    let mut spent = optimizer.history().total_spend() + options.spent_before_usd;
    let mut launched = optimizer.history().len();
    let mut in_flight = Vec::with_capacity(parallel);
    let mut ended: Option<Termination> = None;
    let mut held: Option<Proposal> = None;
    let mut relaunch: std::collections::VecDeque<Proposal> =
        options.relaunch.iter().cloned().collect();
    for p in &relaunch {
        optimizer.pending(p.config);
    }
    loop {
        while ended.is_none() && in_flight.len() < parallel {
            if interrupted(&options.limits) {
                ended = Some(Termination::Interrupted);
                break;
            }
            if let Some(reason) = runner.halted() {
                ended = Some(Termination::Halted { detail: reason });
                break;
            }
            // A search its stop rule ended (a resume of it) re-runs only what was in flight,
            // whatever budget is left.
            if held.is_none() && relaunch.is_empty() && options.honour_stop {
                if let Some((told, detail)) = &options.stopped {
                    stop_fired_at = Some(*told);
                    for o in observers.iter_mut() {
                        o.on_stop_rule(*told, detail);
                    }
                    ended = Some(Termination::StopRule {
                        detail: detail.clone(),
                    });
                    break;
                }
            }
            if let Some(budget) = options.budget {
                if launched >= budget {
                    ended = Some(Termination::Budget {
                        evaluations: budget,
                    });
                    break;
                }
            }
            // A proposal held back by the spend limit goes first once a probe has finished, then
            // the probes a resumed search re-runs.
            let proposal = match held.take().or_else(|| relaunch.pop_front()) {
                Some(p) => p,
                None => {
                    let Some(proposal) = optimizer.ask() else {
                        ended = Some(Termination::SpaceExhausted);
                        break;
                    };
                    let told = optimizer.history().len();
                    if proposal.stop && stop_fired_at.is_none() {
                        stop_fired_at = Some(told);
                        if options.honour_stop {
                            let detail = stop_detail(&*optimizer, &proposal, told);
                            for o in observers.iter_mut() {
                                o.on_stop_rule(told, &detail);
                            }
                            ended = Some(Termination::StopRule { detail });
                            break;
                        }
                    }
                    proposal
                }
            };
            // Only a spend limit needs a probe's worst case.
            let worst = match options.max_spend_usd {
                Some(_) => runner.worst_case_usd(space, proposal.config, &options.limits),
                None => 0.0,
            };
            if let Some(limit) = options.max_spend_usd {
                let running: f64 = in_flight.iter().map(|(_, _, worst, _)| worst).sum();
                if spent + running + worst > limit {
                    // While probes run, their worst case may not happen: wait for one and
                    // check again. With nothing running the limit really is reached.
                    if in_flight.is_empty() {
                        ended = Some(Termination::SpendLimit {
                            spent_usd: spent,
                            limit_usd: limit,
                        });
                    } else {
                        held = Some(proposal);
                    }
                    break;
                }
            }
            for o in observers.iter_mut() {
                o.on_launch(launched, &proposal);
            }
            let probe = Box::pin(runner.run(space, proposal.config, &options.limits));
            in_flight.push((launched, proposal, worst, probe));
            launched += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        let (slot, report) = std::future::poll_fn(|cx| {
            for (slot, (_, _, _, probe)) in in_flight.iter_mut().enumerate() {
                if let Poll::Ready(report) = probe.as_mut().poll(cx) {
                    return Poll::Ready((slot, report));
                }
            }
            Poll::Pending
        })
        .await;
        let (index, proposal, _, _) = in_flight.remove(slot);
        // A probe that did not complete after the user pressed Ctrl-C was (or may have been)
        // aborted by it: it did not finish, so it is neither told nor recorded, and a resumed
        // search runs it again. A probe that completed meanwhile is kept, and so is one that
        // hit its time limit first (the signal came while it was being stopped): that is its
        // outcome, and running it again would pay for the same time-out twice.
        let finished = matches!(
            report.outcome,
            Outcome::Completed { .. } | Outcome::TimedOut { .. }
        );
        if interrupted(&options.limits) && !finished {
            // It was paid for all the same: counted here, and kept by observers (the journal)
            // so that a resumed search counts it too.
            spent += report.billed_usd;
            for o in observers.iter_mut() {
                o.on_abandoned(index, &proposal, &report);
            }
            ended = Some(Termination::Interrupted);
            continue;
        }
        spent += report.billed_usd;
        optimizer.tell(proposal.config, report.outcome.clone());
        for o in observers.iter_mut() {
            o.on_outcome(index, &proposal, &report);
        }
    }
    let termination = match ended {
        Some(_) if interrupted(&options.limits) => Termination::Interrupted,
        Some(t) => t,
        None => Termination::SpaceExhausted,
    };
    let history = optimizer.history();
    let result = SearchResult {
        termination,
        best: history.best(options.max_runtime_s).cloned(),
        evaluations: history.len(),
        stop_fired_at,
        spent_usd: spent,
    };
    for o in observers.iter_mut() {
        o.on_finish(&result);
    }
    result
}

/// What a stop rule that fired at an ask measured, for the search's end message.
fn stop_detail(optimizer: &dyn Optimizer, proposal: &Proposal, told: usize) -> String {
    match (optimizer.stop_detail(), proposal.expected_improvement) {
        (Some(d), _) => format!("{d} after {told} runs"),
        (None, Some(ei)) => format!("expected improvement {:.2}% after {told} runs", ei * 100.0),
        (None, None) => format!("after {told} runs"),
    }
}

fn interrupted(limits: &ProbeLimits) -> bool {
    limits
        .interrupt
        .as_ref()
        .is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Worst case a probe can cost: its price for the whole time limit. Without a time limit the
/// spend limit cannot bound a probe in advance, so this is infinite.
pub fn worst_case_cost(space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
    match limits.timeout {
        Some(t) => space.config(config).price_per_hour * t.as_secs_f64() / 3600.0,
        None => f64::INFINITY,
    }
}

/// Runs a future to completion on the current thread. Replay runners never wait on I/O, so
/// this is all a replay needs; live backends use a tokio runtime instead.
pub fn block_on<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use crate::space::{Config, Dimension, Kind, Value};
    use crate::strategies::Grid;

    /// Configuration i runs `durations[i]` simulated seconds at 36 USD/h (1 cent a second).
    fn space(durations: &[f64]) -> Arc<Space> {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = (0..durations.len())
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: 36.0,
            })
            .collect();
        Arc::new(Space::new(dims, configs).unwrap())
    }

    struct Clocked<'a> {
        clock: &'a VirtualClock,
        durations: Vec<f64>,
    }

    impl Runner for Clocked<'_> {
        fn run(
            &self,
            space: &Space,
            config: ConfigId,
            _limits: &ProbeLimits,
        ) -> impl Future<Output = Report> + Send {
            let runtime_s = self.durations[config];
            let cost_usd = space.config(config).price_per_hour * runtime_s / 3600.0;
            let done = self.clock.sleep(runtime_s);
            async move {
                done.await;
                Report::new(Outcome::Completed {
                    runtime_s,
                    cost_usd,
                    metrics: Default::default(),
                })
            }
        }
    }

    /// Launch and finish times, and the most probes in flight at once.
    #[derive(Default)]
    struct Timeline<'a> {
        clock: Option<&'a VirtualClock>,
        launches: Vec<(usize, ConfigId, f64)>,
        finishes: Vec<(usize, ConfigId, f64)>,
        most_in_flight: usize,
    }

    impl Observer for Timeline<'_> {
        fn on_launch(&mut self, index: usize, proposal: &Proposal) {
            let now = self.clock.map_or(0.0, VirtualClock::now);
            self.launches.push((index, proposal.config, now));
            let running = self.launches.len() - self.finishes.len();
            self.most_in_flight = self.most_in_flight.max(running);
        }
        fn on_outcome(&mut self, index: usize, proposal: &Proposal, _report: &Report) {
            let now = self.clock.map_or(0.0, VirtualClock::now);
            self.finishes.push((index, proposal.config, now));
        }
    }

    /// (launch or finish index, configuration, simulated time) of each event.
    type Events = Vec<(usize, ConfigId, f64)>;

    /// The result, the launches, the finishes and the most probes in flight at once.
    fn run(
        durations: &[f64],
        optimizer: &mut dyn Optimizer,
        options: &DriveOptions,
    ) -> (SearchResult, Events, Events, usize) {
        let clock = VirtualClock::new();
        let space = space(durations);
        let runner = Clocked {
            clock: &clock,
            durations: durations.to_vec(),
        };
        let mut timeline = Timeline {
            clock: Some(&clock),
            ..Default::default()
        };
        let result = block_on(drive(
            &space,
            optimizer,
            &runner,
            options,
            &mut [&mut timeline],
        ));
        (
            result,
            timeline.launches,
            timeline.finishes,
            timeline.most_in_flight,
        )
    }

    #[test]
    fn parallel_probes_are_told_as_they_finish_and_the_next_is_launched_at_once() {
        let durations = [50.0, 10.0, 30.0, 20.0, 40.0, 5.0];
        let options = DriveOptions {
            parallel: 3,
            ..Default::default()
        };
        let mut grid = Grid::new(space(&durations));
        let (result, launches, finishes, most) = run(&durations, &mut grid, &options);
        assert_eq!(most, 3);
        assert_eq!(result.termination, Termination::SpaceExhausted);
        assert_eq!(result.evaluations, 6);
        let launched_at: Vec<(ConfigId, f64)> = launches.iter().map(|l| (l.1, l.2)).collect();
        assert_eq!(
            launched_at,
            [
                (0, 0.0),
                (1, 0.0),
                (2, 0.0),
                (3, 10.0),
                (4, 30.0),
                (5, 30.0)
            ]
        );
        // Completion order, each with its launch index; the tie at 30 s goes to the first launched.
        let done: Vec<(usize, ConfigId, f64)> = finishes;
        assert_eq!(
            done,
            [
                (1, 1, 10.0),
                (2, 2, 30.0),
                (3, 3, 30.0),
                (5, 5, 35.0),
                (0, 0, 50.0),
                (4, 4, 70.0)
            ]
        );
        let told: Vec<ConfigId> = grid
            .history()
            .observations()
            .iter()
            .map(|o| o.config)
            .collect();
        assert_eq!(told, [1, 2, 3, 5, 0, 4]);

        // One at a time is the sequential loop: catalogue order, 155 s end to end.
        let mut grid = Grid::new(space(&durations));
        let (result, _, finishes, most) = run(&durations, &mut grid, &DriveOptions::default());
        assert_eq!(most, 1);
        assert_eq!(result.evaluations, 6);
        assert_eq!(finishes.last().map(|f| f.2), Some(155.0));
        let order: Vec<ConfigId> = finishes.iter().map(|f| f.1).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_budget_counts_launched_probes_and_every_one_in_flight_is_told() {
        let durations = [50.0, 10.0, 30.0, 20.0, 40.0, 5.0];
        let options = DriveOptions {
            parallel: 4,
            budget: Some(5),
            ..Default::default()
        };
        let mut grid = Grid::new(space(&durations));
        let (result, launches, finishes, _) = run(&durations, &mut grid, &options);
        assert_eq!(launches.len(), 5);
        assert_eq!(finishes.len(), 5);
        assert_eq!(result.evaluations, 5);
        assert_eq!(result.termination, Termination::Budget { evaluations: 5 });
    }

    #[test]
    fn the_spend_check_counts_the_worst_case_of_every_probe_in_flight() {
        // 100 s limit at 1 cent a second: each probe may cost 1 USD before it ends.
        let durations = [10.0; 6];
        let options = |cap: f64| DriveOptions {
            parallel: 3,
            max_spend_usd: Some(cap),
            limits: ProbeLimits {
                timeout: Some(Duration::from_secs(100)),
                interrupt: None,
            },
            ..Default::default()
        };
        // Two in flight are a possible 2 USD; a third could pass 2.5 USD, so it waits for one of
        // them to finish (0.1 USD billed) and goes next.
        let mut grid = Grid::new(space(&durations));
        let (result, launches, _, most) = run(&durations, &mut grid, &options(2.5));
        assert_eq!(most, 2);
        assert_eq!(launches.len(), 6);
        assert_eq!(result.evaluations, 6);
        assert_eq!(result.termination, Termination::SpaceExhausted);
        assert!((result.spent_usd - 0.6).abs() < 1e-9);
        // Below one probe's worst case, nothing is launched at all.
        let mut grid = Grid::new(space(&durations));
        let (result, launches, _, _) = run(&durations, &mut grid, &options(0.5));
        assert!(launches.is_empty());
        assert!(matches!(result.termination, Termination::SpendLimit { .. }));
        // 1.45 USD: one at a time, and the search ends once even one could pass it.
        let mut grid = Grid::new(space(&durations));
        let (result, _, _, most) = run(&durations, &mut grid, &options(1.45));
        assert_eq!(most, 1);
        assert_eq!(result.evaluations, 5);
        assert!(matches!(result.termination, Termination::SpendLimit { .. }));
    }

    /// Completes every probe in 10 s at 1 cent a second, but a stop signal arrives while the
    /// probe of configuration 2 runs: it comes back failed (or timed out, when its limit hit
    /// first), having cost 0.3 USD.
    struct SignalledAtTwo {
        /// Configuration 2 hit its time limit before the signal came (while its job was
        /// being stopped).
        timed_out_first: bool,
    }

    impl Runner for SignalledAtTwo {
        fn run(
            &self,
            _space: &Space,
            config: ConfigId,
            limits: &ProbeLimits,
        ) -> impl Future<Output = Report> + Send {
            let outcome = if config == 2 {
                if let Some(flag) = &limits.interrupt {
                    flag.store(true, Ordering::SeqCst);
                }
                if self.timed_out_first {
                    Outcome::TimedOut {
                        elapsed_s: 30.0,
                        cost_usd: 0.3,
                    }
                } else {
                    Outcome::Failed {
                        reason: "interrupted by the user".into(),
                        elapsed_s: 30.0,
                        cost_usd: 0.3,
                    }
                }
            } else {
                Outcome::Completed {
                    runtime_s: 10.0,
                    cost_usd: 0.1,
                    metrics: Default::default(),
                }
            };
            std::future::ready(Report::new(outcome))
        }
    }

    /// A grid search over six configurations driven by [`SignalledAtTwo`] with a stop flag:
    /// what it ended with, the strategy, and the probes observers heard were abandoned.
    fn signalled_drive(timed_out_first: bool) -> (SearchResult, Grid, Abandoned) {
        let space = space(&[10.0; 6]);
        let mut grid = Grid::new(space.clone());
        let mut seen = Abandoned::default();
        let options = DriveOptions {
            limits: ProbeLimits {
                timeout: timed_out_first.then_some(Duration::from_secs(30)),
                interrupt: Some(Arc::new(AtomicBool::new(false))),
            },
            ..Default::default()
        };
        let result = block_on(drive(
            &space,
            &mut grid,
            &SignalledAtTwo { timed_out_first },
            &options,
            &mut [&mut seen],
        ));
        (result, grid, seen)
    }

    #[test]
    fn a_probe_that_timed_out_before_the_signal_is_recorded() {
        let (result, grid, seen) = signalled_drive(true);
        assert_eq!(result.termination, Termination::Interrupted);
        assert_eq!(result.evaluations, 3, "the time-out is told");
        assert!(matches!(
            grid.history().observations().last().map(|o| &o.outcome),
            Some(Outcome::TimedOut { .. })
        ));
        assert!(seen.0.is_empty(), "nothing abandoned");
        assert!((result.spent_usd - 0.5).abs() < 1e-12);
    }

    #[derive(Default)]
    struct Abandoned(Vec<(usize, ConfigId, f64)>);

    impl Observer for Abandoned {
        fn on_abandoned(&mut self, index: usize, proposal: &Proposal, report: &Report) {
            self.0.push((index, proposal.config, report.billed_usd));
        }
    }

    /// A probe a signal cancelled is not told (a resumed search runs it again) but it was paid
    /// for: the drive counts it, observers hear of it, and a later drive given what it spent
    /// counts that against the spend limit.
    #[test]
    fn a_probe_a_signal_cancelled_is_paid_for_though_not_told() {
        let (result, grid, seen) = signalled_drive(false);
        let space = space(&[10.0; 6]);
        assert_eq!(result.termination, Termination::Interrupted);
        assert_eq!(result.evaluations, 2);
        assert_eq!(grid.history().len(), 2, "the cancelled probe is not told");
        assert_eq!(seen.0, vec![(2, 2, 0.3)]);
        assert!((result.spent_usd - 0.5).abs() < 1e-12);

        // Resumed with that 0.3 USD spent beside the two records' 0.2: a probe that may cost
        // 1 USD (100 s at 1 cent a second) passes a 1.45 USD limit, so none is launched; without
        // the cancelled probe's spend one would be.
        let resumed = |spent_before_usd: f64| {
            let mut grid = Grid::new(space.clone());
            for c in 0..2 {
                grid.tell(
                    c,
                    Outcome::Completed {
                        runtime_s: 10.0,
                        cost_usd: 0.1,
                        metrics: Default::default(),
                    },
                );
            }
            let options = DriveOptions {
                max_spend_usd: Some(1.45),
                spent_before_usd,
                limits: ProbeLimits {
                    timeout: Some(Duration::from_secs(100)),
                    interrupt: None,
                },
                budget: Some(3),
                ..Default::default()
            };
            block_on(drive(
                &space,
                &mut grid,
                &SignalledAtTwo {
                    timed_out_first: false,
                },
                &options,
                &mut [],
            ))
        };
        let counted = resumed(0.3);
        assert!(matches!(
            counted.termination,
            Termination::SpendLimit { .. }
        ));
        assert_eq!(counted.evaluations, 2);
        assert!((counted.spent_usd - 0.5).abs() < 1e-12);
        let uncounted = resumed(0.0);
        assert_eq!(uncounted.evaluations, 3);
    }

    #[test]
    fn probes_to_relaunch_go_first_and_are_never_asked_again() {
        let durations = [50.0, 10.0, 30.0, 20.0, 40.0, 5.0];
        let relaunch = |config| Proposal {
            config,
            expected_improvement: None,
            stop: false,
        };
        let options = DriveOptions {
            parallel: 2,
            relaunch: vec![relaunch(4), relaunch(2)],
            ..Default::default()
        };
        let mut grid = Grid::new(space(&durations));
        let (result, launches, _, _) = run(&durations, &mut grid, &options);
        let order: Vec<ConfigId> = launches.iter().map(|l| l.1).collect();
        assert_eq!(order, [4, 2, 0, 1, 3, 5]);
        assert_eq!(result.evaluations, 6);
    }

    /// Grid order, with the stop rule firing at the `stop_at`-th ask (1-based).
    struct StopsAt {
        grid: Grid,
        asks: usize,
        stop_at: usize,
    }

    impl Optimizer for StopsAt {
        fn name(&self) -> &str {
            "stops-at"
        }
        fn ask(&mut self) -> Option<Proposal> {
            self.asks += 1;
            let mut p = self.grid.ask()?;
            p.stop = self.asks >= self.stop_at;
            Some(p)
        }
        fn tell(&mut self, config: ConfigId, outcome: Outcome) {
            self.grid.tell(config, outcome)
        }
        fn pending(&mut self, config: ConfigId) {
            self.grid.pending(config)
        }
        fn history(&self) -> &crate::outcome::History {
            self.grid.history()
        }
    }

    #[test]
    fn a_stop_rule_launches_nothing_new_and_probes_in_flight_finish_and_are_told() {
        let durations = [50.0, 10.0, 30.0, 20.0, 40.0, 5.0];
        let options = DriveOptions {
            parallel: 3,
            honour_stop: true,
            ..Default::default()
        };
        let mut s = StopsAt {
            grid: Grid::new(space(&durations)),
            asks: 0,
            stop_at: 4,
        };
        let (result, launches, finishes, _) = run(&durations, &mut s, &options);
        assert_eq!(launches.len(), 3);
        assert_eq!(finishes.len(), 3, "every probe in flight was told");
        assert!(matches!(result.termination, Termination::StopRule { .. }));
        // The rule fired when the first probe (10 s) had been told.
        assert_eq!(result.stop_fired_at, Some(1));
    }
}
