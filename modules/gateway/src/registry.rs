//! Every upstream the gateway knows, by name: one per catalog service (shared by the
//! routes and Seneca patterns that name it, filled by [`crate::discovery`]) and one per
//! route with static upstreams. Rebuilding the route table asks here, so an upstream
//! that stays keeps its instances' state and connections across a table swap.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::settings::{CircuitSettings, OutlierSettings};
use crate::table::Target;
use crate::upstream::{Member, Upstream};

#[derive(Debug)]
pub struct Registry {
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
    outlier: OutlierSettings,
    circuit: CircuitSettings,
    /// The catalog services routes name; discovery watches these (and, for Seneca,
    /// every service the catalog lists).
    wanted: watch::Sender<BTreeSet<String>>,
}

impl Registry {
    pub fn new(outlier: OutlierSettings, circuit: CircuitSettings) -> Self {
        Self { upstreams: Mutex::default(), outlier, circuit, wanted: watch::Sender::new(BTreeSet::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Upstream>>> {
        self.upstreams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream a route sends to, made on first use.
    pub fn resolve(&self, route: &str, target: &Target) -> Arc<Upstream> {
        let name = target.upstream_name(route);
        let upstream = Arc::clone(
            self.lock()
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Upstream::new(name, self.outlier.clone(), self.circuit.clone()))),
        );
        match target {
            Target::Static(members) => {
                let members: Vec<Member> = members
                    .iter()
                    .map(|(addr, weight)| Member { addr: *addr, id: addr.to_string(), weight: *weight })
                    .collect();
                if upstream.members() != members {
                    upstream.set_members(&members);
                }
            }
            Target::Service(service) => {
                self.wanted.send_if_modified(|wanted| wanted.insert(service.clone()));
            }
        }
        upstream
    }

    /// The upstream of a catalog service (made when discovery first reports it).
    pub fn service(&self, name: &str) -> Arc<Upstream> {
        self.resolve("", &Target::Service(name.to_owned()))
    }

    /// Drops static upstreams no route uses any more (their connections close).
    pub fn retain_static(&self, used: &BTreeSet<String>) {
        self.lock().retain(|name, _| !name.starts_with("static:") || used.contains(name));
    }

    pub fn all(&self) -> Vec<Arc<Upstream>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn wanted(&self) -> watch::Receiver<BTreeSet<String>> {
        self.wanted.subscribe()
    }
}
