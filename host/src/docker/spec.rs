//! The request body of "create a container" and its translation to the engine's
//! create body. Kept apart from the manager so the mapping (network mode, limits,
//! restart policy) can be read and tested on its own.

use std::collections::BTreeMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, RestartPolicy, RestartPolicyNameEnum};
use serde::Deserialize;
use utoipa::ToSchema;

use super::DockerError;

/// What `POST /api/docker/containers` accepts.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Image reference, e.g. `apollo-test/busybox:1`. Must already be present: the host
    /// never pulls from a registry.
    pub image: String,
    /// Container name; the engine picks one when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Command and arguments; the image's default when absent.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Container ports to expose, e.g. `8080/tcp`. Accepted, but nothing is published:
    /// containers run with network mode `none` (the engine has no bridge).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Bind mounts from the host.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory_bytes: Option<i64>,
    /// CPU limit in CPUs (e.g. `0.5`).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// `no` (default), `always`, `unless-stopped` or `on-failure`.
    #[serde(default)]
    pub restart_policy: Option<String>,
    /// Retries for `on-failure`.
    #[serde(default)]
    pub max_retries: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// Absolute path on the host.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

/// The only network mode: the engine runs with `--bridge=none`, and a container must
/// not reach anything but itself.
pub const NETWORK_MODE: &str = "none";

impl ContainerSpec {
    /// The engine's create body, plus warnings about accepted-but-ignored fields.
    pub fn to_create_body(&self) -> Result<(ContainerCreateBody, Vec<String>), DockerError> {
        if self.image.trim().is_empty() {
            return Err(DockerError::BadRequest("image must not be empty".into()));
        }
        let mut warnings = Vec::new();
        if !self.ports.is_empty() {
            warnings.push(format!(
                "ports {:?} are exposed but not published: containers run with network mode none",
                self.ports
            ));
        }
        for m in &self.mounts {
            if !m.source.starts_with('/') || !m.target.starts_with('/') {
                return Err(DockerError::BadRequest(format!(
                    "mount {} -> {}: source and target must be absolute paths",
                    m.source, m.target
                )));
            }
        }
        let nano_cpus = match self.cpus {
            Some(c) if !(c.is_finite() && c > 0.0) => {
                return Err(DockerError::BadRequest(format!("cpus must be a positive number, got {c}")));
            }
            // Truncation is fine: a nano-CPU is far below any meaningful limit.
            #[allow(clippy::cast_possible_truncation)]
            Some(c) => Some((c * 1e9) as i64),
            None => None,
        };
        if let Some(m) = self.memory_bytes
            && m <= 0
        {
            return Err(DockerError::BadRequest(format!("memory_bytes must be positive, got {m}")));
        }
        let restart_policy =
            self.restart_policy.as_deref().map(restart_policy).transpose()?.map(|name| RestartPolicy {
                name: Some(name),
                maximum_retry_count: (name == RestartPolicyNameEnum::ON_FAILURE).then_some(self.max_retries).flatten(),
            });
        let mounts = self
            .mounts
            .iter()
            .map(|m| Mount {
                source: Some(m.source.clone()),
                target: Some(m.target.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: self.cmd.clone(),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: (!self.ports.is_empty()).then(|| self.ports.clone()),
            host_config: Some(HostConfig {
                network_mode: Some(NETWORK_MODE.into()),
                memory: self.memory_bytes,
                nano_cpus,
                mounts: (!mounts.is_empty()).then_some(mounts),
                restart_policy,
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok((body, warnings))
    }
}

fn restart_policy(name: &str) -> Result<RestartPolicyNameEnum, DockerError> {
    Ok(match name {
        "no" | "" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => {
            return Err(DockerError::BadRequest(format!(
                "restart_policy {other:?}: use no, always, unless-stopped or on-failure"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> ContainerSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn maps_limits_mounts_and_policy_with_network_none() {
        let s = spec(serde_json::json!({
            "image": "img:1", "cmd": ["sh"], "env": {"A": "1"}, "ports": ["80/tcp"],
            "mounts": [{"source": "/tmp", "target": "/data", "read_only": true}],
            "memory_bytes": 1048576, "cpus": 0.5, "restart_policy": "on-failure", "max_retries": 3
        }));
        let (body, warnings) = s.to_create_body().unwrap();
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.memory, Some(1_048_576));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.restart_policy.unwrap().maximum_retry_count, Some(3));
        assert_eq!(hc.mounts.unwrap()[0].read_only, Some(true));
        assert_eq!(body.env.unwrap(), vec!["A=1".to_string()]);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(spec(serde_json::json!({"image": ""})).to_create_body().is_err());
        assert!(spec(serde_json::json!({"image": "i", "cpus": -1.0})).to_create_body().is_err());
        assert!(spec(serde_json::json!({"image": "i", "restart_policy": "sometimes"})).to_create_body().is_err());
        assert!(
            spec(serde_json::json!({"image": "i", "mounts": [{"source": "rel", "target": "/x"}]}))
                .to_create_body()
                .is_err()
        );
    }
}
