//! Seneca patterns and the pins services declare: a `Pattern` is a set of key→value
//! pairs compared as patrun compares them (every value as its JavaScript string), and
//! `parse_pins` reads what an instance puts in its catalog meta under `seneca_pin`:
//! jsonic-style pins (`role:math,cmd:*`) separated by `;`, or JSON (an object, or an
//! array of objects).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::js;

/// A Seneca pattern: keys in sorted order (patrun's trie order), each value as the
/// string patrun compares. Values containing `*` or `?` are globs.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    fields: BTreeMap<String, String>,
}

impl Pattern {
    /// The empty pattern `{}`: patrun's catch-all.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pattern from key/value pairs as given (a later duplicate key replaces an
    /// earlier one, as in a JavaScript object literal).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { fields: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A pattern from a parsed message or pin, as `patrun.add` reads one: null values
    /// are dropped, scalars become their JavaScript string. Objects and arrays are
    /// refused: patrun would compare `[object Object]`, which no one means.
    pub fn from_fields(fields: &Map<String, Value>) -> Result<Self, String> {
        let mut pattern = Self::new();
        for (key, value) in fields {
            match value {
                Value::Null => {}
                Value::Object(_) | Value::Array(_) => {
                    return Err(format!(
                        "the value of `{key}` is {value}: a pattern value must be a string, number or boolean"
                    ));
                }
                scalar => {
                    pattern.fields.insert(key.clone(), js::js_string(Some(scalar)));
                }
            }
        }
        Ok(pattern)
    }

    /// Key/value pairs in key order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Seneca's own notation, keys sorted: `cmd:sum,role:math`; `{}` for the catch-all.
/// Values that would not read back bare are written as JSON strings.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fields.is_empty() {
            return f.write_str("{}");
        }
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", bare_or_quoted(key), bare_or_quoted(value))?;
        }
        Ok(())
    }
}

fn bare_or_quoted(text: &str) -> String {
    let needs_quotes = text.is_empty()
        || text != text.trim()
        || text.chars().any(|c| matches!(c, ',' | ':' | ';' | '{' | '}' | '[' | ']' | '"' | '\'') || c.is_control());
    if needs_quotes { Value::String(text.to_string()).to_string() } else { text.to_string() }
}

/// Reads a `seneca_pin` meta value: one or more pins. Accepted forms:
/// - jsonic-style pins separated by `;`: `role:math,cmd:*; role:user` (braces optional,
///   values may be quoted with `'` or `"`, bare numbers and booleans read as such);
/// - a JSON object `{"role":"math","cmd":"*"}` or a JSON array of such objects.
///
/// Errors name the pin and the part that is wrong.
pub fn parse_pins(text: &str) -> Result<Vec<Pattern>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("no pin given (write e.g. `role:math,cmd:*`)".to_string());
    }
    if trimmed.starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(trimmed).map_err(|e| format!("pins `{trimmed}` are not a JSON array: {e}"))?;
        if items.is_empty() {
            return Err(format!("pins `{trimmed}`: the array is empty"));
        }
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(fields) => {
                    Pattern::from_fields(fields).map_err(|e| format!("pin #{} in `{trimmed}`: {e}", i + 1))
                }
                other => Err(format!("pin #{} in `{trimmed}` is {other}, not a JSON object", i + 1)),
            })
            .collect();
    }
    // `{...}` is JSON when it parses as JSON, else a jsonic pin in braces.
    if trimmed.starts_with('{')
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(trimmed)
    {
        return Pattern::from_fields(&fields).map(|p| vec![p]).map_err(|e| format!("pin `{trimmed}`: {e}"));
    }
    let pins: Vec<Pattern> = split_outside_quotes(trimmed, ';')
        .into_iter()
        .map(str::trim)
        .filter(|pin| !pin.is_empty())
        .map(|pin| {
            parse_pin_fields(pin)
                .and_then(|fields| Pattern::from_fields(&fields).map_err(|e| format!("pin `{pin}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if pins.is_empty() {
        return Err(format!("no pin in `{trimmed}`"));
    }
    Ok(pins)
}

/// One jsonic-style pin (`role:math,cmd:*`, `{role:'math'}`) as typed fields: bare
/// numbers, `true`, `false` and `null` read as JSON values, everything else as text.
/// seneca-web's route pins are read with this too, so a message keeps jsonic's types.
pub(crate) fn parse_pin_fields(pin: &str) -> Result<Map<String, Value>, String> {
    let mut body = pin.trim();
    if let Some(inner) = body.strip_prefix('{') {
        body = inner.strip_suffix('}').ok_or_else(|| format!("pin `{pin}`: `{{` is not closed by `}}`"))?;
    }
    let mut fields = Map::new();
    for pair in split_outside_quotes(body, ',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) =
            split_once_outside_quotes(pair, ':').ok_or_else(|| format!("pin `{pin}`: `{pair}` is not `key:value`"))?;
        let key = unquote(key.trim()).map_err(|e| format!("pin `{pin}`: key `{}`: {e}", key.trim()))?;
        if key.is_empty() {
            return Err(format!("pin `{pin}`: `{pair}` has an empty key"));
        }
        let raw = value.trim();
        if raw.starts_with('{') || raw.starts_with('[') {
            return Err(format!(
                "pin `{pin}`: the value of `{key}` is nested; pattern values are strings, numbers or booleans"
            ));
        }
        let value = scalar(raw).map_err(|e| format!("pin `{pin}`: value of `{key}`: {e}"))?;
        if fields.insert(key.clone(), value).is_some() {
            return Err(format!("pin `{pin}`: key `{key}` is given twice"));
        }
    }
    Ok(fields)
}

/// A jsonic scalar: quoted text, or a bare token (number, boolean, null or text).
fn scalar(raw: &str) -> Result<Value, String> {
    if raw.starts_with('"') || raw.starts_with('\'') {
        return unquote(raw).map(Value::String);
    }
    if raw.is_empty() {
        return Err("it is empty (write '' for an empty string)".to_string());
    }
    Ok(match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ if is_json_number(raw) => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())),
        _ => Value::String(raw.to_string()),
    })
}

