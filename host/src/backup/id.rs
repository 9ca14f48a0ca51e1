//! Backup ids and file names: `apollo-<UTC timestamp>-<random>` and `<id>.tar.gz` in
//! `app_back_up`. The id is the only thing a client sends to name a backup, so it is
//! checked here to be a plain file-name stem: no separators, no `..`, nothing hidden.

use chrono::{DateTime, Utc};

/// Every backup file name starts with this; other files in the folder are not ours.
pub const PREFIX: &str = "apollo-";
/// The archive's extension; the id is the file name without it.
pub const EXTENSION: &str = ".tar.gz";

/// A fresh id. The timestamp has milliseconds and a fixed width, so ids sort in
/// creation order; the random suffix keeps two hosts (or two calls in one
/// millisecond) sharing a folder apart.
pub fn new_id(now: DateTime<Utc>) -> String {
    format!("{PREFIX}{}-{:06x}", now.format("%Y%m%dT%H%M%S%.3fZ"), rand::random::<u32>() & 0xff_ffff)
}

/// `Ok` for a name that can only mean a file directly inside `app_back_up`.
pub fn validate(id: &str) -> Result<(), String> {
    let plain = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id.starts_with(PREFIX) || id.len() > 128 || !plain || id.contains("..") {
        return Err(format!(
            "{id:?} is not a backup id: expected apollo-<timestamp>-<suffix> (letters, digits, '-', '_', '.'; no path)"
        ));
    }
    Ok(())
}

/// The id of a file name in `app_back_up`, if it is one of ours.
pub fn from_file_name(name: &str) -> Option<&str> {
    let id = name.strip_suffix(EXTENSION)?;
    validate(id).ok().map(|()| id)
}

pub fn file_name(id: &str) -> String {
    format!("{id}{EXTENSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_valid_and_sort_by_time() {
        let early = new_id(DateTime::from_timestamp_millis(1_700_000_000_000).unwrap());
        let late = new_id(DateTime::from_timestamp_millis(1_700_000_000_001).unwrap());
        assert!(early.starts_with("apollo-20231114T221320.000Z-"), "{early}");
        assert!(validate(&early).is_ok() && early < late);
        assert_eq!(from_file_name(&file_name(&early)), Some(early.as_str()));
    }

    #[test]
    fn path_characters_are_refused() {
        for bad in
            ["", "x", "apollo-../x", "apollo-a/b", "apollo-a\\b", "apollo-a\0", ".apollo-a", "apollo-..", "../apollo-a"]
        {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate(&format!("apollo-{}", "a".repeat(200))).is_err());
        assert_eq!(from_file_name("notes.txt"), None);
        assert_eq!(from_file_name("apollo-1.tar.gz.partial"), None);
    }
}
