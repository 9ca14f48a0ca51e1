//! The integration tests, one binary with a module per area: each starts the real host
//! (in-process `RunningHost` or the `apollo serve` child) on 127.0.0.1:0 and a temporary
//! unix socket. Run one area with `cargo test -p apollo-tests --test it <area>::`.

mod common;

mod alarms;
mod auth;
mod backups;
mod cli;
mod config_cli;
mod container_service;
mod dashboard;
mod demo;
mod docker;
mod events;
mod files;
mod import;
mod listeners;
mod metrics;
mod module_catalog;
mod module_config;
mod module_config_fleet;
mod module_db_migrate;
mod module_gateway;
mod module_influx;
mod module_routes;
mod module_storage;
mod module_sys;
mod modules;
mod monit;
mod pm2_tools;
mod process;
mod registry;
mod seed;
mod store;
mod supervisor;
mod tasks;
mod tidy;
