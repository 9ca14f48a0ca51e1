//! Writing and deleting service models over the API (`apollo start`, `apollo delete`,
//! importers): `PUT /api/apps/{name}/model` validates a model with the registry's own
//! parser, writes it atomically into the model folder and reloads;
//! `DELETE /api/apps/{name}` stops the service and archives its model file under
//! `<data_dir>/deleted-models/`. Nothing is lost: a model that is replaced (`force`) or
//! deleted is archived first, and a write the registry then refuses (duplicate id,
//! unknown dependency) is rolled back. Auth and the audit come from the middleware.
//!
//! It does not start services (the caller does, with `/api/apps/{name}/start`) and does
//! not touch manage scripts or the service's directory.

use std::path::{Path as FsPath, PathBuf};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{ApiError, ApiJson};
use crate::model::{is_valid_service_name, parse_model};
use crate::registry::{LoadedModel, problems_if_loaded};
use crate::state::AppState;
use crate::store::AuditDetail;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_model)).routes(routes!(delete_app))
}

/// Model writes and deletes run one at a time: each compares, writes, reloads and may
/// roll back, and two interleaved would roll back each other's files.
static MODEL_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The folder, under the data dir, that deleted and replaced models are moved to.
pub const ARCHIVE_DIR: &str = "deleted-models";

#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PutModelRequest {
    /// The octopus model. `name` may be left out (the path's name is used); when given
    /// it must equal the path's name.
    #[schema(value_type = Object)]
    pub model: Value,
    /// Replace an existing, different model of this name (the old file is archived).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelWriteOutcome {
    Created,
    Replaced,
    /// The same model was already loaded: nothing written.
    Unchanged,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PutModelResponse {
    pub name: String,
    /// The model file.
    pub file: String,
    pub outcome: ModelWriteOutcome,
    /// Where the replaced file was archived.
    pub archived_to: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeleteResponse {
    pub name: String,
    /// The model file that was removed from the model folder.
    pub file: String,
    /// Where it is now: move it back into the model folder to restore the service.
    pub archived_to: String,
    /// The state the service was in before it was stopped.
    pub previous_state: String,
}

#[utoipa::path(put, path = "/api/apps/{name}/model", tag = "models",
    params(("name" = String, Path, description = "Service name")),
    request_body = PutModelRequest,
    responses(
        (status = 201, description = "Written and loaded", body = PutModelResponse),
        (status = 200, description = "Replaced (force), or unchanged", body = PutModelResponse),
        (status = 400, description = "Invalid model (nothing written)", body = super::ErrorBody),
        (status = 409, description = "A different model of this name exists and force is not set, or the id is taken", body = super::ErrorBody),
        (status = 401, body = super::ErrorBody)))]
