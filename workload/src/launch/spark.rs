//! The `spark` backend: submits the workload (the PySpark driver `workload/spark/job.py`, embedded
//! in the binary) to a Spark standalone cluster with `spark-submit`, under a configuration's
//! executors, cores per executor, executor memory and partitions. The probe's runtime is the
//! driver's own timing; Spark's application figures go into the outcome's metrics; the probe's
//! time limit kills spark-submit's whole process group.
//!
//! Which dimension of the space file sets what (the first name present wins):
//! - executors: `executors`, `workers`, else the catalogue's `count`
//! - cores per executor: `executor_cores`, `cores`, else 1
//! - executor memory (MiB): `executor_memory_mib`, `executor_memory_gib` x 1024, else the default
//! - partitions (= shards written and preprocessing tasks): `partitions`, `shards`, else
//!   2 x executors x cores
//!
//! Workload parameters (`[workload.params]` or a dimension of the same name): `size`, `quality`,
//! `batch_sizes` and `batch_numbers` (text lists like "8,16"), `repetitions`, `decode`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optimizer::journal::{ProbeLog, ProbeLogSlot};
use optimizer::{ConfigId, Outcome, ProbeLimits, Runner, Space, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::failed;
use super::spacefile::{ConfigInfo, Objective, ParamValue, SearchSpec, Task};

/// The PySpark driver, shipped inside the binary so a search needs nothing but `cherrypick`.
pub const JOB_PY: &str = include_str!("../../spark/job.py");
/// Prefix of the driver's result line on its stdout (a JSON object follows).
pub const RESULT_PREFIX: &str = "CHERRYPICK_RESULT ";
/// How long spark-submit gets between SIGTERM and SIGKILL when a probe is stopped.
const GRACE: Duration = Duration::from_secs(3);

/// Where the cluster is and how to reach it.
#[derive(Debug, Clone)]
pub struct SparkOptions {
    /// `spark://host:port` of the standalone master.
    pub master_url: String,
    /// The `spark-submit` script.
    pub spark_submit: PathBuf,
    /// The cherrypick binary the tasks run (must be reachable at this path on every worker).
    pub binary: PathBuf,
    /// Python for the driver and the executors' Python workers (needs pyspark importable).
    pub python: Option<PathBuf>,
    /// Master web UI (`http://host:8080`) for the application's figures after it ends.
    pub master_webui: Option<String>,
    /// Per-probe output folders and the driver script go here.
    pub scratch: PathBuf,
    /// Executor memory when the configuration does not set it.
    pub default_executor_memory_mib: u32,
    pub driver_memory_mib: u32,
    /// Extra `--conf key=value` for every submission.
    pub conf: Vec<(String, String)>,
    /// Bytes of stdout and of stderr kept in the journal per probe (the tail).
    pub log_bytes: usize,
    /// Keep each probe's TFRecords (else they are removed once the probe ends).
    pub keep_output: bool,
}

impl SparkOptions {
    /// Reads the cluster from the environment `.ci/start-spark.sh` writes: `SPARK_MASTER_URL`
    /// (required), `SPARK_SUBMIT` or `SPARK_HOME`, `PYSPARK_PYTHON`, `SPARK_MASTER_WEBUI_URL`;
    /// `CHERRYPICK_BINARY` overrides the binary (default: the running executable).
    pub fn from_env(scratch: PathBuf) -> Result<SparkOptions, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let master_url = var("SPARK_MASTER_URL").ok_or(
            "SPARK_MASTER_URL is not set: start a cluster with .ci/start-spark.sh and \
             `source out/spark/env`, or point it at your own master (spark://host:7077)",
        )?;
        let spark_submit = match (var("SPARK_SUBMIT"), var("SPARK_HOME")) {
            (Some(s), _) => PathBuf::from(s),
            (None, Some(h)) => Path::new(&h).join("bin/spark-submit"),
            (None, None) => PathBuf::from("spark-submit"),
        };
        let binary = match var("CHERRYPICK_BINARY") {
            Some(b) => PathBuf::from(b),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find the running executable: {e}"))?,
        };
        Ok(SparkOptions {
            master_url,
            spark_submit,
            binary,
            python: var("PYSPARK_PYTHON").map(PathBuf::from),
            master_webui: var("SPARK_MASTER_WEBUI_URL"),
            scratch,
            default_executor_memory_mib: 512,
            driver_memory_mib: 512,
            conf: Vec::new(),
            log_bytes: 8192,
            keep_output: false,
        })
    }
}

