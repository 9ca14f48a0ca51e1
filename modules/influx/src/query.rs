//! The series routes' InfluxQL: request parameters are validated (fields and
//! aggregates against whitelists, times parsed, the range and point count bounded),
//! and whatever text does reach the query (service name, host tag, instance, database
//! and retention policy names) goes through [`identifier`] or [`literal`], never
//! pasted. Also turns InfluxDB's answer into `[[time_ms, value], …]` for charts.

use serde_json::{Value, json};

use crate::sample::{HOST, INSTANCE, SERVICE};
use crate::timespec::{parse_duration, parse_time};

/// Numeric fields a chart can be drawn from, per measurement.
pub const SERVICE_FIELDS: &[&str] =
    &["cpu_percent", "rss_bytes", "threads", "up", "instances_running", "restarts", "health_failures"];
pub const INSTANCE_FIELDS: &[&str] = &["cpu_percent", "rss_bytes", "threads"];
pub const HOST_FIELDS: &[&str] = &[
    "cpu_busy_percent",
    "load_1m",
    "load_5m",
    "load_15m",
    "mem_total_bytes",
    "mem_available_bytes",
    "mem_used_percent",
    "swap_used_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "uptime_secs",
    "services",
    "services_running",
];
pub const AGGREGATES: &[&str] = &["mean", "max", "min", "last", "first", "sum", "median"];

/// Most points one answer may hold (raw points are cut there; an `every` that would
/// give more buckets is refused).
pub const MAX_POINTS: i64 = 10_000;
/// Longest range one request may span.
const MAX_RANGE_MS: i64 = 400 * 86_400_000;
const MAX_NAME: usize = 256;

/// A double-quoted InfluxQL identifier. InfluxQL's scanner reads `\\`, `\"` and `\n`
/// inside quotes and rejects a raw line break, so those are escaped.
pub fn identifier(s: &str) -> String {
    quote(s, '"')
}

/// A single-quoted InfluxQL string literal (same escaping rules as identifiers).
pub fn literal(s: &str) -> String {
    quote(s, '\'')
}

fn quote(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// What a series request asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    /// `None`: the host's own series.
    pub service: Option<String>,
    pub instance: Option<u64>,
    pub field: String,
    pub aggregate: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// `None`: raw points, as written.
    pub every_ms: Option<i64>,
}

