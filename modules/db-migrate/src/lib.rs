//! module-db-migrate: administration of the host's store — schema migrations (status,
//! dry run, up), export of a whole store to a JSON archive and import from one, and
//! verified, resumable copies between stores (SQLite -> MongoDB and back). All store
//! access goes through the host's store-administration service (`Host::store`), which
//! the host grants to the modules in `modules.store_access` (default: this one).
//!
//! Routes, under `/api/module/db-migrate/`:
//!
//! | route | what |
//! |---|---|
//! | `GET /status` | the host's store (backend, schema version, record counts), the copy job, the saved checkpoint |
//! | `GET /migrations` | the host's store: version, latest, every step and whether it is applied |
//! | `POST /migrations` | the same for `{"target": T}` (opened as it is, not changed) |
//! | `POST /migrations/up` | `{"target": T, "dry_run": bool}`: apply pending steps, or list what would run |
//! | `GET /export` | the host's store as an archive (JSON, with per-collection counts and checksums) |
//! | `POST /export` | `{"target": T}`: another store as an archive |
//! | `POST /import` | an archive (into the host's store), or `{"target": T, "archive": A, "dry_run": bool}`; checked whole first |
//! | `POST /copy` | `{"from": T, "to": T, "page_size": N, "max_pages": N, "resume": bool}`: start a copy job (202) |
//! | `GET /copy` | the copy job's progress, per collection, and the saved checkpoint |
//! | `POST /copy/cancel` | stop the running copy after its current page (resume later) |
//!
//! A target `T` is `"active"` (default), `{"sqlite": "name.db"}` (under the host's
//! `<data_dir>/stores/`) or `{"mongo": {"url", "name", "user", "pass_wd"}}`.
//! Config (`modules.config.db-migrate`): `{"page_size": 500}` (records per page, 1..=5000).

mod archive;
mod copy;
mod store;
mod target;

use std::sync::Mutex;

use plugin_api::tokio::task::JoinHandle;
use plugin_api::{Host, Module, Request, Response, Route, export_module};
use serde_json::{Value, json};

use crate::copy::{Copies, CopyPlan};
use crate::store::{Failure, StoreClient};
use crate::target::Target;

const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 5_000;

#[derive(Debug)]
pub struct DbMigrate {
    host: Host,
    client: StoreClient,
    page_size: u32,
    copies: Copies,
    /// The running copy job's task (owned here; stopped through `copies.cancel`).
    job: Mutex<Option<JoinHandle<()>>>,
}

fn bad_request(message: &str) -> Response {
    Response::error(400, "bad_request", message)
}

/// The host's error code decides the status; the message says what and where.
fn failure(f: Failure) -> Response {
    let status = match f.code.as_str() {
        "bad_request" => 400,
        "forbidden" => 403,
        "not_found" => 404,
        "conflict" => 409,
        "unavailable" => 503,
        _ => 500,
    };
    Response::error(status, &f.code, &f.message)
}

/// The body as JSON (an empty body is `{}`).
fn body(req: &Request) -> Result<Value, Response> {
    if req.body.iter().all(u8::is_ascii_whitespace) { Ok(json!({})) } else { req.json::<Value>() }
}

fn target_of(value: &Value, key: &str) -> Result<Target, Response> {
    Target::parse(value.get(key)).map_err(|e| bad_request(&format!("\"{key}\": {e}")))
}

impl Module for DbMigrate {
    const NAME: &'static str = "db-migrate";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Store migrations, JSON export/import, and verified, resumable copies between SQLite and MongoDB";

    fn routes() -> Vec<Route> {
        vec![
            Route::get("/status", "The host's store, the copy job and the saved checkpoint"),
            Route::get("/migrations", "Schema steps of the host's store"),
            Route::post("/migrations", "Schema steps of another store ({\"target\": T})"),
            Route::post("/migrations/up", "Apply pending schema steps, or a dry run"),
            Route::get("/export", "The host's store as a JSON archive"),
            Route::post("/export", "Another store as a JSON archive"),
            Route::post("/import", "Import an archive (checked whole first)"),
            Route::post("/copy", "Start a copy between stores (202; resumable)"),
            Route::get("/copy", "Progress of the copy job"),
            Route::post("/copy/cancel", "Stop the running copy after its current page"),
        ]
    }