/// What a configuration asks Spark for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparkShape {
    pub executors: u32,
    pub executor_cores: u32,
    pub executor_memory_mib: u32,
    pub partitions: u32,
}

impl SparkShape {
    /// Reads the shape from a configuration's dimensions (see the module documentation).
    pub fn of(info: &ConfigInfo, default_memory_mib: u32) -> Result<SparkShape, String> {
        let num = |names: &[&str]| -> Result<Option<f64>, String> {
            for n in names {
                match info.params.get(*n) {
                    Some(Value::Num(x)) => return Ok(Some(*x)),
                    Some(Value::Cat(s)) => {
                        return Err(format!("dimension `{n}` must be a number, got `{s}`"))
                    }
                    None => {}
                }
            }
            Ok(None)
        };
        let whole = |name: &str, x: f64| -> Result<u32, String> {
            if x.fract() == 0.0 && x >= 1.0 && x <= f64::from(u32::MAX) {
                Ok(x as u32)
            } else {
                Err(format!("{name} must be a whole number >= 1, got {x}"))
            }
        };
        let executors = whole(
            "executors",
            num(&["executors", "workers"])?.unwrap_or(info.count),
        )?;
        let executor_cores = whole(
            "executor cores",
            num(&["executor_cores", "cores"])?.unwrap_or(1.0),
        )?;
        let executor_memory_mib = match (
            num(&["executor_memory_mib"])?,
            num(&["executor_memory_gib"])?,
        ) {
            (Some(m), _) => whole("executor memory (MiB)", m)?,
            (None, Some(g)) => whole("executor memory (MiB)", (g * 1024.0).round())?,
            (None, None) => default_memory_mib,
        };
        let partitions = match num(&["partitions", "shards"])? {
            Some(p) => whole("partitions", p)?,
            None => 2 * executors * executor_cores,
        };
        Ok(SparkShape {
            executors,
            executor_cores,
            executor_memory_mib,
            partitions,
        })
    }

    /// Total cores the application may take (`--total-executor-cores`).
    pub fn total_cores(&self) -> u32 {
        self.executors * self.executor_cores
    }
}

/// The workload the PySpark driver runs, from the space file's `[workload]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobParams {
    /// Dataset folder or `gs://` prefix.
    pub input: String,
    pub tasks: Vec<Task>,
    pub size: u32,
    pub quality: u32,
    pub batch_sizes: String,
    pub batch_numbers: String,
    pub repetitions: u32,
    pub decode: bool,
}

