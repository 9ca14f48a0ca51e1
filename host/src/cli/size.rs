//! Byte sizes as PM2 and supervisord write them (`--max-memory`, `max_memory_restart`,
//! `stdout_logfile_maxbytes`): `200M`, `1G`, `512K`, `1.5G`, `50MB`, or plain bytes.
//! Units are binary (K = 1024), as both count; `B`/`iB` after the unit is accepted
//! (`200MB`, `200MiB`). The one size parser of the CLI; it does not format sizes.

/// Bytes for a size like `200M`; the error says what was wrong and what is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let usage = || format!("{text:?} is not a size: use a number with an optional unit K, M, G or T (e.g. 200M, 1.5G)");
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B')).unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(usage()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(usage());
    }
    let value: f64 = number.parse().map_err(|_| usage())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes.round() as u64)
}

/// `--max-memory`: a size, never zero (leaving the flag out means no limit).
pub fn parse_memory_limit(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("{text:?} is zero; leave --max-memory out to have no limit")),
        bytes => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_memory_limit, parse_size};

    #[test]
    fn pm2_sizes_are_binary_units() {
        assert_eq!(parse_size("200M"), Ok(200 * 1024 * 1024));
        assert_eq!(parse_size("200m"), Ok(200 * 1024 * 1024));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("200MB"), Ok(200 << 20));
        assert_eq!(parse_size("200MiB"), Ok(200 << 20));
        assert_eq!(parse_size(" 64 M "), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
    }

    #[test]
    fn bad_sizes_say_what_is_accepted() {
        assert_eq!(parse_size("0"), Ok(0), "supervisord's 0 = unlimited is a size");
        for bad in ["", "M", "200X", "-5M", "1..5G", ".5G", "5.G", "1e3", "200 MBs"] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(parse_size("200X").unwrap_err().contains("K, M, G or T"));
        assert!(parse_size("99999999999T").unwrap_err().contains("too large"));
        for zero in ["0", "0M"] {
            assert!(parse_memory_limit(zero).unwrap_err().contains("leave --max-memory out"), "{zero}");
        }
    }
}
