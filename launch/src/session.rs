//! The search session: opens the journal (or resumes it), drives a strategy with a runner through
//! `optimizer::drive` with the progress display and the journal as observers, turns SIGINT,
//! SIGTERM and SIGHUP into one orderly stop, and prints the summary. Shared by `cherrypick
//! search` and `cherrypick demo`.
//!
//! A stop signal launches nothing more and cancels the running probe through its runner (its
//! process group stopped, its cluster deleted); what finished is in the journal, and the signal
//! is returned so the binary exits with its code. Later signals only say the stop is under way:
//! ending the process there would leave the group running or the cluster billed.
//!
//! Resuming brings a fresh strategy (same name and seed) to where the journal left it, then asks
//! it for the next one. The journal is replayed: the strategy is asked where the search that
//! wrote it asked (before each record of a probe run one at a time, at each launch event of
//! probes run several at a time) and told each record where it was written, so a strategy that
//! chooses each recorded probe again is in the state that search was in (its random draws,
//! sampling chains and pending probes included) and goes on as it would have without the
//! interruption. A search its stop rule ended stays ended: a resume that keeps the stop rule
//! asks nothing (it only runs probes the earlier run left in flight), where asking again after
//! the probes in flight when the rule fired came back could launch one more.
//! Where it would choose otherwise (another build, another runtime or spend limit), every probe
//! is told to a fresh strategy without asking: every paid probe is in the model, whatever the
//! strategy would choose now, and none is run again.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, Signal, SignalKind};

use optimizer::journal::{
    Header, Journal, JournalError, JournalObserver, JournalWriter, ResumedRecord, Step,
};
use optimizer::{
    build_strategy, drive, ConfigId, DriveOptions, Observer, Optimizer, Outcome, ProbeLimits,
    Proposal, Report, Runner, SearchResult, Space, StrategyOptions,
};

use crate::error::Error;
use crate::progress::{print_summary, Progress};
use crate::spacefile::{BackendKind, SearchSpec};

/// Resolved settings of a search.
#[derive(Debug, Clone)]
pub struct Settings {
    pub strategy: String,
    pub seed: u64,
    pub budget: Option<usize>,
    pub max_runtime_s: Option<f64>,
    pub max_spend_usd: Option<f64>,
    pub probe_timeout: Option<Duration>,
    /// Whether `probe_timeout` was asked for (`--probe-timeout`, or `--max-runtime`, which sets
    /// it when that is not given) rather than taken from the space file: a resume keeps the
    /// recorded one unless asked.
    pub probe_timeout_given: bool,
    pub honour_stop: bool,
    pub backend: BackendKind,
    /// dataproc: the label value shared by this search's clusters.
    pub search_id: Option<String>,
    /// Probes in flight at once (1: one after another).
    pub parallel: usize,
}

impl Settings {
    /// The journal header's free-form options.
    pub fn options_json(&self, spec: &SearchSpec) -> serde_json::Value {
        // The limits under the same names a `resumed` event gives them, and the rest.
        let mut options = self.limits_json();
        options["backend"] = self.backend.name().into();
        options["objective"] = serde_json::json!(spec.objective);
        options["space_file"] = spec.path.display().to_string().into();
        options["honour_stop"] = self.honour_stop.into();
        options["job"] = job_json(spec);
        if let Some(id) = &self.search_id {
            options["search_id"] = id.clone().into();
        }
        // Only when it matters: a sequential search's journal is what it always was.
        if self.parallel > 1 {
            options["parallel"] = self.parallel.into();
        }
        options
    }

    /// The limits a resumed run writes in its `resumed` event (the header's names).
    fn limits_json(&self) -> serde_json::Value {
        serde_json::json!({
            "budget": self.budget,
            "max_runtime_s": self.max_runtime_s,
            "max_spend_usd": self.max_spend_usd,
            "probe_timeout_s": self.probe_timeout.map(|d| d.as_secs_f64()),
        })
    }

    /// The limits of every probe (without the interrupt flag, which a running search adds).
    pub fn limits(&self) -> ProbeLimits {
        ProbeLimits {
            timeout: self.probe_timeout,
            interrupt: None,
        }
    }
}

/// What a probe runs, as the journal header keeps it: the space file's workload (its scratch
/// folder aside, which moves no measurement) and its backend settings (the command backend's
/// log size aside). A resume must run the same job, or its probes' figures would not compare
/// with the recorded ones.
fn job_json(spec: &SearchSpec) -> serde_json::Value {
    let mut workload = serde_json::to_value(&spec.workload).unwrap_or_default();
    if let Some(w) = workload.as_object_mut() {
        w.remove("scratch");
    }
    let mut backend = serde_json::to_value(&spec.backend).unwrap_or_default();
    if let Some(c) = backend.get_mut("command").and_then(|c| c.as_object_mut()) {
        c.remove("log_bytes");
    }
    serde_json::json!({ "workload": workload, "backend": backend })
}

/// The first place two JSON values differ, as a dotted path with both values (`None`: equal).
fn first_difference(
    recorded: &serde_json::Value,
    here: &serde_json::Value,
    path: &str,
) -> Option<String> {
    use serde_json::Value;
    match (recorded, here) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                let inner = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                first_difference(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), &inner)
            })
        }
        _ if recorded == here => None,
        _ => Some(format!(
            "`{path}` was {recorded}, this space file has {here}"
        )),
    }
}

