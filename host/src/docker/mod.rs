//! The Docker manager: containers and images of the engine at `ci.docker_host`, through
//! bollard. The connection is made lazily on first use and retried on the next call
//! when it fails, so the host starts (and everything else keeps working) with no engine;
//! callers then get [`DockerError::Unavailable`].

mod error;
mod lifecycle;
mod spec;
mod types;

pub use error::DockerError;
pub use lifecycle::FoundContainer;
pub use spec::{ContainerSpec, MountSpec, NETWORK_MODE};
pub use types::{ContainerLogs, ContainerSummary, CreatedContainer, ImageSummary};

use std::time::Duration;

use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListImagesOptions, LogsOptions, RemoveContainerOptions,
    RemoveImageOptions, StatsOptions, StopContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use crate::config::CiConfig;

/// Seconds the engine waits after SIGTERM before SIGKILL on stop/restart.
const STOP_GRACE_SECS: i32 = 10;

#[derive(Debug)]
pub struct DockerManager {
    config: CiConfig,
    /// `None` until an engine has answered once.
    client: Mutex<Option<Docker>>,
}

impl DockerManager {
    pub fn new(config: CiConfig) -> Self {
        Self { config, client: Mutex::new(None) }
    }

    fn unavailable(&self, reason: impl Into<String>) -> DockerError {
        DockerError::Unavailable { host: self.config.docker_host.clone(), reason: reason.into() }
    }

