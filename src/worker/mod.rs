//! One worker: a thread pinned to a CPU with its own io_uring, its own SO_REUSEPORT
//! listeners and every connection it accepted. This file holds the event loop, accepting
//! (within the fd budget and connection limits, with back-off on fd exhaustion) and control
//! commands; `conn.rs` holds what happens to one connection.

mod bufring;
mod conn;
mod conns;
mod link;
mod log_line;
mod pipes;
mod tally;
mod token;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use crate::balance::PickState;
use crate::logging::{self, event, ConnLog};
use crate::shared::{ListenFd, Shared, CONN_FDS};
use crate::sys::{self, EventFd};
use crate::table::{SharedTables, Tables};
use bufring::BufRing;
use conns::Slot;
use pipes::PipePool;
use token::{Op, Token};

/// Copy-mode buffers per worker and their size: 2048 × 32 KiB = 64 MiB of address space,
/// touched only as traffic needs it.
const BUF_COUNT: u16 = 2048;
const BUF_SIZE: u32 = 32 * 1024;
const BUF_GROUP: u16 = 0;
/// Pipes kept idle per worker (made at start); how many it may hold in all comes from
/// the fd plan (`limits`).
const PIPES_IDLE: usize = 16;
const TICK: Duration = Duration::from_millis(100);
/// Back-off before accepting again after EMFILE/ENFILE, doubled up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Commands from the control thread.
#[derive(Debug)]
pub enum Command {
    /// Start accepting on these new sockets (a reload added binds).
    AddListeners(Vec<ListenerSpec>),
    /// Stop accepting on these addresses and close their sockets (a reload removed binds).
    RemoveListeners(Vec<SocketAddr>),
    /// Stop accepting; finish established connections, then exit.
    Stop,
    /// Close every connection now and exit.
    Abort,
    /// Close the connections to this server (backend and server name) now; how many goes
    /// back on `reply`.
    KillServer {
        backend: String,
        server: String,
        reply: crossbeam_channel::Sender<usize>,
    },
}

/// Why a worker ended.
#[derive(Debug)]
pub enum WorkerExit {
    /// It drained after `Stop` (or was aborted): a normal end.
    Stopped,
    /// Its ring failed or it panicked; its connections were closed as it ended.
    Failed(String),
}

/// A listening socket handed to a worker. Which frontend it serves is looked up in the
/// current snapshot by address.
#[derive(Debug)]
pub struct ListenerSpec {
    pub fd: OwnedFd,
    pub addr: SocketAddr,
}

pub struct WorkerSpec {
    pub id: usize,
    pub cpu: Option<usize>,
    pub listeners: Vec<ListenerSpec>,
    pub tables: SharedTables,
    pub commands: Receiver<Command>,
    /// eventfd the control thread writes after sending a command.
    pub wake: Arc<EventFd>,
    pub shared: Arc<Shared>,
    /// Most connections this worker holds at once (its share of the fd budget).
    pub max_conns: usize,
    /// Splice pipes this worker may hold.
    pub pipes: usize,
    pub workers: usize,
}

struct Listener {
    /// None once closed (stopping, or removed by a reload); the entry stays so that
    /// indices in tokens stay valid.
    fd: Option<ListenFd>,
    addr: SocketAddr,
    /// Reserved single-shot accepts armed on it, each holding one connection's fds and
    /// slot reserved.
    pending: u32,
    /// A multishot accept is armed on it (far from the fd budget).
    multishot: bool,
    /// Not accepting because a connection limit is reached.
    paused: bool,
    /// A back-off timer is armed after fd exhaustion.
    backing_off: bool,
    backoff: Duration,
    /// Boxed: the kernel reads it when the timer is submitted, and the listener list may
    /// grow (and move) in between.
    backoff_ts: Box<Timespec>,
}

impl Listener {
    fn new(spec: ListenerSpec, worker: usize, shared: &Arc<Shared>) -> Listener {
        Listener {
            fd: Some(ListenFd::new(spec.fd, worker, shared)),
            addr: spec.addr,
            pending: 0,
            multishot: false,
            paused: false,
            backing_off: false,
            backoff: ACCEPT_BACKOFF_MIN,
            backoff_ts: Box::new(Timespec::new()),
        }
    }
}

