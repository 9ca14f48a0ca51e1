//! The JSON protocol between a module's [`super::Storage`] and whoever answers it (the
//! host's `modules/storage_service.rs`, or [`super::MemoryStorage`]): the requests, their
//! answers, the limits every answerer checks alike, and the paging helpers both sides
//! share. Not for authors.

use serde::{Deserialize, Serialize};

use super::*;

/// A request of the protocol, as JSON `{"op": ..., ...}`.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Get {
        key: String,
    },
    List {
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        after: Option<String>,
        limit: u32,
    },
    Commit {
        writes: Vec<Write>,
    },
    Head,
    Changes {
        #[serde(default)]
        prefix: Option<String>,
        since: u64,
        #[serde(default)]
        wait_ms: u64,
    },
}

/// Answer to `get`.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAnswer {
    pub entry: Option<Entry>,
}

/// Answer to `head`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadAnswer {
    pub revision: u64,
}

impl Request {
    /// Parses a request and checks it against the limits: what every answerer (the
    /// host, the test host) runs first, so they refuse the same things alike.
    pub fn parse(text: &str) -> Result<Request, StorageError> {
        let request: Request =
            serde_json::from_str(text).map_err(|e| StorageError::bad_request(format!("not a storage request: {e}")))?;
        request.check()?;
        Ok(request)
    }

    pub fn check(&self) -> Result<(), StorageError> {
        match self {
            Request::Get { key } => check_key(key),
            Request::List { prefix, after, limit } => {
                check_prefix(prefix)?;
                if let Some(after) = after {
                    check_prefix(after)?;
                }
                if *limit == 0 || *limit > MAX_LIST_LIMIT {
                    return Err(StorageError::bad_request(format!(
                        "list limit {limit} is not between 1 and {MAX_LIST_LIMIT}"
                    )));
                }
                Ok(())
            }
            Request::Commit { writes } => check_commit(writes),
            Request::Head => Ok(()),
            Request::Changes { prefix, .. } => prefix.as_deref().map_or(Ok(()), check_prefix),
        }
    }

    /// A `changes` wait, shortened to [`MAX_WAIT`].
    pub fn wait(wait_ms: u64) -> Duration {
        Duration::from_millis(wait_ms).min(MAX_WAIT)
    }
}

fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(StorageError::bad_request("a key may not be empty"));
    }
    check_prefix(key)
}

fn check_prefix(text: &str) -> Result<(), StorageError> {
    if text.len() > MAX_KEY_BYTES {
        return Err(StorageError::too_large(format!(
            "key {:?}… is {} bytes, over the limit of {MAX_KEY_BYTES}",
            text.chars().take(32).collect::<String>(),
            text.len()
        )));
    }
    Ok(())
}

fn check_commit(writes: &[Write]) -> Result<(), StorageError> {
    if writes.is_empty() {
        return Err(StorageError::bad_request("a commit needs at least one write"));
    }
    if writes.len() > MAX_COMMIT_WRITES {
        return Err(StorageError::too_large(format!(
            "a commit of {} writes is over the limit of {MAX_COMMIT_WRITES}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    let mut bytes = 0;
    for write in writes {
        check_key(&write.key)?;
        if let Some(value) = &write.value
            && value.len() > MAX_VALUE_BYTES
        {
            return Err(StorageError::too_large(format!(
                "the value of {:?} is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                write.key,
                value.len()
            )));
        }
        if !seen.insert(write.key.as_str()) {
            return Err(StorageError::bad_request(format!("key {:?} is written twice in one commit", write.key)));
        }
        bytes += write.bytes();
    }
    if bytes > MAX_COMMIT_BYTES {
        return Err(StorageError::too_large(format!(
            "a commit of {bytes} bytes is over the limit of {MAX_COMMIT_BYTES}"
        )));
    }
    Ok(())
}

/// The smallest string above every string that starts with `prefix` (`None`: no such
/// bound, the prefix is empty or all `char::MAX`). UTF-8 byte order is code point
/// order, so the next code point after the last one bounds the range.
#[doc(hidden)]
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Surrogates are not chars.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Makes a page from up to `limit + 1` entries read in key order: the extra one only
/// says there is more. Stops early past [`MAX_ANSWER_BYTES`] (keeping at least one).
#[doc(hidden)]
pub fn page_of(mut entries: Vec<Entry>, limit: u32) -> Page {
    let mut more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let mut bytes = 0;
    if let Some(cut) = entries.iter().position(|e| {
        bytes += e.key.len() + e.value.len();
        bytes > MAX_ANSWER_BYTES
    }) {
        let keep = cut.max(1);
        more |= keep < entries.len();
        entries.truncate(keep);
    }
    let next = if more { entries.last().map(|e| e.key.clone()) } else { None };
    Page { entries, next }
}

/// Makes a feed answer from changes read in revision order. `complete` says whether
/// they are every matching change up to `head`; when not (the read hit its limit), the
/// last revision read may be partial and is left for the next call. Stops early, at a
/// commit boundary, past [`MAX_ANSWER_BYTES`] (keeping at least one commit).
#[doc(hidden)]
pub fn changes_of(mut changes: Vec<Change>, complete: bool, head: u64) -> Changes {
    let mut upto = head;
    if !complete && let Some(last) = changes.last().map(|c| c.revision) {
        let whole = changes.iter().position(|c| c.revision == last).unwrap_or(changes.len());
        if whole > 0 {
            changes.truncate(whole);
            upto = last - 1;
        } else {
            upto = last;
        }
    }
    let mut bytes = 0;
    let mut cut = None;
    for (i, c) in changes.iter().enumerate() {
        bytes += c.key.len() + c.value.as_ref().map_or(0, String::len);
        if bytes > MAX_ANSWER_BYTES && i > 0 && c.revision != changes[0].revision {
            cut = Some(i);
            break;
        }
    }
    if let Some(i) = cut {
        // Back to the first change of the revision that crossed the limit.
        let revision = changes[i].revision;
        let start = changes[..i].iter().rposition(|c| c.revision != revision).map_or(0, |p| p + 1);
        changes.truncate(start);
        upto = revision - 1;
    }
    Changes { changes, head: upto }
}
