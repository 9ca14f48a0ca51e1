//! Names as Ctrip spells them: the validator for app, cluster and namespace names, the
//! `.properties` suffix, namespace formats, and watch keys (`app+cluster+namespace`).

use serde::{Deserialize, Serialize};

/// Ctrip's cluster of last resort and its first namespace.
pub const DEFAULT_CLUSTER: &str = "default";
pub const APPLICATION_NAMESPACE: &str = "application";
/// An appId clients send when they have none: never has an own release.
pub const NO_APP_ID_PLACEHOLDER: &str = "ApolloNoAppIdPlaceHolder";
/// Ctrip limits names to 32 (apps) to 128 (namespaces) characters; one bound for all.
const MAX_NAME_CHARS: usize = 128;

/// First char `[0-9A-Za-z_-]`, the rest `[0-9A-Za-z_.-]*` (Ctrip's `InputValidator`).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else { return false };
    name.len() <= MAX_NAME_CHARS
        && (first.is_ascii_alphanumeric() || first == '_' || first == '-')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `what`'s value if it is a valid name, else the 400 message Ctrip-style clients expect.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is invalid: use letters, digits, '_', '-' and '.', not starting with '.', at most {MAX_NAME_CHARS} characters"
        ))
    }
}

/// `application.properties` → `application`: only a trailing `.properties`, any case.
pub fn strip_properties_suffix(namespace: &str) -> &str {
    let lower = namespace.to_ascii_lowercase();
    if lower.ends_with(".properties") { &namespace[..namespace.len() - ".properties".len()] } else { namespace }
}

/// What a namespace holds, named by its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Properties,
    Json,
    Yaml,
    Yml,
    Xml,
    Txt,
}

impl Format {
    pub const ALL: [Format; 6] =
        [Format::Properties, Format::Json, Format::Yaml, Format::Yml, Format::Xml, Format::Txt];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Properties => "properties",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Yml => "yml",
            Format::Xml => "xml",
            Format::Txt => "txt",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(text))
    }

    /// A namespace's format from its name: the suffix, or properties without one.
    pub fn of_namespace(name: &str) -> Self {
        name.rsplit_once('.')
            .and_then(|(_, suffix)| Self::parse(suffix))
            .filter(|f| *f != Format::Properties)
            .unwrap_or(Format::Properties)
    }

    /// The Content-Type of `/configfiles/raw` for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json;charset=UTF-8",
            Format::Yaml | Format::Yml => "application/yaml;charset=UTF-8",
            Format::Xml => "application/xml;charset=UTF-8",
            Format::Properties | Format::Txt => "text/plain;charset=UTF-8",
        }
    }
}

/// The key a release message is written under and clients watch:
/// `app+cluster+namespace`.
pub fn watch_key(app: &str, cluster: &str, namespace: &str) -> String {
    format!("{app}+{cluster}+{namespace}")
}

/// The clusters a client of `cluster` in `data_center` falls back through, in order
/// (protocol §1.6): the cluster unless it is `default`, the data center unless it is the
/// cluster, then `default`.
pub fn cluster_fallback<'a>(cluster: &'a str, data_center: Option<&'a str>) -> Vec<&'a str> {
    let mut clusters = Vec::with_capacity(3);
    if cluster != DEFAULT_CLUSTER {
        clusters.push(cluster);
    }
    if let Some(dc) = data_center.filter(|dc| !dc.is_empty() && *dc != cluster) {
        clusters.push(dc);
    }
    clusters.push(DEFAULT_CLUSTER);
    clusters.dedup();
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ctrips_validator() {
        for good in ["app1", "SampleApp", "_x", "-x", "a.b-c_d", "FX.apollo", "20180611152415-1a6fa56a4b5f2c2e"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".x", "a b", "a/b", "a+b", "ä", &"a".repeat(129)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_properties_suffix_is_stripped_in_any_case() {
        assert_eq!(strip_properties_suffix("application.properties"), "application");
        assert_eq!(strip_properties_suffix("Application.PROPERTIES"), "Application");
        assert_eq!(strip_properties_suffix("datasources.json"), "datasources.json");
        assert_eq!(strip_properties_suffix(".properties"), "");
    }

    #[test]
    fn formats_come_from_the_suffix() {
        assert_eq!(Format::of_namespace("application"), Format::Properties);
        assert_eq!(Format::of_namespace("FX.apollo"), Format::Properties);
        assert_eq!(Format::of_namespace("datasources.json"), Format::Json);
        assert_eq!(Format::of_namespace("a.YML"), Format::Yml);
        assert_eq!(Format::of_namespace("rules.xml"), Format::Xml);
    }

    #[test]
    fn clusters_fall_back_to_the_data_center_then_default() {
        assert_eq!(cluster_fallback("default", None), vec!["default"]);
        assert_eq!(cluster_fallback("sha", None), vec!["sha", "default"]);
        assert_eq!(cluster_fallback("sha", Some("shaoy")), vec!["sha", "shaoy", "default"]);
        assert_eq!(cluster_fallback("default", Some("shaoy")), vec!["shaoy", "default"]);
        assert_eq!(cluster_fallback("sha", Some("sha")), vec!["sha", "default"]);
        assert_eq!(cluster_fallback("default", Some("")), vec!["default"]);
    }
}
