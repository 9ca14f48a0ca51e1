//! Consul's `?filter=` expressions, the subset clients send: `Selector == "v"`, `!=`,
//! `"v" in Selector`, `not in`, `Selector contains "v"`, `not contains`,
//! `Selector is empty`, `is not empty`, joined with `and`, `or`, `not` and parentheses.
//! A selector is a dotted path into the answer's JSON (`Service`, `Tags`, `Meta.env`,
//! `Service.Tags`, `Checks.Status`); through a list it means "any element". Anything
//! else (`matches`, unknown words) is refused with a 400, never ignored: a client asking
//! for a subset must not silently get everything.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Op(&'static str),
    Open,
    Close,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == '=' && chars.get(i + 1) == Some(&'=') {
            out.push(Token::Op("=="));
            i += 2;
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            out.push(Token::Op("!="));
            i += 2;
        } else if c == '"' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c == '"' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Token::Text(s));
        } else if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_.-".contains(chars[i])) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected {c:?}"));
        }
    }
    Ok(out)
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Equal(String, String),
    Contains(String, String),
    Empty(String),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

fn is_word(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w == word)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn peek2(&self) -> Option<&Token> {
        self.tokens.get(self.at + 1)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while is_word(self.peek(), "or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while is_word(self.peek(), "and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if is_word(self.peek(), "not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("missing ')'".into());
            }
            return Ok(inner);
        }
        self.condition()
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Text(s)) => Ok(s),
            Some(Token::Word(w)) if w.parse::<f64>().is_ok() || w == "true" || w == "false" => Ok(w),
            other => Err(format!("expected a value, got {other:?}")),
        }
    }

    fn selector(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) if !["and", "or", "not", "in", "is", "contains"].contains(&w.as_str()) => Ok(w),
            other => Err(format!("expected a selector, got {other:?}")),
        }
    }

    fn condition(&mut self) -> Result<Filter, String> {
        // `"v" in Selector` / `"v" not in Selector`
        if matches!(self.peek(), Some(Token::Text(_)))
            || (matches!(self.peek(), Some(Token::Word(_)))
                && (is_word(self.peek2(), "in") || is_word(self.peek2(), "not")))
        {
            let value = self.value()?;
            let negated = is_word(self.peek(), "not");
            if negated {
                self.at += 1;
            }
            if !is_word(self.peek(), "in") {
                return Err("expected 'in'".into());
            }
            self.at += 1;
            let found = Filter::Contains(self.selector()?, value);
            return Ok(if negated { Filter::Not(Box::new(found)) } else { found });
        }
        let selector = self.selector()?;
        match self.next() {
            Some(Token::Op("==")) => Ok(Filter::Equal(selector, self.value()?)),
            Some(Token::Op("!=")) => Ok(Filter::Not(Box::new(Filter::Equal(selector, self.value()?)))),
            Some(Token::Word(w)) if w == "contains" => Ok(Filter::Contains(selector, self.value()?)),
            Some(Token::Word(w)) if w == "not" => {
                if !is_word(self.peek(), "contains") {
                    return Err("expected 'contains' after 'not'".into());
                }
                self.at += 1;
                Ok(Filter::Not(Box::new(Filter::Contains(selector, self.value()?))))
            }
            Some(Token::Word(w)) if w == "is" => {
                let negated = is_word(self.peek(), "not");
                if negated {
                    self.at += 1;
                }
                if !is_word(self.peek(), "empty") {
                    return Err("expected 'empty'".into());
                }
                self.at += 1;
                let empty = Filter::Empty(selector);
                Ok(if negated { Filter::Not(Box::new(empty)) } else { empty })
            }
            Some(Token::Word(w)) if w == "matches" => Err("'matches' is not supported by this agent".into()),
            other => Err(format!("expected an operator after {selector}, got {other:?}")),
        }
    }
}

impl Filter {
    /// Parses a filter; the error is Consul's 400 text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |e: String| format!("Failed to create boolean expression evaluator: {e}");
        let mut parser = Parser { tokens: tokens(text).map_err(bad)?, at: 0 };
        let filter = parser.or().map_err(bad)?;
        if parser.at != parser.tokens.len() {
            return Err(bad(format!("unexpected {:?}", parser.tokens[parser.at])));
        }
        Ok(filter)
    }

    pub fn matches(&self, item: &Value) -> bool {
        match self {
            Self::And(a, b) => a.matches(item) && b.matches(item),
            Self::Or(a, b) => a.matches(item) || b.matches(item),
            Self::Not(a) => !a.matches(item),
            Self::Equal(selector, value) => select(item, selector).iter().any(|v| same(v, value)),
            Self::Contains(selector, value) => select(item, selector).iter().any(|v| match v {
                Value::Array(list) => list.iter().any(|x| same(x, value)),
                Value::Object(map) => map.contains_key(value),
                Value::String(s) => s.contains(value.as_str()),
                _ => false,
            }),
            Self::Empty(selector) => select(item, selector).iter().all(|v| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            }),
        }
    }
}

/// The request's `?filter=`, parsed (a 400 with Consul's text when it does not parse).
pub fn of(req: &plugin_api::Request) -> Result<Option<Filter>, crate::wire::Fail> {
    match req.query_param("filter") {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => Filter::parse(&text).map(Some).map_err(crate::wire::Fail::bad_request),
    }
}

/// Keeps the elements of a list, or the values of a map, that `filter` matches.
pub fn apply(filter: Option<&Filter>, value: Value) -> Value {
    let Some(filter) = filter else { return value };
    match value {
        Value::Array(list) => Value::Array(list.into_iter().filter(|v| filter.matches(v)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| filter.matches(v)).collect()),
        other => other,
    }
}

fn same(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Number(n) => n.to_string() == text,
        Value::Bool(b) => b.to_string() == text,
        _ => false,
    }
}

/// Every value `path` reaches in `item` (a list on the way fans out).
fn select<'a>(item: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![item];
    for part in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Object(map) => {
                    if let Some(x) = map.get(part) {
                        next.push(x);
                    }
                }
                Value::Array(list) => {
                    next.extend(list.iter().filter_map(|x| x.get(part)));
                }
                _ => {}
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_subset_clients_send_filters_like_consul() {
        let web = json!({"Service": "web", "Tags": ["v1", "blue"], "Meta": {"env": "prod"}, "Port": 80,
                         "Checks": [{"Status": "passing"}, {"Status": "critical"}]});
        let ok = |f: &str| Filter::parse(f).unwrap().matches(&web);
        assert!(ok(r#"Service == "web""#));
        assert!(!ok(r#"Service != "web""#));
        assert!(ok(r#""v1" in Tags and Meta.env == "prod""#));
        assert!(ok(r#"Tags contains "blue" or Service == "x""#));
        assert!(ok(r#"not (Service == "db") and Port == 80"#));
        assert!(ok(r#""green" not in Tags"#));
        assert!(ok(r#"Checks.Status == "critical""#), "through a list: any element");
        assert!(ok("Meta is not empty"));
        assert!(!ok("Tags is empty"));
        assert!(ok(r#"Meta contains "env""#));
        for bad in [r#"Service matches "w.*""#, r#"Service = "web""#, r#"Service == "web"#, "Service ==", "(Service"] {
            let e = Filter::parse(bad).unwrap_err();
            assert!(e.starts_with("Failed to create boolean expression evaluator"), "{bad}: {e}");
        }
    }
}
