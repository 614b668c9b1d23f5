//! The `local` backend: runs the workload library in-process under a configuration (threads,
//! shards, JPEG settings, read batch size, reader concurrency), measures wall time and prices it
//! by what the configuration occupies.
//!
//! Configuration dimensions (or the space file's `[workload.params]`, which dimensions override)
//! map onto the workload's options:
//!
//! | name                         | option                                            |
//! |------------------------------|---------------------------------------------------|
//! | `threads`, `workers`         | preprocess worker threads                         |
//! | `shards`, `partitions`       | preprocess shard count                            |
//! | `size`, `quality`            | output image side, JPEG quality                   |
//! | `chroma`, `filter`           | `444`/`420`, `bilinear`/`bicubic`/`lanczos3`       |
//! | `dct_scaling`                | decoder DCT-domain shrinking (0/1 or true/false)  |
//! | `decoder`                    | JPEG decoding: `fast` or `accurate`               |
//! | `batch_size`, `batch_number` | read-speed cell (one cell per probe)              |
//! | `concurrency`, `parallel`    | read-speed cells run at once                      |
//! | `repetitions`, `decode`      | read-speed repetitions, full JPEG decode          |
//!
//! Anything else is only a catalogue feature (priced and modelled, not passed to the workload).
//!
//! A probe past its time limit (or interrupted) is cancelled: preprocessing starts no more images
//! and commits no more shards, the read-speed test reads no further shard or image, and no later
//! step starts. Its runtime is taken when the limit hit; the probe is reported once its threads
//! have finished the image or read in hand (and its scratch output is removed), so timings are
//! never shared with a leftover run and a stopped search leaves nothing of it running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use optimizer::{ConfigId, Outcome, ProbeLimits, Report, Runner, Space};
use workload::preprocess::PreprocessOptions;
use workload::readspeed::{ReadSpeedOptions, Source};
use workload::storage::LocalStorage;
use workload::transform::TransformOptions;

use crate::error::Error;
use crate::limits::{completed, failed, limit_reached, timed_out, LimitHit};
use crate::params::{ParamError, Params};
use crate::spacefile::{SearchSpec, Task, WorkloadSpec};

/// Dimension and parameter names the local backend understands.
/// Most runs of one probe's job (`backend.local.repeat`): each run's time is kept, and more
/// than this is a typo, not a measurement.
const MAX_REPEAT: usize = 1000;

pub const KNOWN_PARAMS: &[&str] = &[
    "threads",
    "workers",
    "shards",
    "partitions",
    "size",
    "quality",
    "chroma",
    "filter",
    "dct_scaling",
    "decoder",
    "batch_size",
    "batch_number",
    "concurrency",
    "parallel",
    "repetitions",
    "decode",
    "seed",
];

/// Why a configuration maps onto no valid workload options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A parameter that is not a number of the kind it must be.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A named option (`chroma`, `filter`, `decoder`) the workload does not know; `error` is
    /// the workload's own message.
    #[error("configuration {config}: `{name}`: {error}")]
    Option {
        config: String,
        name: &'static str,
        error: String,
    },
}

/// Runs probes in this process.
pub struct LocalRunner {
    spec: Arc<SearchSpec>,
    workload: WorkloadSpec,
    dataset: PathBuf,
    scratch: PathBuf,
    repeat: usize,
    /// One permit per core of this machine: a probe holds as many as it runs threads (all of
    /// them when it uses every core), until its threads have let go, even after a timeout; the
    /// next probe waits for what it needs.
    cores: Arc<tokio::sync::Semaphore>,
    machine_cores: usize,
    /// Several probes may run at once (each on its own cores); otherwise a probe has the whole
    /// machine to itself.
    shared: bool,
}

/// What one configuration runs: resolved options of each task.
#[derive(Debug, Clone)]
pub struct Plan {
    pub preprocess: Option<PreprocessOptions>,
    pub read_speed: Option<ReadSpeedOptions>,
}

