//! Access keys (protocol §3): a client signs `timestamp + "\n" + path?query` with
//! HMAC-SHA1 under one of its app's secrets. Checked over the target exactly as
//! received, with and without the module's mount prefix (clients disagree on which
//! they sign).

use plugin_api::{Request, signing};

use crate::model::{ACCESS_KEY_FILTER, ACCESS_KEY_OBSERVER, AccessKey};

/// Why a request was refused (the reason words are Ctrip's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    RequestTimeTooSkewed,
    Unauthorized,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Refusal::Unauthorized => "Unauthorized",
        }
    }
}

/// The outcome of the check, and whether an observer-mode key saw a bad signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub refusal: Option<Refusal>,
    pub observed_mismatch: bool,
}

#[cfg(test)]
pub fn signature(secret: &str, timestamp: &str, path_with_query: &str) -> String {
    let message = format!("{timestamp}\n{path_with_query}");
    signing::base64_encode(&signing::hmac_sha1(secret.as_bytes(), message.as_bytes()))
}

/// Checks a request against its app's keys. `targets` are the forms a client may have
/// signed (full received target, mount-relative target).
pub fn check<'a>(
    keys: impl Iterator<Item = &'a AccessKey>,
    req: &Request,
    targets: &[&str],
    now_ms: i64,
    tolerance_ms: i64,
) -> Verdict {
    let enabled: Vec<&AccessKey> = keys.filter(|k| k.enabled).collect();
    let filters: Vec<&AccessKey> = enabled.iter().copied().filter(|k| k.mode == ACCESS_KEY_FILTER).collect();
    let observers: Vec<&AccessKey> = enabled.iter().copied().filter(|k| k.mode == ACCESS_KEY_OBSERVER).collect();
    if filters.is_empty() && observers.is_empty() {
        return Verdict { refusal: None, observed_mismatch: false };
    }
    let signed_by = |keys: &[&AccessKey]| -> Result<(), Refusal> {
        let timestamp = req.header("timestamp").unwrap_or_default();
        let at: i64 = timestamp.parse().map_err(|_| Refusal::RequestTimeTooSkewed)?;
        if (now_ms - at).abs() >= tolerance_ms {
            return Err(Refusal::RequestTimeTooSkewed);
        }
        // Ctrip reads what follows the first ':' and ignores the appId before it.
        let given = req.header("authorization").and_then(|a| a.split_once(':')).map(|(_, s)| s.trim());
        let Some(given) = given else { return Err(Refusal::Unauthorized) };
        let matches = keys.iter().any(|key| {
            targets.iter().any(|target| {
                signing::verify_hmac_sha1_base64(
                    key.secret.as_bytes(),
                    format!("{timestamp}\n{target}").as_bytes(),
                    given,
                )
            })
        });
        if matches { Ok(()) } else { Err(Refusal::Unauthorized) }
    };
    let observed_mismatch = !observers.is_empty() && signed_by(&observers).is_err();
    let refusal = if filters.is_empty() { None } else { signed_by(&filters).err() };
    Verdict { refusal, observed_mismatch }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stamp;

    #[test]
    fn the_upstream_test_vector_holds() {
        let sig = signature("someSecret", "1575018989200", "/configs/someAppId/default/application?ip=10.0.0.1");
        assert_eq!(sig, "WYjjyJFei6DYiaMlwZjew2O/Yqk=");
    }

    fn key(mode: u8) -> AccessKey {
        AccessKey {
            id: "k".into(),
            app_id: "app".into(),
            secret: "s3cret".into(),
            enabled: true,
            mode,
            stamp: Stamp::default(),
        }
    }

    fn request(ts: &str, sig: &str) -> Request {
        Request {
            headers: vec![("Timestamp".into(), ts.into()), ("Authorization".into(), format!("Apollo app:{sig}"))],
            ..Default::default()
        }
    }

    #[test]
    fn either_the_full_or_the_mount_relative_target_may_be_signed() {
        let full = "/api/module/config/configs/app/default/application?ip=1.2.3.4";
        let relative = "/configs/app/default/application?ip=1.2.3.4";
        let now = 1_700_000_000_000_i64;
        let keys = [key(ACCESS_KEY_FILTER)];
        for signed in [full, relative] {
            let req = request(&now.to_string(), &signature("s3cret", &now.to_string(), signed));
            assert_eq!(check(keys.iter(), &req, &[full, relative], now, 60_000).refusal, None, "{signed}");
        }
        let wrong = request(&now.to_string(), &signature("wrong", &now.to_string(), full));
        assert_eq!(check(keys.iter(), &wrong, &[full, relative], now, 60_000).refusal, Some(Refusal::Unauthorized));
        let old = (now - 61_000).to_string();
        let skewed = request(&old, &signature("s3cret", &old, full));
        assert_eq!(check(keys.iter(), &skewed, &[full], now, 60_000).refusal, Some(Refusal::RequestTimeTooSkewed));
    }

    #[test]
    fn observer_keys_only_report() {
        let keys = [key(ACCESS_KEY_OBSERVER)];
        let verdict = check(keys.iter(), &Request::default(), &["/configs/app/default/application"], 0, 60_000);
        assert_eq!(verdict, Verdict { refusal: None, observed_mismatch: true });
    }
}