pub struct Worker {
    // Dropped first: the kernel releases the buffer ring registration with the ring.
    ring: IoUring,
    id: usize,
    bufs: BufRing,
    pipes: PipePool,
    listeners: Vec<Listener>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// Accepted connections waiting for a free `maxconn` slot (their listener is paused),
    /// or, rarely, for their fds in the budget (`false`: a multishot accept took them just
    /// as the budget ran out). A few per listener: nothing more is accepted while one waits.
    held: VecDeque<(RawFd, usize, bool)>,
    /// Slots promised to armed accepts.
    slots_reserved: usize,
    /// An accept could not be armed for want of fds: retried when fds come back.
    fd_starved: bool,
    /// Directions waiting for a copy buffer after ENOBUFS: (slot, gen, dir).
    buf_waiters: VecDeque<(u32, u16, u8)>,
    tables: SharedTables,
    /// The snapshot the pick states were last staggered for.
    snapshot: Arc<Tables>,
    /// Per backend: round-robin cursor and RNG of this worker.
    picks: Vec<PickState>,
    /// Connections waiting for a server below its `maxconn`: (slot, gen).
    queue: VecDeque<(u32, u16)>,
    /// The snapshot the last drain scan compared connections against, and how many
    /// connections that scan left draining.
    drain_scanned: Arc<Tables>,
    draining: usize,
    commands: Receiver<Command>,
    wake: Arc<EventFd>,
    shared: Arc<Shared>,
    tick_ts: Timespec,
    stopping: bool,
    /// The clock, read once per loop turn: time since `shared.epoch`.
    now: Duration,
    /// The same in milliseconds (heartbeats, rate-limited log lines).
    now_ms: u64,
    /// A connection gave a copy buffer back: directions waiting for one may go on.
    bufs_returned: bool,
    /// Connections accepted so far, for unique ids.
    seq: u64,
    /// Start time (Unix seconds), the first part of unique ids.
    started_unix: u64,
    log: ConnLog,
    cqes: Vec<(u64, i32, u32)>,
    /// Completions taken off the ring to make room while submitting (EBUSY), handled
    /// after the current batch.
    stashed: Vec<(u64, i32, u32)>,
    /// Set when the ring fails: the worker ends, and the process with it.
    failed: Option<String>,
    workers: usize,
    /// When fd exhaustion was last logged, to log it at most once a second.
    emfile_logged_ms: Option<u64>,
}

impl Worker {
    pub fn new(spec: WorkerSpec) -> io::Result<Worker> {
        let ring = build_ring()?;
        let bufs = BufRing::new(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE)?;
        let pipes = PipePool::new(PIPES_IDLE.min(spec.pipes), spec.pipes);
        let snapshot = spec.tables.load_full();
        let mut w = Worker {
            ring,
            id: spec.id,
            bufs,
            pipes,
            listeners: spec
                .listeners
                .into_iter()
                .map(|l| Listener::new(l, spec.id, &spec.shared))
                .collect(),
            slots: Vec::with_capacity(spec.max_conns),
            free: Vec::new(),
            live: 0,
            held: VecDeque::new(),
            slots_reserved: 0,
            fd_starved: false,
            buf_waiters: VecDeque::new(),
            tables: spec.tables,
            picks: Vec::new(),
            queue: VecDeque::new(),
            drain_scanned: snapshot.clone(),
            draining: 0,
            snapshot,
            commands: spec.commands,
            wake: spec.wake,
            shared: spec.shared,
            tick_ts: Timespec::from(TICK),
            stopping: false,
            now: Duration::ZERO,
            now_ms: 0,
            bufs_returned: false,
            seq: 0,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            log: ConnLog::new(),
            cqes: Vec::with_capacity(1024),
            stashed: Vec::new(),
            failed: None,
            workers: spec.workers,
            emfile_logged_ms: None,
        };
        w.restagger();
        // Slots are made up front so a connection's index never moves; lowest first.
        w.slots = (0..spec.max_conns)
            .map(|_| Slot {
                gen: 0,
                entry: None,
            })
            .collect();
        w.free = (0..spec.max_conns as u32).rev().collect();
        if let Some(cpu) = spec.cpu {
            pin_to_cpu(cpu);
        }
        Ok(w)
    }