impl SeriesRequest {
    /// From the route's parameters; `param` looks up one query-string parameter. The
    /// error is a message for a 400.
    pub fn parse(
        service: Option<&str>,
        param: impl Fn(&str) -> Option<String>,
        now_ms: i64,
        interval_ms: i64,
    ) -> Result<Self, String> {
        if let Some(name) = service
            && (name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control))
        {
            return Err(format!("service name must be 1 to {MAX_NAME} printable characters"));
        }
        let instance = match param("instance") {
            None => None,
            Some(_) if service.is_none() => return Err("instance applies to service series only".into()),
            Some(v) => Some(v.parse::<u64>().map_err(|_| format!("instance must be a number, got {v:?}"))?),
        };
        let fields = match (service, instance) {
            (None, _) => HOST_FIELDS,
            (Some(_), None) => SERVICE_FIELDS,
            (Some(_), Some(_)) => INSTANCE_FIELDS,
        };
        let field = param("field").unwrap_or_else(|| fields[0].to_string());
        if !fields.contains(&field.as_str()) {
            return Err(format!("field must be one of {}, got {field:?}", fields.join(", ")));
        }
        let aggregate = param("agg").unwrap_or_else(|| "mean".into());
        if !AGGREGATES.contains(&aggregate.as_str()) {
            return Err(format!("agg must be one of {}, got {aggregate:?}", AGGREGATES.join(", ")));
        }
        let to_ms = match param("to") {
            Some(t) => parse_time(&t, now_ms).map_err(|e| format!("to: {e}"))?,
            None => now_ms,
        };
        let from_ms = match param("from") {
            Some(f) => parse_time(&f, now_ms).map_err(|e| format!("from: {e}"))?,
            None => to_ms.saturating_sub(3_600_000),
        };
        if from_ms >= to_ms {
            return Err(format!("from ({from_ms}) must be before to ({to_ms})"));
        }
        // Checked: extreme times must be refused, not wrap past the range check.
        if to_ms.checked_sub(from_ms).is_none_or(|span| span > MAX_RANGE_MS) {
            return Err(format!("the range may span at most {} days", MAX_RANGE_MS / 86_400_000));
        }
        let every_ms = match param("every") {
            None => None,
            Some(e) => {
                let ms = parse_duration(&e).map_err(|e| format!("every: {e}"))?;
                if ms < 1000 {
                    return Err("every must be at least 1s".into());
                }
                if (to_ms - from_ms) / ms > MAX_POINTS {
                    return Err(format!(
                        "every={e} gives over {MAX_POINTS} points for this range; use at least {}s",
                        (to_ms - from_ms) / MAX_POINTS / 1000 + 1
                    ));
                }
                Some(ms)
            }
        };
        // Raw points at the sampling interval: refuse a range that could not fit, and
        // say which `every` would.
        if every_ms.is_none() && (to_ms - from_ms) / interval_ms.max(1) > MAX_POINTS {
            return Err(format!(
                "this range holds over {MAX_POINTS} raw points; add every= (at least {}s)",
                (to_ms - from_ms) / MAX_POINTS / 1000 + 1
            ));
        }
        Ok(Self { service: service.map(str::to_string), instance, field, aggregate, from_ms, to_ms, every_ms })
    }

    pub fn measurement(&self) -> &'static str {
        match (&self.service, self.instance) {
            (None, _) => HOST,
            (Some(_), None) => SERVICE,
            (Some(_), Some(_)) => INSTANCE,
        }
    }

    /// The InfluxQL statement.
    pub fn influxql(&self, host_tag: &str, retention_policy: Option<&str>) -> String {
        let from = match retention_policy {
            Some(rp) => format!("{}.{}", identifier(rp), identifier(self.measurement())),
            None => identifier(self.measurement()),
        };
        let mut conditions = vec![format!("{} = {}", identifier("host"), literal(host_tag))];
        if let Some(service) = &self.service {
            conditions.push(format!("{} = {}", identifier("service"), literal(service)));
        }
        if let Some(instance) = self.instance {
            conditions.push(format!("{} = {}", identifier("instance"), literal(&instance.to_string())));
        }
        conditions.push(format!("time >= {}ms AND time <= {}ms", self.from_ms, self.to_ms));
        let field = identifier(&self.field);
        let value = identifier("value");
        let filter = conditions.join(" AND ");
        match self.every_ms {
            Some(every) => format!(
                "SELECT {}({field}) AS {value} FROM {from} WHERE {filter} GROUP BY time({every}ms) fill(none)",
                self.aggregate
            ),
            None => {
                format!("SELECT {field} AS {value} FROM {from} WHERE {filter} ORDER BY time ASC LIMIT {MAX_POINTS}")
            }
        }
    }

    /// The route's answer from the statement's result.
    pub fn answer(&self, result: &Value) -> Value {
        let points = points(result);
        json!({
            "service": self.service,
            "instance": self.instance,
            "measurement": self.measurement(),
            "field": self.field,
            "from": self.from_ms,
            "to": self.to_ms,
            "every_ms": self.every_ms,
            "aggregate": self.every_ms.map(|_| &self.aggregate),
            "truncated": self.every_ms.is_none() && points.len() as i64 >= MAX_POINTS,
            "points": points,
        })
    }
}

