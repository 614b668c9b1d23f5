//! `cherrypick replay`: one strategy on one recorded workload, probe by probe, through the same
//! driver as a live search.

use std::path::PathBuf;

use experiments::{
    load, metrics::is_optimum, replay_run, DatasetSpec, LoadOptions, RunOptions, Scale, Workload,
};
use optimizer::{ConfigId, Observer, Outcome, Proposal};
use serde_json::json;

use crate::exit::bad_input;

#[derive(clap::Args)]
pub struct Args {
    /// `scout`, `cherrypick`, or the path of a generic CSV v1 file.
    #[arg(long)]
    pub dataset: String,
    /// The dataset's own folder (default: $CHERRYPICK_DATA_DIR/<dataset>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Workload name (for example spark_lr_huge).
    #[arg(long)]
    pub workload: String,
    #[arg(long, default_value = "bo")]
    pub strategy: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Maximum number of probes (default: until the stop rule or the end of the catalogue).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Runtime limit in seconds: the best configuration must meet it.
    #[arg(long)]
    pub max_runtime: Option<f64>,
    /// Keep going past the strategy's stop rule (to the budget); reports where it fired.
    #[arg(long)]
    pub ignore_stop: bool,
    /// Generic CSV: seconds a failed run is charged (default: the workload's largest runtime).
    #[arg(long)]
    pub failed_runtime: Option<f64>,
    /// Print a machine-readable result instead of the probe table.
    #[arg(long)]
    pub json: bool,
}

/// Prints each probe as it is told.
struct Printer<'a> {
    workload: &'a Workload,
    scale: &'a Scale,
    best: f64,
    ei: Option<f64>,
}

impl Observer for Printer<'_> {
    fn on_launch(&mut self, _index: usize, proposal: &Proposal) {
        self.ei = proposal.expected_improvement;
    }
    fn on_outcome(&mut self, index: usize, config: ConfigId, outcome: &Outcome) {
        if let Some(r) = self.scale.found(config, outcome) {
            self.best = self.best.min(r);
        }
        let cost = outcome.cost_paid();
        println!(
            "{:>4}  {:<22} {:<10} {:>9.1} {:>10.4} {:>8.3} {:>8.3} {:>8}",
            index + 1,
            self.workload.space.config(config).name,
            outcome.status(),
            outcome.elapsed_s(),
            cost,
            cost / self.scale.optimum,
            self.best,
            self.ei.map_or("-".into(), |e| format!("{:.2}%", e * 100.0)),
        );
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = DatasetSpec::parse(&args.dataset).map_err(bad_input)?;
    let dataset = load(
        &spec,
        &LoadOptions {
            data_dir: args.data_dir.clone(),
            failed_runtime_s: args.failed_runtime,
            keep_16_core: false,
        },
    )
    .map_err(bad_input)?;
    let w = dataset.workload_index(&args.workload).map_err(bad_input)?;
    let workload = &dataset.workloads[w];
    let scale = workload.scale(args.max_runtime).map_err(bad_input)?;
    let options = RunOptions {
        budget: args.budget,
        max_runtime_s: args.max_runtime,
        honour_stop: !args.ignore_stop,
    };
    let mut printer = Printer {
        workload,
        scale: &scale,
        best: scale.worst_ratio(),
        ei: None,
    };
    if !args.json {
        println!(
            "replaying `{}` on {} / {} (seed {}, {} configurations, optimum {:.4} USD)\n",
            args.strategy,
            dataset.name,
            workload.name,
            args.seed,
            workload.space.len(),
            scale.optimum
        );
        println!(
            "{:>4}  {:<22} {:<10} {:>9} {:>10} {:>8} {:>8} {:>8}",
            "#", "config", "status", "runtime_s", "cost_usd", "cost/opt", "best", "EI"
        );
    }
    let trace = if args.json {
        replay_run(workload, &args.strategy, args.seed, &options, &mut [])
    } else {
        replay_run(
            workload,
            &args.strategy,
            args.seed,
            &options,
            &mut [&mut printer],
        )
    }
    .map_err(bad_input)?;
    let curve = experiments::metrics::best_curve(&trace.probes, &scale);
    let best_ratio = curve.last().copied().unwrap_or(scale.worst_ratio());
    let best = trace
        .probes
        .iter()
        .filter_map(|p| scale.found(p.config, &p.outcome).map(|r| (r, p.config)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let spent: f64 = trace.probes.iter().map(|p| p.outcome.cost_paid()).sum();
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
            "strategy": args.strategy,
            "seed": args.seed,
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
        println!("stop rule fired after {at} probes");
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
        "evaluations: {}; search cost {:.4} USD = {:.1}x the optimum's cost",
        trace.probes.len(),
        spent,
        spent / scale.optimum
    );
    Ok(())
}
