//! Exit codes, in one place.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | unexpected failure (I/O error, a backend that could not be reached, ...) |
//! | 2 | bad input: usage, a malformed file or row, an unknown workload or strategy |
//! | 130 | interrupted by Ctrl-C (what finished was recorded) |

use std::process::ExitCode;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl std::error::Error for BadInput {}

/// Marks a run that ended because the user interrupted it (exit code 130).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}
impl std::error::Error for Interrupted {}

/// Wraps any error as bad input.
pub fn bad_input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.into()))
}

/// Exit code of a run the user interrupted.
const INTERRUPTED: u8 = 130;

/// Ends the process at once as interrupted: a second Ctrl-C during a search (the first one
/// stops it cleanly, and what finished is already in the journal).
fn quit_interrupted() {
    std::process::exit(i32::from(INTERRUPTED));
}

/// What the binary decides for a search session.
pub const SESSION_HOOKS: launch::session::Hooks = launch::session::Hooks {
    on_second_interrupt: quit_interrupted,
};

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
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => ExitCode::from(INTERRUPTED),
        Err(e) => {
            // Never a panic on a closed stderr.
            launch::note!("error: {e:#}");
            if is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
