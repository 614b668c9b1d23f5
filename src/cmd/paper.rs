//! `cherrypick paper`: the CherryPick paper's Table 1 from its own recorded runs, and with
//! `--compare` our `cherrypick` and `bo` strategies at their stop beside the published figures.

use std::path::PathBuf;

use experiments::{data_root, load, paper, run_compare, CompareOptions, DatasetSpec, LoadOptions};

use crate::exit::bad_input;

#[derive(clap::Args)]
pub struct Args {
    /// The folder holding the CP_<workload>.csv files (default: $CHERRYPICK_DATA_DIR/cherrypick).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the 16-core clusters the authors' experiments drop.
    #[arg(long)]
    pub keep_16_core: bool,
    /// Also replay the `cherrypick` and `bo` strategies (those available) and compare their
    /// figures at the stop rule with the paper's.
    #[arg(long)]
    pub compare: bool,
    /// Seeds per workload for --compare.
    #[arg(long, default_value_t = 50, requires = "compare")]
    pub seeds: u64,
    /// Evaluation budget for --compare.
    #[arg(long, default_value_t = 30, requires = "compare")]
    pub budget: usize,
    /// Strategies for --compare: `cherrypick`, `bo` or their variants (`bo:key=value`), whose
    /// stop rule the table sets beside the paper's (default: `cherrypick,bo`).
    #[arg(long, requires = "compare")]
    pub strategies: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| data_root().join("cherrypick"));
    let rows = paper::table1(&dir, args.keep_16_core).map_err(bad_input)?;
    // Everything --compare is given is checked before anything is printed.
    let compare = if args.compare {
        prepare_compare(&args, &dir)?
    } else {
        None
    };
    println!(
        "Table 1 of the CherryPick paper from its recorded runs in {}\n(cost = count x (vm_cost + disk_cost x disk_size / 720) / 3600 x time; {})\n",
        dir.display(),
        if args.keep_16_core {
            "16-core clusters kept"
        } else {
            "16-core clusters dropped, as the authors' experiments do"
        }
    );
    print!("{}", paper::table1_markdown(&rows));
    if !args.compare {
        return Ok(());
    }
    let Some((dataset, strategies)) = compare else {
        println!("\n(--compare replays `cherrypick` and `bo`, the strategies with a stop rule to set beside the paper's; this build has neither: nothing to compare)");
        return Ok(());
    };
    let selected: Vec<usize> = (0..dataset.workloads.len()).collect();
    let cmp = run_compare(
        &dataset,
        &selected,
        &CompareOptions {
            strategies,
            seeds: args.seeds,
            budget: args.budget,
            max_runtime_s: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            parallel: 1,
            launch_overhead_s: 0.0,
        },
    )
    .map_err(bad_input)?;
    let summary = cmp.summary();
    println!();
    print!("{}", paper::stop_comparison_markdown(&cmp, &summary));
    Ok(())
}

/// The dataset and the strategies `--compare` replays (only those with a stop rule to set
/// beside the paper's: `cherrypick` and `bo`), its numbers checked; `None` when neither
/// strategy is in this build or the list.
fn prepare_compare(
    args: &Args,
    dir: &std::path::Path,
) -> anyhow::Result<Option<(experiments::Dataset, Vec<String>)>> {
    let dataset = load(
        &DatasetSpec::Cherrypick,
        &LoadOptions {
            data_dir: Some(dir.to_path_buf()),
            failed_runtime_s: None,
            keep_16_core: args.keep_16_core,
        },
    )
    .map_err(bad_input)?;
    let space = &dataset.workloads[0].space;
    let listed = super::strategy_list("--strategies", args.strategies.as_deref(), space)?;
    let strategies: Vec<String> = match args.strategies {
        // Those given must each have a stop rule to compare.
        Some(_) => {
            if let Some(other) = listed
                .iter()
                .find(|s| !experiments::paper::has_stop_to_compare(s))
            {
                return Err(bad_input(anyhow::anyhow!(
                    "--strategies: `{other}` has no stop rule to set beside the paper's; \
                     --compare replays `cherrypick`, `bo` and their variants (`bo:key=value`)"
                )));
            }
            listed
        }
        // By default the two, those of them this build has.
        None => listed
            .into_iter()
            .filter(|s| s == "cherrypick" || s == "bo")
            .collect(),
    };
    if strategies.is_empty() {
        return Ok(None);
    }
    super::check_count("--seeds", args.seeds, 1, super::MAX_SEEDS)?;
    let largest = dataset
        .workloads
        .iter()
        .map(|w| w.space.len())
        .max()
        .unwrap_or(0);
    super::check_budget(args.budget, largest)?;
    Ok(Some((dataset, strategies)))
}
