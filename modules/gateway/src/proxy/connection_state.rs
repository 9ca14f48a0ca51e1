//! What a client connection keeps between the requests it carries: its try timer
//! (`try_timer.rs`) and its copy of the route table. The copy is checked against the
//! current table with one atomic load per request (arc-swap's `Cache`) and taken anew
//! when the table was swapped; `ArcSwap::load` took a debt slot in a thread-local list
//! and gave it back on every request. An idle connection holds the table it last used
//! until its next request or its close (idle connections close within
//! `limits.header_read_timeout_ms`).

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use arc_swap::cache::Cache;

use super::DataPlane;
use super::try_timer::TryTimer;
use crate::table::Table;

/// The data plane, seen as its route table's `ArcSwap` (what `Cache` watches).
#[derive(Debug, Clone)]
pub struct PlaneTable(Arc<DataPlane>);

impl Deref for PlaneTable {
    type Target = ArcSwap<Table>;

    fn deref(&self) -> &ArcSwap<Table> {
        &self.0.table
    }
}

/// One client connection's own state, used by one request at a time.
#[derive(Debug)]
pub struct ConnectionState {
    pub timer: TryTimer,
    table: Cache<PlaneTable, Arc<Table>>,
}

impl ConnectionState {
    pub fn new(plane: &Arc<DataPlane>) -> Self {
        Self { timer: TryTimer::default(), table: Cache::new(PlaneTable(Arc::clone(plane))) }
    }

    /// The current route table and the timer, borrowed together by a request.
    pub fn table_and_timer(&mut self) -> (&Arc<Table>, &mut TryTimer) {
        (self.table.load(), &mut self.timer)
    }
}

/// Where a client connection keeps its state between requests: each request takes it
/// and puts it back when its handling ends (a request given up midway drops it, and
/// the next one makes a new one).
#[derive(Debug)]
pub struct Slot<T>(Mutex<Option<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    /// What was put back, else a new one from `make`.
    pub fn take_or(&self, make: impl FnOnce() -> T) -> T {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        kept.unwrap_or_else(make)
    }

    pub fn put(&self, state: T) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_hands_out_what_was_put_back_and_else_a_new_one() {
        let slot = Slot::default();
        assert_eq!(slot.take_or(|| 1), 1);
        slot.put(2);
        assert_eq!(slot.take_or(|| 3), 2);
        assert_eq!(slot.take_or(|| 4), 4, "taken: a new one");
    }
}
