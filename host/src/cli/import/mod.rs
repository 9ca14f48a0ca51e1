//! `apollo import`: converts another supervisor's configuration (a supervisord
//! `[program:x]` file, a PM2 ecosystem JSON) into octopus models for supervised
//! services. The converters are pure: text in, models and findings out. They read no
//! file, write none and talk to no host — `cli/import_command.rs` does that.
//!
//! Every key of the source is accounted for: it maps into the model, or it is listed
//! as a [`Finding`] (`unmapped`: not carried over, with the reason; `note`: carried
//! over with a difference the operator should know about). Nothing is dropped silently.

mod command;
mod pm2;
mod supervisord;
mod units;

pub use pm2::convert as convert_pm2;
pub use supervisord::convert as convert_supervisord;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use crate::model::{Octopus, Supervise, is_valid_service_name, parse_model};

/// What a converter needs to know about the place the models will run in.
#[derive(Debug, Clone)]
pub struct ImportContext {
    /// The file's name, for descriptions and messages.
    pub source_name: String,
    /// The directory of the source file: supervisord's `%(here)s`, PM2's base for a
    /// relative `cwd`.
    pub source_dir: PathBuf,
    /// The host's `app_root`: a service's directory is `<app_root>/<name>`, and its
    /// `run_data.cwd` must stay inside it.
    pub app_root: PathBuf,
    /// What `instances: "max"` (PM2) means here.
    pub cpus: u32,
    /// The importing process's environment, for supervisord's `%(ENV_X)s`.
    pub env: HashMap<String, String>,
    /// supervisord's `%(host_node_name)s`.
    pub host_name: String,
}

/// One key that did not map (or mapped with a difference), by program and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The program (supervisord) or app (PM2) name; for a whole section, its header.
    pub program: String,
    pub key: String,
    pub message: String,
}

/// One generated model: its name, the file text (validated by the host's own parser)
/// and the parsed model.
#[derive(Debug, Clone)]
pub struct ImportedService {
    pub name: String,
    pub text: String,
    pub model: Octopus,
}

/// The result of converting one source file.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    pub services: Vec<ImportedService>,
    /// Keys not carried over, with the reason.
    pub unmapped: Vec<Finding>,
    /// Keys carried over with a difference worth knowing.
    pub notes: Vec<Finding>,
}

/// A source file that cannot be converted: syntax, or a value that makes no sense for
/// its key (supervisord or PM2 would refuse it too). Nothing is written then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}{message}", location(*line, *column), scope(program.as_deref()), key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ImportError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The program or app the problem is in.
    pub program: Option<String>,
    pub key: Option<String>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}: "),
        (Some(l), None) => format!("{l}: "),
        _ => String::new(),
    }
}

fn scope(program: Option<&str>) -> String {
    program.map(|p| format!("[{p}] ")).unwrap_or_default()
}

impl ImportError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self { line: None, column: None, program: None, key: None, message: message.into() }
    }

    pub(crate) fn at(program: &str, key: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self { line, column: None, program: Some(program.into()), key: Some(key.into()), message: message.into() }
    }
}

/// Everything a converter decided for one service, before it becomes a model.
#[derive(Debug, Clone)]
pub(crate) struct ServiceDraft {
    pub name: String,
    pub description: String,
    pub command: Vec<String>,
    pub cwd: String,
    pub envs: Vec<String>,
    pub supervise: Supervise,
}

/// Makes a source name a valid service name (it becomes a directory and a URL
/// segment): characters outside `[A-Za-z0-9._-]` become `-`. Returns the name and
/// whether it changed.
pub(crate) fn service_name(source: &str) -> (String, bool) {
    let cleaned: String = source
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    let changed = cleaned != source;
    (cleaned, changed)
}

/// Turns a draft into model text and checks it with the host's own parser, so a file
/// this command writes always loads.
pub(crate) fn finish(draft: ServiceDraft) -> Result<ImportedService, ImportError> {
    if !is_valid_service_name(&draft.name) {
        return Err(ImportError {
            program: Some(draft.name.clone()),
            ..ImportError::new(format!(
                "{:?} cannot be a service name: use letters, digits, '-', '_', '.' (max 64)",
                draft.name
            ))
        });
    }
    let value = json!({
        "name": draft.name,
        "id": format!("app_{}", draft.name),
        "type": "Service",
        "release_status": "published",
        "eng_des": draft.description,
        "run_data": {
            "command": draft.command,
            "cwd": draft.cwd,
            "envs": draft.envs,
            "ports": [],
            "random_port": false,
            "host": "127.0.0.1",
            "run_dep": [],
            "stop_chain": [],
        },
        "supervise": draft.supervise,
    });
    let text = serde_json::to_string_pretty(&value).map_err(|e| ImportError::new(format!("internal: {e}")))? + "\n";
    // Without an environment: a `$VAR` the draft carries is checked for shape here and
    // resolved by the host when it loads the file.
    let model = parse_model(&text, &|name| Some(format!("${name}"))).map_err(|e| ImportError {
        program: Some(draft.name.clone()),
        ..ImportError::new(format!("the generated model would not load: {e}"))
    })?;
    Ok(ImportedService { name: draft.name, text, model })
}

/// Two programs that end up with one service name cannot both be imported.
pub(crate) fn check_unique(services: &[ImportedService]) -> Result<(), ImportError> {
    let mut seen = std::collections::HashSet::new();
    for s in services {
        if !seen.insert(s.name.as_str()) {
            return Err(ImportError {
                program: Some(s.name.clone()),
                ..ImportError::new("two programs map to this service name; rename one of them")
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid_and_say_so() {
        assert_eq!(service_name("web"), ("web".into(), false));
        assert_eq!(service_name("my app:1"), ("my-app-1".into(), true));
        assert_eq!(service_name(".hidden"), ("hidden".into(), true));
    }

    #[test]
    fn errors_name_line_program_and_key() {
        let e = ImportError::at("web", "stopsignal", Some(12), "\"FOO\" is not a signal");
        assert_eq!(e.to_string(), "12: [web] stopsignal: \"FOO\" is not a signal");
    }
}
