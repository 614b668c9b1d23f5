//! `cherrypick replay`: one strategy on one recorded workload, probe by probe, through the same
//! driver as a live search; or (`--journal`) a recorded search again, through the search's own
//! display.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use experiments::{
    load, metrics::is_optimum, replay_run, report::decimals, DatasetSpec, LoadOptions, RunOptions,
    Scale, Workload,
};
use launch::progress::{count, print_best, Progress};
use optimizer::journal::{parse_rfc3339, Journal, Resume};
use optimizer::{
    block_on, build_strategy, drive, ConfigId, DriveOptions, Observer, OnClock, Outcome,
    ProbeLimits, Proposal, Report, Space, StrategyOptions, VirtualClock,
};
use serde_json::json;

use crate::exit::bad_input;

#[derive(clap::Args)]
pub struct Args {
    /// `scout`, `cherrypick`, or the path of a generic CSV v1 file.
    #[arg(long, required_unless_present = "journal", conflicts_with = "journal")]
    pub dataset: Option<String>,
    /// A search journal to replay instead of a dataset: its strategy (or --strategy) is driven
    /// again on the recorded outcomes and each probe is shown as `cherrypick search` showed it.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// The dataset's own folder (default: $CHERRYPICK_DATA_DIR/<dataset>).
    #[arg(long, conflicts_with = "journal")]
    pub data_dir: Option<PathBuf>,
    /// Workload name (for example spark_lr_huge).
    #[arg(long, required_unless_present = "journal", conflicts_with = "journal")]
    pub workload: Option<String>,
    /// Strategy (default bo; with --journal, the journal's).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Seed (default 1; with --journal, the journal's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum number of probes (default: until the stop rule or the end of the catalogue;
    /// with --journal, the journal's probes).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Runtime limit in seconds: the best configuration must meet it.
    #[arg(long)]
    pub max_runtime: Option<f64>,
    /// Keep going past the strategy's stop rule (to the budget); reports where it fired.
    #[arg(long = "no-stop", visible_alias = "ignore-stop")]
    pub ignore_stop: bool,
    /// Generic CSV: seconds a failed run is charged (default: the workload's largest runtime).
    #[arg(long, conflicts_with = "journal")]
    pub failed_runtime: Option<f64>,
    /// Print a machine-readable result instead of the probe table (not with --journal).
    #[arg(long, conflicts_with = "journal")]
    pub json: bool,
}

/// Prints each probe as it is told: `cost/opt` is this probe's recorded run over the optimum,
/// `best` the lowest reference cost (a configuration's mean over its recorded runs) among the
/// configurations probed so far over the optimum, what `compare` scores.
struct Printer<'a> {
    workload: &'a Workload,
    scale: &'a Scale,
    best: f64,
    /// Width of the configuration column.
    width: usize,
}

impl Observer for Printer<'_> {
    fn on_outcome(&mut self, index: usize, proposal: &Proposal, report: &Report) {
        let (config, outcome) = (proposal.config, &report.outcome);
        if let Some(r) = self.scale.found(config, outcome) {
            self.best = self.best.min(r);
        }
        let cost = outcome.cost_paid();
        println!(
            "{:>4}  {:<width$} {:<10} {:>9.1} {:>10} {:>8.3} {:>8.3} {:>8}",
            index + 1,
            self.workload.space.config(config).name,
            outcome.status(),
            outcome.elapsed_s(),
            decimals(cost, 6),
            cost / self.scale.optimum,
            self.best,
            proposal
                .expected_improvement
                .map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
            width = self.width,
        );
    }
}

