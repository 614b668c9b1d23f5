//! Criterion benchmarks of the optimizer crate (filled in by the optimizer work).
fn main() {}
