//! One worker: a thread pinned to a CPU with its own io_uring, its own SO_REUSEPORT
//! listeners and every connection it accepted. This file holds the event loop, accepting
//! (with connection limits and fd-exhaustion back-off) and control commands; `conn.rs`
//! holds what happens to one connection.

mod bufring;
mod conn;
mod pipes;
mod token;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use io_uring::types::{CancelBuilder, Fd, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use crate::balance::PickState;
use crate::health::PassiveReporter;
use crate::sys;
use crate::table::{FrontendTable, SharedTables, Tables};
use bufring::BufRing;
use conn::Conn;
use pipes::PipePool;
use token::{Op, Token};

/// Copy-mode buffers per worker and their size: 2048 × 32 KiB = 64 MiB of address space,
/// touched only as traffic needs it.
const BUF_COUNT: u16 = 2048;
const BUF_SIZE: u32 = 32 * 1024;
const BUF_GROUP: u16 = 0;
/// Pipes kept idle per worker (made at start), and the soft per-user pipe budget shared
/// by all workers (fs.pipe-user-pages-soft = 16384 pages = 1024 pipes of 64 KiB).
const PIPES_IDLE: usize = 16;
const PIPES_PER_USER: usize = 1024;
const TICK: Duration = Duration::from_millis(100);
/// Back-off before accepting again after EMFILE/ENFILE, doubled up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Connection log lines are written in batches of about this size (and every tick).
const LOG_FLUSH_BYTES: usize = 16 * 1024;

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
}

/// State shared by all workers: connection counts for `maxconn` and liveness heartbeats.
/// Touched once per connection, never per byte.
pub struct Shared {
    pub conns: AtomicU32,
    /// Global cap; a reload may change it.
    pub maxconn: AtomicU32,
    /// Per worker: milliseconds since `epoch` at its last loop turn.
    pub heartbeats: Vec<AtomicU64>,
    pub epoch: Instant,
    /// Where failed connects go for passive health marking.
    pub passive: PassiveReporter,
}

impl Shared {
    fn try_acquire(&self, frontend: &FrontendTable) -> bool {
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

    fn release(&self, frontend: &FrontendTable) {
        frontend.conns.fetch_sub(1, Ordering::Relaxed);
        self.conns.fetch_sub(1, Ordering::Relaxed);
    }
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
    pub wake: Arc<OwnedFd>,
    pub shared: Arc<Shared>,
    /// Most connections this worker holds at once (its share of the fd budget).
    pub max_conns: usize,
    pub workers: usize,
}

struct Listener {
    /// None once closed (stopping, or removed by a reload); the entry stays so that
    /// indices in tokens stay valid.
    fd: Option<OwnedFd>,
    addr: SocketAddr,
    armed: bool,
    /// Not accepting because a connection limit is reached.
    paused: bool,
    backoff: Duration,
    backoff_ts: Timespec,
}

impl Listener {
    fn new(spec: ListenerSpec) -> Listener {
        Listener {
            fd: Some(spec.fd),
            addr: spec.addr,
            armed: false,
            paused: false,
            backoff: ACCEPT_BACKOFF_MIN,
            backoff_ts: Timespec::new(),
        }
    }
}

struct Slot {
    gen: u16,
    conn: Option<Box<Conn>>,
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
    /// Accepted connections waiting for a free `maxconn` slot (their listener is paused).
    held: VecDeque<(RawFd, usize)>,
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
    wake: Arc<OwnedFd>,
    wake_buf: u64,
    shared: Arc<Shared>,
    tick_ts: Timespec,
    stopping: bool,
    /// Coarse clock, milliseconds since `shared.epoch`, read once per loop turn.
    now_ms: u64,
    /// Connections accepted so far, for unique ids.
    seq: u64,
    /// Start time (Unix seconds), the first part of unique ids.
    started_unix: u64,
    log: String,
    cqes: Vec<(u64, i32, u32)>,
    workers: usize,
    /// When fd exhaustion was last logged, to log it at most once a second.
    emfile_logged_ms: Option<u64>,
}

impl Worker {
    pub fn new(spec: WorkerSpec) -> io::Result<Worker> {
        let ring = build_ring()?;
        let bufs = BufRing::new(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE)?;
        let pipes = PipePool::new(PIPES_IDLE, (PIPES_PER_USER / spec.workers).max(PIPES_IDLE));
        let snapshot = spec.tables.load_full();
        let mut w = Worker {
            ring,
            id: spec.id,
            bufs,
            pipes,
            listeners: spec.listeners.into_iter().map(Listener::new).collect(),
            slots: Vec::with_capacity(spec.max_conns),
            free: Vec::new(),
            live: 0,
            held: VecDeque::new(),
            buf_waiters: VecDeque::new(),
            tables: spec.tables,
            picks: Vec::new(),
            queue: VecDeque::new(),
            drain_scanned: snapshot.clone(),
            draining: 0,
            snapshot,
            commands: spec.commands,
            wake: spec.wake,
            wake_buf: 0,
            shared: spec.shared,
            tick_ts: Timespec::from(TICK),
            stopping: false,
            now_ms: 0,
            seq: 0,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            log: String::with_capacity(LOG_FLUSH_BYTES * 2),
            cqes: Vec::with_capacity(1024),
            workers: spec.workers,
            emfile_logged_ms: None,
        };
        w.restagger();
        // Slots are made up front so a connection's index never moves; lowest first.
        w.slots = (0..spec.max_conns)
            .map(|_| Slot { gen: 0, conn: None })
            .collect();
        w.free = (0..spec.max_conns as u32).rev().collect();
        if let Some(cpu) = spec.cpu {
            pin_to_cpu(cpu);
        }
        Ok(w)
    }

