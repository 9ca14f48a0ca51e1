//! Port bookkeeping for the services of this host: hands out free ports, checks static ones before a start, and
//! names whoever already listens on a conflicting port.
//!
//! Role: the single authority inside the host on which service holds which TCP port, so two services never get the
//! same one (`random_port`, static `ports`, re-adopted services after a host restart).
//!
//! Deliberately not done here:
//! - ports are not held open until the service binds them (our socket would block the service itself), so another
//!   program can still take a port between `allocate`/`claim_static` and the service's own bind; the supervisor
//!   sees that as a failed start;
//! - TCP only, and only this network namespace (that is all /proc/net/tcp shows);
//! - no persistence: the caller stores `runtime.ports` and calls [`PortAllocator::adopt`] after a restart;
//! - reservations are per port number, not per address: a service on 127.0.0.1:p and another on 0.0.0.0:p would
//!   conflict anyway, and services move between addresses by configuration.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many times `allocate` asks the OS again when it hands out a port another service has reserved but not yet
/// bound. The OS picks from ~28k ephemeral ports, so repeated hits mean the table is nearly full, not bad luck.
const ALLOCATE_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "port {port} on {host} is in use{}",
        holder.as_ref().map(|h| format!(" by {} (pid {})", h.name, h.pid)).unwrap_or_default()
    )]
    InUse { host: IpAddr, port: u16, holder: Option<PortHolder> },
    #[error("port {port} is already assigned to service {owner}")]
    Reserved { port: u16, owner: String },
    #[error("cannot find a free port: {0}")]
    Exhausted(String),
    #[error("port 0 cannot be claimed as a static port (it means \"any port\"; use random_port)")]
    ZeroPort,
    /// Binding failed for a reason other than the port being taken (e.g. a privileged port, or `host` is not an
    /// address of this machine).
    #[error("cannot bind {host}:{port}: {source}")]
    Bind {
        host: IpAddr,
        port: u16,
        #[source]
        source: io::Error,
    },
}

/// A process found listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub pid: u32,
    /// From `/proc/<pid>/comm` (at most 15 characters; "?" when the process went away meanwhile).
    pub name: String,
}

/// Tracks which service holds which port inside this host, so two services never get the same one.
#[derive(Debug, Default)]
pub struct PortAllocator {
    /// port -> owning service. A std mutex: held only for map updates and non-blocking binds, never across await.
    owners: Mutex<HashMap<u16, String>>,
}

impl PortAllocator {
    /// A port the OS confirms free right now (bind host:0, read the port, close), not reserved by another
    /// service; reserved for `service` until `release`. Retries a few times if the OS hands out a reserved one.
    pub fn allocate(&self, service: &str, host: IpAddr) -> Result<u16, PortError> {
        self.allocate_with(service, host, || ephemeral_port(host))
    }

    /// `allocate` with the OS probe replaceable, so the retry path can be tested deterministically.
    fn allocate_with(
        &self,
        service: &str,
        host: IpAddr,
        mut probe: impl FnMut() -> Result<u16, PortError>,
    ) -> Result<u16, PortError> {
        for _ in 0..ALLOCATE_ATTEMPTS {
            let port = probe()?;
            let mut owners = self.lock();
            // A port this same service already holds is refused too: handing it out twice would give one
            // service two "distinct" ports that are the same.
            if let Entry::Vacant(slot) = owners.entry(port) {
                slot.insert(service.to_owned());
                return Ok(port);
            }
        }
        Err(PortError::Exhausted(format!(
            "the OS offered only ports already assigned to services on {host} ({ALLOCATE_ATTEMPTS} attempts)"
        )))
    }