/// Refuses numbers no replay can mean: a budget of 0, a runtime limit or failed-run charge that is
/// not a positive finite number of seconds (NaN compares false with everything, so a limit of
/// NaN would silently rule every configuration out, or in).
pub fn check_numbers(
    budget: Option<usize>,
    max_runtime: Option<f64>,
    failed_runtime: Option<f64>,
) -> anyhow::Result<()> {
    if budget == Some(0) {
        return Err(bad_input(anyhow::anyhow!(
            "--budget must be at least 1 evaluation, got 0"
        )));
    }
    for (flag, value) in [
        ("--max-runtime", max_runtime),
        ("--failed-runtime", failed_runtime),
    ] {
        if let Some(t) = value {
            if !(t.is_finite() && t > 0.0) {
                return Err(bad_input(anyhow::anyhow!(
                    "{flag} must be a positive number of seconds, got {}",
                    optimizer::Shown(t)
                )));
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    check_numbers(args.budget, args.max_runtime, args.failed_runtime)?;
    if let Some(journal) = &args.journal {
        return replay_journal(journal, &args);
    }
    let dataset_arg = args.dataset.as_deref().unwrap_or_default();
    let workload_arg = args.workload.as_deref().unwrap_or_default();
    let strategy = args.strategy.as_deref().unwrap_or("bo");
    let seed = args.seed.unwrap_or(1);
    let spec = DatasetSpec::parse(dataset_arg).map_err(bad_input)?;
    let dataset = load(
        &spec,
        &LoadOptions {
            data_dir: args.data_dir.clone(),
            failed_runtime_s: args.failed_runtime,
            keep_16_core: false,
        },
    )
    .map_err(bad_input)?;
    let w = dataset.workload_index(workload_arg).map_err(bad_input)?;
    let workload = &dataset.workloads[w];
    let scale = workload.scale(args.max_runtime).map_err(bad_input)?;
    // A strategy the build does not know is bad input before anything is printed.
    build_strategy(
        strategy,
        workload.space.clone(),
        &optimizer::StrategyOptions::default(),
    )
    .map_err(bad_input)?;
    let options = RunOptions {
        budget: args.budget,
        max_runtime_s: args.max_runtime,
        honour_stop: !args.ignore_stop,
        ..Default::default()
    };
    // The configuration column as wide as the longest name, so the columns after it line up.
    let width = (0..workload.space.len())
        .map(|c| workload.space.config(c).name.chars().count())
        .max()
        .unwrap_or(0)
        .max(22);
    let mut printer = Printer {
        workload,
        scale: &scale,
        best: scale.worst_ratio(),
        width,
    };
    if !args.json {
        println!(
            "replaying `{}` on {} / {} (seed {}, {} configurations, optimum {} USD)\n",
            strategy,
            dataset.name,
            workload.name,
            seed,
            workload.space.len(),
            decimals(scale.optimum, 6)
        );
        println!(
            "{:>4}  {:<width$} {:<10} {:>9} {:>10} {:>8} {:>8} {:>8}",
            "#", "config", "status", "runtime_s", "cost_usd", "cost/opt", "best", "EI"
        );
    }
    let trace = if args.json {
        replay_run(workload, strategy, seed, &options, &mut [])
    } else {
        replay_run(workload, strategy, seed, &options, &mut [&mut printer])
    }
    .map_err(bad_input)?;
    let curve = experiments::metrics::best_curve(&trace.probes, &scale);
    let best_ratio = curve.last().copied().unwrap_or(scale.worst_ratio());
    let best = trace
        .probes
        .iter()
        .filter_map(|p| scale.found(p.config, &p.outcome).map(|r| (r, p.config)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    // Folded from +0.0: `sum()` of nothing is -0.0, printed as `-0.0000`.
    let spent: f64 = trace
        .probes
        .iter()
        .map(|p| p.outcome.cost_paid())
        .fold(0.0, |a, b| a + b);
    if args.json {
        let probes: Vec<_> = trace
            .probes
            .iter()
            .zip(&curve)
            .map(|(p, b)| {
                json!({
                    "config": workload.space.config(p.config).name,
                    "status": p.outcome.status(),
                    "runtime_s": p.outcome.elapsed_s(),
                    "cost": p.outcome.cost_paid(),
                    "normalized_cost": p.outcome.cost_paid() / scale.optimum,
                    "best_normalized_cost": b,
                    "expected_improvement": p.expected_improvement,
                    "ms_ask": p.ms_ask,
                })
            })
            .collect();
        let out = json!({
            "format": "cherrypick.replay/1",
            "dataset": dataset.name,
            "workload": workload.name,
            "strategy": strategy,
            "seed": seed,
            "budget": args.budget,
            "max_runtime_s": args.max_runtime,
            "optimum_cost": scale.optimum,
            "probes": probes,
            "evaluations": trace.probes.len(),
            "termination": trace.termination.to_string(),
            "stop_fired_at": trace.stop_fired_at,
            "best": best.map(|(r, c)| json!({
                "config": workload.space.config(c).name,
                "normalized_cost": r,
                "optimum": is_optimum(r),
            })),
            "search_cost_normalized": spent / scale.optimum,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("\nended: {}", trace.termination);
    if let Some(at) = trace.stop_fired_at {
        println!("stop rule fired after {}", count(at, "probe"));
    }
    match best {
        Some((r, c)) => println!(
            "best: {} at {:.3}x the optimum{}",
            workload.space.describe(c),
            r,
            if is_optimum(best_ratio) {
                " (the optimum)"
            } else {
                ""
            }
        ),
        None => println!("best: nothing feasible found"),
    }
    println!(
        "evaluations: {}; search cost {} USD = {:.1}x the optimum's cost",
        trace.probes.len(),
        decimals(spent, 6),
        spent / scale.optimum
    );
    Ok(())
}

/// Stands in for the backend when a replayed strategy asks for a probe the journal does not
/// hold (its code changed since the search, or it is asked past the journal's end).
struct NotRecorded;

impl optimizer::Runner for NotRecorded {
    async fn run(&self, _: &Space, _: ConfigId, _: &ProbeLimits) -> Report {
        Report::new(Outcome::Failed {
            reason: "not in the journal".into(),
            elapsed_s: 0.0,
            cost_usd: 0.0,
        })
    }
}

/// `replay --journal`: drives the journal's strategy (same seed, same runtime limit) again on
/// the recorded outcomes with the search's progress display, so the expected improvement of each
/// probe is recomputed, and says where the strategy now chooses differently.
fn replay_journal(path: &Path, args: &Args) -> anyhow::Result<()> {
    let shown = path.display();
    let journal = Journal::read(path).map_err(bad_input)?;
    let header = &journal.header;
    let space = Arc::new(
        header
            .space
            .to_space()
            .map_err(|e| bad_input(anyhow::anyhow!("{shown}: the header's space: {e}")))?,
    );
    let recorded = journal
        .outcomes(&space)
        .map_err(|e| bad_input(anyhow::anyhow!("{shown}: {e}")))?;
    let strategy_name = args.strategy.clone().unwrap_or(header.strategy.clone());
    let seed = args.seed.unwrap_or(header.seed);
    let max_runtime_s = args.max_runtime.or(header
        .options
        .get("max_runtime_s")
        .and_then(serde_json::Value::as_f64));
    let mut strategy = build_strategy(
        &strategy_name,
        space.clone(),
        &StrategyOptions {
            seed,
            max_runtime_s,
        },
    )
    .map_err(|e| match &args.strategy {
        Some(_) => bad_input(e),
        // The name came from the journal: say where.
        None => bad_input(anyhow::Error::new(e).context(format!("{shown}: line 1 (header)"))),
    })?;
    let probes = recorded.len();
    if probes == 0 {
        println!(
            "{shown}: the journal holds no finished probe (the search was stopped before its \
             first one finished): nothing to replay"
        );
        return Ok(());
    }
    let spend: f64 = recorded
        .iter()
        .map(|(_, o)| o.spend_usd())
        .fold(0.0, |a, b| a + b);
    let abandoned = journal.abandoned_spend();
    let runner = Resume::new(NotRecorded, recorded);
    println!(
        "replaying {shown}: {} of a `{}` search (seed {}) over {} configurations, \
         driven again by `{strategy_name}` (seed {seed}); * = outcome from the journal\n",
        count(probes, "probe"),
        header.strategy,
        header.seed,
        space.len(),
    );
    let mut progress = Progress::new(space.clone(), max_runtime_s);
    // A search run with --no-stop went on past the stop rule: so does its replay.
    let journal_honours_stop = header
        .options
        .get("honour_stop")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true);
    // A search with several probes in flight is replayed with as many, each taking the time it
    // took then, so the strategy is asked with the same probes pending as in the search.
    let parallel = header
        .options
        .get("parallel")
        .and_then(serde_json::Value::as_u64)
        .map_or(1, |n| n.max(1));
    // No search runs more (a hand-edited header): refused before anything is sized by it.
    if parallel > launch::search::MAX_IN_FLIGHT as u64 {
        return Err(bad_input(anyhow::anyhow!(
            "{}: its header's `parallel` is {parallel}, more than a search runs at once (at most \
             {})",
            path.display(),
            launch::search::MAX_IN_FLIGHT
        )));
    }
    let parallel = parallel as usize;
    let clock = VirtualClock::new();
    let took: std::collections::HashMap<ConfigId, f64> = journal
        .records
        .iter()
        .filter_map(|r| {
            let id = space.find(&r.config)?;
            let span = parse_rfc3339(&r.finished)? - parse_rfc3339(&r.started)?;
            Some((id, span.max(0.0)))
        })
        .collect();
    // Each probe takes the wall time it took in the search, so probes in flight finish in the
    // order they did then.
    let runner = OnClock::new(runner, &clock, |c| took.get(&c).copied().unwrap_or(0.0));
    if parallel > 1 {
        println!("the search ran up to {parallel} probes at once: so does the replay, each probe taking the time it took then\n");
    }
    let options = DriveOptions {
        budget: Some(args.budget.map_or(probes, |b| b.min(probes))),
        honour_stop: journal_honours_stop && !args.ignore_stop,
        max_runtime_s,
        parallel,
        ..Default::default()
    };
    let result = block_on(drive(
        &space,
        strategy.as_mut(),
        &runner,
        &options,
        &mut [&mut progress],
    ));
    println!("\nended: {}", result.termination);
    print_best(&space, &result);
    if abandoned > 0.0 {
        println!(
            "the journal's {} cost ${spend:.6}, and the {} cancelled by a stop signal \
             ${abandoned:.6}: ${:.6} in all",
            count(probes, "probe"),
            journal.abandoned.len(),
            spend + abandoned
        );
    } else {
        println!(
            "the journal's {} cost ${spend:.6} in all",
            count(probes, "probe")
        );
    }
    let unused = runner.inner().unconsumed();
    let asked = probes - unused.min(probes);
    if let Some(b) = args.budget.filter(|&b| b < probes && asked >= b) {
        println!(
            "--budget {b} of the journal's {}: {unused} of the recorded probes were not asked \
             for",
            count(probes, "probe")
        );
    } else if unused > 0 {
        println!(
            "note: `{strategy_name}` (seed {seed}) did not ask for {unused} of the recorded probes: \
             it chooses differently from the search that wrote the journal"
        );
    } else {
        println!("`{strategy_name}` (seed {seed}) asked for exactly the recorded probes");
    }
    Ok(())
}
