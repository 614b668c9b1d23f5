//! `cherrypick search` as a library call: load the space file for a backend, build that backend's
//! runner from the request and the environment, then either print the plan (`--dry-run`) or run
//! the session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use optimizer::journal::Journal;
use optimizer::strategies::ModelSettings;
use optimizer::{ConfigId, ProbeLimits, Runner};

use crate::dataproc::{Credentials, DataprocOptions, DataprocRunner};
use crate::error::Error;
use crate::limits::seconds;
use crate::session::{self, Ended, Settings};
use crate::spacefile::{self, BackendKind, LoadOptions, SearchSpec};
use crate::spark::{SparkOptions, SparkRunner};
use crate::{CommandRunner, LocalRunner};

/// Most probes in flight a search takes (`--parallel`).
pub const MAX_IN_FLIGHT: usize = 1024;

/// Everything a search is asked to do (the command line's options).
#[derive(Debug, Clone)]
pub struct Request {
    pub space: PathBuf,
    pub backend: BackendKind,
    pub journal: Option<PathBuf>,
    pub strategy: String,
    pub seed: u64,
    pub budget: Option<usize>,
    pub max_runtime_s: Option<f64>,
    pub max_spend_usd: Option<f64>,
    pub probe_timeout_s: Option<f64>,
    pub resume: bool,
    pub dry_run: bool,
    pub prices: Option<PathBuf>,
    pub no_stop: bool,
    /// Probes in flight at once (1: one after another).
    pub parallel: usize,
    /// spark: keep each probe's output under the scratch folder.
    pub keep_output: bool,
    pub dataproc: DataprocArgs,
}

/// Where Dataproc clusters go.
#[derive(Debug, Clone, Default)]
pub struct DataprocArgs {
    pub project: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// gs://name
    pub bucket: Option<String>,
}

/// Runs the search `request` asks for; `None` for a dry run (the plan was printed).
pub fn run(request: &Request) -> Result<Option<Ended>, Error> {
    backend_options(request)?;
    let spec = Arc::new(spacefile::load(
        &request.space,
        &LoadOptions {
            backend: request.backend,
            prices: request.prices.clone(),
        },
    )?);
    let mut settings = settings(request, &spec)?;
    let scratch = scratch_dir(request.journal.as_deref());
    match request.backend {
        BackendKind::Command => {
            let runner = CommandRunner::new(spec.clone())?;
            if request.dry_run {
                dry_run(&spec, &settings, &runner, |id| {
                    runner.render(id).unwrap_or_default()
                });
                return Ok(None);
            }
            session(request, &spec, &settings, runner)
        }
        BackendKind::Local => {
            // Probe output goes beside the journal unless the space file names a folder.
            let mut runner = LocalRunner::new(spec.clone(), scratch)?;
            runner.share_cores(settings.parallel)?;
            if request.dry_run {
                dry_run_dataset(&spec, runner.dataset())?;
                dry_run(&spec, &settings, &runner, |id| runner.describe(id));
                return Ok(None);
            }
            journal_arg(request)?;
            prepare_dataset(runner.dataset(), || runner.prepare())?;
            // Each probe removes its own folder; the folder that holds them is removed too when
            // this search made it and nothing else is in it (a probe a kill cut short keeps its
            // output there until a resume runs that configuration again).
            let scratch = runner.scratch().to_path_buf();
            let made = !scratch.exists();
            let ended = session(request, &spec, &settings, runner);
            if made {
                let _ = std::fs::remove_dir(&scratch);
            }
            ended
        }
        BackendKind::Spark => {
            let mut options = SparkOptions::from_env(scratch)?;
            options.keep_output = request.keep_output;
            // A dry run runs nothing, so needs no spark-submit here.
            if !request.dry_run {
                options.check_spark_submit()?;
            }
            let runner = SparkRunner::new(spec.clone(), options)?;
            if settings.parallel > 1 && !request.dry_run {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::Runtime)?;
                rt.block_on(runner.check_parallel(settings.parallel))?;
            }
            if request.dry_run {
                dry_run_dataset(&spec, runner.dataset())?;
                let out = Path::new("<scratch>/probe");
                dry_run(&spec, &settings, &runner, |id| {
                    match runner.command(id, out) {
                        Ok(c) => c.join(" "),
                        Err(e) => format!("error: {e}"),
                    }
                });
                return Ok(None);
            }
            journal_arg(request)?;
            prepare_dataset(runner.dataset(), || runner.prepare())?;
            session(request, &spec, &settings, runner)
        }
        BackendKind::Dataproc => {
            let runner = dataproc_runner(request, &spec, &mut settings)?;
            if request.dry_run {
                // Every probe sends the same requests with its own machine type and workers.
                dry_run(&spec, &settings, &runner, |id| {
                    match runner.cluster_price(id) {
                        Ok(p) => {
                            format!("cluster {:.4} USD/hour with master and disks", p.per_hour())
                        }
                        Err(e) => format!("error: {e}"),
                    }
                });
                match runner.dry_run_report(0, &settings.limits()) {
                    Ok(report) => crate::say_part!("{report}"),
                    Err(e) => {
                        crate::say!("# configuration {}: error: {e}", spec.space.config(0).name)
                    }
                }
                return Ok(None);
            }
            let journal = journal_arg(request)?;
            if request.resume {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::Runtime)?;
                let deleted = rt.block_on(runner.delete_leftovers()).map_err(|e| {
                    Error::Service(format!("deleting clusters left by the earlier run: {e}"))
                })?;
                for name in &deleted {
                    crate::say!(
                        "deleted cluster {name}, left running by the earlier run of this search"
                    );
                }
            }
            session::run(&spec, &settings, &journal, request.resume, runner).map(Some)
        }
    }
}

