//! Naming a store: `"active"` (the host's own), `{"sqlite": "name.db"}` (a file under
//! the host's `<data_dir>/stores/`) or `{"mongo": {"url", "name", "user", "pass_wd"}}`.
//! The host resolves and confines targets; this file only checks their shape and gives
//! each a description without credentials, for progress, checkpoints and logs.

use serde_json::{Value, json};

/// A target as the request gave it (passed on to the host as is) and its description.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub spec: Value,
    pub description: String,
}

impl Target {
    pub fn active() -> Self {
        Target { spec: json!("active"), description: "active".into() }
    }

    /// Checks the shape; `None` means the host's own store.
    pub fn parse(spec: Option<&Value>) -> Result<Target, String> {
        let Some(spec) = spec else { return Ok(Target::active()) };
        let description = match spec {
            Value::String(s) if s == "active" => "active".to_string(),
            Value::Object(map) if map.len() == 1 => match (map.get("sqlite"), map.get("mongo")) {
                (Some(Value::String(name)), _) => format!("sqlite:{name}"),
                (_, Some(Value::Object(mongo))) => {
                    let url = mongo.get("url").and_then(Value::as_str).unwrap_or_default();
                    if url.is_empty() {
                        return Err("a mongo target needs \"url\"".into());
                    }
                    // Credentials may sit in the url: keep only what follows `@`.
                    let bare = url.rsplit_once('@').map(|(_, r)| r).unwrap_or(url);
                    let bare = bare.trim_start_matches("mongodb://");
                    let name = mongo.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or("apollo");
                    format!("mongo:{bare}/{name}")
                }
                _ => return Err(shape_error()),
            },
            _ => return Err(shape_error()),
        };
        Ok(Target { spec: spec.clone(), description })
    }
}

fn shape_error() -> String {
    "a target is \"active\", {\"sqlite\": \"name.db\"} or {\"mongo\": {\"url\": \"mongodb://host:port\", \"name\": \"db\"}}"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_hold_credentials() {
        let t = Target::parse(Some(&json!({"mongo": {"url": "mongodb://u:secret@h:1", "pass_wd": "x"}}))).unwrap();
        assert_eq!(t.description, "mongo:h:1/apollo");
        assert_eq!(Target::parse(Some(&json!({"sqlite": "a.db"}))).unwrap().description, "sqlite:a.db");
        assert_eq!(Target::parse(None).unwrap(), Target::active());
        assert!(Target::parse(Some(&json!({"ftp": "x"}))).is_err());
        assert!(Target::parse(Some(&json!({"mongo": {}}))).is_err());
    }
}
