//! `/api/backups`: list, create, download, restore and delete backups. Handlers only
//! translate HTTP to [`BackupManager`] calls and map [`BackupError`] to statuses; the
//! archive format, retention and the restore procedure live in `crate::backup`.
//!
//! Create and restore run as tasks owned by the host's tracker, not inside the request
//! future: if the client goes away or the request deadline answers first, a restore
//! still finishes (a restore cut between stopping and restarting the services would
//! leave them down). Their result is then in the audit log and the host log.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::backup::{BackupEntry, BackupError, RestoreReport};
use crate::state::AppState;

/// Read size for downloads.
const CHUNK: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(get_backup, delete_backup))
        .routes(routes!(download))
        .routes(routes!(restore))
}

#[utoipa::path(get, path = "/api/backups", tag = "backups",
    responses((status = 200, description = "Backups in app_back_up, newest first", body = [BackupEntry]),
        (status = 401, body = ErrorBody)))]
pub async fn list_backups(State(state): State<AppState>) -> Result<Json<Vec<BackupEntry>>, ApiError> {
    state.backups.list().await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/backups", tag = "backups",
    responses((status = 201, description = "Written; older backups beyond backup.retention were deleted", body = BackupEntry),
        (status = 409, description = "Another backup or restore is running", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn create_backup(State(state): State<AppState>) -> Result<(StatusCode, Json<BackupEntry>), ApiError> {
    let backups = state.backups.clone();
    let created = state
        .tasks
        .spawn(async move { backups.create().await })
        .await
        .map_err(|e| ApiError::Internal(format!("backup task failed: {e}")))?
        .map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(created.entry)))
}

#[utoipa::path(get, path = "/api/backups/{id}", tag = "backups",
    params(("id" = String, Path, description = "Backup id, e.g. apollo-20250101T030000.000Z-1a2b3c")),
    responses((status = 200, body = BackupEntry),
        (status = 400, description = "Not a backup id (path characters)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn get_backup(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<BackupEntry>, ApiError> {
    state.backups.get(&id).await.map(Json).map_err(ApiError::from)
}

#[utoipa::path(delete, path = "/api/backups/{id}", tag = "backups",
    params(("id" = String, Path, description = "Backup id")),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Not a backup id (path characters)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn delete_backup(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.backups.delete(&id).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/backups/{id}/download", tag = "backups",
    params(("id" = String, Path, description = "Backup id")),
    responses((status = 200, description = "The .tar.gz, streamed", content_type = "application/gzip", body = Vec<u8>),
        (status = 400, description = "Not a backup id (path characters)", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn download(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let path = state.backups.archive_path(&id).map_err(ApiError::from)?;
    // Open first: retention may delete the file meanwhile, and an open file stays readable.
    let file = tokio::fs::File::open(&path).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackupError::NotFound(id.clone()).into(),
        _ => ApiError::Internal(format!("open {}: {e}", path.display())),
    })?;
    let size = file.metadata().await.map_err(|e| ApiError::Internal(format!("stat {}: {e}", path.display())))?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(tokio::io::AsyncReadExt::take(file, size), CHUNK);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    // The id is validated to [A-Za-z0-9._-]: safe inside the quoted header value.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.tar.gz\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response.into_response())
}

#[utoipa::path(post, path = "/api/backups/{id}/restore", tag = "backups",
    params(("id" = String, Path, description = "Backup id")),
    responses((status = 200, description = "Restored app_root and app_manager; the services that were up were stopped \
        and started again. The store tables are not replaced on a running host (see `store`)", body = RestoreReport),
        (status = 400, description = "Not a backup id, or the archive is refused (path traversal, unknown entries, \
        checksum); nothing was changed", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Another backup or restore is running, a service would not stop, or the directory \
        layout cannot be swapped; nothing was changed", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn restore(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<RestoreReport>, ApiError> {
    let backups = state.backups.clone();
    state
        .tasks
        .spawn(async move { backups.restore(&id).await })
        .await
        .map_err(|e| ApiError::Internal(format!("restore task failed: {e}")))?
        .map(Json)
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses() {
        let status = |e: BackupError| ApiError::from(e).into_response().status();
        assert_eq!(status(BackupError::BadId("x".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status(BackupError::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(status(BackupError::Busy), StatusCode::CONFLICT);
        let refused = BackupError::Refused { id: "x".into(), reason: "..".into() };
        assert_eq!(status(refused), StatusCode::BAD_REQUEST);
    }
}
