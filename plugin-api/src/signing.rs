//! What modules that check their clients' signatures need, so they depend on nothing
//! but this crate: HMAC-SHA1/SHA-256 (computed and verified in constant time), base64,
//! and the crates themselves for anything beyond.

pub use base64;
pub use hmac;
pub use sha1;
pub use sha2;

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// HMAC-SHA1 of `message` under `key` (Ctrip Apollo's access-key signature).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 with padding; `None` if it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Whether `signature` (base64) is the HMAC-SHA1 of `message` under `key`, compared in
/// constant time (a timing difference would let a client guess it byte by byte).
pub fn verify_hmac_sha1_base64(key: &[u8], message: &[u8], signature: &str) -> bool {
    let Some(claimed) = base64_decode(signature) else { return false };
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&claimed).is_ok()
}

/// Whether `signature` (base64) is the HMAC-SHA256 of `message` under `key`, in
/// constant time.
pub fn verify_hmac_sha256_base64(key: &[u8], message: &[u8], signature: &str) -> bool {
    let Some(claimed) = base64_decode(signature) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&claimed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2202_and_4231_vectors() {
        // RFC 2202 test case 2 and RFC 4231 test case 2.
        let sha1 = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sha1.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let sha256 = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sha256.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_hmac_sha1_base64(b"Jefe", b"what do ya want for nothing?", &base64_encode(&sha1)));
        assert!(!verify_hmac_sha1_base64(b"Jefe", b"what do ya want for nothing!", &base64_encode(&sha1)));
        assert!(!verify_hmac_sha256_base64(b"Jefe", b"x", "not base64!"));
    }
}
