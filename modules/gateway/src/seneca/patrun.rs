//! patrun's matching, as Seneca routes messages with it (`Patrun({gex:true})`): a trie
//! over the pattern keys in sorted order, walked greedily with a stack of "skip this
//! key" branches (contract §2.6). Ported node for node, because a scorer ("most keys
//! wins") picks differently (vectors V1, V6) and the gateway must send a message where
//! the sender's own seneca would have.

use serde_json::{Map, Value};

use super::js;
use super::pin::Pattern;

/// Patterns and what each leads to, matched as patrun matches.
#[derive(Debug, Clone)]
pub struct Patterns<T> {
    root: Node<T>,
    /// Patterns in the order they were first added, for `list`.
    added: Vec<Pattern>,
}

/// A point in the trie: the data of the pattern that ends here, and where the walk
/// goes on from here.
#[derive(Debug, Clone)]
struct Node<T> {
    data: Option<T>,
    branch: Option<Branch<T>>,
}

/// The test on one key: exact values first, then globs in the order added; `skip` holds
/// the patterns that do not have this key (they continue with a later key).
#[derive(Debug, Clone)]
struct Branch<T> {
    key: String,
    exact: std::collections::HashMap<String, Node<T>>,
    globs: Vec<(Glob, Node<T>)>,
    skip: Option<Box<Node<T>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self { data: None, branch: None }
    }
}

impl<T> Branch<T> {
    fn new(key: &str) -> Self {
        Self { key: key.to_string(), exact: Default::default(), globs: Vec::new(), skip: None }
    }

    /// The node a pattern value leads to, made if missing: a glob value shares the node
    /// of the same glob text.
    fn child(&mut self, value: &str) -> &mut Node<T> {
        if Glob::is_glob(value) {
            let at = match self.globs.iter().position(|(g, _)| g.text == value) {
                Some(at) => at,
                None => {
                    self.globs.push((Glob::new(value), Node::default()));
                    self.globs.len() - 1
                }
            };
            &mut self.globs[at].1
        } else {
            self.exact.entry(value.to_string()).or_default()
        }
    }

    fn child_ref(&self, value: &str) -> Option<&Node<T>> {
        if Glob::is_glob(value) {
            self.globs.iter().find(|(g, _)| g.text == value).map(|(_, n)| n)
        } else {
            self.exact.get(value)
        }
    }
}

impl<T> Default for Patterns<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Patterns<T> {
    pub fn new() -> Self {
        Self { root: Node::default(), added: Vec::new() }
    }

    /// Adds a pattern; adding the same pattern again replaces its data (as a later
    /// `seneca.add` overrides) and returns the old data.
    pub fn add(&mut self, pattern: &Pattern, data: T) -> Option<T> {
        let fields: Vec<(&str, &str)> = pattern.fields().collect();
        let old = insert(&mut self.root, &fields, data);
        if old.is_none() {
            self.added.push(pattern.clone());
        }
        old
    }

    /// The data of exactly this pattern, if it was added.
    pub fn get(&self, pattern: &Pattern) -> Option<&T> {
        let mut node = &self.root;
        for (key, value) in pattern.fields() {
            node = loop {
                let branch = node.branch.as_ref()?;
                if branch.key == key {
                    break branch.child_ref(value)?;
                }
                if key < branch.key.as_str() {
                    return None;
                }
                node = branch.skip.as_deref()?;
            };
        }
        node.data.as_ref()
    }

