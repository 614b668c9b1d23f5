//! The search journal: an append-only JSON Lines file with a versioned header and one record per
//! finished probe, synced per record, so a search killed at any point can be resumed; plus the
//! [`JournalObserver`] that writes it and the [`Resume`] runner that answers a replayed strategy from it.
//!
//! Layout: line 1 is a [`Header`]; every further line is an event tagged by `event`. Version 1.0
//! has one event, `probe` ([`ProbeRecord`]); readers of a later 1.x skip events they do not know.
//!
//! One process per journal: a [`JournalWriter`] holds an exclusive advisory lock (`flock`) on the
//! file for as long as it lives (a search keeps it to the end), and writes its pid into a note
//! beside the journal (`<journal>.lock`) so a second process is told who holds it. Records are
//! appended through `O_APPEND`, never written at a position.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::space::{Config, ConfigId, Dimension, Space};

mod observe;
mod writer;

pub use observe::{JournalObserver, Resume};
pub use writer::{lock_note, JournalWriter};

/// Value of the header's `format` field.
pub const FORMAT: &str = "cherrypick.journal";
/// The version this code writes. A reader accepts any minor of its own major and refuses a newer
/// major (fields may have changed meaning).
pub const VERSION: Version = Version { major: 1, minor: 0 };
/// The version of a journal written with several probes in flight: 1.0 plus `launch` events and
/// each probe record's `launch` index. Readers of 1.0 skip the events and read the records.
pub const VERSION_PARALLEL: Version = Version { major: 1, minor: 1 };

/// Journal format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

/// First line of a journal: what search this is, so `--resume` can refuse a different one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: Version,
    /// RFC 3339 UTC time the journal was created.
    pub created: String,
    pub seed: u64,
    pub strategy: String,
    /// The catalogue searched (dimensions and configurations with their prices).
    pub space: SpaceRecord,
    /// Settings of the search (backend, budget, limits, objective, ...), free-form.
    #[serde(default)]
    pub options: serde_json::Value,
}

/// The serialised form of a [`Space`] (its encoding is recomputed on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpaceRecord {
    pub dimensions: Vec<Dimension>,
    pub configs: Vec<Config>,
}

impl SpaceRecord {
    pub fn of(space: &Space) -> SpaceRecord {
        SpaceRecord {
            dimensions: space.dimensions().to_vec(),
            configs: space.configs().to_vec(),
        }
    }
    /// Rebuilds the space, checking it as [`Space::new`] does.
    pub fn to_space(&self) -> Result<Space, crate::space::SpaceError> {
        Space::new(self.dimensions.clone(), self.configs.clone())
    }
}

impl Header {
    /// A header for a new journal of `strategy` over `space`, stamped now.
    pub fn new(space: &Space, strategy: &str, seed: u64, options: serde_json::Value) -> Header {
        Header {
            format: FORMAT.to_string(),
            version: VERSION,
            created: rfc3339(SystemTime::now()),
            seed,
            strategy: strategy.to_string(),
            space: SpaceRecord::of(space),
            options,
        }
    }

    /// Checks that a journal belongs to the search about to resume; names the first difference.
    pub fn check_matches(&self, space: &Space, strategy: &str, seed: u64) -> Result<(), String> {
        if self.strategy != strategy {
            return Err(format!(
                "it was written by strategy `{}`, not `{strategy}`",
                self.strategy
            ));
        }
        if self.seed != seed {
            return Err(format!(
                "it was written with seed {}, not {seed}",
                self.seed
            ));
        }
        let here = SpaceRecord::of(space);
        if self.space.dimensions != here.dimensions {
            return Err("its space has different dimensions".to_string());
        }
        if self.space.configs.len() != here.configs.len() {
            return Err(format!(
                "its space has {} configurations, this one {}",
                self.space.configs.len(),
                here.configs.len()
            ));
        }
        for (a, b) in self.space.configs.iter().zip(&here.configs) {
            if a.name != b.name {
                return Err(format!(
                    "its configuration `{}` is `{}` in this space",
                    a.name, b.name
                ));
            }
            if a.values != b.values {
                return Err(format!(
                    "its configuration `{}` has other values in this space",
                    a.name
                ));
            }
            if a.price_per_hour != b.price_per_hour {
                return Err(format!(
                    "its configuration `{}` was priced {:.6} per hour, this space prices it \
                     {:.6} (another price table or objective)",
                    a.name, a.price_per_hour, b.price_per_hour
                ));
            }
        }
        Ok(())
    }
}

/// Output a backend kept for a probe (bounded), stored with its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeLog {
    /// The command line run, if the backend runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Tail of standard output (bounded; `stdout_bytes` is the full length).
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stdout_bytes: u64,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub stderr_bytes: u64,
}

/// One finished probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Position in the search, from 0.
    pub index: usize,
    /// Configuration name (unique in the space).
    pub config: String,
    pub outcome: Outcome,
    /// RFC 3339 UTC launch and finish times.
    pub started: String,
    pub finished: String,
    /// Expected improvement the strategy gave this proposal, if it has a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_improvement: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<ProbeLog>,
    /// With several probes in flight (version 1.1): the number of the `launch` event this probe
    /// finished; records are then in the order probes finished, not the order they started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<usize>,
    /// What the probe was billed when that is more than its outcome's spend (a cluster its
    /// backend could not delete is billed until its scheduled deletion, whatever became of the
    /// job): a resumed search counts it against its spend limit. Readers that predate it skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_usd: Option<f64>,
}

/// A probe launched while others may still be running (version 1.1): written when it starts,
/// so a search that dies with probes in flight knows which ones to run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// Launches are numbered from 0 over the whole search (resumes included).
    pub launch: usize,
    pub config: String,
    /// RFC 3339 UTC launch time.
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_improvement: Option<f64>,
}

/// One of a journal's launches or records, by its index in [`Journal::launches`] or
/// [`Journal::records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Launch(usize),
    Record(usize),
}

