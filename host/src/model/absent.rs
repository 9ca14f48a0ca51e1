//! `null` in a model file means "absent": the seed's Go encoder writes `null` for every
//! unset list, map and pointer (`"language": null`, `"envs": null`, `"runtime":
//! {"ports": null}`), so a null field takes its default, like a missing one.
//!
//! Mechanism: nulls are removed from the parsed tree before the typed pass, so every
//! section's own `Default` applies and no field needs an attribute. Only *known* fields
//! are cleaned, judged against the model's own shape ([`known_fields`], the serialised
//! default model): keys this version does not know go to the `extra` maps verbatim,
//! `null` included, so a seed file still round-trips unchanged. Array elements are not
//! removed (a list item cannot be absent; a null item is reported by its index), but
//! known objects inside lists (`container.mounts[i]`) are cleaned like any other.
//! It does not touch `""`: in a model an empty string is a value (`"pid": ""`).

use std::sync::LazyLock;

use serde_json::Value;

use super::{ContainerMount, ContainerSection, Octopus};

/// Removes `null` members of known fields, at any depth.
pub fn drop_null_fields(tree: &mut Value) {
    drop_under(tree, known_fields());
}

/// Every field the model knows, as a JSON tree: the default model serialised, with a
/// container section holding one mount, so the fields of lists of objects are known too.
pub fn known_fields() -> &'static Value {
    static KNOWN: LazyLock<Value> = LazyLock::new(|| {
        let sample = Octopus {
            container: Some(ContainerSection { mounts: vec![ContainerMount::default()], ..Default::default() }),
            ..Default::default()
        };
        serde_json::to_value(sample).expect("the model serialises")
    });
    &KNOWN
}

fn drop_under(value: &mut Value, known: &Value) {
    match (value, known) {
        (Value::Object(members), Value::Object(known_members)) => {
            members.retain(|key, v| !(v.is_null() && known_members.contains_key(key)));
            for (key, child) in members.iter_mut() {
                if let Some(known_child) = known_members.get(key) {
                    drop_under(child, known_child);
                }
            }
        }
        (Value::Array(items), Value::Array(known_items)) => {
            if let Some(known_item) = known_items.first() {
                items.iter_mut().for_each(|item| drop_under(item, known_item));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_nulls_go_unknown_ones_stay() {
        let mut tree = json!({
            "name": null, "future_key": null,
            "meta": {"language": null, "team": null},
            "container": {"mounts": [{"read_only": null, "source": "d"}], "cmd": [null]},
        });
        drop_null_fields(&mut tree);
        assert_eq!(
            tree,
            json!({
                "future_key": null,
                "meta": {"team": null},
                "container": {"mounts": [{"source": "d"}], "cmd": [null]},
            })
        );
    }
}
