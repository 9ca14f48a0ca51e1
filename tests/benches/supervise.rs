//! Supervisor benchmark (being written).
fn main() {}
