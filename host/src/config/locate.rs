//! `line:column` of a dotted key inside JSON text, for messages about values that are
//! judged after parsing: `locate_key` (best effort, the key's opening quote) for checks
//! and warnings, `locate_value` (exact) for type errors found in an already parsed tree.

/// Finds `"seg"` for each segment of `key` in order (`server.port` looks for
/// `"server"` then `"port"` after it). Array indices like `ports[2]` match the key name.
/// Returns 1-based `(line, column)` of the last segment's opening quote.
pub fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    let mut hit = None;
    for segment in key.split('.') {
        let name = segment.split('[').next().unwrap_or(segment);
        if name.is_empty() {
            continue;
        }
        let needle = format!("\"{name}\"");
        let at = from + text[from..].find(&needle)?;
        hit = Some(at);
        from = at + needle.len();
    }
    let at = hit?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    Some((line, column))
}

/// Exact `line:column` of the value at `key` (a dotted path as serde_path_to_error or
/// serde_ignored print it: `alarms.webhooks[1].url`, `alarms.webhooks.1.url`): the
/// position serde_json itself reports for a type error there (the end of a scalar; for an
/// object or array, just before its first member). `None` when the text does not hold
/// the path. It re-reads the text with serde_json and stops at the value by failing
/// there, so it agrees with serde_json's own positions by construction.
pub fn locate_value(text: &str, key: &str) -> Option<(usize, usize)> {
    let segments = split_path(key);
    let mut de = serde_json::Deserializer::from_str(text);
    match serde::de::DeserializeSeed::deserialize(Walk(&segments), &mut de) {
        // Walk fails only with a data error, at the target; syntax errors mean the path
        // could not be reached.
        Err(e) if e.classify() == serde_json::error::Category::Data => Some((e.line(), e.column())),
        _ => None,
    }
}

/// `a.b[1].c` and `a.b.1.c` → `["a", "b", "1", "c"]`; an index is told from a key by the
/// JSON it meets (an array or an object).
fn split_path(key: &str) -> Vec<&str> {
    if key == "." || key.is_empty() {
        return Vec::new();
    }
    key.split('.').flat_map(|part| part.split(['[', ']'])).filter(|s| !s.is_empty()).collect()
}

/// Descends to the value at its path; there, any value is refused, which makes
/// serde_json stamp the error with the value's position.
struct Walk<'p>(&'p [&'p str]);

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the located value")
    }

    // A scalar is the target when the path ends here; before the end it means the
    // path does not exist in this text.
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((head, rest)) = self.0.split_first() else { return Err(found()) };
        while let Some(name) = map.next_key::<String>()? {
            if name == *head {
                map.next_value_seed(Walk(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((head, rest)) = self.0.split_first() else { return Err(found()) };
        let target = head.parse::<usize>().ok();
        let mut index = 0;
        loop {
            let more = if Some(index) == target {
                seq.next_element_seed(Walk(rest))?
            } else {
                seq.next_element::<serde::de::IgnoredAny>()?.map(drop)
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

impl Walk<'_> {
    fn scalar<E: serde::de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() { Err(found()) } else { Ok(()) }
    }
}

/// The marker error: a data error, so serde_json gives it the current position.
fn found<E: serde::de::Error>() -> E {
    E::custom("found")
}

#[cfg(test)]
mod tests {
    use super::{locate_key, locate_value};

    #[test]
    fn finds_nested_key() {
        let text = "{\n  \"port\": 1,\n  \"server\": {\n    \"port\": 2\n  }\n}";
        assert_eq!(locate_key(text, "server.port"), Some((4, 5)));
        assert_eq!(locate_key(text, "missing"), None);
    }

    #[test]
    fn locates_values_where_serde_json_would() {
        let text = "{\n  \"port\": 1,\n  \"server\": {\n    \"port\": 70000,\n    \"list\": [1, {\"a\": true}]\n  }\n}";
        assert_eq!(locate_value(text, "server.port"), Some((4, 17)));
        let streamed = serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(text);
        assert!(streamed.is_ok(), "the text is valid JSON");
        assert_eq!(locate_value(text, "server.list[1].a"), Some((5, 26)));
        assert_eq!(locate_value(text, "server.list.1.a"), Some((5, 26)), "serde_ignored's spelling");
        assert_eq!(locate_value(text, "server"), Some((4, 4)), "an object: where its first member starts");
        assert_eq!(locate_value(text, "server.port.deeper"), None);
        assert_eq!(locate_value(text, "server.list[7]"), None);
        assert_eq!(locate_value(text, "nothing"), None);
    }
}
