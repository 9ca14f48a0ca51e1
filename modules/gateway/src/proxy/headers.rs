//! Header rules of a proxy hop: hop-by-hop headers (RFC 9110 §7.6.1, plus those the
//! `Connection` header names) stay on their hop, and the upstream learns who asked
//! through `X-Forwarded-For/Proto/Host` (written by `upstream/request_head.rs`, which
//! applies the same rules to the request head it writes).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// A `static`, not a `const`: a const array of names is built and dropped at each use,
/// and this one is consulted for every header of every request.
pub static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether a field name (any case) is hop-by-hop by itself: [`HOP_BY_HOP`] and `Upgrade`
/// (which passes only with a protocol switch).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    // By length first: most names have none of these lengths, and the rest are compared
    // with at most two names (this runs for every field of every response).
    let candidates: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        7 => &[b"upgrade", b"trailer"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        17 => &[b"transfer-encoding"],
        18 => &[b"proxy-authenticate"],
        _ => return false,
    };
    candidates.iter().any(|candidate| name.eq_ignore_ascii_case(candidate))
}

/// Whether the client asks to switch protocols (WebSocket): `Connection: upgrade` and
/// an `Upgrade` header.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// The options a `Connection` header lists (RFC 9110 §7.6.1): the header fields they
/// name are hop-by-hop too. Tokens are compared as text with [`lists`], so no name is
/// parsed or allocated per request.
pub fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &str> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether `options` (from [`connection_options`]) name `name`.
pub fn lists(options: &[&str], name: &HeaderName) -> bool {
    options.iter().any(|option| option.eq_ignore_ascii_case(name.as_str()))
}

/// Removes hop-by-hop headers; for a protocol switch `Connection: upgrade` and
/// `Upgrade` pass through, as the next hop must see them.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds the ones to drop, and only those are removed: each
    // removal hashes its name, and most heads carry one or none of them.
    // Without a `Connection` header this collects nothing and allocates nothing.
    let options: Vec<&str> = connection_options(headers).collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            if *name == header::UPGRADE { !keep_upgrade } else { HOP_BY_HOP.contains(name) || lists(&options, name) }
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn a_head_without_hop_by_hop_headers_is_left_alone_and_a_stray_upgrade_goes() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 2, "{h:?}");
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut h, false);
        assert!(!h.contains_key(header::UPGRADE), "{h:?}");
    }

    #[test]
    fn the_byte_check_knows_the_hop_by_hop_names_in_any_case_and_no_others() {
        for name in HOP_BY_HOP.iter().map(HeaderName::as_str).chain(["upgrade"]) {
            assert!(is_hop_by_hop(name.as_bytes()), "{name}");
            assert!(is_hop_by_hop(name.to_ascii_uppercase().as_bytes()), "{name}");
        }
        for name in ["content-length", "content-type", "x-trailer", "tes", "t", "proxy-authorization", "upgrades"] {
            assert!(!is_hop_by_hop(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn an_upgrade_keeps_its_upgrade_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h[header::CONNECTION], "upgrade");
    }
}
