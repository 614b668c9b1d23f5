//! One module per subcommand. Each has its clap arguments and a `run` function.

pub mod compare;
pub mod demo;
pub mod journal;
pub mod paper;
pub mod replay;
pub mod search;
pub mod tune;
pub mod workload;
