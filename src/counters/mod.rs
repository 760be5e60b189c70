//! The counters behind the stats page: one block per frontend, backend and server identity
//! (carried across reloads by the registry), each holding one cache-line-padded cell per
//! worker. A worker writes only its own cell, with a relaxed load and store (no locked
//! instruction, no cache line shared with another worker); the stats thread sums the cells
//! when it reads. Latency histograms sit in the same cells behind a mutex that the worker
//! takes once per finished connection and the reader only while merging.
//!
//! Below the table, the registry and the workers, which hold and write them; the stats
//! page reads them.

mod ends;
mod timings;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

#[cfg(test)] // the worker's test of its reason indices
pub use ends::END_REASONS;
pub use ends::{EndCounts, EndTotals};
use timings::CellTimings;
pub use timings::{Timings, WINDOW_MINUTES};

/// Keeps what it holds on cache lines of its own (128 bytes: adjacent-line prefetch pairs
/// 64-byte lines on x86).
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct Padded<T>(pub T);

/// A counter with a single writer: that worker adds with a relaxed load and store, which
/// compiles to plain moves; readers on other threads see a recent value.
#[derive(Debug, Default)]
pub struct Cell(AtomicU64);

impl Cell {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One `T` per worker, each on its own cache lines.
#[derive(Debug)]
pub struct PerWorker<T> {
    cells: Box<[Padded<T>]>,
}

impl<T: Default> PerWorker<T> {
    fn new(workers: usize) -> PerWorker<T> {
        PerWorker {
            cells: (0..workers.max(1)).map(|_| Padded::default()).collect(),
        }
    }
}

impl<T> PerWorker<T> {
    /// The cell of `worker`. Worker ids are below the worker count the blocks were made
    /// for (fixed for the process's life); the modulo only keeps this from panicking.
    #[inline]
    pub fn of(&self, worker: usize) -> &T {
        &self.cells[worker % self.cells.len()].0
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.cells.iter().map(|c| &c.0)
    }

