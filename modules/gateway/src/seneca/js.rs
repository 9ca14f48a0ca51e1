//! How node renders JSON values, where Seneca's behaviour depends on it: `String(value)`
//! (patrun compares every value as that string) and `util.inspect` with its defaults
//! (the text of seneca's `act_not_found` error).

use serde_json::{Map, Number, Value};

/// Names every plain JavaScript object inherits. patrun looks values up with
/// `node.v[value]`, so a subject value spelled like one of these finds an inherited
/// member instead of nothing (the walk takes that dead end and never tries the globs);
/// qs drops query keys spelled like them.
pub const OBJECT_PROTOTYPE_NAMES: &[&str] = &[
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
];

/// `String(value)` in JavaScript; `None` is a missing key (`undefined`).
pub fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => js_number(n),
        Some(Value::String(s)) => s.clone(),
        // `Array.prototype.join(',')`: null and undefined elements become "".
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| if item.is_null() { String::new() } else { js_string(Some(item)) })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_string(),
    }
}

/// A JSON number as `Number.prototype.toString()` writes it: integers plainly, other
/// values in the shortest form that reads back, with an exponent only below 1e-6 or
/// from 1e21 (`1.5`, `0.000001`, `1e-7`, `1e+21`). `-0` prints as `0`.
pub fn js_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    js_f64(n.as_f64().unwrap_or(0.0))
}

fn js_f64(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as JavaScript's algorithm does;
    // only the layout differs.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // Where the decimal point goes, counted from the first digit.
    let n = exponent + 1;
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{e_sign}{}", e.abs())
        } else {
            format!("{}.{}e{e_sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    };
    format!("{sign}{body}")
}

/// `util.inspect(value)` with node's defaults (depth 2, `breakLength` 80, `compact` 3,
/// `maxArrayLength` 100, `maxStringLength` 10000), for values that came from JSON.
/// Lengths count `char`s where node counts UTF-16 units (they differ past U+FFFF).
pub fn inspect(value: &Value) -> String {
    inspect_at(value, 0, 0)
}

/// Deeper than this, node prints `[Object]` / `[Array]`.
const DEPTH: usize = 2;
const BREAK_LENGTH: usize = 80;
const MAX_ARRAY_LENGTH: usize = 100;
const MAX_STRING_LENGTH: usize = 10_000;
/// Strings longer than this (and than the line) are split after their newlines.
const MIN_LINE_WIDTH: usize = 16;

fn inspect_at(value: &Value, depth: usize, indent: usize) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.as_f64() == Some(0.0) && n.to_string().starts_with('-') {
                "-0".to_string()
            } else {
                js_number(n)
            }
        }
        Value::String(s) => inspect_string(s, indent),
        Value::Array(items) => {
            if items.is_empty() {
                return "[]".to_string();
            }
            if depth > DEPTH {
                return "[Array]".to_string();
            }
            let shown = items.len().min(MAX_ARRAY_LENGTH);
            let mut entries: Vec<String> =
                items[..shown].iter().map(|v| inspect_at(v, depth + 1, indent + 2)).collect();
            let hidden = items.len() - shown;
            let more = (hidden > 0).then(|| format!("... {hidden} more item{}", if hidden > 1 { "s" } else { "" }));
            if items.len() > 6 {
                // node counts the "... more items" slot in a few of its sums.
                let slots = shown + usize::from(hidden > 0);
                let numbers = items[..slots].iter().all(Value::is_number);
                let grouped = group_array_entries(&entries, slots, numbers, indent);
                if let Some(grouped) = grouped {
                    let mut lines = grouped;
                    lines.extend(more);
                    return multi_line(&lines, ('[', ']'), indent);
                }
            }
            entries.extend(more);
            layout(entries, ('[', ']'), indent)
        }
        Value::Object(map) => {
            if map.is_empty() {
                return "{}".to_string();
            }
            if depth > DEPTH {
                return "[Object]".to_string();
            }
            layout(object_entries(map, depth, indent), ('{', '}'), indent)
        }
    }
}

fn object_entries(map: &Map<String, Value>, depth: usize, indent: usize) -> Vec<String> {
    map.iter().map(|(k, v)| format!("{}: {}", key(k), inspect_at(v, depth + 1, indent + 2))).collect()
}

/// node's `reduceToSingleString`: one line when the entries (plus their separators and
/// some slack node reserves) fit in `breakLength`, else one entry per line.
fn layout(entries: Vec<String>, braces: (char, char), indent: usize) -> String {
    let total: usize = entries.iter().map(|e| e.chars().count()).sum::<usize>() + 2 * entries.len() + indent + 1 + 10;
    let joined = entries.join(", ");
    if total <= BREAK_LENGTH && !joined.contains('\n') {
        return format!("{} {joined} {}", braces.0, braces.1);
    }
    multi_line(&entries, braces, indent)
}

fn multi_line(entries: &[String], braces: (char, char), indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!("{}\n{pad}  {}\n{pad}{}", braces.0, entries.join(&format!(",\n{pad}  ")), braces.1)
}