fn session<R: Runner + Sync>(
    request: &Request,
    spec: &SearchSpec,
    settings: &Settings,
    runner: R,
) -> Result<Option<Ended>, Error> {
    let journal = journal_arg(request)?;
    session::run(spec, settings, &journal, request.resume, runner).map(Some)
}

/// The dataproc backend: clusters are labelled with a search id kept in the journal's header,
/// so `--resume` can delete clusters that a killed run left behind before it goes on.
fn dataproc_runner(
    request: &Request,
    spec: &Arc<SearchSpec>,
    settings: &mut Settings,
) -> Result<DataprocRunner, Error> {
    let need = |flag: &str, v: &Option<String>| -> Result<String, Error> {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Setup(format!("--backend dataproc needs --{flag}")))
    };
    let a = &request.dataproc;
    let mut options = DataprocOptions::new(
        &need("project", &a.project)?,
        &need("region", &a.region)?,
        &need("bucket", &a.bucket)?,
    );
    options.zone = a.zone.clone();
    options.check_names()?;
    options.dry_run = request.dry_run;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // Other API roots (a private endpoint, or a local fake of the API for testing).
    if let Some(base) = var("CHERRYPICK_DATAPROC_API") {
        options.api_base = base;
    }
    if let Some(base) = var("CHERRYPICK_STORAGE_API") {
        options.storage_base = base;
    }
    if let Some(s) = var("CHERRYPICK_DATAPROC_POLL_S") {
        let x = s.parse::<f64>().map_err(|_| {
            Error::Setup(format!(
                "CHERRYPICK_DATAPROC_POLL_S must be a positive number of seconds, got `{s}`"
            ))
        })?;
        options.poll_interval = seconds("CHERRYPICK_DATAPROC_POLL_S", x)?;
    }
    if let Some(binary) = std::env::var_os("CHERRYPICK_BINARY") {
        options.binary = PathBuf::from(binary);
    }
    let recorded_id = match (&request.journal, request.resume) {
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
    let credentials = if request.dry_run {
        // Nothing is sent, so no credential is looked up.
        Credentials::Token(String::new())
    } else {
        Credentials::application_default().map_err(|e| Error::Setup(e.to_string()))?
    };
    DataprocRunner::new(spec.clone(), options, credentials)
}