/// A probe a stop signal cancelled (an `abandoned` event): it is not a result (no record, and
/// a resumed search runs it again) but it was paid for, so a resumed search counts what it
/// spent against its spend limit. Readers that predate it skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbandonedRecord {
    pub config: String,
    /// What it was billed (the backend's rule: wall time from launch until it was gone).
    pub spend_usd: f64,
    /// RFC 3339 UTC launch and cancellation times.
    pub started: String,
    pub finished: String,
    /// Its `launch` event, when the journal records launches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<usize>,
}

/// A search resumed (a `resumed` event): the limits it ran with, which the header, written by
/// the first run, does not hold. A later resume given none keeps the latest. Readers that
/// predate it skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumedRecord {
    /// RFC 3339 UTC time the search resumed.
    pub resumed: String,
    /// The limits, under the header's option names (`budget`, `max_spend_usd`,
    /// `probe_timeout_s`, `max_runtime_s`).
    pub options: serde_json::Value,
    /// The resumed run kept the stop rule: a `stopped` event before it still holds (written in
    /// this one line, so a resume killed at any point leaves it). Without it (`--no-stop`, or a
    /// journal from before this field) an earlier stop is lifted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keeps_stop: bool,
}

/// The search's stop rule ended it (a `stopped` event): a resume that keeps the stop rule
/// launches nothing new (the uninterrupted search ended here), where asking the strategy again
/// could give another answer (probes in flight when the rule fired came back since). A later
/// `resumed` event without `keeps_stop` lifts it (a resume with `--no-stop` went on).
/// Readers that predate it skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedRecord {
    /// RFC 3339 UTC time the rule fired.
    pub stopped: String,
    /// Probes told when it fired.
    pub told: usize,
    /// What the rule measured (the search's `stopped: stop rule: ...` line).
    pub detail: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Event {
    // Boxed: records are large and `Unknown` carries nothing.
    Probe(Box<ProbeRecord>),
    Launch(LaunchRecord),
    Abandoned(AbandonedRecord),
    Resumed(ResumedRecord),
    Stopped(StoppedRecord),
    /// An event a later minor version added: skipped.
    #[serde(other)]
    Unknown,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub(crate) enum EventRef<'a> {
    Probe(&'a ProbeRecord),
    Launch(&'a LaunchRecord),
    Abandoned(&'a AbandonedRecord),
    Resumed(&'a ResumedRecord),
    Stopped(&'a StoppedRecord),
}

/// Reading or writing a journal went wrong.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    // Not a `source`: the message already says it, and error chains would repeat it.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: the journal is empty (no complete header line)")]
    Empty { path: PathBuf },
    #[error("{path}:1: not a cherrypick journal: {problem}")]
    NotAJournal { path: PathBuf, problem: String },
    #[error(
        "{path}: journal format version {}.{} is newer than this cherrypick understands ({}.x); \
         use a newer cherrypick",
        found.major, found.minor, VERSION.major
    )]
    TooNew { path: PathBuf, found: Version },
    #[error("{path}:{line}: corrupt journal record: {problem}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error(
        "{path}: another cherrypick process ({}) is using this journal; wait for it to end or \
         stop it (its lock goes with it)",
        pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"))
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error(
        "{path}: the journal changed between reading it and locking it (another process wrote \
         to it); run the command again"
    )]
    Changed { path: PathBuf },
}

impl JournalError {
    /// The disk's failure (full, over quota, past the file-size limit, failing with EIO), not
    /// the user's input: a
    /// journal that cannot be started or written for it is exit 1, anything else in the way
    /// (a folder under its name, another process holding it) exit 2.
    pub fn is_disk_failure(&self) -> bool {
        use std::io::ErrorKind;
        matches!(self, JournalError::Io { error, .. }
            if matches!(
                error.kind(),
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
            ) || error.raw_os_error() == Some(libc::EIO))
    }
}

/// A journal as read from disk.
#[derive(Debug, Clone)]
pub struct Journal {
    pub header: Header,
    pub records: Vec<ProbeRecord>,
    /// `launch` events (journals written with several probes in flight).
    pub launches: Vec<LaunchRecord>,
    /// Probes a stop signal cancelled (see [`AbandonedRecord`]).
    pub abandoned: Vec<AbandonedRecord>,
    /// `resumed` events, in order: the limits of each resumed run.
    pub resumes: Vec<ResumedRecord>,
    /// The stop rule's end of the search, when no `resumed` event follows it (see
    /// [`StoppedRecord`]).
    pub stopped: Option<StoppedRecord>,
    /// Launches and records in the order they were written: the order in which the search
    /// asked its strategy and told it.
    pub order: Vec<Step>,
    /// A last line cut short (the writer was killed mid-write) was dropped.
    pub torn_tail: bool,
    /// Byte length of the intact part; appending starts here.
    pub valid_len: u64,
}

impl Journal {
    /// Reads a journal. A torn last line (no newline, not parseable) is dropped and flagged; a
    /// corrupt line anywhere else is an error naming its line number.
    pub fn read(path: &Path) -> Result<Journal, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut reader = BufReader::new(open_regular(path, OpenOptions::new().read(true))?);
        let mut header: Option<Header> = None;
        let mut records = Vec::new();
        let mut launches: Vec<LaunchRecord> = Vec::new();
        let mut abandoned: Vec<AbandonedRecord> = Vec::new();
        let mut resumes: Vec<ResumedRecord> = Vec::new();
        let mut stopped: Option<StoppedRecord> = None;
        let mut order: Vec<Step> = Vec::new();
        let mut torn_tail = false;
        let mut valid_len = 0u64;
        let mut line_no = 0usize;
        // Names of the header's configurations, and the line of each record (by index).
        let mut names: HashSet<String> = HashSet::new();
        let mut record_lines: Vec<usize> = Vec::new();
        let mut launch_lines = std::collections::HashMap::new();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let complete = buf.last() == Some(&b'\n');
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                valid_len += n as u64;
                continue;
            }
            let parsed = match &header {
                None => parse_header(path, text).map(Parsed::Header),
                Some(_) => serde_json::from_str::<Event>(text)
                    .map(Parsed::Event)
                    .map_err(|e| JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: line_no,
                        problem: e.to_string(),
                    }),
            };
            match parsed {
                Ok(Parsed::Header(h)) => {
                    names = h.space.configs.iter().map(|c| c.name.clone()).collect();
                    header = Some(h);
                }
                Ok(Parsed::Event(Event::Probe(r))) => {
                    check_record(&r, &names, &record_lines).map_err(|problem| {
                        JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: line_no,
                            problem,
                        }
                    })?;
                    record_lines.push(line_no);
                    order.push(Step::Record(records.len()));
                    let mut r = *r;
                    unsign_zeros(&mut r.outcome);
                    records.push(r);
                }
                Ok(Parsed::Event(Event::Launch(l))) => {
                    check_launch(&l, line_no, &names, &mut launch_lines).map_err(|problem| {
                        JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: line_no,
                            problem,
                        }
                    })?;
                    order.push(Step::Launch(launches.len()));
                    launches.push(l);
                }
                Ok(Parsed::Event(Event::Abandoned(a))) => {
                    if !(names.contains(&a.config) && is_amount(a.spend_usd)) {
                        return Err(JournalError::Corrupt {
                            path: path.to_path_buf(),
                            line: line_no,
                            problem: format!(
                                "abandoned probe of `{}` spending {}: not a configuration of the \
                                 header, or not a spend",
                                a.config, a.spend_usd
                            ),
                        });
                    }
                    abandoned.push(a);
                }
                Ok(Parsed::Event(Event::Resumed(r))) => {
                    if !r.keeps_stop {
                        stopped = None;
                    }
                    resumes.push(r);
                }
                Ok(Parsed::Event(Event::Stopped(s))) => stopped = Some(s),
                Ok(Parsed::Event(Event::Unknown)) => {}
                Err(e) => {
                    // Only the very last line may be cut short, and only a line without its
                    // newline: every record is written as one line ending in '\n' and synced.
                    // Without a header yet, only the start of one of ours counts as torn: any
                    // other file is not a journal, and must never be taken for an empty one.
                    let at_end = reader.fill_buf().map_err(io)?.is_empty();
                    let ours = header.is_some() || could_be_torn_header(text);
                    if !complete && at_end && ours && !matches!(e, JournalError::TooNew { .. }) {
                        torn_tail = true;
                        break;
                    }
                    return Err(e);
                }
            }
            valid_len += n as u64;
        }
        let header = header.ok_or_else(|| JournalError::Empty {
            path: path.to_path_buf(),
        })?;
        Ok(Journal {
            header,
            records,
            launches,
            abandoned,
            resumes,
            stopped,
            order,
            torn_tail,
            valid_len,
        })
    }

    /// What the probes a stop signal cancelled were billed, all told: a resumed search counts
    /// it against its spend limit beside its records' cost.
    pub fn abandoned_spend(&self) -> f64 {
        self.abandoned.iter().map(|a| a.spend_usd).sum()
    }

    /// What finished probes were billed beyond their outcomes' spend (their `billed_usd`), all
    /// told: a resumed search counts it against its spend limit, as the run that paid it did.
    pub fn billed_beyond_spend(&self) -> f64 {
        self.records
            .iter()
            .filter_map(|r| Some(r.billed_usd? - r.outcome.spend_usd()))
            .filter(|extra| *extra > 0.0)
            .fold(0.0, |a, b| a + b)
    }

    /// Probes launched and never finished (the search died with them in flight), in launch
    /// order: `launch` events whose configuration has no probe record. A strategy never
    /// proposes a configuration twice, so the configuration identifies the probe across resumes.
    pub fn in_flight(&self) -> Vec<&LaunchRecord> {
        let done: HashSet<&str> = self.records.iter().map(|r| r.config.as_str()).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        self.launches
            .iter()
            .filter(|l| !done.contains(l.config.as_str()) && seen.insert(l.config.as_str()))
            .collect()
    }

    /// The number the next `launch` event gets.
    pub fn next_launch(&self) -> usize {
        self.launches
            .iter()
            .map(|l| l.launch + 1)
            .chain(self.records.iter().filter_map(|r| r.launch.map(|n| n + 1)))
            .max()
            .unwrap_or(0)
            .max(self.records.len())
    }

    /// The journal's probes as (configuration id, outcome) in `space`, checking every name.
    pub fn outcomes(&self, space: &Space) -> Result<Vec<(ConfigId, Outcome)>, String> {
        self.records
            .iter()
            .map(|r| {
                space
                    .find(&r.config)
                    .map(|id| (id, r.outcome.clone()))
                    .ok_or_else(|| {
                        format!(
                            "probe {} names configuration `{}`, which is not in the space",
                            r.index, r.config
                        )
                    })
            })
            .collect()
    }
}

