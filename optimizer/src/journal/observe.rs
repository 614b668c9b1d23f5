//! The journal in a live drive: an observer that writes each launch and finished probe, and a
//! runner that answers from a journal's records (`replay --journal`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::driver::{Observer, ProbeLimits, Report, Runner, SearchResult};
use crate::outcome::Outcome;
use crate::space::{ConfigId, Space};
use crate::strategy::Proposal;

use super::{
    rfc3339, AbandonedRecord, JournalError, JournalWriter, LaunchRecord, ProbeRecord, StoppedRecord,
};

/// Writes a journal record for every probe a live drive finishes.
///
/// Probes whose report says they were read from a record are not written again. A write error
/// stops the search (through `stop`) and is kept in [`JournalObserver::error`].
pub struct JournalObserver {
    writer: JournalWriter,
    space: Arc<Space>,
    next_index: usize,
    /// With several probes in flight: the number the next `launch` event gets.
    next_launch: Option<usize>,
    /// Per drive launch index: the launch's number and start time.
    launched: HashMap<usize, (usize, SystemTime)>,
    stop: Option<Arc<AtomicBool>>,
    /// The journal already ends this search with a `stopped` event: the stop rule is not
    /// recorded again.
    stop_recorded: bool,
    error: Option<JournalError>,
}

impl JournalObserver {
    /// `already` = number of records the journal holds (the next record's index).
    pub fn new(writer: JournalWriter, space: Arc<Space>, already: usize) -> JournalObserver {
        JournalObserver {
            writer,
            space,
            next_index: already,
            next_launch: None,
            launched: HashMap::new(),
            stop: None,
            stop_recorded: false,
            error: None,
        }
    }
    /// Write a `launch` event when each probe starts, numbered from `next_launch`, and each
    /// record's launch number (journal version 1.1: several probes in flight).
    pub fn with_launch_events(mut self, next_launch: usize) -> Self {
        self.next_launch = Some(next_launch);
        self
    }
    /// The journal already records the stop rule's end (a resume of a search that ended there,
    /// its `resumed` event keeping it): the drive's stop is not written a second time.
    pub fn stop_already_recorded(mut self) -> Self {
        self.stop_recorded = true;
        self
    }
    /// Set `flag` (the search's interrupt flag) if a write fails, so the search stops.
    pub fn stop_on_error(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }
    /// Keeps the first write error and stops the search.
    fn fail(&mut self, e: JournalError) {
        self.error = Some(e);
        if let Some(flag) = &self.stop {
            flag.store(true, Ordering::SeqCst);
        }
    }
    /// The first write error, if any.
    pub fn error(&mut self) -> Option<JournalError> {
        self.error.take()
    }
    /// The launch number and start time of drive launch `index`, which has ended; `None` when
    /// nothing is to be written of it (a report read from a record, or a write already failed).
    fn ended(&mut self, index: usize, report: &Report) -> Option<(usize, SystemTime)> {
        let launched = self
            .launched
            .remove(&index)
            .unwrap_or_else(|| (index, SystemTime::now()));
        (!report.recorded && self.error.is_none()).then_some(launched)
    }
    /// Number of records in the journal now.
    pub fn records(&self) -> usize {
        self.next_index
    }
}

impl Observer for JournalObserver {
    fn on_launch(&mut self, index: usize, proposal: &Proposal) {
        let now = SystemTime::now();
        let Some(number) = self.next_launch else {
            self.launched.insert(index, (index, now));
            return;
        };
        self.launched.insert(index, (number, now));
        self.next_launch = Some(number + 1);
        if self.error.is_some() {
            return;
        }
        let event = LaunchRecord {
            launch: number,
            config: self.space.config(proposal.config).name.clone(),
            started: rfc3339(now),
            expected_improvement: proposal.expected_improvement,
        };
        if let Err(e) = self.writer.append_launch(&event) {
            self.fail(e);
        }
    }

    fn on_outcome(&mut self, index: usize, proposal: &Proposal, report: &Report) {
        let Some((number, started)) = self.ended(index, report) else {
            return;
        };
        let record = ProbeRecord {
            index: self.next_index,
            config: self.space.config(proposal.config).name.clone(),
            outcome: report.outcome.clone(),
            started: rfc3339(started),
            finished: rfc3339(SystemTime::now()),
            expected_improvement: proposal.expected_improvement,
            log: report.log.clone(),
            launch: self.next_launch.map(|_| number),
            billed_usd: (report.billed_usd > report.outcome.spend_usd())
                .then_some(report.billed_usd),
        };
        match self.writer.append(&record) {
            Ok(()) => self.next_index += 1,
            Err(e) => self.fail(e),
        }
    }

    fn on_abandoned(&mut self, index: usize, proposal: &Proposal, report: &Report) {
        let Some((number, started)) = self.ended(index, report) else {
            return;
        };
        let record = AbandonedRecord {
            config: self.space.config(proposal.config).name.clone(),
            spend_usd: report.billed_usd,
            started: rfc3339(started),
            finished: rfc3339(SystemTime::now()),
            launch: self.next_launch.map(|_| number),
        };
        if let Err(e) = self.writer.append_abandoned(&record) {
            self.fail(e);
        }
    }

    fn on_stop_rule(&mut self, told: usize, detail: &str) {
        if self.error.is_some() || self.stop_recorded {
            return;
        }
        let event = StoppedRecord {
            stopped: rfc3339(SystemTime::now()),
            told,
            detail: detail.to_string(),
        };
        if let Err(e) = self.writer.append_stopped(&event) {
            self.fail(e);
        }
    }

    fn on_finish(&mut self, _result: &SearchResult) {}
}

/// A runner that answers configurations the journal already holds with their recorded outcomes
/// (in journal order, per configuration; reports marked `recorded`) and runs everything else
/// with `inner`. `replay --journal` drives a strategy through it to show a search again; a
/// resumed search does not use it (it re-tells the journal's probes to its strategy instead, so
/// no paid probe is left out whatever the strategy now asks).
pub struct Resume<R> {
    inner: R,
    recorded: Mutex<HashMap<ConfigId, VecDeque<Outcome>>>,
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
        }
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
    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Report {
        let served = self
            .recorded
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&config).and_then(VecDeque::pop_front));
        match served {
            Some(o) => Report::recorded(o),
            None => self.inner.run(space, config, limits).await,
        }
    }

    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        self.inner.worst_case_usd(space, config, limits)
    }
}
