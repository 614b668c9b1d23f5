//! The `spark` backend: submits the workload (the PySpark job of [`crate::pyspark`]) to a Spark
//! standalone cluster with `spark-submit`, under a configuration's executors, cores per
//! executor, executor memory and partitions. The probe's runtime is the driver's own timing;
//! Spark's application figures go into the outcome's metrics; the probe's time limit stops
//! spark-submit's whole process group ([`crate::process`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use optimizer::{ConfigId, ProbeLimits, Report, Runner, Space, SPEND_METRIC};

use crate::error::Error;
use crate::limits::{completed, failed, past_limit, timed_out};
use crate::process::{self, End, Keep};
use crate::pyspark::{error_line, parse_driver_output, JobError, JobParams, SparkShape, JOB_PY};
use crate::spacefile::SearchSpec;

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
    pub fn from_env(scratch: PathBuf) -> Result<SparkOptions, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let master_url = var("SPARK_MASTER_URL").ok_or_else(|| {
            Error::Setup(
                "SPARK_MASTER_URL is not set: start a cluster with .ci/start-spark.sh and \
                 `source out/spark/env`, or point it at your own master (spark://host:7077)"
                    .into(),
            )
        })?;
        let spark_submit = match (var("SPARK_SUBMIT"), var("SPARK_HOME")) {
            (Some(s), _) => PathBuf::from(s),
            (None, Some(h)) => Path::new(&h).join("bin/spark-submit"),
            (None, None) => PathBuf::from("spark-submit"),
        };
        let binary = match var("CHERRYPICK_BINARY") {
            Some(b) => PathBuf::from(b),
            None => std::env::current_exe()
                .map_err(|e| Error::Setup(format!("cannot find the running executable: {e}")))?,
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

impl SparkOptions {
    /// Fails unless `spark_submit` is a file (given as a path) or a file on `PATH` (a bare
    /// name): else every probe fails to start and the search ends with nothing measured.
    pub fn check_spark_submit(&self) -> Result<(), Error> {
        let p = &self.spark_submit;
        let found = if p.components().count() > 1 {
            p.is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(p).is_file()))
        };
        if found {
            Ok(())
        } else {
            Err(Error::Setup(format!(
                "spark-submit `{}` was not found: set SPARK_HOME (its bin/spark-submit is run) \
                 or SPARK_SUBMIT, or put spark-submit on PATH",
                p.display()
            )))
        }
    }
}

/// Runs probes on a Spark standalone cluster.
pub struct SparkRunner {
    spec: Arc<SearchSpec>,
    options: SparkOptions,
    job: PathBuf,
    input: PathBuf,
    probes: AtomicUsize,
}

impl SparkRunner {
    /// Checks the options and every configuration's shape, touching nothing: a `--dry-run`
    /// stops here. [`prepare`](Self::prepare) makes the dataset and writes the driver script.
    pub fn new(spec: Arc<SearchSpec>, options: SparkOptions) -> Result<SparkRunner, Error> {
        let setup = Error::Setup;
        let workload = spec.workload.as_ref().ok_or_else(|| {
            setup(format!(
                "{}: the spark backend needs a [workload] section (dataset, tasks)",
                spec.path.display()
            ))
        })?;
        let input = spec.resolve(&workload.dataset);
        crate::local::local_folder(&spec, "workload.dataset", &workload.dataset, &input)?;
        crate::local::scratch_outside_dataset(&spec, &options.scratch, &input)?;
        let input = std::path::absolute(&input).unwrap_or(input);
        if !options.binary.is_file() {
            return Err(setup(format!(
                "the cherrypick binary {} does not exist (set CHERRYPICK_BINARY)",
                options.binary.display()
            )));
        }
        // Check every configuration up front: a bad dimension is the file's fault, not a probe's.
        for (i, info) in spec.configs.iter().enumerate() {
            let check = || -> Result<(), JobError> {
                SparkShape::of(info, options.default_executor_memory_mib)?;
                JobParams::of(&spec, i, String::new())?;
                Ok(())
            };
            check().map_err(|e| {
                setup(format!(
                    "configuration `{}`: {e}",
                    spec.space.config(i).name
                ))
            })?;
        }
        let scratch = std::path::absolute(&options.scratch).unwrap_or(options.scratch.clone());
        let job = scratch.join("job.py");
        Ok(SparkRunner {
            spec,
            options: SparkOptions { scratch, ..options },
            job,
            input,
            probes: AtomicUsize::new(0),
        })
    }

