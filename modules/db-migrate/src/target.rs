//! Naming a store: `"active"` (the host's own), `{"sqlite": "name.db"}` (a file under
//! the host's `<data_dir>/stores/`) or `{"mongo": {"url", "name", "user", "pass_wd"}}`.
//! The host resolves and confines targets; this file only checks their shape and gives
//! each a description without credentials, for progress, checkpoints and logs.

use plugin_api::store_admin::StoreTarget;
use serde::Deserialize;
use serde_json::Value;

/// A target as the request gave it (passed on to the host as is) and its description.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub spec: StoreTarget,
    pub description: String,
}

impl Target {
    pub fn active() -> Self {
        Target { spec: StoreTarget::Active, description: "active".into() }
    }

    /// Checks the shape; `None` means the host's own store.
    pub fn parse(spec: Option<&Value>) -> Result<Target, String> {
        let Some(spec) = spec else { return Ok(Target::active()) };
        let needs_url = || "a mongo target needs \"url\"".to_string();
        let typed = StoreTarget::deserialize(spec).map_err(|_| {
            let url = spec.get("mongo").filter(|m| m.is_object()).map(|m| m.get("url").and_then(Value::as_str));
            // A mongo target whose url is missing (or not text) says so; any other bad shape lists the shapes.
            if matches!(url, Some(None) | Some(Some(""))) { needs_url() } else { shape_error() }
        })?;
        let description = match &typed {
            StoreTarget::Active => "active".to_string(),
            StoreTarget::Sqlite(name) => format!("sqlite:{name}"),
            StoreTarget::Mongo(mongo) => {
                if mongo.url.is_empty() {
                    return Err(needs_url());
                }
                // Credentials may sit in the url: keep only what follows `@`.
                let bare = mongo.url.rsplit_once('@').map(|(_, r)| r).unwrap_or(&mongo.url);
                let bare = bare.trim_start_matches("mongodb://");
                let name = if mongo.name.is_empty() { "apollo" } else { &mongo.name };
                format!("mongo:{bare}/{name}")
            }
        };
        Ok(Target { spec: typed, description })
    }
}

fn shape_error() -> String {
    "a target is \"active\", {\"sqlite\": \"name.db\"} or {\"mongo\": {\"url\": \"mongodb://host:port\", \"name\": \"db\"}}"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn descriptions_never_hold_credentials() {
        let t = Target::parse(Some(&json!({"mongo": {"url": "mongodb://u:secret@h:1", "pass_wd": "x"}}))).unwrap();
        assert_eq!(t.description, "mongo:h:1/apollo");
        assert!(!format!("{t:?}").contains("secret"), "{t:?}");
        assert_eq!(Target::parse(Some(&json!({"sqlite": "a.db"}))).unwrap().description, "sqlite:a.db");
        assert_eq!(Target::parse(None).unwrap(), Target::active());
        assert_eq!(Target::parse(Some(&json!({"ftp": "x"}))).unwrap_err(), shape_error());
        assert_eq!(Target::parse(Some(&json!({"mongo": {}}))).unwrap_err(), "a mongo target needs \"url\"");
        assert_eq!(Target::parse(Some(&json!({"mongo": {"url": ""}}))).unwrap_err(), "a mongo target needs \"url\"");
    }
}
