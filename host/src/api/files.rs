//! `/api/files`: the file manager over `app_root` (list, stat, download, upload, mkdir,
//! move, remove). Handlers only translate HTTP to [`FileManager`] calls, run them on the
//! blocking pool and map [`FileError`] to statuses; confinement lives in `crate::files`.
//! Auth and the audit of the mutating calls come from the API's middleware.
//!
//! Uploads are the raw request body (`PUT /api/files/content?path=`), streamed to disk,
//! never buffered whole. Their limit is `files.max_upload_bytes`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, ErrorBody};
use crate::files::{FileEntry, FileError, FileManager, Listing, Made, Removed, Written};
use crate::state::AppState;

/// Entries returned by one listing unless `limit` says otherwise, and the most allowed.
const DEFAULT_LIST_LIMIT: usize = 1000;
const MAX_LIST_LIMIT: usize = 10_000;
/// Read size for downloads.
const CHUNK: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, remove))
        .routes(routes!(stat))
        .routes(routes!(download, upload))
        // Each part is bounded by files.max_upload_bytes while it streams to disk; the
        // router-wide body limit (meant for JSON) must not cap the form as a whole.
        .routes(utoipa_axum::router::UtoipaMethodRouterExt::layer(
            routes!(upload_multipart),
            axum::extract::DefaultBodyLimit::disable(),
        ))
        .routes(routes!(mkdir))
        .routes(routes!(rename))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Directory relative to app_root; absent, empty or `.` for app_root itself.
    pub path: Option<String>,
    /// Most entries to return (default 1000, max 10000); `truncated` says if there were more.
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Relative to app_root: no `..`, no leading `/`, no NUL; symlinks must stay inside.
    pub path: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Relative to app_root. A symlink is removed itself, never its target.
    pub path: String,
    /// Remove a non-empty directory with everything in it (default false).
    pub recursive: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MkdirRequest {
    /// Directory to create, with any missing parents.
    pub path: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MoveRequest {
    pub from: String,
    /// The new full path (not a directory to move into).
    pub to: String,
    /// Replace an existing `to` (default false: 409).
    #[serde(default)]
    pub overwrite: bool,
}

/// [`FileError`] or [`ApiError`] at the HTTP edge.
#[derive(Debug)]
pub enum FilesError {
    File(FileError),
    Api(ApiError),
}

impl From<FileError> for FilesError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

impl From<ApiError> for FilesError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        let api = match self {
            Self::Api(e) => e,
            Self::File(FileError::BadRequest(m)) => ApiError::BadRequest(m),
            Self::File(FileError::NotFound(m)) => ApiError::NotFound(m),
            Self::File(FileError::Conflict(m)) => ApiError::Conflict(m),
            Self::File(FileError::TooLarge(m)) => ApiError::PayloadTooLarge(m),
            Self::File(FileError::Internal(m)) => ApiError::Internal(m),
            Self::File(FileError::Forbidden(message)) => {
                // Logged: an escape attempt is worth seeing even on a read (not audited).
                tracing::warn!("file manager refused: {message}");
                ApiError::Forbidden(message)
            }
        };
        api.into_response()
    }
}

/// Runs a file operation on the blocking pool with a manager over `app_root`.
async fn run<T, F>(state: &AppState, op: F) -> Result<T, FilesError>
where
    T: Send + 'static,
    F: FnOnce(FileManager) -> Result<T, FileError> + Send + 'static,
{
    let root = state.config.app_root.clone();
    let joined = tokio::task::spawn_blocking(move || op(FileManager::open(&root)?)).await;
    Ok(joined.map_err(|e| ApiError::Internal(format!("file operation task failed: {e}")))??)
}

