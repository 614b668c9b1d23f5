//! Criterion benchmarks of the workload crate (filled in by the workload work).
fn main() {}
