//! module-db-migrate: administration of the host's store — schema migrations (status,
//! dry run, up), export of a whole store to a JSON archive and import from one, and
//! verified, resumable copies between stores (SQLite -> MongoDB and back). All store
//! access goes through the host's store-administration service (`Host::store_admin`), which
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

use std::sync::{Arc, Mutex};

use plugin_api::tokio::task::JoinHandle;
use plugin_api::{HandlerResult, Host, Module, ModuleError, Request, Response, Route, Routes, export_module};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::copy::{Copies, CopyPlan};
use crate::store::{Failure, StoreClient};
use crate::target::Target;

const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 5_000;

/// `modules.config.db-migrate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Records per page, 1..=5000 (default 500). Kept as JSON and checked in `init`, so
    /// a wrong value is refused naming the key and the range.
    pub page_size: Option<Value>,
}

#[derive(Debug)]
pub struct DbMigrate {
    host: Host,
    client: StoreClient,
    page_size: u32,
    copies: Copies,
    /// The running copy job's task (owned here; stopped through `copies.cancel`).
    job: Mutex<Option<JoinHandle<()>>>,
}

fn bad_request(message: &str) -> ModuleError {
    ModuleError::bad_request(message)
}

/// The host's error code decides the status; the message says what and where.
fn failure(f: Failure) -> ModuleError {
    let status = match f.code.as_str() {
        "bad_request" => 400,
        "forbidden" => 403,
        "not_found" => 404,
        "conflict" => 409,
        "unavailable" => 503,
        _ => 500,
    };
    ModuleError::new(status, f.code, f.message)
}

/// The body as JSON (an empty body is `{}`).
fn body(req: &Request) -> Result<Value, ModuleError> {
    if req.body.iter().all(u8::is_ascii_whitespace) { Ok(json!({})) } else { req.json::<Value>() }
}

fn target_of(value: &Value, key: &str) -> Result<Target, ModuleError> {
    Target::parse(value.get(key)).map_err(|e| bad_request(&format!("\"{key}\": {e}")))
}

impl Module for DbMigrate {
    const NAME: &'static str = "db-migrate";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Store migrations, JSON export/import, and verified, resumable copies between SQLite and MongoDB";
    type Config = Config;

    fn routes() -> Routes<Self> {
        Routes::new()
            .add(Route::get("/status", "The host's store, the copy job and the saved checkpoint"), Self::status)
            .add(Route::get("/migrations", "Schema steps of the host's store"), Self::migrations)
            .add(Route::post("/migrations", "Schema steps of another store ({\"target\": T})"), Self::migrations_of)
            .add(Route::post("/migrations/up", "Apply pending schema steps, or a dry run"), Self::migrate)
            .add(Route::get("/export", "The host's store as a JSON archive"), Self::export_active)
            .add(Route::post("/export", "Another store as a JSON archive"), Self::export_target)
            .add(Route::post("/import", "Import an archive (checked whole first)"), Self::import)
            .add(Route::post("/copy", "Start a copy between stores (202; resumable)"), Self::start_copy)
            .add(Route::get("/copy", "Progress of the copy job"), Self::copy_progress)
            .add(Route::post("/copy/cancel", "Stop the running copy after its current page"), Self::cancel_copy)
    }

    fn init(host: Host, config: Config) -> Result<Self, ModuleError> {
        let page_size = match config.page_size {
            None => DEFAULT_PAGE,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=u64::from(MAX_PAGE)).contains(&n) => n as u32,
                _ => {
                    return Err(bad_request(&format!(
                        "modules.config.db-migrate.page_size: {v} is not a number in 1..={MAX_PAGE}"
                    )));
                }
            },
        };
        host.info(&format!("module-db-migrate {} ready (page size {page_size})", Self::VERSION));
        Ok(DbMigrate {
            client: StoreClient::new(&host),
            host,
            page_size,
            copies: Copies::default(),
            job: Mutex::new(None),
        })
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

/// The handlers.
impl DbMigrate {
    async fn status(self: Arc<Self>, _req: Request) -> HandlerResult {
        let store = self.client.info(&Target::active()).await.map_err(failure)?;
        Ok(Response::json(&json!({
            "store": store,
            "copy": self.copies.progress(),
            "checkpoint": copy::saved_checkpoint(&self.host).await,
        })))
    }