    /// The event loop, until every connection is done after `Stop`, or the ring fails.
    pub fn run(mut self) -> WorkerExit {
        self.update_clock();
        for i in 0..self.listeners.len() {
            self.fill_accepts(i);
        }
        self.arm_wake();
        self.arm_tick();
        loop {
            if self.stopping && self.live == 0 {
                break;
            }
            if self.failed.is_some() {
                break;
            }
            match self.enter(1) {
                Ok(_) => {}
                // EBUSY: completions must be reaped first, which is what comes next.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => {
                    self.failed = Some(format!("io_uring_enter failed: {e}"));
                    break;
                }
            }
            #[cfg(feature = "test-hooks")]
            crate::test_hooks::worker_turn(self.id);
            self.update_clock();
            self.cqes.clear();
            for cqe in self.ring.completion() {
                self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            loop {
                let cqes = std::mem::take(&mut self.cqes);
                for &(user_data, res, flags) in &cqes {
                    self.dispatch(user_data, res, flags);
                }
                self.cqes = cqes;
                self.cqes.clear();
                if self.stashed.is_empty() {
                    break;
                }
                std::mem::swap(&mut self.cqes, &mut self.stashed);
            }
            if self.log.len() >= logging::BATCH_BYTES {
                self.log.flush();
            }
        }
        self.log.flush();
        match self.failed.take() {
            Some(why) => WorkerExit::Failed(why),
            None => WorkerExit::Stopped,
        }
    }

    fn update_clock(&mut self) {
        self.now = self.shared.epoch.elapsed();
        self.now_ms = u64::try_from(self.now.as_millis()).unwrap_or(u64::MAX);
        self.shared.heartbeats[self.id].store(self.now_ms, Ordering::Relaxed);
    }

    fn dispatch(&mut self, user_data: u64, res: i32, flags: u32) {
        let Some(token) = Token::decode(user_data) else {
            return;
        };
        match token.op {
            Op::Accept => self.on_accept(token.slot as usize, res),
            Op::AcceptMulti => self.on_accept_multi(token.slot as usize, res, flags),
            Op::AcceptBackoff => {
                let i = token.slot as usize;
                self.listeners[i].backing_off = false;
                self.fill_accepts(i);
            }
            Op::Wake => self.on_wake(flags),
            Op::Tick => self.on_tick(),
            Op::Cancel => {}
            _ => self.on_conn_event(token, res, flags),
        }
    }

