//! The workload cherrypick tunes: flowers preprocessing to TFRecord and the read-speed test.
