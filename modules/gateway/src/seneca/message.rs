//! From an HTTP request on `/act` to the Seneca message a real listener would act
//! (contract §2.4): the JSON body spread into an object, then the query-string pairs
//! on top, as strings. And the other direction's rule: what a seneca client puts on
//! the wire for a message (`clean` + `custom$`).

use serde_json::{Map, Value};

use super::error::ActError;
use super::js;

/// The message seneca-transport's listener acts for this request: `Object.assign({},
/// body, query)`. An empty body is `{}`; a body that is not JSON is `invalid_json`.
/// Non-object JSON spreads as JavaScript spreads it (an array's items and a string's
/// characters under their indexes, scalars to nothing). The deprecated `args$`/`msg$`
/// query parameters are kept as plain strings, not jsonic-parsed.
pub fn message_from_request(query: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, ActError> {
    // node reads the body as UTF-8 text (invalid bytes become U+FFFD) before parsing.
    let text = String::from_utf8_lossy(body);
    let mut message = if text.is_empty() {
        Map::new()
    } else {
        let parsed: Value = serde_json::from_str(&text).map_err(|_| ActError::invalid_json(&text))?;
        spread(parsed)
    };
    if let Some(query) = query {
        message.extend(parse_query(query));
    }
    Ok(message)
}

/// `Object.assign({}, value)`.
fn spread(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        Value::Array(items) => items.into_iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        Value::String(s) => s.chars().enumerate().map(|(i, c)| (i.to_string(), Value::String(c.to_string()))).collect(),
        Value::Null | Value::Bool(_) | Value::Number(_) => Map::new(),
    }
}

/// qs's `arrayLimit`: a repeated key's values beyond this many become an object.
const QS_ARRAY_LIMIT: usize = 20;

/// A query string as `qs.parse` (6.x) reads it with its defaults, for flat keys: `+` is
/// a space, `%XX` decoded (left as written when not valid UTF-8), a key without `=` has
/// the value `""`, a repeated key collects its values in an array (in an object keyed
/// by index past 20 values), and keys named like `Object.prototype` members are
/// dropped. Bracket keys (`a[b]=1`, `a[]=1`) stay literal keys where qs would nest them.
pub fn parse_query(query: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for part in query.split('&').take(1000) {
        if part.is_empty() {
            continue;
        }
        // qs splits at `]=` first so that `a[=]=1`-style keys keep their `=`.
        let at = part.find("]=").map(|i| i + 1).or_else(|| part.find('='));
        let (key, value) = match at {
            Some(at) => (decode(&part[..at]), decode(&part[at + 1..])),
            None => (decode(part), String::new()),
        };
        if key.is_empty() || js::OBJECT_PROTOTYPE_NAMES.contains(&key.as_str()) {
            continue;
        }
        match out.get_mut(&key) {
            Some(Value::Array(items)) if items.len() < QS_ARRAY_LIMIT => items.push(Value::String(value)),
            // Past qs's `arrayLimit` the values go on in an object keyed by index.
            Some(Value::Array(items)) => {
                let mut indexed: Map<String, Value> =
                    items.drain(..).enumerate().map(|(i, v)| (i.to_string(), v)).collect();
                indexed.insert(QS_ARRAY_LIMIT.to_string(), Value::String(value));
                out.insert(key, Value::Object(indexed));
            }
            Some(Value::Object(indexed)) => {
                indexed.insert(indexed.len().to_string(), Value::String(value));
            }
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None => {
                out.insert(key, Value::String(value));
            }
        }
    }
    out
}

/// `decodeURIComponent` after `+` → space; on a malformed escape, the text as it was.
fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    let bytes = spaced.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = spaced.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return spaced,
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or(spaced)
}

/// What a seneca client sends for a message (contract §2.2): every top-level key ending
/// in `$` removed (nested objects untouched), then `custom$` (`{}` unless given).
pub fn wire_body(message: &Map<String, Value>) -> Map<String, Value> {
    let custom = message.get("custom$").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut body = clean(message);
    body.insert("custom$".to_string(), custom);
    body
}

/// `seneca.util.clean`: the message without its top-level `…$` keys. Keys that start
/// with `$` (seed 004's `$$target`) stay.
pub fn clean(message: &Map<String, Value>) -> Map<String, Value> {
    message.iter().filter(|(k, _)| !k.ends_with('$')).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msg(query: Option<&str>, body: &str) -> Value {
        Value::Object(message_from_request(query, body.as_bytes()).unwrap())
    }

    #[test]
    fn body_then_query_strings_on_top() {
        assert_eq!(
            msg(Some("left=1&right=2&role=other"), r#"{"role":"math","cmd":"sum","left":10,"nested":{"a":1}}"#),
            json!({"role": "other", "cmd": "sum", "left": "1", "right": "2", "nested": {"a": 1}})
        );
        assert_eq!(
            msg(Some("role=math&cmd=sum&left=1&right=2"), ""),
            json!({"role": "math", "cmd": "sum", "left": "1", "right": "2"})
        );
        assert_eq!(msg(None, ""), json!({}));
    }

    #[test]
    fn invalid_json_is_an_act_error() {
        let err = message_from_request(None, b"{bad").unwrap_err();
        assert_eq!(err.code, "invalid_json");
        assert_eq!(err.message, "seneca: Invalid JSON: {bad.");
        assert_eq!(Value::Object(err.details), json!({"input": "{bad"}));
        assert_eq!(message_from_request(None, b"  ").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn non_object_bodies_spread_as_javascript_does() {
        assert_eq!(msg(None, "[1,\"x\"]"), json!({"0": 1, "1": "x"}));
        assert_eq!(msg(None, "\"ab\""), json!({"0": "a", "1": "b"}));
        assert_eq!(msg(None, "7"), json!({}));
        assert_eq!(msg(None, "null"), json!({}));
    }

    #[test]
    fn query_strings_as_qs_reads_them() {
        let q = |s: &str| Value::Object(parse_query(s));
        assert_eq!(q("a=1&a=2&a=3&b"), json!({"a": ["1", "2", "3"], "b": ""}));
        assert_eq!(q("x=a+b%20c&y=%E2%9C%93&z=100%&&=v"), json!({"x": "a b c", "y": "✓", "z": "100%"}));
        assert_eq!(q("toString=1&constructor=2&ok=3"), json!({"ok": "3"}));
        assert_eq!(q("a%5Bb%5D=1&c=x=y"), json!({"a[b]": "1", "c": "x=y"}));
        let many = |n: usize| (0..n).map(|i| format!("a={i}")).collect::<Vec<_>>().join("&");
        assert_eq!(q(&many(20))["a"].as_array().map(Vec::len), Some(20));
        let indexed: Map<String, Value> = (0..22).map(|i| (i.to_string(), json!(i.to_string()))).collect();
        assert_eq!(q(&many(22))["a"], Value::Object(indexed));
    }

    #[test]
    fn wire_body_drops_dollar_suffixed_keys_and_adds_custom() {
        let m = json!({"role": "math", "cmd": "sum", "left": 1, "right": 2, "extra$": "x", "meta$": {}, "nested": {"a$": 1}, "$$target": "users"});
        assert_eq!(
            Value::Object(wire_body(m.as_object().unwrap())),
            json!({"role": "math", "cmd": "sum", "left": 1, "right": 2, "nested": {"a$": 1}, "$$target": "users", "custom$": {}})
        );
    }
}
