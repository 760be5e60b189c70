//! One client connection inside a worker: server selection and connect with retries,
//! forwarding in each direction (copy through the provided-buffer ring, or splice(2)
//! through a pooled pipe on readiness from io_uring), half-close, resets, idle timeouts,
//! and the log line written when it ends.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{Fd, Timespec};
use io_uring::{cqueue, opcode, squeue};
use socket2::SockAddr;

use std::sync::atomic::Ordering;

use super::pipes::Pipe;
use super::token::{Op, Token};
use super::{cancel_fd, Worker, BUF_GROUP, CONN_FDS};
use crate::balance::hash_addr;
use crate::config::{Forward, NoServer};
use crate::stats::{self, ServerCell};
use crate::sys::{self, Spliced};
use crate::table::{BackendTable, FrontendTable, Tables};

mod inspect;
use inspect::Inspecting;

/// Direction indices: bytes from the client to the server, and back.
const UP: usize = 0;
const DOWN: usize = 1;
/// Bytes asked of one splice into a pipe (a default pipe holds 64 KiB).
const SPLICE_CHUNK: usize = 64 * 1024;
/// Pipe fills one readiness event may do before yielding to other connections.
const SPLICE_ROUNDS: u32 = 8;
/// Auto mode: consecutive full copy buffers before a direction moves to splice, and
/// consecutive short splice rounds before it moves back.
const AUTO_TO_SPLICE: u8 = 2;
const AUTO_TO_COPY: u8 = 4;
const AUTO_SHORT_ROUND: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    ClientClose,
    ServerClose,
    ClientReset,
    ServerReset,
    ClientTimeout,
    ServerTimeout,
    NoServer,
    QueueTimeout,
    /// Its server was removed by a reload and `drain_timeout` passed.
    Drained,
    Shutdown,
    /// `accept_proxy`: the client's PROXY header was malformed or missing.
    BadProxy,
    /// `accept_proxy`: the header was not complete within `inspect_timeout`.
    ProxyTimeout,
    /// No route for the client's server name and no default backend.
    NoRoute,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::ClientClose => "client_close",
            End::ServerClose => "server_close",
            End::ClientReset => "client_reset",
            End::ServerReset => "server_reset",
            End::ClientTimeout => "client_timeout",
            End::ServerTimeout => "server_timeout",
            End::NoServer => "no_server",
            End::QueueTimeout => "queue_timeout",
            End::Drained => "drained",
            End::Shutdown => "shutdown",
            End::BadProxy => "bad_proxy",
            End::ProxyTimeout => "proxy_timeout",
            End::NoRoute => "no_route",
        }
    }

    /// A clean close says less than anything else that happened to the connection.
    fn is_close(self) -> bool {
        matches!(self, End::ClientClose | End::ServerClose)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the client's PROXY header or ClientHello before choosing a backend.
    Inspecting,
    /// Every usable server is at its `maxconn`: waiting in the worker's queue.
    Queued,
    Connecting,
    Forwarding,
    /// Cancels are out; the slot is freed when the last request completes.
    Closing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirState {
    Recv,
    Send,
    PollIn,
    PollOut,
    /// ENOBUFS: waiting for a copy buffer to come back.
    WaitBuf,
    Done,
}

/// A copy buffer holding bytes not yet sent.
#[derive(Debug, Clone, Copy)]
struct HeldBuf {
    bid: u16,
    sent: u32,
    len: u32,
}

#[derive(Debug)]
struct Dir {
    splice: bool,
    state: DirState,
    bytes: u64,
    buf: Option<HeldBuf>,
    pipe: Option<Pipe>,
    in_pipe: usize,
    /// Auto mode: consecutive full buffers (copy) or short rounds (splice).
    streak: u8,
}

impl Dir {
    fn new(forward: Forward) -> Dir {
        Dir {
            splice: forward == Forward::Splice,
            state: DirState::Done,
            bytes: 0,
            buf: None,
            pipe: None,
            in_pipe: 0,
            streak: 0,
        }
    }
}

pub struct Conn {
    client: RawFd,
    server: RawFd,
    frontend: usize,
    backend: usize,
    tables: Arc<Tables>,
    server_idx: Option<usize>,
    /// The server whose load counter this connection holds a unit of.
    counted: Option<usize>,
    attempts: u32,
    /// Coarse deadline while queued.
    queued_until: u64,
    /// Coarse deadline once a reload removed this connection's server.
    drain_until: Option<u64>,
    /// Counted in its backend's queue gauge.
    in_queue: bool,
    phase: Phase,
    dirs: [Dir; 2],
    inflight: u32,
    accepted: Instant,
    connect_started: Instant,
    connect_time: Option<Duration>,
    /// Coarse time of the last byte moved either way, for idle timeouts.
    active_ms: u64,
    end: Option<End>,
    peer: Option<SocketAddr>,
    /// Connect's target and timeout: the kernel reads both when the SQEs are submitted,
    /// and the box keeps their addresses stable until then.
    target: SockAddr,
    connect_timeout: Timespec,
    /// While inspecting; `None` once the backend is chosen.
    inspect: Option<Inspecting>,
    /// The backend is chosen (always, on frontends without routes).
    routed: bool,
    /// What the server gets before anything else: while inspecting, the client's first
    /// bytes (after any PROXY header it sent); once connected, our PROXY header in front.
    pre: Vec<u8>,
    /// How much of `pre` went out.
    pre_sent: usize,
    /// The client sent FIN before its first bytes went to the server.
    client_eof: bool,
    /// The peer that sent a PROXY header naming another client (which `peer` then holds).
    via: Option<SocketAddr>,
    /// The destination a PROXY header named.
    orig_dst: Option<SocketAddr>,
    /// The server name of the client's ClientHello.
    sni: Option<Box<str>>,
    /// Why inspection refused the client.
    reason: Option<Box<str>>,
    /// The unique id sent in a PROXY v2 header.
    id: Option<Box<str>>,
    /// This worker's connection number.
    seq: u64,
}

impl Conn {
    fn src(&self, d: usize) -> RawFd {
        if d == UP {
            self.client
        } else {
            self.server
        }
    }

    fn dst(&self, d: usize) -> RawFd {
        if d == UP {
            self.server
        } else {
            self.client
        }
    }

    fn forward(&self) -> Forward {
        self.tables.frontends[self.frontend].forward
    }

    /// Records why the connection ends; a reset or timeout outranks a clean close.
    fn set_end(&mut self, end: End) {
        if self.end.is_none_or(|e| e.is_close() && !end.is_close()) {
            self.end = Some(end);
        }
    }
}

/// Which end of the connection a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

fn reset_of(side: Side) -> End {
    match side {
        Side::Client => End::ClientReset,
        Side::Server => End::ServerReset,
    }
}

impl Worker {
    fn token(&self, op: Op, slot: u32, dir: usize) -> u64 {
        Token {
            op,
            dir: dir as u8,
            gen: self.slots[slot as usize].gen,
            slot,
        }
        .encode()
    }

    /// A new client connection of `frontend` in `tables`, already counted against its
    /// `maxconn`s.
    pub(super) fn start_conn(&mut self, fd: RawFd, tables: Arc<Tables>, frontend: usize) {
        let Some(slot) = self.free.pop() else {
            // Accepts reserve a slot before they are armed; keep the invariant visible.
            self.shared.release(&tables.frontends[frontend]);
            self.close_unstarted(fd);
            return;
        };
        let f = &tables.frontends[frontend];
        let forward = f.forward;
        let inspects = f.inspect.is_some();
        // Without routes `backend` is always set; with them it is only a placeholder until
        // the ClientHello has been read.
        let backend = f.backend.unwrap_or(0);
        let peer = if f.log || inspects || tables.backends[backend].hashes_source {
            sys::peer_addr(fd)
        } else {
            None
        };
        let now = Instant::now();
        self.count_accept(f);
        let mut conn = Box::new(Conn {
            client: fd,
            server: -1,
            frontend,
            backend,
            tables,
            server_idx: None,
            counted: None,
            attempts: 0,
            queued_until: 0,
            drain_until: None,
            in_queue: false,
            phase: Phase::Connecting,
            dirs: [Dir::new(forward), Dir::new(forward)],
            inflight: 0,
            accepted: now,
            connect_started: now,
            connect_time: None,
            active_ms: self.now_ms,
            end: None,
            peer,
            target: SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0))),
            connect_timeout: Timespec::new(),
            inspect: None,
            routed: !inspects,
            pre: Vec::new(),
            pre_sent: 0,
            client_eof: false,
            via: None,
            orig_dst: None,
            sni: None,
            reason: None,
            id: None,
            seq: self.seq,
        });
        self.seq += 1;
        self.live += 1;
        if !self.start_inspection(slot, &mut conn) {
            conn.routed = true;
            self.connect_next(slot, &mut conn);
        }
        self.put_back(slot, conn);
    }

    /// Returns a connection to its slot, or frees the slot if the connection is over.
    fn put_back(&mut self, slot: u32, conn: Box<Conn>) {
        if conn.phase == Phase::Closing && conn.inflight == 0 {
            self.release(slot, conn);
        } else {
            self.slots[slot as usize].conn = Some(conn);
        }
    }

    /// Connects to a server chosen by the backend's algorithm (another one than last time,
    /// when there is a choice), queues when every candidate is full, or ends the connection
    /// when retries are used up or no server is usable.
    fn connect_next(&mut self, slot: u32, conn: &mut Conn) {
        let tables = conn.tables.clone();
        let table = &tables.backends[conn.backend];
        self.leave_queue(conn);
        if conn.attempts > table.retries {
            self.no_server(slot, conn, End::NoServer);
            return;
        }
        if conn.attempts > 0 {
            // No further attempt for a client that has gone (reset, or closed both ways).
            if let Some(end) = client_gone(conn.client) {
                conn.set_end(end);
                self.begin_close(slot, conn);
                return;
            }
        }
        let idx = match self.pick_server(conn, table) {
            Pick::Server(idx) => idx,
            Pick::Full => {
                let first = conn.phase != Phase::Queued;
                if first {
                    conn.phase = Phase::Queued;
                    conn.queued_until = deadline(self.now_ms, table.timeouts.queue);
                }
                if self.now_ms >= conn.queued_until {
                    self.no_server(slot, conn, End::QueueTimeout);
                } else {
                    self.enter_queue(conn, first);
                    self.queue.push_back((slot, self.slots[slot as usize].gen));
                }
                return;
            }
            Pick::None => {
                self.no_server(slot, conn, End::NoServer);
                return;
            }
        };
        conn.phase = Phase::Connecting;
        let server = &table.servers[idx];
        let timeout = table.timeouts.connect;
        if conn.attempts > 0 {
            server.stats.cells.of(self.id).retries.add(1);
        }
        conn.attempts += 1;
        conn.server_idx = Some(idx);
        let fd = match sys::tcp_socket_for(&server.addr) {
            Ok(fd) => fd,
            Err(e) => {
                // The fd budget keeps this from happening for want of fds in this process
                // (EMFILE); the system-wide table (ENFILE) or kernel memory can still run
                // out. The client is not failed for it: it waits in the queue, as for a
                // full server, and tries again on the next tick.
                self.log_fd_exhaustion(&format!("socket for {}: {e}", server.addr));
                self.uncount(conn);
                conn.attempts -= 1;
                if conn.phase != Phase::Queued {
                    conn.phase = Phase::Queued;
                    conn.queued_until = deadline(self.now_ms, table.timeouts.queue);
                }
                self.enter_queue(conn, false);
                self.queue.push_back((slot, self.slots[slot as usize].gen));
                return;
            }
        };
        conn.server = fd;
        conn.target = SockAddr::from(server.addr);
        conn.connect_timeout = Timespec::from(timeout);
        conn.connect_started = Instant::now();
        let connect = opcode::Connect::new(Fd(fd), conn.target.as_ptr().cast(), conn.target.len())
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(self.token(Op::Connect, slot, 0));
        let timer = opcode::LinkTimeout::new(&conn.connect_timeout as *const Timespec)
            .build()
            .user_data(self.token(Op::ConnectTimeout, slot, 0));
        conn.inflight += 2;
        self.push_all(&[connect, timer]);
    }

    pub(super) fn on_conn_event(&mut self, token: Token, res: i32, flags: u32) {
        let slot = token.slot;
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if entry.gen != token.gen {
            return;
        }
        let Some(mut conn) = entry.conn.take() else {
            return;
        };
        conn.inflight -= 1;
        let d = token.dir as usize;
        if conn.phase == Phase::Closing {
            // A buffer the kernel picked for a recv we no longer want goes straight back.
            if let (Op::Recv, Some(bid)) = (token.op, cqueue::buffer_select(flags)) {
                self.bufs.recycle(bid);
            }
        } else {
            match token.op {
                Op::Connect => self.on_connect(slot, &mut conn, res),
                Op::ConnectTimeout => {}
                Op::InspectRecv => self.on_inspect_recv(slot, &mut conn, res),
                Op::Preface => self.on_preface_sent(slot, &mut conn, res),
                Op::Recv => self.on_recv(slot, &mut conn, d, res, flags),
                Op::Send => self.on_send(slot, &mut conn, d, res),
                Op::PollIn | Op::PollOut => {
                    if res < 0 {
                        let side = if token.op == Op::PollIn { d } else { 1 - d };
                        self.abort(slot, &mut conn, side_of(side), reset_of(side_of(side)));
                    } else {
                        self.pump_splice(slot, &mut conn, d);
                    }
                }
                _ => {}
            }
        }
        self.put_back(slot, conn);
    }

    fn on_connect(&mut self, slot: u32, conn: &mut Conn, res: i32) {
        if res < 0 {
            sys::close(conn.server);
            conn.server = -1;
            self.uncount(conn);
            if let Some(stats) = self.server_cell(conn) {
                stats.connect_errors.add(1);
            }
            self.report_connect_failure(conn);
            self.connect_next(slot, conn);
            return;
        }
        conn.connect_time = Some(conn.connect_started.elapsed());
        if let Some(stats) = self.server_cell(conn) {
            stats.conns.add(1);
        }
        conn.phase = Phase::Forwarding;
        conn.active_ms = self.now_ms;
        if !self.send_preface(slot, conn) {
            self.start_dir(slot, conn, UP);
            self.start_dir(slot, conn, DOWN);
        }
    }

    /// Waits for bytes from the direction's source: a recv into the buffer ring (copy) or
    /// a readiness poll (splice).
    fn start_dir(&mut self, slot: u32, conn: &mut Conn, d: usize) {
        let src = conn.src(d);
        let entry = if conn.dirs[d].splice {
            conn.dirs[d].state = DirState::PollIn;
            opcode::PollAdd::new(Fd(src), (libc::POLLIN | libc::POLLRDHUP) as u32)
                .build()
                .user_data(self.token(Op::PollIn, slot, d))
        } else {
            conn.dirs[d].state = DirState::Recv;
            opcode::Recv::new(Fd(src), std::ptr::null_mut(), self.bufs.buf_size())
                .buf_group(BUF_GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
                .user_data(self.token(Op::Recv, slot, d))
        };
        conn.inflight += 1;
        self.push(entry);
    }

    fn on_recv(&mut self, slot: u32, conn: &mut Conn, d: usize, res: i32, flags: u32) {
        if res == -libc::ENOBUFS {
            conn.dirs[d].state = DirState::WaitBuf;
            self.buf_waiters
                .push_back((slot, self.slots[slot as usize].gen, d as u8));
            return;
        }
        if res < 0 {
            self.abort(slot, conn, side_of(d), reset_of(side_of(d)));
            return;
        }
        if res == 0 {
            self.eof(slot, conn, d);
            return;
        }
        let Some(bid) = cqueue::buffer_select(flags) else {
            // The kernel always names the buffer of a successful buffer-select recv.
            self.abort(slot, conn, side_of(d), reset_of(side_of(d)));
            return;
        };
        let n = res as u32;
        conn.active_ms = self.now_ms;
        self.count_bytes(conn, d, n as u64);
        let dir = &mut conn.dirs[d];
        dir.bytes += n as u64;
        if conn.tables.frontends[conn.frontend].forward == Forward::Auto {
            dir.streak = if n == self.bufs.buf_size() {
                dir.streak.saturating_add(1)
            } else {
                0
            };
        }
        dir.buf = Some(HeldBuf {
            bid,
            sent: 0,
            len: n,
        });
        self.send_held(slot, conn, d);
    }

    fn send_held(&mut self, slot: u32, conn: &mut Conn, d: usize) {
        let Some(b) = conn.dirs[d].buf else {
            return;
        };
        // SAFETY (of the pointer handed to the kernel): `sent < len <= buf_size`, inside
        // buffer `bid`, which this direction owns until the send completes.
        let ptr = self.bufs.ptr(b.bid).wrapping_add(b.sent as usize);
        let entry = opcode::Send::new(Fd(conn.dst(d)), ptr, b.len - b.sent)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(self.token(Op::Send, slot, d));
        conn.dirs[d].state = DirState::Send;
        conn.inflight += 1;
        self.push(entry);
    }

    fn on_send(&mut self, slot: u32, conn: &mut Conn, d: usize, res: i32) {
        if res <= 0 {
            let side = side_of(1 - d);
            self.abort(slot, conn, side, reset_of(side));
            return;
        }
        conn.active_ms = self.now_ms;
        let Some(mut b) = conn.dirs[d].buf else {
            return;
        };
        b.sent += res as u32;
        if b.sent < b.len {
            conn.dirs[d].buf = Some(b);
            self.send_held(slot, conn, d);
            return;
        }
        conn.dirs[d].buf = None;
        self.bufs.recycle(b.bid);
        let dir = &mut conn.dirs[d];
        if dir.streak >= AUTO_TO_SPLICE
            && conn.tables.frontends[conn.frontend].forward == Forward::Auto
        {
            dir.splice = true;
            dir.streak = 0;
        }
        self.start_dir(slot, conn, d);
        self.serve_buf_waiters();
    }

    /// Restarts directions that found the buffer ring empty, while buffers last.
    pub(super) fn serve_buf_waiters(&mut self) {
        let mut budget = self.buf_waiters.len();
        while budget > 0 {
            budget -= 1;
            let Some((slot, gen, d)) = self.buf_waiters.pop_front() else {
                return;
            };
            let entry = &mut self.slots[slot as usize];
            if entry.gen != gen {
                continue;
            }
            let Some(mut conn) = entry.conn.take() else {
                continue;
            };
            if conn.phase == Phase::Forwarding && conn.dirs[d as usize].state == DirState::WaitBuf {
                self.start_dir(slot, &mut conn, d as usize);
            }
            self.put_back(slot, conn);
            // One restart per returned buffer is enough; the rest wait for the next.
            return;
        }
    }

    /// Moves bytes with splice(2) until the source is drained, the destination is full,
    /// or this connection has had its share of the loop turn.
    fn pump_splice(&mut self, slot: u32, conn: &mut Conn, d: usize) {
        let (src, dst) = (conn.src(d), conn.dst(d));
        let mut moved = 0usize;
        for _ in 0..SPLICE_ROUNDS {
            if conn.dirs[d].in_pipe > 0 {
                let Some(pipe) = conn.dirs[d].pipe.as_ref() else {
                    return;
                };
                match sys::splice(pipe.read, dst, conn.dirs[d].in_pipe) {
                    Ok(Spliced::Moved(m)) => {
                        conn.dirs[d].in_pipe -= m;
                        conn.active_ms = self.now_ms;
                    }
                    Ok(Spliced::WouldBlock | Spliced::Eof) => {}
                    Err(_) => {
                        let side = side_of(1 - d);
                        self.abort(slot, conn, side, reset_of(side));
                        return;
                    }
                }
                if conn.dirs[d].in_pipe > 0 {
                    self.wait_writable(slot, conn, d);
                    return;
                }
            }
            if conn.dirs[d].pipe.is_none() {
                match self.pipes.take() {
                    Some(p) => conn.dirs[d].pipe = Some(p),
                    None => {
                        // No pipe to be had: this direction copies instead.
                        conn.dirs[d].splice = false;
                        self.start_dir(slot, conn, d);
                        return;
                    }
                }
            }
            let Some(pipe_w) = conn.dirs[d].pipe.as_ref().map(|p| p.write) else {
                return;
            };
            match sys::splice(src, pipe_w, SPLICE_CHUNK) {
                Ok(Spliced::Moved(n)) => {
                    conn.dirs[d].in_pipe = n;
                    conn.dirs[d].bytes += n as u64;
                    self.count_bytes(conn, d, n as u64);
                    conn.active_ms = self.now_ms;
                    moved += n;
                }
                Ok(Spliced::Eof) => {
                    self.return_pipe(conn, d);
                    self.eof(slot, conn, d);
                    return;
                }
                Ok(Spliced::WouldBlock) => break,
                Err(_) => {
                    self.abort(slot, conn, side_of(d), reset_of(side_of(d)));
                    return;
                }
            }
        }
        if conn.dirs[d].in_pipe > 0 {
            // The round budget ran out with bytes in the pipe: flush on the next poll.
            self.wait_writable(slot, conn, d);
            return;
        }
        self.return_pipe(conn, d);
        if conn.forward() == Forward::Auto {
            let dir = &mut conn.dirs[d];
            dir.streak = if moved < AUTO_SHORT_ROUND {
                dir.streak.saturating_add(1)
            } else {
                0
            };
            if dir.streak >= AUTO_TO_COPY {
                dir.splice = false;
                dir.streak = 0;
            }
        }
        self.start_dir(slot, conn, d);
    }

    /// Bytes wait in the pipe of direction `d`: poll its destination for room.
    fn wait_writable(&mut self, slot: u32, conn: &mut Conn, d: usize) {
        conn.dirs[d].state = DirState::PollOut;
        conn.inflight += 1;
        let entry = opcode::PollAdd::new(Fd(conn.dst(d)), libc::POLLOUT as u32)
            .build()
            .user_data(self.token(Op::PollOut, slot, d));
        self.push(entry);
    }

    fn return_pipe(&mut self, conn: &mut Conn, d: usize) {
        if let Some(p) = conn.dirs[d].pipe.take() {
            if conn.dirs[d].in_pipe == 0 {
                self.pipes.give(p);
            } else {
                self.pipes.discard(p);
            }
            conn.dirs[d].in_pipe = 0;
        }
    }

    /// The source of direction `d` sent FIN: pass it on and finish when both are done.
    fn eof(&mut self, slot: u32, conn: &mut Conn, d: usize) {
        conn.dirs[d].state = DirState::Done;
        sys::shutdown_write(conn.dst(d));
        conn.set_end(if d == UP {
            End::ClientClose
        } else {
            End::ServerClose
        });
        if conn.dirs.iter().all(|x| x.state == DirState::Done) {
            self.begin_close(slot, conn);
        }
    }

    /// `side` failed (reset, or an error on its socket): the other side gets a reset too.
    fn abort(&mut self, slot: u32, conn: &mut Conn, side: Side, end: End) {
        conn.set_end(end);
        let other = match side {
            Side::Client => conn.server,
            Side::Server => conn.client,
        };
        if other >= 0 {
            sys::set_linger_zero(other);
        }
        self.begin_close(slot, conn);
    }

    /// Cancels whatever is in flight; the slot is freed once the last completion is in.
    fn begin_close(&mut self, _slot: u32, conn: &mut Conn) {
        if conn.phase == Phase::Closing {
            return;
        }
        conn.phase = Phase::Closing;
        if conn.inflight > 0 {
            let mut cancels = Vec::with_capacity(2);
            for fd in [conn.client, conn.server] {
                if fd >= 0 {
                    cancels.push(cancel_fd(fd));
                }
            }
            for c in cancels {
                self.push(c);
            }
        }
    }

    /// Closes sockets, returns buffers and pipes, logs, and frees the slot.
    fn release(&mut self, slot: u32, conn: Box<Conn>) {
        let mut conn = conn;
        for d in [UP, DOWN] {
            if let Some(b) = conn.dirs[d].buf.take() {
                self.bufs.recycle(b.bid);
            }
            self.return_pipe(&mut conn, d);
        }
        sys::close(conn.client);
        if conn.server >= 0 {
            sys::close(conn.server);
        }
        self.shared.fds.release(CONN_FDS);
        let freed_server = conn.counted.is_some();
        self.uncount(&mut conn);
        self.count_end(&mut conn);
        self.shared.release(&conn.tables.frontends[conn.frontend]);
        let entry = &mut self.slots[slot as usize];
        entry.gen = entry.gen.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        if conn.tables.frontends[conn.frontend].log {
            self.log_conn(&conn);
        }
        if !self.held.is_empty() {
            self.resume_held();
        }
        if freed_server && !self.queue.is_empty() {
            self.serve_queue();
        }
        self.serve_buf_waiters();
        if self.fd_starved {
            self.refill_accepts();
        }
    }

    /// A connection of a worker that is ending abnormally: closes its sockets and gives
    /// back what it holds, without logging or touching the ring.
    pub(super) fn forget(&mut self, mut conn: Box<Conn>) {
        for d in [UP, DOWN] {
            if let Some(b) = conn.dirs[d].buf.take() {
                self.bufs.recycle(b.bid);
            }
            if let Some(p) = conn.dirs[d].pipe.take() {
                self.pipes.discard(p);
            }
        }
        sys::close(conn.client);
        if conn.server >= 0 {
            sys::close(conn.server);
        }
        self.shared.fds.release(CONN_FDS);
        self.uncount(&mut conn);
        self.leave_queue(&mut conn);
        self.shared.release(&conn.tables.frontends[conn.frontend]);
        self.live -= 1;
    }

    fn log_conn(&mut self, conn: &Conn) {
        let backend = &conn.tables.backends[conn.backend];
        let backend_name = if conn.routed {
            backend.name.as_str()
        } else {
            "-"
        };
        let server = match (conn.server_idx, conn.connect_time) {
            (Some(i), Some(_)) => backend.servers[i].name.as_str(),
            _ => "-",
        };
        let f = &conn.tables.frontends[conn.frontend];
        let mut extra = String::new();
        if let Some(via) = conn.via {
            let _ = write!(extra, " via={via}");
        }
        if f.inspect.as_ref().is_some_and(|t| t.routes_tls()) {
            let _ = write!(extra, " sni={}", conn.sni.as_deref().unwrap_or("-"));
        }
        if let Some(id) = &conn.id {
            let _ = write!(extra, " id={id}");
        }
        let client = conn.peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        let connect = conn.connect_time.map_or_else(
            || "-".to_string(),
            |t| format!("{:.3}", t.as_secs_f64() * 1000.0),
        );
        let id = self.id;
        self.log_line(format_args!(
            "conn worker={} client={} frontend={} server={}/{} connect_ms={} duration_ms={:.3} bytes_in={} bytes_out={} end={}{}{}",
            id,
            client,
            f.name,
            backend_name,
            server,
            connect,
            conn.accepted.elapsed().as_secs_f64() * 1000.0,
            conn.dirs[UP].bytes,
            conn.dirs[DOWN].bytes,
            conn.end.unwrap_or(End::Shutdown).as_str(),
            extra,
            conn.reason
                .as_deref()
                .map_or_else(String::new, |r| format!(" reason={r:?}")),
        ));
    }

    /// Ends connections that moved no byte for longer than their idle timeout.
    pub(super) fn expire_idle(&mut self) {
        let now = self.now_ms;
        for slot in 0..self.slots.len() as u32 {
            let Some(conn) = self.slots[slot as usize].conn.as_ref() else {
                continue;
            };
            if conn.phase == Phase::Inspecting {
                if let Some(mut conn) = self.slots[slot as usize].conn.take() {
                    self.expire_inspection(slot, &mut conn);
                    self.put_back(slot, conn);
                }
                continue;
            }
            if conn.phase != Phase::Forwarding {
                continue;
            }
            let idle = now.saturating_sub(conn.active_ms);
            let t = &conn.tables.backends[conn.backend].timeouts;
            let waiting_client = conn.dirs[UP].state != DirState::Done;
            let waiting_server = conn.dirs[DOWN].state != DirState::Done;
            let client_due = waiting_client && idle >= millis(t.client);
            let server_due = waiting_server && idle >= millis(t.server);
            let end = match (client_due, server_due) {
                (true, true) if t.server < t.client => End::ServerTimeout,
                (true, _) => End::ClientTimeout,
                (false, true) => End::ServerTimeout,
                (false, false) => continue,
            };
            let Some(mut conn) = self.slots[slot as usize].conn.take() else {
                continue;
            };
            conn.set_end(end);
            self.begin_close(slot, &mut conn);
            self.put_back(slot, conn);
        }
    }

    /// Ends connections whose server a reload removed once `drain_timeout` has passed.
    /// Scans only when the snapshot changed or a deadline is pending.
    pub(super) fn expire_drained(&mut self) {
        let current = self.current_tables();
        let Some(timeout) = current.drain_timeout else {
            return;
        };
        if Arc::ptr_eq(&current, &self.drain_scanned) && self.draining == 0 {
            return;
        }
        self.drain_scanned = current.clone();
        let now = self.now_ms;
        let mut draining = 0;
        for slot in 0..self.slots.len() as u32 {
            let Some(conn) = self.slots[slot as usize].conn.as_mut() else {
                continue;
            };
            if conn.phase != Phase::Forwarding || Arc::ptr_eq(&conn.tables, &current) {
                continue;
            }
            let Some(server) = conn.server_idx else {
                continue;
            };
            if current.has_server_of(&conn.tables, conn.backend, server) {
                // Still there, or back again after a later reload.
                conn.drain_until = None;
                continue;
            }
            let until = *conn.drain_until.get_or_insert(deadline(now, timeout));
            if now < until {
                draining += 1;
                continue;
            }
            let Some(mut conn) = self.slots[slot as usize].conn.take() else {
                continue;
            };
            conn.set_end(End::Drained);
            self.begin_close(slot, &mut conn);
            self.put_back(slot, conn);
        }
        self.draining = draining;
    }

    /// Closes every connection (end of the grace period).
    pub(super) fn abort_all(&mut self) {
        for slot in 0..self.slots.len() as u32 {
            let Some(mut conn) = self.slots[slot as usize].conn.take() else {
                continue;
            };
            if conn.phase != Phase::Closing {
                conn.end = Some(End::Shutdown);
            }
            self.begin_close(slot, &mut conn);
            self.put_back(slot, conn);
        }
    }
}

