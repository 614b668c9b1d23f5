//! `cherrypick search`: a live configuration search. Loads a space file, drives a strategy with a
//! backend through `optimizer::drive`, shows progress, journals every finished probe, resumes a
//! journal, honours Ctrl-C and the spend limit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use optimizer::journal::{Header, Journal, JournalError, JournalObserver, JournalWriter, Resume};
use optimizer::{
    build_strategy, drive, ConfigId, DriveOptions, Observer, Outcome, ProbeLimits, Proposal,
    SearchResult, Space, StrategyOptions, Termination,
};
use workload::launch::dataproc::{Credentials, DataprocOptions, DataprocRunner};
use workload::launch::spacefile::{self, BackendKind, LoadOptions, SearchSpec};
use workload::launch::spark::{SparkOptions, SparkRunner};
use workload::launch::{CommandRunner, LocalRunner};

use crate::exit::{bad_input, Interrupted};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    Local,
    Command,
    Spark,
    Dataproc,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Search-space file (TOML; see examples/).
    #[arg(long)]
    pub space: PathBuf,
    /// Where probes run.
    #[arg(long, value_enum)]
    pub backend: Backend,
    /// Journal of the search (JSON Lines); required unless --dry-run.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Search strategy: bo, cherrypick, grid, random or coordinate.
    #[arg(long, default_value = "bo")]
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
    /// Print the catalogue, prices and the plan; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Price file overriding the built-in Google Cloud prices.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Run every probe to the budget even when the strategy's stop rule fires.
    #[arg(long)]
    pub no_stop: bool,
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
    let kind = match args.backend {
        Backend::Local => BackendKind::Local,
        Backend::Command => BackendKind::Command,
        Backend::Spark => BackendKind::Spark,
        Backend::Dataproc => BackendKind::Dataproc,
    };
    let spec = spacefile::load(
        &args.space,
        &LoadOptions {
            backend: kind,
            prices: args.prices.clone(),
        },
    )
    .map_err(bad_input)?;
    let spec = Arc::new(spec);
    let settings = Settings::from_args(&args, &spec)?;
    match kind {
        BackendKind::Command => {
            let runner =
                CommandRunner::new(spec.clone()).map_err(|e| bad_input(anyhow::anyhow!(e)))?;
            if args.dry_run {
                return dry_run(&spec, &settings, &runner, |id| {
                    runner.render(id).unwrap_or_default()
                });
            }
            let journal = journal_arg(&args)?;
            let logs = runner.log_slot();
            search(&spec, &settings, &journal, args.resume, runner, Some(logs)).map(|_| ())
        }
        BackendKind::Local => {
            // Probe output goes beside the journal unless the space file names a folder.
            let runner = LocalRunner::new(spec.clone(), scratch_dir(args.journal.as_deref()))
                .map_err(|e| bad_input(anyhow::anyhow!(e)))?;
            if args.dry_run {
                return dry_run(&spec, &settings, &runner, |id| describe_plan(&runner, id));
            }
            let journal = journal_arg(&args)?;
            prepare_dataset(&runner)?;
            search(&spec, &settings, &journal, args.resume, runner, None).map(|_| ())
        }
        BackendKind::Spark => {
            let mut options = SparkOptions::from_env(scratch_dir(args.journal.as_deref()))
                .map_err(|e| bad_input(anyhow::anyhow!(e)))?;
            options.keep_output = args.keep_output;
            let runner = SparkRunner::new(spec.clone(), options)
                .map_err(|e| bad_input(anyhow::anyhow!(e)))?;
            if args.dry_run {
                let out = std::path::Path::new("<scratch>/probe");
                return dry_run(&spec, &settings, &runner, |id| {
                    match runner.command(id, out) {
                        Ok(c) => c.join(" "),
                        Err(e) => format!("error: {e}"),
                    }
                });
            }
            let journal = journal_arg(&args)?;
            let logs = runner.log_slot();
            search(&spec, &settings, &journal, args.resume, runner, Some(logs)).map(|_| ())
        }
        BackendKind::Dataproc => run_dataproc(&args, spec, settings),
    }
}

