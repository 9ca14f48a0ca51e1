//! Java `Properties.store` text, as `/configfiles/...` serves properties namespaces:
//! `key=value` lines with Java's escaping and no timestamp comment.

use std::collections::BTreeMap;

/// One escaped key or value. Spaces are escaped everywhere in a key and only leading in
/// a value; non-ASCII is written as UTF-8 (what `store(Writer)` does).
fn escape(text: &str, is_key: bool, out: &mut String) {
    for (i, c) in text.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
}

pub fn render(configurations: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (key, value) in configurations {
        escape(key, true, &mut out);
        out.push('=');
        escape(value, false, &mut out);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_escaped_as_java_does() {
        let map: BTreeMap<String, String> =
            [("a key", " leading and inner space"), ("k=1:2", "v#1!x\\y"), ("multi", "line1\nline2\tt"), ("ü", "ça")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(
            render(&map),
            "a\\ key=\\ leading and inner space\nk\\=1\\:2=v\\#1\\!x\\\\y\nmulti=line1\\nline2\\tt\nü=ça\n"
        );
    }
}
