//! Typed module config: the host hands over the module's JSON section; the SDK
//! deserialises it into [`crate::Module::Config`], naming the section in errors and
//! returning the keys it did not use so `init` can warn about them.

use serde::de::DeserializeOwned;

/// `Ok((config, unknown keys))`, or an error naming the section and the problem.
pub(crate) fn parse<C: DeserializeOwned + Default>(module: &str, json: &str) -> Result<(C, Vec<String>), String> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
    if value.is_null() {
        return Ok((C::default(), Vec::new()));
    }
    let mut unknown = Vec::new();
    let config = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| format!("modules.config.{module}: {e}"))?;
    Ok((config, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default)]
    struct Greeter {
        greeting: String,
        times: u32,
    }

    #[test]
    fn null_is_default_and_unknown_keys_are_reported() {
        assert_eq!(parse::<Greeter>("g", "null").unwrap().0, Greeter::default());
        let (config, unknown) = parse::<Greeter>("g", r#"{"greeting":"hi","greting":"x"}"#).unwrap();
        assert_eq!(config.greeting, "hi");
        assert_eq!(unknown, vec!["greting".to_string()]);
    }

    #[test]
    fn a_wrong_type_names_the_section() {
        let e = parse::<Greeter>("g", r#"{"times":"many"}"#).unwrap_err();
        assert!(e.starts_with("modules.config.g: invalid type"), "{e}");
    }
}
