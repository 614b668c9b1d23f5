//! The PySpark job both Spark backends run (`spark` on a standalone cluster, `dataproc` on a
//! cluster made per probe): the driver script `launch/spark/job.py`, embedded in the binary;
//! the shape a configuration asks of Spark; the job's parameters and command line; and the
//! driver's result line.
//!
//! Which dimension of the space file sets what (the first name present wins):
//! - executors: `executors`, `workers`, else the catalogue's `count`
//! - cores per executor: `executor_cores`, `cores`, else 1
//! - executor memory (MiB): `executor_memory_mib`, `executor_memory_gib` x 1024, else the default
//! - partitions (= shards written and preprocessing tasks): `partitions`, `shards`, else
//!   2 x executors x cores
//!
//! Workload parameters (`[workload.params]` or a dimension of the same name, read by
//! [`crate::params`]): `size`, `quality`, `batch_sizes` and `batch_numbers` (lists like "8,16"),
//! `repetitions`, `decode`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use optimizer::{ConfigId, Value};

use crate::limits::MAX_REPORTED_S;
use crate::params::{ParamError, Params};
use crate::spacefile::{ConfigInfo, SearchSpec, Task};

/// The PySpark driver, shipped inside the binary so a search needs nothing but `cherrypick`.
pub const JOB_PY: &str = include_str!("../spark/job.py");
/// Prefix of the driver's result line on its stdout (a JSON object follows).
pub const RESULT_PREFIX: &str = "CHERRYPICK_RESULT ";

/// What a configuration asks Spark for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparkShape {
    pub executors: u32,
    pub executor_cores: u32,
    pub executor_memory_mib: u32,
    pub partitions: u32,
}

/// Why a configuration's dimensions make no Spark shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// A dimension the shape reads is categorical.
    #[error("dimension `{dimension}` must be a number, got `{got}`")]
    NotANumber { dimension: String, got: String },
    /// A count that must be a whole number of at least 1 is not.
    #[error("{what} must be a whole number >= 1, got {}", optimizer::Shown(*got))]
    NotWhole { what: &'static str, got: f64 },
    /// Executors times cores per executor (or twice that, the default partition count)
    /// does not fit a 32-bit count.
    #[error("{executors} executors x {cores} cores each is more cores than a cluster can have (at most {} in all)", u32::MAX / 2)]
    TooManyCores { executors: u32, cores: u32 },
}

