//! Shared helpers for the benchmarks (see benches/).