/// What picking a server gave.
enum Pick {
    /// A server, with a unit of its load counter taken.
    Server(usize),
    /// Every usable server is at its `maxconn`.
    Full,
    /// No server is usable.
    None,
}

impl Worker {
    /// Picks a server and takes a unit of its load, skipping servers at their `maxconn`.
    fn pick_server(&mut self, conn: &mut Conn, table: &BackendTable) -> Pick {
        let key = conn.peer.map_or(0, |p| hash_addr(p.ip()));
        let mut exclude = conn.server_idx;
        let pick = &mut self.picks[conn.backend];
        for _ in 0..table.selector.candidates() {
            let Some(idx) = table.selector.pick(pick, key, &*table.load, exclude) else {
                return Pick::None;
            };
            let load = &table.load[idx];
            let before = load.fetch_add(1, Ordering::Relaxed);
            if before < table.servers[idx].maxconn {
                conn.counted = Some(idx);
                stats::raise_peak(&table.servers[idx].stats.peak, before + 1);
                return Pick::Server(idx);
            }
            load.fetch_sub(1, Ordering::Relaxed);
            exclude = Some(idx);
        }
        if table.selector.candidates() == 0 {
            Pick::None
        } else {
            Pick::Full
        }
    }

    /// Passive health marking: a failed connect counts against a checked server.
    fn report_connect_failure(&self, conn: &Conn) {
        let table = &conn.tables.backends[conn.backend];
        if !table.passive_checks {
            return;
        }
        let target = conn.server_idx.and_then(|i| table.servers[i].check);
        if let Some(t) = target {
            self.shared.passive.passive_failure(t);
        }
    }

