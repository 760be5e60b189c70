//! State every worker shares, and the threads that watch them read: the connection count
//! under `maxconn`, the fd budget, each worker's liveness heartbeat, the clock's epoch and
//! where passive health failures go. Its own module, below the workers, the VRRP thread, the stats page and the control thread,
//! so that they read it without importing one another.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::health::PassiveReporter;
use crate::table::FrontendTable;
use crate::watchdog::{Ages, Watchdog};

/// Accepts kept armed per listener near the fd budget. Each holds the fds of one
/// connection reserved, so accepting can never run past the budget. Far from it one
/// multishot accept per listener takes every connection (no re-arm per connection), and a
/// connection reserves its fds when it arrives.
pub const ACCEPT_DEPTH: u32 = 16;
/// File descriptors one connection needs: its client and its server socket.
pub const CONN_FDS: u32 = 2;

/// State shared by all workers: connection counts for `maxconn`, the fd budget and
/// liveness heartbeats. Touched once per connection, never per byte.
pub struct Shared {
    pub conns: AtomicU32,
    /// Global cap; a reload may change it.
    pub maxconn: AtomicU32,
    /// File descriptors of connections, reserved before an accept is armed.
    pub fds: FdBudget,
    /// Per worker: milliseconds since `epoch` at its last loop turn.
    pub heartbeats: Vec<AtomicU64>,
    pub epoch: Instant,
    /// Unix time at `epoch`, for log timestamps.
    pub wall_epoch: Duration,
    /// Where failed connects go for passive health marking.
    pub passive: PassiveReporter,
    /// Per worker: the listening sockets it accepts on.
    pub listening: Listening,
}

impl Shared {
    pub fn try_acquire(&self, frontend: &FrontendTable) -> bool {
        if self.conns.fetch_add(1, Ordering::Relaxed) >= self.maxconn.load(Ordering::Relaxed) {
            self.conns.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        if frontend.conns.fetch_add(1, Ordering::Relaxed) >= frontend.maxconn {
            frontend.conns.fetch_sub(1, Ordering::Relaxed);
            self.conns.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn release(&self, frontend: &FrontendTable) {
        frontend.conns.fetch_sub(1, Ordering::Relaxed);
        self.conns.fetch_sub(1, Ordering::Relaxed);
    }

    /// Milliseconds since `epoch`: the clock of the heartbeats.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A watchdog for the workers that discounts its own reader's freezes longer than
    /// `own_gap_limit` (a frozen reader blames no worker).
    pub fn watchdog(&self, own_gap_limit: Duration) -> Watchdog {
        Watchdog::new(self.now_ms(), (own_gap_limit.as_millis() as u64).max(1))
    }

    /// Each worker's age now, as `watchdog` sees it.
    pub fn worker_ages(&self, watchdog: &mut Watchdog) -> Ages {
        watchdog.check(
            self.now_ms(),
            self.heartbeats.iter().map(|b| b.load(Ordering::Relaxed)),
        )
    }
}

/// The file descriptors connections may hold, all workers together: the soft
/// `RLIMIT_NOFILE` less what listeners, rings, pipes, health checks and the stats
/// listener may need. Every accept reserves a whole connection's fds before it is armed,
/// so an accepted client always gets its server socket.
pub struct FdBudget {
    limit: u32,
    used: AtomicU32,
    /// Below this many free fds, each listener keeps one accept armed instead of
    /// `ACCEPT_DEPTH`, so that accepts armed on a quiet listener do not hold back
    /// connections another listener could take.
    low_water: u32,
    /// At least this many free fds, listeners accept with multishot: room for every
    /// accept queue of every listener to be taken in one turn.
    multishot_room: u32,
}

impl FdBudget {
    /// `listeners`: listening sockets of all workers together.
    pub fn new(limit: u32, listeners: usize) -> FdBudget {
        let listeners = u32::try_from(listeners).unwrap_or(u32::MAX);
        FdBudget {
            limit,
            used: AtomicU32::new(0),
            low_water: listeners.saturating_mul(ACCEPT_DEPTH * CONN_FDS),
            multishot_room: listeners.saturating_mul(crate::listener::BACKLOG * CONN_FDS),
        }
    }

    /// Free fds multishot accepting needs (see `plenty`).
    pub fn multishot_room(&self) -> u32 {
        self.multishot_room
    }

    /// Whether the budget is far enough from full for multishot accepts.
    pub fn plenty(&self) -> bool {
        let free = self.limit.saturating_sub(self.used.load(Ordering::Relaxed));
        free >= self.multishot_room
    }

    /// How many accepts one listener may keep armed now.
    pub fn accept_depth(&self) -> u32 {
        let free = self.limit.saturating_sub(self.used.load(Ordering::Relaxed));
        if free >= self.low_water {
            ACCEPT_DEPTH
        } else {
            1
        }
    }

    pub fn try_reserve(&self, n: u32) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + n <= self.limit).then_some(used + n)
            })
            .is_ok()
    }

    pub fn release(&self, n: u32) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// Fds reserved now (open connections, held ones and armed accepts).
    pub fn used(&self) -> u32 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// Each worker's listening sockets, so that the control thread can take a stalled worker
/// out of the accept path: `shut` stops its sockets listening (the kernel moves their
/// queued connections to the other sockets of the `SO_REUSEPORT` group when
/// `net.ipv4.tcp_migrate_req` is 1, and sends new ones only to those), and the worker,
/// once it runs again, finds its accepts failing with EINVAL and listens again.
///
/// A socket is registered while a [`ListenFd`] holds it and unregistered, under the same
/// lock, before it is closed: `shut` never acts on a closed descriptor whose number a new
/// connection may have taken.
pub struct Listening {
    per_worker: Vec<Mutex<Vec<RawFd>>>,
}

impl Listening {
    pub fn new(workers: usize) -> Listening {
        Listening {
            per_worker: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    fn with<T>(&self, worker: usize, f: impl FnOnce(&mut Vec<RawFd>) -> T) -> Option<T> {
        let cell = self.per_worker.get(worker)?;
        let mut fds = cell.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut fds))
    }

    /// Stops `worker`'s sockets listening; how many it shut.
    pub fn shut(&self, worker: usize) -> usize {
        self.with(worker, |fds| {
            fds.iter()
                // SAFETY: a registered descriptor is open (unregistered under this lock
                // before it is closed); shutdown(2) on it has no other effect on memory.
                .filter(|&&fd| unsafe { libc::shutdown(fd, libc::SHUT_RD) } == 0)
                .count()
        })
        .unwrap_or(0)
    }
}

/// A worker's listening socket, registered in [`Listening`] for as long as it is open.
pub struct ListenFd {
    fd: OwnedFd,
    worker: usize,
    shared: Arc<Shared>,
}

impl ListenFd {
    pub fn new(fd: OwnedFd, worker: usize, shared: &Arc<Shared>) -> ListenFd {
        let raw = fd.as_raw_fd();
        shared.listening.with(worker, |fds| fds.push(raw));
        ListenFd {
            fd,
            worker,
            shared: shared.clone(),
        }
    }
}

impl AsFd for ListenFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for ListenFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for ListenFd {
    fn drop(&mut self) {
        // Unregistered first; `fd` is closed after this body, when the field drops.
        let raw = self.fd.as_raw_fd();
        self.shared
            .listening
            .with(self.worker, |fds| fds.retain(|&f| f != raw));
    }
}
