//! Recorded-run datasets, the replay runner, the strategy comparison harness and its reports.
//!
//! A [`Dataset`] is a set of [`Workload`]s, each a search [`optimizer::Space`] plus the outcome
//! recorded for every configuration. [`ReplayRunner`] answers probes from those records, so
//! every strategy is driven by the one loop in [`optimizer::drive`]; [`compare`] runs many
//! (workload, strategy, seed) replays and [`report`] and [`plot`] turn them into tables and
//! figures.

pub mod cherrypick;
pub mod compare;
pub mod dataset;
pub mod generic;
pub mod metrics;
pub mod paper;
pub mod plot;
pub mod replay;
pub mod report;
pub mod scout;
pub mod tune;

pub use compare::{run_compare, CompareError, CompareOptions, Comparison};
pub use dataset::{
    data_root, load, DataError, Dataset, DatasetSpec, LoadOptions, Reference, Scale, Workload,
};
pub use replay::{replay_run, Probe, ReplayRunner, RunOptions, RunTrace};
