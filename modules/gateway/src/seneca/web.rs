//! seneca-web's REST mapping at the gateway (contract §2.7): route plans written as
//! seneca-web's `routes` option (`{prefix, pin, postfix, map}`) become a table of
//! method + path → pattern; a request that matches becomes the message seneca-web's
//! express adapter would act (`pattern fields + args: {body, route, params, query,
//! user}`), and the action's reply becomes the HTTP response express would send.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value, json};

use super::error::ActError;
use super::message::parse_query;
use super::pin::{Pattern, parse_pin_fields};

/// One seneca-web plan entry: `{prefix, pin, postfix, map}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebRoutes {
    /// Path before every route name (`/api`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// The actions' pattern, with `:*` where each map key goes (`role:todo,cmd:*`).
    pub pin: String,
    /// Path after every route name.
    #[serde(default)]
    pub postfix: Option<String>,
    /// Route name → route, in the order written (express tries routes in that order).
    pub map: RouteMap,
}

/// A plan entry's `map`, keeping the order it was written in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMap(pub Vec<(String, RouteSpec)>);

/// One `map` value: `true` (a GET route) or an object.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteSpec {
    Get,
    Options(RouteOptions),
}

/// A route object: `{GET: true, POST: true, name, suffix, alias, redirect, autoreply}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteOptions {
    /// The verbs set to `true`, upper case, in the order written.
    pub methods: Vec<Method>,
    /// The path part instead of the key (`""` for REST paths like `/user`).
    pub name: Option<String>,
    /// Path after the postfix (`/:id`).
    pub suffix: Option<String>,
    /// The whole path instead of prefix/name/postfix/suffix.
    pub alias: Option<String>,
    /// Answer with a 302 to this URL once the action replied.
    pub redirect: Option<String>,
}

const VERBS: [Method; 7] =
    [Method::GET, Method::POST, Method::PUT, Method::HEAD, Method::DELETE, Method::OPTIONS, Method::PATCH];

impl<'de> Deserialize<'de> for RouteMap {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = RouteMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of route name to `true` or a route object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RouteMap, A::Error> {
                let mut routes = Vec::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    let spec = RouteSpec::from_value(&key, value).map_err(de::Error::custom)?;
                    routes.push((key, spec));
                }
                Ok(RouteMap(routes))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

impl RouteSpec {
    fn from_value(key: &str, value: Value) -> Result<Self, String> {
        let fields = match value {
            Value::Bool(true) => return Ok(RouteSpec::Get),
            Value::Object(fields) => fields,
            Value::Bool(false) => {
                return Err(format!(
                    "route `{key}`: `false` (seneca-web would still map GET for it; write `true` or a route object)"
                ));
            }
            other => return Err(format!("route `{key}`: {other} is neither `true` nor a route object")),
        };
        let mut options = RouteOptions::default();
        let text = |field: &str, v: &Value| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("route `{key}`: `{field}` must be a string, not {other}")),
        };
        for (field, v) in &fields {
            if let Some(verb) = VERBS.iter().find(|m| m.as_str().eq_ignore_ascii_case(field)) {
                match v {
                    Value::Bool(true) => options.methods.push(verb.clone()),
                    Value::Bool(false) => {}
                    other => return Err(format!("route `{key}`: `{field}` must be true or false, not {other}")),
                }
                continue;
            }
            match field.as_str() {
                "name" => options.name = Some(text(field, v)?),
                "suffix" => options.suffix = Some(text(field, v)?),
                "alias" => options.alias = Some(text(field, v)?),
                "redirect" => options.redirect = Some(text(field, v)?),
                "autoreply" => match v {
                    Value::Bool(true) => {}
                    Value::Bool(false) => {
                        return Err(format!(
                            "route `{key}`: `autoreply: false` needs the action to write the HTTP response \
                             itself (response$), which cannot cross a transport"
                        ));
                    }
                    other => return Err(format!("route `{key}`: `autoreply` must be true or false, not {other}")),
                },
                "auth" | "secure" | "middleware" => {
                    return Err(format!("route `{key}`: `{field}` is not supported by the gateway"));
                }
                _ => {
                    return Err(format!(
                        "route `{key}`: unknown field `{field}` (expected GET/POST/PUT/DELETE/PATCH/HEAD/OPTIONS, \
                         name, suffix, alias, redirect, autoreply)"
                    ));
                }
            }
        }
        Ok(RouteSpec::Options(options))
    }
}