impl JobParams {
    /// From the space file; a dimension of a parameter's name overrides `[workload.params]`.
    pub fn of(spec: &SearchSpec, info: &ConfigInfo, input: String) -> Result<JobParams, String> {
        let workload = spec.workload.as_ref().ok_or_else(|| {
            format!(
                "{}: the spark and dataproc backends need a [workload] section (dataset, tasks)",
                spec.path.display()
            )
        })?;
        let get = |name: &str| -> Option<String> {
            match info.params.get(name) {
                Some(v) => Some(v.to_string()),
                None => workload.params.get(name).map(|p| match p {
                    ParamValue::Int(i) => i.to_string(),
                    ParamValue::Float(f) => f.to_string(),
                    ParamValue::Bool(b) => b.to_string(),
                    ParamValue::Text(s) => s.clone(),
                }),
            }
        };
        let int = |name: &str, default: u32| -> Result<u32, String> {
            match get(name) {
                None => Ok(default),
                Some(s) => s.parse::<u32>().map_err(|_| {
                    format!("workload parameter `{name}` must be a whole number, got `{s}`")
                }),
            }
        };
        let list = |name: &str, default: &str| -> Result<String, String> {
            let s = get(name).unwrap_or_else(|| default.to_string());
            let ok = !s.is_empty()
                && s.split(',')
                    .all(|x| x.trim().parse::<u32>().is_ok_and(|n| n > 0));
            if ok {
                Ok(s.split(',').map(str::trim).collect::<Vec<_>>().join(","))
            } else {
                Err(format!(
                    "workload parameter `{name}` must be a comma-separated list of whole numbers, got `{s}`"
                ))
            }
        };
        if workload.tasks.is_empty() {
            return Err(format!(
                "{}: [workload] tasks is empty",
                spec.path.display()
            ));
        }
        Ok(JobParams {
            input,
            tasks: workload.tasks.clone(),
            size: int("size", 192)?,
            quality: int("quality", 95)?,
            batch_sizes: list("batch_sizes", "8,16")?,
            batch_numbers: list("batch_numbers", "2,4")?,
            repetitions: int("repetitions", 1)?,
            decode: matches!(get("decode").as_deref(), Some("true")),
        })
    }

    /// Arguments of job.py after the script name.
    pub fn args(&self, binary: &str, output: &str, partitions: u32) -> Vec<String> {
        let tasks: Vec<&str> = self
            .tasks
            .iter()
            .map(|t| match t {
                Task::Preprocess => "preprocess",
                Task::ReadSpeed => "read-speed",
            })
            .collect();
        let mut a = vec![
            "--binary".to_string(),
            binary.to_string(),
            "--input".into(),
            self.input.clone(),
            "--output".into(),
            output.to_string(),
            "--partitions".into(),
            partitions.to_string(),
            "--tasks".into(),
            tasks.join(","),
            "--size".into(),
            self.size.to_string(),
            "--quality".into(),
            self.quality.to_string(),
            "--batch-sizes".into(),
            self.batch_sizes.clone(),
            "--batch-numbers".into(),
            self.batch_numbers.clone(),
            "--repetitions".into(),
            self.repetitions.to_string(),
        ];
        if self.decode {
            a.push("--decode".into());
        }
        a
    }
}

/// The driver's result line, parsed: every numeric field, plus the application id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriverResult {
    pub runtime_s: f64,
    pub app_id: Option<String>,
    pub metrics: BTreeMap<String, f64>,
}

/// Finds the last result line in a driver's output. `None` when there is none or it is not a
/// JSON object with a positive `runtime_s`.
pub fn parse_driver_output(stdout: &str) -> Option<DriverResult> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(RESULT_PREFIX))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let runtime_s = obj
        .get("runtime_s")?
        .as_f64()
        .filter(|r| r.is_finite() && *r > 0.0)?;
    let metrics = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "runtime_s")
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite())?)))
        .collect();
    Some(DriverResult {
        runtime_s,
        app_id: obj.get("app_id").and_then(|a| a.as_str()).map(String::from),
        metrics,
    })
}

/// The most telling line of a failed submission's stderr: the last Python or JVM error line,
/// else the last non-empty line; at most `max` characters.
pub fn error_line(stderr: &str, max: usize) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .rev()
        .find(|l| {
            l.contains("Error:")
                || l.contains("Exception:")
                || l.starts_with("Error")
                || l.contains("error:")
        })
        .or(lines.last())
        .copied()
        .unwrap_or("");
    truncate(pick, max).to_string()
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs probes on a Spark standalone cluster.
pub struct SparkRunner {
    spec: Arc<SearchSpec>,
    options: SparkOptions,
    job: PathBuf,
    input: PathBuf,
    probes: AtomicUsize,
    logs: ProbeLogSlot,
}

