//! What can go wrong talking to the Docker engine, sorted by whose fault it is: the
//! engine being absent is not the caller's fault (503), a missing container is (404).

use bollard::errors::Error as BollardError;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answered at `ci.docker_host` (socket missing, refused, timed out).
    #[error(
        "Docker engine unavailable at {host}: {reason} (check ci.docker_host; tests start one with .ci/docker-up.sh)"
    )]
    Unavailable { host: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// The engine answered with an error we have no better category for.
    #[error("Docker engine error: {0}")]
    Engine(String),
}

impl DockerError {
    /// Sorts a bollard error: HTTP answers from the engine keep their meaning, anything
    /// at the transport level means there is no usable engine.
    pub fn from_bollard(host: &str, e: BollardError) -> Self {
        match e {
            BollardError::DockerResponseServerError { status_code, message } => match status_code {
                404 => Self::NotFound(message),
                409 => Self::Conflict(message),
                400 => Self::BadRequest(message),
                _ => Self::Engine(format!("{status_code}: {message}")),
            },
            BollardError::SocketNotFoundError(path) => {
                Self::Unavailable { host: host.to_string(), reason: format!("no socket at {path}") }
            }
            BollardError::RequestTimeoutError => {
                Self::Unavailable { host: host.to_string(), reason: "request timed out (ci.docker_timeout)".into() }
            }
            BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::APIVersionParseError {} => {
                Self::Unavailable { host: host.to_string(), reason: e.to_string() }
            }
            other => Self::Engine(other.to_string()),
        }
    }
}