/// A mapped route: one method at one path, and the action it calls.
#[derive(Debug, Clone)]
pub struct WebRoute {
    pub method: Method,
    /// The path as express registers it (`/user/:id`).
    pub path: String,
    /// The action's pattern (the pin with `:*` filled in).
    pub pattern: Pattern,
    /// The same, with jsonic's value types, as the message carries them.
    pub fields: Map<String, Value>,
    pub redirect: Option<String>,
    /// seneca-web's mapped-route object, handed to the action as `args.route`.
    pub mapped: Value,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Compared without regard to case, as express does by default.
    Literal(String),
    Param(String),
}

/// A request that matched a route: the route and its `:param` values (decoded text).
#[derive(Debug, Clone)]
pub struct WebMatch {
    pub route: Arc<WebRoute>,
    pub params: Map<String, Value>,
}

impl WebMatch {
    pub fn pattern(&self) -> &Pattern {
        &self.route.pattern
    }

    /// The pattern's fields as the message carries them.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.route.fields
    }
}

/// All mapped routes, in the order express would try them.
#[derive(Debug, Clone, Default)]
pub struct WebTable {
    routes: Vec<Arc<WebRoute>>,
}

impl WebTable {
    /// Maps the plans as seneca-web does. Refused: an empty pin or route name, a pin
    /// that does not read, a route without a verb, path syntax other than whole-segment
    /// `:name` parameters, and the same method + path twice.
    pub fn build(plans: &[WebRoutes]) -> Result<WebTable, String> {
        let mut routes: Vec<Arc<WebRoute>> = Vec::new();
        for plan in plans {
            if plan.pin.trim().is_empty() {
                return Err("a web route plan has an empty `pin`".to_string());
            }
            for (key, spec) in &plan.map.0 {
                for route in map_route(plan, key, spec)? {
                    if let Some(earlier) =
                        routes.iter().find(|r| r.method == route.method && same_shape(&r.segments, &route.segments))
                    {
                        return Err(format!(
                            "web routes: {} {} is mapped twice (to {} and to {})",
                            route.method, route.path, earlier.pattern, route.pattern
                        ));
                    }
                    routes.push(Arc::new(route));
                }
            }
        }
        Ok(WebTable { routes })
    }

