//! Blocking queries (contract §1.4): `?index=` and `?wait=` parsed and checked, then
//! the query is answered at once when its index moved past the client's, else parked
//! on its topics until a relevant change or the deadline (`wait` + up to `wait/16` of
//! jitter, capped at 10 min), re-run, and answered with the current index.

use std::sync::Arc;
use std::time::Duration;

use plugin_api::Request;
use plugin_api::tokio::time::{Instant, timeout_at};
use rand::Rng;

use crate::replica::Replica;
use crate::state::State;
use crate::wire::Fail;

/// Consul's default `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's cap on `wait`.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// The route timeout of blocking endpoints: above the longest wait plus its jitter.
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(660);

/// A client's blocking parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    pub index: u64,
    pub wait: Duration,
}

impl Blocking {
    pub fn from_request(req: &Request) -> Result<Self, Fail> {
        let index = match req.query_param("index") {
            None => 0,
            Some(v) if v.is_empty() => 0,
            Some(v) => v.parse().map_err(|_| Fail::bad_request("Invalid index"))?,
        };
        let wait = match req.query_param("wait") {
            None => DEFAULT_WAIT,
            Some(v) if v.is_empty() => DEFAULT_WAIT,
            Some(v) => crate::duration::parse(&v).map_err(|e| Fail::bad_request(format!("Invalid wait time: {e}")))?,
        };
        Ok(Self { index, wait: wait.min(MAX_WAIT) })
    }

    /// How long this query may be held: `wait` plus a uniform jitter of up to `wait/16`.
    pub fn hold(&self) -> Duration {
        let jitter_ms = (self.wait.as_millis() / 16) as u64;
        let jitter = if jitter_ms > 0 { rand::rng().random_range(0..=jitter_ms) } else { 0 };
        self.wait + Duration::from_millis(jitter)
    }
}

/// Runs `query` (which answers its result and index from the state) until its index
/// passes the client's or the hold ends. The watch is registered before each run, so
/// a change between the run and the wait is not missed.
/// Handlers parse [`Blocking`] and drop their request before calling this: a parked
/// query keeps only what it needs.
pub async fn run<T>(
    replica: &Arc<Replica>,
    parked: &plugin_api::metrics::Gauge,
    blocking: Blocking,
    topics: Vec<String>,
    query: impl Fn(&State) -> Result<(T, u64), Fail>,
) -> Result<(T, u64), Fail> {
    if blocking.index == 0 {
        return query(&replica.read());
    }
    let deadline = Instant::now() + blocking.hold();
    let mut parked_guard: Option<Parked<'_>> = None;
    loop {
        let mut watch = replica.watchers.watch(&topics);
        let (value, index) = query(&replica.read())?;
        // An index that went backwards (a restore) is answered too: the client resets.
        if index != blocking.index || Instant::now() >= deadline {
            return Ok((value, index));
        }
        parked_guard.get_or_insert_with(|| Parked::new(parked));
        if timeout_at(deadline, watch.changed()).await.is_err() {
            return query(&replica.read());
        }
    }
}

/// Counts a parked query in the gauge for as long as it lives: also when the host
/// drops the request (the client went away) while it waits.
struct Parked<'a>(&'a plugin_api::metrics::Gauge);

impl<'a> Parked<'a> {
    fn new(gauge: &'a plugin_api::metrics::Gauge) -> Self {
        gauge.add(1.0);
        Self(gauge)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.add(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::testing::TestRequest;

    fn parse(target: &str) -> Result<Blocking, Fail> {
        // TestRequest builds the same Request the host does.
        let (_, query) = target.split_once('?').unwrap_or((target, ""));
        let _ = TestRequest::get(target);
        let req = Request { query: query.to_string(), ..Request::default() };
        Blocking::from_request(&req)
    }

    #[test]
    fn index_and_wait_are_checked() {
        assert_eq!(parse("/x?index=5&wait=10s").unwrap(), Blocking { index: 5, wait: Duration::from_secs(10) });
        assert_eq!(parse("/x").unwrap().wait, DEFAULT_WAIT);
        assert_eq!(parse("/x?wait=1h").unwrap().wait, MAX_WAIT);
        assert_eq!(parse("/x?index=abc").unwrap_err(), Fail::bad_request("Invalid index"));
        assert!(parse("/x?wait=10").unwrap_err().message.starts_with("Invalid wait time"));
        let b = Blocking { index: 1, wait: Duration::from_secs(16) };
        for _ in 0..20 {
            let hold = b.hold();
            assert!(hold >= Duration::from_secs(16) && hold <= Duration::from_secs(17));
        }
    }
}
