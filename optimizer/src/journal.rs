//! The search journal: an append-only JSON Lines file with a versioned header and one record per
//! finished probe, synced per record, so a search killed at any point can be resumed; plus the
//! [`Observer`] that writes it and the [`Resume`] runner that re-tells its probes through `drive`.
//!
//! Layout: line 1 is a [`Header`]; every further line is an event tagged by `event`. Version 1.0
//! has one event, `probe` ([`ProbeRecord`]); readers of a later 1.x skip events they do not know.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::driver::{Observer, ProbeLimits, Runner, SearchResult};
use crate::outcome::Outcome;
use crate::space::{Config, ConfigId, Dimension, Space};
use crate::strategy::Proposal;

/// Value of the header's `format` field.
pub const FORMAT: &str = "cherrypick.journal";
/// The version this code writes. A reader accepts any minor of its own major and refuses a newer
/// major (fields may have changed meaning).
pub const VERSION: Version = Version { major: 1, minor: 0 };

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
            if a != b {
                return Err(format!(
                    "its configuration `{}` differs from this space's `{}` (name, values or price)",
                    a.name, b.name
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

/// Where a runner leaves the [`ProbeLog`] of the probe it just ran, for the journal to pick up.
pub type ProbeLogSlot = Arc<Mutex<Option<ProbeLog>>>;

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
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Event {
    // Boxed: records are large and `Unknown` carries nothing.
    Probe(Box<ProbeRecord>),
    /// An event a later minor version added: skipped.
    #[serde(other)]
    Unknown,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum EventRef<'a> {
    Probe(&'a ProbeRecord),
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
        "{path}: journal format version {}.{} is newer than this cherrypick understands ({}.{}); \
         use a newer cherrypick",
        found.major, found.minor, VERSION.major, VERSION.minor
    )]
    TooNew { path: PathBuf, found: Version },
    #[error("{path}:{line}: corrupt journal record: {problem}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// A journal as read from disk.
#[derive(Debug, Clone)]
pub struct Journal {
    pub header: Header,
    pub records: Vec<ProbeRecord>,
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
        let mut reader = BufReader::new(File::open(path).map_err(io)?);
        let mut header: Option<Header> = None;
        let mut records = Vec::new();
        let mut torn_tail = false;
        let mut valid_len = 0u64;
        let mut line_no = 0usize;
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
                Ok(Parsed::Header(h)) => header = Some(h),
                Ok(Parsed::Event(Event::Probe(r))) => records.push(*r),
                Ok(Parsed::Event(Event::Unknown)) => {}
                Err(e) => {
                    // Only the very last line may be cut short, and only a line without its
                    // newline: every record is written as one line ending in '\n' and synced.
                    let at_end = reader.fill_buf().map_err(io)?.is_empty();
                    if !complete && at_end && !matches!(e, JournalError::TooNew { .. }) {
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
            torn_tail,
            valid_len,
        })
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

/// Appends records to a journal, syncing each one to disk before returning.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    file: File,
}

impl JournalWriter {
    /// Creates a new journal holding `header`. Refuses to replace a non-empty file.
    pub fn create(path: &Path, header: &Header) -> Result<JournalWriter, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if std::fs::metadata(path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
        {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "journal already exists (resume it with --resume, or choose another path)",
            )));
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        let mut w = JournalWriter {
            path: path.to_path_buf(),
            file,
        };
        let line = serde_json::to_string(header).expect("a header always serialises");
        w.write_line(&line)?;
        // A new file's directory entry must reach the disk too, or a crash can lose the file.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(w)
    }

    /// Opens `journal` at `path` for appending, cutting off a torn last line first.
    pub fn append_to(path: &Path, journal: &Journal) -> Result<JournalWriter, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len > journal.valid_len {
            file.set_len(journal.valid_len).map_err(io)?;
        }
        // The intact part must end with a newline before anything is appended.
        if journal.valid_len > 0 {
            file.seek(SeekFrom::Start(journal.valid_len - 1))
                .map_err(io)?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(JournalWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one probe record and syncs it.
    pub fn append(&mut self, record: &ProbeRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Probe(record))
            .expect("a probe record always serialises");
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &str) -> Result<(), JournalError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        // One write of the whole line, then a data sync: a crash leaves either the whole record
        // or a torn tail without its newline, which the reader drops.
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .map_err(|error| JournalError::Io {
                path: self.path.clone(),
                error,
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a journal record for every probe a live drive finishes.
///
/// Probes that a [`Resume`] runner served from the journal are not written again. A write error
/// stops the search (through `stop`) and is kept in [`JournalObserver::error`].
pub struct JournalObserver {
    writer: JournalWriter,
    space: Arc<Space>,
    next_index: usize,
    launched: Option<(SystemTime, Option<f64>)>,
    replayed: Option<Arc<AtomicBool>>,
    logs: Option<ProbeLogSlot>,
    stop: Option<Arc<AtomicBool>>,
    error: Option<JournalError>,
}

impl JournalObserver {
    /// `already` = number of records the journal holds (the next record's index).
    pub fn new(writer: JournalWriter, space: Arc<Space>, already: usize) -> JournalObserver {
        JournalObserver {
            writer,
            space,
            next_index: already,
            launched: None,
            replayed: None,
            logs: None,
            stop: None,
            error: None,
        }
    }
    /// Skip probes for which `flag` is set after the run (served from the journal).
    pub fn skip_replayed(mut self, flag: Arc<AtomicBool>) -> Self {
        self.replayed = Some(flag);
        self
    }
    /// Take each probe's output from `slot` and keep it in its record.
    pub fn with_logs(mut self, slot: ProbeLogSlot) -> Self {
        self.logs = Some(slot);
        self
    }
    /// Set `flag` (the search's interrupt flag) if a write fails, so the search stops.
    pub fn stop_on_error(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }
    /// The first write error, if any.
    pub fn error(&mut self) -> Option<JournalError> {
        self.error.take()
    }
    /// Number of records in the journal now.
    pub fn records(&self) -> usize {
        self.next_index
    }
}

impl Observer for JournalObserver {
    fn on_launch(&mut self, _index: usize, proposal: &Proposal) {
        self.launched = Some((SystemTime::now(), proposal.expected_improvement));
    }

    fn on_outcome(&mut self, _index: usize, config: ConfigId, outcome: &Outcome) {
        let log = self.logs.as_ref().and_then(|s| s.lock().ok()?.take());
        if self
            .replayed
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            return;
        }
        if self.error.is_some() {
            return;
        }
        let (started, ei) = self.launched.take().unwrap_or((SystemTime::now(), None));
        let record = ProbeRecord {
            index: self.next_index,
            config: self.space.config(config).name.clone(),
            outcome: outcome.clone(),
            started: rfc3339(started),
            finished: rfc3339(SystemTime::now()),
            expected_improvement: ei,
            log,
        };
        match self.writer.append(&record) {
            Ok(()) => self.next_index += 1,
            Err(e) => {
                self.error = Some(e);
                if let Some(flag) = &self.stop {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    fn on_finish(&mut self, _result: &SearchResult) {}
}

/// A runner that answers configurations the journal already holds with their recorded outcomes
/// (in journal order, per configuration) and runs everything else with `inner`.
///
/// Resuming = driving a fresh strategy with the same seed through this runner: the strategy asks
/// exactly what the interrupted search asked, gets the recorded answers without re-running them,
/// and is in the same state when the first new probe is launched.
pub struct Resume<R> {
    inner: R,
    recorded: Mutex<HashMap<ConfigId, VecDeque<Outcome>>>,
    replayed: Arc<AtomicBool>,
}

impl<R> Resume<R> {
    pub fn new(inner: R, outcomes: Vec<(ConfigId, Outcome)>) -> Resume<R> {
        let mut recorded: HashMap<ConfigId, VecDeque<Outcome>> = HashMap::new();
        for (id, o) in outcomes {
            recorded.entry(id).or_default().push_back(o);
        }
        Resume {
            inner,
            recorded: Mutex::new(recorded),
            replayed: Arc::new(AtomicBool::new(false)),
        }
    }
    /// Set after each run: whether that probe was served from the journal.
    pub fn replayed_flag(&self) -> Arc<AtomicBool> {
        self.replayed.clone()
    }
    /// Recorded probes no strategy ask has consumed (non-zero only if the strategy diverged).
    pub fn unconsumed(&self) -> usize {
        self.recorded
            .lock()
            .map(|m| m.values().map(VecDeque::len).sum())
            .unwrap_or(0)
    }
}

impl<R: Runner + Sync> Runner for Resume<R> {
    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Outcome {
        let served = self
            .recorded
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&config).and_then(VecDeque::pop_front));
        self.replayed.store(served.is_some(), Ordering::SeqCst);
        match served {
            Some(o) => o,
            None => self.inner.run(space, config, limits).await,
        }
    }

    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        self.inner.worst_case_usd(space, config, limits)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Kind, Value};
    use std::collections::BTreeMap;
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
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cp-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("runs.jsonl")
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
        let outcomes = j.outcomes(&s).unwrap();
        assert_eq!(outcomes[1].0, 2);
        assert!(
            JournalWriter::create(&path, &h).is_err(),
            "never overwrites"
        );
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
        assert!(err.to_string().contains("newer"), "{err}");

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
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_636_501_250);
        assert_eq!(rfc3339(t), "2026-11-25T19:55:01.250Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
