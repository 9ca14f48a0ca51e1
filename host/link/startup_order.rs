//! Link rule shared by the build scripts of the two crates that link the `apollo` binary
//! (`host`, and `tests` for `apollo-under-test`): place the functions the host runs from
//! start to idle next to each other in `.text`, in the order `startup.order` lists them.
//!
//! Why: the kernel maps up to 64 KiB of an executable around every page a process first
//! touches (fault-around), and the startup path (CLI parsing, config, store, runtime,
//! router) touches code spread over the whole 16 MiB text. Left in the compiler's order,
//! about 10 MiB of code stayed resident in an idle host; packed together, about 3.4 MiB.
//! The list names symbols as this toolchain and `Cargo.lock` mangle them: a name it no
//! longer matches is skipped (placed after the listed ones), never an error, so a stale
//! list costs memory, not correctness. `host/link/startup-order.sh` regenerates it.

use std::path::Path;

/// Adds the ordering to the link of every binary of the crate being built, in release
/// builds for x86_64 Linux (GNU), whose default linker, rust-lld, reads such a list.
pub fn link_bins_in_startup_order(order: &Path) {
    println!("cargo:rerun-if-changed={}", order.display());
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let lld_by_default = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // Debug builds mangle other names (other profile, other crate hashes): nothing to match.
    if var("PROFILE") != "release" || !lld_by_default || !order.is_file() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
    // The list holds the names of both ways the binary is built (see startup-order.sh):
    // each build matches one half, which is expected, not worth a warning per name.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