impl SparkRunner {
    /// Checks the options, writes the driver script into the scratch folder and makes the
    /// synthetic dataset if the space file asks for one and the folder is empty.
    pub fn new(spec: Arc<SearchSpec>, options: SparkOptions) -> Result<SparkRunner, String> {
        let workload = spec.workload.as_ref().ok_or_else(|| {
            format!(
                "{}: the spark backend needs a [workload] section (dataset, tasks)",
                spec.path.display()
            )
        })?;
        let input = spec.resolve(&workload.dataset);
        let input = std::path::absolute(&input).unwrap_or(input);
        if !options.binary.is_file() {
            return Err(format!(
                "the cherrypick binary {} does not exist (set CHERRYPICK_BINARY)",
                options.binary.display()
            ));
        }
        prepare_dataset(&input, workload.generate.as_ref())?;
        std::fs::create_dir_all(&options.scratch)
            .map_err(|e| format!("cannot create {}: {e}", options.scratch.display()))?;
        let scratch = std::path::absolute(&options.scratch).unwrap_or(options.scratch.clone());
        let job = scratch.join("job.py");
        std::fs::write(&job, JOB_PY).map_err(|e| format!("cannot write {}: {e}", job.display()))?;
        // Check every configuration up front: a bad dimension is the file's fault, not a probe's.
        for (i, info) in spec.configs.iter().enumerate() {
            SparkShape::of(info, options.default_executor_memory_mib)
                .and_then(|_| JobParams::of(&spec, info, String::new()))
                .map_err(|e| format!("configuration `{}`: {e}", spec.space.config(i).name))?;
        }
        Ok(SparkRunner {
            spec,
            options: SparkOptions { scratch, ..options },
            job,
            input,
            probes: AtomicUsize::new(0),
            logs: Arc::new(Mutex::new(None)),
        })
    }

    /// Where each probe's output is left for the journal.
    pub fn log_slot(&self) -> ProbeLogSlot {
        self.logs.clone()
    }

    /// The spark-submit command line for configuration `id` writing to `output`.
    pub fn command(&self, id: ConfigId, output: &Path) -> Result<Vec<String>, String> {
        let info = &self.spec.configs[id];
        let shape = SparkShape::of(info, self.options.default_executor_memory_mib)?;
        let params = JobParams::of(&self.spec, info, self.input.display().to_string())?;
        let o = &self.options;
        let mut c = vec![
            o.spark_submit.display().to_string(),
            "--master".into(),
            o.master_url.clone(),
            "--name".into(),
            format!("cherrypick {}", self.spec.space.config(id).name),
            "--total-executor-cores".into(),
            shape.total_cores().to_string(),
            "--executor-cores".into(),
            shape.executor_cores.to_string(),
            "--executor-memory".into(),
            format!("{}m", shape.executor_memory_mib),
            "--driver-memory".into(),
            format!("{}m", o.driver_memory_mib),
        ];
        let mut conf: Vec<(String, String)> = vec![
            (
                "spark.default.parallelism".into(),
                shape.partitions.to_string(),
            ),
            // A probe measures one attempt: a failed task fails the probe instead of retrying.
            ("spark.task.maxFailures".into(), "1".into()),
            ("spark.ui.showConsoleProgress".into(), "false".into()),
        ];
        if let Some(py) = &o.python {
            conf.push(("spark.pyspark.python".into(), py.display().to_string()));
            conf.push((
                "spark.pyspark.driver.python".into(),
                py.display().to_string(),
            ));
        }
        conf.extend(o.conf.iter().cloned());
        for (k, v) in conf {
            c.push("--conf".into());
            c.push(format!("{k}={v}"));
        }
        c.push(self.job.display().to_string());
        c.extend(params.args(
            &o.binary.display().to_string(),
            &output.display().to_string(),
            shape.partitions,
        ));
        Ok(c)
    }

    async fn app_duration_s(&self, app_id: &str) -> Option<f64> {
        let base = self.options.master_webui.as_ref()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let v: serde_json::Value = client
            .get(format!("{}/json/", base.trim_end_matches('/')))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v.get("completedapps")?
            .as_array()?
            .iter()
            .find(|a| a.get("id").and_then(|i| i.as_str()) == Some(app_id))?
            .get("duration")?
            .as_f64()
            .map(|ms| ms / 1000.0)
    }
}