    fn sum(&self, f: impl Fn(&T) -> &Cell) -> u64 {
        self.iter().map(|c| f(c).get()).fold(0, u64::wrapping_add)
    }
}

/// Raises `peak` to `now` if it is higher: a read of a shared line on every connection,
/// a write only on a new high.
#[inline]
pub fn raise_peak(peak: &AtomicU32, now: u32) {
    if now > peak.load(Ordering::Relaxed) {
        peak.fetch_max(now, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct FrontendCell {
    pub conns: Cell,
    /// Bytes from clients, and to them.
    pub bytes_in: Cell,
    pub bytes_out: Cell,
    /// Connections that waited in the accept queue because a `maxconn` was reached.
    pub held: Cell,
    /// Connections closed because no server would take them (`no_server`, `queue_timeout`).
    pub no_server: Cell,
    /// Connections closed for a bad, missing or late PROXY header.
    pub proxy_errors: Cell,
    /// Connections closed because no route named their server name and there is no default.
    pub no_route: Cell,
    /// Connections by how they ended.
    pub ends: EndCounts,
}

/// A frontend's counters; carried across reloads by frontend name.
#[derive(Debug)]
pub struct FrontendStats {
    pub cells: PerWorker<FrontendCell>,
    /// Most connections at once since start.
    pub peak: AtomicU32,
}

impl FrontendStats {
    pub fn new(workers: usize) -> FrontendStats {
        FrontendStats {
            cells: PerWorker::new(workers),
            peak: AtomicU32::new(0),
        }
    }

    pub fn totals(&self) -> FrontendTotals {
        FrontendTotals {
            conns: self.cells.sum(|c| &c.conns),
            bytes_in: self.cells.sum(|c| &c.bytes_in),
            bytes_out: self.cells.sum(|c| &c.bytes_out),
            held: self.cells.sum(|c| &c.held),
            no_server: self.cells.sum(|c| &c.no_server),
            proxy_errors: self.cells.sum(|c| &c.proxy_errors),
            no_route: self.cells.sum(|c| &c.no_route),
            ends: EndTotals::sum(self.cells.iter().map(|c| &c.ends)),
            peak: self.peak.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrontendTotals {
    pub conns: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub held: u64,
    pub no_server: u64,
    pub proxy_errors: u64,
    pub no_route: u64,
    pub ends: EndTotals,
    pub peak: u32,
}

#[derive(Debug, Default)]
pub struct BackendCell {
    /// Connections of this worker waiting now for a server below its `maxconn`.
    pub queued: Cell,
    /// Connections that ever waited so.
    pub queued_total: Cell,
}

/// A backend's counters (its queue: connections wait for any server of the backend);
/// carried across reloads by backend name.
#[derive(Debug)]
pub struct BackendStats {
    pub cells: PerWorker<BackendCell>,
}

impl BackendStats {
    pub fn new(workers: usize) -> BackendStats {
        BackendStats {
            cells: PerWorker::new(workers),
        }
    }

    /// (queued now, queued in total).
    pub fn queue(&self) -> (u64, u64) {
        (
            self.cells.sum(|c| &c.queued),
            self.cells.sum(|c| &c.queued_total),
        )
    }
}

#[derive(Debug, Default)]
pub struct ServerCell {
    /// Connections established to this server (successful connects).
    pub conns: Cell,
    pub bytes_in: Cell,
    pub bytes_out: Cell,
    /// Failed connects: refused, reset, timed out.
    pub connect_errors: Cell,
    /// Connect attempts to this server that retried a failed one.
    pub retries: Cell,
    /// Connections that reached this server, by how they ended.
    pub ends: EndCounts,
    timings: Mutex<CellTimings>,
}

impl ServerCell {
    /// Records a finished connection at `now` (since `Shared::epoch`): its connect time,
    /// if it connected, and how long the client was with ringlb. Called by the cell's
    /// worker once per connection.
    pub fn record(&self, now: Duration, connect: Option<Duration>, duration: Duration) {
        self.timings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now, connect, duration);
    }
}

/// A server's counters; carried across reloads by server identity (backend, name, address).
#[derive(Debug)]
pub struct ServerStats {
    pub cells: PerWorker<ServerCell>,
    /// Most connections at once since start.
    pub peak: AtomicU32,
    /// Failed health checks, counted by the health thread (the only writer, and not a
    /// worker: a plain atomic add). Shared with its check target.
    pub check_failures: Arc<AtomicU64>,
}

impl ServerStats {
    pub fn new(workers: usize) -> ServerStats {
        ServerStats {
            cells: PerWorker::new(workers),
            peak: AtomicU32::new(0),
            check_failures: Arc::default(),
        }
    }

    /// Sums the cells and merges the histograms, since start and over the window that ends
    /// at `now` (since `Shared::epoch`).
    pub fn totals(&self, now: Duration) -> ServerTotals {
        let mut timings = Timings::default();
        let mut window = Timings::default();
        for c in self.cells.iter() {
            c.timings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .merge_into(now, &mut timings, &mut window);
        }
        ServerTotals {
            conns: self.cells.sum(|c| &c.conns),
            bytes_in: self.cells.sum(|c| &c.bytes_in),
            bytes_out: self.cells.sum(|c| &c.bytes_out),
            connect_errors: self.cells.sum(|c| &c.connect_errors),
            retries: self.cells.sum(|c| &c.retries),
            ends: EndTotals::sum(self.cells.iter().map(|c| &c.ends)),
            check_failures: self.check_failures.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            timings,
            window,
        }
    }
}

#[derive(Debug)]
pub struct ServerTotals {
    pub conns: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub retries: u64,
    pub ends: EndTotals,
    pub check_failures: u64,
    pub peak: u32,
    /// Since start.
    pub timings: Timings,
    /// The last `WINDOW_MINUTES`.
    pub window: Timings,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn cells_are_padded_and_sum_across_workers() {
        assert_eq!(std::mem::align_of::<Padded<FrontendCell>>(), 128);
        let f = Arc::new(FrontendStats::new(3));
        let threads: Vec<_> = (0..3)
            .map(|w| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        f.cells.of(w).bytes_in.add(2);
                        f.cells.of(w).conns.add(1);
                    }
                    raise_peak(&f.peak, 10 + w as u32);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let t = f.totals();
        assert_eq!((t.conns, t.bytes_in, t.peak), (3000, 6000, 12));
        // A worker id past the count still lands on a cell instead of panicking.
        f.cells.of(7).held.add(1);
        assert_eq!(f.totals().held, 1);
    }

    #[test]
    fn histograms_merge_across_workers() {
        let s = ServerStats::new(2);
        for ms in 1..=100u64 {
            let w = (ms % 2) as usize;
            s.cells.of(w).record(
                Duration::from_secs(ms),
                Some(Duration::from_micros(ms * 10)),
                Duration::from_millis(ms),
            );
        }
        let t = s.totals(Duration::from_secs(100));
        assert_eq!(t.timings.duration.len(), 100);
        // Recorded over the last two minutes: all in the window.
        assert_eq!(t.window.duration.len(), 100);
        let p50 = t.timings.duration.value_at_quantile(0.5);
        assert!((49_000..=51_000).contains(&p50), "{p50}");
        assert_eq!(
            t.timings.connect.max(),
            t.timings.connect.highest_equivalent(1000)
        );
        assert_eq!(t.timings.connect_sum_us, 10 * 5050);
        let q = BackendStats::new(1);
        q.cells.of(0).queued.add(2);
        q.cells.of(0).queued.sub(1);
        assert_eq!(q.queue(), (1, 0));
    }
}
