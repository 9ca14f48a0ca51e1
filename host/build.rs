//! Build script of the host crate: links the `apollo` binary with its startup code packed
//! together (`link/startup_order.rs`).

#[path = "link/startup_order.rs"]
mod startup_order;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    startup_order::link_bins_in_startup_order(&std::path::Path::new(&manifest_dir).join("link/startup.order"));
}
