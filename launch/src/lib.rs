//! Where probes run: the search-space file ([`spacefile`]) and price table ([`prices`]), the
//! runners that launch the workload under a configuration ([`local`], [`command`], [`spark`],
//! [`dataproc`]), and the search session ([`session`]: journal open and resume, observers,
//! stop signals). Depends on `optimizer` (the loop, strategies, journal) and `workload` (the job).
//!
//! A new backend is a [`optimizer::Runner`] here plus its name in [`BackendKind::ALL`], its
//! pricing rule (if its bill is not machines x count) in `spacefile/price.rs`, and its setup in
//! [`search::build`].

/// `println!` that never panics or stops anything: a search's output piped into `head` that has
/// gone away (EPIPE) ends the printing, never the search. Every line a search prints goes here.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] without the newline.
#[macro_export]
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] on stderr.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod command;
pub mod dataproc;
pub mod error;
pub mod guard;
pub mod limits;
pub mod local;
pub mod params;
pub mod prices;
pub mod process;
pub mod progress;
pub mod pyspark;
pub mod search;
pub mod session;
pub mod spacefile;
pub mod spark;
pub mod template;

pub use command::CommandRunner;
pub use error::Error;
pub use local::LocalRunner;
pub use prices::PriceTable;
pub use spacefile::{BackendKind, Objective, SearchSpec, SpaceFileError};