    fn init(host: Host, config: Value) -> Result<Self, String> {
        let page_size = match config.get("page_size") {
            None | Some(Value::Null) => DEFAULT_PAGE,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=u64::from(MAX_PAGE)).contains(&n) => n as u32,
                _ => return Err(format!("modules.config.db-migrate.page_size: {v} is not a number in 1..={MAX_PAGE}")),
            },
        };
        host.info(&format!("module-db-migrate {} ready (page size {page_size})", Self::VERSION));
        Ok(DbMigrate {
            client: StoreClient::new(host.clone()),
            host,
            page_size,
            copies: Copies::default(),
            job: Mutex::new(None),
        })
    }

    async fn handle(&self, req: Request) -> Response {
        match self.route(req).await {
            Ok(response) | Err(response) => response,
        }
    }

    fn health(&self) -> Result<String, String> {
        match self.copies.progress() {
            Some(p) if p.state == "failed" => Err(format!("last copy failed: {}", p.error.unwrap_or_default())),
            Some(p) => Ok(format!("copy {} -> {}: {}", p.from, p.to, p.state)),
            None => Ok("idle".into()),
        }
    }

    /// A running copy stops at once (its checkpoint is saved after every page, so a
    /// resume loses nothing): this instance is going away, and a newer generation must
    /// not find an old job still writing the same checkpoint.
    fn shutdown(&self) {
        self.copies.cancel();
        if let Ok(mut job) = self.job.lock()
            && let Some(job) = job.take()
        {
            job.abort();
        }
    }
}

impl DbMigrate {
    async fn route(&self, req: Request) -> Result<Response, Response> {
        match (req.method.as_str(), req.route.as_str()) {
            ("GET", "/status") => {
                let store = self.client.info(&Target::active()).await.map_err(failure)?;
                Ok(Response::json(&json!({
                    "store": store,
                    "copy": self.copies.progress(),
                    "checkpoint": copy::saved_checkpoint(&self.host),
                })))
            }
            ("GET", "/migrations") => {
                Ok(Response::json(&self.client.migrations(&Target::active()).await.map_err(failure)?))
            }
            ("POST", "/migrations") => {
                let target = target_of(&body(&req)?, "target")?;
                Ok(Response::json(&self.client.migrations(&target).await.map_err(failure)?))
            }
            ("POST", "/migrations/up") => {
                let body = body(&req)?;
                let target = target_of(&body, "target")?;
                let dry_run = body["dry_run"].as_bool().unwrap_or(false);
                Ok(Response::json(&self.client.migrate(&target, dry_run).await.map_err(failure)?))
            }
            ("GET", "/export") => self.export(&Target::active()).await,
            ("POST", "/export") => self.export(&target_of(&body(&req)?, "target")?).await,
            ("POST", "/import") => {
                let body = body(&req)?;
                let dry_query = req.query_param("dry_run").is_some_and(|v| v == "true" || v == "1");
                let (target, archive, dry_run) = if body.get("format").is_some() {
                    (Target::active(), &body, dry_query)
                } else {
                    let archive = body.get("archive").ok_or_else(|| {
                        bad_request("send an archive (from GET /export), or {\"target\": T, \"archive\": A}")
                    })?;
                    (target_of(&body, "target")?, archive, dry_query || body["dry_run"].as_bool().unwrap_or(false))
                };
                let report =
                    archive::import(&self.client, &target, archive, dry_run, self.page_size).await.map_err(failure)?;
                Ok(Response::json(&report))
            }
            ("POST", "/copy") => {
                let body = body(&req)?;
                let plan = CopyPlan {
                    from: target_of(&body, "from")?,
                    to: body.get("to").map(|_| target_of(&body, "to")).transpose()?.ok_or_else(|| {
                        bad_request("\"to\" is required: {\"sqlite\": \"name.db\"} or {\"mongo\": {\"url\": ...}}")
                    })?,
                    page_size: match body.get("page_size").and_then(Value::as_u64) {
                        Some(n) if (1..=u64::from(MAX_PAGE)).contains(&n) => n as u32,
                        Some(n) => return Err(bad_request(&format!("page_size {n} is not in 1..={MAX_PAGE}"))),
                        None => self.page_size,
                    },
                    max_pages: body.get("max_pages").and_then(Value::as_u64),
                    resume: body["resume"].as_bool().unwrap_or(false),
                };
                let (progress, handle) = self.copies.start(&self.host, self.client.clone(), plan).map_err(|e| {
                    if e.contains("already running") { Response::error(409, "conflict", &e) } else { bad_request(&e) }
                })?;
                if let Ok(mut job) = self.job.lock() {
                    *job = Some(handle);
                }
                Ok(Response::json(&progress).with_status(202))
            }
            ("GET", "/copy") => Ok(Response::json(&json!({
                "copy": self.copies.progress(),
                "checkpoint": copy::saved_checkpoint(&self.host),
            }))),
            ("POST", "/copy/cancel") => {
                if self.copies.cancel() {
                    Ok(Response::json(&json!({"cancelling": true})).with_status(202))
                } else {
                    Err(Response::error(409, "conflict", "no copy is running"))
                }
            }
            _ => Err(Response::not_found()),
        }
    }

    async fn export(&self, target: &Target) -> Result<Response, Response> {
        let archive = archive::export(&self.client, target, self.page_size).await.map_err(failure)?;
        let mut response = Response::json(&archive);
        response.headers.push((
            "content-disposition".into(),
            format!("attachment; filename=\"apollo-store-{}.json\"", archive["created_at_ms"]),
        ));
        Ok(response)
    }
}

export_module!(DbMigrate);
