//! The facts behind the standard `process_*` metrics, read as Prometheus client libraries
//! read them: CPU time and start time from /proc/self/stat, memory from /proc/self/statm,
//! open fds from /proc/self/fd, the fd limit from getrlimit. Each is `None` when it cannot
//! be read; the parsers are pure so that odd input is tested without a process.

use std::fs;

use serde::Serialize;

#[derive(Debug, Default, Clone, Serialize)]
pub struct ProcessFacts {
    /// User and system CPU time.
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    /// Unix time the process started, from its start tick and the boot time.
    pub start_time_seconds: Option<f64>,
    /// Entries of /proc/self/fd, less the one reading the directory takes.
    pub open_fds: Option<u64>,
    /// The soft RLIMIT_NOFILE now.
    pub max_fds: Option<u64>,
}

/// Reads every fact of this process now.
pub fn read() -> ProcessFacts {
    let ticks = sysconf(libc::_SC_CLK_TCK);
    let page = sysconf(libc::_SC_PAGESIZE);
    let stat = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s));
    let memory = fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| parse_statm(&s));
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_boot_time(&s));
    ProcessFacts {
        cpu_seconds: stat
            .zip(ticks)
            .map(|(s, t)| (s.utime + s.stime) as f64 / t as f64),
        resident_memory_bytes: memory.zip(page).map(|(m, p)| m.resident * p),
        virtual_memory_bytes: memory.zip(page).map(|(m, p)| m.size * p),
        start_time_seconds: stat
            .zip(ticks)
            .zip(boot)
            .map(|((s, t), b)| b as f64 + s.start_ticks as f64 / t as f64),
        open_fds: fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| (d.count() as u64).saturating_sub(1)),
        max_fds: nofile_limit(),
    }
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; it has no memory effects.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

fn nofile_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

/// The fields of /proc/self/stat that the metrics use, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    /// Since boot.
    start_ticks: u64,
}

/// `pid (comm) state ppid ...`: `comm` may hold spaces and parentheses, so the fields are
/// counted from the last `)`. utime, stime and starttime are fields 14, 15 and 22 (proc(5)).
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts with field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
    })
}

/// /proc/self/statm: size and resident, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Statm {
    size: u64,
    resident: u64,
}

fn parse_statm(text: &str) -> Option<Statm> {
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    Some(Statm {
        size: fields.next()??,
        resident: fields.next()??,
    })
}

/// The `btime` line of /proc/stat: boot time in Unix seconds.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files_and_refuses_odd_ones() {
        let stat = "4242 (ringlb (a) b) S 1 4242 4242 0 -1 4194560 1021 0 0 0 \
                    250 75 0 0 20 0 6 0 123456 1000000 500 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                utime: 250,
                stime: 75,
                start_ticks: 123456
            })
        );
        assert_eq!(parse_stat("4242 (ringlb) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(
            parse_statm("2500 300 100 10 0 200 0\n"),
            Some(Statm {
                size: 2500,
                resident: 300
            })
        );
        assert_eq!(parse_statm("12"), None);
        assert_eq!(parse_statm("x 1"), None);
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn this_process_reads_sanely() {
        let f = read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = f.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start}"
        );
        assert!(f.cpu_seconds.unwrap() >= 0.0);
        let rss = f.resident_memory_bytes.unwrap();
        assert!(rss > 100_000 && rss <= f.virtual_memory_bytes.unwrap());
        assert!(f.open_fds.unwrap() >= 3);
        assert!(f.max_fds.unwrap() >= f.open_fds.unwrap());
    }
}
