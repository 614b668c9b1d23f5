//! `cherrypick search`: a live configuration search. Parses the options and hands them to
//! `launch::search` (space file, backend, journal, progress, signals).

use std::path::PathBuf;

use launch::search::{DataprocArgs, Request};
use launch::BackendKind;

use crate::exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Search-space file (TOML; see examples/).
    #[arg(long)]
    pub space: PathBuf,
    /// Where probes run.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(BackendKind::ALL.map(BackendKind::name)))]
    pub backend: String,
    /// Journal of the search (JSON Lines); required unless --dry-run.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[arg(long, default_value = "bo", help = format!("Search strategy: {}", optimizer::STRATEGY_NAMES.join(", ")))]
    pub strategy: String,
    /// Maximum number of probes (journal probes included).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Runtime limit of the job in seconds (overrides the space file's max_runtime_s).
    #[arg(long)]
    pub max_runtime: Option<f64>,
    /// Never spend more than this many USD on probes (needs a probe time limit).
    #[arg(long)]
    pub max_spend: Option<f64>,
    /// Time limit of one probe in seconds (default: the runtime limit, if any).
    #[arg(long)]
    pub probe_timeout: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Continue the search recorded in --journal without re-running its probes.
    #[arg(long)]
    pub resume: bool,
    /// Print the catalogue, prices and the plan of a new search; run nothing (a journal is
    /// not read, so not with --resume).
    #[arg(long, conflicts_with = "resume")]
    pub dry_run: bool,
    /// Price file overriding the built-in Google Cloud prices.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Run every probe to the budget even when the strategy's stop rule fires.
    #[arg(long, visible_alias = "ignore-stop")]
    pub no_stop: bool,
    /// Probes in flight at once (local and spark: only when that many fit the machine's or the
    /// cluster's free cores): as soon as one finishes it is told and the next is asked; the
    /// journal then records launches too (format 1.1).
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// spark: keep each probe's output (the TFRecord shards) under the scratch folder beside the
    /// journal instead of deleting it after the probe.
    #[arg(long, help_heading = "Spark")]
    pub keep_output: bool,
    /// dataproc: Google Cloud project that owns the clusters.
    #[arg(long, help_heading = "Dataproc")]
    pub project: Option<String>,
    /// dataproc: region of the clusters (for example europe-west1).
    #[arg(long, help_heading = "Dataproc")]
    pub region: Option<String>,
    /// dataproc: zone of the clusters' VMs (default: Dataproc picks one in the region).
    #[arg(long, help_heading = "Dataproc")]
    pub zone: Option<String>,
    /// dataproc: bucket (gs://name) for the staged binary and driver, and probe outputs.
    #[arg(long, help_heading = "Dataproc")]
    pub bucket: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let backend = BackendKind::from_name(&args.backend)
        .ok_or_else(|| exit::bad_input(anyhow::anyhow!("unknown backend `{}`", args.backend)))?;
    let request = Request {
        space: args.space,
        backend,
        journal: args.journal,
        strategy: args.strategy,
        seed: args.seed,
        budget: args.budget,
        max_runtime_s: args.max_runtime,
        max_spend_usd: args.max_spend,
        probe_timeout_s: args.probe_timeout,
        resume: args.resume,
        dry_run: args.dry_run,
        prices: args.prices,
        no_stop: args.no_stop,
        parallel: args.parallel,
        keep_output: args.keep_output,
        dataproc: DataprocArgs {
            project: args.project,
            region: args.region,
            zone: args.zone,
            bucket: args.bucket,
        },
    };
    // Jobs in process groups of their own (command, spark-submit) must not outlive a search
    // killed outright: a guard process stops them then (see `launch::guard`).
    if matches!(backend, BackendKind::Command | BackendKind::Spark) && !request.dry_run {
        let started = std::env::current_exe().and_then(|exe| launch::guard::enable(&exe));
        if let Err(e) = started {
            launch::note!(
                "warning: no guard for the jobs ({e}): if this search is killed outright \
                 (SIGKILL), its running jobs are not stopped"
            );
        }
    }
    match launch::search::run(&request)? {
        Some(ended) => exit::after_session(&ended),
        // A dry run: the plan was printed.
        None => Ok(()),
    }
}
