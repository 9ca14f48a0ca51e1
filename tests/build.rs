//! Build script of the test crate: `apollo-under-test` is the `apollo` binary under another
//! name, so it is linked the same way (`host/link/startup_order.rs`), and the benches
//! measure what `make build` ships.

#[path = "../host/link/startup_order.rs"]
mod startup_order;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    startup_order::link_bins_in_startup_order(&std::path::Path::new(&manifest_dir).join("../host/link/startup.order"));
}