/// The dataproc backend: clusters are labelled with a search id kept in the journal's header,
/// so `--resume` can delete clusters that a killed run left behind before it goes on.
fn run_dataproc(args: &Args, spec: Arc<SearchSpec>, mut settings: Settings) -> anyhow::Result<()> {
    let need = |flag: &str, v: &Option<String>| -> anyhow::Result<String> {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad_input(anyhow::anyhow!("--backend dataproc needs --{flag}")))
    };
    let mut options = DataprocOptions::new(
        &need("project", &args.project)?,
        &need("region", &args.region)?,
        &need("bucket", &args.bucket)?,
    );
    options.zone = args.zone.clone();
    options.dry_run = args.dry_run;
    // Other API roots (a private endpoint, or a local fake of the API for testing).
    if let Some(base) = std::env::var("CHERRYPICK_DATAPROC_API")
        .ok()
        .filter(|v| !v.is_empty())
    {
        options.api_base = base;
    }
    if let Some(base) = std::env::var("CHERRYPICK_STORAGE_API")
        .ok()
        .filter(|v| !v.is_empty())
    {
        options.storage_base = base;
    }
    if let Some(s) = std::env::var("CHERRYPICK_DATAPROC_POLL_S")
        .ok()
        .filter(|v| !v.is_empty())
    {
        options.poll_interval = s
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "CHERRYPICK_DATAPROC_POLL_S must be a positive number of seconds, got `{s}`"
                ))
            })?;
    }
    if let Some(binary) = std::env::var_os("CHERRYPICK_BINARY") {
        options.binary = PathBuf::from(binary);
    }
    let recorded_id = match (&args.journal, args.resume) {
        (Some(j), true) => Journal::read(j).ok().and_then(|j| {
            j.header
                .options
                .get("search_id")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        }),
        _ => None,
    };
    if let Some(id) = recorded_id {
        options.search_id = id;
    }
    settings.search_id = Some(options.search_id.clone());
    let credentials = if args.dry_run {
        // Nothing is sent, so no credential is looked up.
        Credentials::Token(String::new())
    } else {
        Credentials::application_default().map_err(|e| bad_input(anyhow::anyhow!(e)))?
    };
    let runner = DataprocRunner::new(spec.clone(), options, credentials)
        .map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    if args.dry_run {
        let limits = ProbeLimits {
            timeout: settings.probe_timeout,
            interrupt: None,
        };
        // The table's price is the workers' (the model's unit); a cluster also bills its master
        // and disks, which is what the worst case and the journal's spend count.
        dry_run(&spec, &settings, &runner, |id| {
            match runner.cluster_price(id) {
                Ok(p) => format!("cluster {:.4} USD/hour with master and disks", p.per_hour()),
                Err(e) => format!("error: {e}"),
            }
        })?;
        // Every probe sends the same requests with its own machine type and worker count.
        match runner.dry_run_report(0, &limits) {
            Ok(report) => print!("{report}"),
            Err(e) => println!("# configuration {}: error: {e}", spec.space.config(0).name),
        }
        return Ok(());
    }
    let journal = journal_arg(args)?;
    if args.resume {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let deleted = rt
            .block_on(runner.delete_leftovers())
            .map_err(|e| anyhow::anyhow!("deleting clusters left by the earlier run: {e}"))?;
        for name in &deleted {
            println!("deleted cluster {name}, left running by the earlier run of this search");
        }
    }
    let logs = runner.log_slot();
    search(&spec, &settings, &journal, args.resume, runner, Some(logs)).map(|_| ())
}

fn journal_arg(args: &Args) -> anyhow::Result<PathBuf> {
    args.journal.clone().ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "--journal FILE is required (or use --dry-run)"
        ))
    })
}

/// `runs.jsonl` -> `runs.scratch/`.
pub fn scratch_beside(journal: &std::path::Path) -> PathBuf {
    journal.with_extension("scratch")
}

/// Where probes write: beside the journal, or (a dry run, which has none) a temporary folder.
fn scratch_dir(journal: Option<&std::path::Path>) -> PathBuf {
    journal.map_or_else(
        || std::env::temp_dir().join("cherrypick-dry-run"),
        scratch_beside,
    )
}