/// node's `groupArrayElements`: more than six short entries are laid out in aligned
/// columns (numbers right-aligned), about as many columns as make a square. `None`
/// where node keeps one entry per slot.
fn group_array_entries(entries: &[String], slots: usize, numbers: bool, indent: usize) -> Option<Vec<String>> {
    const SEPARATOR: usize = 2;
    let lengths: Vec<usize> = entries.iter().map(|e| e.chars().count()).collect();
    let total: usize = lengths.iter().map(|l| l + SEPARATOR).sum();
    let max_length = lengths.iter().copied().max().unwrap_or(0);
    let actual_max = max_length + SEPARATOR;
    if !(actual_max * 3 + indent < BREAK_LENGTH && (total as f64 / actual_max as f64 > 5.0 || max_length <= 6)) {
        return None;
    }
    let average_bias = (actual_max as f64 - total as f64 / slots as f64).sqrt();
    let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
    let columns = ((2.5 * biased_max * entries.len() as f64).sqrt() / biased_max)
        .round()
        .min(((BREAK_LENGTH - indent) / actual_max) as f64)
        .min(12.0) // compact (3) × 4
        .min(15.0) as usize;
    if columns <= 1 {
        return None;
    }
    let column_widths: Vec<usize> =
        (0..columns).map(|c| lengths.iter().skip(c).step_by(columns).copied().max().unwrap_or(0) + SEPARATOR).collect();
    let pad = |text: &str, width: usize| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        if numbers { format!("{fill}{text}") } else { format!("{text}{fill}") }
    };
    let lines = entries
        .chunks(columns)
        .map(|row| {
            let mut line = String::new();
            for (c, entry) in row.iter().enumerate() {
                if c + 1 < row.len() {
                    line.push_str(&pad(&format!("{entry}, "), column_widths[c]));
                } else if numbers {
                    line.push_str(&pad(entry, column_widths[c] - SEPARATOR));
                } else {
                    line.push_str(entry);
                }
            }
            line
        })
        .collect();
    Some(lines)
}

/// A string value: quoted; cut at `maxStringLength`; and when longer than the line,
/// one quoted piece per line joined with ` +`.
fn inspect_string(s: &str, indent: usize) -> String {
    let length = s.chars().count();
    let (s, trailer) = if length > MAX_STRING_LENGTH {
        let cut: String = s.chars().take(MAX_STRING_LENGTH).collect();
        let rest = length - MAX_STRING_LENGTH;
        (cut, format!("... {rest} more character{}", if rest > 1 { "s" } else { "" }))
    } else {
        (s.to_string(), String::new())
    };
    let shown = s.chars().count();
    if shown > MIN_LINE_WIDTH && shown + indent + 4 > BREAK_LENGTH {
        let pieces: Vec<String> = s.split_inclusive('\n').map(quote).collect();
        return format!("{}{trailer}", pieces.join(&format!(" +\n{}", " ".repeat(indent + 2))));
    }
    format!("{}{trailer}", quote(&s))
}

/// Identifiers print bare, other keys quoted like strings.
fn key(k: &str) -> String {
    let mut chars = k.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier { k.to_string() } else { quote_with(k, '\'') }
}

/// Single quotes unless the text holds one: then double quotes, then backticks, and
/// single quotes with escapes when it holds all three.
fn quote(s: &str) -> String {
    let q = if !s.contains('\'') {
        '\''
    } else if !s.contains('"') {
        '"'
    } else if !s.contains('`') && !s.contains("${") {
        '`'
    } else {
        '\''
    };
    quote_with(s, q)
}

fn quote_with(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn string_of_values_is_what_javascript_prints() {
        let cases = [
            (json!(1), "1"),
            (json!(1.5), "1.5"),
            (json!(1.0), "1"),
            (json!(-0.0), "0"),
            (json!(1e21), "1e+21"),
            (json!(1.5e22), "1.5e+22"),
            (json!(1e20), "100000000000000000000"),
            (json!(0.000001), "0.000001"),
            (json!(1e-7), "1e-7"),
            (json!(-2.5e-9), "-2.5e-9"),
            (json!(0.1), "0.1"),
            (json!(123.456), "123.456"),
            (json!(true), "true"),
            (json!(null), "null"),
            (json!("x y"), "x y"),
            (json!([1, "a", null, [2, 3]]), "1,a,,2,3"),
            (json!({"a": 1}), "[object Object]"),
        ];
        for (value, want) in cases {
            assert_eq!(js_string(Some(&value)), want, "{value}");
        }
        assert_eq!(js_string(None), "undefined");
    }

    // Expected texts printed by node 20's util.inspect (keys in the order written:
    // serde_json's `preserve_order`, as node keeps them).
    #[test]
    fn inspect_matches_node_for_flat_and_shallow_objects() {
        let cases = [
            (json!({"role": "nope"}), "{ role: 'nope' }"),
            (json!({"role": "nope", "s": "it's", "x": 1}), "{ role: 'nope', s: \"it's\", x: 1 }"),
            (json!({"a-b": true, "n": null, "_k9": -0.0}), "{ 'a-b': true, n: null, _k9: -0 }"),
            (json!({"q": "a'b\"c"}), "{ q: `a'b\"c` }"),
            (json!({"q": "a'b\"c`"}), "{ q: 'a\\'b\"c`' }"),
            (json!({"t": "line\nnext\u{1}"}), "{ t: 'line\\nnext\\x01' }"),
            (json!({"nested": {"a": [1, 2], "b": {}}, "e": []}), "{ nested: { a: [ 1, 2 ], b: {} }, e: [] }"),
            (json!({"deep": {"a": {"b": {"c": {"d": 1}}}}}), "{ deep: { a: { b: [Object] } } }"),
            (json!({}), "{}"),
        ];
        for (value, want) in cases {
            assert_eq!(inspect(&value), want, "{value}");
        }
    }

    #[test]
    fn inspect_breaks_long_objects_over_lines_as_node_does() {
        let value = json!({
            "aaaaaaaaaa": "bbbbbbbbbbbbbbbbbbbb",
            "cccccccccc": "dddddddddddddddddddd",
            "eeeeeeeeee": 1
        });
        assert_eq!(
            inspect(&value),
            "{\n  aaaaaaaaaa: 'bbbbbbbbbbbbbbbbbbbb',\n  cccccccccc: 'dddddddddddddddddddd',\n  eeeeeeeeee: 1\n}"
        );
    }
}