    fn uncount(&mut self, conn: &mut Conn) {
        if let Some(idx) = conn.counted.take() {
            conn.tables.backends[conn.backend].load[idx].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// No server will take this client: close it at once, with a RST unless the backend
    /// asks for a plain close.
    fn no_server(&mut self, slot: u32, conn: &mut Conn, end: End) {
        conn.set_end(end);
        conn.tables.frontends[conn.frontend]
            .stats
            .cells
            .of(self.id)
            .no_server
            .add(1);
        if conn.tables.backends[conn.backend].no_server == NoServer::Reset {
            sys::set_linger_zero(conn.client);
        }
        self.begin_close(slot, conn);
    }

    /// Gives queued connections a server when one has room, and ends those whose queue
    /// timeout passed.
    pub(super) fn serve_queue(&mut self) {
        for _ in 0..self.queue.len() {
            let Some((slot, gen)) = self.queue.pop_front() else {
                return;
            };
            let entry = &mut self.slots[slot as usize];
            if entry.gen != gen {
                continue;
            }
            let Some(mut conn) = entry.conn.take() else {
                continue;
            };
            if conn.phase == Phase::Queued {
                // Connects, re-queues (keeping the deadline) or ends the connection.
                self.connect_next(slot, &mut conn);
            }
            self.put_back(slot, conn);
        }
    }
}

/// `now_ms` plus `timeout`, in the worker's coarse milliseconds. Config durations are
/// bounded, and this saturates anyway: a deadline never wraps into the past.
pub(super) fn deadline(now_ms: u64, timeout: Duration) -> u64 {
    now_ms.saturating_add(millis(timeout))
}

/// A duration in milliseconds, saturating instead of truncating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether the client has gone for good (an error or reset on its socket, or closed in
/// both directions), checked before another connect attempt on its behalf. A client
/// that only half-closed still waits for its answer, so that is not "gone".
fn client_gone(fd: RawFd) -> Option<End> {
    match sys::poll_now(fd, libc::POLLIN | libc::POLLRDHUP) {
        r if r & libc::POLLERR != 0 => Some(End::ClientReset),
        r if r & libc::POLLHUP != 0 => Some(End::ClientClose),
        _ => None,
    }
}

fn side_of(d: usize) -> Side {
    if d == UP {
        Side::Client
    } else {
        Side::Server
    }
}

/// Counter hooks: each writes only this worker's cells (see `stats::counters`).
impl Worker {
    fn count_accept(&self, f: &FrontendTable) {
        f.stats.cells.of(self.id).conns.add(1);
        stats::raise_peak(&f.stats.peak, f.conns.load(Ordering::Relaxed));
    }

    /// This worker's cell of the connection's current server.
    fn server_cell<'c>(&self, conn: &'c Conn) -> Option<&'c ServerCell> {
        let i = conn.server_idx?;
        Some(
            conn.tables.backends[conn.backend].servers[i]
                .stats
                .cells
                .of(self.id),
        )
    }

