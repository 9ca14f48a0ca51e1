//! The `container` section of a model (ours): what a service run as a Docker container
//! needs (image, argv, env, published ports, bind mounts, limits, network), and the
//! checks on it that need only the one file. Host paths are resolved and confined at
//! start by the supervisor, which knows `app_root` and `ci.container_mount_roots`;
//! here a mount source is only refused for `..`, NUL or emptiness.
//!
//! It does not talk to the engine, and does not decide the run mode: `type` does that
//! (`NoEngine` or `Container` with this section runs as a container).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Octopus;
use super::validate::FieldProblem;

/// `type` values that run in container mode when the model has a `container` section.
pub const CONTAINER_TYPES: &[&str] = &["NoEngine", "Container"];

/// Network modes a service container may use. `none` is the default (and the only one
/// an engine started with `--bridge=none`, like the test engine, supports).
pub const NETWORKS: &[&str] = &["none", "bridge", "host"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSection {
    /// Image reference; it must already be present on the engine (nothing is pulled).
    pub image: String,
    /// Command and arguments (argv, never a shell string); empty: the image's default.
    pub cmd: Vec<String>,
    /// `NAME=value` entries, after `run_data.envs` (a name in both: this one wins).
    pub env: Vec<String>,
    /// Published TCP ports, `"HOST:CONTAINER"` or `"CONTAINER"` (a free host port is
    /// chosen at start; so is host port `0`), optionally with `/tcp`. Network `bridge` only.
    pub ports: Vec<String>,
    /// Bind mounts from the host.
    pub mounts: Vec<ContainerMount>,
    /// Memory limit in bytes (0: `resource_limit.max_mem`, else none).
    pub memory_bytes: i64,
    /// CPU limit in CPUs, e.g. `0.5` (0: `resource_limit.max_cpu` percent, else none).
    pub cpus: f64,
    /// `none` (default), `bridge` or `host`.
    pub network: String,
    /// Working directory inside the container; empty: the image's.
    pub workdir: String,
    /// User inside the container (`uid[:gid]` or a name the image knows); empty: the image's.
    pub user: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerMount {
    /// Host path: relative to the service's directory `<app_root>/<name>` (created if
    /// missing), or absolute inside `app_root` or a `ci.container_mount_roots` entry.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// One published port: `host == 0` means a free port is chosen at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

impl PortMapping {
    /// `"8080:80"`, `"80"`, `"0:80"`, each optionally ending in `/tcp`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} {why}: use \"HOST:CONTAINER\" or \"CONTAINER\" (TCP, ports 1-65535)");
        let spec = match text.rsplit_once('/') {
            Some((spec, "tcp")) => spec,
            Some((_, proto)) => return Err(bad(&format!("uses protocol {proto:?}, only tcp is published"))),
            None => text,
        };
        let port = |s: &str, allow_zero: bool| -> Result<u16, String> {
            match s.parse::<u16>() {
                Ok(0) if allow_zero => Ok(0),
                Ok(p) if p > 0 => Ok(p),
                _ => Err(bad("is not a port mapping")),
            }
        };
        match spec.split_once(':') {
            Some((host, container)) => Ok(Self { host: port(host, true)?, container: port(container, false)? }),
            None => Ok(Self { host: 0, container: port(spec, false)? }),
        }
    }
}

impl ContainerSection {
    /// The network mode in effect (`none` when unset).
    pub fn network_mode(&self) -> &str {
        if self.network.is_empty() { "none" } else { &self.network }
    }
}

impl Octopus {
    /// Whether this service runs as a container: a container `type` with the section.
    pub fn runs_as_container(&self) -> bool {
        self.container.is_some() && CONTAINER_TYPES.contains(&self.kind.as_str())
    }
}

/// The container-related checks of one model.
pub fn validate_container(m: &Octopus) -> Result<(), FieldProblem> {
    let problem = |key: &str, msg: String| Err((key.to_string(), msg));
    let Some(c) = &m.container else {
        if m.kind == "Container" {
            return problem(
                "container",
                "\"type\": \"Container\" needs a container section, e.g. \"container\": {\"image\": \"busybox:1\", \
                 \"cmd\": [\"sleep\", \"3600\"]} (or use \"type\": \"Service\" with manage_cmd or run_data.command)"
                    .into(),
            );
        }
        return Ok(());
    };
    if !CONTAINER_TYPES.contains(&m.kind.as_str()) {
        return problem(
            "type",
            format!(
                "{:?} does not run as a container, but the model has a container section: use \"type\": \
                 \"Container\" (or the seed's \"NoEngine\"), or remove the section",
                m.kind
            ),
        );
    }
    if c.image.trim().is_empty() {
        return problem("container.image", "is required: an image present on the engine, e.g. \"busybox:1\"".into());
    }
    if c.image.contains(char::is_whitespace) || c.image.contains('\0') {
        return problem("container.image", format!("{:?} is not an image reference", c.image));
    }
    if !m.run_data.command.is_empty() {
        return problem(
            "run_data.command",
            "a container service runs container.cmd: move the command there (argv, no shell string)".into(),
        );
    }
    if c.cmd.iter().any(|a| a.is_empty() || a.contains('\0')) {
        return problem("container.cmd", "every argument must be a non-empty string without NUL".into());
    }
    for (i, env) in c.env.iter().enumerate() {
        if !env.split_once('=').is_some_and(|(k, _)| super::validate::is_env_name(k)) || env.contains('\0') {
            return problem(
                &format!("container.env[{i}]"),
                format!("{env:?} must look like NAME=value (NAME: letters, digits, '_')"),
            );
        }
    }
    let network = c.network_mode();
    if !NETWORKS.contains(&network) {
        return problem("container.network", format!("{network:?}: use one of {}", NETWORKS.join(", ")));
    }
    for (i, text) in c.ports.iter().enumerate() {
        let key = format!("container.ports[{i}]");
        if let Err(e) = PortMapping::parse(text) {
            return problem(&key, e);
        }
        if network != "bridge" {
            return problem(
                &key,
                format!(
                    "ports are published only with \"network\": \"bridge\" (this one is {network:?}; with \"host\" \
                     the container binds run_data.ports itself)"
                ),
            );
        }
    }
    if network == "none" && (!m.run_data.ports.is_empty() || m.run_data.random_port) {
        return problem(
            "run_data.ports",
            "a container with network none has no ports: use container.network bridge (with container.ports) or host"
                .into(),
        );
    }
    if network == "bridge" && m.run_data.random_port && c.ports.is_empty() {
        return problem(
            "run_data.random_port",
            "with network bridge, say which container port to publish: container.ports [\"80\"] publishes port 80 \
             on a free host port"
                .into(),
        );
    }
    for (i, mount) in c.mounts.iter().enumerate() {
        let key = |field: &str| format!("container.mounts[{i}].{field}");
        if mount.source.is_empty() || mount.source.contains('\0') || has_dot_dot(&mount.source) {
            return problem(
                &key("source"),
                format!(
                    "{:?} must be a path inside the service's directory (relative, no '..'), or an absolute path \
                     inside app_root or ci.container_mount_roots",
                    mount.source
                ),
            );
        }
        if !mount.target.starts_with('/') || mount.target.contains('\0') || has_dot_dot(&mount.target) {
            return problem(&key("target"), format!("{:?} must be an absolute path without '..'", mount.target));
        }
    }
    if c.memory_bytes < 0 || (c.memory_bytes > 0 && c.memory_bytes < 6 * 1024 * 1024) {
        return problem(
            "container.memory_bytes",
            "must be 0 (no limit) or at least 6 MiB (the engine's minimum)".into(),
        );
    }
    if !c.cpus.is_finite() || c.cpus < 0.0 {
        return problem("container.cpus", format!("{} must be 0 (no limit) or a positive number of CPUs", c.cpus));
    }
    if m.supervise.instances > 1 {
        return problem("supervise.instances", "a container service runs one container".into());
    }
    if m.supervise.max_memory_restart > 0 {
        return problem(
            "supervise.max_memory_restart",
            "not applied to containers: limit memory with container.memory_bytes (or resource_limit.max_mem)".into(),
        );
    }
    Ok(())
}

fn has_dot_dot(path: &str) -> bool {
    path.split('/').any(|part| part == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(kind: &str, container: Option<ContainerSection>) -> Octopus {
        Octopus { name: "c".into(), id: "app_c".into(), kind: kind.into(), container, ..Default::default() }
    }

    fn section(image: &str) -> ContainerSection {
        ContainerSection { image: image.into(), ..Default::default() }
    }

    #[test]
    fn parses_port_mappings() {
        assert_eq!(PortMapping::parse("8080:80").unwrap(), PortMapping { host: 8080, container: 80 });
        assert_eq!(PortMapping::parse("80/tcp").unwrap(), PortMapping { host: 0, container: 80 });
        assert_eq!(PortMapping::parse("0:80").unwrap(), PortMapping { host: 0, container: 80 });
        for bad in ["80/udp", "x", "80:0", "70000", ":80", "1:2:3", ""] {
            assert!(PortMapping::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn container_mode_needs_a_container_type_and_an_image() {
        assert!(model("NoEngine", Some(section("busybox:1"))).runs_as_container());
        assert!(model("Container", Some(section("busybox:1"))).runs_as_container());
        assert!(!model("NoEngine", None).runs_as_container());
        // A seed NoEngine model without the section stays as it was.
        assert!(validate_container(&model("NoEngine", None)).is_ok());
        assert_eq!(validate_container(&model("Container", None)).unwrap_err().0, "container");
        assert_eq!(validate_container(&model("Service", Some(section("b")))).unwrap_err().0, "type");
        assert_eq!(validate_container(&model("Container", Some(section(" ")))).unwrap_err().0, "container.image");
    }

    #[test]
    fn refuses_escaping_mounts_and_misplaced_ports() {
        let mut c = section("b");
        c.mounts = vec![ContainerMount { source: "data/../../etc".into(), target: "/data".into(), read_only: false }];
        let err = validate_container(&model("Container", Some(c.clone()))).unwrap_err();
        assert_eq!(err.0, "container.mounts[0].source");
        c.mounts[0].source = "data".into();
        c.mounts[0].target = "rel".into();
        assert_eq!(
            validate_container(&model("Container", Some(c.clone()))).unwrap_err().0,
            "container.mounts[0].target"
        );
        c.mounts.clear();
        c.ports = vec!["8080:80".into()];
        assert_eq!(validate_container(&model("Container", Some(c.clone()))).unwrap_err().0, "container.ports[0]");
        c.network = "bridge".into();
        assert!(validate_container(&model("Container", Some(c.clone()))).is_ok());
        c.network = "overlay".into();
        assert_eq!(validate_container(&model("Container", Some(c))).unwrap_err().0, "container.network");
    }
}