/// A signal that stopped a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, a scheduler, `systemctl stop`).
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }
}

/// How a session ended: the search's result, and the signal that stopped it, if one did.
#[derive(Debug, Clone)]
pub struct Ended {
    pub result: SearchResult,
    pub signal: Option<StopSignal>,
}

/// The stop signals, listened for from the moment a session starts.
struct StopSignals {
    streams: [(StopSignal, Signal); 3],
    /// The signals this process was started with ignored (`nohup` ignores SIGHUP, a script's
    /// background job SIGINT): received, they are let pass, as the caller asked.
    ignored: Vec<StopSignal>,
}

/// Whether `signal` was inherited ignored. Read before a handler is installed (installing
/// one replaces the inherited disposition).
fn inherited_ignored(signal: libc::c_int) -> bool {
    // SAFETY: with a null new action, sigaction only writes the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

impl StopSignals {
    /// Must run inside the session's runtime.
    fn listen() -> std::io::Result<StopSignals> {
        let ignored = [
            (StopSignal::Interrupt, libc::SIGINT),
            (StopSignal::Terminate, libc::SIGTERM),
            (StopSignal::Hangup, libc::SIGHUP),
        ]
        .into_iter()
        .filter(|&(_, n)| inherited_ignored(n))
        .map(|(s, _)| s)
        .collect();
        Ok(StopSignals {
            streams: [
                (StopSignal::Interrupt, signal(SignalKind::interrupt())?),
                (StopSignal::Terminate, signal(SignalKind::terminate())?),
                (StopSignal::Hangup, signal(SignalKind::hangup())?),
            ],
            ignored,
        })
    }

    /// Sets `interrupt` at the first signal and keeps it in `first`; says so at each one,
    /// the first time with `stopping` (what stopping does).
    async fn serve(
        mut self,
        interrupt: Arc<AtomicBool>,
        first: Arc<OnceLock<StopSignal>>,
        stopping: &'static str,
    ) {
        loop {
            let [(a, sa), (b, sb), (c, sc)] = &mut self.streams;
            let got = tokio::select! {
                Some(()) = sa.recv() => *a,
                Some(()) = sb.recv() => *b,
                Some(()) = sc.recv() => *c,
                // Every stream ended: the runtime is going away with the session.
                else => return,
            };
            if self.ignored.contains(&got) {
                continue;
            }
            if first.set(got).is_ok() {
                crate::note!("\n{}: stopping: {stopping}", got.name());
                interrupt.store(true, Ordering::SeqCst);
            } else {
                crate::note!("{}: already stopping; waiting for the cleanup", got.name());
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP watched on a thread of their own for a command that runs no
/// runtime (the workload commands): the first sets the flag the work checks, so it stops and
/// cleans up (no shard of an unfinished run left looking finished) instead of dying mid-write.
pub struct SignalWatch {
    _runtime: tokio::runtime::Runtime,
    first: Arc<OnceLock<StopSignal>>,
}

impl SignalWatch {
    /// Starts watching; `stopping` says what stopping does.
    pub fn start(flag: Arc<AtomicBool>, stopping: &'static str) -> std::io::Result<SignalWatch> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let signals = {
            let _in_runtime = runtime.enter();
            StopSignals::listen()?
        };
        let first = Arc::new(OnceLock::new());
        runtime.spawn(signals.serve(flag, first.clone(), stopping));
        Ok(SignalWatch {
            _runtime: runtime,
            first,
        })
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<StopSignal> {
        self.first.get().copied()
    }
}

/// A journal opened for a search: the writer, and the probes it already holds (when resumed).
struct Opened {
    writer: JournalWriter,
    recorded: Vec<(ConfigId, Outcome, Option<f64>)>,
    resumed: bool,
    /// Probes launched and never finished (the earlier run died with them in flight).
    in_flight: Vec<Proposal>,
    /// The next launch event's number, when the journal records launches.
    next_launch: Option<usize>,
    /// What probes cancelled by a signal in earlier runs were billed.
    abandoned_usd: f64,
    /// What finished probes were billed beyond their outcomes' spend (a cluster left standing).
    billed_beyond_usd: f64,
    /// The asks and tells that wrote the journal, in order (see [`replay_plan`]).
    plan: Vec<Replay>,
    /// The limits the journal's search was started with (its header's options).
    recorded_limits: RecordedLimits,
    /// The stop rule ended the journal's search: probes told then, and what it measured.
    stopped: Option<(usize, String)>,
}

/// A resumed search's limits as its journal last recorded them (the header's, or the latest
/// `resumed` event's). Each is checked only where a resume keeps it, so a value this run
/// replaces by a flag (say one an older version wrote, such as a probe time limit past a year)
/// never stops a resume.
#[derive(Debug, Clone, PartialEq)]
struct RecordedLimits {
    budget: Result<Option<usize>, String>,
    max_spend_usd: Result<Option<f64>, String>,
    probe_timeout: Result<Option<Duration>, String>,
    /// Where they were read, for messages (`line 1: the header's`).
    from: String,
}

impl Default for RecordedLimits {
    fn default() -> Self {
        RecordedLimits {
            budget: Ok(None),
            max_spend_usd: Ok(None),
            probe_timeout: Ok(None),
            from: String::new(),
        }
    }
}

impl RecordedLimits {
    /// The limits `options` records, each absent or `null` where the run had none. A value
    /// that is there but is no limit is an error (for [`RecordedLimits::keep`] to report):
    /// read as "none", a hand-edited `"budget": 2.5` would lift the cap a bare resume keeps.
    fn of(options: &serde_json::Value, from: String) -> RecordedLimits {
        let field = |key: &str| options.get(key).filter(|v| !v.is_null());
        let refuse = |key: &str, v: &serde_json::Value, what: &str| {
            format!("field `options.{key}`: `{v}` is not {what}")
        };
        let positive = |key: &str| -> Result<Option<f64>, String> {
            match field(key) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(Some)
                    .ok_or_else(|| refuse(key, v, "a positive number")),
            }
        };
        let budget = match field("budget") {
            None => Ok(None),
            // Any whole number a search takes, also when a tool wrote it as `2.0`.
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|b| b.fract() == 0.0 && *b >= 1.0 && *b <= (1u64 << 53) as f64)
                        .map(|b| b as u64)
                })
                .and_then(|b| usize::try_from(b).ok())
                .filter(|&b| b >= 1)
                .map(Some)
                .ok_or_else(|| refuse("budget", v, "a budget (a whole number >= 1)")),
        };
        let probe_timeout = positive("probe_timeout_s").and_then(|t| {
            t.map(|t| {
                crate::limits::seconds("probe_timeout_s", t)
                    .map_err(|e| format!("field `options.probe_timeout_s`: {e}"))
            })
            .transpose()
        });
        RecordedLimits {
            budget,
            max_spend_usd: positive("max_spend_usd"),
            probe_timeout,
            from,
        }
    }

    /// `settings` with the recorded limits where this run gives none: a resumed search keeps
    /// the budget, spend limit and probe time limit it last ran with (a spend cap dropped by
    /// resuming without the flag would let the search pass it). What was kept is said. Fails
    /// on a recorded limit it would keep that is no limit, naming its field and the flag
    /// that sets another.
    fn keep(&self, settings: &Settings) -> Result<Settings, String> {
        let mut kept = settings.clone();
        let mut said = Vec::new();
        fn recorded<T: Clone>(
            r: &Result<Option<T>, String>,
            from: &str,
            flag: &str,
        ) -> Result<Option<T>, String> {
            r.clone()
                .map_err(|e| format!("{from} {e}; give {flag} to set another"))
        }
        if settings.budget.is_none() {
            if let Some(b) = recorded(&self.budget, &self.from, "--budget")? {
                kept.budget = Some(b);
                said.push(format!("budget {b} (--budget)"));
            }
        }
        if settings.max_spend_usd.is_none() {
            if let Some(m) = recorded(&self.max_spend_usd, &self.from, "--max-spend")? {
                kept.max_spend_usd = Some(m);
                said.push(format!(
                    "spend limit ${} (--max-spend)",
                    optimizer::Shown(m)
                ));
            }
        }
        // The probes run to the time limit the recorded ones ran to (a probe that timed out
        // then would not compare with one let run longer now), and a spend cap holds only with
        // one.
        if !settings.probe_timeout_given {
            if let Some(t) = recorded(&self.probe_timeout, &self.from, "--probe-timeout")?
                .filter(|&t| settings.probe_timeout != Some(t))
            {
                kept.probe_timeout = Some(t);
                said.push(format!(
                    "probe time limit {} s (--probe-timeout)",
                    optimizer::Shown(t.as_secs_f64())
                ));
            }
        }
        if kept.max_spend_usd.is_some() && kept.probe_timeout.is_none() {
            return Err(
                "--max-spend needs a probe time limit (--probe-timeout or a runtime limit), and \
                 neither this run nor the journal gives one: without one a probe's worst-case \
                 cost is unbounded"
                    .into(),
            );
        }
        if !said.is_empty() {
            crate::say!(
                "keeping the journal's {}: give the option to change it",
                said.join(", ")
            );
        }
        Ok(kept)
    }
}

fn open_journal(
    spec: &SearchSpec,
    settings: &Settings,
    path: &Path,
    resume: bool,
) -> Result<Opened, Error> {
    let space = &spec.space;
    let mut headerless = false;
    let existing = if resume {
        match Journal::read(path) {
            Ok(j) => Some(j),
            Err(JournalError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(no_journal_to_resume(path));
            }
            // Killed before the header reached the disk: nothing to resume. The file is not
            // removed here: `create` starts it over once it holds the lock, and refuses if
            // another process holds it.
            Err(JournalError::Empty { .. }) => {
                headerless = true;
                None
            }
            Err(e) => return Err(Error::JournalInput(e.to_string())),
        }
    } else {
        None
    };
    let Some(j) = existing else {
        let mut header = Header::new(
            space,
            &settings.strategy,
            settings.seed,
            settings.options_json(spec),
        );
        if settings.parallel > 1 {
            header.version = optimizer::journal::VERSION_PARALLEL;
        }
        let writer = JournalWriter::create(path, &header).map_err(creating)?;
        if headerless {
            crate::note!(
                "{}: the journal holds no header (its search was stopped before writing one): \
                 nothing to resume, starting a new search there",
                path.display()
            );
        }
        return Ok(Opened {
            writer,
            recorded: Vec::new(),
            resumed: false,
            in_flight: Vec::new(),
            next_launch: (settings.parallel > 1).then_some(0),
            abandoned_usd: 0.0,
            billed_beyond_usd: 0.0,
            plan: Vec::new(),
            recorded_limits: RecordedLimits::default(),
            stopped: None,
        });
    };
    let opening = |error| match error {
        // The journal is in use or changed under us: the user's to sort out (exit 2).
        JournalError::Locked { .. } | JournalError::Changed { .. } => journal_in_use(error),
        error => Error::Journal {
            context: "opening the journal to append",
            error,
        },
    };
    // In use by another search: said first, whatever else differs.
    JournalWriter::ensure_free(path).map_err(opening)?;
    j.header
        .check_matches(space, &settings.strategy, settings.seed)
        .and_then(|()| {
            // Journals written before the header kept the job have nothing to compare.
            match j.header.options.get("job") {
                Some(recorded) => match first_difference(recorded, &job_json(spec), "") {
                    Some(d) => Err(format!("it ran another job: {d}")),
                    None => Ok(()),
                },
                None => Ok(()),
            }
        })
        .map_err(|why| {
            Error::JournalInput(format!(
                "{} belongs to another search: {why}",
                path.display()
            ))
        })?;
    let outcomes = j
        .outcomes(space)
        .map_err(|e| Error::JournalInput(format!("{}: {e}", path.display())))?;
    if j.torn_tail {
        crate::note!(
            "note: {}: dropped a record cut short by a crash (that probe runs again)",
            path.display()
        );
    }
    let recorded = outcomes
        .into_iter()
        .zip(&j.records)
        .map(|((id, o), r)| (id, o, r.expected_improvement))
        .collect();
    let in_flight = j
        .in_flight()
        .into_iter()
        .map(|l| {
            space
                .find(&l.config)
                .map(|config| Proposal {
                    config,
                    expected_improvement: l.expected_improvement,
                    stop: false,
                })
                .ok_or_else(|| {
                    Error::JournalInput(format!(
                        "{}: launch {} names configuration `{}`, which is not in the space",
                        path.display(),
                        l.launch,
                        l.config
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A journal that records launches goes on recording them, whatever --parallel is now.
    let next_launch = (settings.parallel > 1 || !j.launches.is_empty()).then(|| j.next_launch());
    if let Some(n) = next_launch.filter(|&n| n > optimizer::journal::MAX_RESUMABLE_LAUNCH) {
        return Err(Error::JournalInput(format!(
            "{}: its launch numbers reach {}, beyond any search's (a hand-edited journal?): \
             it can be replayed and exported, not resumed",
            path.display(),
            n - 1
        )));
    }
    let plan = replay_plan(&j, space)
        .map_err(|e| Error::JournalInput(format!("{}: {e}", path.display())))?;
    // The latest run's limits: the header holds the first run's.
    let recorded_limits = match j.resumes.last() {
        Some(r) => RecordedLimits::of(
            &r.options,
            format!("its last `resumed` event (of {}),", j.resumes.len()),
        ),
        None => RecordedLimits::of(&j.header.options, "line 1: the header's".into()),
    };
    let writer = JournalWriter::append_to(path, &j).map_err(opening)?;
    Ok(Opened {
        writer,
        recorded,
        resumed: true,
        in_flight,
        next_launch,
        abandoned_usd: j.abandoned_spend(),
        billed_beyond_usd: j.billed_beyond_spend(),
        plan,
        recorded_limits,
        stopped: j.stopped.map(|s| (s.told, s.detail)),
    })
}

fn no_journal_to_resume(path: &Path) -> Error {
    Error::JournalInput(format!(
        "{}: no journal there to --resume (run without --resume to start a new search)",
        path.display()
    ))
}

/// What opening the journal at `path` would refuse, said before any slow set-up: nothing there
/// to `--resume`, or a journal there (one with a header) without it. Opening checks again.
pub fn check_journal_early(path: &Path, resume: bool) -> Result<(), Error> {
    let exists = std::fs::symlink_metadata(path).is_ok();
    if resume && !exists {
        return Err(no_journal_to_resume(path));
    }
    if !resume && optimizer::journal::is_journal(path) {
        // A journal a running search holds is named as that, not as one to resume.
        if let Err(e @ JournalError::Locked { .. }) = JournalWriter::ensure_free(path) {
            return Err(journal_in_use(e));
        }
        return Err(Error::JournalInput(format!(
            "{}: {}",
            path.display(),
            optimizer::journal::ALREADY_EXISTS
        )));
    }
    Ok(())
}

fn journal_in_use(e: JournalError) -> Error {
    Error::JournalInput(e.to_string())
}

/// Why a new journal could not be started: the disk's doing (full, over quota, failing: exit 1,
/// as when a later record cannot be written) or the user's (the path is taken, held by another
/// search, not a file, not writable: exit 2).
fn creating(error: JournalError) -> Error {
    if error.is_disk_failure() {
        Error::Journal {
            context: "starting the journal",
            error,
        }
    } else {
        journal_in_use(error)
    }
}

/// One step of the search that wrote a journal, as its strategy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// It asked, and was given this configuration.
    Ask(ConfigId),
    /// It told the outcome of the journal's record of this index.
    Tell(usize),
}

/// The asks and tells that wrote `journal`, in order: each launch event is an ask (unless its
/// probe is a re-run of one launched before and never finished, which a resumed search runs
/// without asking), and each record a tell, preceded by its ask when no launch event stood for
/// it (probes run one at a time write none).
fn replay_plan(journal: &Journal, space: &Space) -> Result<Vec<Replay>, String> {
    let find = |name: &str, what: String| {
        space.find(name).ok_or_else(|| {
            format!("{what} names configuration `{name}`, which is not in the space")
        })
    };
    let mut plan = Vec::with_capacity(2 * journal.records.len());
    let mut outstanding = std::collections::HashSet::new();
    for step in &journal.order {
        match *step {
            Step::Launch(i) => {
                let l = &journal.launches[i];
                let config = find(&l.config, format!("launch {}", l.launch))?;
                if outstanding.insert(config) {
                    plan.push(Replay::Ask(config));
                }
            }
            Step::Record(i) => {
                let r = &journal.records[i];
                let config = find(&r.config, format!("probe {}", r.index))?;
                if !outstanding.remove(&config) {
                    plan.push(Replay::Ask(config));
                }
                plan.push(Replay::Tell(i));
            }
        }
    }
    Ok(plan)
}

/// Asks and tells `strategy` what the search that wrote the journal did (`plan`, telling
/// `recorded`). Returns the first configuration it would not have chosen (its state is then
/// spoilt by that ask: start a fresh one).
fn replay(
    strategy: &mut dyn Optimizer,
    plan: &[Replay],
    recorded: &[(ConfigId, Outcome, Option<f64>)],
) -> Result<(), ConfigId> {
    for step in plan {
        match *step {
            Replay::Ask(config) => match strategy.ask() {
                Some(p) if p.config == config => {}
                _ => return Err(config),
            },
            Replay::Tell(i) => {
                let (config, outcome, _) = &recorded[i];
                strategy.tell(*config, outcome.clone());
            }
        }
    }
    Ok(())
}

/// Brings `strategy` (fresh) to where a resumed journal left it: replayed when it chooses each
/// recorded probe again, else told every probe without asking (`fresh` makes another strategy
/// when a replay has spoilt the first). Shows every probe. Returns the first configuration the
/// strategy would not have chosen, if any.
fn retell(
    strategy: &mut Box<dyn Optimizer>,
    fresh: impl FnOnce() -> Result<Box<dyn Optimizer>, Error>,
    plan: &[Replay],
    recorded: Vec<(ConfigId, Outcome, Option<f64>)>,
    progress: &mut Progress,
) -> Result<Option<ConfigId>, Error> {
    let otherwise = match replay(strategy.as_mut(), plan, &recorded) {
        Ok(()) => None,
        Err(config) => {
            *strategy = fresh()?;
            for (config, outcome, _) in &recorded {
                strategy.tell(*config, outcome.clone());
            }
            Some(config)
        }
    };
    for (index, (config, outcome, ei)) in recorded.into_iter().enumerate() {
        let proposal = Proposal {
            config,
            expected_improvement: ei,
            stop: false,
        };
        progress.on_outcome(index, &proposal, &Report::recorded(outcome));
    }
    Ok(otherwise)
}

/// Runs (or resumes) a journaled search with `runner`, printing progress and a summary.
/// A search stopped by a signal returns its result with `Termination::Interrupted` and the
/// signal.
pub fn run<R: Runner + Sync>(
    spec: &SearchSpec,
    settings: &Settings,
    journal_path: &Path,
    resume: bool,
    runner: R,
) -> Result<Ended, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // Listening before the journal is opened: from here on a signal takes the orderly path.
    let interrupt = Arc::new(AtomicBool::new(false));
    let first_signal = Arc::new(OnceLock::new());
    let signals = {
        let _in_runtime = rt.enter();
        StopSignals::listen().map_err(Error::Runtime)?
    };
    rt.spawn(signals.serve(
        interrupt.clone(),
        first_signal.clone(),
        "no new probe; the running one is cancelled and cleaned up (its threads, process group \
         or cluster, as its backend runs it); finished probes are in the journal",
    ));
    let space = Arc::new(spec.space.clone());
    let strategy_options = StrategyOptions {
        seed: settings.seed,
        max_runtime_s: settings.max_runtime_s,
    };
    let fresh = || build_strategy(&settings.strategy, space.clone(), &strategy_options);
    let mut strategy = fresh()?;
    let Opened {
        mut writer,
        recorded,
        resumed,
        in_flight,
        next_launch,
        abandoned_usd,
        billed_beyond_usd,
        plan,
        recorded_limits,
        stopped,
    } = open_journal(spec, settings, journal_path, resume)?;
    let already = recorded.len();
    let mut progress = Progress::new(space.clone(), settings.max_runtime_s);
    if resumed {
        crate::say!(
            "resuming {}: {already} finished probes, to a fresh `{}` strategy (seed {})",
            journal_path.display(),
            settings.strategy,
            settings.seed
        );
    }
    let settings = &recorded_limits
        .keep(settings)
        .map_err(|e| Error::JournalInput(format!("{}: {e}", journal_path.display())))?;
    let stopped = stopped.filter(|_| settings.honour_stop);
    if resumed {
        // What this run is limited by, for the next resume to keep, and whether it keeps the
        // stop rule: then an earlier stop holds for a resume of this run too, however this one
        // ends (killed while re-running probes left in flight, or on its budget).
        let record = ResumedRecord {
            resumed: optimizer::journal::rfc3339(std::time::SystemTime::now()),
            options: settings.limits_json(),
            keeps_stop: settings.honour_stop,
        };
        writer
            .append_resumed(&record)
            .map_err(|error| Error::Journal {
                context: "writing the journal",
                error,
            })?;
    }
    if abandoned_usd > 0.0 {
        crate::say!(
            "probes cancelled by a stop signal in earlier runs cost ${abandoned_usd:.6}: counted as \
             spent (they run again)"
        );
    }
    if billed_beyond_usd > 0.0 {
        crate::say!(
            "earlier probes were billed ${billed_beyond_usd:.6} beyond their recorded cost (a \
             cluster left standing until its scheduled deletion): counted as spent"
        );
    }
    let otherwise = retell(
        &mut strategy,
        || fresh().map_err(Error::from),
        &plan,
        recorded,
        &mut progress,
    )?;
    if resumed && !plan.is_empty() {
        match otherwise {
            None => crate::say!(
                "replayed: the strategy chose each recorded probe again, so it goes on as the \
                 search would have without the interruption"
            ),
            Some(config) => crate::say!(
                "told without replaying: the strategy would not have chosen {} where the search \
                 that wrote the journal did (another build, runtime limit or spend limit); every \
                 probe is in its model, and what it chooses next may differ from what the \
                 search would have chosen",
                space.config(config).name
            ),
        }
    }
    if let Some((told, detail)) = &stopped {
        crate::say!(
            "the search's stop rule ended it after {} (stop rule: {detail}): nothing new is \
             launched (--no-stop goes on)",
            crate::progress::count(*told, "probe")
        );
    }
    if !in_flight.is_empty() {
        let names: Vec<&str> = in_flight
            .iter()
            .map(|p| space.config(p.config).name.as_str())
            .collect();
        // The budget counts them: only as many as it leaves room for run again.
        let room = settings
            .budget
            .map_or(names.len(), |b| b.saturating_sub(already).min(names.len()));
        let again = match room {
            0 => format!(
                "the budget ({} probes) is reached, so none runs again",
                settings.budget.unwrap_or(0)
            ),
            n if n == names.len() => format!("running them again first: {}", names.join(", ")),
            n => format!(
                "the budget leaves room for {n}, run again first: {}",
                names[..n].join(", ")
            ),
        };
        crate::say!(
            "{} were running when the earlier run stopped; {again}",
            crate::progress::count(in_flight.len(), "probe")
        );
    }

    let mut journal =
        JournalObserver::new(writer, space.clone(), already).stop_on_error(interrupt.clone());
    if let Some(next) = next_launch {
        journal = journal.with_launch_events(next);
    }
    if stopped.is_some() {
        journal = journal.stop_already_recorded();
    }
    let options = DriveOptions {
        budget: settings.budget,
        honour_stop: settings.honour_stop,
        max_spend_usd: settings.max_spend_usd,
        max_runtime_s: settings.max_runtime_s,
        limits: ProbeLimits {
            timeout: settings.probe_timeout,
            interrupt: Some(interrupt.clone()),
        },
        parallel: settings.parallel,
        relaunch: in_flight,
        spent_before_usd: abandoned_usd + billed_beyond_usd,
        stopped,
    };
    let started = Instant::now();
    let result = rt.block_on(async {
        let mut observers: [&mut dyn Observer; 2] = [&mut progress, &mut journal];
        drive(&space, strategy.as_mut(), &runner, &options, &mut observers).await
    });
    let wall = started.elapsed();
    if let Some(error) = journal.error() {
        return Err(Error::Journal {
            context: "writing the journal; the search was stopped",
            error,
        });
    }
    print_summary(
        &space,
        &result,
        wall,
        progress.probe_seconds,
        journal.records(),
        journal_path,
    );
    Ok(Ended {
        result,
        signal: first_signal.get().copied(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spacefile::{parse, LoadOptions};
    use optimizer::{Space, Termination};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Answers every configuration with a runtime from its index and counts what it ran.
    #[derive(Default)]
    struct Fake {
        ran: Arc<Mutex<Vec<ConfigId>>>,
    }

    impl Runner for Fake {
        async fn run(&self, space: &Space, config: ConfigId, _: &ProbeLimits) -> Report {
            self.ran.lock().unwrap().push(config);
            let runtime = 10.0 + config as f64;
            Report::new(Outcome::Completed {
                runtime_s: runtime,
                cost_usd: space.config(config).price_per_hour * runtime / 3600.0,
                metrics: BTreeMap::new(),
            })
        }
    }

    fn spec() -> SearchSpec {
        parse(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"workers\"\n\
             [catalogue.dimensions]\nworkers = [1, 2, 4, 8, 16, 32]\n",
            Path::new("/tmp/space.toml"),
            &LoadOptions {
                backend: BackendKind::Command,
                prices: None,
            },
        )
        .unwrap()
    }

    fn settings(strategy: &str, seed: u64, budget: usize) -> Settings {
        Settings {
            strategy: strategy.into(),
            seed,
            budget: Some(budget),
            max_runtime_s: None,
            max_spend_usd: None,
            probe_timeout: None,
            probe_timeout_given: false,
            honour_stop: false,
            backend: BackendKind::Command,
            search_id: None,
            parallel: 1,
        }
    }

    /// Recorded limits are checked only where kept, and a kept spend limit needs a time limit
    /// from this run or the journal.
    #[test]
    fn recorded_limits_are_checked_where_kept() {
        let recorded = RecordedLimits::of(
            &serde_json::json!({"budget": "x", "max_spend_usd": 0.5, "probe_timeout_s": null}),
            "line 1: the header's".into(),
        );
        let mut s = settings("random", 1, 3);
        // The budget is given: the bad recorded one is moot. The spend limit is kept, but
        // nothing gives a time limit.
        let e = recorded.keep(&s).unwrap_err();
        assert!(e.starts_with("--max-spend needs a probe time limit"), "{e}");
        s.probe_timeout = Some(Duration::from_secs(20));
        let kept = recorded.keep(&s).unwrap();
        assert_eq!(kept.max_spend_usd, Some(0.5));
        s.budget = None;
        let e = recorded.keep(&s).unwrap_err();
        assert_eq!(
            e,
            "line 1: the header's field `options.budget`: `\"x\"` is not a budget (a whole \
             number >= 1); give --budget to set another"
        );
    }

    /// A journal written by `grid` (catalogue order) resumed by a strategy that would choose
    /// otherwise: every recorded probe is told, none runs again, and the rest are new.
    #[test]
    fn resume_keeps_every_paid_probe_when_the_strategy_chooses_differently() {
        let dir = std::env::temp_dir().join(format!("cp-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.jsonl");
        let spec = spec();
        run(
            &spec,
            &settings("random", 3, 3),
            &path,
            false,
            Fake::default(),
        )
        .unwrap();
        // Rewrite the header's strategy and seed so a differently seeded strategy resumes it: its
        // first asks differ from the recorded probes (what a changed build would do).
        let text = std::fs::read_to_string(&path).unwrap();
        let recorded: Vec<String> = text
            .lines()
            .skip(1)
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["config"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(recorded.len(), 3);
        // (Edited as text: a JSON round trip of the header could change a price's last digit.)
        let header = text.lines().next().unwrap();
        assert!(header.contains("\"seed\":3,"), "{header}");
        let rest: Vec<&str> = text.lines().skip(1).collect();
        let header = header.replace("\"seed\":3,", "\"seed\":11,");
        std::fs::write(&path, format!("{header}\n{}\n", rest.join("\n"))).unwrap();
        let fresh: Vec<ConfigId> = {
            let mut s = build_strategy(
                "random",
                Arc::new(spec.space.clone()),
                &StrategyOptions {
                    seed: 11,
                    max_runtime_s: None,
                },
            )
            .unwrap();
            (0..3).map(|_| s.ask().unwrap().config).collect()
        };
        let fresh_names: Vec<&str> = fresh
            .iter()
            .map(|&c| spec.space.config(c).name.as_str())
            .collect();
        assert_ne!(
            fresh_names, recorded,
            "the test needs a strategy that differs"
        );

        let resumed = Fake::default();
        let ran = resumed.ran.clone();
        let result = run(&spec, &settings("random", 11, 5), &path, true, resumed)
            .unwrap()
            .result;
        assert_eq!(result.termination, Termination::Budget { evaluations: 5 });
        assert_eq!(result.evaluations, 5, "3 recorded + 2 new");
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran.len(), 2, "only new probes run: {ran:?}");
        for id in &ran {
            assert!(
                !recorded.contains(&spec.space.config(*id).name),
                "a recorded probe ran again: {}",
                spec.space.config(*id).name
            );
        }
        // The spend counts the recorded probes too, and the journal holds all five once.
        let j = Journal::read(&path).unwrap();
        assert_eq!(j.records.len(), 5);
        let in_journal: f64 = j.records.iter().map(|r| r.outcome.spend_usd()).sum();
        assert!((result.spent_usd - in_journal).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }
    /// A journal that cannot be started because the disk is full is the disk's failure (exit 1,
    /// as for a record that cannot be written later), not the user's input; a path another
    /// search holds or a file already there is the user's (exit 2).
    #[test]
    fn a_full_disk_is_not_bad_input_but_a_taken_path_is() {
        let io = |error: std::io::Error| JournalError::Io {
            path: "/j".into(),
            error,
        };
        for disk in [
            std::io::Error::from_raw_os_error(libc::ENOSPC),
            std::io::Error::from_raw_os_error(libc::EDQUOT),
            std::io::Error::from_raw_os_error(libc::EFBIG),
            std::io::Error::from_raw_os_error(libc::EIO),
        ] {
            let e = creating(io(disk));
            assert!(!e.is_bad_input(), "{e}");
            assert!(e.to_string().contains("starting the journal"), "{e}");
        }
        for input in [
            io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                optimizer::journal::ALREADY_EXISTS,
            )),
            io(std::io::Error::from_raw_os_error(libc::EACCES)),
            io(std::io::Error::other("not a regular file")),
            JournalError::Locked {
                path: "/j".into(),
                pid: Some(1),
            },
        ] {
            assert!(creating(input).is_bad_input());
        }
    }

    /// Answers with a rugged runtime that depends only on the configuration.
    struct Rugged;

    impl Runner for Rugged {
        async fn run(&self, space: &Space, config: ConfigId, _: &ProbeLimits) -> Report {
            let runtime = 30.0 + ((config * 7919) % 23) as f64 * 5.0 + config as f64;
            Report::new(Outcome::Completed {
                runtime_s: runtime,
                cost_usd: space.config(config).price_per_hour * runtime / 3600.0,
                metrics: BTreeMap::new(),
            })
        }
    }

    fn rugged_spec() -> SearchSpec {
        parse(
            "[catalogue]\nmachine_types = [\"e2-standard-2\", \"e2-standard-4\", \"e2-standard-8\"]\n\
             count = \"workers\"\n[catalogue.dimensions]\nworkers = [1, 2, 3, 4, 6, 8, 12, 16]\n",
            Path::new("/tmp/space.toml"),
            &LoadOptions {
                backend: BackendKind::Command,
                prices: None,
            },
        )
        .unwrap()
    }

    /// Each record's configuration and the expected improvement the strategy gave it.
    fn journal_choices(path: &Path) -> Vec<(String, Option<f64>)> {
        Journal::read(path)
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.config, r.expected_improvement))
            .collect()
    }

    /// A search stopped at any line of its journal and resumed chooses what the uninterrupted
    /// search chose, probe for probe and with the same expected improvement, and ends the same
    /// way: for model strategies (whose hyper-parameter chains carry over from ask to ask) and
    /// the others alike, one probe at a time or several (where the probes in flight are run
    /// again first, as launched).
    #[test]
    fn a_resumed_search_goes_on_as_the_uninterrupted_one() {
        let dir = std::env::temp_dir().join(format!("cp-session-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spec = rugged_spec();
        for (strategy, honour_stop, parallel) in [
            ("bo", true, 1),
            ("bo", false, 1),
            ("cherrypick", true, 1),
            ("random", false, 1),
            ("coordinate", false, 1),
            ("bo", false, 3),
            ("bo", true, 2),
            ("random", false, 2),
        ] {
            let mut settings = settings(strategy, 7, 14);
            settings.honour_stop = honour_stop;
            settings.parallel = parallel;
            let name = format!("{strategy}-{honour_stop}-{parallel}");
            let whole = dir.join(format!("{name}.jsonl"));
            let ended = run(&spec, &settings, &whole, false, Rugged).unwrap().result;
            let chosen = journal_choices(&whole);
            assert!(chosen.len() >= 6, "{name}: {}", chosen.len());
            let text = std::fs::read_to_string(&whole).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            // A search its stop rule ended says so in the journal.
            assert_eq!(
                text.contains("\"event\":\"stopped\""),
                honour_stop && matches!(ended.termination, Termination::StopRule { .. }),
                "{name}"
            );
            // Every cut from the header's first event to the whole journal: a resume of a
            // search that ended stays ended (its stop rule's end included, where probes in
            // flight when it fired came back since and a new ask could launch one more).
            for cut in 1..lines.len() {
                let path = dir.join(format!("{name}-{cut}.jsonl"));
                std::fs::write(&path, format!("{}\n", lines[..=cut].join("\n"))).unwrap();
                let resumed = run(&spec, &settings, &path, true, Rugged).unwrap().result;
                assert_eq!(
                    journal_choices(&path),
                    chosen,
                    "{name}: resumed after line {cut}"
                );
                assert_eq!(resumed.termination, ended.termination, "{name} after {cut}");
                assert_eq!(resumed.best, ended.best, "{name} after {cut}");
                // That resume killed right after it wrote its `resumed` event (before re-running
                // what was in flight or reaching its stop) and resumed again ends the same.
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let at = lines
                    .iter()
                    .rposition(|l| l.contains("\"event\":\"resumed\""))
                    .unwrap();
                let again = dir.join(format!("{name}-{cut}-again.jsonl"));
                std::fs::write(&again, format!("{}\n", lines[..=at].join("\n"))).unwrap();
                let twice = run(&spec, &settings, &again, true, Rugged).unwrap().result;
                assert_eq!(journal_choices(&again), chosen, "{name}: twice after {cut}");
                assert_eq!(twice.termination, ended.termination, "{name} twice {cut}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
