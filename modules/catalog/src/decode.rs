//! Request bodies as Consul reads them (contract §0.1, §1.2): keys matched without
//! case and without `_` (so `Name`, `name`, `check_id`, `CheckID` all work), unknown
//! keys ignored, `Check` or `Checks`, durations in Go syntax, and Consul's 400 texts.
//! User data (`Meta`, `Header`, `TaggedAddresses`) keeps its keys as given.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::duration;
use crate::model::{CheckKind, CheckRecord, ServiceRecord, Weights};

/// A JSON object whose keys are looked up by their folded form.
#[derive(Debug)]
pub struct Fields<'a> {
    map: BTreeMap<String, &'a Value>,
}

fn fold(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self { map: object.iter().map(|(k, v)| (fold(k), v)).filter(|(_, v)| !v.is_null()).collect() }
    }

    pub fn of(value: &'a Value, what: &str) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Self::new(map)),
            _ => Err(format!("{what} must be an object")),
        }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(&fold(name)).copied()
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{name}: expected a string, got {other}")),
        }
    }

    pub fn string_or_empty(&self, name: &str) -> Result<String, String> {
        Ok(self.string(name)?.unwrap_or_default())
    }

    pub fn boolean(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{name}: expected a boolean, got {other}")),
        }
    }

    pub fn uint(&self, name: &str) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(0),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("{name}: expected a non-negative integer")),
            Some(other) => Err(format!("{name}: expected a number, got {other}")),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("{name}: expected strings")))
                .collect(),
            Some(other) => Err(format!("{name}: expected a list of strings, got {other}")),
        }
    }

    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(format!("{name}.{k}: expected a string, got {other}")),
                })
                .collect(),
            Some(other) => Err(format!("{name}: expected an object, got {other}")),
        }
    }

    pub fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        self.get(name).map_or(Ok(None), |v| duration::from_json(v, name))
    }
}

/// Parses a body as a JSON object, with Consul's decode-failure text.
pub fn body_object(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("Request decode failed: EOF".into());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("Request decode failed: {e}"))?;
    if !value.is_object() {
        return Err("Request decode failed: the body must be a JSON object".into());
    }
    Ok(value)
}

const MIN_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_DEREGISTER_AFTER: Duration = Duration::from_secs(60);
/// Consul truncates check outputs (and notes given as output) to this.
pub const OUTPUT_MAX: usize = 4096;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn check_status(status: &str) -> Result<String, String> {
    match status {
        "passing" | "warning" | "critical" => Ok(status.to_string()),
        _ => Err("Status for checks must 'passing', 'warning', 'critical'".into()),
    }
}