/// Refuses a `[workload]` folder (`key`, as written: `given`; resolved: `path`) the local
/// backend cannot use: a Cloud Storage location (only the dataproc backend reads one) or
/// something that exists but is no folder.
pub(crate) fn local_folder(
    spec: &SearchSpec,
    key: &str,
    given: &Path,
    path: &Path,
) -> Result<(), Error> {
    if workload::storage::names_cloud_storage(&given.to_string_lossy()) {
        return Err(Error::Setup(format!(
            "{}: {key} `{}`: this backend reads and writes local folders (only the dataproc \
             backend reads a gs:// dataset)",
            spec.path.display(),
            given.display()
        )));
    }
    if path.exists() && !path.is_dir() {
        return Err(Error::Setup(format!(
            "{}: {key}: {} is not a folder",
            spec.path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a scratch folder inside the dataset (the probes' shards would be read as photos,
/// and every probe's output is refused for it), comparing the paths resolved: `..`, and the
/// symlinks of the part that exists.
pub(crate) fn scratch_outside_dataset(
    spec: &SearchSpec,
    scratch: &Path,
    dataset: &Path,
) -> Result<(), Error> {
    if resolved(scratch).starts_with(resolved(dataset)) {
        return Err(Error::Setup(format!(
            "{}: the probes' scratch folder {} is inside the dataset {}: their shards would be \
             read as photos",
            spec.path.display(),
            scratch.display(),
            dataset.display()
        )));
    }
    Ok(())
}

/// `path` made absolute, `..` and `.` taken out, and its longest existing part canonicalized.
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut plain = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                plain.pop();
            }
            Component::CurDir => {}
            other => plain.push(other),
        }
    }
    let mut missing = Vec::new();
    let mut existing = plain.as_path();
    loop {
        if let Ok(mut found) = existing.canonicalize() {
            found.extend(missing.iter().rev());
            return found;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return plain,
        }
    }
}

impl LocalRunner {
    /// Needs a `[workload]` section; `scratch` holds each probe's output (wiped per probe). When
    /// the space file names none, pass a folder of your own (for example beside the journal).
    pub fn new(spec: Arc<SearchSpec>, scratch: PathBuf) -> Result<LocalRunner, Error> {
        let workload = spec.workload.clone().ok_or_else(|| {
            Error::Setup(format!(
                "{}: the local backend needs a [workload] section (dataset, tasks)",
                spec.path.display()
            ))
        })?;
        if workload.tasks.is_empty() {
            return Err(Error::Setup(format!(
                "{}: workload.tasks is empty; list \"preprocess\" and/or \"read-speed\"",
                spec.path.display()
            )));
        }
        if let Some(unknown) = crate::params::unknown_fixed(&spec, KNOWN_PARAMS) {
            return Err(Error::Setup(format!(
                "{}: [workload] params: `{unknown}` is not a parameter of the local backend (known: {})",
                spec.path.display(),
                KNOWN_PARAMS.join(", ")
            )));
        }
        let dataset = spec.resolve(&workload.dataset);
        let scratch = match &workload.scratch {
            Some(s) => spec.resolve(s),
            None => scratch,
        };
        // Problems of the setup, not of a configuration: found here, else every probe fails
        // with them and a resume keeps those configurations failed.
        local_folder(&spec, "workload.dataset", &workload.dataset, &dataset)?;
        let scratch_key = "workload.scratch";
        if let Some(s) = &workload.scratch {
            local_folder(&spec, scratch_key, s, &scratch)?;
        } else if scratch.exists() && !scratch.is_dir() {
            return Err(Error::Setup(format!(
                "the probes' scratch folder {} is not a folder",
                scratch.display()
            )));
        }
        scratch_outside_dataset(&spec, &scratch, &dataset)?;
        let repeat = spec
            .backend
            .local
            .as_ref()
            .and_then(|l| l.repeat)
            .unwrap_or(1);
        if !(1..=MAX_REPEAT).contains(&repeat) {
            return Err(Error::Setup(format!(
                "{}: backend.local.repeat must be between 1 and {MAX_REPEAT}, got {repeat}",
                spec.path.display()
            )));
        }
        let machine_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runner = LocalRunner {
            shared: false,
            spec,
            workload,
            dataset,
            scratch,
            repeat,
            cores: Arc::new(tokio::sync::Semaphore::new(machine_cores)),
            machine_cores,
        };
        // Every configuration must map onto valid options before anything runs.
        for id in 0..runner.spec.space.len() {
            runner
                .plan(id, Path::new("probe"))
                .map_err(|e| Error::Setup(format!("{}: {e}", runner.spec.path.display())))?;
        }
        Ok(runner)
    }

    /// Threads a probe of configuration `id` runs at once (preprocess workers or read-speed
    /// concurrency, whichever is more; 0 workers means one per core), at most this machine's
    /// cores.
    pub fn cores_used(&self, id: ConfigId) -> usize {
        match self.plan(id, Path::new("probe")) {
            Ok(plan) => self.cores_of(&plan),
            Err(_) => self.machine_cores,
        }
    }

    /// Threads a probe running `plan` uses at once (see [`LocalRunner::cores_used`]).
    fn cores_of(&self, plan: &Plan) -> usize {
        let pre = plan.preprocess.as_ref().map_or(1, |p| match p.threads {
            0 => self.machine_cores,
            t => t,
        });
        let read = plan.read_speed.as_ref().map_or(1, |r| r.parallel.max(1));
        pre.max(read).clamp(1, self.machine_cores)
    }

    /// This machine's cores, as probes share them.
    pub fn machine_cores(&self) -> usize {
        self.machine_cores
    }

    /// Lets `parallel` probes run at once when that many of the dearest configurations' threads
    /// fit this machine's cores; an error saying how many would fit otherwise.
    pub fn share_cores(&mut self, parallel: usize) -> Result<(), Error> {
        if parallel <= 1 {
            self.shared = false;
            return Ok(());
        }
        let widest = (0..self.spec.space.len())
            .map(|id| self.cores_used(id))
            .max()
            .unwrap_or(1);
        if parallel * widest > self.machine_cores {
            let fits = (self.machine_cores / widest).max(1);
            return Err(Error::Setup(format!(
                "--parallel {parallel}: the local backend measures probes on this machine's {} \
                 cores, and a configuration of this space keeps {widest} of them busy (its \
                 threads, at most every core): {parallel} at once could need {}, and probes \
                 sharing cores would measure each other; use {}, or fewer threads per \
                 configuration",
                self.machine_cores,
                parallel * widest,
                if fits == 1 {
                    "--parallel 1 (one probe at a time)".to_string()
                } else {
                    format!("--parallel {fits} or fewer")
                }
            )));
        }
        self.shared = true;
        Ok(())
    }

    /// The dataset folder probes read.
    pub fn dataset(&self) -> &Path {
        &self.dataset
    }

    /// The folder probes write their output under (each probe's own folder is removed when it
    /// ends).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Makes the synthetic dataset when the space file asks for one and the folder is missing
    /// or empty; returns the number of images generated (0 when the folder was already there).
    /// Says once (on stderr) what files of the dataset no probe reads, as they are not at
    /// `<class>/<image>`: each probe's preprocess leaves them out without a word.
    pub fn prepare(&self) -> Result<usize, Error> {
        let made = prepare_dataset(&self.dataset, self.workload.generate.as_ref())?;
        let listed = workload::dataset::scan_input(&LocalStorage::new(&self.dataset));
        if let Some(warning) = listed
            .ok()
            .and_then(|(_, _, outside)| outside.warning(&self.dataset.display().to_string()))
        {
            crate::note!("{warning}");
        }
        Ok(made)
    }

    /// One line saying what configuration `id` runs (what `--dry-run` prints).
    pub fn describe(&self, id: ConfigId) -> String {
        match self.plan(id, Path::new("<scratch>")) {
            Err(e) => format!("error: {e}"),
            Ok(plan) => {
                let mut parts = Vec::new();
                // Every option a configuration can set, so that no two lines of a dry run
                // look the same unless they run the same job.
                if let Some(p) = &plan.preprocess {
                    let t = &p.transform;
                    parts.push(format!(
                        "preprocess threads={} shards={} size={} quality={} filter={} chroma={} \
                         decoder={}{}",
                        p.threads,
                        p.shards,
                        t.size,
                        t.quality,
                        t.filter,
                        t.chroma,
                        t.decode,
                        if t.dct_scaling { "" } else { " no-dct-scaling" }
                    ));
                }
                if let Some(r) = &plan.read_speed {
                    parts.push(format!(
                        "read-speed {} batch={}x{} repetitions={} parallel={}{}",
                        r.source,
                        r.batch_sizes[0],
                        r.batch_numbers[0],
                        r.repetitions,
                        r.parallel,
                        if r.decode { " decode" } else { "" }
                    ));
                }
                parts.join("; ")
            }
        }
    }

    /// The workload options of configuration `id`, writing shards under `out`.
    pub fn plan(&self, id: ConfigId, out: &Path) -> Result<Plan, PlanError> {
        let p = Params::of(&self.spec, id);
        let threads = p.count(&["threads", "workers"])?.unwrap_or(0);
        let mut plan = Plan {
            preprocess: None,
            read_speed: None,
        };
        for task in &self.workload.tasks {
            match task {
                Task::Preprocess => {
                    let mut transform = TransformOptions::default();
                    if let Some(s) = p.size()? {
                        transform.size = s;
                    }
                    if let Some(q) = p.quality()? {
                        transform.quality = q;
                    }
                    let bad = |name: &'static str, error: String| PlanError::Option {
                        config: self.spec.space.config(id).name.clone(),
                        name,
                        error,
                    };
                    if let Some(c) = p.text("chroma") {
                        transform.chroma = c.parse().map_err(|e: String| bad("chroma", e))?;
                    }
                    if let Some(f) = p.text("filter") {
                        transform.filter = f.parse().map_err(|e: String| bad("filter", e))?;
                    }
                    if let Some(b) = p.flag("dct_scaling")? {
                        transform.dct_scaling = b;
                    }
                    if let Some(d) = p.text("decoder") {
                        transform.decode = d.parse().map_err(|e: String| bad("decoder", e))?;
                    }
                    plan.preprocess = Some(PreprocessOptions {
                        input: self.dataset.display().to_string(),
                        output: out.display().to_string(),
                        transform,
                        shards: p.count(&["shards", "partitions"])?.unwrap_or(16),
                        threads,
                        seed: p.seed()?.unwrap_or(0),
                        limit: None,
                        progress: false,
                        cancel: None,
                    });
                }
                Task::ReadSpeed => {
                    // After preprocessing, read its shards; alone, read the images.
                    let (input, source) = if plan.preprocess.is_some() {
                        (out.display().to_string(), Source::TfRecord)
                    } else {
                        (self.dataset.display().to_string(), Source::Images)
                    };
                    plan.read_speed = Some(ReadSpeedOptions {
                        input,
                        source,
                        batch_sizes: vec![p.count(&["batch_size"])?.unwrap_or(32)],
                        batch_numbers: vec![p.count(&["batch_number"])?.unwrap_or(10)],
                        repetitions: p.count(&["repetitions"])?.unwrap_or(1),
                        decode: p.flag("decode")?.unwrap_or(false),
                        parallel: p
                            .count(&["concurrency", "parallel"])?
                            .unwrap_or(threads.max(1)),
                        cancel: None,
                    });
                    if let Some(rs) = &plan.read_speed {
                        workload::readspeed::check_options(rs).map_err(|e| PlanError::Option {
                            config: self.spec.space.config(id).name.clone(),
                            name: "read-speed",
                            error: e.to_string(),
                        })?;
                    }
                }
            }
        }
        Ok(plan)
    }
}

/// Makes the synthetic dataset `generate` asks for in `dataset` when that folder is missing or
/// empty (every backend that reads a local dataset calls this); returns the number of images
/// generated, 0 when the folder already held something.
pub fn prepare_dataset(
    dataset: &Path,
    generate: Option<&crate::spacefile::GenerateSpec>,
) -> Result<usize, Error> {
    check_dataset(dataset, generate)?;
    let Some(gen) = generate.filter(|_| !has_files(dataset)) else {
        return Ok(0);
    };
    // Generate beside, then rename: a half-written dataset is never mistaken for a whole one.
    // The folder is named after the dataset's whole name (`photos.v1` -> `.photos.v1.partial`),
    // never by replacing an extension, which could name someone else's `photos.partial`.
    let tmp = partial_beside(dataset);
    let _ = std::fs::remove_dir_all(&tmp);
    workload::dataset::generate(&workload::dataset::GenOptions {
        out: tmp.clone(),
        images: gen.images,
        seed: gen.seed,
        threads: 0,
        quality: 85,
    })
    .map_err(|e| Error::Setup(format!("generating {}: {e}", dataset.display())))?;
    let _ = std::fs::remove_dir(dataset);
    std::fs::rename(&tmp, dataset).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        Error::Setup(format!("moving the dataset to {}: {e}", dataset.display()))
    })?;
    Ok(gen.images)
}

