//! The workload cherrypick tunes: flowers preprocessing to TFRecord and the read-speed test. The
//! job only: the `launch` crate runs it under a configuration for the search loop.
//!
//! Entry points: [`dataset::generate`], [`preprocess::run`], [`readspeed::run`],
//! [`regress::fit`]; formats in [`tfrecord`] and [`example`]; storage in [`storage`].

pub mod dataset;
pub mod example;
mod gcs;
pub mod jpeg;
pub mod preprocess;
pub mod readspeed;
pub mod regress;
pub mod rng;
pub mod storage;
pub mod tfrecord;
pub mod transform;

pub use gcs::{
    set_sign_in, GcsStorage, SignIn, SignInError, SignInFuture, SCOPES as STORAGE_SCOPES,
};
pub use storage::{StorageError, StorageErrorKind};

/// Errors of the workload's entry points.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The storage error is in the message and not a `source`, so error chains do not repeat it.
    /// The input cannot be listed or read (missing folder, permission, bucket not found).
    #[error("cannot read input: {0}")]
    Input(StorageError),
    /// The output cannot be written.
    #[error("cannot write output: {0}")]
    Output(StorageError),
    /// Invalid options or an input with nothing to do.
    #[error("{0}")]
    Options(String),
    /// A damaged TFRecord file.
    #[error(transparent)]
    Record(#[from] tfrecord::RecordError),
    #[error("{0}")]
    Other(String),
    /// Stopped through its cancel flag (a probe's time limit); nothing unfinished was committed.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// True when the user's input is at fault (maps to exit code 2 in the CLI). A disk that is
    /// full, over its quota or failing is the machine's fault, not the input's (exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Input(e) | Error::Output(e) => e.kind != StorageErrorKind::Disk,
            Error::Options(_) | Error::Record(_) => true,
            Error::Other(_) | Error::Cancelled => false,
        }
    }

    pub(crate) fn output(location: impl std::fmt::Display, e: std::io::Error) -> Self {
        Error::Output(StorageError::io("write", location, &e))
    }
}

/// Threads to use: `n`, or all available cores when 0.
pub fn resolve_threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// CPU seconds (user + system) this process has used so far, all threads.
pub fn process_cpu_seconds() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: initialised by the successful call above.
    let ru = unsafe { ru.assume_init() };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Peak resident set size of this process in bytes (Linux `ru_maxrss` is in KiB).
pub fn peak_rss_bytes() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: as above.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: initialised by the successful call above.
    let ru = unsafe { ru.assume_init() };
    ru.ru_maxrss.max(0) as u64 * 1024
}
