//! The checksum of a set of JSON records that the host and store-administration
//! modules must compute identically (module-db-migrate compares archives and copies
//! with what the host reports): the wrapping sum of the first 16 bytes of each
//! record's SHA-256 over its canonical JSON (object keys sorted at every level, no
//! whitespace). Order-free, so two stores returning records in different orders agree,
//! and independent of whether a build's `serde_json` keeps insertion order.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Serialised as `{"count": N, "checksum": "<32 hex digits>"}` (JSON has no u128).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordDigest {
    pub count: u64,
    #[serde(with = "hex_u128")]
    pub checksum: u128,
}

mod hex_u128 {
    pub fn serialize<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        u128::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

impl RecordDigest {
    pub fn add(&mut self, record: &Value) {
        let hash = Sha256::digest(canonical_json(record).as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        self.count += 1;
        self.checksum = self.checksum.wrapping_add(u128::from_be_bytes(first));
    }

    /// The checksum as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.checksum)
    }
}

/// JSON text with object keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_record_order_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": null}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#);
        let b = serde_json::json!({"k": "v"});
        let (mut x, mut y) = (RecordDigest::default(), RecordDigest::default());
        x.add(&a);
        x.add(&b);
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        let json = serde_json::to_value(x).unwrap();
        assert_eq!(json["checksum"], x.hex());
        assert_eq!(serde_json::from_value::<RecordDigest>(json).unwrap(), x);
    }
}
