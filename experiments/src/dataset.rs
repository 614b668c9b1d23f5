//! The in-memory form of a recorded-run dataset (workloads, their spaces and recorded outcomes),
//! where datasets live on disk, the loader errors, and the normalisation every report uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use optimizer::{ConfigId, Outcome, Space, SpaceError};

/// The range of a recorded runtime, cost or price (seconds, USD, USD per hour) in every loader:
/// wide enough for a serverless call billed in nano-dollars and a year-long job, narrow enough
/// that a product or sum of 10^6 of them stays finite and a quotient of two stays above zero.
/// Messages spell them `1e-15` and `1e15`.
pub(crate) const MIN_AMOUNT: f64 = 1e-15;
pub(crate) const MAX_AMOUNT: f64 = 1e15;

/// Errors reading a dataset. Every variant names the file (and line and field where there is one).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // Not `source` fields: the message says them already, and `{:#}` would print them twice.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: line {line}: field `{field}`: {problem}", path.display())]
    Field {
        path: PathBuf,
        line: u64,
        field: String,
        problem: String,
    },
    /// A line that is not a CSV record (no single field to name).
    #[error("{}: line {line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    #[error("{}: field `{field}`: {problem}", path.display())]
    JsonField {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("dataset folder {} does not exist (pass --data-dir DIR or set CHERRYPICK_DATA_DIR)", path.display())]
    MissingDir { path: PathBuf },
    #[error(
        "unknown dataset `{0}`: expected `scout`, `cherrypick` or the path of a generic CSV file"
    )]
    UnknownDataset(String),
    #[error(
        "--dataset {0}: a folder, not a dataset name; for Scout's or CherryPick's recorded runs \
         in it, give --dataset scout or --dataset cherrypick with --data-dir {0}"
    )]
    DatasetIsAFolder(String),
    #[error("no workload named in `{list}` ({dataset}): give `all` or names separated by commas")]
    NoWorkloadNamed { list: String, dataset: String },
    #[error("unknown workload `{name}` in {dataset} (known: {known})")]
    UnknownWorkload {
        name: String,
        dataset: String,
        known: String,
    },
    #[error("{}: workload `{workload}`: {error}", path.display())]
    Space {
        path: PathBuf,
        workload: String,
        error: SpaceError,
    },
    #[error("workload `{workload}`: {}", match limit_s {
        Some(t) => format!("no configuration completes within the runtime limit of {} s", optimizer::Shown(*t)),
        None => "no configuration has a completed run, so there is no optimum to measure against".into(),
    })]
    NothingFeasible {
        workload: String,
        limit_s: Option<f64>,
    },
}

/// Which dataset to load: one of the two shared recorded sets or a generic CSV v1 file.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    Scout,
    Cherrypick,
    Csv(PathBuf),
}

impl DatasetSpec {
    /// Parses the `--dataset` argument: `scout`, `cherrypick`, or a path to a `.csv` file.
    pub fn parse(s: &str) -> Result<DatasetSpec, DataError> {
        match s {
            "scout" => Ok(DatasetSpec::Scout),
            "cherrypick" => Ok(DatasetSpec::Cherrypick),
            _ if s.to_ascii_lowercase().ends_with(".csv") || Path::new(s).is_file() => {
                Ok(DatasetSpec::Csv(PathBuf::from(s)))
            }
            _ if Path::new(s).is_dir() => Err(DataError::DatasetIsAFolder(s.to_string())),
            _ => Err(DataError::UnknownDataset(s.to_string())),
        }
    }
    /// What [`load`] reads: the dataset's folder, or the CSV file.
    pub fn source(&self, options: &LoadOptions) -> PathBuf {
        let dir = |sub: &str| {
            options
                .data_dir
                .clone()
                .unwrap_or_else(|| data_root().join(sub))
        };
        match self {
            DatasetSpec::Scout => dir("scout"),
            DatasetSpec::Cherrypick => dir("cherrypick"),
            DatasetSpec::Csv(path) => path.clone(),
        }
    }
    /// Name used in reports (`scout`, `cherrypick`, or the CSV's path).
    pub fn name(&self) -> String {
        match self {
            DatasetSpec::Scout => "scout".into(),
            DatasetSpec::Cherrypick => "cherrypick".into(),
            DatasetSpec::Csv(p) => p.display().to_string(),
        }
    }
}

/// Loader settings.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The dataset's own folder (`--data-dir`); else `data_root()/<scout|cherrypick>`.
    pub data_dir: Option<PathBuf>,
    /// Generic CSV: seconds a failed run is charged for (default: the workload's largest runtime).
    pub failed_runtime_s: Option<f64>,
    /// CherryPick data: keep the 16-core clusters the authors' experiments drop.
    pub keep_16_core: bool,
}

