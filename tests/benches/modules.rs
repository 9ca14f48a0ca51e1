//! Module routing benchmark (being written).
fn main() {}
