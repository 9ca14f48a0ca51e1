//! The only crate Apollo modules depend on.
//!
//! Placeholder: the FFI-safe boundary (abi_stable types, the author SDK and the
//! `export_module!` macro) lands with the plugin-system issue. Until then this crate
//! only fixes the ABI version rule: the crate version *is* the ABI version, and a host
//! refuses a module built against a different one, naming both.

/// The plugin ABI version this crate defines (its own package version).
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");