    /// The first route (in plan order) for this method and path; `HEAD` is also
    /// served by `GET` routes, as express does. `path` is the request's path, without
    /// or with its query string.
    pub fn find(&self, method: &Method, path: &str) -> Option<WebMatch> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let trimmed = path.strip_prefix('/')?;
        // express's default (non-strict) routing: one trailing slash is optional.
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let parts: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
        self.routes
            .iter()
            .filter(|r| r.method == *method || (*method == Method::HEAD && r.method == Method::GET))
            .find_map(|r| match_segments(&r.segments, &parts).map(|params| WebMatch { route: r.clone(), params }))
    }

    pub fn routes(&self) -> impl Iterator<Item = &WebRoute> {
        self.routes.iter().map(|r| r.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn map_route(plan: &WebRoutes, key: &str, spec: &RouteSpec) -> Result<Vec<WebRoute>, String> {
    if key.is_empty() {
        return Err(format!("web routes of pin `{}`: a route name is empty", plan.pin));
    }
    let pattern_text = plan.pin.replacen(":*", &format!(":{key}"), 1);
    let fields = parse_pin_fields(&pattern_text).map_err(|e| format!("web route `{key}`: {e}"))?;
    let pattern = Pattern::from_fields(&fields).map_err(|e| format!("web route `{key}`: {e}"))?;
    let default = RouteOptions { methods: vec![Method::GET], ..RouteOptions::default() };
    let options = match spec {
        RouteSpec::Get => &default,
        RouteSpec::Options(options) => options,
    };
    if options.methods.is_empty() {
        return Err(format!("web route `{key}` of pin `{}` has no method set to true (GET, POST, …)", plan.pin));
    }
    let part = options.name.clone().unwrap_or_else(|| key.to_string());
    let path = match &options.alias {
        Some(alias) if !alias.is_empty() => posix_join(&["/", alias]),
        _ => posix_join(&[
            "/",
            plan.prefix.as_deref().unwrap_or(""),
            &part,
            plan.postfix.as_deref().unwrap_or(""),
            options.suffix.as_deref().unwrap_or(""),
        ]),
    };
    let segments = parse_path(&path).map_err(|e| format!("web route `{key}`: path {path}: {e}"))?;
    let text_or_false = |v: &Option<String>| v.as_ref().map_or(json!(false), |s| json!(s));
    let mapped = json!({
        "prefix": text_or_false(&plan.prefix),
        "postfix": text_or_false(&plan.postfix),
        "suffix": text_or_false(&options.suffix),
        "part": part,
        "pin": plan.pin,
        "alias": text_or_false(&options.alias),
        "methods": options.methods.iter().map(Method::as_str).collect::<Vec<_>>(),
        "autoreply": true,
        "redirect": text_or_false(&options.redirect),
        "auth": false,
        "middleware": false,
        "secure": false,
        "pattern": pattern_text,
        "path": path,
    });
    Ok(options
        .methods
        .iter()
        .map(|method| WebRoute {
            method: method.clone(),
            path: path.clone(),
            pattern: pattern.clone(),
            fields: fields.clone(),
            redirect: options.redirect.clone(),
            mapped: mapped.clone(),
            segments: segments.clone(),
        })
        .collect())
}

/// `path.posix.join`: the non-empty parts joined with `/`, then `.`/`..`/`//`
/// normalized; a trailing slash stays.
fn posix_join(parts: &[&str]) -> String {
    let joined = parts.iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join("/");
    let mut out: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = format!("/{}", out.join("/"));
    if joined.ends_with('/') && path != "/" {
        path.push('/');
    }
    path
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if let Some(name) = s.strip_prefix(':') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("`{s}`: only whole-segment `:name` parameters are supported"));
                }
                Ok(Segment::Param(name.to_string()))
            } else if s.contains([':', '*', '?', '(', ')', '+']) {
                Err(format!("`{s}`: express path syntax other than `:name` segments is not supported"))
            } else {
                Ok(Segment::Literal(s.to_lowercase()))
            }
        })
        .collect()
}

/// Two routes that match the same requests: same literals (any case), parameters in
/// the same places.
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        })
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Map<String, Value>> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Map::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) => {
                if part.to_lowercase() != *literal {
                    return None;
                }
            }
            Segment::Param(name) => {
                if part.is_empty() {
                    return None;
                }
                params.insert(name.clone(), Value::String(decode_component(part)));
            }
        }
    }
    Some(params)
}