    /// `n` bytes read from the source of direction `d`.
    fn count_bytes(&self, conn: &Conn, d: usize, n: u64) {
        let f = conn.tables.frontends[conn.frontend].stats.cells.of(self.id);
        let s = self.server_cell(conn);
        if d == UP {
            f.bytes_in.add(n);
            if let Some(s) = s {
                s.bytes_in.add(n);
            }
        } else {
            f.bytes_out.add(n);
            if let Some(s) = s {
                s.bytes_out.add(n);
            }
        }
    }

    fn enter_queue(&self, conn: &mut Conn, first: bool) {
        let cell = conn.tables.backends[conn.backend].stats.cells.of(self.id);
        cell.queued.add(1);
        if first {
            cell.queued_total.add(1);
        }
        conn.in_queue = true;
    }

    fn leave_queue(&self, conn: &mut Conn) {
        if conn.in_queue {
            conn.in_queue = false;
            conn.tables.backends[conn.backend]
                .stats
                .cells
                .of(self.id)
                .queued
                .sub(1);
        }
    }

    /// A connection ends: its times go into its server's histograms.
    fn count_end(&self, conn: &mut Conn) {
        self.leave_queue(conn);
        let Some(connect_time) = conn.connect_time else {
            return;
        };
        if let Some(s) = self.server_cell(conn) {
            s.record(Some(connect_time), conn.accepted.elapsed());
        }
    }
}