    async fn migrations(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&self.client.migrations(&Target::active()).await.map_err(failure)?))
    }

    async fn migrations_of(self: Arc<Self>, req: Request) -> HandlerResult {
        let target = target_of(&body(&req)?, "target")?;
        Ok(Response::json(&self.client.migrations(&target).await.map_err(failure)?))
    }

    async fn migrate(self: Arc<Self>, req: Request) -> HandlerResult {
        let body = body(&req)?;
        let target = target_of(&body, "target")?;
        let dry_run = body["dry_run"].as_bool().unwrap_or(false);
        Ok(Response::json(&self.client.migrate(&target, dry_run).await.map_err(failure)?))
    }

    async fn export_active(self: Arc<Self>, _req: Request) -> HandlerResult {
        self.export(&Target::active()).await
    }

    async fn export_target(self: Arc<Self>, req: Request) -> HandlerResult {
        self.export(&target_of(&body(&req)?, "target")?).await
    }

    async fn import(self: Arc<Self>, req: Request) -> HandlerResult {
        let body = body(&req)?;
        let dry_query = req.query_param("dry_run").is_some_and(|v| v == "true" || v == "1");
        let (target, archive, dry_run) = if body.get("format").is_some() {
            (Target::active(), &body, dry_query)
        } else {
            let archive = body
                .get("archive")
                .ok_or_else(|| bad_request("send an archive (from GET /export), or {\"target\": T, \"archive\": A}"))?;
            (target_of(&body, "target")?, archive, dry_query || body["dry_run"].as_bool().unwrap_or(false))
        };
        let report = archive::import(&self.client, &target, archive, dry_run, self.page_size).await.map_err(failure)?;
        Ok(Response::json(&report))
    }

    async fn start_copy(self: Arc<Self>, req: Request) -> HandlerResult {
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
        let (progress, handle) = self
            .copies
            .start(&self.host, self.client.clone(), plan)
            .await
            .map_err(|e| if e.contains("already running") { ModuleError::conflict(e) } else { bad_request(&e) })?;
        if let Ok(mut job) = self.job.lock() {
            *job = Some(handle);
        }
        Ok(Response::json(&progress).with_status(202))
    }

    async fn copy_progress(self: Arc<Self>, _req: Request) -> HandlerResult {
        Ok(Response::json(&json!({
            "copy": self.copies.progress(),
            "checkpoint": copy::saved_checkpoint(&self.host).await,
        })))
    }

    async fn cancel_copy(self: Arc<Self>, _req: Request) -> HandlerResult {
        if self.copies.cancel() {
            Ok(Response::json(&json!({"cancelling": true})).with_status(202))
        } else {
            Err(ModuleError::conflict("no copy is running"))
        }
    }
}

impl DbMigrate {
    async fn export(&self, target: &Target) -> HandlerResult {
        let archive = archive::export(&self.client, target, self.page_size).await.map_err(failure)?;
        let filename = format!("attachment; filename=\"apollo-store-{}.json\"", archive["created_at_ms"]);
        Ok(Response::json(&archive).with_header("content-disposition", filename))
    }
}

export_module!(DbMigrate);

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestHost, TestRequest};
    use plugin_api::tokio;

    use super::*;

    fn json_of(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn the_saved_checkpoint_is_read_from_the_modules_storage() {
        let host = TestHost::new();
        let module = host.start::<DbMigrate>(json!({"page_size": 100})).unwrap();

        let none = module.call(TestRequest::get("/copy")).await;
        assert_eq!(json_of(&none), json!({"copy": null, "checkpoint": null}));
        let cancel = module.call(TestRequest::post("/copy/cancel")).await;
        assert_eq!(cancel.status, 409);
        assert_eq!(json_of(&cancel), json!({"error": {"code": "conflict", "message": "no copy is running"}}));

        let checkpoint = json!({"from": "active", "to": "sqlite:resume.db", "collection": 2, "after": null,
                                "copied": [1, 2, 0, 0, 0, 0, 0, 0]});
        host.host().storage().put("copy.checkpoint", &checkpoint.to_string()).await.unwrap();
        let saved = json_of(&module.call(TestRequest::get("/copy")).await)["checkpoint"].clone();
        assert_eq!(
            (&saved["to"], &saved["collection"], &saved["copied"]["models"]),
            (&json!("sqlite:resume.db"), &json!("runtime"), &json!(2))
        );

        let other = json!({"to": {"sqlite": "other.db"}, "resume": true});
        let refused = module.call(TestRequest::post("/copy").json(&other)).await;
        assert_eq!(refused.status, 400);
        let message = json_of(&refused)["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("sqlite:resume.db"), "{message}");
    }

    #[tokio::test(crate = "plugin_api::tokio")]
    async fn store_failures_keep_the_hosts_code_and_a_bad_page_size_refuses_the_load() {
        let host = TestHost::new();
        let module = host.start::<DbMigrate>(Value::Null).unwrap();
        // The test host has no store administration: it answers `unavailable`.
        let status = module.call(TestRequest::get("/status")).await;
        assert_eq!(status.status, 503);
        assert_eq!(json_of(&status)["error"]["code"], "unavailable");
        let bad = module.call(TestRequest::post("/migrations").body("{not json")).await;
        assert_eq!(bad.status, 400);

        let refused = TestHost::new().start::<DbMigrate>(json!({"page_size": 0})).unwrap_err();
        assert_eq!(refused.message, "modules.config.db-migrate.page_size: 0 is not a number in 1..=5000");
    }
}