impl SparkShape {
    /// Reads the shape from a configuration's dimensions (see the module documentation).
    pub fn of(info: &ConfigInfo, default_memory_mib: u32) -> Result<SparkShape, ShapeError> {
        let num = |names: &[&str]| -> Result<Option<f64>, ShapeError> {
            for n in names {
                match info.params.get(*n) {
                    Some(Value::Num(x)) => return Ok(Some(*x)),
                    Some(Value::Cat(s)) => {
                        return Err(ShapeError::NotANumber {
                            dimension: n.to_string(),
                            got: s.clone(),
                        })
                    }
                    None => {}
                }
            }
            Ok(None)
        };
        let whole = |what: &'static str, x: f64| -> Result<u32, ShapeError> {
            if x.fract() == 0.0 && x >= 1.0 && x <= f64::from(u32::MAX) {
                Ok(x as u32)
            } else {
                Err(ShapeError::NotWhole { what, got: x })
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
        // Twice the total is the default partition count: both must fit, else the product
        // would wrap (to 0 in a release build) and Spark would be handed a nonsense shape.
        let twice_total = executors
            .checked_mul(executor_cores)
            .and_then(|t| t.checked_mul(2))
            .ok_or(ShapeError::TooManyCores {
                executors,
                cores: executor_cores,
            })?;
        let partitions = match num(&["partitions", "shards"])? {
            Some(p) => whole("partitions", p)?,
            None => twice_total,
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

/// Why the space file gives a configuration no PySpark job to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobParamsError {
    /// The space file has no `[workload]` section.
    #[error("{}: the spark and dataproc backends need a [workload] section (dataset, tasks)", .path.display())]
    NoWorkload { path: PathBuf },
    /// `[workload] tasks` names no task.
    #[error("{}: [workload] tasks is empty", .path.display())]
    NoTasks { path: PathBuf },
    /// A workload parameter has a value it cannot take.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// More repetitions than the driver takes.
    #[error("repetitions is too large")]
    TooManyRepetitions,
    /// A fixed `[workload] params` entry the job reads nowhere (a typo would run the default).
    #[error("{}: [workload] params: `{name}` is not a parameter of the spark and dataproc backends (known: {})", .path.display(), KNOWN_PARAMS.join(", "))]
    UnknownParam { path: PathBuf, name: String },
}

/// Names the spark and dataproc backends read, as dimensions or fixed parameters.
pub const KNOWN_PARAMS: &[&str] = &[
    "executors",
    "workers",
    "executor_cores",
    "cores",
    "executor_memory_mib",
    "executor_memory_gib",
    "partitions",
    "shards",
    "size",
    "quality",
    "batch_sizes",
    "batch_numbers",
    "repetitions",
    "decode",
];

/// Why a configuration cannot run as a PySpark job: its Spark shape or its workload.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Params(#[from] JobParamsError),
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
    /// From the space file's `[workload]` and configuration `id` (see [`crate::params`]).
    pub fn of(spec: &SearchSpec, id: ConfigId, input: String) -> Result<JobParams, JobParamsError> {
        let workload = spec
            .workload
            .as_ref()
            .ok_or_else(|| JobParamsError::NoWorkload {
                path: spec.path.clone(),
            })?;
        if workload.tasks.is_empty() {
            return Err(JobParamsError::NoTasks {
                path: spec.path.clone(),
            });
        }
        if let Some(name) = crate::params::unknown_fixed(spec, KNOWN_PARAMS) {
            return Err(JobParamsError::UnknownParam {
                path: spec.path.clone(),
                name: name.to_string(),
            });
        }
        let p = Params::of(spec, id);
        let list = |name: &str, default: &str| -> Result<String, ParamError> {
            Ok(match p.list(name)? {
                Some(v) => v.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                None => default.to_string(),
            })
        };
        Ok(JobParams {
            input,
            tasks: workload.tasks.clone(),
            size: p.size()?.unwrap_or(192),
            quality: u32::from(p.quality()?.unwrap_or(95)),
            batch_sizes: list("batch_sizes", "8,16")?,
            batch_numbers: list("batch_numbers", "2,4")?,
            repetitions: p.count(&["repetitions"])?.map_or(Ok(1), |r| {
                u32::try_from(r).map_err(|_| JobParamsError::TooManyRepetitions)
            })?,
            decode: p.flag("decode")?.unwrap_or(false),
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

/// Finds the last result line in a driver's output. Err says what is wrong, to follow "the
/// driver" or "job N": no result line, one that is no JSON object, or one whose `runtime_s` is
/// no number of seconds > 0 and at most [`MAX_REPORTED_S`].
pub fn parse_driver_output(stdout: &str) -> Result<DriverResult, String> {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| format!("printed no `{}` line", RESULT_PREFIX.trim()))?;
    let not_an_object = || {
        format!(
            "printed a `{}` line that is no JSON object: {}",
            RESULT_PREFIX.trim(),
            crate::process::truncate(line.trim(), 100)
        )
    };
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| not_an_object())?;
    let obj = v.as_object().ok_or_else(not_an_object)?;
    let runtime = obj.get("runtime_s");
    let runtime_s = runtime
        .and_then(serde_json::Value::as_f64)
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= MAX_REPORTED_S)
        .ok_or_else(|| {
            format!(
                "reported runtime_s={}: a runtime is a number of seconds > 0 and at most {:e}",
                match runtime {
                    None => "(none)".to_string(),
                    Some(serde_json::Value::Number(n)) => {
                        optimizer::Shown(n.as_f64().unwrap_or(f64::NAN)).to_string()
                    }
                    Some(r) => crate::process::truncate(&r.to_string(), 100).to_string(),
                },
                MAX_REPORTED_S
            )
        })?;
    let metrics = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "runtime_s")
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite())?)))
        .collect();
    Ok(DriverResult {
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
    crate::process::truncate(pick, max).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spacefile::{parse, BackendKind, LoadOptions};
    use std::path::Path;

    /// A spark space file with `dims` as its dimensions (also used by the spark runner's tests).
    pub(crate) fn spec(dims: &str) -> SearchSpec {
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
        assert_eq!(
            err,
            ShapeError::NotWhole {
                what: "executor cores",
                got: 1.5
            }
        );
        assert_eq!(
            err.to_string(),
            "executor cores must be a whole number >= 1, got 1.5"
        );
        // 65536 x 65536 wraps a u32 to 0: refused, naming both counts.
        let s = spec("executors = [65536]\nexecutor_cores = [65536]");
        let err = SparkShape::of(&s.configs[0], 512).unwrap_err();
        assert_eq!(
            err,
            ShapeError::TooManyCores {
                executors: 65536,
                cores: 65536
            }
        );
        assert!(err.to_string().contains("65536 executors x 65536 cores"));
        // Partitions given, total fits: twice it must still fit (the default it replaces).
        let s = spec("executors = [65536]\nexecutor_cores = [32768]\npartitions = [8]");
        assert!(matches!(
            SparkShape::of(&s.configs[0], 512),
            Err(ShapeError::TooManyCores { .. })
        ));
    }

    #[test]
    fn job_parameters_take_dimensions_over_fixed_params() {
        let s = spec("executors = [1]\nquality = [80]");
        let p = JobParams::of(&s, 0, "/data".into()).unwrap();
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
        let err = JobParams::of(&s, 0, String::new()).unwrap_err();
        assert!(
            matches!(&err, JobParamsError::Param(p) if p.name == "batch_numbers"),
            "{err:?}"
        );
        assert!(err.to_string().contains("batch_numbers"), "{err}");
        // A fixed parameter neither backend reads is a typo, named with the file.
        let mut s = spec("executors = [1]");
        let params = &mut s.workload.as_mut().unwrap().params;
        let quality = params["quality"].clone();
        params.insert("batch_size".into(), quality);
        let err = JobParams::of(&s, 0, String::new()).unwrap_err().to_string();
        assert!(
            err.contains("/tmp/space.toml") && err.contains("`batch_size`"),
            "{err}"
        );
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
        let err = |out: &str| parse_driver_output(out).unwrap_err();
        for bad in ["0", "-5", "1e300", "\"12\"", "null"] {
            let e = err(&format!("CHERRYPICK_RESULT {{\"runtime_s\": {bad}}}"));
            assert!(
                e.starts_with(&format!("reported runtime_s={bad}: a runtime is a number")),
                "{e}"
            );
        }
        assert!(err("CHERRYPICK_RESULT {}").starts_with("reported runtime_s=(none)"));
        assert_eq!(
            err("CHERRYPICK_RESULT {\"runtime_s\": NaN}"),
            "printed a `CHERRYPICK_RESULT` line that is no JSON object: {\"runtime_s\": NaN}"
        );
        assert!(err("CHERRYPICK_RESULT [1]").contains("no JSON object"));
        assert_eq!(err(""), "printed no `CHERRYPICK_RESULT` line");
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
}