/// Whether `dataset` is a folder holding something but hidden files (a `.DS_Store` is no
/// photo).
fn has_files(dataset: &Path) -> bool {
    std::fs::read_dir(dataset).is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
    })
}

/// The check [`prepare_dataset`] starts with, touching nothing (a dry run makes it too): a
/// dataset folder that is missing or empty is an error unless `generate` can make it.
pub fn check_dataset(
    dataset: &Path,
    generate: Option<&crate::spacefile::GenerateSpec>,
) -> Result<(), Error> {
    if has_files(dataset) {
        return Ok(());
    }
    if generate.is_none() {
        return Err(Error::Setup(format!(
            "the dataset folder {} is missing or empty (add [workload.generate] to make one)",
            dataset.display()
        )));
    }
    // Generated into a folder of its own and renamed there: a folder in the way (it holds
    // only hidden files) is named rather than found after the generation.
    let hidden: Vec<String> = std::fs::read_dir(dataset)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Some(first) = hidden.first() {
        return Err(Error::Setup(format!(
            "the dataset folder {} holds only hidden files ({first}{}): remove them, or the \
             folder, for [workload.generate] to make the dataset there",
            dataset.display(),
            if hidden.len() > 1 { ", ..." } else { "" }
        )));
    }
    Ok(())
}