enum Parsed {
    Header(Header),
    Event(Event),
}

/// Whether the file at `path` begins as a journal this code writes (its header's first field):
/// what a command writing files must never replace. An unreadable, missing or special file
/// (a FIFO, a device) is not one.
pub fn is_journal(path: &std::path::Path) -> bool {
    use std::io::Read;
    let start = header_start();
    let mut head = vec![0u8; start.len()];
    // Only a regular file is opened: a FIFO would wait for a writer.
    crate::open_regular(path, std::fs::OpenOptions::new().read(true))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == start.as_bytes())
}

/// Whether `text`, a first line cut short, can be the start of a header this code wrote.
fn could_be_torn_header(text: &str) -> bool {
    let start = header_start();
    text.starts_with(&start) || start.starts_with(text)
}

/// How every header this code writes begins (its first field, the format).
fn header_start() -> String {
    format!("{{\"format\":\"{FORMAT}\"")
}

/// Why a new search cannot start on a journal that already holds one.
pub const ALREADY_EXISTS: &str =
    "journal already exists (resume it with --resume, or choose another path)";

/// Turns a hand-written `-0` amount into `0` (adding +0 does that and changes nothing else),
/// so reports never print `$-0.000000`.
fn unsign_zeros(outcome: &mut Outcome) {
    match outcome {
        Outcome::Completed {
            runtime_s,
            cost_usd,
            metrics,
        } => {
            *runtime_s += 0.0;
            *cost_usd += 0.0;
            metrics.values_mut().for_each(|v| *v += 0.0);
        }
        Outcome::Failed {
            elapsed_s,
            cost_usd,
            ..
        }
        | Outcome::TimedOut {
            elapsed_s,
            cost_usd,
        } => {
            *elapsed_s += 0.0;
            *cost_usd += 0.0;
        }
    }
}

