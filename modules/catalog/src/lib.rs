//! module-catalog: a service registry that real Consul clients use unchanged. It speaks
//! Consul's agent, catalog, health, status and KV HTTP API (with blocking queries) on
//! the module's own listener (`modules.listeners.catalog`, e.g. `127.0.0.1:8500`) and
//! under `/api/module/catalog/v1/...`; runs HTTP, TCP, TTL and (when enabled) script
//! health checks for the services registered on this node; lists the host's own
//! supervised services as instances; and, on a fleet sharing one MongoDB, makes every
//! host a node whose services every other host sees. Everything lives in the module's
//! storage and is read from an in-memory replica kept current by the change feed.

mod acl;
mod admin;
mod agent;
mod blocking;
mod checks;
mod decode;
mod duration;
mod filter;
mod fleet;
mod host_services;
mod kv;
mod metrics;
mod model;
mod reads;
mod replica;
mod settings;
mod state;
#[cfg(test)]
mod tests;
mod views;
mod watchers;
mod wire;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use plugin_api::replica::{Replicated, loaded};
use plugin_api::{HandlerResult, Host, Module, ModuleError, Mount, Request, Route, Routes, export_module};

use crate::acl::Access;
use crate::checks::Runner;
use crate::metrics::Metrics;
use crate::replica::Replica;
use crate::settings::{Config, Settings};
use crate::state::State;
use crate::wire::Answer;

#[derive(Debug)]
pub struct Catalog {
    host: Host,
    settings: Settings,
    replica: Arc<Replica>,
    metrics: Metrics,
    /// The checks this node runs (TTL timers included).
    runner: Arc<Runner>,
}

/// A Consul route: public (the module checks `X-Consul-Token` itself), on the module's
/// listener and the admin API.
fn consul(route: Route) -> Route {
    route.public().mount(Mount::Both)
}

/// A blocking-capable Consul route: its timeout is above the longest hold.
fn blocking_route(route: Route) -> Route {
    consul(route).timeout(blocking::ROUTE_TIMEOUT)
}

impl Replicated for Catalog {
    type Records = State;

    fn replica(&self) -> &plugin_api::replica::Replica<State> {
        &self.replica
    }
}

/// Binds a Consul handler: once the replica is loaded, checks the access the route
/// needs, and turns a [`wire::Fail`] into Consul's plain-text error.
fn handler<F, Fut>(
    access: Access,
    handler: F,
) -> impl Fn(Arc<Catalog>, Request) -> BoxFuture<'static, HandlerResult> + Send + Sync + 'static
where
    F: Fn(Arc<Catalog>, Request) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    loaded(move |catalog: Arc<Catalog>, req: Request| async move {
        if let Err(fail) = catalog.authorize(&req, access) {
            return Ok(fail.to_response());
        }
        Ok(handler(catalog, req).await.unwrap_or_else(|fail| fail.to_response()))
    })
}

impl Module for Catalog {
    const NAME: &'static str = "catalog";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Service registry speaking Consul's HTTP API, with health checks and blocking queries";
    type Config = Config;

