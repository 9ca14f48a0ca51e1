//! Best-effort `line:column` of a dotted key inside JSON text, for messages about
//! values that parsed but are not acceptable (serde only knows positions of syntax
//! and type errors).

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

#[cfg(test)]
mod tests {
    use super::locate_key;

    #[test]
    fn finds_nested_key() {
        let text = "{\n  \"port\": 1,\n  \"server\": {\n    \"port\": 2\n  }\n}";
        assert_eq!(locate_key(text, "server.port"), Some((4, 5)));
        assert_eq!(locate_key(text, "missing"), None);
    }
}