/// The largest runtime, cost or spend a record may hold. Far above what a search writes (a
/// runtime is at most 1e15 s, a space file's configuration at most 1e9 USD per hour), and
/// small enough that a journal's sums stay finite: a hand-edited 1.7e308 twice made the spend
/// `$inf`.
const MAX_AMOUNT: f64 = 1e30;

fn is_amount(v: f64) -> bool {
    (0.0..=MAX_AMOUNT).contains(&v)
}

/// Checks one probe record against the header and the records before it (`lines[i]` = line of
/// record `i`): records are numbered 0, 1, ... in order, name a configuration of the space, and
/// carry times and costs from 0 to [`MAX_AMOUNT`].
fn check_record(r: &ProbeRecord, names: &HashSet<String>, lines: &[usize]) -> Result<(), String> {
    let expected = lines.len();
    if r.index < expected {
        return Err(format!(
            "probe index {} appears twice (first at line {})",
            r.index, lines[r.index]
        ));
    }
    if r.index > expected {
        return Err(format!(
            "probe index {} is out of sequence: expected {expected} (records are numbered from 0)",
            r.index
        ));
    }
    if !names.contains(&r.config) {
        return Err(format!(
            "field `config`: `{}` is not a configuration of the header's space",
            r.config
        ));
    }
    if let Some(n) = r.launch {
        check_launch_number(n)?;
    }
    let check = |field: &str, v: f64| {
        if is_amount(v) {
            Ok(())
        } else {
            Err(format!(
                "field `{field}` is {}: must be a number from 0 to {MAX_AMOUNT:e}",
                crate::Shown(v)
            ))
        }
    };
    if let Some(billed) = r.billed_usd {
        check("billed_usd", billed)?;
    }
    match &r.outcome {
        Outcome::Completed {
            runtime_s,
            cost_usd,
            metrics,
        } => {
            check("runtime_s", *runtime_s)?;
            check("cost_usd", *cost_usd)?;
            if let Some(&spend) = metrics.get(crate::outcome::SPEND_METRIC) {
                check(&format!("metrics.{}", crate::outcome::SPEND_METRIC), spend)?;
            }
        }
        Outcome::Failed {
            elapsed_s,
            cost_usd,
            ..
        }
        | Outcome::TimedOut {
            elapsed_s,
            cost_usd,
        } => {
            check("elapsed_s", *elapsed_s)?;
            check("cost_usd", *cost_usd)?;
        }
    }
    Ok(())
}

/// The largest launch number a journal may hold: no search launches four billion probes, and
/// a bigger number (a hand-edited or corrupt line) would overflow the next one's.
const MAX_LAUNCH: usize = u32::MAX as usize;

/// The largest next launch number a search resumes from: what one run adds after it (at most
/// a catalogue's probes and a relaunch of those in flight) keeps every number within
/// [`MAX_LAUNCH`], so the journal stays readable.
pub const MAX_RESUMABLE_LAUNCH: usize = 1 << 31;

fn check_launch_number(n: usize) -> Result<(), String> {
    if n > MAX_LAUNCH {
        return Err(format!(
            "field `launch`: {n} is more than a search numbers its launches (at most {MAX_LAUNCH})"
        ));
    }
    Ok(())
}

/// Checks one launch event, read at `line`: a configuration of the space, a number not used
/// before. `seen` holds the line of each launch number read so far (a set, not a scan of the
/// earlier launches: a long search's journal would take quadratic time to open).
fn check_launch(
    l: &LaunchRecord,
    line: usize,
    names: &HashSet<String>,
    seen: &mut std::collections::HashMap<usize, usize>,
) -> Result<(), String> {
    if !names.contains(&l.config) {
        return Err(format!(
            "field `config`: `{}` is not a configuration of the header's space",
            l.config
        ));
    }
    check_launch_number(l.launch)?;
    if let Some(first) = seen.insert(l.launch, line) {
        return Err(format!(
            "launch {} appears twice (first at line {first})",
            l.launch
        ));
    }
    Ok(())
}

fn parse_header(path: &Path, text: &str) -> Result<Header, JournalError> {
    let not = |problem: String| JournalError::NotAJournal {
        path: path.to_path_buf(),
        problem,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| not(format!("header is not JSON: {e}")))?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != FORMAT {
        return Err(not(format!(
            "header format is `{format}`, expected `{FORMAT}`"
        )));
    }
    let version: Version = value
        .get("version")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| not("header has no valid version {major, minor}".to_string()))?;
    // Check the version before the rest: a newer major may have reshaped the header itself.
    if version.major > VERSION.major {
        return Err(JournalError::TooNew {
            path: path.to_path_buf(),
            found: version,
        });
    }
    serde_json::from_value(value).map_err(|e| not(format!("bad header: {e}")))
}