/// The journal to write, refused at once (before a dataset is generated or a cluster looked
/// for) where the search could not open it: a journal there without `--resume`, or none there
/// with it. The session checks again under the journal's lock.
fn journal_arg(request: &Request) -> Result<PathBuf, Error> {
    let path = request
        .journal
        .clone()
        .ok_or_else(|| Error::Setup("--journal FILE is required (or use --dry-run)".into()))?;
    session::check_journal_early(&path, request.resume)?;
    Ok(path)
}

/// `runs.jsonl` -> `runs.scratch/`; a journal named `runs.scratch` gets `runs.scratch.scratch/`
/// (probes never write into the journal's own path).
fn scratch_beside(journal: &Path) -> PathBuf {
    let beside = journal.with_extension("scratch");
    if beside != journal {
        return beside;
    }
    let mut name = journal.as_os_str().to_owned();
    name.push(".scratch");
    PathBuf::from(name)
}

/// Where probes write: beside the journal, or (a dry run, which has none) a temporary folder.
fn scratch_dir(journal: Option<&Path>) -> PathBuf {
    journal.map_or_else(
        || std::env::temp_dir().join("cherrypick-dry-run"),
        scratch_beside,
    )
}

/// What a dry run can say of the dataset without making it: missing or empty with nothing in
/// the space file to generate it is an error, as the search would find.
fn dry_run_dataset(spec: &SearchSpec, dataset: &Path) -> Result<(), Error> {
    let generate = spec.workload.as_ref().and_then(|w| w.generate.as_ref());
    crate::local::check_dataset(dataset, generate)
}