    /// The data of the pattern patrun would pick for this message, if any.
    pub fn find(&self, subject: &Map<String, Value>) -> Option<&T> {
        let mut data = self.root.data.as_ref();
        let mut skipped: Vec<&Node<T>> = Vec::new();
        let mut current = Some(&self.root);
        while let Some(node) = current {
            current = match &node.branch {
                None => None,
                Some(branch) => {
                    let value = subject.get(&branch.key);
                    let text = js::js_string(value);
                    match branch.exact.get(&text) {
                        Some(next) => {
                            if let Some(skip) = &branch.skip {
                                skipped.push(skip);
                            }
                            if next.data.is_some() {
                                data = next.data.as_ref();
                            }
                            Some(next)
                        }
                        None if js::OBJECT_PROTOTYPE_NAMES.contains(&text.as_str()) => {
                            if let Some(skip) = &branch.skip {
                                skipped.push(skip);
                            }
                            None
                        }
                        None => match branch.globs.iter().find(|(glob, _)| glob.matches_value(value)) {
                            Some((_, next)) => {
                                if let Some(skip) = &branch.skip {
                                    skipped.push(skip);
                                }
                                if next.data.is_some() {
                                    data = next.data.as_ref();
                                }
                                Some(next)
                            }
                            None => branch.skip.as_deref(),
                        },
                    }
                }
            };
            // A dead end before any data: go back to the latest key we matched and try
            // the patterns that skip it.
            if current.is_none() && data.is_none() {
                current = skipped.pop();
            }
        }
        data
    }

    /// Every pattern with its data, in the order first added (for admin display).
    pub fn list(&self) -> Vec<(&Pattern, &T)> {
        self.added.iter().filter_map(|p| self.get(p).map(|d| (p, d))).collect()
    }

    pub fn len(&self) -> usize {
        self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }
}

/// patrun's insertion: at each node, the pattern's next key either is the node's key
/// (follow its value), comes before it (the node's test moves down into a fresh skip
/// branch and this key takes its place), or comes after it (follow the skip branch and
/// try again there).
fn insert<T>(node: &mut Node<T>, fields: &[(&str, &str)], data: T) -> Option<T> {
    let Some(&(key, value)) = fields.first() else {
        return node.data.replace(data);
    };
    match &mut node.branch {
        None => {
            let branch = node.branch.insert(Branch::new(key));
            insert(branch.child(value), &fields[1..], data)
        }
        Some(branch) if branch.key == key => insert(branch.child(value), &fields[1..], data),
        Some(branch) if key < branch.key.as_str() => {
            let moved = std::mem::replace(branch, Branch::new(key));
            branch.skip = Some(Box::new(Node { data: None, branch: Some(moved) }));
            insert(branch.child(value), &fields[1..], data)
        }
        Some(branch) => insert(branch.skip.get_or_insert_with(Default::default), fields, data),
    }
}

/// A gex glob: `*` any run of characters, `?` exactly one; `**` is a literal `*` and
/// `*?` a literal `?`.
#[derive(Debug, Clone)]
struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Any,
    One,
    Char(char),
}

impl Glob {
    fn is_glob(value: &str) -> bool {
        value.contains(['*', '?'])
    }