/// `.<name>.partial` beside `dataset`.
fn partial_beside(dataset: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dataset.file_name().unwrap_or(dataset.as_os_str()));
    name.push(".partial");
    dataset.with_file_name(name)
}

/// Runs `plan` once; returns its metrics.
fn run_plan(plan: &Plan, out: &Path) -> Result<BTreeMap<String, f64>, String> {
    let _ = std::fs::remove_dir_all(out);
    let mut metrics = BTreeMap::new();
    if let Some(p) = &plan.preprocess {
        let s = workload::preprocess::run(p).map_err(|e| format!("preprocess: {e}"))?;
        if s.images_written == 0 {
            return Err(format!(
                "preprocess wrote no images ({} skipped)",
                s.skipped.len()
            ));
        }
        metrics.insert("images".into(), s.images_written as f64);
        metrics.insert("skipped".into(), s.skipped.len() as f64);
        metrics.insert("shards".into(), s.shards.len() as f64);
        metrics.insert("bytes_out".into(), s.bytes_out as f64);
        metrics.insert("preprocess_s".into(), s.elapsed_s);
        metrics.insert("cpu_s".into(), s.cpu_s);
    }
    let cancelled = plan
        .preprocess
        .as_ref()
        .and_then(|p| p.cancel.as_ref())
        .or(plan.read_speed.as_ref().and_then(|r| r.cancel.as_ref()))
        .is_some_and(|c| c.load(Ordering::SeqCst));
    if cancelled {
        return Err("cancelled".into());
    }
    if let Some(r) = &plan.read_speed {
        let t = Instant::now();
        let rows = workload::readspeed::run(r).map_err(|e| format!("read-speed: {e}"))?;
        let images: usize = rows.iter().map(|r| r.images).sum();
        let secs: f64 = rows.iter().map(|r| r.seconds).sum();
        metrics.insert("read_s".into(), t.elapsed().as_secs_f64());
        metrics.insert("read_images".into(), images as f64);
        metrics.insert("read_images_per_s".into(), images as f64 / secs.max(1e-9));
    }
    Ok(metrics)
}

