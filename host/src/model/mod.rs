//! The service model ("octopus"): one `.pig` JSON file per service, in the seed's format.
//!
//! `parse_model` turns a file's text into a validated [`Octopus`] or a [`ModelError`]
//! saying where and why. Checks that need the other models (duplicates, unknown
//! dependencies, cycles) live in `crate::registry`; this module sees one file at a time.

mod absent;
mod container;
mod envsubst;
mod octopus;
mod script_env;
mod validate;

pub use container::{CONTAINER_TYPES, ContainerMount, ContainerSection, NETWORKS, PortMapping};
pub use octopus::*;
pub use script_env::{STATUS_CODES, ScriptPaths, script_env};
pub use validate::{is_valid_service_name, validate_model};

use serde::Serialize;
use utoipa::ToSchema;

/// Why one model file was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelError {
    /// Dotted key path inside the file, when the problem is one value.
    pub key: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ModelError {
    pub(crate) fn at_key(text: &str, key: &str, message: impl Into<String>) -> Self {
        let pos = crate::config::locate_key(text, key);
        Self { key: Some(key.to_string()), line: pos.map(|p| p.0), column: pos.map(|p| p.1), message: message.into() }
    }
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "{l}:{c}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Parses and validates one model file's text. `lookup_env` resolves `$VAR` values
/// (the registry passes the process environment; tests pass a map). A `null` field is
/// read as absent (see `absent`).
pub fn parse_model(text: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Octopus, ModelError> {
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| ModelError {
        key: None,
        line: Some(e.line()),
        column: Some(e.column()),
        message: format!("not valid JSON: {}", strip_position(&e.to_string())),
    })?;
    absent::drop_null_fields(&mut value);
    envsubst::substitute(&mut value, lookup_env).map_err(|(key, msg)| ModelError::at_key(text, &key, msg))?;
    let model: Octopus = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        ModelError::at_key(text, &key, strip_position(&e.into_inner().to_string()))
    })?;
    validate_model(&model).map_err(|(key, msg)| ModelError::at_key(text, &key, msg))?;
    Ok(model)
}

fn strip_position(message: &str) -> String {
    message.split(" at line ").next().unwrap_or(message).to_string()
}
