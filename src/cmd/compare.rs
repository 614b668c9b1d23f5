//! `cherrypick compare`: replays strategies over many seeds on recorded runs and writes
//! summary.json, summary.md, traces.csv and PNG plots (DESIGN 5).

use std::path::PathBuf;

use experiments::{
    load, paper, plot, report, run_compare, CompareOptions, DatasetSpec, LoadOptions,
};

use crate::exit::bad_input;

#[derive(clap::Args)]
pub struct Args {
    /// `scout`, `cherrypick`, or the path of a generic CSV v1 file.
    #[arg(long)]
    pub dataset: String,
    /// The dataset's own folder (default: $CHERRYPICK_DATA_DIR/<dataset>).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `all` or a comma-separated list of workload names.
    #[arg(long, default_value = "all")]
    pub workloads: String,
    /// Comma-separated strategies. By default every strategy the optimiser provides; a strategy
    /// named explicitly that does not exist is an error.
    #[arg(long)]
    pub strategies: Option<String>,
    /// Seeds 1..=N per (workload, strategy).
    #[arg(long, default_value_t = 50)]
    pub seeds: u64,
    /// Evaluations per replay (1 up to the largest selected catalogue's size).
    #[arg(long, default_value_t = 30)]
    pub budget: usize,
    /// Runtime limit in seconds: the optimum is the cheapest configuration meeting it.
    #[arg(long)]
    pub max_runtime: Option<f64>,
    /// Output folder.
    #[arg(long, default_value = "out/compare")]
    pub out: PathBuf,
    /// Generic CSV: seconds a failed run is charged (default: the workload's largest runtime).
    #[arg(long)]
    pub failed_runtime: Option<f64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Probes in flight at once in every replay; outcomes arrive in the order a simulated clock
    /// gives (recorded runtime plus --launch-overhead per probe).
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Simulated seconds every probe spends besides its recorded runtime (cluster creation and
    /// deletion, submission), for the wall-time figures.
    #[arg(long, default_value_t = 0.0)]
    pub launch_overhead: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = DatasetSpec::parse(&args.dataset).map_err(bad_input)?;
    let load_options = LoadOptions {
        data_dir: args.data_dir.clone(),
        failed_runtime_s: args.failed_runtime,
        keep_16_core: false,
    };
    let dataset = load(&spec, &load_options).map_err(bad_input)?;
    let selected = dataset.select(&args.workloads).map_err(bad_input)?;
    crate::cmd::replay::check_numbers(Some(args.budget), args.max_runtime, args.failed_runtime)?;
    super::check_count("--seeds", args.seeds, 1, super::MAX_SEEDS)?;
    super::check_out_folder(&args.out)?;
    super::check_count(
        "--parallel",
        args.parallel as u64,
        1,
        launch::search::MAX_IN_FLIGHT as u64,
    )?;
    if let Some(jobs) = args.jobs {
        super::check_count("--jobs", jobs as u64, 1, super::MAX_THREADS)?;
    }
    if !(args.launch_overhead.is_finite() && (0.0..=86_400.0).contains(&args.launch_overhead)) {
        return Err(bad_input(anyhow::anyhow!(
            "--launch-overhead must be between 0 and 86400 seconds, got {}",
            optimizer::Shown(args.launch_overhead)
        )));
    }
    let largest = selected
        .iter()
        .map(|&w| dataset.workloads[w].space.len())
        .max()
        .unwrap_or(0);
    super::check_budget(args.budget, largest)?;
    let strategies = super::strategy_list(
        "--strategies",
        args.strategies.as_deref(),
        &dataset.workloads[selected[0]].space,
    )?;
    let _out = super::make_out_folder(
        &args.out,
        &[spec.source(&load_options)],
        &["summary.json", "summary.md", "traces.csv"],
    )?;
    let options = CompareOptions {
        strategies,
        seeds: args.seeds,
        budget: args.budget,
        max_runtime_s: args.max_runtime,
        parallel: args.parallel,
        launch_overhead_s: args.launch_overhead,
        threads: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    eprintln!(
        "comparing {} on {} workload(s) of {} x {} seeds, budget {}",
        options.strategies.join(", "),
        selected.len(),
        dataset.name,
        options.seeds,
        options.budget
    );
    let cmp = run_compare(&dataset, &selected, &options).map_err(bad_input)?;
    let summary = cmp.summary();

    // Read before this summary replaces an earlier one.
    let earlier = plot::earlier_plots(&args.out);
    let json = serde_json::to_string_pretty(&summary)?;
    report::write_text(&args.out.join("summary.json"), &json)?;
    let mut md = report::summary_markdown(&cmp, &summary);
    if spec == DatasetSpec::Cherrypick {
        md.push_str(&paper::stop_comparison_markdown(&cmp, &summary));
    }
    report::write_text(&args.out.join("summary.md"), &md)?;
    let names: Vec<Vec<String>> = selected
        .iter()
        .map(|&w| {
            dataset.workloads[w]
                .space
                .configs()
                .iter()
                .map(|c| c.name.clone())
                .collect()
        })
        .collect();
    report::write_traces(&cmp, &names, &args.out.join("traces.csv"))?;
    let (plots, warning) =
        plot::write_plots(&cmp, &summary, &args.out, &earlier).map_err(anyhow::Error::msg)?;
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }

    println!(
        "{} runs in {:.1} s ({} workloads x {} strategies x {} seeds)\n",
        cmp.runs.len(),
        cmp.wall_s,
        cmp.workloads.len(),
        cmp.strategies.len(),
        cmp.seeds
    );
    println!("aggregate (median / p90 normalised cost and P(optimum) after k evaluations):");
    print!("{}", report::aggregate_text(&cmp, &summary));
    println!(
        "\nwrote {0}/summary.json, {0}/summary.md, {0}/traces.csv and {1} plots",
        args.out.display(),
        plots.len()
    );
    Ok(())
}
