//! The workload cherrypick tunes: flowers preprocessing to TFRecord and the read-speed test, plus
//! the launchers (`launch/`) that run it under a configuration for the search loop.

pub mod launch;