    pub fn run(mut self) {
        self.update_clock();
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_wake();
        self.arm_tick();
        loop {
            if self.stopping && self.live == 0 {
                break;
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    eprintln!("ringlb: worker {}: io_uring_enter failed: {e}", self.id);
                    break;
                }
            }
            crate::ha::pause_if_stalled();
            self.update_clock();
            self.cqes.clear();
            for cqe in self.ring.completion() {
                self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            let cqes = std::mem::take(&mut self.cqes);
            for &(user_data, res, flags) in &cqes {
                self.dispatch(user_data, res, flags);
            }
            self.cqes = cqes;
            if self.log.len() >= LOG_FLUSH_BYTES {
                self.flush_log();
            }
        }
        self.flush_log();
    }

    fn update_clock(&mut self) {
        self.now_ms = self.shared.epoch.elapsed().as_millis() as u64;
        self.shared.heartbeats[self.id].store(self.now_ms, Ordering::Relaxed);
    }

    fn dispatch(&mut self, user_data: u64, res: i32, flags: u32) {
        let Some(token) = Token::decode(user_data) else {
            return;
        };
        match token.op {
            Op::Accept => self.on_accept(token.slot as usize, res, flags),
            Op::AcceptBackoff => {
                let i = token.slot as usize;
                if !self.stopping && !self.listeners[i].paused {
                    self.arm_accept(i);
                }
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

    /// Queues SQEs that must sit in the queue together (a linked chain).
    fn push_all(&mut self, entries: &[squeue::Entry]) {
        loop {
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() >= entries.len() {
                for e in entries {
                    // SAFETY: every buffer, address and timespec an SQE points to lives in
                    // the worker or in a boxed connection until the request completes.
                    let _ = unsafe { sq.push(e) };
                }
                return;
            }
            drop(sq);
            if let Err(e) = self.ring.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) {
                    eprintln!("ringlb: worker {}: submit failed: {e}", self.id);
                }
            }
        }
    }

    fn arm_accept(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        let Some(fd) = l.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        if l.armed {
            return;
        }
        l.armed = true;
        let entry = opcode::AcceptMulti::new(Fd(fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::new(Op::Accept, i as u32).encode());
        self.push(entry);
    }

    fn cancel_accept(&mut self, i: usize) {
        if !self.listeners[i].armed {
            return;
        }
        let target = Token::new(Op::Accept, i as u32).encode();
        self.push(
            opcode::AsyncCancel::new(target)
                .build()
                .user_data(Token::new(Op::Cancel, 0).encode()),
        );
    }

    fn on_accept(&mut self, i: usize, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        if !more {
            self.listeners[i].armed = false;
        }
        if res >= 0 {
            self.listeners[i].backoff = ACCEPT_BACKOFF_MIN;
            self.admit(res, i);
        } else {
            let errno = -res;
            match errno {
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    self.log_fd_exhaustion(&format!(
                        "accept on {}: {}",
                        self.listeners[i].addr,
                        io::Error::from_raw_os_error(errno)
                    ));
                    if !more && !self.stopping {
                        self.arm_accept_backoff(i);
                    }
                    return;
                }
                libc::ECANCELED => {}
                _ => eprintln!(
                    "ringlb: worker {}: accept on {}: {}",
                    self.id,
                    self.listeners[i].addr,
                    io::Error::from_raw_os_error(errno)
                ),
            }
        }
        if !more && !self.stopping && !self.listeners[i].paused {
            self.arm_accept(i);
        }
    }

    fn arm_accept_backoff(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        l.backoff_ts = Timespec::from(l.backoff);
        l.backoff = (l.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        let entry = opcode::Timeout::new(&l.backoff_ts as *const Timespec)
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
            eprintln!(
                "ringlb: worker {}: {what}; backing off ({} connections open here)",
                self.id, self.live
            );
        }
    }

    /// Takes an accepted client socket: starts it, or holds it while a limit is reached.
    fn admit(&mut self, fd: RawFd, listener: usize) {
        if self.stopping {
            sys::close(fd);
            return;
        }
        let tables = self.current_tables();
        let Some(frontend) = tables.frontend_of(self.listeners[listener].addr) else {
            // The bind was removed by a reload while this connection was being accepted.
            sys::close(fd);
            return;
        };
        if !self.held.is_empty()
            || self.free.is_empty()
            || !self.shared.try_acquire(&tables.frontends[frontend])
        {
            // HAProxy's maxconn semantics: stop accepting; what arrives meanwhile waits in
            // the kernel's accept queue.
            tables.frontends[frontend]
                .stats
                .cells
                .of(self.id)
                .held
                .add(1);
            self.held.push_back((fd, listener));
            if !self.listeners[listener].paused {
                self.listeners[listener].paused = true;
                self.cancel_accept(listener);
            }
            return;
        }
        self.start_conn(fd, tables, frontend);
    }

    /// Starts held connections while limits allow, then resumes paused listeners.
    fn resume_held(&mut self) {
        while let Some(&(fd, listener)) = self.held.front() {
            let tables = self.current_tables();
            let Some(frontend) = tables.frontend_of(self.listeners[listener].addr) else {
                self.held.pop_front();
                sys::close(fd);
                continue;
            };
            if self.free.is_empty() || !self.shared.try_acquire(&tables.frontends[frontend]) {
                return;
            }
            self.held.pop_front();
            self.start_conn(fd, tables, frontend);
        }
        for i in 0..self.listeners.len() {
            if self.listeners[i].paused {
                self.listeners[i].paused = false;
                if !self.stopping {
                    self.arm_accept(i);
                }
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
        // SAFETY: reading 8 bytes into a u64 from our own non-blocking eventfd.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                (&mut self.wake_buf as *mut u64).cast(),
                8,
            );
        }
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
                        self.listeners.push(Listener::new(spec));
                        self.arm_accept(self.listeners.len() - 1);
                    }
                }
                Command::RemoveListeners(addrs) => self.remove_listeners(&addrs),
                Command::Stop => self.stop_accepting(),
                Command::Abort => {
                    self.stop_accepting();
                    self.abort_all();
                }
            }
        }
    }

    fn remove_listeners(&mut self, addrs: &[SocketAddr]) {
        let gone: Vec<usize> = (0..self.listeners.len())
            .filter(|&i| self.listeners[i].fd.is_some() && addrs.contains(&self.listeners[i].addr))
            .collect();
        for &i in &gone {
            self.cancel_accept(i);
        }
        // The cancels must reach the kernel while the sockets are still open.
        let _ = self.ring.submit();
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
            self.cancel_accept(i);
        }
        // The cancels must reach the kernel while the listeners are still open.
        let _ = self.ring.submit();
        for l in &mut self.listeners {
            l.fd = None;
        }
        while let Some((fd, listener)) = self.held.pop_front() {
            let _ = listener;
            sys::close(fd);
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
        self.flush_log();
        self.expire_idle();
        self.expire_drained();
        if !self.held.is_empty() || self.listeners.iter().any(|l| l.paused) {
            self.resume_held();
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

    fn flush_log(&mut self) {
        if self.log.is_empty() {
            return;
        }
        let _ = io::stderr().lock().write_all(self.log.as_bytes());
        self.log.clear();
    }

    fn log_line(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = self.log.write_fmt(args);
        self.log.push('\n');
    }
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
            eprintln!("ringlb: cannot pin worker to CPU {cpu}: {e}");
        }
    }
}

/// Cancels every in-flight request on `fd`.
fn cancel_fd(fd: RawFd) -> squeue::Entry {
    opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
        .build()
        .user_data(Token::new(Op::Cancel, 0).encode())
}