    /// Static ports of `service`: each must not be reserved by another service and must be bindable now
    /// (try to bind it; on AddrInUse find the holder). Reserves them on success (all or nothing).
    ///
    /// Ports `service` itself already holds pass the reservation check but must still be bindable: a running
    /// instance of the same service on them is a conflict too. Duplicates in `ports` are ignored.
    pub fn claim_static(&self, service: &str, host: IpAddr, ports: &[u16]) -> Result<(), PortError> {
        let wanted: BTreeSet<u16> = ports.iter().copied().collect();
        if wanted.contains(&0) {
            return Err(PortError::ZeroPort);
        }
        let mut owners = self.lock();
        for &port in &wanted {
            if let Some(owner) = owners.get(&port).filter(|owner| *owner != service) {
                return Err(PortError::Reserved { port, owner: owner.clone() });
            }
        }
        // All probes stay open until every port is checked, so the answer is about the whole set at one moment.
        let mut probes = Vec::with_capacity(wanted.len());
        for &port in &wanted {
            match TcpListener::bind((host, port)) {
                Ok(listener) => probes.push(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    // Scanning /proc can take a while on a busy machine; other services' allocations need not wait.
                    drop(owners);
                    drop(probes);
                    return Err(PortError::InUse { host, port, holder: find_listener(port) });
                }
                Err(source) => return Err(PortError::Bind { host, port, source }),
            }
        }
        for port in wanted {
            owners.insert(port, service.to_owned());
        }
        Ok(())
    }

    /// Reserve without checking the OS (used when re-adopting a service that is already running on these ports).
    ///
    /// A port reserved by another service is taken over (with a warning): the adopted process demonstrably runs
    /// on it, so the other reservation is the stale one.
    pub fn adopt(&self, service: &str, ports: &[u16]) {
        let mut owners = self.lock();
        for &port in ports {
            if let Some(previous) = owners.insert(port, service.to_owned())
                && previous != service
            {
                tracing::warn!(port, service, previous = %previous, "adopted port was reserved by another service");
            }
        }
    }

    /// Frees every port `service` holds (on stop, or when its start failed).
    pub fn release(&self, service: &str) {
        self.lock().retain(|_, owner| owner != service);
    }

    /// The ports `service` holds, ascending.
    pub fn held_by(&self, service: &str) -> Vec<u16> {
        let mut ports: Vec<u16> =
            self.lock().iter().filter(|(_, owner)| *owner == service).map(|(&port, _)| port).collect();
        ports.sort_unstable();
        ports
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u16, String>> {
        // Every map operation is a single call that cannot leave it half-updated, so a poisoned lock is usable.
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Asks the OS for a currently free port on `host` (the listener is closed again on return).
fn ephemeral_port(host: IpAddr) -> Result<u16, PortError> {
    let listener = TcpListener::bind((host, 0)).map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => PortError::Exhausted(format!("no ephemeral port left on {host}")),
        _ => PortError::Bind { host, port: 0, source },
    })?;
    let port = listener.local_addr().map_err(|source| PortError::Bind { host, port: 0, source })?.port();
    Ok(port)
}

/// Who listens on TCP `port`: parse `/proc/net/tcp` and `/proc/net/tcp6` for a LISTEN (state 0A) socket on that
/// port, take its inode, then scan `/proc/*/fd/*` symlinks for `socket:[inode]`. None if not found or not permitted.
///
/// When several processes share the socket (inherited over fork) the lowest pid wins, usually the parent.
pub fn find_listener(port: u16) -> Option<PortHolder> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // tcp6 is absent when IPv6 is disabled; that is not an error.
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    socket_owner(&inodes)
}

/// Inodes of LISTEN sockets on `port` in one /proc/net/tcp{,6} table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1) // header
        .filter_map(|row| {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let (_, port_hex) = local.rsplit_once(':')?;
            if *state != LISTEN || u16::from_str_radix(port_hex, 16).ok()? != port {
                return None;
            }
            // Inode 0 means the socket has no owning file any more; it cannot be traced to a process.
            inode.parse::<u64>().ok().filter(|&inode| inode != 0)
        })
        .collect()
}