/// Makes the synthetic dataset when the space file asks for one and the folder holds nothing.
pub(crate) fn prepare_dataset(
    input: &Path,
    generate: Option<&super::spacefile::GenerateSpec>,
) -> Result<(), String> {
    let empty = match std::fs::read_dir(input) {
        Ok(mut d) => d.next().is_none(),
        Err(_) => true,
    };
    match (empty, generate) {
        (false, _) => Ok(()),
        (true, Some(g)) => crate::dataset::generate(&crate::dataset::GenOptions {
            out: input.to_path_buf(),
            images: g.images,
            seed: g.seed,
            ..Default::default()
        })
        .map(|_| ())
        .map_err(|e| format!("generating the dataset in {}: {e}", input.display())),
        (true, None) => Err(format!(
            "the dataset folder {} is missing or empty (add [workload.generate] to make one)",
            input.display()
        )),
    }
}

enum End {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Interrupted,
}

impl Runner for SparkRunner {
    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Outcome {
        let price = space.config(config).price_per_hour;
        let true_price = self.spec.configs[config].price_per_hour;
        let n = self.probes.fetch_add(1, Ordering::SeqCst);
        let output = self
            .options
            .scratch
            .join(format!("probe-{n:03}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&output);
        if let Err(e) = std::fs::create_dir_all(&output) {
            return failed(
                format!("cannot create {}: {e}", output.display()),
                0.0,
                price,
            );
        }
        let argv = match self.command(config, &output) {
            Ok(a) => a,
            Err(e) => return failed(e, 0.0, price),
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&self.options.scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: the Python driver, its JVM and anything they start.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(py) = &self.options.python {
            cmd.env("PYSPARK_PYTHON", py);
        }
        let start = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return failed(format!("could not start {}: {e}", argv[0]), 0.0, price);
            }
        };
        let pgid = child.id().map(|p| p as i32);
        let keep = self.options.log_bytes;
        // stdout is small (the driver prints little) and holds the result line: keep it whole
        // up to a generous bound; stderr is Spark's log: keep its tail.
        let out = tokio::spawn(capture(child.stdout.take(), keep.max(64 * 1024)));
        let err = tokio::spawn(capture(child.stderr.take(), keep));
        let end = tokio::select! {
            status = child.wait() => End::Exited(status),
            hit = super::limit_reached(limits) => match hit {
                super::LimitHit::TimedOut => End::TimedOut,
                super::LimitHit::Interrupted => End::Interrupted,
            },
        };
        let elapsed = start.elapsed().as_secs_f64();
        match &end {
            End::Exited(_) => kill_group(pgid, libc::SIGKILL),
            _ => {
                // Stopping the driver ends the application: the master then kills its executors.
                kill_group(pgid, libc::SIGTERM);
                if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                    kill_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                } else {
                    kill_group(pgid, libc::SIGKILL);
                }
            }
        }
        let collect = |h: tokio::task::JoinHandle<(Vec<u8>, u64)>| async move {
            tokio::time::timeout(Duration::from_secs(3), h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        let ((stdout, stdout_bytes), (stderr, stderr_bytes)) =
            (collect(out).await, collect(err).await);
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let exit_code = match &end {
            End::Exited(Ok(s)) => s.code(),
            _ => None,
        };
        let tail = |s: &str| {
            let cut = s.len().saturating_sub(keep);
            let mut i = cut;
            while !s.is_char_boundary(i) {
                i += 1;
            }
            s[i..].to_string()
        };
        if let Ok(mut slot) = self.logs.lock() {
            *slot = Some(ProbeLog {
                command: Some(argv.join(" ")),
                exit_code,
                stdout: tail(&stdout),
                stdout_bytes,
                stderr: tail(&stderr),
                stderr_bytes,
            });
        }
        if !self.options.keep_output {
            let _ = std::fs::remove_dir_all(&output);
        }
        match end {
            End::TimedOut => Outcome::TimedOut {
                elapsed_s: elapsed,
                cost_usd: price * elapsed / 3600.0,
            },
            End::Interrupted => failed("interrupted by the user".into(), elapsed, price),
            End::Exited(Err(e)) => failed(format!("waiting for spark-submit: {e}"), elapsed, price),
            End::Exited(Ok(status)) if !status.success() => {
                use std::os::unix::process::ExitStatusExt;
                let how = match (status.code(), status.signal()) {
                    (Some(c), _) => format!("spark-submit exit code {c}"),
                    (None, Some(s)) => format!("spark-submit killed by signal {s}"),
                    _ => "spark-submit failed".to_string(),
                };
                failed(
                    format!("{how}: {}", error_line(&stderr, 300)),
                    elapsed,
                    price,
                )
            }
            End::Exited(Ok(_)) => match parse_driver_output(&stdout) {
                None => failed(
                    format!("the driver printed no `{}` line", RESULT_PREFIX.trim()),
                    elapsed,
                    price,
                ),
                Some(r) => {
                    let mut metrics = r.metrics;
                    metrics.insert("wall_s".into(), elapsed);
                    if let Some(d) = match &r.app_id {
                        Some(id) => self.app_duration_s(id).await,
                        None => None,
                    } {
                        metrics.insert("spark_app_duration_s".into(), d);
                    }
                    if self.spec.objective == Objective::Runtime {
                        metrics.insert("true_cost_usd".into(), true_price * r.runtime_s / 3600.0);
                    }
                    Outcome::Completed {
                        runtime_s: r.runtime_s,
                        cost_usd: price * r.runtime_s / 3600.0,
                        metrics,
                    }
                }
            },
        }
    }
}

fn kill_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid.filter(|&p| p > 0) {
        // SAFETY: killpg only sends a signal; a group that is already gone gives ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Reads a stream to its end, keeping its last `keep` bytes and its length.
async fn capture<R: AsyncRead + Unpin>(stream: Option<R>, keep: usize) -> (Vec<u8>, u64) {
    let (mut tail, mut total) = (Vec::new(), 0u64);
    let Some(mut stream) = stream else {
        return (tail, total);
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > keep.saturating_mul(2).max(4096) {
            let cut = tail.len() - keep;
            tail.drain(..cut);
        }
    }
    if tail.len() > keep {
        let cut = tail.len() - keep;
        tail.drain(..cut);
    }
    (tail, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::spacefile::{parse, BackendKind, LoadOptions};

    fn spec(dims: &str) -> SearchSpec {
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"executors\"\n\
             [catalogue.dimensions]\n{dims}\n\
             [workload]\ndataset = \"flowers\"\ntasks = [\"preprocess\", \"read-speed\"]\n\
             [workload.params]\nquality = 90\nbatch_sizes = \"4, 8\"\n"
        );
        parse(
            &text,
            Path::new("/tmp/space.toml"),
            &LoadOptions {
                backend: BackendKind::Spark,
                prices: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn shape_comes_from_dimensions_with_defaults() {
        let s = spec("executors = [1, 2]\nexecutor_cores = [2]\npartitions = [8]");
        let sh = SparkShape::of(&s.configs[1], 512).unwrap();
        assert_eq!(
            sh,
            SparkShape {
                executors: 2,
                executor_cores: 2,
                executor_memory_mib: 512,
                partitions: 8
            }
        );
        assert_eq!(sh.total_cores(), 4);
        let s = spec("executors = [3]\nexecutor_memory_gib = [1.5]");
        let sh = SparkShape::of(&s.configs[0], 512).unwrap();
        assert_eq!(
            (sh.executor_cores, sh.executor_memory_mib, sh.partitions),
            (1, 1536, 6)
        );
        let s = spec("executors = [2]\ncores = [1.5]");
        let err = SparkShape::of(&s.configs[0], 512).unwrap_err();
        assert!(
            err.contains("executor cores") && err.contains("1.5"),
            "{err}"
        );
    }

    #[test]
    fn job_parameters_take_dimensions_over_fixed_params() {
        let s = spec("executors = [1]\nquality = [80]");
        let p = JobParams::of(&s, &s.configs[0], "/data".into()).unwrap();
        assert_eq!((p.quality, p.size), (80, 192));
        assert_eq!(p.batch_sizes, "4,8");
        let args = p.args("/bin/cp", "/out", 4);
        let joined = args.join(" ");
        assert!(
            joined.contains(
                "--input /data --output /out --partitions 4 --tasks preprocess,read-speed"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("--quality 80 --batch-sizes 4,8"),
            "{joined}"
        );
        let s = spec("executors = [1]\nbatch_numbers = [\"2,x\"]");
        let err = JobParams::of(&s, &s.configs[0], String::new()).unwrap_err();
        assert!(err.contains("batch_numbers"), "{err}");
    }

    #[test]
    fn driver_output_is_parsed_from_the_last_result_line() {
        let out = "noise\nCHERRYPICK_RESULT {\"runtime_s\": 1.0}\n\
                   CHERRYPICK_RESULT {\"runtime_s\": 12.5, \"app_id\": \"app-1\", \"spark_tasks\": 8, \"note\": \"x\"}\n";
        let r = parse_driver_output(out).unwrap();
        assert_eq!(r.runtime_s, 12.5);
        assert_eq!(r.app_id.as_deref(), Some("app-1"));
        assert_eq!(r.metrics.get("spark_tasks"), Some(&8.0));
        assert!(!r.metrics.contains_key("note") && !r.metrics.contains_key("runtime_s"));
        assert!(parse_driver_output("CHERRYPICK_RESULT {\"runtime_s\": 0}").is_none());
        assert!(parse_driver_output("CHERRYPICK_RESULT not json").is_none());
        assert!(parse_driver_output("").is_none());
    }

    #[test]
    fn error_line_prefers_the_last_error() {
        let err =
            "INFO a\nTraceback\nRuntimeError: workload preprocess exited with 2\nINFO shutdown\n";
        assert_eq!(
            error_line(err, 300),
            "RuntimeError: workload preprocess exited with 2"
        );
        assert_eq!(error_line("a\nlast line\n\n", 4), "last");
        assert_eq!(error_line("", 10), "");
    }

    #[test]
    fn the_command_line_carries_the_shape() {
        let s = Arc::new(spec(
            "executors = [2]\nexecutor_cores = [1]\npartitions = [4]",
        ));
        let dir = std::env::temp_dir().join(format!("cp-spark-cmd-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("flowers/daisy")).unwrap();
        std::fs::write(dir.join("flowers/daisy/a.jpg"), b"x").unwrap();
        let mut spec = (*s).clone();
        spec.path = dir.join("space.toml");
        let opts = SparkOptions {
            master_url: "spark://127.0.0.1:7077".into(),
            spark_submit: "/opt/spark-submit".into(),
            binary: std::env::current_exe().unwrap(),
            python: Some("/venv/bin/python".into()),
            master_webui: None,
            scratch: dir.join("scratch"),
            default_executor_memory_mib: 512,
            driver_memory_mib: 512,
            conf: vec![("spark.x".into(), "y".into())],
            log_bytes: 1024,
            keep_output: false,
        };
        let r = SparkRunner::new(Arc::new(spec), opts).unwrap();
        let c = r.command(0, Path::new("/out")).unwrap().join(" ");
        assert!(
            c.starts_with("/opt/spark-submit --master spark://127.0.0.1:7077"),
            "{c}"
        );
        assert!(
            c.contains("--total-executor-cores 2 --executor-cores 1 --executor-memory 512m"),
            "{c}"
        );
        assert!(c.contains("--conf spark.default.parallelism=4"), "{c}");
        assert!(c.contains("--conf spark.x=y"), "{c}");
        assert!(c.contains("job.py --binary "), "{c}");
        assert_eq!(
            std::fs::read_to_string(dir.join("scratch/job.py")).unwrap(),
            JOB_PY
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