/// `decodeURIComponent` (no `+` → space in paths); the text as it was when malformed.
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return text.to_string(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// The message seneca-web's express adapter acts for a matched request: the pattern's
/// fields plus `args: {body, route, params, query, user: null}`. The body is read as
/// JSON (an empty body is `{}`); `request$`/`response$` would not cross a transport,
/// so they are not made.
pub fn web_message(m: &WebMatch, query: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, ActError> {
    let text = String::from_utf8_lossy(body);
    let body: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(&text).map_err(|_| ActError::invalid_json(&text))?
    };
    let mut message = m.route.fields.clone();
    message.insert(
        "args".to_string(),
        json!({
            "body": body,
            "route": m.route.mapped,
            "params": m.params,
            "query": query.map(parse_query).unwrap_or_default(),
            "user": null,
        }),
    );
    Ok(message)
}

/// The HTTP response for a web route, from the upstream listener's answer: a seneca
/// client counts only 200 as success, so anything else is the action failing, which
/// express answers with 500 (here as JSON carrying the error's `code` and `message`).
/// On success: a `redirect` route answers 302; otherwise 200 with the result as JSON —
/// an object or array, as the client keeps only those; any other result is sent as
/// express sends `null`, an empty body.
pub fn web_reply(upstream_status: StatusCode, upstream_body: &[u8], m: &WebMatch) -> Response<Bytes> {
    let parsed: Option<Value> = serde_json::from_slice(upstream_body).ok();
    if upstream_status != StatusCode::OK || parsed.is_none() && !upstream_body.is_empty() {
        let code = parsed.as_ref().and_then(|v| v.get("code")).cloned().unwrap_or(json!("act_execute"));
        let message =
            parsed.as_ref().and_then(|v| v.get("message").or_else(|| v.get("msg"))).cloned().unwrap_or_else(|| {
                json!(format!("the action {} failed upstream ({upstream_status})", m.route.pattern))
            });
        return response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json; charset=utf-8",
            json!({"code": code, "message": message}).to_string(),
        );
    }
    if let Some(to) = &m.route.redirect {
        let mut r = response(StatusCode::FOUND, "text/plain; charset=utf-8", format!("Found. Redirecting to {to}"));
        if let Ok(location) = http::HeaderValue::from_str(to) {
            r.headers_mut().insert(LOCATION, location);
        }
        return r;
    }
    match parsed {
        Some(result @ (Value::Object(_) | Value::Array(_))) => {
            response(StatusCode::OK, "application/json; charset=utf-8", result.to_string())
        }
        _ => Response::new(Bytes::new()),
    }
}

