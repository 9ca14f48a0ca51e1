//! Login tokens: 32 random bytes, shown to the client once, stored only as SHA-256.
//! A leaked database therefore yields no usable token.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every token starts with this, so they are easy to spot in a secret scanner.
pub const TOKEN_PREFIX: &str = "apo_";

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