    fn routes() -> Routes<Self> {
        use Access::{Read, Write};
        Routes::new()
            // agent
            .add(consul(Route::get("/v1/agent/self", "Consul: this agent")), handler(Read, Self::agent_self))
            .add(consul(Route::get("/v1/agent/members", "Consul: the fleet's nodes")), handler(Read, Self::members))
            .add(
                consul(Route::get("/v1/agent/services", "Consul: this node's services")),
                handler(Read, Self::agent_services),
            )
            .add(
                consul(Route::get("/v1/agent/service/{id}", "Consul: one service of this node")),
                handler(Read, Self::agent_service),
            )
            .add(
                consul(Route::get("/v1/agent/checks", "Consul: this node's checks")),
                handler(Read, Self::agent_checks),
            )
            .add(
                consul(Route::put("/v1/agent/service/register", "Consul: register a service")),
                handler(Write, Self::register_service),
            )
            .add(
                consul(Route::put("/v1/agent/service/deregister/{id}", "Consul: deregister a service")),
                handler(Write, Self::deregister_service),
            )
            .add(
                consul(Route::put("/v1/agent/service/maintenance/{id}", "Consul: service maintenance mode")),
                handler(Write, Self::service_maintenance),
            )
            .add(
                consul(Route::put("/v1/agent/maintenance", "Consul: node maintenance mode")),
                handler(Write, Self::node_maintenance),
            )
            .add(
                consul(Route::put("/v1/agent/check/register", "Consul: register a check")),
                handler(Write, Self::register_check),
            )
            .add(
                consul(Route::put("/v1/agent/check/deregister/{id}", "Consul: deregister a check")),
                handler(Write, Self::deregister_check),
            )
            .add(
                consul(Route::put("/v1/agent/check/pass/{id}", "Consul: TTL check passing")),
                handler(Write, Self::check_pass),
            )
            .add(
                consul(Route::put("/v1/agent/check/warn/{id}", "Consul: TTL check warning")),
                handler(Write, Self::check_warn),
            )
            .add(
                consul(Route::put("/v1/agent/check/fail/{id}", "Consul: TTL check critical")),
                handler(Write, Self::check_fail),
            )
            .add(
                consul(Route::put("/v1/agent/check/update/{id}", "Consul: TTL check status and output")),
                handler(Write, Self::check_update),
            )
            .add(
                consul(Route::get("/v1/agent/health/service/name/{name}", "Consul: local health by service name")),
                handler(Read, Self::agent_health_by_name),
            )
            .add(
                consul(Route::get("/v1/agent/health/service/id/{id}", "Consul: local health by service id")),
                handler(Read, Self::agent_health_by_id),
            )
            // catalog
            .add(
                blocking_route(Route::get("/v1/catalog/services", "Consul: service names and tags")),
                handler(Read, Self::catalog_services),
            )
            .add(
                blocking_route(Route::get("/v1/catalog/service/{name}", "Consul: a service's instances")),
                handler(Read, Self::catalog_service),
            )
            .add(
                blocking_route(Route::get("/v1/catalog/nodes", "Consul: the nodes")),
                handler(Read, Self::catalog_nodes),
            )
            .add(
                consul(Route::get("/v1/catalog/datacenters", "Consul: datacenters")),
                handler(Read, Self::catalog_datacenters),
            )
            // health
            .add(
                blocking_route(Route::get("/v1/health/service/{name}", "Consul: instances with their checks")),
                handler(Read, Self::health_service),
            )
            .add(
                blocking_route(Route::get("/v1/health/checks/{name}", "Consul: a service's checks")),
                handler(Read, Self::health_checks),
            )
            .add(
                blocking_route(Route::get("/v1/health/state/{state}", "Consul: checks in a state")),
                handler(Read, Self::health_state),
            )
            .add(
                blocking_route(Route::get("/v1/health/node/{node}", "Consul: a node's checks")),
                handler(Read, Self::health_node),
            )
            // status
            .add(consul(Route::get("/v1/status/leader", "Consul: the leader")), handler(Read, Self::status_leader))
            .add(consul(Route::get("/v1/status/peers", "Consul: the peers")), handler(Read, Self::status_peers))
            // kv
            .add(blocking_route(Route::get("/v1/kv/", "Consul: every key (recurse/keys)")), handler(Read, Self::kv_get))
            .add(
                blocking_route(Route::get("/v1/kv/{*key}", "Consul: read a key or prefix")),
                handler(Read, Self::kv_get),
            )
            .add(consul(Route::put("/v1/kv/{*key}", "Consul: write a key")), handler(Write, Self::kv_put))
            .add(
                consul(Route::delete("/v1/kv/", "Consul: delete every key (recurse)")),
                handler(Write, Self::kv_delete),
            )
            .add(
                consul(Route::delete("/v1/kv/{*key}", "Consul: delete a key or prefix")),
                handler(Write, Self::kv_delete),
            )
            // operators
            .add(
                Route::post("/admin/tokens", "Create an ACL token (its secret is shown once)"),
                loaded(Self::admin_create_token),
            )
            .add(Route::get("/admin/tokens", "ACL tokens (no secrets)"), loaded(Self::admin_list_tokens))
            .add(Route::delete("/admin/tokens/{accessor}", "Delete an ACL token"), loaded(Self::admin_delete_token))
            .add(Route::get("/admin/status", "Node, fleet, parked queries, limits"), loaded(Self::admin_status))
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        let settings = Settings::from_config(config)?;
        let metrics = Metrics::register().map_err(|e| ModuleError::internal(e.to_string()))?;
        // Loaded in the background: `init` must not block the host's thread on the
        // store; requests wait for the load.
        let replica = Replica::new(host.storage(), metrics.clone());
        plugin_api::tokio::spawn(replica.follow_storage(host.clone()));
        let runner = Runner::new(Arc::clone(&replica), settings.clone(), metrics.clone(), host.clone());
        plugin_api::tokio::spawn(Arc::clone(&runner).run());
        plugin_api::tokio::spawn(fleet::run(Arc::clone(&replica), settings.clone(), metrics.clone(), host.clone()));
        plugin_api::tokio::spawn(host_services::run(
            Arc::clone(&replica),
            settings.node_name.clone(),
            host.clone(),
            metrics.clone(),
        ));
        host.info(&format!(
            "catalog ready: node {:?} in {}, script checks {}",
            settings.node_name,
            settings.datacenter,
            if settings.enable_script_checks { "enabled" } else { "disabled" }
        ));
        Ok(Self { host, settings, replica, metrics, runner })
    }

    fn shutdown(&self) {
        self.replica.stop();
    }
}

export_module!(Catalog);
