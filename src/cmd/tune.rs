//! `cherrypick tune`: chooses a strategy's settings by cross-validation over workloads and
//! datasets, and reports only held-out figures for the choice (every setting is chosen on folds
//! that do not contain the workload it is reported on).

use std::path::PathBuf;

use experiments::tune::{tune, Folds, TuneOptions, SELECTED};
use experiments::{load, report, DatasetSpec, LoadOptions};

use crate::exit::bad_input;

/// The settings `bo`'s defaults were chosen among (keys in
/// `optimizer::strategies::ModelSettings::set`): an earlier default (`design=model`), variants
/// of it, and `bo` with and without its PI switch and with the switch reading the fitted point
/// (`explore-model=point`) or the hyper-parameter samples, all fitted by likelihood alone
/// (`prior=none`); the same under optuna's priors; and `bo` itself, under those priors with
/// its inputs warped, the one chosen on all shared workloads (50 seeds); and that with its
/// stop samples drawn from the whole posterior, the warping's included, so the exploring
/// switch reads them too (`stop-warp=whole`); and `bo` with 3 (CherryPick's number) or 6
/// initial Sobol points instead of 4, so the number of starts is chosen held out like every
/// other setting. The twelve settings of the earlier rounds, respelled relative to today's `bo`
/// (`warp=off`), the thirteenth that won, the fourteenth, and the two numbers of starts.
pub const DEFAULT_CANDIDATES: &str = "bo:warp=off:prior=none:design=model:explore-model=point,bo:warp=off:prior=none:explore=none,bo:warp=off:prior=none:design=model:features=log:explore-model=point,bo:warp=off:prior=none:design=model:samples=8,bo:warp=off:prior=none:design=model:features=log:samples=8,bo:warp=off:prior=none:design=model:noise=0.02:explore-model=point,bo:warp=off:prior=none:explore-model=point,bo:warp=off:prior=none:noise=0.02:explore-model=point,bo:warp=off:prior=none:design=model:failed=worst:explore-model=point,bo:warp=off:prior=none:design=model:explore=none,bo:warp=off:prior=none,bo:warp=off,bo,bo:stop-warp=whole,bo:initial=3,bo:initial=6";

