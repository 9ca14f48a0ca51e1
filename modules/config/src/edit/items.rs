//! Working items: edited freely, served only once released. A non-properties
//! namespace holds one item, `content`, whose text must parse as its format.

use plugin_api::ModuleError;

use super::existing_namespace;
use crate::model::{self, Item, ItemSet, Stamp};
use crate::names::Format;
use crate::replica::{Plan, now_ms};
use crate::state::State;

/// The key of the one item a non-properties namespace holds.
pub const CONTENT_KEY: &str = "content";
/// Ctrip's limit on item keys.
const MAX_KEY_CHARS: usize = 128;
/// Ctrip's limit on comments.
const MAX_COMMENT_CHARS: usize = 256;

/// How an upsert treats the key's existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// `POST items`: the key must be new.
    MustBeNew,
    /// `PUT items/{key}`: the key must exist.
    MustExist,
    /// `PUT items/{key}?createIfNotExists=true`.
    Either,
}

#[derive(Debug, Clone)]
pub struct ItemEdit<'a> {
    pub app: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub key: &'a str,
    pub value: &'a str,
    pub comment: &'a str,
    pub existence: Existence,
    pub max_value_chars: usize,
}

/// Why `content` does not parse as `format`, as `line L column C: reason`.
pub fn check_content(format: Format, content: &str) -> Result<(), String> {
    match format {
        Format::Json => serde_json::from_str::<serde_json::Value>(content)
            .map(|_| ())
            .map_err(|e| format!("not valid JSON at line {} column {}: {e}", e.line(), e.column())),
        Format::Yaml | Format::Yml => yaml_rust2::YamlLoader::load_from_str(content).map(|_| ()).map_err(|e| {
            let at = e.marker();
            format!("not valid YAML at line {} column {}: {}", at.line(), at.col() + 1, e.info())
        }),
        Format::Xml => roxmltree::Document::parse(content).map(|_| ()).map_err(|e| {
            let at = e.pos();
            format!("not valid XML at line {} column {}: {e}", at.row, at.col)
        }),
        // Properties are checked key by key; text is anything.
        Format::Properties | Format::Txt => Ok(()),
    }
}

pub fn upsert(state: &State, actor: &str, edit: &ItemEdit<'_>) -> Result<Plan<Item>, ModuleError> {
    let (ns, app_namespace) = existing_namespace(state, edit.app, edit.cluster, edit.namespace)?;
    if edit.key.is_empty() || edit.key.chars().count() > MAX_KEY_CHARS {
        return Err(ModuleError::bad_request(format!("item key must be 1 to {MAX_KEY_CHARS} characters")));
    }
    if edit.value.chars().count() > edit.max_value_chars {
        return Err(ModuleError::bad_request(format!(
            "value of {:?} is longer than {} characters (modules.config.config.item_value_max_chars)",
            edit.key, edit.max_value_chars
        )));
    }
    if edit.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ModuleError::bad_request(format!("comment is longer than {MAX_COMMENT_CHARS} characters")));
    }
    if app_namespace.format != Format::Properties {
        if edit.key != CONTENT_KEY {
            return Err(ModuleError::bad_request(format!(
                "namespace {} is {}: it holds one item, {CONTENT_KEY:?}, the whole file",
                ns.namespace,
                app_namespace.format.as_str()
            )));
        }
        check_content(app_namespace.format, edit.value)
            .map_err(|e| ModuleError::bad_request(format!("content of {}: {e}", ns.namespace)))?;
    }
    let mut items = state.items.get(&ns).cloned().unwrap_or_default();
    let now = now_ms();
    let item = match (items.items.iter_mut().find(|i| i.key == edit.key), edit.existence) {
        (Some(_), Existence::MustBeNew) => {
            return Err(ModuleError::bad_request(format!("item already exists: {}", edit.key)));
        }
        (None, Existence::MustExist) => return Err(ModuleError::not_found(format!("item not found: {}", edit.key))),
        (Some(existing), _) => {
            existing.value = edit.value.to_string();
            existing.comment = edit.comment.to_string();
            existing.stamp = existing.stamp.touched(actor, now);
            existing.clone()
        }
        (None, _) => {
            let item = Item {
                key: edit.key.to_string(),
                value: edit.value.to_string(),
                comment: edit.comment.to_string(),
                stamp: Stamp::new(actor, now),
            };
            items.items.push(item.clone());
            item
        }
    };
    let writes = vec![state.put(model::items_key(&ns), &items)];
    Ok(Plan::new(writes, item).audited(actor, "set-item", format!("{ns}/{}", edit.key), ""))
}

pub fn delete(
    state: &State,
    actor: &str,
    app: &str,
    cluster: &str,
    namespace: &str,
    key: &str,
) -> Result<Plan<()>, ModuleError> {
    let (ns, _) = existing_namespace(state, app, cluster, namespace)?;
    let mut items: ItemSet = state.items.get(&ns).cloned().unwrap_or_default();
    let before = items.items.len();
    items.items.retain(|i| i.key != key);
    if items.items.len() == before {
        return Err(ModuleError::not_found(format!("item not found: {key}")));
    }
    let writes = vec![state.put(model::items_key(&ns), &items)];
    Ok(Plan::new(writes, ()).audited(actor, "delete-item", format!("{ns}/{key}"), ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_errors_name_line_and_column() {
        assert!(check_content(Format::Json, "{\"a\": [1, 2]}").is_ok());
        let error = check_content(Format::Json, "{\n  \"a\": 1,\n  oops\n}").unwrap_err();
        assert!(error.contains("line 3 column 3"), "{error}");
        assert!(check_content(Format::Yaml, "a:\n  - 1\n  - 2\n").is_ok());
        let error = check_content(Format::Yml, "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.starts_with("not valid YAML at line"), "{error}");
        assert!(check_content(Format::Xml, "<a><b/></a>").is_ok());
        let error = check_content(Format::Xml, "<a>\n<b></a>").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
    }
}