enum End {
    Done(Result<(f64, BTreeMap<String, f64>), String>),
    TimedOut,
    Interrupted,
}

impl Runner for LocalRunner {
    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Report {
        Report::new(self.probe(space, config, limits).await)
    }
}

impl LocalRunner {
    async fn probe(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Outcome {
        let price = space.config(config).price_per_hour;
        let true_price = self.spec.configs[config].price_per_hour;
        let out = self.scratch.join(format!("probe-{config}"));
        let plan = match self.plan(config, &out) {
            Ok(p) => p,
            Err(e) => return failed(e.to_string(), 0.0, price),
        };
        // A probe past its limit is cancelled: preprocessing starts no more images and commits
        // no more shards, and no further step or repetition starts.
        let cancel = Arc::new(AtomicBool::new(false));
        let mut plan = plan;
        if let Some(p) = plan.preprocess.as_mut() {
            p.cancel = Some(cancel.clone());
        }
        if let Some(r) = plan.read_speed.as_mut() {
            r.cancel = Some(cancel.clone());
        }
        // Wait (off the clock) for the cores it runs on: a cancelled probe's threads may still
        // hold some, and with several probes in flight the others hold theirs.
        let need = if self.shared {
            self.cores_of(&plan)
        } else {
            self.machine_cores
        } as u32;
        let Ok(guard) = self.cores.clone().acquire_many_owned(need).await else {
            return failed(
                "the machine's cores are no longer shared out".into(),
                0.0,
                price,
            );
        };
        let repeat = self.repeat;
        let start = Instant::now();
        let stop = cancel.clone();
        let mut work = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let runs = || {
                let mut times = Vec::with_capacity(repeat);
                let mut metrics = BTreeMap::new();
                for _ in 0..repeat {
                    if stop.load(Ordering::SeqCst) {
                        return Err("cancelled".to_string());
                    }
                    let t = Instant::now();
                    metrics = run_plan(&plan, &out)?;
                    times.push(t.elapsed().as_secs_f64());
                }
                times.sort_by(f64::total_cmp);
                Ok((times[times.len() / 2], metrics))
            };
            let result = runs();
            // The shards are not kept, whatever became of the probe: the scratch folder would
            // grow with every probe.
            let _ = std::fs::remove_dir_all(&out);
            result
        });
        let end = tokio::select! {
            r = &mut work => End::Done(r.unwrap_or_else(|e| Err(format!("the workload panicked: {e}")))),
            hit = limit_reached(limits) => match hit {
                LimitHit::TimedOut => End::TimedOut,
                LimitHit::Interrupted => End::Interrupted,
            },
        };
        let elapsed = start.elapsed().as_secs_f64();
        if !matches!(end, End::Done(_)) {
            cancel.store(true, Ordering::SeqCst);
            // Its threads stop within an image or a read (the flag is checked before each), and
            // the probe ends only once they have: a search stopped by a signal then lets go of
            // its journal with nothing of it still running, and no probe shares a core or a
            // scratch folder with a leftover one.
            let _ = work.await;
        }
        match end {
            End::TimedOut => timed_out(elapsed, price),
            End::Interrupted => failed("interrupted by the user".into(), elapsed, price),
            End::Done(Err(reason)) => failed(reason, elapsed, price),
            End::Done(Ok((runtime, mut metrics))) => {
                metrics.insert("wall_s".into(), elapsed);
                completed(runtime, price, true_price, self.spec.objective, metrics)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spacefile::{parse, BackendKind, GenerateSpec, LoadOptions};

    /// A local-backend space file's catalogue read as if from `space_file`.
    fn local_spec(text: &str, space_file: &Path) -> crate::spacefile::SearchSpec {
        parse(
            text,
            space_file,
            &LoadOptions {
                backend: BackendKind::Local,
                prices: None,
            },
        )
        .unwrap()
    }

    fn runner(threads: &str) -> LocalRunner {
        runner_with(threads, "").unwrap()
    }

    fn runner_with(threads: &str, params: &str) -> Result<LocalRunner, Error> {
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"threads\"\n\
             count_unit = \"vcpu\"\n[catalogue.dimensions]\nthreads = {threads}\n\
             [workload]\ndataset = \"photos\"\ntasks = [\"preprocess\"]\n{params}"
        );
        let spec = local_spec(&text, Path::new("/tmp/space.toml"));
        LocalRunner::new(Arc::new(spec), std::env::temp_dir())
    }

    /// Folders no probe can use are refused before any probe: else every probe fails with the
    /// same setup problem and a resume keeps those configurations failed.
    #[test]
    fn unusable_dataset_and_scratch_folders_are_refused_up_front() {
        let dir = std::env::temp_dir().join(format!("cp-local-folders-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("photos/daisy")).unwrap();
        std::fs::write(dir.join("afile"), "x").unwrap();
        let runner_at = |workload: &str| {
            let text = format!(
                "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"threads\"\n\
                 count_unit = \"vcpu\"\n[catalogue.dimensions]\nthreads = [1]\n\
                 [workload]\ntasks = [\"preprocess\"]\n{workload}"
            );
            let spec = local_spec(&text, &dir.join("space.toml"));
            match LocalRunner::new(Arc::new(spec), dir.join("j.scratch")) {
                Ok(_) => String::new(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(runner_at("dataset = \"photos\""), "");
        for (workload, want) in [
            (
                "dataset = \"gs://b/photos\"",
                "workload.dataset `gs://b/photos`: this backend",
            ),
            ("dataset = \"afile\"", "workload.dataset: "),
            (
                "dataset = \"photos\"\nscratch = \"afile\"",
                "workload.scratch: ",
            ),
            (
                "dataset = \"photos\"\nscratch = \"photos/out\"",
                "is inside the dataset",
            ),
        ] {
            let e = runner_at(workload);
            assert!(e.contains(want), "{workload}: {e}");
        }
        assert!(runner_at("dataset = \"afile\"").ends_with("afile is not a folder"));
        // Compared resolved: `photos/../scr` is beside the dataset, `scr/../photos/x` in it.
        assert_eq!(
            runner_at("dataset = \"photos\"\nscratch = \"photos/../scr\""),
            ""
        );
        assert!(
            runner_at("dataset = \"photos\"\nscratch = \"scr/../photos/x\"")
                .contains("is inside the dataset")
        );
        // A folder holding only hidden files has no photos, and is in the way of generating.
        std::fs::create_dir_all(dir.join("hidden")).unwrap();
        std::fs::write(dir.join("hidden/.DS_Store"), "x").unwrap();
        let e = check_dataset(&dir.join("hidden"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is missing or empty"), "{e}");
        let gen = GenerateSpec { images: 5, seed: 1 };
        let e = check_dataset(&dir.join("hidden"), Some(&gen))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds only hidden files (.DS_Store)"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A read-speed grid no run takes is refused with the configuration before any probe (it
    /// failed each probe after its preprocessing was paid for).
    #[test]
    fn a_read_speed_grid_no_run_takes_is_refused_up_front() {
        let text = "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"threads\"\n\
                    count_unit = \"vcpu\"\n[catalogue.dimensions]\nthreads = [1]\n\
                    [workload]\ndataset = \"photos\"\ntasks = [\"preprocess\", \"read-speed\"]\n\
                    params = { concurrency = 100000 }\n";
        let spec = local_spec(text, Path::new("/tmp/space.toml"));
        let e = LocalRunner::new(Arc::new(spec), std::env::temp_dir().join("cp-grid-scratch"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("`read-speed`") && e.contains("--parallel 100000"),
            "{e}"
        );
    }

    /// `repeat` within 1..=1000: a huge one would be sized into memory before the first run.
    #[test]
    fn a_repeat_count_out_of_range_is_refused() {
        for (repeat, ok) in [("1000", true), ("0", false), ("1099511627776", false)] {
            let got = runner_with("[1]", &format!("[backend.local]\nrepeat = {repeat}\n"));
            match (got, ok) {
                (Ok(_), true) => {}
                (Err(e), false) => assert!(
                    e.to_string()
                        .contains("backend.local.repeat must be between 1 and 1000"),
                    "{e}"
                ),
                (got, _) => panic!("repeat {repeat}: {:?}", got.err()),
            }
        }
    }

    /// A fixed parameter the backend does not read is a typo, named with the file.
    #[test]
    fn an_unknown_fixed_parameter_is_refused() {
        assert!(runner_with("[1]", "params = { batch_size = 16, size = 96 }").is_ok());
        let err = runner_with("[1]", "params = { batch_sise = 16 }")
            .err()
            .expect("a typo is refused")
            .to_string();
        assert!(
            err.contains("/tmp/space.toml") && err.contains("`batch_sise`"),
            "{err}"
        );
    }

    /// A dry run's line shows every option a configuration sets, so two lines that look the
    /// same run the same job.
    #[test]
    fn the_description_shows_every_option() {
        let r = runner_with(
            "[1]",
            "params = { filter = \"lanczos3\", chroma = \"420\" }",
        )
        .unwrap();
        let line = r.describe(0);
        assert!(
            line.contains("filter=lanczos3 chroma=420 decoder=accurate"),
            "{line}"
        );
    }

    /// Several probes at once only when that many of the widest configuration fit the cores.
    #[test]
    fn parallel_probes_must_fit_the_machines_cores() {
        let mut one = runner("[1]");
        let cores = one.machine_cores();
        assert_eq!(one.cores_used(0), 1);
        assert!(one.share_cores(cores).is_ok());
        let err = one.share_cores(cores + 1).unwrap_err().to_string();
        assert!(err.contains(&format!("--parallel {}", cores + 1)), "{err}");
        let advice = if cores == 1 {
            "use --parallel 1 (one probe at a time)".to_string()
        } else {
            format!("use --parallel {cores} or fewer")
        };
        assert!(err.contains(&advice), "{err}");
        // More threads than cores take every core: such a space runs one probe at a time.
        let mut all = runner("[1, 4096]");
        assert_eq!(all.cores_used(1), cores);
        assert!(all.share_cores(1).is_ok());
        let err = all.share_cores(2).unwrap_err().to_string();
        assert!(
            err.contains(&format!("keeps {cores} of them busy"))
                && err.contains("use --parallel 1 (one probe at a time)"),
            "{err}"
        );
    }

    /// A probe stopped by its time limit or by the user ends only once its threads have: the
    /// read-speed test (here a cell of 6.4 million images that would read for minutes) stops at
    /// the cancel flag too, every core is free again when the probe reports, and its scratch
    /// output is gone, as it is after a probe that completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_probe_reports_once_its_threads_are_done_and_leaves_no_output() {
        let dir = std::env::temp_dir().join(format!("cp-local-stop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"threads\"\n\
             count_unit = \"vcpu\"\n[catalogue.dimensions]\nthreads = [1]\n\
             [workload]\ndataset = \"photos\"\ngenerate = { images = 12, seed = 1 }\n\
             tasks = [\"preprocess\", \"read-speed\"]\n\
             params = { size = 32, batch_size = 64, batch_number = 100000 }\n";
        let space_file = dir.join("space.toml");
        let spec = local_spec(text, &space_file);
        prepare_dataset(
            &dir.join("photos"),
            Some(&GenerateSpec {
                images: 12,
                seed: 1,
            }),
        )
        .unwrap();
        let runner = LocalRunner::new(Arc::new(spec), dir.join("scratch")).unwrap();
        let space = runner.spec.space.clone();
        let out = dir.join("scratch").join("probe-0");

        let timed = ProbeLimits {
            timeout: Some(std::time::Duration::from_millis(400)),
            interrupt: None,
        };
        let report = runner.run(&space, 0, &timed).await;
        assert!(
            matches!(report.outcome, Outcome::TimedOut { .. }),
            "{:?}",
            report.outcome
        );
        assert_eq!(runner.cores.available_permits(), runner.machine_cores);
        assert!(!out.exists(), "a timed-out probe left {}", out.display());

        let flag = Arc::new(AtomicBool::new(false));
        let user = ProbeLimits {
            timeout: None,
            interrupt: Some(flag.clone()),
        };
        let press = flag.clone();
        let ctrl_c = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            press.store(true, Ordering::SeqCst);
        });
        let report = runner.run(&space, 0, &user).await;
        ctrl_c.await.unwrap();
        match &report.outcome {
            Outcome::Failed { reason, .. } => assert!(reason.contains("interrupted"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(runner.cores.available_permits(), runner.machine_cores);
        assert!(!out.exists(), "an interrupted probe left {}", out.display());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The folder a dataset is generated in comes from its whole name: `photos.v1` must not
    /// use (and remove) a sibling `photos.partial` that belongs to someone else.
    #[test]
    fn generating_a_dataset_leaves_siblings_named_like_it_alone() {
        let dir = std::env::temp_dir().join(format!("cp-local-partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sibling = dir.join("photos.partial");
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("keep.txt"), "mine").unwrap();
        let dataset = dir.join("photos.v1");
        let made = prepare_dataset(
            &dataset,
            Some(&GenerateSpec {
                images: 10,
                seed: 1,
            }),
        )
        .unwrap();
        assert_eq!(made, 10);
        assert!(dataset.is_dir());
        assert_eq!(
            std::fs::read_to_string(sibling.join("keep.txt")).unwrap(),
            "mine"
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
