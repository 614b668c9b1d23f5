//! `cherrypick demo`: the self-contained demonstration. Generates a small synthetic dataset into a
//! cache folder, runs a `bo` search with the local backend over the built-in catalogue
//! (examples/local-preprocess.toml), and reports the choice against what the search saw and
//! against grid search.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use launch::search::prepare_dataset;
use launch::session::{self, Settings};
use launch::spacefile::{self, BackendKind, GenerateSpec, LoadOptions};
use launch::LocalRunner;
use optimizer::journal::Journal;

use crate::exit::{self, bad_input};

/// The demo's catalogue: the documented example, embedded so the binary needs nothing else.
const SPACE: &str = include_str!("../../examples/local-preprocess.toml");

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the dataset, the journal and probe output (reused across runs).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Synthetic images to generate.
    #[arg(long, default_value_t = 300)]
    pub images: usize,
    /// Seed of the dataset and of the search.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Maximum number of probes.
    #[arg(long, default_value_t = 12)]
    pub budget: usize,
}

fn default_cache() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").into_os_string()))
    {
        Some(dir) => PathBuf::from(dir).join("cherrypick-demo"),
        None => std::env::temp_dir().join("cherrypick-demo"),
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.images < 5 {
        return Err(bad_input(anyhow::anyhow!(
            "--images must be at least 5 (one per flower class)"
        )));
    }
    if args.budget == 0 {
        return Err(bad_input(anyhow::anyhow!("--budget must be at least 1")));
    }
    let started = Instant::now();
    let cache = args.cache.clone().unwrap_or_else(default_cache);
    std::fs::create_dir_all(&cache)
        .map_err(|e| bad_input(anyhow::anyhow!("creating {}: {e}", cache.display())))?;
    // Absolute: the built-in space file's paths are resolved against its own folder
    // (`examples/`), and a relative cache would put the dataset there instead.
    let cache = std::path::absolute(&cache).unwrap_or(cache);
    let mut spec = spacefile::parse(
        SPACE,
        Path::new("examples/local-preprocess.toml (built in)"),
        &LoadOptions {
            backend: BackendKind::Local,
            prices: None,
        },
    )
    .map_err(|e| anyhow::anyhow!("the built-in catalogue: {e}"))?;
    let workload = spec
        .workload
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("the built-in catalogue has no [workload]"))?;
    workload.dataset = cache.join(format!("flowers-{}-seed{}", args.images, args.seed));
    workload.generate = Some(GenerateSpec {
        images: args.images,
        seed: args.seed,
    });
    let spec = Arc::new(spec);
    let journal = cache.join("demo.jsonl");
    // Each demo is a fresh search; only the dataset is reused. Under the journal's lock, so a
    // search (or another demo) still writing there is refused, not robbed of its file.
    // As a search starting a journal: the disk's failure is exit 1, anything else in the way
    // (a folder or device under the journal's name, another process holding it) the user's.
    optimizer::journal::JournalWriter::discard(&journal).map_err(|e| {
        let the_disk = e.is_disk_failure();
        let e = anyhow::Error::new(e)
            .context(format!("starting the demo afresh in {}", cache.display()));
        if the_disk {
            e
        } else {
            bad_input(e)
        }
    })?;
    let runner = LocalRunner::new(spec.clone(), cache.join("scratch"))
        .map_err(|e| anyhow::anyhow!("the built-in catalogue: {e}"))?;
    println!(
        "cherrypick demo: {} configurations (threads x resize filter x chroma subsampling), priced per vCPU of an e2-standard-2; cache {}",
        spec.space.len(),
        cache.display()
    );
    prepare_dataset(runner.dataset(), || runner.prepare())?;
    let settings = Settings {
        strategy: "bo".into(),
        seed: args.seed,
        budget: Some(args.budget),
        max_runtime_s: spec.max_runtime_s,
        max_spend_usd: None,
        probe_timeout: spec
            .max_runtime_s
            .map(|t| launch::limits::seconds("max_runtime_s", t))
            .transpose()
            .context("the built-in catalogue")?,
        probe_timeout_given: false,
        honour_stop: true,
        backend: BackendKind::Local,
        search_id: None,
        parallel: 1,
    };
    let ended = session::run(&spec, &settings, &journal, false, runner)?;
    exit::after_session(&ended)?;
    let result = ended.result;

    let Some(best) = result.best else {
        println!("no probe completed; nothing to choose");
        return Ok(());
    };
    let space = &spec.space;
    let outcomes = Journal::read(&journal)
        .map_err(anyhow::Error::new)
        .and_then(|j| j.outcomes(space).map_err(|e| anyhow::anyhow!(e)))?;
    let costs: Vec<f64> = outcomes
        .iter()
        .filter_map(|(_, o)| o.completed_cost())
        .collect();
    let dearest = costs.iter().copied().fold(f64::MIN, f64::max);
    let cheapest = costs.iter().copied().fold(f64::MAX, f64::min);
    let cost = best.outcome.cost_paid();
    println!("chosen: {}", space.config(best.config).name);
    println!(
        "  cost ${cost:.7} per run; cheapest the search saw ${cheapest:.7} ({:+.1}%), dearest ${dearest:.7} ({:.1}x the chosen)",
        // Never below the cheapest: a negative here is rounding of the journal's figures.
        (100.0 * (cost - cheapest) / cheapest).max(0.0),
        dearest / cost
    );
    // Grid search visits the catalogue in order, one probe per configuration: it reaches the
    // chosen configuration at its catalogue position, but has no model to tell it that nothing
    // later is cheaper, so it gives the same answer only after the whole catalogue.
    println!(
        "  probes: bo used {}; grid search (catalogue order) reaches this configuration at probe {} \
         and needs all {} to give it as its answer",
        result.evaluations,
        best.config + 1,
        space.len()
    );
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