/// Mean cost and runtime of a configuration's completed runs: what the reports normalise by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reference {
    pub cost_usd: f64,
    pub runtime_s: f64,
}

/// One workload: the space a strategy searches and what every configuration did when it was run.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub space: Arc<Space>,
    /// Recorded runs per configuration (at least one each); repeated rows are repeated runs.
    pub runs: Vec<Vec<Outcome>>,
    /// Per configuration, the mean of its completed runs (`None` if none completed).
    pub reference: Vec<Option<Reference>>,
}

impl Workload {
    /// Builds a workload; `runs[i]` are the recorded outcomes of configuration `i`.
    pub fn new(name: String, space: Space, runs: Vec<Vec<Outcome>>) -> Workload {
        debug_assert_eq!(space.len(), runs.len());
        let reference = runs
            .iter()
            .map(|rs| {
                let done: Vec<(f64, f64)> = rs
                    .iter()
                    .filter_map(|o| match o {
                        Outcome::Completed {
                            runtime_s,
                            cost_usd,
                            ..
                        } => Some((*cost_usd, *runtime_s)),
                        _ => None,
                    })
                    .collect();
                (!done.is_empty()).then(|| {
                    let n = done.len() as f64;
                    Reference {
                        cost_usd: done.iter().map(|d| d.0).sum::<f64>() / n,
                        runtime_s: done.iter().map(|d| d.1).sum::<f64>() / n,
                    }
                })
            })
            .collect();
        Workload {
            name,
            space: Arc::new(space),
            runs,
            reference,
        }
    }

    /// The normalisation of DESIGN 5 under an optional runtime limit.
    pub fn scale(&self, max_runtime_s: Option<f64>) -> Result<Scale, DataError> {
        let feasible: Vec<Option<f64>> = self
            .reference
            .iter()
            .map(|r| match (r, max_runtime_s) {
                (Some(r), Some(t)) if r.runtime_s > t => None,
                (Some(r), _) => Some(r.cost_usd),
                (None, _) => None,
            })
            .collect();
        let costs = feasible.iter().flatten();
        let optimum = costs.clone().cloned().fold(f64::INFINITY, f64::min);
        let worst = costs.cloned().fold(f64::NEG_INFINITY, f64::max);
        if !optimum.is_finite() {
            return Err(DataError::NothingFeasible {
                workload: self.name.clone(),
                limit_s: max_runtime_s,
            });
        }
        Ok(Scale {
            optimum,
            worst,
            feasible,
        })
    }
}

/// How a workload's costs are normalised: by the cheapest configuration meeting the runtime limit.
///
/// A probe "finds" a configuration when it completes and the configuration is feasible (its mean
/// completed runtime meets the limit); the normalised cost after k probes is the cheapest found
/// configuration's reference cost over `optimum`, and before anything is found it is
/// `worst / optimum` (the most expensive feasible configuration).
#[derive(Debug, Clone)]
pub struct Scale {
    pub optimum: f64,
    pub worst: f64,
    /// Reference cost of each configuration that meets the limit, `None` for the others.
    pub feasible: Vec<Option<f64>>,
}

impl Scale {
    /// Normalised cost credited for a probe of `config` with `outcome`, if it finds anything.
    pub fn found(&self, config: ConfigId, outcome: &Outcome) -> Option<f64> {
        match outcome {
            Outcome::Completed { .. } => self.feasible[config].map(|c| c / self.optimum),
            _ => None,
        }
    }
    /// Ratio charged before any feasible configuration is found.
    pub fn worst_ratio(&self) -> f64 {
        self.worst / self.optimum
    }
}

/// A loaded dataset: its name and workloads in name order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    /// Folder or file the data came from.
    pub source: PathBuf,
    pub workloads: Vec<Workload>,
}