/// Formats a time as RFC 3339 UTC with milliseconds (`2026-11-25T20:05:01.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Seconds since 1970 of a time as [`rfc3339`] writes it (`2026-11-25T20:05:01.123Z`; the
/// fraction may have any number of digits or be left out); `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hour, minute) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let second = t.next()?.parse::<f64>().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..61.0).contains(&second);
    if !valid {
        return None;
    }
    // Days since 1970-01-01 of a civil date (the inverse of the algorithm in `rfc3339`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60) as f64 + second)
}

/// Opens a journal with `options`, refusing anything but a regular file (see
/// [`crate::open_regular`]).
fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<File, JournalError> {
    crate::open_regular(path, options).map_err(|error| JournalError::Io {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::writer::lock_exclusive;
    use super::*;
    use crate::driver::{Observer, Report};
    use crate::space::{Kind, Value};
    use crate::strategy::Proposal;
    use std::collections::BTreeMap;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    fn space() -> Space {
        let dims = vec![Dimension {
            name: "workers".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = (1..=4)
            .map(|w| Config {
                name: format!("w{w}"),
                values: vec![Value::Num(w as f64)],
                price_per_hour: 0.1 * w as f64,
            })
            .collect();
        Space::new(dims, configs).unwrap()
    }

    fn record(index: usize, config: &str, runtime: f64) -> ProbeRecord {
        ProbeRecord {
            index,
            config: config.into(),
            outcome: Outcome::Completed {
                runtime_s: runtime,
                cost_usd: runtime / 3600.0,
                metrics: BTreeMap::new(),
            },
            started: rfc3339(SystemTime::UNIX_EPOCH),
            finished: rfc3339(SystemTime::UNIX_EPOCH),
            expected_improvement: Some(0.25),
            log: None,
            launch: None,
            billed_usd: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cp-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("runs.jsonl")
    }

    /// A probe a signal cancelled is kept as what it spent: read back, summed, never a record;
    /// one naming a configuration the header lacks, or a spend that is not one, is corrupt.
    #[test]
    fn an_abandoned_probe_is_read_back_as_spend_only() {
        let path = temp("abandoned");
        let s = space();
        let h = Header::new(&s, "grid", 7, serde_json::json!({}));
        let mut w = JournalWriter::create(&path, &h).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        let cancelled = |config: &str, spend_usd: f64| AbandonedRecord {
            config: config.into(),
            spend_usd,
            started: rfc3339(SystemTime::UNIX_EPOCH),
            finished: rfc3339(SystemTime::UNIX_EPOCH),
            launch: None,
        };
        w.append_abandoned(&cancelled("w2", 0.25)).unwrap();
        w.append_abandoned(&cancelled("w2", 0.5)).unwrap();
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.records.len(), 1);
        assert_eq!(j.abandoned.len(), 2);
        assert_eq!(j.abandoned_spend(), 0.75);
        drop(w);
        for (config, spend) in [("w9", 0.1), ("w2", -1.0)] {
            let mut w = JournalWriter::append_to(&path, &Journal::read(&path).unwrap()).unwrap();
            w.append_abandoned(&cancelled(config, spend)).unwrap();
            drop(w);
            let err = Journal::read(&path).unwrap_err().to_string();
            assert!(
                err.contains(":5: corrupt journal record: abandoned probe"),
                "{err}"
            );
            // Take the bad line back out.
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text.lines().take(4).collect();
            std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        }
    }

    #[test]
    fn round_trips_header_and_records() {
        let path = temp("roundtrip");
        let s = space();
        let h = Header::new(&s, "grid", 7, serde_json::json!({"budget": 3}));
        let mut w = JournalWriter::create(&path, &h).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        w.append(&record(1, "w3", 5.0)).unwrap();
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.header.seed, 7);
        assert_eq!(j.header.strategy, "grid");
        assert_eq!(j.records, vec![record(0, "w1", 10.0), record(1, "w3", 5.0)]);
        assert!(!j.torn_tail);
        assert_eq!(j.header.space.to_space().unwrap().len(), 4);
        assert!(j.header.check_matches(&s, "grid", 7).is_ok());
        assert!(j
            .header
            .check_matches(&s, "random", 7)
            .unwrap_err()
            .contains("strategy"));
        assert!(j
            .header
            .check_matches(&s, "grid", 8)
            .unwrap_err()
            .contains("seed"));
        // A configuration that differs is named once, with what differs.
        let mut configs = s.configs().to_vec();
        configs[2].price_per_hour = 1.0;
        let repriced = Space::new(s.dimensions().to_vec(), configs.clone()).unwrap();
        assert_eq!(
            j.header.check_matches(&repriced, "grid", 7).unwrap_err(),
            "its configuration `w3` was priced 0.300000 per hour, this space prices it \
             1.000000 (another price table or objective)"
        );
        configs[2].price_per_hour = s.configs()[2].price_per_hour;
        configs[2].name = "w3b".into();
        let renamed = Space::new(s.dimensions().to_vec(), configs).unwrap();
        assert_eq!(
            j.header.check_matches(&renamed, "grid", 7).unwrap_err(),
            "its configuration `w3` is `w3b` in this space"
        );
        let outcomes = j.outcomes(&s).unwrap();
        assert_eq!(outcomes[1].0, 2);
        assert!(
            JournalWriter::create(&path, &h).is_err(),
            "never overwrites"
        );
    }

    #[test]
    fn launch_events_tell_which_probes_were_in_flight_when_the_search_died() {
        let path = temp("launches");
        let s = Arc::new(space());
        let mut h = Header::new(&s, "grid", 1, Default::default());
        h.version = VERSION_PARALLEL;
        let w = JournalWriter::create(&path, &h).unwrap();
        let mut obs = JournalObserver::new(w, s.clone(), 0).with_launch_events(0);
        let proposal = |config| Proposal {
            config,
            expected_improvement: None,
            stop: false,
        };
        let done = |t: f64| {
            Report::new(Outcome::Completed {
                runtime_s: t,
                cost_usd: t / 3600.0,
                metrics: BTreeMap::new(),
            })
        };
        // Three launched (w1, w2, w3), the second finishes first, then the first; w3 is still
        // running when the search dies.
        for (i, c) in [0, 1, 2].into_iter().enumerate() {
            obs.on_launch(i, &proposal(c));
        }
        obs.on_outcome(1, &proposal(1), &done(5.0));
        obs.on_outcome(0, &proposal(0), &done(9.0));
        drop(obs);
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.header.version, VERSION_PARALLEL);
        assert_eq!(j.launches.len(), 3);
        let finished: Vec<(usize, &str, Option<usize>)> = j
            .records
            .iter()
            .map(|r| (r.index, r.config.as_str(), r.launch))
            .collect();
        assert_eq!(finished, [(0, "w2", Some(1)), (1, "w1", Some(0))]);
        let running: Vec<&str> = j.in_flight().iter().map(|l| l.config.as_str()).collect();
        assert_eq!(running, ["w3"]);
        assert_eq!(j.next_launch(), 3);

        // Resumed: w3 launched again as launch 3 and finished; nothing is in flight any more.
        let w = JournalWriter::append_to(&path, &j).unwrap();
        let mut obs = JournalObserver::new(w, s.clone(), 2).with_launch_events(j.next_launch());
        obs.on_launch(2, &proposal(2));
        obs.on_outcome(2, &proposal(2), &done(7.0));
        drop(obs);
        let j = Journal::read(&path).unwrap();
        assert!(j.in_flight().is_empty());
        assert_eq!(j.records[2].launch, Some(3));
        assert_eq!(j.next_launch(), 4);

        // A launch event naming no configuration of the space, or a number used twice, is
        // refused with its line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"event\":\"launch\",\"launch\":2,\"config\":\"w4\",\"started\":\"x\"}\n")
            .unwrap();
        drop(f);
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(
            err.contains(":9:") && err.contains("launch 2 appears twice (first at line "),
            "{err}"
        );

        // A number beyond any search's (a hand edit) is refused too, in an event or a record:
        // the next launch's number would overflow.
        let text = std::fs::read_to_string(&path).unwrap();
        let kept = &text[..text.trim_end().rfind('\n').unwrap() + 1];
        let launch =
            r#"{"event":"launch","launch":18446744073709551615,"config":"w4","started":"x"}"#;
        std::fs::write(&path, format!("{kept}{launch}\n")).unwrap();
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(
            err.contains(":9:") && err.contains("18446744073709551615 is more than a search"),
            "{err}"
        );
        let last = kept.trim_end().rsplit('\n').next().unwrap();
        let record = last
            .replace("\"launch\":3", "\"launch\":18446744073709551615")
            .replace("\"index\":2", "\"index\":3");
        assert_ne!(record, last);
        std::fs::write(&path, format!("{kept}{record}\n")).unwrap();
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(
            err.contains(":9:") && err.contains("field `launch`: 18446744073709551615"),
            "{err}"
        );
    }

    #[test]
    fn sequential_journals_have_no_launch_events() {
        let path = temp("sequential");
        let s = Arc::new(space());
        let w =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        let mut obs = JournalObserver::new(w, s, 0);
        let p = Proposal {
            config: 0,
            expected_improvement: None,
            stop: false,
        };
        obs.on_launch(0, &p);
        obs.on_outcome(
            0,
            &p,
            &Report::new(Outcome::TimedOut {
                elapsed_s: 1.0,
                cost_usd: 0.1,
            }),
        );
        drop(obs);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("launch"), "{text}");
        assert!(text.contains("\"minor\":0"));
    }

    #[test]
    fn torn_last_line_is_dropped_and_cut_before_appending() {
        let path = temp("torn");
        let s = space();
        let mut w =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"event":"probe","index":1,"config":"w2","outc"#)
            .unwrap();
        drop(f);
        let j = Journal::read(&path).unwrap();
        assert!(j.torn_tail);
        assert_eq!(j.records.len(), 1);
        let mut w = JournalWriter::append_to(&path, &j).unwrap();
        w.append(&record(1, "w2", 4.0)).unwrap();
        let j = Journal::read(&path).unwrap();
        assert!(!j.torn_tail);
        assert_eq!(j.records.len(), 2);
        assert_eq!(j.records[1].config, "w2");
    }

    #[test]
    fn corrupt_middle_line_is_an_error_with_its_line_number() {
        let path = temp("corrupt");
        let s = space();
        let mut w =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{not json}\n").unwrap();
        drop(f);
        let mut w = JournalWriter {
            path: path.clone(),
            file: OpenOptions::new().append(true).open(&path).unwrap(),
            note: None,
        };
        w.append(&record(1, "w2", 4.0)).unwrap();
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(err.contains("runs.jsonl:3:"), "{err}");
    }

    #[test]
    fn newer_major_version_is_refused_and_unknown_events_skipped() {
        let path = temp("version");
        let s = space();
        let mut h = serde_json::to_value(Header::new(&s, "grid", 1, Default::default())).unwrap();
        h["version"] = serde_json::json!({"major": 2, "minor": 0});
        std::fs::write(&path, format!("{h}\n")).unwrap();
        let err = Journal::read(&path).unwrap_err();
        assert!(matches!(err, JournalError::TooNew { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("version 2.0 is newer than this cherrypick understands (1.x)"),
            "{err}"
        );

        h["version"] = serde_json::json!({"major": 1, "minor": 7});
        let rec = serde_json::to_string(&EventRef::Probe(&record(0, "w1", 1.0))).unwrap();
        std::fs::write(
            &path,
            format!("{h}\n{{\"event\":\"cluster-created\",\"name\":\"x\"}}\n{rec}\n"),
        )
        .unwrap();
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.records.len(), 1);
    }

    #[test]
    fn a_stop_holds_past_a_resume_that_keeps_the_rule_and_is_lifted_by_one_that_does_not() {
        let (path, _) = new_journal("stop-kept");
        append_raw(
            &path,
            "{\"event\":\"stopped\",\"stopped\":\"t\",\"told\":1,\"detail\":\"EI 1%\"}\n",
        );
        let resumed = |keeps_stop| {
            let r = ResumedRecord {
                resumed: "t".into(),
                options: serde_json::json!({}),
                keeps_stop,
            };
            format!(
                "{}\n",
                serde_json::to_string(&EventRef::Resumed(&r)).unwrap()
            )
        };
        append_raw(&path, &resumed(true));
        let j = Journal::read(&path).unwrap();
        assert_eq!(
            j.stopped.map(|s| (s.told, s.detail)),
            Some((1, "EI 1%".into()))
        );
        // Older resumes wrote no `keeps_stop`: they lift it, as `--no-stop` does.
        assert!(!resumed(false).contains("keeps_stop"));
        append_raw(&path, &resumed(false));
        assert_eq!(Journal::read(&path).unwrap().stopped, None);
    }

    fn new_journal(name: &str) -> (PathBuf, Space) {
        let path = temp(name);
        let s = space();
        let mut w =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        (path, s)
    }

    fn probe_line(r: &ProbeRecord) -> String {
        serde_json::to_string(&EventRef::Probe(r)).unwrap()
    }

    fn append_raw(path: &Path, text: &str) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_fifo_under_the_lock_notes_name_never_blocks_the_writer() {
        let path = temp("fifo-note");
        let note = lock_note(&path);
        let c = std::ffi::CString::new(note.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening it for writing would wait for a reader for ever; the note is skipped instead.
        let mut w =
            JournalWriter::create(&path, &Header::new(&space(), "grid", 1, Default::default()))
                .unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        // A second writer reads no pid from it (nor blocks reading it).
        let j = Journal::read(&path).unwrap();
        let err = JournalWriter::append_to(&path, &j).unwrap_err();
        assert!(
            matches!(err, JournalError::Locked { pid: None, .. }),
            "{err:?}"
        );
        drop(w);
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&note).is_ok_and(|m| m.file_type().is_fifo()));
        let _ = std::fs::remove_file(&note);
    }

    #[test]
    fn a_second_writer_is_refused_naming_the_holders_pid() {
        let path = temp("lock");
        let s = space();
        let mut first =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        first.append(&record(0, "w1", 10.0)).unwrap();
        let note = lock_note(&path);
        assert_eq!(
            std::fs::read_to_string(&note).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock conflicts between two opens even in one process, as between two processes.
        let j = Journal::read(&path).unwrap();
        let err = JournalWriter::append_to(&path, &j).unwrap_err();
        assert!(
            matches!(err, JournalError::Locked { pid: Some(p), .. } if p == std::process::id()),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("runs.jsonl"),
            "{msg}"
        );
        let err = JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default()))
            .unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err:?}");
        // Reached through a symlink, the same journal is refused naming the same holder.
        let link = path.with_extension("link.jsonl");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = JournalWriter::append_to(&link, &j).unwrap_err();
        assert!(
            matches!(err, JournalError::Locked { pid: Some(p), .. } if p == std::process::id()),
            "{err:?}"
        );
        std::fs::remove_file(&link).unwrap();
        // The refused attempts changed nothing; the holder keeps appending.
        first.append(&record(1, "w2", 3.0)).unwrap();
        drop(first);
        assert!(!note.exists(), "the note goes with the lock");
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.records.len(), 2);
        let mut next = JournalWriter::append_to(&path, &j).unwrap();
        next.append(&record(2, "w3", 1.0)).unwrap();
        assert_eq!(Journal::read(&path).unwrap().records.len(), 3);
    }

    #[test]
    fn a_journal_is_discarded_only_when_nobody_writes_it() {
        let path = temp("discard");
        JournalWriter::discard(&path).expect("a missing journal is nothing to discard");
        let s = space();
        let mut w =
            JournalWriter::create(&path, &Header::new(&s, "grid", 1, Default::default())).unwrap();
        w.append(&record(0, "w1", 10.0)).unwrap();
        let err = JournalWriter::discard(&path).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err:?}");
        // The holder's file is still there and still its own.
        w.append(&record(1, "w2", 3.0)).unwrap();
        assert_eq!(Journal::read(&path).unwrap().records.len(), 2);
        drop(w);
        JournalWriter::discard(&path).unwrap();
        assert!(!path.exists() && !lock_note(&path).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_waiting_on_it() {
        let fifo = temp("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            // Each of these would block (a FIFO with no writer) or read for ever (a device).
            let err = Journal::read(path).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
            let j = Journal {
                header: Header::new(&space(), "grid", 1, Default::default()),
                records: Vec::new(),
                launches: Vec::new(),
                abandoned: Vec::new(),
                resumes: Vec::new(),
                stopped: None,
                order: Vec::new(),
                torn_tail: false,
                valid_len: 0,
            };
            let err = JournalWriter::append_to(path, &j).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        let _ = std::fs::remove_file(&fifo);
    }

    #[test]
    fn a_lock_left_with_an_ended_holders_child_is_waited_for() {
        let (path, _) = new_journal("grace");
        // A search killed while forking a job: the job holds the lock for a moment, and the
        // note names the search, which has ended (pid 0 is never a live process here).
        let held = File::open(&path).unwrap();
        lock_exclusive(&held, &path).unwrap();
        std::fs::write(lock_note(&path), "0\n").unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let j = Journal::read(&path).unwrap();
        let started = std::time::Instant::now();
        let w = JournalWriter::append_to(&path, &j).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        releaser.join().unwrap();
        drop(w);
        // Never released: refused once the grace period is over, naming the noted pid.
        let held = File::open(&path).unwrap();
        lock_exclusive(&held, &path).unwrap();
        std::fs::write(lock_note(&path), "0\n").unwrap();
        let err = JournalWriter::append_to(&path, &j).unwrap_err();
        assert!(
            matches!(err, JournalError::Locked { pid: Some(0), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_journal_that_grew_after_it_was_read_is_not_appended_to() {
        let (path, _) = new_journal("stale");
        let stale = Journal::read(&path).unwrap();
        let mut other = JournalWriter::append_to(&path, &stale).unwrap();
        other.append(&record(1, "w2", 3.0)).unwrap();
        drop(other);
        let err = JournalWriter::append_to(&path, &stale).unwrap_err();
        assert!(matches!(err, JournalError::Changed { .. }), "{err:?}");
        assert_eq!(
            Journal::read(&path).unwrap().records.len(),
            2,
            "nothing cut"
        );
    }

    #[cfg(unix)]
    #[test]
    fn writers_append_with_o_append() {
        use std::os::unix::io::AsRawFd;
        let (path, _) = new_journal("append");
        let j = Journal::read(&path).unwrap();
        let w = JournalWriter::append_to(&path, &j).unwrap();
        // SAFETY: F_GETFL on a descriptor `w` keeps open.
        let flags = unsafe { libc::fcntl(w.file.as_raw_fd(), libc::F_GETFL) };
        assert!(flags & libc::O_APPEND != 0, "flags {flags:o}");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_never_taken_for_an_empty_one() {
        let path = temp("foreign");
        // No newline, not JSON: before, this read as a torn (empty) journal and was deleted.
        std::fs::write(&path, "my notes, not a journal").unwrap();
        let err = Journal::read(&path).unwrap_err();
        assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
        let s = space();
        let h = Header::new(&s, "grid", 1, Default::default());
        assert!(JournalWriter::create(&path, &h).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "my notes, not a journal"
        );
        // A header of ours cut short by a crash holds nothing: it may be started over.
        let full = serde_json::to_string(&h).unwrap();
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        assert!(matches!(
            Journal::read(&path),
            Err(JournalError::Empty { .. })
        ));
        let mut w = JournalWriter::create(&path, &h).unwrap();
        w.append(&record(0, "w1", 1.0)).unwrap();
        assert_eq!(Journal::read(&path).unwrap().records.len(), 1);
    }

    #[test]
    fn invalid_records_are_refused_with_file_line_and_field() {
        let cases: Vec<(&str, ProbeRecord, &str)> = vec![
            (
                "duplicate",
                record(0, "w2", 1.0),
                "probe index 0 appears twice (first at line 2)",
            ),
            (
                "gap",
                record(5, "w2", 1.0),
                "probe index 5 is out of sequence: expected 1",
            ),
            ("unknown", record(1, "w9", 1.0), "field `config`: `w9`"),
            (
                "negative",
                record(1, "w2", -3600.0),
                "field `runtime_s` is -3600",
            ),
            (
                "far",
                record(1, "w2", -1e300),
                "field `runtime_s` is -1e300: must be",
            ),
            (
                "huge",
                record(1, "w2", 1.7e308),
                "field `runtime_s` is 1.7e308: must be a number from 0 to 1e30",
            ),
        ];
        for (name, r, want) in cases {
            let (path, _) = new_journal(name);
            append_raw(&path, &format!("{}\n", probe_line(&r)));
            let err = Journal::read(&path).unwrap_err().to_string();
            assert!(
                err.contains("runs.jsonl:3: ") && err.contains(want),
                "{name}: {err}"
            );
        }
        // A negative cost on a failed probe, and a negative or infinite spend metric.
        let mut failed = record(1, "w2", 1.0);
        failed.outcome = Outcome::Failed {
            reason: "x".into(),
            elapsed_s: 2.0,
            cost_usd: -0.5,
        };
        let mut spend = record(1, "w2", 1.0);
        if let Outcome::Completed { metrics, .. } = &mut spend.outcome {
            metrics.insert(crate::outcome::SPEND_METRIC.into(), -1.0);
        }
        for (r, want) in [
            (failed, "field `cost_usd` is -0.5"),
            (spend, "metrics.spend_usd"),
        ] {
            let (path, _) = new_journal("bad-outcome");
            append_raw(&path, &format!("{}\n", probe_line(&r)));
            let err = Journal::read(&path).unwrap_err().to_string();
            assert!(
                err.contains("runs.jsonl:3: ") && err.contains(want),
                "{err}"
            );
        }
        // Numbers JSON cannot hold as finite doubles are refused too.
        let (path, _) = new_journal("huge");
        let line =
            probe_line(&record(1, "w2", 1.0)).replace("\"cost_usd\":", "\"cost_usd\":1e999,\"x\":");
        append_raw(&path, &format!("{line}\n"));
        let err = Journal::read(&path).unwrap_err().to_string();
        assert!(err.contains("runs.jsonl:3: "), "{err}");

        // A hand-written -0 is read as 0, so no report prints `$-0.000000`.
        let (path, _) = new_journal("minus-zero");
        let mut zero = record(1, "w2", 1.0);
        zero.outcome = Outcome::TimedOut {
            elapsed_s: -0.0,
            cost_usd: -0.0,
        };
        append_raw(&path, &format!("{}\n", probe_line(&zero)));
        assert!(std::fs::read_to_string(&path).unwrap().contains("-0.0"));
        match &Journal::read(&path).unwrap().records[1].outcome {
            Outcome::TimedOut {
                elapsed_s,
                cost_usd,
            } => assert!(elapsed_s.is_sign_positive() && cost_usd.is_sign_positive()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_636_501_250);
        assert_eq!(rfc3339(t), "2026-11-25T19:55:01.250Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
        // And back.
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(1_795_636_501.25));
        assert_eq!(parse_rfc3339(&rfc3339(leap)), Some(951_782_400.0));
        assert_eq!(parse_rfc3339("2026-11-25T19:55:01Z"), Some(1_795_636_501.0));
        for bad in [
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-11-25T19:55:01",
            "x-y-zTa:b:cZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
