//! Which service answers a Seneca message: every service's declared pins in one patrun
//! table. Built the same way from the same catalog whatever order it arrives in
//! (services by name), and when two services declare the same pattern the first by
//! name keeps it and the clash is recorded for the admin API to show.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::patrun::Patterns;
use super::pin::{Pattern, parse_pins};

/// Two services declared the same pattern; `winner` (first by name) receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub pattern: String,
    pub winner: String,
    pub loser: String,
}

/// Patterns → service name, matched as seneca matches.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    patterns: Patterns<String>,
    collisions: Vec<Collision>,
}

/// A service's instances disagreed with the others or declared an unreadable pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinProblem {
    pub service: String,
    pub problem: String,
}

impl Directory {
    /// From each service's patterns. A service named twice has its patterns joined;
    /// the same pattern twice in one service is not a collision.
    pub fn build(entries: impl IntoIterator<Item = (String, Vec<Pattern>)>) -> Directory {
        let mut by_service: BTreeMap<String, BTreeSet<Pattern>> = BTreeMap::new();
        for (service, patterns) in entries {
            by_service.entry(service).or_default().extend(patterns);
        }
        let mut directory = Directory::default();
        for (service, patterns) in by_service {
            // Within a service, patterns go in their sorted order: deterministic too.
            for pattern in patterns {
                match directory.patterns.get(&pattern) {
                    Some(winner) => directory.collisions.push(Collision {
                        pattern: pattern.to_string(),
                        winner: winner.clone(),
                        loser: service.clone(),
                    }),
                    None => {
                        directory.patterns.add(&pattern, service.clone());
                    }
                }
            }
        }
        directory
    }

    /// From the catalog's instances: `(service, meta value under the pin key)` for each
    /// instance, `None` where it declares nothing. Every instance's pins count (a
    /// rolling upgrade may add one); unreadable pins are reported and skipped.
    pub fn from_instance_meta<'a>(
        instances: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> (Directory, Vec<PinProblem>) {
        let mut entries: Vec<(String, Vec<Pattern>)> = Vec::new();
        let mut problems = Vec::new();
        for (service, meta) in instances {
            let Some(meta) = meta else { continue };
            match parse_pins(meta) {
                Ok(patterns) => entries.push((service.to_string(), patterns)),
                Err(problem) => {
                    let problem = PinProblem { service: service.to_string(), problem };
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
        }
        (Directory::build(entries), problems)
    }

    /// The service whose pattern patrun picks for this message.
    pub fn find(&self, msg: &Map<String, Value>) -> Option<&str> {
        self.patterns.find(msg).map(String::as_str)
    }

    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// `(pattern, service)` in the order they were added (services by name).
    pub fn patterns(&self) -> Vec<(String, String)> {
        self.patterns.list().into_iter().map(|(p, s)| (p.to_string(), s.clone())).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pins(text: &str) -> Vec<Pattern> {
        parse_pins(text).unwrap()
    }

    fn msg(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn finds_the_service_by_patrun_rules() {
        let d = Directory::build([
            ("math".to_string(), pins("role:math,cmd:*")),
            ("users".to_string(), pins("module:user,if:*;role:user")),
            ("sums".to_string(), pins("role:math,cmd:sum")),
        ]);
        assert_eq!(d.find(&msg(json!({"role": "math", "cmd": "sum", "left": 1}))), Some("sums"));
        assert_eq!(d.find(&msg(json!({"role": "math", "cmd": "product"}))), Some("math"));
        assert_eq!(d.find(&msg(json!({"module": "user", "if": "list"}))), Some("users"));
        assert_eq!(d.find(&msg(json!({"role": "user", "x": 1}))), Some("users"));
        assert_eq!(d.find(&msg(json!({"role": "nope"}))), None);
        assert!(d.collisions().is_empty());
    }

    #[test]
    fn same_pattern_in_two_services_first_by_name_wins_whatever_the_order() {
        let a =
            Directory::build([("zeta".to_string(), pins("role:math")), ("alpha".to_string(), pins("role:math;b:1"))]);
        let b =
            Directory::build([("alpha".to_string(), pins("b:1;role:math")), ("zeta".to_string(), pins("role:math"))]);
        for d in [&a, &b] {
            assert_eq!(d.find(&msg(json!({"role": "math"}))), Some("alpha"));
            assert_eq!(
                d.collisions(),
                &[Collision {
                    pattern: "role:math".to_string(),
                    winner: "alpha".to_string(),
                    loser: "zeta".to_string()
                }]
            );
        }
        assert_eq!(a.patterns(), b.patterns());
        assert_eq!(
            a.patterns(),
            vec![("b:1".to_string(), "alpha".to_string()), ("role:math".to_string(), "alpha".to_string())]
        );
    }

    #[test]
    fn equal_after_stringifying_is_the_same_pattern() {
        let d = Directory::build([
            ("a".to_string(), pins(r#"{"v":1}"#)),
            ("b".to_string(), pins("v:'1'")),
            ("a".to_string(), pins("v:1")),
        ]);
        assert_eq!(d.collisions().len(), 1);
        assert_eq!(d.collisions()[0].loser, "b");
    }

    #[test]
    fn from_instance_meta_unions_instances_and_reports_bad_pins() {
        let (d, problems) = Directory::from_instance_meta([
            ("math", Some("role:math,cmd:sum")),
            ("math", Some("role:math,cmd:sum;role:math,cmd:product")),
            ("math", None),
            ("broken", Some("role")),
            ("broken", Some("role")),
        ]);
        assert_eq!(d.patterns().len(), 2);
        assert_eq!(d.find(&msg(json!({"role": "math", "cmd": "product"}))), Some("math"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].service, "broken");
        assert!(problems[0].problem.contains("`role` is not `key:value`"), "{}", problems[0].problem);
    }
}
