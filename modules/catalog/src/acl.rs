//! Who may call a Consul route. Tokens (`X-Consul-Token`, `?token=`, or
//! `Authorization: Bearer`) are made by the operator on the admin routes and stored as
//! SHA-256 hashes. Writes from peers other than loopback (and the host's unix socket)
//! need a `write` token; reads need a token only under `acl.default_read = "deny"`.
//! An unknown token is refused even where none is needed, as Consul does.

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

fn token_of(req: &Request) -> Option<String> {
    if let Some(t) = req.header("x-consul-token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    if let Some(t) = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).filter(|t| !t.is_empty()) {
        return Some(t.trim().to_string());
    }
    req.query_param("token").filter(|t| !t.is_empty())
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
            Some(secret) => {
                let hash = model::sha256_hex(&secret);
                let state = self.replica.read();
                match state.tokens.values().find(|t| t.secret_sha256 == hash) {
                    Some(token) => Some(token.rights.clone()),
                    None => return Err(Fail::new(403, "ACL not found")),
                }
            }
            None => None,
        };
        let trusted = req.via == Via::AdminUnixSocket
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
