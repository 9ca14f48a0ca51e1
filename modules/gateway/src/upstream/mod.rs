//! An upstream: the instances one route (or every route naming the same catalog
//! service) sends to, with what the gateway learnt about each of them — requests in
//! flight, consecutive failures, ejection — and its keep-alive connections. The
//! instance list is swapped whole when the catalog reports a change; instances that
//! stay keep their state and connections.

mod balance;
mod connection;
#[cfg(test)]
mod connection_tests;
mod error;
mod framing;
mod outlier;
mod pool;
#[cfg(test)]
mod pool_tests;
mod request_head;
mod response_head;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

pub use self::connection::{BoxError, PooledBody, RequestBody, SendError, Switched};
pub use self::error::UpstreamError;
pub use self::outlier::{Outlier, ms_at, now_ms};
pub use self::pool::Pool;
pub use self::request_head::RequestHead;
use crate::metrics::InstanceSeries;
use crate::settings::{Balance, CircuitSettings, OutlierSettings};

/// One reachable instance.
#[derive(Debug)]
pub struct Instance {
    pub addr: SocketAddr,
    /// The catalog's service ID, or the address for static upstreams.
    pub id: String,
    pub weight: u32,
    /// Requests in flight to this instance (least-request balancing).
    active: AtomicU32,
    pub outlier: Outlier,
    pub pool: Arc<Pool>,
    /// This instance's try series, made on its first try.
    pub series: OnceLock<InstanceSeries>,
}

impl Instance {
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a request in flight until the guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an instance is, as the catalog or the route table says.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub addr: SocketAddr,
    pub id: String,
    pub weight: u32,
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    instances: ArcSwap<Vec<Arc<Instance>>>,
    /// Round-robin position.
    turn: AtomicUsize,
    /// Requests in flight through this upstream (circuit breaking).
    active: AtomicUsize,
    /// Requests waiting for a new connection (circuit breaking).
    pending: AtomicUsize,
    outlier_settings: OutlierSettings,
    circuit: CircuitSettings,
}

/// Why no request may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Requests,
    Pending,
}

impl Overflow {
    pub fn as_str(self) -> &'static str {
        match self {
            Overflow::Requests => "requests",
            Overflow::Pending => "pending",
        }
    }
}

impl Upstream {
    pub fn new(name: String, outlier_settings: OutlierSettings, circuit: CircuitSettings) -> Self {
        Self {
            name,
            instances: ArcSwap::from_pointee(Vec::new()),
            turn: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            outlier_settings,
            circuit,
        }
    }

    pub fn instances(&self) -> Arc<Vec<Arc<Instance>>> {
        self.instances.load_full()
    }

    /// Replaces the membership; instances already known keep their state.
    pub fn set_members(&self, members: &[Member]) {
        let current = self.instances.load();
        let known: HashMap<(SocketAddr, &str), &Arc<Instance>> =
            current.iter().map(|i| ((i.addr, i.id.as_str()), i)).collect();
        let next: Vec<Arc<Instance>> = members
            .iter()
            .map(|m| match known.get(&(m.addr, m.id.as_str())) {
                Some(i) if i.weight == m.weight => Arc::clone(i),
                _ => Arc::new(Instance {
                    addr: m.addr,
                    id: m.id.clone(),
                    weight: m.weight.max(1),
                    active: AtomicU32::new(0),
                    outlier: Outlier::default(),
                    pool: Arc::new(Pool::new(m.addr, &self.circuit)),
                    series: OnceLock::new(),
                }),
            })
            .collect();
        self.instances.store(Arc::new(next));
    }

    pub fn members(&self) -> Vec<Member> {
        self.instances.load().iter().map(|i| Member { addr: i.addr, id: i.id.clone(), weight: i.weight }).collect()
    }

    /// Picks an instance not in `tried`, preferring ones not ejected; when every
    /// untried one is ejected they are used anyway (panic mode), and when every
    /// instance was tried, any instance is (an upstream of one retries itself). `now`:
    /// [`now_ms`].
    pub fn pick(&self, policy: Balance, tried: &[SocketAddr], now: u64) -> Option<Arc<Instance>> {
        let list = self.instances.load();
        let untried = |i: &Instance| !tried.contains(&i.addr);
        balance::pick(&list, policy, &self.turn, |i| untried(i) && !i.outlier.is_ejected(now))
            .or_else(|| balance::pick(&list, policy, &self.turn, untried))
            .or_else(|| balance::pick(&list, policy, &self.turn, |_| true))
    }

    /// Admits one request, or says which limit is reached.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, Overflow> {
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.circuit.max_requests {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Overflow::Requests);
        }
        Ok(Admitted(Arc::clone(self)))
    }

    /// Admits one new connection attempt, or says the pending limit is reached.
    pub fn admit_connect(self: &Arc<Self>) -> Result<Connecting, Overflow> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.circuit.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Overflow::Pending);
        }
        Ok(Connecting(Arc::clone(self)))
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Records a failed try and ejects the instance when it has failed too often in a
    /// row, unless too large a share of the upstream is out already. True when it was
    /// ejected now.
    pub fn record_failure(&self, instance: &Instance) -> bool {
        let list = self.instances.load();
        let now = outlier::now_ms();
        let ejected = list.iter().filter(|i| i.outlier.is_ejected(now)).count();
        let allowed = (list.len() * self.outlier_settings.max_ejected_percent as usize / 100).max(1);
        instance.outlier.failure(&self.outlier_settings, now, ejected < allowed)
    }

    pub fn ejected(&self) -> usize {
        let now = outlier::now_ms();
        self.instances.load().iter().filter(|i| i.outlier.is_ejected(now)).count()
    }
}

/// A request counted against the upstream's `max_requests` until dropped.
pub struct Admitted(Arc<Upstream>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection attempt counted against `max_pending` until dropped.
pub struct Connecting(Arc<Upstream>);

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}