/// `[[time_ms, value], …]` from `{"series":[{"columns":["time","value"],"values":[…]}]}`;
/// empty buckets (null values) are left out.
pub fn points(result: &Value) -> Vec<(i64, f64)> {
    let Some(series) = result["series"].as_array() else { return Vec::new() };
    series
        .iter()
        .flat_map(|s| s["values"].as_array().into_iter().flatten())
        .filter_map(|row| Some((row.get(0)?.as_i64()?, row.get(1)?.as_f64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: i64 = 1_800_000_000_000;

    fn req(service: Option<&str>, query: &[(&str, &str)]) -> Result<SeriesRequest, String> {
        let q: HashMap<String, String> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SeriesRequest::parse(service, |k| q.get(k).cloned(), NOW, 1000)
    }

    #[test]
    fn quoting_cannot_be_escaped_from() {
        assert_eq!(identifier("apollo_service"), r#""apollo_service""#);
        assert_eq!(identifier(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(literal("it's"), r"'it\'s'");
        assert_eq!(literal("x' OR 1=1 --"), r"'x\' OR 1=1 --'");
        assert_eq!(literal("a\\"), r"'a\\'", "a trailing backslash cannot eat the closing quote");
        assert_eq!(literal("a\nb"), r"'a\nb'");
    }

    #[test]
    fn defaults_and_the_statement() {
        let r = req(Some("api"), &[]).unwrap();
        assert_eq!((r.field.as_str(), r.from_ms, r.to_ms, r.every_ms), ("cpu_percent", NOW - 3_600_000, NOW, None));
        assert_eq!(
            r.influxql("box", None),
            format!(
                r#"SELECT "cpu_percent" AS "value" FROM "apollo_service" WHERE "host" = 'box' AND "service" = 'api' AND time >= {}ms AND time <= {NOW}ms ORDER BY time ASC LIMIT 10000"#,
                NOW - 3_600_000
            )
        );
        let r =
            req(Some("o'neil"), &[("field", "rss_bytes"), ("every", "1m"), ("agg", "max"), ("from", "-2h")]).unwrap();
        assert_eq!(
            r.influxql("b\"x", Some("two weeks")),
            format!(
                r#"SELECT max("rss_bytes") AS "value" FROM "two weeks"."apollo_service" WHERE "host" = 'b"x' AND "service" = 'o\'neil' AND time >= {}ms AND time <= {NOW}ms GROUP BY time(60000ms) fill(none)"#,
                NOW - 7_200_000
            )
        );
        let i = req(Some("api"), &[("instance", "2"), ("field", "threads")]).unwrap();
        assert_eq!(i.measurement(), "apollo_instance");
        assert!(i.influxql("h", None).contains(r#""instance" = '2'"#));
        let h = req(None, &[("field", "load_1m")]).unwrap();
        assert_eq!(h.measurement(), "apollo_host");
        assert!(!h.influxql("h", None).contains("service"));
    }

    #[test]
    fn refuses_what_is_not_whitelisted_or_bounded() {
        let bad = [
            (Some("api"), vec![("field", "cpu_percent\" FROM x --")]),
            (Some("api"), vec![("field", "state")]),
            (Some("api"), vec![("field", "load_1m")]),
            (Some("api"), vec![("instance", "1"), ("field", "restarts")]),
            (Some("api"), vec![("instance", "one")]),
            (None, vec![("instance", "1")]),
            (Some("api"), vec![("agg", "count); DROP DATABASE x")]),
            (Some("api"), vec![("from", "now"), ("to", "-1h")]),
            (Some("api"), vec![("from", "yesterday")]),
            (Some("api"), vec![("every", "500ms")]),
            (Some("api"), vec![("from", "-30d"), ("every", "10s")]),
            (Some("api"), vec![("from", "-1d")]),
            (Some("api"), vec![("from", "-500d"), ("every", "1d")]),
            (Some(""), vec![]),
            (Some("a\nb"), vec![]),
        ];
        for (service, query) in bad {
            assert!(req(service, &query).is_err(), "{service:?} {query:?}");
        }
        assert!(req(Some("api"), &[("from", "-1d"), ("every", "1m")]).is_ok());
    }

    #[test]
    fn answer_from_influx_result() {
        let r = req(Some("api"), &[]).unwrap();
        let result = json!({"statement_id": 0, "series": [{"name": "apollo_service", "columns": ["time", "value"],
            "values": [[1000, 1.5], [2000, null], [3000, 7]]}]});
        let a = r.answer(&result);
        assert_eq!(a["points"], json!([[1000, 1.5], [3000, 7.0]]));
        assert_eq!(
            (a["service"].as_str(), a["field"].as_str(), a["truncated"].as_bool()),
            (Some("api"), Some("cpu_percent"), Some(false))
        );
        assert_eq!(r.answer(&json!({"statement_id": 0}))["points"], json!([]));
    }
}
