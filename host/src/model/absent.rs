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

    use crate::model::parse_model;

    /// The seed README's model, verbatim (see tests/fixtures/seed/README.md).
    const SEED_MODEL: &str = include_str!("../../../tests/fixtures/seed/demo.pig");

    fn parse(tree: &Value) -> Result<Octopus, crate::model::ModelError> {
        parse_model(&serde_json::to_string_pretty(tree).unwrap(), &|_| None)
    }

    #[test]
    fn the_seed_model_loads_as_written() {
        let m = parse_model(SEED_MODEL, &|_| None).unwrap();
        assert_eq!((m.name.as_str(), m.id.as_str(), m.kind.as_str()), ("demo", "app_demo", "app"));
        assert!(m.meta.language.is_empty() && m.run_data.envs.is_empty() && m.runtime.ports.is_empty());
        assert_eq!(m.runtime.pid, "");
        assert!(m.extra.is_empty(), "every seed key is known: {:?}", m.extra);
    }

    #[test]
    fn the_seed_type_values_load() {
        let seed: Value = serde_json::from_str(SEED_MODEL).unwrap();
        for kind in ["app", "Service", "Middleware", "NoEngine", "Container"] {
            let mut tree = seed.clone();
            tree["type"] = json!(kind);
            if kind == "Container" {
                tree["container"] = json!({"image": "busybox:1", "cmd": ["sleep", "1"]});
            }
            assert_eq!(parse(&tree).unwrap().kind, kind);
        }
    }

    #[test]
    fn an_unknown_null_key_is_kept_verbatim() {
        let mut tree: Value = serde_json::from_str(SEED_MODEL).unwrap();
        tree["future_key"] = Value::Null;
        tree["meta"]["team"] = Value::Null;
        let m = parse(&tree).unwrap();
        assert_eq!(m.extra.get("future_key"), Some(&Value::Null));
        assert_eq!(m.meta.extra.get("team"), Some(&Value::Null));
        assert_eq!(serde_json::to_value(&m).unwrap()["future_key"], Value::Null, "and written back");
    }

    /// A model that sets every known field (the seed model, plus every field of
    /// [`known_fields`] that it lacks, made valid): our sections, lists and a mount.
    fn every_field_model() -> Value {
        let mut tree = known_fields().clone();
        merge(&mut tree, &serde_json::from_str(SEED_MODEL).unwrap());
        merge(
            &mut tree,
            &json!({
                "type": "NoEngine",
                "meta": {"language": ["go"]},
                "run_data": {"envs": ["A=1"], "run_dep": ["db"], "stop_chain": ["web"]},
                "runtime": {"pid": "42", "ports": [8080]},
                "container": {"image": "busybox:1", "cmd": ["sleep", "1"], "env": ["B=2"],
                              "mounts": [{"source": "data", "target": "/data", "read_only": true}]},
                "supervise": {"success_exit_codes": [0, 3], "stop_signal": "SIGINT"},
                "health": {"kind": "script"},
            }),
        );
        tree
    }

    fn merge(base: &mut Value, over: &Value) {
        match (base, over) {
            (Value::Object(b), Value::Object(o)) => {
                for (k, v) in o {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (b, o) => *b = o.clone(),
        }
    }

    /// Steps from the root to a field: `Ok(key)` or `Err(index)`.
    type FieldPath = Vec<Result<String, usize>>;

    /// Every object member, at any depth (inside list elements too), in file order:
    /// each path is the list of steps (`Ok(key)` or `Err(index)`) from the root.
    fn field_paths(value: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        match value {
            Value::Object(members) => {
                for (key, child) in members {
                    prefix.push(Ok(key.clone()));
                    out.push(prefix.clone());
                    field_paths(child, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    prefix.push(Err(i));
                    field_paths(item, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }

    fn dotted(path: &[Result<String, usize>]) -> String {
        let mut s = String::new();
        for step in path {
            match step {
                Ok(key) if s.is_empty() => s.push_str(key),
                Ok(key) => s.push_str(&format!(".{key}")),
                Err(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// The parent object of the member at `path`, and the member's key.
    fn parent_of<'v>(
        tree: &'v mut Value,
        path: &[Result<String, usize>],
    ) -> (&'v mut serde_json::Map<String, Value>, String) {
        let (last, steps) = path.split_last().unwrap();
        let mut at = tree;
        for step in steps {
            at = match step {
                Ok(key) => &mut at[key.as_str()],
                Err(i) => &mut at[*i],
            };
        }
        (at.as_object_mut().unwrap(), last.clone().unwrap())
    }

    /// The property: for every field of a model, `null` reads exactly like leaving the
    /// field out (never a type error); the fields whose absence validation refuses are
    /// the required ones, named.
    fn null_is_absent_for_every_field(model: &Value, required: &[&str]) -> usize {
        assert!(parse(model).is_ok(), "the model itself loads: {:?}", parse(model).err());
        let mut paths = Vec::new();
        field_paths(model, &mut Vec::new(), &mut paths);
        let mut refused = Vec::new();
        for path in &paths {
            let mut nulled = model.clone();
            let (parent, key) = parent_of(&mut nulled, path);
            parent.insert(key, Value::Null);
            let mut removed = model.clone();
            let (parent, key) = parent_of(&mut removed, path);
            parent.remove(&key);
            let name = dotted(path);
            match (parse(&nulled), parse(&removed)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}: null reads like absent"),
                (Err(a), Err(b)) => {
                    assert_eq!((&a.key, &a.message), (&b.key, &b.message), "{name}: null reads like absent");
                    assert!(!a.message.contains("invalid type"), "{name}: {a}");
                    refused.push(name);
                }
                (a, b) => panic!("{name}: null gave {a:?}, absent gave {b:?}"),
            }
        }
        assert_eq!(refused, required, "only required fields are refused when null");
        paths.len()
    }

    #[test]
    fn null_reads_as_absent_for_every_field_of_the_seed_model() {
        let seed: Value = serde_json::from_str(SEED_MODEL).unwrap();
        assert_eq!(null_is_absent_for_every_field(&seed, &["name", "id"]), 44, "every seed field");
    }

    #[test]
    fn null_reads_as_absent_for_every_field_of_a_full_model() {
        let model = every_field_model();
        let mut known = Vec::new();
        field_paths(known_fields(), &mut Vec::new(), &mut known);
        let mut covered = Vec::new();
        field_paths(&model, &mut Vec::new(), &mut covered);
        assert!(known.iter().all(|p| covered.contains(p)), "the model sets every known field");
        let required =
            ["name", "id", "type", "container.image", "container.mounts[0].source", "container.mounts[0].target"];
        assert!(null_is_absent_for_every_field(&model, &required) >= known.len());
    }
}