/// The first process (ascending pid) holding a file descriptor for one of `inodes`.
fn socket_owner(inodes: &[u64]) -> Option<PortHolder> {
    let targets: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    let mut pids: Vec<u32> =
        fs::read_dir("/proc").ok()?.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    for pid in pids {
        // Other users' fd directories are unreadable without privileges, and processes exit while we scan.
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path())
                && targets.iter().any(|target| link.as_os_str() == target.as_str())
            {
                let name = fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|comm| comm.trim_end_matches('\n').to_owned())
                    .unwrap_or_else(|_| "?".to_owned());
                return Some(PortHolder { pid, name });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn own_comm() -> String {
        fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_owned()
    }

    /// A port that is free right now (nobody listens), but not reserved anywhere.
    fn free_port() -> u16 {
        TcpListener::bind((LOCAL, 0)).unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn allocate_gives_distinct_free_ports() {
        let alloc = PortAllocator::default();
        let mut seen = HashSet::new();
        for i in 0..50 {
            let service = format!("svc{i}");
            let port = alloc.allocate(&service, LOCAL).unwrap();
            assert_ne!(port, 0);
            assert!(seen.insert(port), "port {port} handed out twice");
            assert_eq!(alloc.held_by(&service), [port]);
        }
        // Free means the service can bind it now.
        for &port in &seen {
            TcpListener::bind((LOCAL, port)).unwrap();
        }
    }

    #[test]
    fn allocate_retries_past_reserved_ports_and_gives_up_eventually() {
        let alloc = PortAllocator::default();
        alloc.adopt("a", &[40001, 40002]);
        let mut offers = [40001, 40002, 40001, 40003].into_iter();
        let port = alloc.allocate_with("b", LOCAL, || Ok(offers.next().unwrap())).unwrap();
        assert_eq!(port, 40003);
        assert_eq!(offers.next(), None, "stopped asking once a free port came");
        assert_eq!(alloc.held_by("b"), [40003]);

        // The same service's own port is not handed out twice either.
        let err = alloc.allocate_with("b", LOCAL, || Ok(40003)).unwrap_err();
        assert!(matches!(err, PortError::Exhausted(_)), "{err:?}");
        let mut calls = 0;
        let err = alloc
            .allocate_with("c", LOCAL, || {
                calls += 1;
                Ok(40001)
            })
            .unwrap_err();
        assert!(matches!(err, PortError::Exhausted(_)), "{err:?}");
        assert_eq!(calls, ALLOCATE_ATTEMPTS);
        assert!(alloc.held_by("c").is_empty());
    }

    #[test]
    fn allocate_on_a_foreign_address_is_a_bind_error() {
        // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
        let err = PortAllocator::default().allocate("svc", "192.0.2.1".parse().unwrap()).unwrap_err();
        assert!(matches!(err, PortError::Bind { port: 0, .. }), "{err:?}");
    }

    #[test]
    fn claim_static_names_the_process_holding_the_port() {
        let listener = TcpListener::bind((LOCAL, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let alloc = PortAllocator::default();
        let err = alloc.claim_static("svc", LOCAL, &[port]).unwrap_err();
        let PortError::InUse { host, port: busy, holder } = &err else { panic!("{err:?}") };
        assert_eq!((*host, *busy), (LOCAL, port));
        let holder = holder.as_ref().expect("holder found");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.name, own_comm());
        assert_eq!(
            err.to_string(),
            format!("port {port} on 127.0.0.1 is in use by {} (pid {})", own_comm(), std::process::id())
        );
        assert!(alloc.held_by("svc").is_empty());

        drop(listener);
        alloc.claim_static("svc", LOCAL, &[port]).unwrap();
        assert_eq!(alloc.held_by("svc"), [port]);
    }

    #[test]
    fn claim_static_is_all_or_nothing() {
        let busy = TcpListener::bind((LOCAL, 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let free = free_port();
        let alloc = PortAllocator::default();
        let err = alloc.claim_static("svc", LOCAL, &[free, busy_port]).unwrap_err();
        assert!(matches!(err, PortError::InUse { port, .. } if port == busy_port), "{err:?}");
        assert!(alloc.held_by("svc").is_empty(), "the free port must not stay reserved");
        drop(busy);
        alloc.claim_static("svc", LOCAL, &[busy_port, free, free]).unwrap();
        let mut both = [free, busy_port];
        both.sort_unstable();
        assert_eq!(alloc.held_by("svc"), both);
    }

    #[test]
    fn reserved_ports_are_refused_to_other_services_until_released() {
        let alloc = PortAllocator::default();
        let port = alloc.allocate("a", LOCAL).unwrap();
        let err = alloc.claim_static("b", LOCAL, &[port]).unwrap_err();
        assert!(matches!(&err, PortError::Reserved { port: p, owner } if *p == port && owner == "a"), "{err:?}");
        assert_eq!(err.to_string(), format!("port {port} is already assigned to service a"));
        // Claiming again for the owner is fine while the port is not bound.
        alloc.claim_static("a", LOCAL, &[port]).unwrap();

        alloc.release("a");
        assert!(alloc.held_by("a").is_empty());
        alloc.claim_static("b", LOCAL, &[port]).unwrap();
        assert_eq!(alloc.held_by("b"), [port]);
        // Releasing one service leaves the others alone.
        alloc.release("a");
        assert_eq!(alloc.held_by("b"), [port]);
    }

    #[test]
    fn reserved_wins_over_in_use_so_the_message_names_the_service() {
        let listener = TcpListener::bind((LOCAL, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let alloc = PortAllocator::default();
        alloc.adopt("a", &[port]);
        let err = alloc.claim_static("b", LOCAL, &[port]).unwrap_err();
        assert!(matches!(err, PortError::Reserved { .. }), "{err:?}");
        // The owner itself is still refused: the port is really taken (e.g. an old instance still runs).
        let err = alloc.claim_static("a", LOCAL, &[port]).unwrap_err();
        assert!(matches!(err, PortError::InUse { .. }), "{err:?}");
        assert_eq!(alloc.held_by("a"), [port], "a failed claim leaves existing reservations alone");
    }

    #[test]
    fn adopt_reserves_without_checking_and_takes_over_stale_reservations() {
        let listener = TcpListener::bind((LOCAL, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let alloc = PortAllocator::default();
        alloc.adopt("a", &[port, 9]);
        assert_eq!(alloc.held_by("a"), [9, port]);
        alloc.adopt("b", &[9]);
        assert_eq!(alloc.held_by("a"), [port]);
        assert_eq!(alloc.held_by("b"), [9]);
    }

    #[test]
    fn zero_is_not_a_static_port() {
        let err = PortAllocator::default().claim_static("svc", LOCAL, &[0]).unwrap_err();
        assert!(matches!(err, PortError::ZeroPort), "{err:?}");
    }

    #[test]
    fn find_listener_finds_our_own_listeners() {
        let v4 = TcpListener::bind((LOCAL, 0)).unwrap();
        let me = Some(PortHolder { pid: std::process::id(), name: own_comm() });
        assert_eq!(find_listener(v4.local_addr().unwrap().port()), me);
        // IPv6 may be disabled on the machine running the tests; only check it when a v6 socket can be made.
        if let Ok(v6) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
            assert_eq!(find_listener(v6.local_addr().unwrap().port()), me);
        }
        let closed = free_port();
        assert_eq!(find_listener(closed), None);
    }

    #[test]
    fn listening_inodes_reads_only_listen_rows_on_the_port() {
        // Written for this test in the /proc/net/tcp layout: port 0x1F90 = 8080.
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
   3: 0100007F:1F90 0100007F:C351 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   4: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A \
      00000000:00000000 00:00000000 00000000  1000        0 444 1 0
   5: garbage
";
        assert_eq!(listening_inodes(table, 8080), [111, 444]);
        assert_eq!(listening_inodes(table, 8081), [333]);
        assert!(listening_inodes(table, 80).is_empty());
    }
}
