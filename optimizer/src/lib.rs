//! cherrypick's optimiser: the search space, a Gaussian-process surrogate, acquisition functions,
//! search strategies behind one ask/tell trait, stop rules, and the search driver.

pub mod acquisition;
pub mod clock;
pub mod driver;
pub mod gp;
pub mod journal;
pub mod outcome;
pub mod rng;
pub mod slice;
pub mod sobol;
pub mod space;
pub mod strategies;
pub mod strategy;

pub use clock::{OnClock, VirtualClock};
pub use driver::{
    block_on, drive, worst_case_cost, DriveOptions, Observer, ProbeLimits, Report, Runner,
    SearchResult,
};
pub use journal::ProbeLog;
pub use outcome::{History, Observation, Outcome, SPEND_METRIC};
pub use space::{Config, ConfigId, Dimension, Inputs, Kind, LeftOut, Space, SpaceError, Value};
pub use strategies::{build_strategy, StrategyOptions, UnknownStrategy, STRATEGY_NAMES};
pub use strategy::{Optimizer, Proposal, Termination};

/// Whether this machine runs two threads at once (asked once): where it does, a fit runs its
/// starts two at a time and the ask that confirms a stop draws two chains at once, with the
/// same numbers as one after the other.
pub(crate) fn spare_core() -> bool {
    static SPARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPARE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Opens `path` with `options`, refusing anything but a regular file before it can block or run
/// on: a FIFO would wait for a writer (and a signal would not end the wait), a device such as
/// /dev/zero would be read until memory runs out. The error for anything else is "not a regular
/// file". The journal and the recorded-run loaders read through it.
pub fn open_regular(
    path: &std::path::Path,
    options: &mut std::fs::OpenOptions,
) -> std::io::Result<std::fs::File> {
    let not_regular = || std::io::Error::other("not a regular file");
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(not_regular());
    }
    #[cfg(unix)]
    {
        // Should the path be swapped for a FIFO after the check, the open still returns at once.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(not_regular());
    }
    Ok(file)
}

/// The whole of a regular file, opened by [`open_regular`] (a FIFO or a device given as an
/// input is refused at once, instead of blocking or being read without end).
pub fn read_regular(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let mut file = open_regular(path, std::fs::OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_string(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// A number as an error message echoes it: plainly (`0.25`, `86400`) where that is short, in
/// exponent form (`1e308`, `1e-300`) where the plain form would run to hundreds of digits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shown(pub f64);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || !a.is_finite() || (1e-4..1e16).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shown;

    #[test]
    fn numbers_far_from_one_are_shown_in_exponent_form() {
        for (x, shown) in [
            (0.0, "0"),
            (0.25, "0.25"),
            (86400.0, "86400"),
            (-3.5, "-3.5"),
            (1e308, "1e308"),
            (-2.5e20, "-2.5e20"),
            (1e-300, "1e-300"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(Shown(x).to_string(), shown);
        }
    }
}
