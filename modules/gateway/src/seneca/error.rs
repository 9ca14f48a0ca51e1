//! `ActError`: why the gateway could not make a Seneca message out of a request, named
//! with the code a real listener would use, so the reply can be shaped as seneca's.

use std::fmt;

use serde_json::{Map, Value, json};

/// An error in seneca's terms: `code` (`invalid_json`, `act_not_found`, …), the message
/// seneca would write, and eraro's `details`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActError {
    pub code: String,
    pub message: String,
    pub details: Map<String, Value>,
}

impl ActError {
    /// The body did not parse as JSON; `input` is the body as text.
    pub fn invalid_json(input: &str) -> Self {
        let mut details = Map::new();
        details.insert("input".to_string(), json!(input));
        Self { code: "invalid_json".to_string(), message: format!("seneca: Invalid JSON: {input}."), details }
    }
}

impl fmt::Display for ActError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ActError {}
