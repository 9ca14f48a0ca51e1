//! How the seed's spellings of values read: `""` and `null` mean "the default" for every
//! config key, and a yes/no key takes a JSON boolean or one of the seed's strings
//! (`"yes"`/`"no"`, `"true"`/`"false"`, `"on"`/`"off"`, any case).
//!
//! Empty values are removed from the parsed tree before the typed pass
//! ([`drop_empty_values`]), so each section's own `Default` supplies the value: no
//! field repeats its default here. This module does not judge values beyond that
//! (ranges and formats are `Config::validate`'s).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// What a yes/no key accepts, for messages.
pub const FLAG_SPELLINGS: &str =
    "true/false, \"yes\"/\"no\", \"true\"/\"false\", \"on\"/\"off\" (any case), or \"\" for the default";

/// Config subtrees handed on verbatim (a module's own settings, the unused seed `redis`
/// object): their empty strings and nulls may mean something to whoever reads them.
const VERBATIM: &[&str] = &["modules.config", "db.redis"];

/// Removes every object member whose value is `""` or `null`, outside [`VERBATIM`]
/// subtrees, so the typed pass sees the key as absent and uses the default. Array
/// elements are kept (an element cannot be absent; a bad one is reported by index), but
/// objects inside arrays are cleaned too. A key removed here is not reported as unknown
/// either: with nothing in it, it cannot change what the host does.
pub fn drop_empty_values(tree: &mut Value) {
    drop_empty_under(tree, "");
}

fn drop_empty_under(value: &mut Value, path: &str) {
    match value {
        Value::Object(members) => {
            members.retain(|_, v| !is_empty_value(v));
            for (key, child) in members.iter_mut() {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if !VERBATIM.contains(&child_path.as_str()) {
                    drop_empty_under(child, &child_path);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| drop_empty_under(item, path)),
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

/// `deserialize_with` for every yes/no config key: a JSON boolean or a seed spelling.
/// (`""` never reaches it: [`drop_empty_values`] has turned it into the default.)
pub fn flag<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(de)?;
    let read = match &value {
        Value::Bool(b) => Some(*b),
        Value::String(text) => parse_flag(text),
        _ => None,
    };
    read.ok_or_else(|| serde::de::Error::custom(format_args!("{value} is not a yes/no value: use {FLAG_SPELLINGS}")))
}

/// A seed string spelling of a boolean, any case; `None` for anything else.
pub fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" => Some(true),
        "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_values_go_except_in_verbatim_subtrees() {
        let mut tree = json!({
            "app_root": "", "log": {"enable_log": null, "level": "info"},
            "alarms": {"webhooks": [{"url": "", "retries": 1}], "email": ["", null]},
            "modules": {"config": {"m": {"token": ""}}}, "db": {"redis": {"addr": ""}}
        });
        drop_empty_values(&mut tree);
        assert_eq!(
            tree,
            json!({
                "log": {"level": "info"},
                "alarms": {"webhooks": [{"retries": 1}], "email": ["", null]},
                "modules": {"config": {"m": {"token": ""}}}, "db": {"redis": {"addr": ""}}
            })
        );
    }

    #[test]
    fn every_spelling_reads() {
        for (text, want) in [
            ("yes", true),
            ("YES", true),
            ("on", true),
            ("True", true),
            ("no", false),
            ("Off", false),
            ("FALSE", false),
        ] {
            assert_eq!(parse_flag(text), Some(want), "{text}");
        }
        assert_eq!(parse_flag("maybe"), None);
        assert_eq!(parse_flag("1"), None, "numbers are not a seed spelling");
    }
}
