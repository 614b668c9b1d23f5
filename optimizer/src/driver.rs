//! The one search loop: ask a strategy, run the proposal with a [`Runner`], tell the outcome,
//! report to observers, and decide when to stop. Live search, replay of recorded runs and
//! benchmarks all drive strategies through [`drive`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
}

/// Side effects of a search (progress display, journal, traces) hook in here.
pub trait Observer {
    /// A probe is about to be launched. `index` counts probes from 0.
    fn on_launch(&mut self, _index: usize, _proposal: &Proposal) {}
    /// A probe finished and was told to the strategy: `proposal` is what was asked, `report`
    /// what the runner said.
    fn on_outcome(&mut self, _index: usize, _proposal: &Proposal, _report: &Report) {}
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
pub async fn drive<R: Runner>(
    space: &Space,
    optimizer: &mut dyn Optimizer,
    runner: &R,
    options: &DriveOptions,
    observers: &mut [&mut dyn Observer],
) -> SearchResult {
    let mut stop_fired_at = None;
    // Probes told before this drive (a resumed search's journal) were billed what they record.
    let mut spent = optimizer.history().total_spend();
    let termination = loop {
        let told = optimizer.history().len();
        if let Some(flag) = &options.limits.interrupt {
            if flag.load(Ordering::SeqCst) {
                break Termination::Interrupted;
            }
        }
        if let Some(budget) = options.budget {
            if told >= budget {
                break Termination::Budget {
                    evaluations: budget,
                };
            }
        }
        let Some(proposal) = optimizer.ask() else {
            break Termination::SpaceExhausted;
        };
        if proposal.stop && stop_fired_at.is_none() {
            stop_fired_at = Some(told);
            if options.honour_stop {
                let detail = match (optimizer.stop_detail(), proposal.expected_improvement) {
                    (Some(d), _) => format!("{d} after {told} runs"),
                    (None, Some(ei)) => {
                        format!("expected improvement {:.2}% after {told} runs", ei * 100.0)
                    }
                    (None, None) => format!("after {told} runs"),
                };
                break Termination::StopRule { detail };
            }
        }
        if let Some(limit) = options.max_spend_usd {
            let worst = runner.worst_case_usd(space, proposal.config, &options.limits);
            if spent + worst > limit {
                break Termination::SpendLimit {
                    spent_usd: spent,
                    limit_usd: limit,
                };
            }
        }
        for o in observers.iter_mut() {
            o.on_launch(told, &proposal);
        }
        let report = runner.run(space, proposal.config, &options.limits).await;
        // A probe that did not complete after the user pressed Ctrl-C was (or may have been)
        // aborted by it: it did not finish, so it is neither told nor recorded, and a resumed
        // search runs it again. A probe that completed meanwhile is kept.
        if interrupted(&options.limits) && !matches!(report.outcome, Outcome::Completed { .. }) {
            break Termination::Interrupted;
        }
        spent += report.billed_usd;
        optimizer.tell(proposal.config, report.outcome.clone());
        for o in observers.iter_mut() {
            o.on_outcome(told, &proposal, &report);
        }
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
