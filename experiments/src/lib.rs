//! Recorded-run datasets, the replay runner, the strategy comparison harness and its reports.
