//! `"$VAR"` substitution in model files: a string value that is exactly `$NAME`,
//! `${NAME}` or `${NAME:-default}` is replaced from the environment, and so is the value
//! part of a `run_data.envs` or `container.env` entry (`DB_URL=$DB_URL`). Partial interpolation inside
//! longer strings is deliberately not done: `$` is common in commands and passwords.

use serde_json::Value;

/// Environment variables with this prefix configure the host and are never substituted.
pub const RESERVED_PREFIX: &str = "APOLLO_";

/// Replaces references in place. An unset variable without a default is an error
/// `(key path, message)`, so a missing secret never silently becomes "".
pub fn substitute(value: &mut Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), (String, String)> {
    walk(value, String::new(), lookup)
}

fn walk(value: &mut Value, path: String, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), (String, String)> {
    match value {
        Value::String(s) => {
            let is_env_entry = path.starts_with("run_data.envs[") || path.starts_with("container.env[");
            if is_env_entry {
                if let Some((name, rest)) = s.split_once('=')
                    && let Some(v) = resolve(rest, lookup).map_err(|m| (path.clone(), m))?
                {
                    *s = format!("{name}={v}");
                }
            } else if let Some(v) = resolve(s, lookup).map_err(|m| (path.clone(), m))? {
                *s = v;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), lookup)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(v, child, lookup)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `Ok(None)`: not a reference, leave as is.
fn resolve(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    let Some(reference) = s.strip_prefix('$') else { return Ok(None) };
    let (name, default) = if let Some(inner) = reference.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        }
    } else {
        (reference, None)
    };
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return Ok(None);
    }
    // The host's own settings (the admin password among them) are not for models: a
    // model's values are shown by the API and kept in the store.
    if name.starts_with(RESERVED_PREFIX) {
        return Err(format!("{name}: {RESERVED_PREFIX}* variables belong to the host and cannot be used in models"));
    }
    match (lookup(name), default) {
        (Some(v), _) => Ok(Some(v)),
        (None, Some(d)) => Ok(Some(d.to_string())),
        (None, None) => Err(format!(
            "environment variable {name} is not set (export it before starting the host, or write ${{{name}:-default}})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/x".to_string())
    }

    #[test]
    fn substitutes_whole_values_and_env_entries() {
        let mut v = json!({"link": "$HOME_DIR", "meta": {"author": "${NOPE:-anon}"},
                           "run_data": {"envs": ["A=${HOME_DIR}", "B=plain$"]}, "eng_des": "costs $5"});
        substitute(&mut v, &env).unwrap();
        assert_eq!(v["link"], "/home/x");
        assert_eq!(v["meta"]["author"], "anon");
        assert_eq!(v["run_data"]["envs"][0], "A=/home/x");
        assert_eq!(v["run_data"]["envs"][1], "B=plain$");
        assert_eq!(v["eng_des"], "costs $5");
    }

    #[test]
    fn host_variables_are_not_for_models() {
        let mut v = json!({"link": "$APOLLO_ADMIN_PASSWORD"});
        let (key, msg) = substitute(&mut v, &|_| Some("secret".into())).unwrap_err();
        assert_eq!(key, "link");
        assert!(msg.contains("belong to the host") && !msg.contains("secret"));
    }

    #[test]
    fn unset_variable_is_an_error_naming_the_key() {
        let mut v = json!({"run_data": {"envs": ["X=$MISSING"]}});
        let (key, msg) = substitute(&mut v, &env).unwrap_err();
        assert_eq!(key, "run_data.envs[0]");
        assert!(msg.contains("MISSING"));
    }
}