#[derive(clap::Args)]
pub struct Args {
    /// A dataset: `scout`, `cherrypick` or a generic CSV v1 path; repeat for several. Each is
    /// read from $CHERRYPICK_DATA_DIR/<name> (CSV files from their path).
    #[arg(long = "dataset", required = true)]
    pub datasets: Vec<String>,
    /// Comma-separated candidate settings (strategy names with `:key=value` options).
    #[arg(long, default_value = DEFAULT_CANDIDATES)]
    pub candidates: String,
    /// Comma-separated strategies reported beside the chosen settings on the same workloads
    /// (`""` for none).
    #[arg(long, default_value = "cherrypick,random")]
    pub baselines: String,
    /// Number of folds over all workloads, or `datasets` for leave-one-dataset-out (default:
    /// 6, or one per workload when the datasets hold fewer).
    #[arg(long)]
    pub folds: Option<String>,
    /// Seeds 1..=N per (workload, strategy).
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// Evaluations per replay.
    #[arg(long, default_value_t = 30)]
    pub budget: usize,
    /// Output folder for summary.json and summary.md.
    #[arg(long, default_value = "out/tune")]
    pub out: PathBuf,
    /// Generic CSV: seconds a failed run is charged (default: the workload's largest runtime).
    #[arg(long)]
    pub failed_runtime: Option<f64>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Folds when `--folds` is not given (fewer when the datasets hold fewer workloads).
const DEFAULT_FOLDS: &str = "6";

pub fn run(args: Args) -> anyhow::Result<()> {
    let folds = match args.folds.as_deref().unwrap_or(DEFAULT_FOLDS) {
        "datasets" => Folds::Datasets,
        k => match k.parse::<usize>() {
            Ok(k) if k >= 2 => Folds::K(k),
            _ => {
                return Err(bad_input(anyhow::anyhow!(
                    "--folds takes a number of folds (2 or more) or `datasets`, got `{k}`"
                )))
            }
        },
    };
    super::check_count("--seeds", args.seeds, 1, super::MAX_SEEDS)?;
    super::check_out_folder(&args.out)?;
    if let Some(jobs) = args.jobs {
        super::check_count("--jobs", jobs as u64, 1, super::MAX_THREADS)?;
    }
    let load_options = LoadOptions {
        data_dir: None,
        failed_runtime_s: args.failed_runtime,
        keep_16_core: false,
    };
    let mut datasets = Vec::new();
    let mut sources: Vec<std::path::PathBuf> = Vec::new();
    for d in &args.datasets {
        let spec = DatasetSpec::parse(d).map_err(bad_input)?;
        let source = spec.source(&load_options);
        // The same file under two spellings (`a.csv`, `./a.csv`, a link) is the same dataset.
        let same = |s: &std::path::PathBuf| {
            s == &source
                || matches!((s.canonicalize(), source.canonicalize()), (Ok(a), Ok(b)) if a == b)
        };
        if sources.iter().any(same) {
            return Err(bad_input(anyhow::anyhow!(
                "dataset `{d}` is given twice: its workloads would be chosen on and reported on at once"
            )));
        }
        datasets.push(load(&spec, &load_options).map_err(bad_input)?);
        sources.push(source);
    }
    if matches!(folds, Folds::Datasets) && datasets.len() < 2 {
        return Err(bad_input(anyhow::anyhow!(
            "--folds datasets holds out one dataset at a time, so it needs at least two --dataset"
        )));
    }
    let Some(first) = datasets.iter().find_map(|d| d.workloads.first()) else {
        return Err(bad_input(anyhow::anyhow!("the datasets hold no workload")));
    };
    let largest = datasets
        .iter()
        .flat_map(|d| d.workloads.iter().map(|w| w.space.len()))
        .max()
        .unwrap_or(0);
    super::check_budget(args.budget, largest)?;
    let workloads: usize = datasets.iter().map(|d| d.workloads.len()).sum();
    let folds = match folds {
        // The default shrinks to the data; a number the user gave is kept or refused.
        Folds::K(k) if args.folds.is_none() && k > workloads && workloads >= 2 => {
            eprintln!("{workloads} folds: one per workload (the datasets hold {workloads})");
            Folds::K(workloads)
        }
        other => other,
    };
    if let Folds::K(k) = folds {
        if workloads < 2 {
            return Err(bad_input(anyhow::anyhow!(
                "tune holds workloads out, so it needs at least two: the datasets hold {}",
                launch::progress::count(workloads, "workload")
            )));
        }
        if k > workloads {
            return Err(bad_input(anyhow::anyhow!(
                "--folds {k}: the datasets hold {workloads} workloads, so at most {workloads} folds"
            )));
        }
    }
    let space = &first.space;
    let candidates = super::strategy_list("--candidates", Some(&args.candidates), space)?;
    let baselines = if args.baselines.trim().is_empty() {
        Vec::new()
    } else {
        super::strategy_list("--baselines", Some(&args.baselines), space)?
    };
    let _out = super::make_out_folder(&args.out, &sources, &["summary.json", "summary.md"])?;
    let options = TuneOptions {
        candidates,
        baselines,
        folds,
        seeds: args.seeds,
        budget: args.budget,
        threads: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    eprintln!(
        "tuning among {} candidates on {} ({} seeds, budget {})",
        options.candidates.len(),
        args.datasets.join(", "),
        options.seeds,
        options.budget
    );
    let summary = tune(&datasets, &options).map_err(bad_input)?;
    report::write_text(
        &args.out.join("summary.json"),
        &serde_json::to_string_pretty(&summary)?,
    )?;
    let md = summary.markdown();
    report::write_text(&args.out.join("summary.md"), &md)?;
    println!("held out ({}):", experiments::tune::ROW_LEGEND);
    print!("{}", experiments::tune::table(&summary.held_out));
    if summary.held_out_by_dataset.len() > 1 {
        for (dataset, rows) in &summary.held_out_by_dataset {
            println!("held out, {dataset} only:");
            print!("{}", experiments::tune::table(rows));
        }
    }
    let lead = |l: &Option<experiments::tune::Lead>| {
        l.as_ref()
            .map_or(String::new(), |l| format!(" ({})", l.describe()))
    };
    for f in &summary.folds {
        println!(
            "fold {}: chose `{}`{} for {}",
            f.fold,
            f.chosen,
            lead(&f.lead),
            f.held_out.join(", ")
        );
    }
    let flagged: Vec<String> = summary
        .workloads
        .iter()
        .filter(|w| !w.worse_than.is_empty())
        .map(|w| format!("{} ({})", w.workload, w.worse_than.join(", ")))
        .collect();
    println!(
        "`{SELECTED}` worse than a baseline on: {}",
        if flagged.is_empty() {
            "none".to_string()
        } else {
            flagged.join("; ")
        }
    );
    println!(
        "chosen on all workloads: `{}`{}",
        summary.chosen_on_all,
        lead(&summary.lead_on_all)
    );
    println!(
        "wrote {0}/summary.json and {0}/summary.md",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_CANDIDATES;
    use optimizer::strategies::ModelSettings;

    #[test]
    fn every_default_candidate_is_a_distinct_setting_of_bo_and_bo_itself_is_one() {
        let names: Vec<&str> = DEFAULT_CANDIDATES.split(',').collect();
        let settings: Vec<ModelSettings> = names
            .iter()
            .map(|n| match ModelSettings::parse(n) {
                Some(Ok(s)) => s,
                other => panic!("candidate `{n}` does not parse: {other:?}"),
            })
            .collect();
        assert!(names.contains(&"bo"));
        for (i, a) in settings.iter().enumerate() {
            for b in &settings[..i] {
                // Same settings under two spellings would only split the choice's votes.
                let (mut a, mut b) = (a.clone(), b.clone());
                a.name.clear();
                b.name.clear();
                assert_ne!(a, b, "two candidates are the same setting");
            }
        }
        let starts: Vec<usize> = settings.iter().map(|s| s.initial).collect();
        assert!(starts.contains(&3) && starts.contains(&4) && starts.contains(&6));
    }
}
