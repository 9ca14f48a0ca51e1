//! The admin API (`/api/module/gateway/…`, behind the host's token): the listeners'
//! addresses, the route table — read, replaced, one route added or removed, each change
//! checked whole before it is stored and swapped in — and the upstreams with what
//! passive health says of each instance.

use std::sync::Arc;

use plugin_api::{HandlerResult, ModuleError, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::lifecycle::{Gateway, ROUTES_KEY};
use crate::settings::RouteSpec;
use crate::upstream::now_ms;

/// `PUT /routes` takes the list, or `{"routes": [...]}` as `GET` gives it.
#[derive(Deserialize)]
#[serde(untagged)]
enum RoutesBody {
    List(Vec<RouteSpec>),
    Wrapped { routes: Vec<RouteSpec> },
}

impl Gateway {
    pub async fn listeners(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&json!({ "listeners": self.listeners })))
    }

    pub async fn routes(self: Arc<Self>, _req: Request) -> HandlerResult {
        let table = self.plane.table.load();
        let source = if *self.routes_from_storage.lock().unwrap_or_else(|e| e.into_inner()) { "api" } else { "config" };
        Ok(Response::json(&json!({ "routes": table.specs(), "source": source })))
    }

    pub async fn put_routes(self: Arc<Self>, req: Request) -> HandlerResult {
        let specs = match req.json::<RoutesBody>()? {
            RoutesBody::List(specs) | RoutesBody::Wrapped { routes: specs } => specs,
        };
        let edit = self.edits.lock().await;
        self.replace(specs).await?;
        drop(edit);
        self.routes(req).await
    }

    pub async fn add_route(self: Arc<Self>, req: Request) -> HandlerResult {
        let spec: RouteSpec = req.json()?;
        let edit = self.edits.lock().await;
        let mut specs = self.plane.table.load().specs().to_vec();
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(ModuleError::conflict(format!(
                "route `{}` exists; PUT /routes replaces the table, DELETE /routes/{} removes it",
                spec.name, spec.name
            )));
        }
        specs.push(spec);
        self.replace(specs).await?;
        drop(edit);
        Ok(self.routes(req).await?.with_status(201))
    }

    pub async fn delete_route(self: Arc<Self>, req: Request) -> HandlerResult {
        let name = req.required_param("name")?.to_owned();
        let edit = self.edits.lock().await;
        let mut specs = self.plane.table.load().specs().to_vec();
        let before = specs.len();
        specs.retain(|s| s.name != name);
        if specs.len() == before {
            return Err(ModuleError::not_found(format!("no route `{name}` (GET /routes lists them)")));
        }
        self.replace(specs).await?;
        drop(edit);
        self.routes(req).await
    }

    /// Checks the table, stores it, then swaps it in: a refused table changes nothing,
    /// and a stored one is what the next load serves.
    async fn replace(&self, specs: Vec<RouteSpec>) -> Result<(), ModuleError> {
        let registry = &self.plane.registry;
        crate::table::Table::build(specs.clone(), &|route, target| registry.resolve(route, target))
            .map_err(|e| ModuleError::bad_request(format!("route table refused, the old one keeps serving: {e}")))?;
        let stored = serde_json::to_string(&specs).map_err(|e| ModuleError::internal(e.to_string()))?;
        self.host.storage().put(ROUTES_KEY, &stored).await?;
        self.install(specs).map_err(ModuleError::bad_request)?;
        *self.routes_from_storage.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }

    pub async fn seneca(self: Arc<Self>, _req: Request) -> HandlerResult {
        let Some(seneca) = &self.plane.seneca else {
            return Ok(Response::json(&json!({ "enabled": false })));
        };
        let directory = seneca.directory.load();
        let patterns: Vec<_> = directory
            .patterns()
            .into_iter()
            .map(|(pattern, service)| json!({"pattern": pattern, "service": service}))
            .collect();
        let collisions: Vec<_> = directory
            .collisions()
            .iter()
            .map(|c| json!({"pattern": c.pattern, "served_by": c.winner, "ignored": c.loser}))
            .collect();
        let web: Vec<_> = seneca
            .web
            .routes()
            .map(|r| json!({"method": r.method.as_str(), "path": r.path, "pattern": r.pattern.to_string()}))
            .collect();
        Ok(Response::json(&json!({
            "enabled": true, "path": seneca.path, "patterns": patterns, "collisions": collisions, "web": web,
        })))
    }

    pub async fn upstreams(self: Arc<Self>, _req: Request) -> HandlerResult {
        let now = now_ms();
        let upstreams: Vec<_> = self
            .plane
            .registry
            .all()
            .iter()
            .map(|u| {
                let instances: Vec<_> = u
                    .instances()
                    .iter()
                    .map(|i| {
                        let until = i.outlier.ejected_until();
                        json!({
                            "id": i.id, "address": i.addr, "weight": i.weight, "active": i.active(),
                            "ejected": i.outlier.is_ejected(now),
                            "ejected_for_ms": until.saturating_sub(now),
                            "consecutive_failures": i.outlier.consecutive_failures(),
                            "times_ejected": i.outlier.times_ejected(),
                            "connections": {"open": i.pool.open(), "idle": i.pool.idle()},
                        })
                    })
                    .collect();
                json!({"name": u.name, "active": u.active(), "ejected": u.ejected(), "instances": instances})
            })
            .collect();
        Ok(Response::json(&json!({ "upstreams": upstreams })))
    }
}
