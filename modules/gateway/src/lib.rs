//! module-gateway: the fleet's HTTP front door. On listeners of its own it routes
//! requests by host, path prefix, method and header — or, for Seneca messages on
//! `/act`, by pattern — to the passing instances of a catalog service (followed live
//! with Consul blocking queries) or to static upstreams; balances (round robin, least
//! request, weighted), retries elsewhere within a deadline and a budget, ejects failing
//! instances, bounds each upstream's load, streams bodies, passes WebSocket upgrades
//! through, and answers with a route's fallback when nothing can. Its route table is
//! changed at run time through the admin API (kept in the module's storage).

mod access_log;
mod admin;
mod discovery;
mod lifecycle;
mod metrics;
mod proxy;
mod registry;
pub mod seneca;
mod settings;
mod table;
pub mod trace;
mod upstream;

use plugin_api::{Host, Module, ModuleError, Route, Routes, export_module};

use crate::lifecycle::Gateway;
use crate::settings::Config;

impl Module for Gateway {
    const NAME: &'static str = "gateway";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "HTTP gateway: routes, balancing, retries, outlier ejection, circuit breaking, Seneca patterns, tracing";
    type Config = Config;

    fn routes() -> Routes<Self> {
        Routes::new()
            .add(Route::get("/listeners", "The data-plane addresses the gateway listens on"), Self::listeners)
            .add(Route::get("/routes", "The route table (and whether it came from config or this API)"), Self::routes)
            .add(
                Route::put("/routes", "Replaces the route table: all checked first, a bad one refused"),
                Self::put_routes,
            )
            .add(Route::post("/routes", "Adds one route"), Self::add_route)
            .add(Route::delete("/routes/{name}", "Removes one route"), Self::delete_route)
            .add(
                Route::get("/upstreams", "Upstreams, their instances and what passive health says of them"),
                Self::upstreams,
            )
            .add(
                Route::get("/seneca", "Seneca patterns by service, colliding declarations, seneca-web routes"),
                Self::seneca,
            )
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        Gateway::start(host, config).map_err(ModuleError::bad_request)
    }

    fn health(&self) -> Result<String, String> {
        Ok(self.describe())
    }

    fn shutdown(&self) {
        self.stop();
    }
}

export_module!(Gateway);