impl Dataset {
    /// Index of a workload by name, or an error listing the known ones.
    pub fn workload_index(&self, name: &str) -> Result<usize, DataError> {
        self.workloads
            .iter()
            .position(|w| w.name == name)
            .ok_or_else(|| DataError::UnknownWorkload {
                name: name.to_string(),
                dataset: self.name.clone(),
                known: self
                    .workloads
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
    /// Resolves `all` or a comma-separated list of names to workload indices.
    pub fn select(&self, list: &str) -> Result<Vec<usize>, DataError> {
        if list.trim() == "all" {
            return Ok((0..self.workloads.len()).collect());
        }
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let i = self.workload_index(name)?;
            if !out.contains(&i) {
                out.push(i);
            }
        }
        if out.is_empty() {
            return Err(DataError::NoWorkloadNamed {
                list: list.to_string(),
                dataset: self.name.clone(),
            });
        }
        Ok(out)
    }
}

/// Where the shared recorded datasets live: `$CHERRYPICK_DATA_DIR`, else `../shared/datasets`
/// relative to the repository root, found as the nearest ancestor (of the working directory,
/// then of the executable) holding a `Cargo.toml` with `../shared/datasets` beside it.
pub fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHERRYPICK_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in &starts {
        for dir in start.ancestors() {
            let candidate = dir.join("../shared/datasets");
            if dir.join("Cargo.toml").is_file() && candidate.is_dir() {
                return candidate.canonicalize().unwrap_or(candidate);
            }
        }
    }
    PathBuf::from("../shared/datasets")
}

/// Loads the dataset named by `spec`.
pub fn load(spec: &DatasetSpec, options: &LoadOptions) -> Result<Dataset, DataError> {
    let source = spec.source(options);
    match spec {
        DatasetSpec::Scout => crate::scout::load(&source),
        DatasetSpec::Cherrypick => crate::cherrypick::load(&source, options.keep_16_core),
        DatasetSpec::Csv(path) => {
            if let Some(dir) = &options.data_dir {
                return Err(DataError::File {
                    path: path.clone(),
                    problem: format!(
                        "--data-dir {} is for `scout` and `cherrypick`: a CSV dataset is its \
                         own file",
                        dir.display()
                    ),
                });
            }
            crate::generic::load(&source, options.failed_runtime_s)
        }
    }
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<String, DataError> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|_| DataError::Io {
        path: path.to_path_buf(),
        error: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// Reads a whole regular file, naming it in the error. Anything else is refused without being
/// read ([`optimizer::open_regular`]): a FIFO would block the command for ever, and a device
/// (`/dev/zero`) be read until memory runs out.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    optimizer::read_regular(path).map_err(io)
}

/// Where each line of a text starts, to name the line of a CSV record from its byte offset:
/// the csv crate's own line count is one short once a file has CRLF line endings (as Excel and
/// Python's `csv` module write them).
pub(crate) struct Lines {
    /// Where each line starts; a line ends at `\n`, `\r\n` or a lone `\r`.
    starts: Vec<u64>,
    /// The runs of line-break bytes (blank lines included), as `[start, end)`.
    breaks: Vec<(u64, u64)>,
}

impl Lines {
    fn new(bytes: &[u8]) -> Lines {
        let is_break = |b: u8| b == b'\n' || b == b'\r';
        let (mut starts, mut breaks) = (vec![0u64], Vec::new());
        let mut i = 0;
        while i < bytes.len() {
            if !is_break(bytes[i]) {
                i += 1;
                continue;
            }
            let run = i;
            while i < bytes.len() && is_break(bytes[i]) {
                i += if bytes[i..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                starts.push(i as u64);
            }
            breaks.push((run as u64, i as u64));
        }
        Lines { starts, breaks }
    }

    /// The line (from 1) of the record at `position`, or 0 when it is not known. The reader
    /// places a record after blank lines, or after a CRLF, inside the run of line breaks before
    /// it: the record starts where that run ends.
    pub(crate) fn of(&self, position: Option<&csv::Position>) -> u64 {
        position.map_or(0, |p| {
            let mut at = p.byte();
            let run = self.breaks.partition_point(|&(_, end)| end <= at);
            if let Some(&(start, end)) = self.breaks.get(run) {
                if start <= at {
                    at = end;
                }
            }
            self.starts.partition_point(|&s| s <= at) as u64
        })
    }
}

/// A CSV reader over a file read whole.
pub(crate) type CsvReader = csv::Reader<std::io::Cursor<Vec<u8>>>;

/// Opens a CSV file (fields trimmed) read whole, with its lines (see [`Lines`]).
pub(crate) fn open_csv(path: &Path) -> Result<(CsvReader, Lines), DataError> {
    let bytes = read_bytes(path)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::File {
            path: path.to_path_buf(),
            problem: "the file is empty: a CSV starts with its header line".into(),
        });
    }
    let lines = Lines::new(&bytes);
    if let Some(at) = unclosed_quote(&bytes) {
        return Err(DataError::Line {
            path: path.to_path_buf(),
            line: lines.starts.partition_point(|&s| s <= at as u64) as u64,
            problem: "a quoted field opened on this line is never closed: the rest of the file \
                      would be read as that one field"
                .into(),
        });
    }
    let reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(std::io::Cursor::new(bytes));
    Ok((reader, lines))
}

/// Where a quoted field that is never closed opens, as the CSV reader quotes (a `"` at the very
/// start of a field opens it, `""` inside is a quote, a lone `"` closes it); the reader would
/// take everything after it, line breaks and all, for that field.
fn unclosed_quote(bytes: &[u8]) -> Option<usize> {
    let mut field_start = true;
    let mut open: Option<usize> = None;
    // A UTF-8 byte order mark is not part of the first field (the reader skips it too).
    let mut i = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    while i < bytes.len() {
        let b = bytes[i];
        match open {
            Some(_) if b == b'"' && bytes.get(i + 1) == Some(&b'"') => i += 1,
            Some(_) if b == b'"' => open = None,
            Some(_) => {}
            None if b == b'"' && field_start => open = Some(i),
            None => field_start = matches!(b, b',' | b'\n' | b'\r'),
        }
        if open.is_some() || b == b'"' {
            field_start = false;
        }
        i += 1;
    }
    open
}

/// Lists a directory's entries sorted by name, naming it in the error.
pub(crate) fn list_dir(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !path.is_dir() {
        return Err(DataError::MissingDir {
            path: path.to_path_buf(),
        });
    }
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// A CSV reader's error as a data error naming the file (and the line, for a bad row).
pub(crate) fn csv_error(path: &Path, lines: &Lines, e: csv::Error) -> DataError {
    let line = lines.of(e.position());
    match e.kind() {
        csv::ErrorKind::Io(_) => DataError::File {
            path: path.to_path_buf(),
            problem: e.to_string(),
        },
        _ => DataError::Line {
            path: path.to_path_buf(),
            line,
            problem: e.to_string(),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use optimizer::{Config, Dimension, Kind, Value};

    pub(crate) fn tiny() -> Workload {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = (0..3)
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: 1.0,
            })
            .collect();
        let done = |runtime_s: f64| Outcome::Completed {
            runtime_s,
            cost_usd: runtime_s / 3600.0,
            metrics: Default::default(),
        };
        Workload::new(
            "w".into(),
            Space::new(dims, configs).unwrap(),
            vec![
                vec![done(100.0), done(300.0)],
                vec![done(150.0)],
                vec![Outcome::Failed {
                    reason: "x".into(),
                    elapsed_s: 500.0,
                    cost_usd: 500.0 / 3600.0,
                }],
            ],
        )
    }

    #[test]
    fn reference_is_mean_of_completed_runs_and_limit_changes_the_optimum() {
        let w = tiny();
        assert_eq!(w.reference[0].unwrap().runtime_s, 200.0);
        assert_eq!(w.reference[2], None);
        let s = w.scale(None).unwrap();
        assert!((s.optimum - 150.0 / 3600.0).abs() < 1e-15);
        assert!((s.worst_ratio() - 200.0 / 150.0).abs() < 1e-12);
        let s = w.scale(Some(160.0)).unwrap();
        assert_eq!(
            s.feasible[0], None,
            "mean runtime 200 s misses a 160 s limit"
        );
        assert!((s.worst_ratio() - 1.0).abs() < 1e-12);
        let e = w.scale(Some(10.0)).unwrap_err();
        assert!(matches!(e, DataError::NothingFeasible { .. }));
        assert!(e.to_string().contains("runtime limit of 10 s"), "{e}");
    }

    #[test]
    fn an_unclosed_quote_is_found_where_it_opens() {
        assert_eq!(unclosed_quote(b"a,b\n\"x,\"y\"\"z\"\n"), None);
        assert_eq!(
            unclosed_quote(b"a,b\nw,5\" disk\n"),
            None,
            "not at a field's start"
        );
        assert_eq!(unclosed_quote(b"a,b\nw,\"say \"\"hi\"\"\n1,2\n"), Some(6));
        assert_eq!(unclosed_quote(b"a,\"b\"\"\n"), Some(2));
        assert_eq!(unclosed_quote(b"\xEF\xBB\xBF\"a,\",\"b\"\n"), None);
        assert_eq!(unclosed_quote(b"\xEF\xBB\xBF\"a,b\n"), Some(3));
        // Read from a file: refused naming the line the quote opened on.
        let path = std::env::temp_dir().join(format!("cp-quote-{}.csv", std::process::id()));
        std::fs::write(
            &path,
            "workload,config,runtime_s\r\nw,a,10\r\nw,\"b,20\r\nw,c,30\r\n",
        )
        .unwrap();
        let err = open_csv(&path).err().unwrap().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(err.contains(":3:") || err.contains("line 3"), "{err}");
        assert!(err.contains("never closed"), "{err}");
    }

    #[test]
    fn dataset_spec_parses_names_and_paths() {
        assert_eq!(DatasetSpec::parse("scout").unwrap(), DatasetSpec::Scout);
        assert_eq!(
            DatasetSpec::parse("runs.csv").unwrap(),
            DatasetSpec::Csv("runs.csv".into())
        );
        assert!(DatasetSpec::parse("nope").is_err());
    }
}