    fn new(text: &str) -> Self {
        let mut tokens = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => match chars.peek() {
                    Some('*') => {
                        chars.next();
                        Token::Char('*')
                    }
                    Some('?') => {
                        chars.next();
                        Token::Char('?')
                    }
                    _ => Token::Any,
                },
                '?' => Token::One,
                c => Token::Char(c),
            });
        }
        Self { text: text.to_string(), tokens }
    }

    /// gex's test on a subject value: missing and null never match; arrays and
    /// objects always do (gex filters their members and any result counts).
    fn matches_value(&self, value: Option<&Value>) -> bool {
        match value {
            None | Some(Value::Null) => false,
            Some(Value::Array(_)) | Some(Value::Object(_)) => true,
            Some(scalar) => self.matches(&js::js_string(Some(scalar))),
        }
    }

    /// Wildcard matching with backtracking to the latest `*`.
    fn matches(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let (mut t, mut c) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while c < chars.len() {
            match self.tokens.get(t) {
                Some(Token::Any) => {
                    star = Some((t, c));
                    t += 1;
                }
                Some(Token::One) => {
                    t += 1;
                    c += 1;
                }
                Some(Token::Char(want)) if *want == chars[c] => {
                    t += 1;
                    c += 1;
                }
                _ => match star {
                    Some((st, sc)) => {
                        star = Some((st, sc + 1));
                        t = st + 1;
                        c = sc + 1;
                    }
                    None => return false,
                },
            }
        }
        self.tokens[t..].iter().all(|tok| *tok == Token::Any)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pat(v: Value) -> Pattern {
        Pattern::from_fields(v.as_object().unwrap()).unwrap()
    }

    fn subject(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn table(patterns: &[Value]) -> Patterns<&'static str> {
        let names = ["P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7"];
        let mut t = Patterns::new();
        for (p, name) in patterns.iter().zip(names) {
            t.add(&pat(p.clone()), name);
        }
        t
    }

    fn check(patterns: &[Value], cases: &[(Value, Option<&str>)]) {
        let t = table(patterns);
        for (s, want) in cases {
            assert_eq!(t.find(&subject(s.clone())).copied(), *want, "subject {s} against {patterns:?}");
        }
    }

    #[test]
    fn v1_greedy_walk_not_most_keys() {
        check(&[json!({"a": 1}), json!({"b": 1, "c": 1})], &[(json!({"a": 1, "b": 1, "c": 1}), Some("P0"))]);
    }

    #[test]
    fn v2_stringified_values_and_pairs() {
        check(
            &[json!({"a": 0}), json!({"b": 1}), json!({"c": 2}), json!({"a": 0, "b": 1})],
            &[
                (json!({"a": 0, "c": 2}), Some("P0")),
                (json!({"b": 1, "c": 2}), Some("P1")),
                (json!({"a": 0, "b": 1, "c": 2}), Some("P3")),
                (json!({"a": "0"}), Some("P0")),
            ],
        );
    }

    #[test]
    fn v3_wider_pattern_and_catch_all() {
        check(
            &[json!({"role": "math", "cmd": "sum"}), json!({"role": "math"}), json!({})],
            &[
                (json!({"role": "math", "cmd": "product"}), Some("P1")),
                (json!({"x": 1}), Some("P2")),
                (json!({"role": "math", "cmd": "sum", "extra": 1}), Some("P0")),
            ],
        );
    }

    #[test]
    fn v4_missing_key_never_matches() {
        check(&[json!({"a": 1, "b": 2})], &[(json!({"a": 1}), None)]);
    }

    #[test]
    fn v5_branches_after_a_shared_key() {
        check(
            &[json!({"a": 1}), json!({"a": 1, "b": 2}), json!({"a": 1, "c": 3})],
            &[(json!({"a": 1, "b": 2, "c": 3}), Some("P1")), (json!({"a": 1, "b": 9, "c": 3}), Some("P2"))],
        );
    }

    #[test]
    fn v6_skip_branches_are_tried_on_a_dead_end() {
        check(
            &[json!({"b": 1}), json!({"a": 1, "c": 1})],
            &[(json!({"a": 1, "b": 1, "c": 1}), Some("P1")), (json!({"a": 1, "b": 1, "c": 2}), Some("P0"))],
        );
    }

    #[test]
    fn v7_exact_beats_globs_and_first_added_glob_wins() {
        check(
            &[json!({"a": 0}), json!({"a": "*"}), json!({"a": "x*"})],
            &[(json!({"a": 0}), Some("P0")), (json!({"a": "xy"}), Some("P1")), (json!({"b": 1}), None)],
        );
    }

    #[test]
    fn question_mark_is_one_character() {
        check(
            &[json!({"cmd": "s?m"}), json!({"cmd": "p*"})],
            &[
                (json!({"cmd": "sum"}), Some("P0")),
                (json!({"cmd": "sm"}), None),
                (json!({"cmd": "summ"}), None),
                (json!({"cmd": "product"}), Some("P1")),
                (json!({"cmd": 5}), None),
            ],
        );
    }

    #[test]
    fn glob_escapes_and_odd_values() {
        let literal_star = Glob::new("a**b");
        assert!(literal_star.matches("a*b") && !literal_star.matches("axb"));
        let literal_q = Glob::new("a*?");
        assert!(literal_q.matches("a?") && !literal_q.matches("ab"));
        assert!(Glob::new("*").matches("") && Glob::new("a*b*c").matches("aXbYbc"));
        assert!(!Glob::new("a*b").matches("ab c"));
        // gex: numbers and booleans as their text, null never, arrays and objects always.
        let g = Glob::new("1*");
        assert!(g.matches_value(Some(&json!(12))) && !g.matches_value(Some(&json!(true))));
        assert!(!g.matches_value(Some(&json!(null))) && !g.matches_value(None));
        assert!(g.matches_value(Some(&json!([]))) && g.matches_value(Some(&json!({"x": 1}))));
    }

    #[test]
    fn duplicate_add_replaces_and_get_list_report_it() {
        let mut t = Patterns::new();
        assert_eq!(t.add(&pat(json!({"role": "math"})), 1), None);
        assert_eq!(t.add(&pat(json!({"cmd": "sum", "role": "math"})), 2), None);
        assert_eq!(t.add(&pat(json!({"role": "math"})), 3), Some(1));
        assert_eq!(t.get(&pat(json!({"role": "math"}))), Some(&3));
        assert_eq!(t.get(&pat(json!({"role": "x"}))), None);
        assert_eq!(t.get(&pat(json!({"cmd": "sum"}))), None);
        let listed: Vec<(String, i32)> = t.list().into_iter().map(|(p, d)| (p.to_string(), *d)).collect();
        assert_eq!(listed, vec![("role:math".to_string(), 3), ("cmd:sum,role:math".to_string(), 2)]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn root_data_stops_the_backtracking_as_in_patrun() {
        // With a `{}` pattern there is always data, so patrun never pops a skip branch:
        // {a:1,b:2} finds the catch-all, not {b:2}.
        check(
            &[json!({"a": 1, "b": 1}), json!({"b": 2}), json!({})],
            &[(json!({"a": 1, "b": 2}), Some("P2")), (json!({"b": 2}), Some("P1"))],
        );
        check(&[json!({"a": 1, "b": 1}), json!({"b": 2})], &[(json!({"a": 1, "b": 2}), Some("P1"))]);
    }

    #[test]
    fn missing_null_and_prototype_names_as_patrun_sees_them() {
        check(
            &[json!({"a": "undefined"}), json!({"b": "null"}), json!({"c": "*"}), json!({"d": 1})],
            &[
                (json!({"x": 1}), Some("P0")),
                (json!({"a": 1, "b": null}), Some("P1")),
                (json!({"a": 2, "c": "toString", "d": 1}), Some("P3")),
                (json!({"a": 2, "c": "toString"}), None),
                (json!({"a": 2, "c": "tostring"}), Some("P2")),
            ],
        );
    }

    /// The vectors compared with the real patrun (see `real_patrun_agrees`).
    fn cross_check_vectors() -> Vec<(Vec<Value>, Vec<Value>)> {
        let mut vectors = vec![
            (vec![json!({"a": 1}), json!({"b": 1, "c": 1})], vec![json!({"a": 1, "b": 1, "c": 1})]),
            (
                vec![json!({"a": 0}), json!({"b": 1}), json!({"c": 2}), json!({"a": 0, "b": 1})],
                vec![
                    json!({"a": 0, "c": 2}),
                    json!({"b": 1, "c": 2}),
                    json!({"a": 0, "b": 1, "c": 2}),
                    json!({"a": "0"}),
                ],
            ),
            (
                vec![json!({"role": "math", "cmd": "sum"}), json!({"role": "math"}), json!({})],
                vec![
                    json!({"role": "math", "cmd": "product"}),
                    json!({"x": 1}),
                    json!({"role": "math", "cmd": "sum", "extra": 1}),
                ],
            ),
            (vec![json!({"a": 1, "b": 2})], vec![json!({"a": 1})]),
            (
                vec![json!({"a": 1}), json!({"a": 1, "b": 2}), json!({"a": 1, "c": 3})],
                vec![json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "b": 9, "c": 3})],
            ),
            (
                vec![json!({"b": 1}), json!({"a": 1, "c": 1})],
                vec![json!({"a": 1, "b": 1, "c": 1}), json!({"a": 1, "b": 1, "c": 2})],
            ),
            (
                vec![json!({"a": 0}), json!({"a": "*"}), json!({"a": "x*"})],
                vec![json!({"a": 0}), json!({"a": "xy"}), json!({"b": 1})],
            ),
            (
                vec![json!({"cmd": "s?m"}), json!({"cmd": "p*"}), json!({"cmd": "a**b"}), json!({"cmd": "q*?"})],
                vec![
                    json!({"cmd": "sum"}),
                    json!({"cmd": "sm"}),
                    json!({"cmd": "product"}),
                    json!({"cmd": "a*b"}),
                    json!({"cmd": "axb"}),
                    json!({"cmd": "q?"}),
                    json!({"cmd": [1]}),
                    json!({"cmd": null}),
                ],
            ),
            (
                vec![json!({"a": 1, "b": 1}), json!({"b": 2}), json!({})],
                vec![json!({"a": 1, "b": 2}), json!({"b": 2}), json!({"a": 1, "b": 1, "z": 0})],
            ),
            (
                vec![json!({"a": "undefined"}), json!({"b": "null"}), json!({"c": "*"}), json!({"d": 1})],
                vec![
                    json!({"x": 1}),
                    json!({"a": 1, "b": null}),
                    json!({"a": 2, "c": "toString", "d": 1}),
                    json!({"a": 2, "c": "toString"}),
                    json!({"a": 2, "c": "tostring"}),
                    json!({"c": 1.5, "d": true}),
                ],
            ),
        ];
        // Pseudo-random tables of 3-5 keys with globs, from a fixed-seed generator so
        // failures reproduce.
        let mut seed: u64 = 0x5e_4e_ca;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let keys = ["a", "b", "c", "d", "e"];
        let values = ["0", "1", "x", "*", "x*", "?", "1*"];
        let subject_values = [json!(0), json!(1), json!("x"), json!("xy"), json!("1"), json!(10), json!(true)];
        for _ in 0..10 {
            let mut patterns = Vec::new();
            for _ in 0..(3 + next(3)) {
                let mut p = Map::new();
                for key in keys.iter().take(3 + next(3) as usize) {
                    if next(2) == 0 {
                        p.insert(key.to_string(), json!(values[next(values.len() as u64) as usize]));
                    }
                }
                patterns.push(Value::Object(p));
            }
            let mut subjects = Vec::new();
            for _ in 0..6 {
                let mut s = Map::new();
                for key in keys {
                    if next(4) != 0 {
                        s.insert(key.to_string(), subject_values[next(subject_values.len() as u64) as usize].clone());
                    }
                }
                subjects.push(Value::Object(s));
            }
            vectors.push((patterns, subjects));
        }
        vectors
    }

    fn ours(patterns: &[Value], subjects: &[Value]) -> Vec<Option<usize>> {
        let mut t = Patterns::new();
        for (i, p) in patterns.iter().enumerate() {
            t.add(&pat(p.clone()), i);
        }
        subjects.iter().map(|s| t.find(&subject(s.clone())).copied()).collect()
    }

    /// Runs `tests/clients/seneca_patrun_vectors.js` against the real patrun 7.3 (the CI
    /// installs it with `.ci/node-clients-up.sh`); skips, saying so, where it is not
    /// installed.
    #[test]
    fn real_patrun_agrees() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients");
        if !clients.join("node/node_modules/patrun/package.json").exists() {
            eprintln!("SKIPPED real_patrun_agrees: patrun is not installed (run .ci/node-clients-up.sh)");
            return;
        }
        let vectors = cross_check_vectors();
        let input: Vec<Value> = vectors.iter().map(|(p, s)| json!({"patterns": p, "subjects": s})).collect();
        let mut child = Command::new("node")
            .arg(clients.join("seneca_patrun_vectors.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        child.stdin.take().unwrap().write_all(Value::Array(input).to_string().as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "seneca_patrun_vectors.js failed");
        let theirs: Vec<Vec<Option<usize>>> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(theirs.len(), vectors.len());
        for ((patterns, subjects), theirs) in vectors.iter().zip(theirs) {
            assert_eq!(ours(patterns, subjects), theirs, "patterns {patterns:?}, subjects {subjects:?}");
        }
    }
}
