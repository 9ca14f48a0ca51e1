//! Who may call a Consul route. Tokens (`X-Consul-Token`, `?token=`, or
//! `Authorization: Bearer`) are made by the operator on the admin routes and stored as
//! SHA-256 hashes. Writes from peers other than loopback (and the host's unix socket)
//! need a `write` token; reads need a token only under `acl.default_read = "deny"`.
//! An unknown token is refused even where none is needed, as Consul does (except an
//! unknown `Authorization: Bearer`, which may be the host's token on the admin mount).

use std::net::IpAddr;

use plugin_api::{Request, Via};

use crate::Catalog;
use crate::model;
use crate::wire::Fail;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The token a request carries, and whether it came as `Authorization: Bearer` (which
/// may be the host's own token on the admin mount: unknown there means "none").
fn token_of(req: &Request) -> Option<(String, bool)> {
    if let Some(t) = req.header("x-consul-token").filter(|t| !t.is_empty()) {
        return Some((t.to_string(), false));
    }
    if let Some(t) = req.query_param("token").filter(|t| !t.is_empty()) {
        return Some((t, false));
    }
    let bearer = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
    bearer.filter(|t| !t.is_empty()).map(|t| (t.to_string(), true))
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

impl Catalog {
    pub(crate) fn authorize(&self, req: &Request, access: Access) -> Result<(), Fail> {
        let rights = match token_of(req) {
            Some((secret, bearer)) => {
                let hash = model::sha256_hex(&secret);
                let state = self.replica.read();
                match state.tokens.values().find(|t| t.secret_sha256 == hash) {
                    Some(token) => Some(token.rights.clone()),
                    None if bearer => None,
                    None => return Err(Fail::new(403, "ACL not found")),
                }
            }
            None => None,
        };
        // The host's operators (its token, whose header the host keeps to itself, or its
        // unix socket) are trusted wherever they connect from.
        let trusted = req.user.is_some()
            || req.via == Via::AdminUnixSocket
            || (self.settings.trust_loopback && req.peer_addr.is_some_and(|p| is_loopback(p.ip())));
        let allowed = match (access, rights.as_deref()) {
            (_, Some("write")) => true,
            (Access::Read, Some(_)) => true,
            _ if trusted => true,
            (Access::Read, None) => !self.settings.read_needs_token,
            _ => false,
        };
        if allowed { Ok(()) } else { Err(Fail::forbidden()) }
    }
}