/// The reply when a web request's body is not JSON: 400, as `express.json()` answers.
pub fn web_bad_request(err: &ActError) -> Response<Bytes> {
    response(
        StatusCode::BAD_REQUEST,
        "application/json; charset=utf-8",
        json!({"code": err.code, "message": err.message}).to_string(),
    )
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's user service, written as seneca-web routes.
    const SEED_004: &str = r#"[{
        "prefix": "/user",
        "pin": "module:user,if:*",
        "map": {
            "list":   {"GET": true, "name": ""},
            "load":   {"GET": true, "name": "", "suffix": "/:id"},
            "edit":   {"PUT": true, "name": "", "suffix": "/:id"},
            "create": {"POST": true, "name": ""},
            "delete": {"DELETE": true, "name": "", "suffix": "/:id"}
        }
    }]"#;

    fn seed_table() -> WebTable {
        let plans: Vec<WebRoutes> = serde_json::from_str(SEED_004).unwrap();
        WebTable::build(&plans).unwrap()
    }

    fn found(t: &WebTable, method: Method, path: &str) -> Option<(String, Value)> {
        t.find(&method, path).map(|m| (m.pattern().to_string(), Value::Object(m.params.clone())))
    }

    #[test]
    fn seed_004_maps_to_the_five_rest_routes() {
        let t = seed_table();
        let listed: Vec<(String, String, String)> =
            t.routes().map(|r| (r.method.to_string(), r.path.clone(), r.pattern.to_string())).collect();
        assert_eq!(
            listed,
            [
                ("GET", "/user", "if:list,module:user"),
                ("GET", "/user/:id", "if:load,module:user"),
                ("PUT", "/user/:id", "if:edit,module:user"),
                ("POST", "/user", "if:create,module:user"),
                ("DELETE", "/user/:id", "if:delete,module:user"),
            ]
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        );
        assert_eq!(found(&t, Method::GET, "/user"), Some(("if:list,module:user".into(), json!({}))));
        assert_eq!(found(&t, Method::GET, "/user/7"), Some(("if:load,module:user".into(), json!({"id": "7"}))));
        assert_eq!(found(&t, Method::PUT, "/user/7"), Some(("if:edit,module:user".into(), json!({"id": "7"}))));
        assert_eq!(found(&t, Method::POST, "/user"), Some(("if:create,module:user".into(), json!({}))));
        assert_eq!(found(&t, Method::DELETE, "/user/7"), Some(("if:delete,module:user".into(), json!({"id": "7"}))));
        assert_eq!(found(&t, Method::POST, "/user/7"), None);
        assert_eq!(found(&t, Method::GET, "/user/7/x"), None);
        assert_eq!(found(&t, Method::GET, "/users"), None);
    }

    #[test]
    fn express_matching_rules() {
        let t = seed_table();
        // Case-insensitive, optional trailing slash, query ignored, params decoded.
        assert_eq!(found(&t, Method::GET, "/USER/"), Some(("if:list,module:user".into(), json!({}))));
        assert_eq!(
            found(&t, Method::GET, "/user/a%20b/?x=1"),
            Some(("if:load,module:user".into(), json!({"id": "a b"})))
        );
        assert_eq!(found(&t, Method::GET, "/user//"), None);
        // HEAD is served by GET routes.
        assert_eq!(found(&t, Method::HEAD, "/user/1").map(|f| f.0), Some("if:load,module:user".into()));
        assert_eq!(found(&t, Method::PATCH, "/user/1"), None);
    }

    #[test]
    fn paths_are_joined_as_seneca_web_joins_them() {
        let plans: Vec<WebRoutes> = serde_json::from_str(
            r#"[{"pin": "role:admin,cmd:*", "prefix": "v1/", "postfix": "/x/../y/", "map": {
                "home": {"GET": true, "post": true, "alias": "home"},
                "logout": {"GET": true, "redirect": "/"},
                "plain": true,
                "off": {"GET": false, "PUT": true}
            }}]"#,
        )
        .unwrap();
        let t = WebTable::build(&plans).unwrap();
        let listed: Vec<String> = t.routes().map(|r| format!("{} {} {}", r.method, r.path, r.pattern)).collect();
        assert_eq!(
            listed,
            [
                "GET /home cmd:home,role:admin",
                "POST /home cmd:home,role:admin",
                "GET /v1/logout/y/ cmd:logout,role:admin",
                "GET /v1/plain/y/ cmd:plain,role:admin",
                "PUT /v1/off/y/ cmd:off,role:admin",
            ]
        );
        let home = t.find(&Method::POST, "/home").unwrap();
        assert_eq!(home.route.mapped["methods"], json!(["GET", "POST"]));
        assert_eq!(home.route.mapped["alias"], "home");
        assert_eq!(home.route.mapped["prefix"], "v1/");
        assert_eq!(home.route.mapped["suffix"], false);
    }

    #[test]
    fn build_errors_are_clear() {
        let cases = [
            (r#"[{"pin": "", "map": {"a": true}}]"#, "empty `pin`"),
            (r#"[{"pin": "role:x,cmd:*", "map": {"a": {"name": "a"}}}]"#, "no method set to true"),
            (
                r#"[{"pin": "role:x,cmd:*", "map": {"a": true, "b": {"GET": true, "alias": "/a"}}}]"#,
                "GET /a is mapped twice (to cmd:a,role:x and to cmd:b,role:x)",
            ),
            (
                r#"[{"pin": "role:x,cmd:*", "map": {"a": {"GET": true, "suffix": "/:id"}, "b": {"GET": true, "alias": "/A/:other"}}}]"#,
                "GET /A/:other is mapped twice",
            ),
            (r#"[{"pin": "role:x,cmd", "map": {"a": true}}]"#, "`cmd` is not `key:value`"),
            (
                r#"[{"pin": "role:x,cmd:*", "map": {"a": {"GET": true, "suffix": "/:id?"}}}]"#,
                "only whole-segment `:name` parameters",
            ),
        ];
        for (text, want) in cases {
            let plans: Vec<WebRoutes> = serde_json::from_str(text).unwrap();
            let err = WebTable::build(&plans).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
        let refused = [
            (r#"[{"pin": "a:*", "map": {"a": false}}]"#, "seneca-web would still map GET"),
            (r#"[{"pin": "a:*", "map": {"a": {"GET": true, "autoreply": false}}}]"#, "cannot cross a transport"),
            (r#"[{"pin": "a:*", "map": {"a": {"GET": true, "auth": {}}}}]"#, "`auth` is not supported"),
            (r#"[{"pin": "a:*", "map": {"a": {"GET": "yes"}}}]"#, "`GET` must be true or false"),
            (r#"[{"pin": "a:*", "map": {"a": {"GET": true, "nmae": ""}}}]"#, "unknown field `nmae`"),
            (r#"[{"pin": "a:*", "map": {}, "prefx": "/"}]"#, "unknown field `prefx`"),
        ];
        for (text, want) in refused {
            let err = serde_json::from_str::<Vec<WebRoutes>>(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_message_carries_fields_and_args() {
        let t = seed_table();
        let m = t.find(&Method::PUT, "/user/2").unwrap();
        let msg = web_message(&m, Some("verbose=1&tag=a&tag=b"), br#"{"name":"carol"}"#).unwrap();
        assert_eq!(msg["module"], "user");
        assert_eq!(msg["if"], "edit");
        assert_eq!(msg["args"]["body"], json!({"name": "carol"}));
        assert_eq!(msg["args"]["params"], json!({"id": "2"}));
        assert_eq!(msg["args"]["query"], json!({"verbose": "1", "tag": ["a", "b"]}));
        assert_eq!(msg["args"]["user"], Value::Null);
        assert_eq!(msg["args"]["route"]["pattern"], "module:user,if:edit");
        assert_eq!(msg["args"]["route"]["path"], "/user/:id");
        assert_eq!(msg["args"]["route"]["part"], "");
        let empty = web_message(&t.find(&Method::GET, "/user").unwrap(), None, b"").unwrap();
        assert_eq!(empty["args"]["body"], json!({}));
        assert_eq!(empty["args"]["query"], json!({}));
        let err = web_message(&m, None, b"{oops").unwrap_err();
        assert_eq!(err.code, "invalid_json");
        assert_eq!(web_bad_request(&err).status(), 400);
    }

    #[test]
    fn typed_pin_values_reach_the_message() {
        let plans: Vec<WebRoutes> =
            serde_json::from_str(r#"[{"pin": "role:x,v:2,cmd:*", "map": {"get": true}}]"#).unwrap();
        let t = WebTable::build(&plans).unwrap();
        let m = t.find(&Method::GET, "/get").unwrap();
        assert_eq!(m.fields()["v"], json!(2));
        assert_eq!(m.pattern().get("v"), Some("2"));
    }

    #[test]
    fn replies_as_express_sends_them() {
        let t = seed_table();
        let m = t.find(&Method::GET, "/user").unwrap();
        let ok = web_reply(StatusCode::OK, br#"[{"id":"1"}]"#, &m);
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.body().as_ref(), br#"[{"id":"1"}]"#);
        assert_eq!(ok.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
        let null = web_reply(StatusCode::OK, b"null", &m);
        assert_eq!((null.status(), null.body().len()), (StatusCode::OK, 0));
        let failed = web_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"code":"act_execute","message":"seneca: Action if:list,module:user failed: boom."}"#,
            &m,
        );
        assert_eq!(failed.status(), 500);
        let body: Value = serde_json::from_slice(failed.body()).unwrap();
        assert_eq!(body, json!({"code": "act_execute", "message": "seneca: Action if:list,module:user failed: boom."}));
        // A result with statusCode makes the listener answer 201: the client calls that
        // a failure.
        assert_eq!(web_reply(StatusCode::CREATED, br#"{"statusCode":201}"#, &m).status(), 500);
        assert_eq!(web_reply(StatusCode::OK, b"<html>", &m).status(), 500);

        let plans: Vec<WebRoutes> = serde_json::from_str(
            r#"[{"pin": "role:admin,cmd:*", "map": {"logout": {"GET": true, "redirect": "/bye"}}}]"#,
        )
        .unwrap();
        let t = WebTable::build(&plans).unwrap();
        let m = t.find(&Method::GET, "/logout").unwrap();
        let r = web_reply(StatusCode::OK, b"{}", &m);
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()[LOCATION], "/bye");
    }
}