    /// Queues one SQE, submitting first when the queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        self.push_all(&[entry]);
    }

    /// Queues SQEs that must sit in the queue together (a linked chain). When the queue
    /// is full it is submitted; if the kernel refuses that for lack of room in the
    /// completion queue (EBUSY), completions are taken off the ring (handled later in this
    /// turn) until it accepts. A ring that fails otherwise ends the worker.
    fn push_all(&mut self, entries: &[squeue::Entry]) {
        loop {
            if self.failed.is_some() {
                return;
            }
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() >= entries.len() {
                for e in entries {
                    // SAFETY: every buffer, address and timespec an SQE points to lives in
                    // the worker (boxed where its owner may move) or in a boxed connection
                    // until the request completes.
                    let _ = unsafe { sq.push(e) };
                }
                return;
            }
            drop(sq);
            match self.enter(0) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    for cqe in self.ring.completion() {
                        self.stashed
                            .push((cqe.user_data(), cqe.result(), cqe.flags()));
                    }
                }
                Err(e) => self.failed = Some(format!("io_uring submit failed: {e}")),
            }
        }
    }

    /// Arms accepting on listener `i`: one multishot accept while the fd budget is
    /// plentiful; near it, single-shot accepts up to `ACCEPT_DEPTH`, each with one
    /// connection's fds and a slot reserved first, so that nothing is accepted past the
    /// budget (the kernel keeps the rest in the accept queue).
    fn fill_accepts(&mut self, i: usize) {
        if self.stopping {
            return;
        }
        let l = &self.listeners[i];
        let Some(fd) = l.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        if l.paused || l.backing_off {
            return;
        }
        if self.multishot_ok(i) {
            let l = &self.listeners[i];
            // Switch once the reserved accepts are all back.
            if !l.multishot && l.pending == 0 {
                self.listeners[i].multishot = true;
                let entry = opcode::AcceptMulti::new(Fd(fd))
                    .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    .build()
                    .user_data(Token::new(Op::AcceptMulti, i as u32).encode());
                self.push(entry);
            }
            return;
        }
        if self.listeners[i].multishot {
            // Near the budget: the multishot accept goes; reserved ones take over when
            // its last completion is in.
            self.cancel_accepts(i);
            return;
        }
        while self.listeners[i].pending < self.shared.fds.accept_depth() {
            if self.free.len() <= self.slots_reserved + self.held.len() {
                return;
            }
            if !self.shared.fds.try_reserve(CONN_FDS) {
                self.fd_starved = true;
                return;
            }
            self.slots_reserved += 1;
            self.listeners[i].pending += 1;
            let entry = opcode::Accept::new(Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .build()
                .user_data(Token::new(Op::Accept, i as u32).encode());
            self.push(entry);
        }
    }

    /// Re-arms accepts everywhere after fds or slots came back.
    fn refill_accepts(&mut self) {
        self.fd_starved = false;
        for i in 0..self.listeners.len() {
            self.fill_accepts(i);
        }
    }

    /// Cancels the accepts armed on listener `i` (they complete with ECANCELED, or with a
    /// connection that then waits in `held`).
    fn cancel_accepts(&mut self, i: usize) {
        let l = &self.listeners[i];
        let Some(fd) = l.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        if l.pending > 0 || l.multishot {
            self.push(cancel_fd(fd));
        }
    }

    /// A connection (or an error) from the multishot accept of listener `i`.
    fn on_accept_multi(&mut self, i: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.listeners[i].multishot = false;
        }
        if res >= 0 {
            self.listeners[i].backoff = ACCEPT_BACKOFF_MIN;
            if self.shared.fds.try_reserve(CONN_FDS) {
                self.admit(res, i);
            } else {
                // Taken just as the budget ran out: it waits for its fds, holding one
                // (the fd limit keeps room for such stragglers in its reserve).
                self.hold(res, i, false);
                self.fd_starved = true;
            }
        } else if let AcceptFailure::FdsExhausted = self.accept_failed(i, -res, !more) {
            return;
        }
        if !more || !self.multishot_ok(i) {
            self.fill_accepts(i);
        }
    }

    /// Whether listener `i` may take connections with multishot: far from the fd budget
    /// and from the global `maxconn`, and its frontend without a `maxconn` of its own, so
    /// that whatever one multishot accept takes in a turn (at most an accept queue) is
    /// served at once instead of piling up in `held`. Otherwise accepts are reserved one
    /// by one.
    fn multishot_ok(&mut self, i: usize) -> bool {
        if !self.shared.fds.plenty() || self.free.len() <= self.slots_reserved + self.held.len() {
            return false;
        }
        let room = self.shared.fds.multishot_room() / CONN_FDS;
        let conns = self.shared.conns.load(Ordering::Relaxed);
        if self
            .shared
            .maxconn
            .load(Ordering::Relaxed)
            .saturating_sub(conns)
            < room
        {
            return false;
        }
        let tables = self.current_tables();
        tables
            .frontend_of(self.listeners[i].addr)
            .is_some_and(|f| tables.frontends[f].maxconn == u32::MAX)
    }

    fn on_accept(&mut self, i: usize, res: i32) {
        self.listeners[i].pending -= 1;
        self.slots_reserved -= 1;
        if res >= 0 {
            self.listeners[i].backoff = ACCEPT_BACKOFF_MIN;
            // The connection takes over the reserved fds.
            self.admit(res, i);
            self.fill_accepts(i);
            return;
        }
        self.shared.fds.release(CONN_FDS);
        if let AcceptFailure::Other = self.accept_failed(i, -res, true) {
            self.fill_accepts(i);
        }
    }

    /// An accept on listener `i` failed with `errno`: fd exhaustion is logged and, when
    /// `may_back_off` (no multishot still armed), accepting backs off; a listener shut while
    /// this worker was stalled listens again; anything else is logged.
    fn accept_failed(&mut self, i: usize, errno: i32, may_back_off: bool) -> AcceptFailure {
        let error = io::Error::from_raw_os_error(errno);
        match errno {
            libc::ECANCELED => AcceptFailure::Cancelled,
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                self.log_fd_exhaustion(&format!("accept on {}: {error}", self.listeners[i].addr));
                if may_back_off && !self.stopping && !self.listeners[i].backing_off {
                    self.arm_accept_backoff(i);
                }
                AcceptFailure::FdsExhausted
            }
            libc::EINVAL if self.relisten(i) => AcceptFailure::Other,
            _ => {
                event!(warning:
                    "worker {}: accept on {}: {error}",
                    self.id,
                    self.listeners[i].addr
                );
                AcceptFailure::Other
            }
        }
    }

    /// After EINVAL from an accept: if listener `i` was shut while this worker was stalled
    /// (see `Listening::shut`), listens on it again and says so; true when it listens now.
    fn relisten(&mut self, i: usize) -> bool {
        if self.stopping {
            return false;
        }
        let l = &self.listeners[i];
        let Some(fd) = l.fd.as_ref() else {
            return false;
        };
        let listening =
            nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::AcceptConn).unwrap_or(true);
        if listening {
            return true;
        }
        let backlog = i32::try_from(crate::listener::BACKLOG).unwrap_or(i32::MAX);
        // SAFETY: listen(2) on the listener's own open descriptor.
        if unsafe { libc::listen(fd.as_raw_fd(), backlog) } != 0 {
            event!(error:
                "worker {}: cannot listen on {} again: {}",
                self.id,
                l.addr,
                io::Error::last_os_error()
            );
            return false;
        }
        event!(notice:
            "worker {}: back in the accept path on {} (it was taken out while stalled)",
            self.id,
            l.addr
        );
        true
    }

    fn arm_accept_backoff(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        l.backing_off = true;
        *l.backoff_ts = Timespec::from(l.backoff);
        l.backoff = (l.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        let entry = opcode::Timeout::new(&*l.backoff_ts as *const Timespec)
            .build()
            .user_data(Token::new(Op::AcceptBackoff, i as u32).encode());
        self.push(entry);
    }

    fn log_fd_exhaustion(&mut self, what: &str) {
        let due = self
            .emfile_logged_ms
            .is_none_or(|t| self.now_ms.saturating_sub(t) >= 1000);
        if due {
            self.emfile_logged_ms = Some(self.now_ms);
            event!(warning:
                "worker {}: {what}; backing off ({} connections open here)",
                self.id,
                self.live
            );
        }
    }

    /// Takes an accepted client socket, with its fds already reserved: starts it, or
    /// holds it while a connection limit is reached.
    fn admit(&mut self, fd: RawFd, listener: usize) {
        if self.stopping {
            self.close_unstarted(fd);
            return;
        }
        let tables = self.current_tables();
        let Some(frontend) = tables.frontend_of(self.listeners[listener].addr) else {
            // The bind was removed by a reload while this connection was being accepted.
            self.close_unstarted(fd);
            return;
        };
        if !self.held.is_empty() || !self.shared.try_acquire(&tables.frontends[frontend]) {
            // HAProxy's maxconn semantics: stop accepting; what arrives meanwhile waits in
            // the kernel's accept queue.
            tables.frontends[frontend]
                .stats
                .cells
                .of(self.id)
                .held
                .add(1);
            self.hold(fd, listener, true);
            return;
        }
        self.start_conn(fd, self.listeners[listener].addr, tables, frontend);
    }

    /// Holds an accepted connection (`reserved`: with its fds in the budget) and pauses
    /// its listener until it can start.
    fn hold(&mut self, fd: RawFd, listener: usize, reserved: bool) {
        self.held.push_back((fd, listener, reserved));
        if !self.listeners[listener].paused {
            self.listeners[listener].paused = true;
            self.cancel_accepts(listener);
        }
    }

    /// Closes an accepted socket that never became a connection, and frees its fds.
    fn close_unstarted(&mut self, fd: RawFd) {
        sys::close(fd);
        self.shared.fds.release(CONN_FDS);
    }

    /// Closes a held connection, freeing its fds if it had them reserved.
    fn close_held(&mut self, fd: RawFd, reserved: bool) {
        if reserved {
            self.close_unstarted(fd);
        } else {
            sys::close(fd);
        }
    }

    /// Starts held connections while limits allow, then resumes paused listeners.
    fn resume_held(&mut self) {
        while let Some(&(fd, listener, reserved)) = self.held.front() {
            let tables = self.current_tables();
            let Some(frontend) = tables.frontend_of(self.listeners[listener].addr) else {
                self.held.pop_front();
                self.close_held(fd, reserved);
                continue;
            };
            if !reserved {
                if !self.shared.fds.try_reserve(CONN_FDS) {
                    self.fd_starved = true;
                    return;
                }
                self.held[0].2 = true;
            }
            if !self.shared.try_acquire(&tables.frontends[frontend]) {
                return;
            }
            self.held.pop_front();
            self.start_conn(fd, self.listeners[listener].addr, tables, frontend);
        }
        for i in 0..self.listeners.len() {
            if self.listeners[i].paused {
                self.listeners[i].paused = false;
                self.fill_accepts(i);
            }
        }
    }

    fn arm_wake(&mut self) {
        let entry = opcode::PollAdd::new(Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(Token::new(Op::Wake, 0).encode());
        self.push(entry);
    }

    fn on_wake(&mut self, flags: u32) {
        // WouldBlock (a spurious wake-up) is harmless: the commands are read regardless.
        let _ = self.wake.read();
        if !cqueue::more(flags) {
            self.arm_wake();
        }
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::AddListeners(specs) => {
                    for spec in specs {
                        if self.stopping {
                            continue;
                        }
                        self.listeners
                            .push(Listener::new(spec, self.id, &self.shared));
                        self.fill_accepts(self.listeners.len() - 1);
                    }
                }
                Command::RemoveListeners(addrs) => self.remove_listeners(&addrs),
                Command::Stop => self.stop_accepting(),
                Command::Abort => {
                    self.stop_accepting();
                    self.abort_all();
                }
                Command::KillServer {
                    backend,
                    server,
                    reply,
                } => {
                    let n = self.kill_server(&backend, &server);
                    let _ = reply.send(n);
                }
            }
        }
    }

    fn remove_listeners(&mut self, addrs: &[SocketAddr]) {
        let gone: Vec<usize> = (0..self.listeners.len())
            .filter(|&i| self.listeners[i].fd.is_some() && addrs.contains(&self.listeners[i].addr))
            .collect();
        for &i in &gone {
            self.cancel_accepts(i);
        }
        // The cancels must reach the kernel while the sockets are still open.
        self.submit_now();
        for &i in &gone {
            self.listeners[i].fd = None;
            self.listeners[i].paused = false;
        }
        // Held connections of a removed bind are closed when their turn comes.
    }

    fn stop_accepting(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        for i in 0..self.listeners.len() {
            self.cancel_accepts(i);
        }
        // The cancels must reach the kernel while the listeners are still open.
        self.submit_now();
        for l in &mut self.listeners {
            l.fd = None;
        }
        while let Some((fd, _, reserved)) = self.held.pop_front() {
            self.close_held(fd, reserved);
        }
    }

    /// `io_uring_enter`: submits what is queued and waits for `want` completions (none:
    /// returns at once).
    fn enter(&mut self, want: usize) -> io::Result<usize> {
        #[cfg(feature = "test-hooks")]
        if let Some(e) = crate::test_hooks::injected_enter_error(self.id) {
            return Err(e);
        }
        if want == 0 {
            self.ring.submit()
        } else {
            self.ring.submit_and_wait(want)
        }
    }

    /// Submits what is queued now (cancels that must reach the kernel before their fd
    /// closes).
    fn submit_now(&mut self) {
        loop {
            match self.enter(0) {
                Ok(_) => return,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    for cqe in self.ring.completion() {
                        self.stashed
                            .push((cqe.user_data(), cqe.result(), cqe.flags()));
                    }
                }
                Err(e) => {
                    self.failed = Some(format!("io_uring submit failed: {e}"));
                    return;
                }
            }
        }
    }

    fn arm_tick(&mut self) {
        let entry = opcode::Timeout::new(&self.tick_ts as *const Timespec)
            .build()
            .user_data(Token::new(Op::Tick, 0).encode());
        self.push(entry);
    }

    fn on_tick(&mut self) {
        self.arm_tick();
        self.log.flush();
        self.sweep();
        self.expire_drained();
        if !self.held.is_empty() || self.listeners.iter().any(|l| l.paused) {
            self.resume_held();
        }
        // Fds freed by other workers: arm the accepts that could not be armed.
        if self.fd_starved {
            self.refill_accepts();
        }
        // A direction starved of copy buffers retries here too, in case none come back.
        self.serve_buf_waiters();
        // Servers may have freed up on other workers, and queue deadlines pass.
        self.serve_queue();
    }

    /// Fits the pick states to the current snapshot, staggered per worker so workers do
    /// not all start on the same server.
    fn restagger(&mut self) {
        let n = self.snapshot.backends.len();
        while self.picks.len() < n {
            self.picks.push(PickState::new(self.id as u64));
        }
        self.picks.truncate(n);
        for (b, pick) in self.snapshot.backends.iter().zip(self.picks.iter_mut()) {
            b.selector.stagger(pick, self.id, self.workers);
        }
    }

    /// The current table snapshot (cheap: a pointer compare when nothing changed).
    fn current_tables(&mut self) -> Arc<Tables> {
        let now = self.tables.load();
        if !Arc::ptr_eq(&now, &self.snapshot) {
            self.snapshot = arc_swap::Guard::into_inner(now);
            self.restagger();
        }
        self.snapshot.clone()
    }
}