/// A check definition as a client sent it (standalone or inside a registration); `id`
/// and `name` may still be empty, the caller fills Consul's defaults.
pub fn check(f: &Fields<'_>, script_checks: bool) -> Result<CheckRecord, String> {
    let invalid = |e: String| format!("Invalid check: {e}");
    let id = match f.string("CheckID").map_err(invalid)? {
        Some(id) => id,
        None => f.string("ID").map_err(invalid)?.unwrap_or_default(),
    };
    let status = match f.string("Status").map_err(invalid)? {
        Some(s) if !s.is_empty() => check_status(&s)?,
        _ => "critical".to_string(),
    };
    let interval = f.duration("Interval").map_err(invalid)?;
    let timeout = f.duration("Timeout").map_err(invalid)?.filter(|t| !t.is_zero()).unwrap_or(DEFAULT_CHECK_TIMEOUT);
    let need_interval = |kind: &str| -> Result<u64, String> {
        match interval {
            Some(i) if !i.is_zero() => Ok(ms(i.max(MIN_INTERVAL))),
            _ => Err(format!("Invalid check: {kind} checks require an interval")),
        }
    };
    let args = {
        let mut args = f.strings("Args").map_err(invalid)?;
        if args.is_empty() {
            args = f.strings("ScriptArgs").map_err(invalid)?;
        }
        args
    };
    let kind = if let Some(url) = f.string("HTTP").map_err(invalid)?.filter(|s| !s.is_empty()) {
        let mut header = BTreeMap::new();
        if let Some(Value::Object(map)) = f.get("Header") {
            for (k, v) in map {
                let values = match v {
                    Value::Array(list) => list.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => return Err(invalid(format!("Header.{k}: expected a list of strings"))),
                };
                header.insert(k.clone(), values);
            }
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("HTTP: {url:?} is not an http:// or https:// URL")));
        }
        CheckKind::Http {
            url,
            method: f.string("Method").map_err(invalid)?.filter(|m| !m.is_empty()).unwrap_or_else(|| "GET".into()),
            header,
            body: f.string_or_empty("Body").map_err(invalid)?,
            interval_ms: need_interval("HTTP")?,
            timeout_ms: ms(timeout),
        }
    } else if let Some(address) = f.string("TCP").map_err(invalid)?.filter(|s| !s.is_empty()) {
        if !address.contains(':') {
            return Err(invalid(format!("TCP: {address:?} is not host:port")));
        }
        CheckKind::Tcp { address, interval_ms: need_interval("TCP")?, timeout_ms: ms(timeout) }
    } else if !args.is_empty() {
        if !script_checks {
            return Err("Scripts are disabled on this agent; to enable, configure 'enable_script_checks' to true \
                        (modules.config.catalog.enable_script_checks)"
                .into());
        }
        CheckKind::Script { args, interval_ms: need_interval("script")?, timeout_ms: ms(timeout) }
    } else if let Some(ttl) = f.duration("TTL").map_err(invalid)? {
        if ttl.is_zero() {
            return Err(invalid("TTL must be > 0".into()));
        }
        CheckKind::Ttl { ttl_ms: ms(ttl) }
    } else if f.get("Script").is_some() {
        return Err(invalid("'Script' is not supported: use 'Args' (a list, never run through a shell)".into()));
    } else if ["GRPC", "UDP", "H2Ping", "AliasService", "AliasNode", "DockerContainerID", "OSService"]
        .iter()
        .any(|k| f.get(k).is_some())
    {
        return Err(invalid("only HTTP, TCP, TTL and script (Args) checks are supported by this agent".into()));
    } else {
        return Err(invalid(
            "TTL must be > 0 for TTL checks; Interval and one of HTTP, TCP or Args are required otherwise".into(),
        ));
    };
    let deregister_after_ms = f
        .duration("DeregisterCriticalServiceAfter")
        .map_err(invalid)?
        .filter(|d| !d.is_zero())
        .map_or(0, |d| ms(d.max(MIN_DEREGISTER_AFTER)));
    let to_u32 =
        |name: &str| -> Result<u32, String> { Ok(u32::try_from(f.uint(name).map_err(invalid)?).unwrap_or(u32::MAX)) };
    let mut notes = f.string_or_empty("Notes").map_err(invalid)?;
    notes.truncate(OUTPUT_MAX * 4);
    Ok(CheckRecord {
        id,
        name: f.string_or_empty("Name").map_err(invalid)?,
        status,
        notes,
        output: String::new(),
        service_id: f.string_or_empty("ServiceID").map_err(invalid)?,
        service_name: String::new(),
        kind,
        deregister_after_ms,
        critical_since_ms: None,
        success_before_passing: to_u32("SuccessBeforePassing")?,
        failures_before_warning: to_u32("FailuresBeforeWarning")?,
        failures_before_critical: to_u32("FailuresBeforeCritical")?,
        create_index: 0,
    })
}

/// A decoded `PUT /v1/agent/service/register`.
#[derive(Debug)]
pub struct Registration {
    pub service: ServiceRecord,
    pub checks: Vec<CheckRecord>,
}

