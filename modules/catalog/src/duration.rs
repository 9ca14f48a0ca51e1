//! Go duration syntax (`500ms`, `10s`, `1m30s`, `2h`), the way Consul reads `Interval`,
//! `Timeout`, `TTL`, `DeregisterCriticalServiceAfter` and `?wait=`. A JSON number is
//! nanoseconds, as Go decodes a `time.Duration`. Bad input is refused with a message
//! naming the value, never read as zero.

use std::time::Duration;

/// Parses a Go duration string. Negative durations are refused: nothing here means one.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected Go syntax like \"500ms\", \"10s\" or \"1m30s\"");
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// A duration field of a JSON body: a Go string, or a number of nanoseconds.
pub fn from_json(value: &serde_json::Value, field: &str) -> Result<Option<Duration>, String> {
    match value {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.is_empty() => Ok(None),
        serde_json::Value::String(s) => parse(s).map(Some).map_err(|e| format!("{field}: {e}")),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(ns) if ns >= 0.0 => Ok(Some(Duration::from_nanos(ns as u64))),
            _ => Err(format!("{field}: invalid duration {n}")),
        },
        other => Err(format!("{field}: invalid duration {other}")),
    }
}

/// How Consul prints a duration in `Interval`/`Timeout` (Go's `Duration.String`, short form).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return String::new();
    }
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let frac = d.subsec_millis();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{s}.{}s", frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_is_read_and_bad_values_are_refused() {
        assert_eq!(parse("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "ten seconds", "-1s", "5x", "s", "1m30"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert_eq!(from_json(&serde_json::json!(1_000_000_000u64), "TTL").unwrap(), Some(Duration::from_secs(1)));
        assert!(from_json(&serde_json::json!("1x"), "TTL").unwrap_err().starts_with("TTL: "));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(10)), "10s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(100)), "100ms");
    }
}