pub async fn put_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PutModelRequest>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let mut value = request.model;
    let Some(fields) = value.as_object_mut() else {
        return Err(ApiError::BadRequest("model must be a JSON object (an octopus model)".into()));
    };
    match fields.get("name") {
        None => {
            fields.insert("name".into(), Value::String(name.clone()));
        }
        Some(Value::String(n)) if *n == name => {}
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "model.name is {other}, but the path names {name:?}; they must be the same"
            )));
        }
    }
    let text = serde_json::to_string_pretty(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
    // The registry's parser, with the registry's environment lookup: what passes here
    // loads there.
    let model = parse_model(&text, &|var| std::env::var(var).ok()).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid model: {}{}",
            e.key.map(|k| format!("{k}: ")).unwrap_or_default(),
            e.message
        ))
    })?;

    let _serial = MODEL_WRITES.lock().await;
    let snapshot = state.registry.snapshot();
    if let Some(other) = snapshot.apps.values().find(|l| l.model.id == model.id && l.model.name != name) {
        return Err(ApiError::Conflict(format!(
            "id {:?} is already used by service {:?} ({}); ids must be unique",
            model.id,
            other.model.name,
            other.file.display()
        )));
    }
    let loaded = snapshot.apps.get(&name);
    let target =
        loaded.map(|l| l.file.clone()).unwrap_or_else(|| state.registry.models_dir().join(format!("{name}.pig")));
    if let Some(current) = loaded
        && current.model == model
    {
        return Ok(written(&name, &target, ModelWriteOutcome::Unchanged, None, StatusCode::OK));
    }
    let holder = snapshot.apps.values().find(|l| l.file == target && l.model.name != name);
    if let Some(other) = holder {
        // `force` replaces this service's model, never another service's file.
        return Err(ApiError::Conflict(format!(
            "{} defines service {:?}; rename or move that file first (force does not replace another service's model)",
            target.display(),
            other.model.name
        )));
    }
    // The cross-file checks, in memory: a model the registry would refuse (unknown
    // run_dep, a cycle, a duplicate) is never written, so no reload ever drops it or
    // the services that depend on it, even for a moment.
    let candidate = LoadedModel { model: model.clone(), file: target.clone(), hash: String::new(), loaded_at_ms: 0 };
    let problems = problems_if_loaded(&snapshot, candidate);
    if !problems.is_empty() {
        let reasons: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        return Err(ApiError::Conflict(format!("model not written: {}", reasons.join("; "))));
    }
    let previous = read_existing(&target)?;
    if previous.is_some() && !request.force {
        let what = match loaded {
            Some(_) => "a different model",
            None => "a model file that is not loaded (see GET /api/models/problems)",
        };
        return Err(ApiError::Conflict(format!(
            "service {name:?} already has {what} at {}; pass force (apollo start --force) to replace it (the old file is archived)",
            target.display()
        )));
    }
    let archived_to = match &previous {
        Some(bytes) => Some(archive_copy(&state, &name, &target, bytes)?),
        None => None,
    };
    write_atomically(&target, text.as_bytes())?;
    state.registry.reload().await?;

    let after = state.registry.snapshot();
    if after.apps.get(&name).is_none_or(|l| l.file != target) {
        // The file alone was fine, but not with the others (unknown run_dep, cycle, a
        // duplicate elsewhere): put back what was there.
        let why = after
            .problems
            .iter()
            .find(|p| FsPath::new(&p.file) == target)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| "the registry did not load it".into());
        rollback(&target, previous.as_deref(), archived_to.as_deref());
        state.registry.reload().await?;
        state.supervisor.sync_with_registry(&name).await;
        return Err(ApiError::Conflict(format!("model not written: {why}")));
    }
    state.supervisor.sync_with_registry(&name).await;
    let (outcome, status) = if previous.is_some() {
        (ModelWriteOutcome::Replaced, StatusCode::OK)
    } else {
        (ModelWriteOutcome::Created, StatusCode::CREATED)
    };
    Ok(written(&name, &target, outcome, archived_to, status))
}

#[utoipa::path(delete, path = "/api/apps/{name}", tag = "models",
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "Stopped, and its model moved to <data_dir>/deleted-models/", body = DeleteResponse),
        (status = 404, body = super::ErrorBody),
        (status = 409, description = "Other services depend on it, or it could not be stopped (nothing deleted)", body = super::ErrorBody),
        (status = 401, body = super::ErrorBody)))]
pub async fn delete_app(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    check_name(&name)?;
    let _serial = MODEL_WRITES.lock().await;
    let snapshot = state.registry.snapshot();
    let (file, previous_state) = match snapshot.apps.get(&name) {
        Some(loaded) => {
            let dependants: Vec<&str> = snapshot
                .apps
                .values()
                .filter(|other| other.model.references().any(|(_, dep)| dep == name))
                .map(|other| other.model.name.as_str())
                .collect();
            if !dependants.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "{} name {name:?} in run_dep or stop_chain; delete them or remove {name:?} from their models first",
                    dependants.join(", ")
                )));
            }
            let before = state.supervisor.status(&name).await.map(|s| s.state.as_str().to_string());
            match state.supervisor.stop(&name).await {
                Ok(_) | Err(crate::supervisor::ControlError::NotFound(_)) => {}
                Err(e) => {
                    return Err(ApiError::Conflict(format!("{name:?} was not deleted: stopping it failed: {e}")));
                }
            }
            (loaded.file.clone(), before.unwrap_or_else(|_| "stopped".into()))
        }
        None => {
            // A model file that does not load (see /api/models/problems) can be deleted too.
            let file = state.registry.models_dir().join(format!("{name}.pig"));
            if !file.is_file() {
                return Err(ApiError::NotFound(format!("no service named {name:?}; GET /api/apps lists them")));
            }
            if let Some(other) = snapshot.apps.values().find(|l| l.file == file) {
                return Err(ApiError::Conflict(format!(
                    "{} defines service {:?}, not {name:?}; delete {:?} instead",
                    file.display(),
                    other.model.name,
                    other.model.name
                )));
            }
            (file, "not loaded".to_string())
        }
    };
    let archived_to = archive_move(&state, &name, &file)?;
    state.registry.reload().await?;
    state.supervisor.sync_with_registry(&name).await;
    let body = DeleteResponse {
        name,
        file: file.display().to_string(),
        archived_to: archived_to.display().to_string(),
        previous_state,
    };
    let mut response = Json(&body).into_response();
    response.extensions_mut().insert(AuditDetail(format!("{} archived to {}", body.file, body.archived_to)));
    Ok(response)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if is_valid_service_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name:?} is not a valid service name: use letters, digits, '-', '_', '.' (max 64, not starting with '.')"
        )))
    }
}