#[utoipa::path(get, path = "/api/files", tag = "files", params(ListQuery),
    responses(
        (status = 200, description = "The directory's entries, by name; symlinks shown as links", body = Listing),
        (status = 400, description = "Malformed path, or not a directory", body = ErrorBody),
        (status = 403, description = "The path leaves app_root", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Listing>, FilesError> {
    let path = q.path.unwrap_or_default();
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    Ok(Json(run(&state, move |fm| fm.list(&path, limit)).await?))
}

#[utoipa::path(get, path = "/api/files/stat", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "What the path names (symlinks inside app_root followed)", body = FileEntry),
        (status = 400, body = ErrorBody), (status = 403, description = "The path leaves app_root", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn stat(State(state): State<AppState>, Query(q): Query<PathQuery>) -> Result<Json<FileEntry>, FilesError> {
    Ok(Json(run(&state, move |fm| fm.stat(&q.path)).await?))
}

#[utoipa::path(get, path = "/api/files/content", tag = "files", params(PathQuery),
    responses(
        (status = 200, description = "The file's bytes, as an attachment", content_type = "application/octet-stream", body = String),
        (status = 400, description = "Malformed path, a directory or not a regular file", body = ErrorBody),
        (status = 403, description = "The path leaves app_root", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn download(State(state): State<AppState>, Query(q): Query<PathQuery>) -> Result<Response, FilesError> {
    let (file, entry) = run(&state, move |fm| fm.open_read(&q.path)).await?;
    // Exactly the size announced: a file that grows while it is sent is cut there, one
    // that shrinks ends the connection early (the client sees a short body, not a lie).
    let reader = tokio::fs::File::from_std(file).take(entry.size);
    let mut response = Response::new(Body::from_stream(chunks(reader)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.size));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(&entry.name));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

#[utoipa::path(put, path = "/api/files/content", tag = "files", params(PathQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "The file's bytes (raw body)"),
    responses(
        (status = 201, description = "Created", body = Written),
        (status = 200, description = "Replaced atomically (the old file's mode kept)", body = Written),
        (status = 400, body = ErrorBody), (status = 403, description = "The path leaves app_root", body = ErrorBody),
        (status = 404, description = "The directory does not exist", body = ErrorBody),
        (status = 409, description = "A directory is in the way", body = ErrorBody),
        (status = 413, description = "Over files.max_upload_bytes", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FilesError> {
    let limit = state.config.files.max_upload_bytes;
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit) {
        // Refused before touching the disk or reading the body.
        return Err(FileError::TooLarge(format!("the body is over the upload limit of {limit} bytes")).into());
    }
    let upload = run(&state, move |fm| fm.begin_upload(&q.path, limit)).await?;
    let written = upload.write_from(body.into_data_stream()).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadDirQuery {
    /// The directory (relative to app_root) the uploaded files go into; empty: app_root.
    #[serde(default)]
    pub dir: String,
}

#[utoipa::path(post, path = "/api/files/upload", tag = "files", params(UploadDirQuery),
    request_body(content = String, content_type = "multipart/form-data", description = "One or more file parts; each part's filename names the file"),
    responses(
        (status = 201, description = "Every file written atomically", body = [Written]),
        (status = 400, description = "Not multipart, or a part without a file name", body = ErrorBody),
        (status = 403, description = "A name leaves app_root", body = ErrorBody),
        (status = 413, description = "A file over files.max_upload_bytes", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn upload_multipart(
    State(state): State<AppState>,
    Query(q): Query<UploadDirQuery>,
    mut form: axum::extract::Multipart,
) -> Result<Response, FilesError> {
    let limit = state.config.files.max_upload_bytes;
    let mut written = Vec::new();
    while let Some(field) =
        form.next_field().await.map_err(|e| ApiError::BadRequest(format!("invalid multipart body: {e}")))?
    {
        let Some(name) = field.file_name().map(str::to_string) else {
            return Err(ApiError::BadRequest(
                "every part needs a filename (Content-Disposition: ...; filename=...)".into(),
            )
            .into());
        };
        // The file name is one path component: the resolver refuses anything else.
        let path =
            if q.dir.is_empty() || q.dir == "." { name } else { format!("{}/{name}", q.dir.trim_end_matches('/')) };
        let upload = run(&state, move |fm| fm.begin_upload(&path, limit)).await?;
        written.push(upload.write_from(field).await?);
    }
    if written.is_empty() {
        return Err(ApiError::BadRequest("the form holds no file part".into()).into());
    }
    Ok((StatusCode::CREATED, Json(written)).into_response())
}

#[utoipa::path(post, path = "/api/files/mkdir", tag = "files", request_body = MkdirRequest,
    responses(
        (status = 201, description = "Created, with missing parents", body = Made),
        (status = 200, description = "Already a directory", body = Made),
        (status = 400, body = ErrorBody), (status = 403, description = "The path leaves app_root", body = ErrorBody),
        (status = 409, description = "A file is in the way", body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn mkdir(State(state): State<AppState>, ApiJson(req): ApiJson<MkdirRequest>) -> Response {
    let detail = format!("path={}", req.path);
    let made = run(&state, move |fm| fm.mkdir(&req.path)).await.map(|made| {
        let status = if made.created { StatusCode::CREATED } else { StatusCode::OK };
        (status, Json(made)).into_response()
    });
    audited(made, detail)
}

/// The response, success or failure, labelled with what the body asked to change (the
/// path alone does not say), for the audit log.
fn audited(result: Result<Response, FilesError>, detail: String) -> Response {
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.extensions_mut().insert(crate::store::AuditDetail(detail));
    response
}

#[utoipa::path(post, path = "/api/files/move", tag = "files", request_body = MoveRequest,
    responses(
        (status = 200, description = "Moved; the entry at its new path", body = FileEntry),
        (status = 400, description = "Malformed path, or a directory into itself", body = ErrorBody),
        (status = 403, description = "Either end leaves app_root, or `from` is app_root", body = ErrorBody),
        (status = 404, description = "`from`, or the directory of `to`, does not exist", body = ErrorBody),
        (status = 409, description = "`to` exists (pass overwrite), or another file system", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn rename(State(state): State<AppState>, ApiJson(req): ApiJson<MoveRequest>) -> Response {
    let detail = format!("from={} to={}", req.from, req.to);
    let moved = run(&state, move |fm| fm.rename(&req.from, &req.to, req.overwrite)).await;
    audited(moved.map(|entry| Json(entry).into_response()), detail)
}

#[utoipa::path(delete, path = "/api/files", tag = "files", params(RemoveQuery),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 400, body = ErrorBody),
        (status = 403, description = "The path leaves app_root, or is app_root itself", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A non-empty directory without recursive=true", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn remove(State(state): State<AppState>, Query(q): Query<RemoveQuery>) -> Result<Json<Removed>, FilesError> {
    let recursive = q.recursive.unwrap_or(false);
    Ok(Json(run(&state, move |fm| fm.remove(&q.path, recursive)).await?))
}

/// The reader as a stream of chunks; ends after the first error (the connection is then
/// cut, which is how a client learns that a download failed half-way).
fn chunks<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// `attachment` with an ASCII `filename` for old clients and the exact name in
/// `filename*` (RFC 6266 / RFC 8187 percent-encoding).
fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        assert_eq!(content_disposition("a b.txt"), "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
        let v = content_disposition("日本\"x\".sh");
        assert_eq!(v, "attachment; filename=\"___x_.sh\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%22x%22.sh");
    }
}