    fn err(&self, e: bollard::errors::Error) -> DockerError {
        DockerError::from_bollard(&self.config.docker_host, e)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.docker_timeout.max(1))
    }

    /// The connected client, connecting (and negotiating the API version) if needed.
    async fn client(&self) -> Result<Docker, DockerError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let version = parse_version(&self.config.docker_api_version)?;
        let host = self.config.docker_host.as_str();
        let secs = self.config.docker_timeout.max(1);
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, secs, &version)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(host, secs, &version)
        } else {
            return Err(DockerError::BadRequest(format!(
                "ci.docker_host {host:?}: use unix:///path/to.sock or tcp://host:port"
            )));
        }
        .map_err(|e| self.err(e))?;
        // Lowers the client version to the engine's when the engine is older (1.41 here);
        // bollard's own timeout covers a socket nobody answers on.
        let docker = tokio::time::timeout(self.timeout(), docker.negotiate_version())
            .await
            .map_err(|_| self.unavailable("no answer to GET /version within ci.docker_timeout"))?
            .map_err(|e| self.err(e))?;
        tracing::info!(host, version = %docker.client_version(), "connected to the Docker engine");
        *slot = Some(docker.clone());
        Ok(docker)
    }

    pub async fn list_containers(&self, all: bool) -> Result<Vec<ContainerSummary>, DockerError> {
        let d = self.client().await?;
        let opts = ListContainersOptions { all, ..Default::default() };
        let list = d.list_containers(Some(opts)).await.map_err(|e| self.err(e))?;
        Ok(list.into_iter().map(ContainerSummary::from).collect())
    }

    /// The engine's full inspect document, as JSON (its shape depends on the API version).
    pub async fn inspect_container(&self, id: &str) -> Result<serde_json::Value, DockerError> {
        let d = self.client().await?;
        let info = d.inspect_container(id, None).await.map_err(|e| self.err(e))?;
        serde_json::to_value(info).map_err(|e| DockerError::Engine(e.to_string()))
    }

    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<CreatedContainer, DockerError> {
        let (body, mut warnings) = spec.to_create_body()?;
        let d = self.client().await?;
        let opts = spec.name.clone().map(|name| CreateContainerOptions { name: Some(name), ..Default::default() });
        let created = d.create_container(opts, body).await.map_err(|e| self.err(e))?;
        warnings.extend(created.warnings);
        Ok(CreatedContainer { id: created.id, warnings })
    }

    pub async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        let d = self.client().await?;
        d.start_container(id, None).await.map_err(|e| self.err(e)).or_else(already_done)
    }

    pub async fn stop_container(&self, id: &str) -> Result<(), DockerError> {
        let d = self.long_client(STOP_GRACE_SECS).await?;
        let opts = StopContainerOptions { t: Some(STOP_GRACE_SECS), ..Default::default() };
        d.stop_container(id, Some(opts)).await.map_err(|e| self.err(e)).or_else(already_done)
    }

    pub async fn restart_container(&self, id: &str) -> Result<(), DockerError> {
        let d = self.long_client(STOP_GRACE_SECS).await?;
        let opts =
            bollard::query_parameters::RestartContainerOptions { t: Some(STOP_GRACE_SECS), ..Default::default() };
        d.restart_container(id, Some(opts)).await.map_err(|e| self.err(e))
    }

    pub async fn remove_container(&self, id: &str, force: bool) -> Result<(), DockerError> {
        let d = self.client().await?;
        let opts = RemoveContainerOptions { force, ..Default::default() };
        d.remove_container(id, Some(opts)).await.map_err(|e| self.err(e))
    }

    /// The last `tail` lines of stdout and stderr.
    pub async fn logs(&self, id: &str, tail: usize) -> Result<ContainerLogs, DockerError> {
        let d = self.client().await?;
        let opts = LogsOptions { stdout: true, stderr: true, tail: tail.to_string(), ..Default::default() };
        let chunks: Vec<_> = d.logs(id, Some(opts)).try_collect().await.map_err(|e| self.err(e))?;
        let text: String = chunks.iter().map(|c| String::from_utf8_lossy(c.as_ref()).into_owned()).collect();
        Ok(ContainerLogs { lines: text.lines().map(str::to_string).collect() })
    }

    /// Log output from the last `tail` lines on, until the container stops. The stream's
    /// client has no request timeout: a quiet container is not a dead engine.
    pub async fn follow_logs(
        &self,
        id: &str,
        tail: usize,
    ) -> Result<impl Stream<Item = Result<bytes::Bytes, DockerError>> + use<>, DockerError> {
        let d = self.client().await?.with_timeout(Duration::from_secs(u64::from(u32::MAX)));
        // Asked once first so a missing container is a 404, not an empty 200 stream.
        d.inspect_container(id, None).await.map_err(|e| self.err(e))?;
        let opts =
            LogsOptions { follow: true, stdout: true, stderr: true, tail: tail.to_string(), ..Default::default() };
        let host = self.config.docker_host.clone();
        Ok(d.logs(id, Some(opts))
            .map(move |r| r.map(|c| c.into_bytes()).map_err(|e| DockerError::from_bollard(&host, e))))
    }

    /// One sample of CPU, memory, network and block I/O counters.
    pub async fn stats(&self, id: &str) -> Result<serde_json::Value, DockerError> {
        let d = self.client().await?;
        let opts = StatsOptions { stream: false, one_shot: true };
        let sample = d
            .stats(id, Some(opts))
            .next()
            .await
            .ok_or_else(|| DockerError::Engine("the engine sent no stats sample".into()))?
            .map_err(|e| self.err(e))?;
        serde_json::to_value(sample).map_err(|e| DockerError::Engine(e.to_string()))
    }

    pub async fn list_images(&self) -> Result<Vec<ImageSummary>, DockerError> {
        let d = self.client().await?;
        let list = d.list_images(Some(ListImagesOptions::default())).await.map_err(|e| self.err(e))?;
        Ok(list.into_iter().map(ImageSummary::from).collect())
    }

    pub async fn remove_image(&self, name: &str, force: bool) -> Result<(), DockerError> {
        let d = self.client().await?;
        let opts = RemoveImageOptions { force, ..Default::default() };
        d.remove_image(name, Some(opts), None).await.map_err(|e| self.err(e)).map(drop)
    }

    /// A client whose request timeout also covers a stop's grace period.
    async fn long_client(&self, grace_secs: i32) -> Result<Docker, DockerError> {
        let extra = u64::try_from(grace_secs).unwrap_or(0);
        Ok(self.client().await?.with_timeout(self.timeout() + Duration::from_secs(extra)))
    }
}

/// The engine answers 304 to starting a running or stopping a stopped container;
/// the caller asked for a state and it holds, so that is success.
fn already_done(e: DockerError) -> Result<(), DockerError> {
    match &e {
        DockerError::Engine(m) if m.starts_with("304") => Ok(()),
        _ => Err(e),
    }
}

fn parse_version(v: &str) -> Result<ClientVersion, DockerError> {
    let bad = || DockerError::BadRequest(format!("ci.docker_api_version {v:?}: expected MAJOR.MINOR, e.g. 1.41"));
    let (major, minor) = v.trim().trim_start_matches('v').split_once('.').ok_or_else(bad)?;
    Ok(ClientVersion {
        major_version: major.parse().map_err(|_| bad())?,
        minor_version: minor.parse().map_err(|_| bad())?,
    })
}