/// Generates the space file's synthetic dataset if it is not there yet, saying so.
pub fn prepare_dataset(runner: &LocalRunner) -> anyhow::Result<()> {
    let started = Instant::now();
    let made = runner
        .prepare()
        .map_err(|e| bad_input(anyhow::anyhow!(e)))?;
    if made > 0 {
        println!(
            "generated {made} synthetic images in {} ({:.1} s)",
            runner.dataset().display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// One line saying what the local backend runs for configuration `id`.
fn describe_plan(runner: &LocalRunner, id: ConfigId) -> String {
    match runner.plan(id, std::path::Path::new("<scratch>")) {
        Err(e) => format!("error: {e}"),
        Ok(plan) => {
            let mut parts = Vec::new();
            if let Some(p) = &plan.preprocess {
                parts.push(format!(
                    "preprocess threads={} shards={} size={} quality={}",
                    p.threads, p.shards, p.transform.size, p.transform.quality
                ));
            }
            if let Some(r) = &plan.read_speed {
                parts.push(format!(
                    "read-speed {} batch={}x{} parallel={}",
                    r.source, r.batch_sizes[0], r.batch_numbers[0], r.parallel
                ));
            }
            parts.join("; ")
        }
    }
}

/// Resolved settings of a search.
pub struct Settings {
    pub strategy: String,
    pub seed: u64,
    pub budget: Option<usize>,
    pub max_runtime_s: Option<f64>,
    pub max_spend_usd: Option<f64>,
    pub probe_timeout: Option<Duration>,
    pub honour_stop: bool,
    pub backend: &'static str,
    /// dataproc: the label value shared by this search's clusters.
    pub search_id: Option<String>,
}

impl Settings {
    fn from_args(args: &Args, spec: &SearchSpec) -> anyhow::Result<Settings> {
        let positive = |name: &str, v: Option<f64>| -> anyhow::Result<Option<f64>> {
            match v {
                Some(x) if !(x.is_finite() && x > 0.0) => Err(bad_input(anyhow::anyhow!(
                    "--{name} must be a positive number, got {x}"
                ))),
                other => Ok(other),
            }
        };
        let max_runtime_s = positive("max-runtime", args.max_runtime)?.or(spec.max_runtime_s);
        let probe_timeout = positive("probe-timeout", args.probe_timeout)?.or(max_runtime_s);
        let max_spend_usd = positive("max-spend", args.max_spend)?;
        if max_spend_usd.is_some() && probe_timeout.is_none() {
            return Err(bad_input(anyhow::anyhow!(
                "--max-spend needs a probe time limit (--probe-timeout or a runtime limit): \
                 without one a probe's worst-case cost is unbounded"
            )));
        }
        if args.budget == Some(0) {
            return Err(bad_input(anyhow::anyhow!("--budget must be at least 1")));
        }
        Ok(Settings {
            strategy: args.strategy.clone(),
            seed: args.seed,
            budget: args.budget,
            max_runtime_s,
            max_spend_usd,
            probe_timeout: probe_timeout.map(Duration::from_secs_f64),
            honour_stop: !args.no_stop,
            backend: match args.backend {
                Backend::Local => "local",
                Backend::Command => "command",
                Backend::Spark => "spark",
                Backend::Dataproc => "dataproc",
            },
            search_id: None,
        })
    }

    fn options_json(&self, spec: &SearchSpec) -> serde_json::Value {
        let mut options = serde_json::json!({
            "backend": self.backend,
            "objective": spec.objective,
            "space_file": spec.path.display().to_string(),
            "budget": self.budget,
            "max_runtime_s": self.max_runtime_s,
            "max_spend_usd": self.max_spend_usd,
            "probe_timeout_s": self.probe_timeout.map(|d| d.as_secs_f64()),
            "honour_stop": self.honour_stop,
        });
        if let Some(id) = &self.search_id {
            options["search_id"] = id.clone().into();
        }
        options
    }
}

fn dry_run(
    spec: &SearchSpec,
    settings: &Settings,
    runner: &impl optimizer::Runner,
    command_of: impl Fn(ConfigId) -> String,
) -> anyhow::Result<()> {
    let space = &spec.space;
    println!(
        "{}: {} configurations, objective {:?}, backend {}",
        spec.path.display(),
        space.len(),
        spec.objective,
        settings.backend
    );
    println!("{:<48} {:>12}  command", "configuration", "USD/hour");
    for id in 0..space.len() {
        println!(
            "{:<48} {:>12.6}  {}",
            space.config(id).name,
            spec.configs[id].price_per_hour,
            command_of(id)
        );
    }
    let n = settings.budget.unwrap_or(space.len()).min(space.len());
    match settings.probe_timeout {
        Some(t) => {
            let limits = ProbeLimits {
                timeout: Some(t),
                interrupt: None,
            };
            // The n dearest probes, each at its worst.
            let mut worst: Vec<f64> = (0..space.len())
                .map(|id| runner.worst_case_usd(space, id, &limits))
                .collect();
            worst.sort_by(|a, b| b.total_cmp(a));
            let worst: f64 = worst.iter().take(n).sum();
            println!(
                "plan: strategy {} (seed {}), up to {n} probes of at most {:.0} s: worst case ${worst:.4}{}",
                settings.strategy,
                settings.seed,
                t.as_secs_f64(),
                settings
                    .max_spend_usd
                    .map(|m| format!(", capped by --max-spend ${m:.4}"))
                    .unwrap_or_default()
            );
        }
        None => println!(
            "plan: strategy {} (seed {}), up to {n} probes without a time limit",
            settings.strategy, settings.seed
        ),
    }
    println!("dry run: nothing was launched");
    Ok(())
}

/// Runs (or resumes) a journaled search with `runner`; shared by `search` and `demo`.
pub fn search<R: optimizer::Runner + Sync>(
    spec: &SearchSpec,
    settings: &Settings,
    journal_path: &std::path::Path,
    resume: bool,
    runner: R,
    logs: Option<optimizer::journal::ProbeLogSlot>,
) -> anyhow::Result<SearchResult> {
    let space = Arc::new(spec.space.clone());
    let strategy_options = StrategyOptions {
        seed: settings.seed,
        max_runtime_s: settings.max_runtime_s,
    };
    let mut strategy =
        build_strategy(&settings.strategy, space.clone(), &strategy_options).map_err(bad_input)?;

    // Open the journal: resume it, or create it.
    let existing = if resume {
        match Journal::read(journal_path) {
            Ok(j) => Some(j),
            Err(JournalError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                None
            }
            // Killed before the header reached the disk: nothing to resume.
            Err(JournalError::Empty { .. }) => {
                std::fs::remove_file(journal_path).ok();
                None
            }
            Err(e) => return Err(bad_input(e)),
        }
    } else {
        None
    };
    let (writer, recorded) = match &existing {
        Some(j) => {
            j.header
                .check_matches(&space, &settings.strategy, settings.seed)
                .map_err(|why| {
                    bad_input(anyhow::anyhow!(
                        "{} belongs to another search: {why}",
                        journal_path.display()
                    ))
                })?;
            let outcomes = j
                .outcomes(&space)
                .map_err(|e| bad_input(anyhow::anyhow!("{}: {e}", journal_path.display())))?;
            if j.torn_tail {
                eprintln!(
                    "note: {}: dropped a record cut short by a crash (that probe runs again)",
                    journal_path.display()
                );
            }
            println!(
                "resuming {}: {} finished probes re-told to a fresh `{}` strategy (seed {})",
                journal_path.display(),
                outcomes.len(),
                settings.strategy,
                settings.seed
            );
            (JournalWriter::append_to(journal_path, j)?, outcomes)
        }
        None => {
            let header = Header::new(
                &space,
                &settings.strategy,
                settings.seed,
                settings.options_json(spec),
            );
            (
                JournalWriter::create(journal_path, &header).map_err(bad_input)?,
                Vec::new(),
            )
        }
    };
    let already = recorded.len();
    let runner = Resume::new(runner, recorded);

    let interrupt = Arc::new(AtomicBool::new(false));
    let mut journal = JournalObserver::new(writer, space.clone(), already)
        .skip_replayed(runner.replayed_flag())
        .stop_on_error(interrupt.clone());
    if let Some(slot) = logs {
        journal = journal.with_logs(slot);
    }
    let mut progress = Progress::new(
        space.clone(),
        settings.max_runtime_s,
        runner.replayed_flag(),
    );
    let options = DriveOptions {
        budget: settings.budget,
        honour_stop: settings.honour_stop,
        max_spend_usd: settings.max_spend_usd,
        max_runtime_s: settings.max_runtime_s,
        limits: ProbeLimits {
            timeout: settings.probe_timeout,
            interrupt: Some(interrupt.clone()),
        },
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = Instant::now();
    let result = rt.block_on(async {
        let flag = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupt: stopping; finished probes are in the journal (Ctrl-C again to quit now)");
                flag.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let mut observers: [&mut dyn Observer; 2] = [&mut progress, &mut journal];
        drive(&space, strategy.as_mut(), &runner, &options, &mut observers).await
    });
    let wall = started.elapsed();
    if let Some(e) = journal.error() {
        return Err(anyhow::Error::new(e).context("writing the journal; the search was stopped"));
    }
    if runner.unconsumed() > 0 {
        eprintln!(
            "note: {} journal probes were never asked again by the strategy (did its code change?)",
            runner.unconsumed()
        );
    }
    summary(
        &space,
        &result,
        wall,
        progress.probe_seconds,
        journal.records(),
        journal_path,
    );
    if result.termination == Termination::Interrupted {
        return Err(anyhow::Error::new(Interrupted));
    }
    Ok(result)
}

fn summary(
    space: &Space,
    result: &SearchResult,
    wall: Duration,
    probe_seconds: f64,
    records: usize,
    journal: &std::path::Path,
) {
    println!("stopped: {}", result.termination);
    print_best(space, result);
    let overhead = (wall.as_secs_f64() - probe_seconds).max(0.0);
    println!(
        "{} probes, ${:.6} spent; {records} records in {}; loop overhead {:.1} ms ({:.3}% of probe time)",
        result.evaluations,
        result.spent_usd,
        journal.display(),
        overhead * 1000.0,
        if probe_seconds > 0.0 { 100.0 * overhead / probe_seconds } else { 0.0 }
    );
}

/// The `best:` line of a search's end (also `replay --journal`'s).
pub fn print_best(space: &Space, result: &SearchResult) {
    match &result.best {
        Some(best) => println!(
            "best: {}  runtime {:.2} s  cost ${:.6}",
            space.describe(best.config),
            best.outcome.elapsed_s(),
            best.outcome.cost_paid()
        ),
        None => println!("best: none (no probe completed within the limits)"),
    }
}

/// The live progress display: one line per finished probe.
pub struct Progress {
    space: Arc<Space>,
    max_runtime_s: Option<f64>,
    replayed: Arc<AtomicBool>,
    launched: Option<(Instant, Option<f64>)>,
    best: Option<f64>,
    header_done: bool,
    /// Wall time spent inside probes (for the loop-overhead figure).
    pub probe_seconds: f64,
}

impl Progress {
    pub fn new(space: Arc<Space>, max_runtime_s: Option<f64>, replayed: Arc<AtomicBool>) -> Self {
        Progress {
            space,
            max_runtime_s,
            replayed,
            launched: None,
            best: None,
            header_done: false,
            probe_seconds: 0.0,
        }
    }
}

impl Observer for Progress {
    fn on_launch(&mut self, _index: usize, proposal: &Proposal) {
        self.launched = Some((Instant::now(), proposal.expected_improvement));
    }

    fn on_outcome(&mut self, index: usize, config: ConfigId, outcome: &Outcome) {
        let (t0, ei) = self.launched.take().unwrap_or((Instant::now(), None));
        self.probe_seconds += t0.elapsed().as_secs_f64();
        if !self.header_done {
            println!(
                "{:>5}  {:<44} {:<10} {:>10} {:>12} {:>12} {:>8}",
                "probe", "configuration", "status", "runtime", "cost", "best", "EI"
            );
            self.header_done = true;
        }
        let feasible = match (outcome, self.max_runtime_s) {
            (Outcome::Completed { runtime_s, .. }, Some(t)) => *runtime_s <= t,
            (Outcome::Completed { .. }, None) => true,
            _ => false,
        };
        if feasible {
            let c = outcome.cost_paid();
            self.best = Some(self.best.map_or(c, |b: f64| b.min(c)));
        }
        let status = if self.replayed.load(Ordering::SeqCst) {
            format!("{}*", outcome.status())
        } else {
            outcome.status().to_string()
        };
        println!(
            "{:>5}  {:<44} {:<10} {:>9.2}s {:>12} {:>12} {:>8}",
            index + 1,
            self.space.config(config).name,
            status,
            outcome.elapsed_s(),
            format!("${:.6}", outcome.cost_paid()),
            self.best.map_or("-".to_string(), |b| format!("${b:.6}")),
            ei.map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0)),
        );
        if let Outcome::Failed { reason, .. } = outcome {
            println!("       reason: {reason}");
        }
    }
}