impl Drop for Worker {
    /// A worker that ends with connections open (its ring failed, or it panicked) closes
    /// them and gives back what they hold, so nothing leaks and the shared counts stay
    /// true. After a normal stop there is nothing left to do here.
    fn drop(&mut self) {
        for slot in 0..self.slots.len() {
            if let Some(entry) = self.slots[slot].entry.take() {
                self.forget(entry);
            }
        }
        while let Some((fd, _, reserved)) = self.held.pop_front() {
            self.close_held(fd, reserved);
        }
        self.shared
            .fds
            .release(CONN_FDS * self.slots_reserved as u32);
        self.slots_reserved = 0;
        self.log.flush();
    }
}

/// What a failed accept leaves the caller to do.
enum AcceptFailure {
    /// Cancelled on purpose: nothing.
    Cancelled,
    /// No fd: wait for the back-off (or for fds to come back), do not accept again now.
    FdsExhausted,
    /// Logged, or the listener listens again: accept again.
    Other,
}

fn build_ring() -> io::Result<IoUring> {
    let mut b = IoUring::builder();
    b.setup_cqsize(16384)
        .setup_submit_all()
        .setup_single_issuer()
        .setup_defer_taskrun();
    match b.build(4096) {
        Ok(r) => Ok(r),
        // Older kernels lack DEFER_TASKRUN / SINGLE_ISSUER: they are optimisations only.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(16384)
            .setup_submit_all()
            .build(4096),
        Err(e) => Err(e),
    }
}

fn pin_to_cpu(cpu: usize) {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
            event!(warning: "cannot pin worker to CPU {cpu}: {e}");
        }
    }
}

/// Cancels every in-flight request on `fd`.
fn cancel_fd(fd: RawFd) -> squeue::Entry {
    opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
        .build()
        .user_data(Token::new(Op::Cancel, 0).encode())
}
