//! The engine calls the supervisor's container mode needs, beyond what `/api/docker`
//! offers: create from a prepared body under a fixed name, find a container by name,
//! stop with the model's grace period and signal, kill, wait for the exit, and follow
//! the output from a point in time. Long-running calls (wait, follow) use a client
//! without a request deadline: a quiet container is not a dead engine.
//!
//! It does not decide anything (names, labels, restarts): `crate::supervisor` does.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
    WaitContainerOptions,
};
use futures::{Stream, StreamExt};

use super::{DockerError, DockerManager};

/// What the supervisor needs to know about a container found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundContainer {
    pub id: String,
    pub running: bool,
    /// The container's main process on the engine's host (0 when not running).
    pub pid: i32,
    pub exit_code: Option<i64>,
    pub labels: HashMap<String, String>,
    /// The engine's `State.Status`: `created`, `running`, `exited`, ...
    pub status: String,
    /// The host ports it was created with (its `PORTS` variable, set by the host).
    pub ports: Vec<u16>,
}

impl DockerManager {
    /// The configured engine address (for messages).
    pub fn host(&self) -> &str {
        &self.config.docker_host
    }

    /// A client without a request deadline, for waits and follows.
    async fn unbounded_client(&self) -> Result<Docker, DockerError> {
        Ok(self.client().await?.with_timeout(Duration::from_secs(u64::from(u32::MAX))))
    }

    /// Creates a container named `name` from a prepared body; returns its id.
    pub async fn create_named(&self, name: &str, body: ContainerCreateBody) -> Result<String, DockerError> {
        let d = self.client().await?;
        let opts = CreateContainerOptions { name: Some(name.to_string()), ..Default::default() };
        let created = d.create_container(Some(opts), body).await.map_err(|e| self.err(e))?;
        for warning in &created.warnings {
            tracing::warn!(container = name, "engine warning: {warning}");
        }
        Ok(created.id)
    }

    /// The container with this name or id, `None` when the engine has none.
    pub async fn find(&self, name: &str) -> Result<Option<FoundContainer>, DockerError> {
        let d = self.client().await?;
        let info = match d.inspect_container(name, None).await.map_err(|e| self.err(e)) {
            Ok(info) => info,
            Err(DockerError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let state = info.state.unwrap_or_default();
        let ports = info
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .and_then(|env| env.iter().find_map(|e| e.strip_prefix("PORTS=")))
            .map(|v| v.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default();
        Ok(Some(FoundContainer {
            ports,
            id: info.id.unwrap_or_default(),
            running: state.running.unwrap_or(false),
            pid: state.pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(0),
            exit_code: state.exit_code,
            labels: info.config.and_then(|c| c.labels).unwrap_or_default(),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
        }))
    }

    /// `signal` (the engine's default when `None`), then SIGKILL after `grace_secs`.
    pub async fn stop_with(&self, id: &str, signal: Option<&str>, grace_secs: i32) -> Result<(), DockerError> {
        let d = self.long_client(grace_secs).await?;
        let opts = StopContainerOptions { t: Some(grace_secs), signal: signal.map(str::to_string) };
        match d.stop_container(id, Some(opts)).await.map_err(|e| self.err(e)) {
            Ok(()) => Ok(()),
            Err(DockerError::Engine(m)) if m.starts_with("304") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// SIGKILL now. A container that is not running is fine (the caller wants it dead).
    pub async fn kill(&self, id: &str) -> Result<(), DockerError> {
        let d = self.client().await?;
        match d.kill_container(id, Some(KillContainerOptions::default())).await.map_err(|e| self.err(e)) {
            Ok(()) | Err(DockerError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes the container (force: even if running). An absent one is fine.
    pub async fn remove_quietly(&self, id: &str) -> Result<(), DockerError> {
        let d = self.client().await?;
        let opts = RemoveContainerOptions { force: true, ..Default::default() };
        match d.remove_container(id, Some(opts)).await.map_err(|e| self.err(e)) {
            Ok(()) | Err(DockerError::NotFound(_)) => Ok(()),
            // "removal already in progress"
            Err(DockerError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the container is not running and returns its exit code. Returns at
    /// once for a container that already exited.
    pub async fn wait_exit(&self, id: &str) -> Result<i64, DockerError> {
        let d = self.unbounded_client().await?;
        let opts = WaitContainerOptions { condition: "not-running".into() };
        let mut stream = d.wait_container(id, Some(opts));
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit code as an error carrying it.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.err(e)),
            None => Err(self.unavailable("the engine closed the wait without an exit code")),
        }
    }

    /// stdout and stderr from `since` (unix seconds; 0: from the start) until the
    /// container stops, raw bytes as the engine sends them.
    pub async fn follow_output(
        &self,
        id: &str,
        since: i64,
    ) -> Result<impl Stream<Item = Result<bytes::Bytes, DockerError>> + use<>, DockerError> {
        let d = self.unbounded_client().await?;
        let opts = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since: i32::try_from(since).unwrap_or(0),
            tail: "all".into(),
            ..Default::default()
        };
        let host = self.config.docker_host.clone();
        Ok(d.logs(id, Some(opts))
            .map(move |r| r.map(|c| c.into_bytes()).map_err(|e| DockerError::from_bollard(&host, e))))
    }
}