/// Generates the space file's synthetic dataset if it is not there yet (`prepare`, which
/// returns how many images it made), saying so.
pub fn prepare_dataset(
    dataset: &Path,
    prepare: impl FnOnce() -> Result<usize, Error>,
) -> Result<(), Error> {
    let started = Instant::now();
    let made = prepare()?;
    if made > 0 {
        crate::say!(
            "generated {made} synthetic images in {} ({:.1} s)",
            dataset.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Refuses an option of another backend than the one asked for: ignored, it would look as if
/// it had been applied (`--keep-output` with the local backend keeps nothing).
fn backend_options(request: &Request) -> Result<(), Error> {
    let d = &request.dataproc;
    let mut given: Vec<(&str, BackendKind)> = [
        ("--project", d.project.is_some()),
        ("--region", d.region.is_some()),
        ("--zone", d.zone.is_some()),
        ("--bucket", d.bucket.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(flag, _)| (flag, BackendKind::Dataproc))
    .collect();
    if request.keep_output {
        given.push(("--keep-output", BackendKind::Spark));
    }
    match given.into_iter().find(|(_, kind)| *kind != request.backend) {
        Some((flag, kind)) => Err(Error::Setup(format!(
            "{flag} is an option of the {} backend, not of the {} backend this search runs",
            kind.name(),
            request.backend.name()
        ))),
        None => Ok(()),
    }
}

/// Checks the request's limits against each other and the space file.
fn settings(request: &Request, spec: &SearchSpec) -> Result<Settings, Error> {
    // Time limits become `Duration`s (and sums of them): checked here, never a panic.
    let limit = |name: &str, v: Option<f64>| -> Result<Option<f64>, Error> {
        match v {
            Some(x) => {
                seconds(&format!("--{name}"), x)?;
                Ok(Some(x))
            }
            None => Ok(None),
        }
    };
    let max_runtime_s = limit("max-runtime", request.max_runtime_s)?.or(spec.max_runtime_s);
    let probe_timeout = match limit("probe-timeout", request.probe_timeout_s)? {
        Some(x) => Some(seconds("--probe-timeout", x)?),
        // The space file's max_runtime_s was checked the same way when it was read.
        None => max_runtime_s
            .map(|x| seconds("--max-runtime", x))
            .transpose()?,
    };
    let max_spend_usd = match request.max_spend_usd {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            return Err(Error::Setup(format!(
                "--max-spend must be a positive number, got {}",
                optimizer::Shown(x)
            )))
        }
        other => other,
    };
    // A resume may keep the journal's probe time limit: checked again once it is known.
    if max_spend_usd.is_some() && probe_timeout.is_none() && !request.resume {
        return Err(Error::Setup(
            "--max-spend needs a probe time limit (--probe-timeout or a runtime limit): \
             without one a probe's worst-case cost is unbounded"
                .into(),
        ));
    }
    if request.budget == Some(0) {
        return Err(Error::Setup("--budget must be at least 1".into()));
    }
    // Above 1, the local and spark runners check that the probes fit the cores they run on.
    if request.parallel == 0 {
        return Err(Error::Setup("--parallel must be at least 1".into()));
    }
    // Each probe in flight holds a runner's state (a cluster, for Dataproc); no backend has
    // room for more, and the driver reserves room for every one up front.
    if request.parallel > MAX_IN_FLIGHT {
        return Err(Error::Setup(format!(
            "--parallel must be at most {MAX_IN_FLIGHT}, got {}",
            request.parallel
        )));
    }
    // Built once here too, so a dry run refuses a strategy name or option the run would.
    optimizer::build_strategy(
        &request.strategy,
        Arc::new(spec.space.clone()),
        &optimizer::StrategyOptions {
            seed: request.seed,
            max_runtime_s,
        },
    )?;
    Ok(Settings {
        strategy: request.strategy.clone(),
        seed: request.seed,
        budget: request.budget,
        max_runtime_s,
        max_spend_usd,
        probe_timeout,
        // Either flag sets it (--max-runtime when --probe-timeout is not given).
        probe_timeout_given: request.probe_timeout_s.is_some() || request.max_runtime_s.is_some(),
        honour_stop: !request.no_stop,
        backend: request.backend,
        search_id: None,
        parallel: request.parallel,
    })
}

/// Prints the catalogue with prices and what each probe would run, and the worst case of the
/// plan; runs nothing.
fn dry_run(
    spec: &SearchSpec,
    settings: &Settings,
    runner: &impl Runner,
    command_of: impl Fn(ConfigId) -> String,
) {
    let space = &spec.space;
    crate::say!(
        "{}: {} configurations, objective {:?}, backend {}",
        spec.path.display(),
        space.len(),
        spec.objective,
        settings.backend.name()
    );
    crate::say!("{:<48} {:>12}  command", "configuration", "USD/hour");
    for id in 0..space.len() {
        crate::say!(
            "{:<48} {:>12.6}  {}",
            space.config(id).name,
            spec.configs[id].price_per_hour,
            command_of(id)
        );
    }
    let n = settings.budget.unwrap_or(space.len()).min(space.len());
    if settings.parallel > 1 {
        crate::say!(
            "up to {} probes in flight at once (on dataproc: as many clusters alive at once)",
            settings.parallel
        );
    }
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
            crate::say!(
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
        None => crate::say!(
            "plan: strategy {} (seed {}), up to {n} probes without a time limit",
            settings.strategy,
            settings.seed
        ),
    }
    // What a model strategy will look at, so a catalogue's spelling holds no surprise.
    if let Some(Ok(model)) = ModelSettings::parse(&settings.strategy) {
        crate::say!(
            "model inputs ({}): {}",
            settings.strategy,
            space.inputs(model.features)
        );
    }
    crate::say!("dry run: nothing was launched");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_folder_is_never_the_journal() {
        for (journal, scratch) in [
            ("d/runs.jsonl", "d/runs.scratch"),
            ("runs", "runs.scratch"),
            ("d/runs.scratch", "d/runs.scratch.scratch"),
            ("d/.scratch", "d/.scratch.scratch"),
        ] {
            assert_eq!(scratch_beside(Path::new(journal)), Path::new(scratch));
        }
    }
}