fn is_json_number(raw: &str) -> bool {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    digits.starts_with(|c: char| c.is_ascii_digit()) && serde_json::from_str::<serde_json::Number>(raw).is_ok()
}

/// Text without its quotes: `"…"` with JSON escapes, `'…'` with `\'` and `\\`; bare
/// text as it is.
fn unquote(text: &str) -> Result<String, String> {
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        return serde_json::from_str::<String>(text).map_err(|e| format!("bad double-quoted text: {e}"));
    }
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        let mut out = String::new();
        let mut chars = text[1..text.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.push(chars.next().ok_or("a trailing `\\`")?);
            } else {
                out.push(c);
            }
        }
        return Ok(out);
    }
    if text.starts_with(['"', '\'']) {
        return Err(format!("the quote in {text} is not closed"));
    }
    Ok(text.to_string())
}

/// Splits at `sep` where it is not inside `'…'` or `"…"`.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == sep => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            None => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_once_outside_quotes(text: &str, sep: char) -> Option<(&str, &str)> {
    let parts = split_outside_quotes(text, sep);
    if parts.len() < 2 {
        return None;
    }
    let at = parts[0].len();
    Some((&text[..at], &text[at + sep.len_utf8()..]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Pattern {
        Pattern::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn jsonic_pins_separated_by_semicolons() {
        let pins = parse_pins("role:math,cmd:* ; role:user").unwrap();
        assert_eq!(pins, vec![p(&[("role", "math"), ("cmd", "*")]), p(&[("role", "user")])]);
        assert_eq!(pins[0].to_string(), "cmd:*,role:math");
    }

    #[test]
    fn braces_quotes_numbers_and_booleans() {
        let pins = parse_pins("{role:'a,b', n: 1.0, on:true, gone:null, \"q k\":\"x;y\"};").unwrap();
        assert_eq!(pins, vec![p(&[("role", "a,b"), ("n", "1"), ("on", "true"), ("q k", "x;y")])]);
        assert_eq!(pins[0].to_string(), "n:1,on:true,q k:\"x;y\",role:\"a,b\"");
        // The display form reads back to the same pattern.
        assert_eq!(parse_pins(&pins[0].to_string()).unwrap(), pins);
    }

    #[test]
    fn json_object_and_array_forms() {
        assert_eq!(parse_pins(r#"{"role":"math","v":2}"#).unwrap(), vec![p(&[("role", "math"), ("v", "2")])]);
        assert_eq!(
            parse_pins(r#"[{"$$target":"users"},{"role":"x","flag":false}]"#).unwrap(),
            vec![p(&[("$$target", "users")]), p(&[("flag", "false"), ("role", "x")])]
        );
        assert_eq!(parse_pins("{}").unwrap(), vec![Pattern::new()]);
        assert_eq!(Pattern::new().to_string(), "{}");
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("", "no pin given"),
            (" ; ", "no pin in"),
            ("role:math,cmd", "`cmd` is not `key:value`"),
            ("role:math;role", "pin `role`: `role` is not `key:value`"),
            ("a:1,a:2", "key `a` is given twice"),
            ("a:{b:1}", "the value of `a` is nested"),
            ("a:'open", "the quote in 'open is not closed"),
            ("a:", "value of `a`: it is empty"),
            (":x", "has an empty key"),
            ("{a:1", "`{` is not closed"),
            ("[1]", "pin #1 in `[1]` is 1, not a JSON object"),
            ("[]", "the array is empty"),
            ("[{", "not a JSON array"),
            (r#"{"a":{"b":1}}"#, "a pattern value must be a string, number or boolean"),
        ];
        for (text, want) in cases {
            let err = parse_pins(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn from_fields_stringifies_like_patrun() {
        let fields = json!({"a": 1, "b": "1", "c": true, "d": null, "e": 2.50});
        let pattern = Pattern::from_fields(fields.as_object().unwrap()).unwrap();
        assert_eq!(pattern, p(&[("a", "1"), ("b", "1"), ("c", "true"), ("e", "2.5")]));
    }

    #[test]
    fn typed_fields_keep_jsonic_types() {
        let fields = parse_pin_fields("module:user,if:list,v:2,on:false").unwrap();
        assert_eq!(Value::Object(fields), json!({"module": "user", "if": "list", "v": 2, "on": false}));
    }
}