pub fn registration(body: &[u8], script_checks: bool) -> Result<Registration, String> {
    let value = body_object(body)?;
    let f = Fields::of(&value, "the body")?;
    let decode = |e: String| format!("Request decode failed: {e}");
    let name = f.string("Name").map_err(decode)?.unwrap_or_default();
    if name.is_empty() {
        return Err("Missing service name".into());
    }
    let id = f.string("ID").map_err(decode)?.filter(|s| !s.is_empty()).unwrap_or_else(|| name.clone());
    let address = f.string_or_empty("Address").map_err(decode)?;
    if address == "0.0.0.0" || address == "::" || address == "[::]" {
        return Err("Invalid service address".into());
    }
    let port = match f.get("Port") {
        None => 0,
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or("Invalid service port")?,
        Some(_) => return Err(decode("Port: expected a number".into())),
    };
    let weights = match f.get("Weights") {
        Some(w @ Value::Object(_)) => {
            let wf = Fields::of(w, "Weights")?;
            let passing = wf.uint("Passing").map_err(decode)? as i64;
            let warning = wf.uint("Warning").map_err(decode)? as i64;
            Weights { passing: if passing == 0 { 1 } else { passing }, warning }
        }
        _ => Weights::default(),
    };
    let tagged_addresses = f.get("TaggedAddresses").filter(|v| v.as_object().is_some_and(|m| !m.is_empty())).cloned();
    let service = ServiceRecord {
        id: id.clone(),
        name: name.clone(),
        tags: f.strings("Tags").map_err(decode)?,
        meta: f.string_map("Meta").map_err(decode)?,
        address,
        port,
        tagged_addresses,
        weights,
        enable_tag_override: f.boolean("EnableTagOverride").map_err(decode)?,
        ..Default::default()
    };
    let mut definitions: Vec<&Value> = Vec::new();
    if let Some(check) = f.get("Check").filter(|c| c.as_object().is_some_and(|m| !m.is_empty())) {
        definitions.push(check);
    }
    match f.get("Checks") {
        Some(Value::Array(list)) => definitions.extend(list.iter().filter(|c| !c.is_null())),
        Some(_) => return Err(decode("Checks: expected a list".into())),
        None => {}
    }
    let several = definitions.len() > 1;
    let mut checks = Vec::with_capacity(definitions.len());
    for (i, definition) in definitions.into_iter().enumerate() {
        let cf = Fields::of(definition, "a check").map_err(|e| format!("Invalid check: {e}"))?;
        let mut check = check(&cf, script_checks)?;
        if check.id.is_empty() {
            check.id = if several { format!("service:{id}:{}", i + 1) } else { format!("service:{id}") };
        }
        if check.name.is_empty() {
            check.name = format!("Service '{name}' check");
        }
        check.service_id = id.clone();
        check.service_name = name.clone();
        checks.push(check);
    }
    Ok(Registration { service, checks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn py_consul_and_node_consul_spellings_decode_alike() {
        let py = json!({"name": "web", "id": "web-1", "port": 8080, "tags": ["a"],
            "checks": [{"ttl": "10s"}, {"http": "http://127.0.0.1:1/h", "interval": "5s", "timeout": "1s"}]});
        let r = registration(py.to_string().as_bytes(), false).unwrap();
        assert_eq!((r.service.id.as_str(), r.service.port), ("web-1", 8080));
        assert_eq!(r.checks[0].id, "service:web-1:1");
        assert_eq!(r.checks[1].id, "service:web-1:2");
        assert_eq!(r.checks[0].kind, CheckKind::Ttl { ttl_ms: 10_000 });
        let node = json!({"Name": "api", "Check": {"HTTP": "http://x:1/", "Interval": "10s",
            "deregistercriticalserviceafter": "30s", "status": "passing", "notes": "{\"v\":1}"}});
        let r = registration(node.to_string().as_bytes(), false).unwrap();
        assert_eq!(r.checks[0].id, "service:api");
        assert_eq!(r.checks[0].status, "passing");
        assert_eq!(r.checks[0].deregister_after_ms, 60_000, "raised to Consul's 1 min minimum");
        assert_eq!(r.checks[0].name, "Service 'api' check");
        assert_eq!(r.checks[0].notes, "{\"v\":1}");
        let snake = json!({"name": "s", "checks": [{"check_id": "mine", "tcp": "h:1", "interval": "100ms"}]});
        let r = registration(snake.to_string().as_bytes(), false).unwrap();
        assert_eq!(r.checks[0].id, "mine");
        assert_eq!(r.checks[0].kind.interval_ms(), 1000, "raised to MinInterval");
    }

    #[test]
    fn bad_registrations_get_consuls_texts() {
        let e = |v: Value| registration(v.to_string().as_bytes(), false).unwrap_err();
        assert_eq!(e(json!({"port": 1})), "Missing service name");
        assert_eq!(e(json!({"name": "x", "address": "0.0.0.0"})), "Invalid service address");
        assert!(e(json!({"name": "x", "check": {"ttl": "ten"}})).starts_with("Invalid check: TTL: invalid duration"));
        assert!(e(json!({"name": "x", "check": {"http": "http://a/"}})).contains("require an interval"));
        assert!(e(json!({"name": "x", "check": {"args": ["/bin/true"], "interval": "1s"}})).contains("disabled"));
        assert_eq!(
            e(json!({"name": "x", "check": {"ttl": "1s", "status": "up"}})),
            "Status for checks must 'passing', 'warning', 'critical'"
        );
        assert!(registration(b"{nope", false).unwrap_err().starts_with("Request decode failed"));
        let with_script = json!({"name": "x", "checks": [{"args": ["/bin/true"], "interval": "1s"}]});
        assert!(registration(with_script.to_string().as_bytes(), true).is_ok());
    }
}
