//! One process: the fields of `/proc/<pid>/stat` that tell its state, group, CPU time,
//! threads and start time (the last tells a recycled pid from the process seen
//! before), and its resident memory from `/proc/<pid>/status`. Parsers only: reading
//! is [`crate::ProcFs`]'s.

use crate::CLK_TCK;

/// The fields of `/proc/<pid>/stat` we use. Times are in clock ticks ([`CLK_TCK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// The command name, as in `/proc/<pid>/comm` (the same value, at most 15 bytes);
    /// taken from here to save one read per process.
    pub comm: String,
    /// `R` running, `S` sleeping, `D` disk sleep, `Z` zombie, `T` stopped, ...
    pub state: char,
    pub ppid: i32,
    /// The process group: what a stop signals, and what a group scan collects.
    pub pgid: i32,
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
}

impl ProcStat {
    /// User + system CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }

    pub fn cpu_secs(&self) -> f64 {
        self.cpu_ticks() as f64 / CLK_TCK as f64
    }

    /// User + system CPU time, in whole milliseconds.
    pub fn cpu_ms(&self) -> u64 {
        self.cpu_ticks() * 1000 / CLK_TCK
    }

    /// A zombie has exited and waits for its parent to reap it: it uses nothing and
    /// counts as gone.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// Seconds since the process started, given the system's uptime.
    pub fn uptime_secs(&self, system_uptime_secs: f64) -> f64 {
        (system_uptime_secs - self.start_ticks as f64 / CLK_TCK as f64).max(0.0)
    }
}

pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    // The command name sits in parentheses and may itself contain spaces and `)`, so
    // the fields after it are found from the LAST `)`.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    // rest[0] is field 3 (state) of proc(5); field N is rest[N - 3].
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let n = |field: usize| rest.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgid: rest.get(2)?.parse().ok()?,
        utime: n(14)?,
        stime: n(15)?,
        threads: n(20)?,
        start_ticks: n(22)?,
    })
}

/// `VmRSS:     2080 kB` from `/proc/<pid>/status`, in bytes.
pub fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_a_hostile_command_name() {
        let line = "31829 (my (evil) prog) S 31818 31818 30517 0 -1 4194304 100 0 0 0 250 130 0 0 20 0 4 0 440234 \
                    3133440 384 18446744073709551615 93980920414208 93980920434089 140726587163168 0 0 0 0 0 0 0 0 \
                    0 17 0 0 0 0 0 0\n";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s.pid, 31829);
        assert_eq!(s.comm, "my (evil) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 31818);
        assert_eq!(s.pgid, 31818);
        assert_eq!((s.utime, s.stime), (250, 130));
        assert_eq!(s.cpu_ticks(), 380);
        assert_eq!(s.cpu_secs(), 3.8);
        assert_eq!(s.threads, 4);
        assert_eq!(s.start_ticks, 440234);
        assert_eq!(s.uptime_secs(4502.34), 4502.34 - 4402.34);
        // Uptime sampled just before the start tick: never negative.
        assert_eq!(s.uptime_secs(4000.0), 0.0);
        assert_eq!(parse_proc_stat("31829 (cut"), None);
        assert_eq!(parse_proc_stat("31829 (short) S 1 2"), None);
    }

    #[test]
    fn status_rss() {
        let status =
            "Name:\tgrep\nUmask:\t0022\nState:\tR (running)\nVmPeak:\t    6000 kB\nVmRSS:\t    2080 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss(status), Some(2080 * 1024));
        // Kernel threads have no Vm* lines.
        assert_eq!(parse_status_rss("Name:\tkthreadd\nThreads:\t1\n"), None);
    }

    #[test]
    fn proc_stat_of_a_kernel_thread_and_a_zombie() {
        // Captured from a 6.18 kernel: kthreadd, and an exited child its parent had
        // not reaped yet (state Z, in its parent's group).
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let k = parse_proc_stat(kthreadd).unwrap();
        assert_eq!((k.pid, k.ppid, k.pgid, k.start_ticks), (2, 0, 0, 25));
        assert!(!k.is_zombie());
        let zombie = "27245 (true) Z 27201 27186 19175 0 -1 4227084 50 0 1 0 0 0 0 0 20 0 1 0 1109835 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let z = parse_proc_stat(zombie).unwrap();
        assert!(z.is_zombie());
        assert_eq!((z.ppid, z.pgid, z.start_ticks, z.cpu_ms()), (27201, 27186, 1109835, 0));
        let busy = ProcStat { utime: 250, stime: 130, ..z };
        assert_eq!(busy.cpu_ms(), 3800);
    }
}