fn written(
    name: &str,
    file: &FsPath,
    outcome: ModelWriteOutcome,
    archived_to: Option<PathBuf>,
    status: StatusCode,
) -> Response {
    let body = PutModelResponse {
        name: name.to_string(),
        file: file.display().to_string(),
        outcome,
        archived_to: archived_to.map(|p| p.display().to_string()),
    };
    let detail = match &body.archived_to {
        Some(archive) => format!("{:?} {}; old file archived to {archive}", body.outcome, body.file),
        None => format!("{:?} {}", body.outcome, body.file),
    };
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(AuditDetail(detail));
    response
}

fn io_error(what: &FsPath, e: &std::io::Error) -> ApiError {
    ApiError::Internal(format!("{}: {e}", what.display()))
}

fn read_existing(path: &FsPath) -> Result<Option<Vec<u8>>, ApiError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

/// Writes next to the target under a hidden name (the registry skips hidden files),
/// syncs, then renames: a watching registry sees the old file or the new one, never half.
fn write_atomically(target: &FsPath, bytes: &[u8]) -> Result<(), ApiError> {
    use std::io::Write;
    let dir = target.parent().ok_or_else(|| ApiError::Internal(format!("{} has no folder", target.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    let file_name = target.file_name().and_then(|n| n.to_str()).unwrap_or("model.pig");
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, target)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(target, &e)
    })
}

/// `<data_dir>/deleted-models/<name>-<UTC time>.<ext>`: unique per call (the time has
/// milliseconds, and writes are serialised), sortable, and says what it was.
fn archive_path(state: &AppState, name: &str, original: &FsPath) -> Result<PathBuf, ApiError> {
    let dir = state.config.data_dir.join(ARCHIVE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
    let ext = original.extension().and_then(|e| e.to_str()).unwrap_or("pig");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut path = dir.join(format!("{name}-{stamp}.{ext}"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{name}-{stamp}-{n}.{ext}"));
        n += 1;
    }
    Ok(path)
}

fn archive_copy(state: &AppState, name: &str, original: &FsPath, bytes: &[u8]) -> Result<PathBuf, ApiError> {
    let archive = archive_path(state, name, original)?;
    write_atomically(&archive, bytes)?;
    Ok(archive)
}

/// Moves the model file out of the model folder; across filesystems by copy, sync,
/// then removal, so the file exists in one place or both, never in none.
fn archive_move(state: &AppState, name: &str, file: &FsPath) -> Result<PathBuf, ApiError> {
    let archive = archive_path(state, name, file)?;
    if std::fs::rename(file, &archive).is_ok() {
        return Ok(archive);
    }
    let bytes = std::fs::read(file).map_err(|e| io_error(file, &e))?;
    write_atomically(&archive, &bytes)?;
    std::fs::remove_file(file).map_err(|e| io_error(file, &e))?;
    Ok(archive)
}

/// Puts the model folder back as it was before a refused write. Failures are logged:
/// the archive copy still holds the old model.
fn rollback(target: &FsPath, previous: Option<&[u8]>, archived_to: Option<&FsPath>) {
    let restored = match previous {
        Some(bytes) => write_atomically(target, bytes).map_err(|e| e.to_string()),
        None => std::fs::remove_file(target).map_err(|e| e.to_string()),
    };
    match (restored, archived_to) {
        (Ok(()), Some(archive)) => {
            let _ = std::fs::remove_file(archive);
        }
        (Ok(()), None) => {}
        (Err(e), archive) => tracing::error!(
            file = %target.display(),
            archive = ?archive,
            "rolling back a refused model write failed: {e}"
        ),
    }
}
