//! Launchers: run the workload under a configuration (local threads, Spark, Dataproc, a command),
//! plus what they share: the search-space file and the price table.

pub mod command;
pub mod dataproc;
pub mod local;
pub mod prices;
pub mod spacefile;
pub mod spark;

pub use command::CommandRunner;
pub use local::LocalRunner;
pub use prices::PriceTable;
pub use spacefile::{BackendKind, LoadOptions, Objective, SearchSpec, SpaceFileError};
