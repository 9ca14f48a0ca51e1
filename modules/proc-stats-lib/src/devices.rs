//! Filesystems, disks and network interfaces: `/proc/self/mounts` (with the kernel's
//! octal escapes undone), which filesystem types hold no disk data, `/proc/diskstats`
//! and `/proc/net/dev`. Parsers only: they take the file's text; reading is
//! [`crate::ProcFs`]'s.

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let device = unescape_octal(f.next()?);
            let mount_point = unescape_octal(f.next()?);
            let fs_type = f.next()?.to_string();
            let read_only = f.next().is_some_and(|opts| opts.split(',').any(|o| o == "ro"));
            Some(Mount { device, mount_point, fs_type, read_only })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in mount fields as `\040`,
/// `\011`, `\012` and `\134`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Filesystems that hold no disk data (kernel views, memory-backed, control mounts),
/// plus `squashfs`, which is read-only images (snaps) that are always full.
pub fn is_pseudo_fs(fs_type: &str) -> bool {
    const PSEUDO: &[&str] = &[
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "ramfs",
        "rootfs",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "squashfs",
        "sysfs",
        "tmpfs",
        "tracefs",
    ];
    PSEUDO.contains(&fs_type) || fs_type == "fuse.lxcfs" || fs_type.starts_with("fuse.gvfs")
}

/// One line of `/proc/diskstats` (the fields present since kernel 2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub name: String,
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub read_time_ms: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
    pub write_time_ms: u64,
    pub ios_in_progress: u64,
    pub io_time_ms: u64,
}

pub fn parse_diskstats(text: &str) -> Vec<DiskStats> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            Some(DiskStats {
                name: f.get(2)?.to_string(),
                reads_completed: n(3)?,
                sectors_read: n(5)?,
                read_time_ms: n(6)?,
                writes_completed: n(7)?,
                sectors_written: n(9)?,
                write_time_ms: n(10)?,
                ios_in_progress: n(11)?,
                io_time_ms: n(12)?,
            })
        })
        .collect()
}

/// One interface of `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

pub fn parse_net_dev(text: &str) -> Vec<NetDev> {
    text.lines()
        .filter_map(|line| {
            // Split at the colon, not on whitespace: old kernels print `eth0:123456`
            // with no space once the byte count gets wide. Header lines have no colon.
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().ok()).collect::<Option<_>>()?;
            if f.len() < 16 {
                return None;
            }
            Some(NetDev {
                name: name.trim().to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_unescape_and_read_only() {
        let m = parse_mounts(
            "proc /proc proc rw,relatime 0 0\n\
             /dev/vda / ext4 rw,relatime,discard 0 0\n\
             /dev/sdb1 /mnt/my\\040disk vfat ro,noatime 0 0\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount { device: "/dev/vda".into(), mount_point: "/".into(), fs_type: "ext4".into(), read_only: false }
        );
        assert_eq!(m[2].mount_point, "/mnt/my disk");
        assert!(m[2].read_only);
        assert!(is_pseudo_fs(&m[0].fs_type));
        assert!(!is_pseudo_fs("ext4") && !is_pseudo_fs("overlay") && !is_pseudo_fs("nfs4"));
        assert!(is_pseudo_fs("cgroup2") && is_pseudo_fs("tmpfs") && is_pseudo_fs("fuse.lxcfs"));
    }

    #[test]
    fn unescape_leaves_other_backslashes_alone() {
        assert_eq!(unescape_octal(r"a\134b\040c"), r"a\b c");
        assert_eq!(unescape_octal(r"a\9b\04"), r"a\9b\04");
    }

    #[test]
    fn diskstats() {
        let d = parse_diskstats(
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n \
             254       0 vda 450364 18646 28032770 746250 43352 61619 28848720 82627 0 40260 835182 31446 41 20370544 6049 4728 254\n \
             8       1 sda1 100 0 800 5 7 0 56 3 2 9 8\n",
        );
        assert_eq!(d.len(), 3);
        let vda = &d[1];
        assert_eq!(vda.name, "vda");
        assert_eq!(vda.reads_completed, 450364);
        assert_eq!(vda.sectors_read, 28032770);
        assert_eq!(vda.read_time_ms, 746250);
        assert_eq!(vda.writes_completed, 43352);
        assert_eq!(vda.sectors_written, 28848720);
        assert_eq!(vda.write_time_ms, 82627);
        assert_eq!(vda.ios_in_progress, 0);
        assert_eq!(vda.io_time_ms, 40260);
        // A 2.6-era line with only the 11 classic fields still parses.
        assert_eq!(d[2].ios_in_progress, 2);
        assert_eq!(d[2].io_time_ms, 9);
    }

    #[test]
    fn net_dev_skips_headers_and_handles_glued_counters() {
        let n = parse_net_dev(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
             \x20   lo: 3029017   35357    0    0    0     0          0         0  3029017   35357    0    0    0     0       0          0\n\
             \x20 eth0:132283949    7479    3    4    0     0          0         0   597492    4699    5    6    0     0       0          0\n",
        );
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].name, "lo");
        let eth0 = &n[1];
        assert_eq!(eth0.name, "eth0");
        assert_eq!((eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped), (132283949, 7479, 3, 4));
        assert_eq!((eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped), (597492, 4699, 5, 6));
    }
}
