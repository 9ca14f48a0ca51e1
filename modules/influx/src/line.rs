//! InfluxDB 1.x line protocol: one [`Point`] becomes one line,
//! `measurement,tag=v,... field=v,... timestamp`. Every point carries its own
//! timestamp (milliseconds, the precision the writer asks for), so a batch sent twice
//! (an answer lost after InfluxDB stored it) overwrites the same points instead of
//! adding new ones.
//!
//! Escaping follows InfluxDB 1.x's parser: measurement names escape `,` and space; tag
//! keys, tag values and field keys escape `,`, `=` and space; string field values are
//! double-quoted with `"` and `\` escaped. Line breaks cannot be escaped at all, and a
//! trailing backslash would swallow the delimiter after it, so tag values are cleaned
//! of both (see [`tag_value`]).

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: &'static str,
    pub tags: Vec<(&'static str, String)>,
    pub fields: Vec<(&'static str, FieldValue)>,
    /// Unix epoch milliseconds.
    pub time_ms: i64,
}

impl Point {
    pub fn new(measurement: &'static str, time_ms: i64) -> Self {
        Self { measurement, tags: Vec::new(), fields: Vec::new(), time_ms }
    }

    pub fn tag(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.tags.push((key, value.into()));
        self
    }

    pub fn float(mut self, key: &'static str, value: Option<f64>) -> Self {
        if let Some(v) = value {
            self.fields.push((key, FieldValue::Float(v)));
        }
        self
    }

    pub fn int(mut self, key: &'static str, value: Option<i64>) -> Self {
        if let Some(v) = value {
            self.fields.push((key, FieldValue::Int(v)));
        }
        self
    }

    pub fn string(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((key, FieldValue::Str(value.into())));
        self
    }

    /// The line, without its newline; `None` when no field is left to write (a point
    /// without fields is invalid, and NaN or infinity cannot be stored).
    pub fn encode(&self) -> Option<String> {
        let fields: Vec<_> =
            self.fields.iter().filter(|(_, v)| !matches!(v, FieldValue::Float(f) if !f.is_finite())).collect();
        if fields.is_empty() {
            return None;
        }
        let mut line = escape(self.measurement, &[',', ' ']);
        // Sorted tags are what InfluxDB stores anyway; sending them sorted spares it work.
        let mut tags: Vec<_> =
            self.tags.iter().map(|(k, v)| (*k, tag_value(v))).filter(|(_, v)| !v.is_empty()).collect();
        tags.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in tags {
            let _ = write!(line, ",{}={}", escape(key, KEY_SPECIALS), escape(&value, KEY_SPECIALS));
        }
        for (i, (key, value)) in fields.into_iter().enumerate() {
            line.push(if i == 0 { ' ' } else { ',' });
            line.push_str(&escape(key, KEY_SPECIALS));
            line.push('=');
            match value {
                // `Display` for f64 never uses an exponent and prints integral values
                // without a dot, which line protocol reads as a float (no `i` suffix).
                FieldValue::Float(f) => {
                    let _ = write!(line, "{f}");
                }
                FieldValue::Int(n) => {
                    let _ = write!(line, "{n}i");
                }
                FieldValue::Str(s) => {
                    line.push('"');
                    line.push_str(&escape(s, &['"', '\\']));
                    line.push('"');
                }
            }
        }
        let _ = write!(line, " {}", self.time_ms);
        Some(line)
    }
}

const KEY_SPECIALS: &[char] = &[',', '=', ' '];

fn escape(s: &str, specials: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if specials.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Control characters (line breaks above all) become `_`; trailing backslashes are
/// dropped. Neither can be represented in a 1.x tag value.
fn tag_value(v: &str) -> String {
    v.chars().map(|c| if c.is_control() { '_' } else { c }).collect::<String>().trim_end_matches('\\').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_point() {
        let p = Point::new("apollo_service", 1_700_000_000_123)
            .tag("service", "api")
            .tag("host", "box")
            .float("cpu_percent", Some(1.5))
            .int("rss_bytes", Some(4096))
            .string("state", "running");
        assert_eq!(
            p.encode().unwrap(),
            r#"apollo_service,host=box,service=api cpu_percent=1.5,rss_bytes=4096i,state="running" 1700000000123"#
        );
    }

    #[test]
    fn escapes_what_the_parser_treats_as_syntax() {
        let p = Point::new("m e,x", 1).tag("ta g", "a,b=c d").float("f=1", Some(2.0)).string("s", r#"say "hi" \o/"#);
        assert_eq!(p.encode().unwrap(), r#"m\ e\,x,ta\ g=a\,b\=c\ d f\=1=2,s="say \"hi\" \\o/" 1"#);
    }

    #[test]
    fn line_breaks_and_trailing_backslashes_never_reach_a_tag() {
        let p = Point::new("m", 1).tag("host", "a\nb\\\\").int("v", Some(1));
        assert_eq!(p.encode().unwrap(), "m,host=a_b v=1i 1");
    }

    #[test]
    fn empty_tags_are_left_out_and_floats_stay_floats() {
        let p = Point::new("m", 5).tag("instance", "").float("v", Some(3.0)).float("w", Some(-0.25));
        assert_eq!(p.encode().unwrap(), "m v=3,w=-0.25 5");
        let big = Point::new("m", 5).float("v", Some(1e21)).encode().unwrap();
        assert_eq!(big, "m v=1000000000000000000000 5");
    }

    #[test]
    fn no_valid_field_no_line() {
        assert_eq!(Point::new("m", 1).encode(), None);
        assert_eq!(Point::new("m", 1).float("v", None).encode(), None);
        assert_eq!(Point::new("m", 1).float("v", Some(f64::NAN)).encode(), None);
        let partial = Point::new("m", 1).float("nan", Some(f64::INFINITY)).int("ok", Some(1));
        assert_eq!(partial.encode().unwrap(), "m ok=1i 1");
    }
}
