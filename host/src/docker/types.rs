//! The shapes `/api/docker` answers with: small, stable summaries of the engine's
//! much larger (and version-dependent) models.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContainerSummary {
    pub id: String,
    /// Names without the engine's leading `/`.
    pub names: Vec<String>,
    pub image: String,
    /// `created`, `running`, `exited`, ...
    pub state: String,
    /// Human-readable status, e.g. `Up 3 seconds`.
    pub status: String,
    /// Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub size: i64,
    /// Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedContainer {
    pub id: String,
    /// From the engine, plus fields accepted but not applied (ports under network none).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContainerLogs {
    /// stdout and stderr interleaved in the order the engine returned them.
    pub lines: Vec<String>,
}

impl From<bollard::models::ContainerSummary> for ContainerSummary {
    fn from(c: bollard::models::ContainerSummary) -> Self {
        Self {
            id: c.id.unwrap_or_default(),
            names: c.names.unwrap_or_default().into_iter().map(|n| n.trim_start_matches('/').to_string()).collect(),
            image: c.image.unwrap_or_default(),
            state: c.state.map(|s| s.to_string()).unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            created: c.created.unwrap_or_default(),
        }
    }
}

impl From<bollard::models::ImageSummary> for ImageSummary {
    fn from(i: bollard::models::ImageSummary) -> Self {
        Self { id: i.id, repo_tags: i.repo_tags, size: i.size, created: i.created }
    }
}
