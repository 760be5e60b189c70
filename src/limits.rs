//! How the file-descriptor limit is shared out at start: a fixed reserve for everything
//! that is not a connection (listeners, rings, eventfds, stats, health checks, VRRP, the
//! log), a budget of splice pipes, and the rest for connections, two sockets each.

use std::fmt;

/// Fds for what is neither a connection nor a pipe nor a per-worker item: standard
/// streams, the stats listener and its connections (at most 64), VRRP and netlink
/// sockets, the log, notify scripts, files read at reload.
const FIXED_RESERVE: u64 = 192;
/// Health checks in flight at once, each one socket (the checker never runs more).
pub const HEALTH_IN_FLIGHT: usize = 256;
/// Per worker: its ring, its eventfd, slack; plus one socket per bind.
const PER_WORKER: u64 = 4;
/// Splice pipes all workers together may hold: the default per-user soft limit
/// (fs.pipe-user-pages-soft = 16384 pages = 1024 pipes of 64 KiB); past it new pipes
/// shrink to one page.
const PIPES_PER_USER: u64 = 1024;
/// Below this many connections the limit is refused as too low to be useful.
const MIN_CONNS: u64 = 16;

/// The shares of the fd limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdPlan {
    pub limit: u64,
    pub reserve: u64,
    /// Pipes (two fds each) all workers together may hold.
    pub pipes: u64,
    /// Connections the rest allows (two fds each).
    pub conns: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooFewFds {
    pub limit: u64,
    pub needed: u64,
}

impl fmt::Display for TooFewFds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the fd limit (RLIMIT_NOFILE) is {} and ringlb needs at least {} with this \
             config; raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
            self.limit, self.needed
        )
    }
}

impl FdPlan {
    /// Shares `limit` for `workers` workers listening on `binds` addresses.
    pub fn new(limit: u64, workers: usize, binds: usize) -> Result<FdPlan, TooFewFds> {
        let reserve =
            FIXED_RESERVE + HEALTH_IN_FLIGHT as u64 + workers as u64 * (PER_WORKER + binds as u64);
        let needed = reserve + 2 * MIN_CONNS + 2 * workers as u64;
        if limit < needed {
            return Err(TooFewFds { limit, needed });
        }
        let rest = limit - reserve;
        // Pipes take at most a quarter of what is left: connections come first.
        let pipes = (rest / 8).clamp(workers as u64, PIPES_PER_USER);
        let conns = (rest - 2 * pipes) / 2;
        Ok(FdPlan {
            limit,
            reserve,
            pipes,
            conns: u32::try_from(conns).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_limit() {
        let p = FdPlan::new(20_000, 2, 1).unwrap();
        assert_eq!(p.reserve, 192 + 256 + 10);
        assert_eq!(p.pipes, 1024);
        assert_eq!(p.conns, (20_000 - 458 - 2048) / 2);
        assert!(2 * u64::from(p.conns) + 2 * p.pipes + p.reserve <= p.limit);
    }

    #[test]
    fn small_limits_give_pipes_a_quarter() {
        let p = FdPlan::new(1024, 2, 1).unwrap();
        let rest = 1024 - p.reserve;
        assert_eq!(p.pipes, rest / 8);
        assert!(2 * u64::from(p.conns) + 2 * p.pipes + p.reserve <= 1024);
        assert!(p.conns >= 16);
    }

    #[test]
    fn too_low_a_limit_is_refused() {
        let e = FdPlan::new(300, 2, 1).unwrap_err();
        assert_eq!(e.needed, 458 + 32 + 4);
        assert!(e.to_string().contains("RLIMIT_NOFILE) is 300"));
        assert!(FdPlan::new(e.needed, 2, 1).is_ok());
    }
}