    /// Makes the synthetic dataset if the space file asks for one and its folder is empty, and
    /// writes the driver script into the scratch folder: what a search needs before its first
    /// probe, and a dry run leaves undone. Returns the number of images generated.
    pub fn prepare(&self) -> Result<usize, Error> {
        let setup = Error::Setup;
        let generate = self
            .spec
            .workload
            .as_ref()
            .and_then(|w| w.generate.as_ref());
        let made = crate::local::prepare_dataset(&self.input, generate)?;
        let scratch = &self.options.scratch;
        std::fs::create_dir_all(scratch)
            .map_err(|e| setup(format!("cannot create {}: {e}", scratch.display())))?;
        std::fs::write(&self.job, JOB_PY)
            .map_err(|e| setup(format!("cannot write {}: {e}", self.job.display())))?;
        Ok(made)
    }

    /// The dataset folder the probes read.
    pub fn dataset(&self) -> &Path {
        &self.input
    }

    /// The spark-submit command line for configuration `id` writing to `output`.
    pub fn command(&self, id: ConfigId, output: &Path) -> Result<Vec<String>, JobError> {
        let info = &self.spec.configs[id];
        let shape = SparkShape::of(info, self.options.default_executor_memory_mib)?;
        let params = JobParams::of(&self.spec, id, self.input.display().to_string())?;
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

    /// Checks that `parallel` probes of the configuration taking the most cores fit the
    /// cluster's free cores now (read from the master's web UI): probes sharing executors would
    /// measure each other's contention, not their configuration.
    pub async fn check_parallel(&self, parallel: usize) -> Result<(), Error> {
        if parallel <= 1 {
            return Ok(());
        }
        let refuse = |why: String| Error::Setup(format!("--parallel {parallel}: {why}"));
        let widest = self
            .spec
            .configs
            .iter()
            .filter_map(|info| {
                SparkShape::of(info, self.options.default_executor_memory_mib)
                    .ok()
                    .map(|s| s.total_cores() as usize)
            })
            .max()
            .unwrap_or(1);
        let base = self.options.master_webui.as_ref().ok_or_else(|| {
            refuse(
                "several Spark probes at once need the cluster's free cores from the master's \
                 web UI: set SPARK_MASTER_WEBUI_URL (http://host:8080)"
                    .into(),
            )
        })?;
        let url = format!("{}/json/", base.trim_end_matches('/'));
        let status: serde_json::Value = async {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e| refuse(format!("cannot read the cluster's cores from {url}: {e}")))?;
        let count = |k: &str| status.get(k).and_then(serde_json::Value::as_u64);
        let (Some(cores), Some(used)) = (count("cores"), count("coresused")) else {
            return Err(refuse(format!("{url} gives no `cores` and `coresused`")));
        };
        let free = cores.saturating_sub(used) as usize;
        if parallel * widest > free {
            return Err(refuse(format!(
                "a configuration of this space takes {widest} executor core(s) and the cluster \
                 has {free} free of {cores}: {parallel} at once could need {}, and probes \
                 sharing executors would measure each other; use --parallel {} or fewer",
                parallel * widest,
                (free / widest).max(1)
            )));
        }
        Ok(())
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

impl Runner for SparkRunner {
    /// The price for the time limit plus the kill grace and its confirmation.
    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        process::worst_case_usd(space, config, limits, GRACE)
    }

    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Report {
        let price = space.config(config).price_per_hour;
        let true_price = self.spec.configs[config].price_per_hour;
        let n = self.probes.fetch_add(1, Ordering::SeqCst);
        let output = self
            .options
            .scratch
            .join(format!("probe-{n:03}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&output);
        if let Err(e) = std::fs::create_dir_all(&output) {
            let reason = format!("cannot create {}: {e}", output.display());
            return Report::new(failed(reason, 0.0, price));
        }
        let argv = match self.command(config, &output) {
            Ok(a) => a,
            Err(e) => return Report::new(failed(e.to_string(), 0.0, price)),
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&self.options.scratch);
        if let Some(py) = &self.options.python {
            cmd.env("PYSPARK_PYTHON", py);
        }
        let keep = self.options.log_bytes;
        // stdout is small (the driver prints little) and holds the result line: keep it whole
        // up to a generous bound; stderr is Spark's log: keep its tail. Stopping the driver ends
        // the application: the master then kills its executors.
        let limits_keep = Keep {
            stdout_bytes: keep.max(64 * 1024),
            stderr_bytes: keep,
            metrics: false,
            grace: GRACE,
        };
        let done = match process::run(&mut cmd, limits, limits_keep).await {
            Ok(d) => d,
            Err(e) => {
                let reason = format!("could not start {}: {e}", argv[0]);
                return Report::new(failed(reason, 0.0, price));
            }
        };
        let elapsed = done.elapsed_s;
        // What the probe is charged for: from launch until spark-submit's group was gone.
        let charged = done.charged_s;
        let log = done.log(argv.join(" "), keep);
        if !self.options.keep_output {
            let _ = std::fs::remove_dir_all(&output);
        }
        let outcome = match done.end {
            End::TimedOut => timed_out(charged, price),
            End::Interrupted => failed("interrupted by the user".into(), charged, price),
            End::Exited(Err(e)) => failed(format!("waiting for spark-submit: {e}"), charged, price),
            End::Exited(Ok(status)) if !status.success() => failed(
                format!(
                    "spark-submit {}: {}",
                    process::describe_exit(&status),
                    error_line(&done.stderr.text(), 300)
                ),
                charged,
                price,
            ),
            End::Exited(Ok(_)) => match parse_driver_output(&done.stdout.text()) {
                Err(why) => failed(format!("the driver {why}"), charged, price),
                Ok(r) => {
                    if let Some(timed_out) = past_limit(r.runtime_s, limits, charged, price) {
                        return Report::new(timed_out).with_log(log);
                    }
                    let mut metrics = r.metrics;
                    metrics.insert("wall_s".into(), elapsed);
                    if let Some(d) = match &r.app_id {
                        Some(id) => self.app_duration_s(id).await,
                        None => None,
                    } {
                        metrics.insert("spark_app_duration_s".into(), d);
                    }
                    // The model learns the driver's runtime; the spend is the wall time.
                    metrics.insert(SPEND_METRIC.into(), price * charged / 3600.0);
                    completed(r.runtime_s, price, true_price, self.spec.objective, metrics)
                }
            },
        };
        Report::new(outcome).with_log(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyspark::tests::spec;
    use optimizer::Outcome;

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
        // A spark-submit that is not there is refused before a search starts; `sh`, say, is
        // found on PATH.
        let e = opts.check_spark_submit().unwrap_err().to_string();
        assert!(
            e.contains("spark-submit `/opt/spark-submit` was not found"),
            "{e}"
        );
        for missing in ["no-such-spark-submit-here", "/nonexistent/bin/spark-submit"] {
            let o = SparkOptions {
                spark_submit: missing.into(),
                ..opts.clone()
            };
            assert!(o.check_spark_submit().is_err(), "{missing}");
        }
        let sh = SparkOptions {
            spark_submit: "sh".into(),
            ..opts.clone()
        };
        sh.check_spark_submit().unwrap();
        let r = SparkRunner::new(Arc::new(spec), opts).unwrap();
        // Nothing written until the search prepares (a dry run never does).
        assert!(!dir.join("scratch").exists());
        r.prepare().unwrap();
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

    /// A driver's reported runtime is checked as the other backends check it: past the probe's
    /// time limit the probe timed out (charged the limit), one that is no runtime fails the
    /// probe naming it. Real Spark cannot be made to report a runtime the wall clock did not
    /// see, so a script prints the driver's result line in spark-submit's place.
    #[test]
    fn a_driver_runtime_past_the_limit_or_no_runtime_is_not_completed() {
        let s = spec("executors = [2]\nexecutor_cores = [1]\npartitions = [4]");
        let dir = std::env::temp_dir().join(format!("cp-spark-past-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("flowers/daisy")).unwrap();
        std::fs::write(dir.join("flowers/daisy/a.jpg"), b"x").unwrap();
        let mut spec = s.clone();
        spec.path = dir.join("space.toml");
        let spec = Arc::new(spec);
        let limits = ProbeLimits {
            timeout: Some(std::time::Duration::from_secs(60)),
            interrupt: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (result, want) in [
            ("{\"runtime_s\": 99999}", "timed-out"),
            ("{\"runtime_s\": -5}", "failed"),
            ("{\"runtime_s\": 12.5}", "completed"),
        ] {
            let submit = dir.join("spark-submit");
            std::fs::write(
                &submit,
                format!(
                    "#!/bin/sh\necho '{}{result}'\n",
                    crate::pyspark::RESULT_PREFIX
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&submit, std::fs::Permissions::from_mode(0o755)).unwrap();
            let opts = SparkOptions {
                master_url: "spark://127.0.0.1:7077".into(),
                spark_submit: submit,
                binary: std::env::current_exe().unwrap(),
                python: None,
                master_webui: None,
                scratch: dir.join("scratch"),
                default_executor_memory_mib: 512,
                driver_memory_mib: 512,
                conf: Vec::new(),
                log_bytes: 1024,
                keep_output: false,
            };
            let r = SparkRunner::new(spec.clone(), opts).unwrap();
            r.prepare().unwrap();
            let report = rt.block_on(r.run(&spec.space, 0, &limits));
            assert_eq!(
                report.outcome.status(),
                want,
                "{result}: {:?}",
                report.outcome
            );
            match &report.outcome {
                Outcome::TimedOut { elapsed_s, .. } => assert_eq!(*elapsed_s, 60.0),
                Outcome::Failed { reason, .. } => {
                    assert!(reason.contains("runtime_s=-5"), "{reason}")
                }
                Outcome::Completed { runtime_s, .. } => assert_eq!(*runtime_s, 12.5),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
