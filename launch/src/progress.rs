//! What a search shows while it runs and when it ends: one line per finished probe (a `*` marks
//! an outcome read from a journal), and the summary.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use optimizer::{Observer, Outcome, Proposal, Report, SearchResult, Space};

/// `n` and a noun, plural unless `n` is 1 (`1 probe`, `2 probes`).
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The live progress display: one line per finished probe.
pub struct Progress {
    space: Arc<Space>,
    max_runtime_s: Option<f64>,
    /// Probes launched and not yet reported (by drive index), and since when at least one
    /// has been running.
    running: HashSet<usize>,
    busy_since: Option<Instant>,
    best: Option<f64>,
    header_done: bool,
    /// Wall time during which at least one probe was running (for the loop-overhead figure:
    /// with several in flight, their overlapping times count once).
    pub probe_seconds: f64,
}

impl Progress {
    pub fn new(space: Arc<Space>, max_runtime_s: Option<f64>) -> Self {
        Progress {
            space,
            max_runtime_s,
            running: HashSet::new(),
            busy_since: None,
            best: None,
            header_done: false,
            probe_seconds: 0.0,
        }
    }
}

impl Progress {
    /// A launched probe reported back: when none is left running, the busy stretch ends.
    fn ended(&mut self, index: usize) {
        if self.running.remove(&index) && self.running.is_empty() {
            if let Some(t0) = self.busy_since.take() {
                self.probe_seconds += t0.elapsed().as_secs_f64();
            }
        }
    }
}

impl Observer for Progress {
    fn on_launch(&mut self, index: usize, _proposal: &Proposal) {
        if self.running.is_empty() {
            self.busy_since = Some(Instant::now());
        }
        self.running.insert(index);
    }

    fn on_abandoned(&mut self, index: usize, _proposal: &Proposal, _report: &Report) {
        // Time inside a probe a signal cancelled is probe time, not the loop's overhead.
        self.ended(index);
    }

    fn on_outcome(&mut self, index: usize, proposal: &Proposal, report: &Report) {
        self.ended(index);
        let outcome = &report.outcome;
        if !self.header_done {
            crate::say!(
                "{:>5}  {:<44} {:<10} {:>10} {:>12} {:>12} {:>8}",
                "probe",
                "configuration",
                "status",
                "runtime",
                "cost",
                "best",
                "EI"
            );
            self.header_done = true;
        }
        let feasible = match (outcome, self.max_runtime_s) {
            (Outcome::Completed { runtime_s, .. }, Some(t)) => *runtime_s <= t,
            (Outcome::Completed { .. }, None) => true,
            _ => false,
        };
        if feasible {
            let c = outcome.cost_paid();
            self.best = Some(self.best.map_or(c, |b: f64| b.min(c)));
        }
        let status = if report.recorded {
            format!("{}*", outcome.status())
        } else {
            outcome.status().to_string()
        };
        crate::say!(
            "{:>5}  {:<44} {:<10} {:>9.2}s {:>12} {:>12} {:>8}",
            index + 1,
            self.space.config(proposal.config).name,
            status,
            outcome.elapsed_s(),
            format!("${:.6}", outcome.cost_paid()),
            self.best.map_or("-".to_string(), |b| format!("${b:.6}")),
            proposal
                .expected_improvement
                .map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0)),
        );
        if let Outcome::Failed { reason, .. } = outcome {
            crate::say!("       reason: {reason}");
        }
    }
}

/// The `best:` line of a search's end (also `replay --journal`'s).
pub fn print_best(space: &Space, result: &SearchResult) {
    match &result.best {
        Some(best) => crate::say!(
            "best: {}  runtime {:.2} s  cost ${:.6}",
            space.describe(best.config),
            best.outcome.elapsed_s(),
            best.outcome.cost_paid()
        ),
        None => crate::say!("best: none (no probe completed within the limits)"),
    }
}

/// The lines a search ends with: why it stopped, the best configuration, what it spent and how
/// much of the wall time the loop itself took.
pub fn print_summary(
    space: &Space,
    result: &SearchResult,
    wall: Duration,
    probe_seconds: f64,
    records: usize,
    journal: &std::path::Path,
) {
    crate::say!("stopped: {}", result.termination);
    print_best(space, result);
    let overhead = (wall.as_secs_f64() - probe_seconds).max(0.0);
    crate::say!(
        "{}, ${:.6} spent; {} in {}; loop overhead {:.1} ms ({:.3}% of probe time)",
        count(result.evaluations, "probe"),
        result.spent_usd,
        count(records, "record"),
        journal.display(),
        overhead * 1000.0,
        if probe_seconds > 0.0 {
            100.0 * overhead / probe_seconds
        } else {
            0.0
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use optimizer::{Config, Dimension, Kind, Value};

    #[test]
    fn probes_in_flight_together_count_their_time_once() {
        let configs = (0..3)
            .map(|i| Config {
                name: format!("w{i}"),
                values: vec![Value::Num(f64::from(i + 1))],
                price_per_hour: 1.0,
            })
            .collect();
        let dims = vec![Dimension {
            name: "w".into(),
            kind: Kind::Numeric { log: false },
        }];
        let space = Arc::new(Space::new(dims, configs).unwrap());
        let mut p = Progress::new(space, None);
        let proposal = |config| Proposal {
            config,
            expected_improvement: None,
            stop: false,
        };
        let done = Report::new(Outcome::Completed {
            runtime_s: 1.0,
            cost_usd: 1.0,
            metrics: Default::default(),
        });
        // A record read from a journal (never launched here) is no probe time.
        p.on_outcome(7, &proposal(2), &done);
        assert!(p.busy_since.is_none() && p.probe_seconds == 0.0);
        p.on_launch(0, &proposal(0));
        let t0 = p.busy_since.unwrap();
        p.on_launch(1, &proposal(1));
        assert_eq!(p.busy_since, Some(t0), "still the first probe's start");
        p.on_outcome(0, &proposal(0), &done);
        assert_eq!(p.probe_seconds, 0.0, "one probe is still running");
        p.on_abandoned(1, &proposal(1), &done);
        assert!(p.busy_since.is_none());
        let busy = p.probe_seconds;
        assert!(busy > 0.0 && busy <= t0.elapsed().as_secs_f64(), "{busy}");
    }
}
