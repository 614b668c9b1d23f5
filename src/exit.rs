//! Exit codes, in one place.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | unexpected failure (I/O error, a backend that could not be reached or that halted the search, ...) |
//! | 2 | bad input: usage, a malformed file or row, an unknown workload or strategy |
//! | 3 | a search that ended with no answer: no probe completed within the limits |
//! | 129 | stopped by SIGHUP |
//! | 130 | stopped by SIGINT (Ctrl-C) |
//! | 143 | stopped by SIGTERM |
//!
//! A signal's code is 128 + its number, as a shell reports a process the signal killed; a search
//! stopped by one has first cancelled its running probe and recorded what finished.

use std::process::ExitCode;

use launch::session::StopSignal;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl std::error::Error for BadInput {}

/// Marks a run that a signal stopped (exit code 129, 130 or 143).
#[derive(Debug)]
pub struct Interrupted(pub StopSignal);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by {}", self.0.name())
    }
}
impl std::error::Error for Interrupted {}

/// Marks a search that ended, without a signal, with no probe completed within the limits: it
/// ran as asked but has no configuration to give (exit code 3), which a script must not take
/// for an answer. It holds why.
#[derive(Debug)]
pub struct NoAnswer(String);

impl NoAnswer {
    /// Why `result`, which has no best configuration, has none.
    fn of(result: &optimizer::SearchResult) -> NoAnswer {
        NoAnswer(match result.evaluations {
            // The spend limit's says what one probe's worst case would pass.
            0 => format!("no probe ran ({})", result.termination),
            n => format!(
                "none of the {} completed within the limits (each record in the journal says \
                 why: failed, timed out, or over the runtime limit)",
                launch::progress::count(n, "probe")
            ),
        })
    }
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the search has no answer: {}", self.0)
    }
}
impl std::error::Error for NoAnswer {}

/// Wraps any error as bad input.
pub fn bad_input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.into()))
}

/// Exit code of a run `signal` stopped.
fn signal_code(signal: StopSignal) -> u8 {
    match signal {
        StopSignal::Hangup => 128 + 1,
        StopSignal::Interrupt => 128 + 2,
        StopSignal::Terminate => 128 + 15,
    }
}

/// What a search session's end means for the process: an error carrying the signal's exit
/// code when one stopped it, or [`NoAnswer`] when it ended with no configuration found.
pub fn after_session(ended: &launch::session::Ended) -> anyhow::Result<()> {
    match (ended.signal, &ended.result.termination) {
        (Some(signal), _) => Err(anyhow::Error::new(Interrupted(signal))),
        // Stopped without a signal (the journal could not be written, reported on its own).
        (None, optimizer::Termination::Interrupted) => {
            Err(anyhow::Error::new(Interrupted(StopSignal::Interrupt)))
        }
        // The backend's failure (a cluster it could not delete): exit 1, whatever was found.
        (None, optimizer::Termination::Halted { detail }) => Err(anyhow::anyhow!(
            "the search stopped launching probes: {detail}"
        )),
        (None, _) if ended.result.best.is_none() => {
            Err(anyhow::Error::new(NoAnswer::of(&ended.result)))
        }
        _ => Ok(()),
    }
}

/// Whether an error is the user's input being wrong, whichever crate it comes from.
fn is_bad_input(e: &anyhow::Error) -> bool {
    e.downcast_ref::<BadInput>().is_some()
        || e.downcast_ref::<launch::Error>()
            .is_some_and(launch::Error::is_bad_input)
        || e.downcast_ref::<workload::Error>()
            .is_some_and(workload::Error::is_bad_input)
}

/// Prints an error with its causes and maps it to the documented exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Interrupted>() {
            Some(Interrupted(signal)) => ExitCode::from(signal_code(*signal)),
            None => {
                // Never a panic on a closed stderr.
                launch::note!("error: {e:#}");
                if is_bad_input(&e) {
                    ExitCode::from(2)
                } else if e.downcast_ref::<NoAnswer>().is_some() {
                    ExitCode::from(3)
                } else {
                    ExitCode::from(1)
                }
            }
        },
    }
}
