//! The value syntaxes the two source formats share or almost share: booleans,
//! durations (`1600`, `"5s"`) and signal names (`TERM`, `SIGINT`); byte sizes are the
//! CLI's one size parser (`cli/size.rs`). Each parser returns a message that says what was expected; it does not
//! know which key it parses (the caller adds that).

/// supervisord's booleans: `true/false`, `yes/no`, `on/off`, `1/0`.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false, yes/no, on/off, 1/0)")),
    }
}

/// A duration in milliseconds: a bare number is milliseconds (PM2's unit); a string
/// may carry `ms`, `s`, `m` or `h`.
pub fn millis(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let n: f64 = number.parse().map_err(|_| format!("{t:?} is not a duration (e.g. 1600, \"5s\", \"1m\")"))?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(format!("{t:?} is not a duration (e.g. 1600, \"5s\", \"1m\")")),
    };
    Ok((n * factor).round() as u64)
}

/// A signal name as the model wants it (`SIGTERM`), from `TERM`, `term` or `SIGTERM`.
pub fn signal(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(_) => Ok(name),
        Err(_) => Err(format!("{:?} is not a signal name (e.g. TERM, INT, QUIT, HUP)", text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_default_to_milliseconds() {
        assert_eq!(millis("1600"), Ok(1600));
        assert_eq!(millis("5s"), Ok(5000));
        assert_eq!(millis("1.5s"), Ok(1500));
        assert_eq!(millis("2m"), Ok(120_000));
        assert!(millis("soon").is_err());
    }

    #[test]
    fn signals_and_booleans() {
        assert_eq!(signal("term"), Ok("SIGTERM".into()));
        assert_eq!(signal("SIGINT"), Ok("SIGINT".into()));
        assert!(signal("STOPPLEASE").is_err());
        assert_eq!(boolean("Yes"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
    }
}
