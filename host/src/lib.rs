//! Apollo host: registers services from model files, serves an authenticated HTTP API
//! on TCP and a trusted unix socket, and ships the `apollo` CLI.
//!
//! The binary is one line over [`cli::main`]; everything testable lives here.
//! ARCHITECTURE.md has the map and the invariants.

pub mod alarms;
pub mod allocator;
pub mod api;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod docker;
pub mod events;
pub mod files;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod modules;
pub mod registry;
pub mod server;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod tasks;

/// The host's version (also the API version reported by `/healthz`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
