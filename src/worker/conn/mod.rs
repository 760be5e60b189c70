//! One client connection as a state machine in pure code: no ring, no fds, no clock. The
//! worker feeds it completions and deadlines with the time (`now`, since the worker's
//! epoch) and carries out what it asks through [`ConnIo`]: submissions (recv, send, poll,
//! connect), the few synchronous calls of the data path (splice, reading what a client
//! already sent), and counters. The connection decides what comes next: connect, retry or
//! queue; copy or splice and when to switch; half-close, reset; which end reason wins;
//! when it is over.
//!
//! It calls the worker through a trait rather than returning a list of actions because a
//! third of what it asks needs an answer on the spot (which server, whether a pipe is free,
//! how much a splice moved, whether the client is gone, the route for a server name): with
//! returned actions each of those would become a second state and a second round trip. The
//! tests implement the trait with a recorder, so the connection is still tested alone.
//!
//! `connect.rs` holds server choice and connect, `forward.rs` moving bytes, `inspect.rs`
//! reading a client's first bytes, `sweep.rs` the deadlines; `tests.rs` drives connections
//! through completion sequences in virtual time.

mod connect;
mod forward;
mod inspect;
mod sweep;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Forward;
use crate::sys::Spliced;

pub use inspect::InspectPlan;

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Up = 0,
    /// Server to client.
    Down = 1,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::Up, Dir::Down];

    pub fn from_index(i: u8) -> Dir {
        if i == 0 {
            Dir::Up
        } else {
            Dir::Down
        }
    }

    /// The end bytes of this direction come from.
    pub fn source(self) -> Side {
        match self {
            Dir::Up => Side::Client,
            Dir::Down => Side::Server,
        }
    }

    /// The end bytes of this direction go to.
    pub fn sink(self) -> Side {
        match self {
            Dir::Up => Side::Server,
            Dir::Down => Side::Client,
        }
    }
}

/// One end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// What ended the connection first; one log line per connection says it.
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
    /// Closed by an admin (`shutdown sessions server`).
    Killed,
}

impl End {
    pub fn as_str(self) -> &'static str {
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
            End::Killed => "killed",
        }
    }

    /// A clean close says less than anything else that happened to the connection.
    fn is_close(self) -> bool {
        matches!(self, End::ClientClose | End::ServerClose)
    }

    fn reset_of(side: Side) -> End {
        match side {
            Side::Client => End::ClientReset,
            Side::Server => End::ServerReset,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the client's PROXY header or ClientHello before choosing a backend.
    Inspecting,
    /// Every usable server is at its `maxconn` (or no socket could be had): waiting.
    Queued,
    Connecting,
    Forwarding,
    /// Cancels are out; the connection is over once the last completion is in.
    Closing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Not started yet (before the connect), or finished (its source sent FIN).
    Done,
    Recv,
    Send,
    PollIn,
    PollOut,
    /// The buffer ring was empty (ENOBUFS): waiting for a buffer to come back.
    WaitBuf,
}

/// A copy buffer (of the worker's provided-buffer ring) holding bytes not yet sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBuf {
    pub bid: u16,
    pub sent: u32,
    pub len: u32,
}

/// One direction's progress.
#[derive(Debug, Clone, Copy)]
struct Flow {
    splice: bool,
    state: DirState,
    bytes: u64,
    buf: Option<HeldBuf>,
    /// A pipe is held (splice); `in_pipe` bytes are in it.
    pipe: bool,
    in_pipe: usize,
    /// Auto mode: consecutive full buffers (copy) or short rounds (splice).
    streak: u8,
}

impl Flow {
    fn new(forward: Forward) -> Flow {
        Flow {
            splice: forward == Forward::Splice,
            state: DirState::Done,
            bytes: 0,
            buf: None,
            pipe: false,
            in_pipe: 0,
            streak: 0,
        }
    }
}

/// What a connection's backend asks of it: a copy of the backend's settings, taken when
/// the backend is chosen (a reload does not change a running connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub forward: Forward,
    /// Extra connect attempts after a failure.
    pub retries: u32,
    pub connect_timeout: Duration,
    pub queue_timeout: Duration,
    pub client_timeout: Duration,
    pub server_timeout: Duration,
    /// A client no server takes gets a RST (else a FIN).
    pub reset_on_no_server: bool,
}

/// What picking a server gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A server, with a unit of its load counter taken.
    Server(usize),
    /// Every usable server is at its `maxconn`.
    Full,
    /// No server is usable.
    None,
}

/// What the worker did to start a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// The connect and its linked timeout are submitted (two completions will come).
    Connect,
    /// No socket could be had (the system's fd table or memory): try again later.
    NoSocket,
}

/// The first write to the server, as the worker prepared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// Nothing goes first: forwarding starts both ways.
    None,
    /// `pre` holds what goes first; `from_client` of its bytes came from the client, which
    /// has also sent FIN when `client_eof`.
    Ready {
        from_client: usize,
        client_eof: bool,
    },
    /// Reading what the client had sent failed: it reset.
    ClientFailed,
}

/// Why a connection refused a client before choosing a server, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoServer,
    ProxyError,
    NoRoute,
}

/// Everything a connection asks of the worker. Submissions each bring exactly one
/// completion back (the connect two: itself and its timeout), which the worker hands to
/// the matching `on_*` method.
pub trait ConnIo {
    // --- server choice and connect
    /// Picks a server for the next attempt (another one than last time when there is a
    /// choice), taking a unit of its load.
    fn pick(&mut self) -> Pick;
    /// Opens a socket to the picked server and submits the connect with its timeout
    /// (`retry`: not the connection's first attempt).
    fn connect(&mut self, timeout: Duration, retry: bool) -> Submitted;
    /// The connect failed: close the socket, give back the server's load unit, count it.
    fn connect_failed(&mut self);
    /// The connect succeeded (counters).
    fn connected(&mut self);
    /// Whether the client has gone for good (checked before another attempt for it).
    fn client_gone(&mut self) -> Option<End>;
    /// Wait for a server with room: joins the worker's queue (`first`: counted as queued).
    fn enqueue(&mut self, first: bool);
    /// No longer waiting in the queue (gauge).
    fn dequeue(&mut self);
    /// The backend for a client's server name (`None`: the default backend, if any), with
    /// the client and destination its PROXY header named; `None` when there is no backend.
    fn route(
        &mut self,
        sni: Option<&str>,
        proxied: Option<(SocketAddr, SocketAddr)>,
    ) -> Option<Policy>;
    /// Counts a client refused before a server was chosen.
    fn refused(&mut self, why: Refusal);

    // --- reading the client's first bytes
    /// Submits a read of the client into `len` bytes at `ptr` (spare room of the
    /// connection's inspect buffer, which does not move while the read is in flight).
    fn inspect_recv(&mut self, ptr: *mut u8, len: usize);
    /// Prepares the server's first write into `pre`: our PROXY header (naming `sni` when
    /// asked to) in front of what inspection read, or of what the client has already sent.
    fn preface(&mut self, pre: &mut Vec<u8>, inspected: bool, sni: Option<&str>) -> Preface;
    /// Submits a send of `len` bytes at `ptr` (inside `pre`) to the server.
    fn send_preface(&mut self, ptr: *const u8, len: usize);

    // --- forwarding
    /// Submits a recv into the buffer ring from `dir`'s source.
    fn recv(&mut self, dir: Dir);
    /// Submits a send of `buf`'s unsent bytes to `dir`'s sink.
    fn send(&mut self, dir: Dir, buf: HeldBuf);
    /// A buffer goes back to the ring.
    fn recycle(&mut self, bid: u16);
    /// `dir` waits for a buffer to come back to the ring.
    fn wait_buf(&mut self, dir: Dir);
    /// Submits a readiness poll on `dir`'s source (splice).
    fn poll_in(&mut self, dir: Dir);
    /// Submits a poll for room on `dir`'s sink (splice, bytes in the pipe).
    fn poll_out(&mut self, dir: Dir);
    /// Takes an empty pipe for `dir`; false when none is to be had.
    fn take_pipe(&mut self, dir: Dir) -> bool;
    /// Gives `dir`'s pipe back (`empty`: it can be reused; else it is closed).
    fn return_pipe(&mut self, dir: Dir, empty: bool);
    /// splice(2) up to `len` bytes from `dir`'s source into its pipe.
    fn splice_in(&mut self, dir: Dir, len: usize) -> std::io::Result<Spliced>;
    /// splice(2) up to `len` bytes from `dir`'s pipe into its sink.
    fn splice_out(&mut self, dir: Dir, len: usize) -> std::io::Result<Spliced>;
    /// `n` bytes read from `dir`'s source (counters).
    fn bytes(&mut self, dir: Dir, n: u64);
    /// Passes a FIN on: shutdown(SHUT_WR) of `side`.
    fn shutdown_write(&mut self, side: Side);
    /// `side` will be closed with a RST (SO_LINGER 0).
    fn reset(&mut self, side: Side);
    /// Cancels every request in flight on both sockets.
    fn cancel_all(&mut self);
}

/// Auto mode: consecutive full copy buffers before a direction moves to splice, and
/// consecutive short splice rounds before it moves back.
const AUTO_TO_SPLICE: u8 = 2;
const AUTO_TO_COPY: u8 = 4;
const AUTO_SHORT_ROUND: usize = 4096;
/// Bytes asked of one splice into a pipe (a default pipe holds 64 KiB).
const SPLICE_CHUNK: usize = 64 * 1024;
/// Pipe fills one readiness event may do before yielding to other connections.
const SPLICE_ROUNDS: u32 = 8;

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    phase: Phase,
    flows: [Flow; 2],
    /// Completions still to come for requests this connection submitted.
    inflight: u32,
    policy: Policy,
    /// Size of a copy buffer: a full one counts towards moving to splice.
    buf_size: u32,
    attempts: u32,
    end: Option<End>,
    /// The phase the connection was in when `end` was decided.
    end_phase: Phase,
    /// Why inspection refused the client.
    reason: Option<Box<str>>,
    accepted: Duration,
    connect_started: Duration,
    connect_time: Option<Duration>,
    /// When a byte last moved either way (idle timeouts).
    active: Duration,
    /// Waiting in the queue since then, until then.
    queued_since: Duration,
    queued_until: Option<Duration>,
    /// Time spent in the queue.
    queue_time: Duration,
    in_queue: bool,
    /// Its server was removed by a reload: it may run until then.
    drain_until: Option<Duration>,
    inspect: Option<inspect::Inspecting>,
    /// The backend is chosen (always, on frontends without routes).
    routed: bool,
    /// A server socket is open (connecting or connected).
    server_open: bool,
    /// What the server gets before anything else: while inspecting, the client's first
    /// bytes (after any PROXY header it sent); once connected, our PROXY header in front.
    pre: Vec<u8>,
    pre_sent: usize,
    /// The client sent FIN before its first bytes went to the server.
    client_eof: bool,
    /// The client and the address it reached, as a PROXY header from the client named them.
    proxied: Option<(SocketAddr, SocketAddr)>,
    /// The server name of the client's ClientHello.
    sni: Option<Box<str>>,
}

impl Conn {
    /// A connection accepted at `now`, forwarding as `policy` says once connected.
    pub fn new(now: Duration, policy: Policy, buf_size: u32) -> Conn {
        Conn {
            phase: Phase::Connecting,
            flows: [Flow::new(policy.forward), Flow::new(policy.forward)],
            inflight: 0,
            policy,
            buf_size,
            attempts: 0,
            end: None,
            end_phase: Phase::Connecting,
            reason: None,
            accepted: now,
            connect_started: now,
            connect_time: None,
            active: now,
            queued_since: now,
            queued_until: None,
            queue_time: Duration::ZERO,
            in_queue: false,
            drain_until: None,
            inspect: None,
            routed: false,
            server_open: false,
            pre: Vec::new(),
            pre_sent: 0,
            client_eof: false,
            proxied: None,
            sni: None,
        }
    }

    /// Starts the connection: reads its first bytes when `inspect` says so, else goes
    /// straight to connecting.
    pub fn start(&mut self, now: Duration, inspect: Option<InspectPlan>, io: &mut impl ConnIo) {
        match inspect {
            Some(plan) if plan.reads_anything() => self.start_inspection(now, plan, io),
            _ => {
                self.routed = true;
                self.next_server(now, io);
            }
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the periodic sweep has anything to check (see `sweep.rs`).
    pub fn has_deadline(&self) -> bool {
        matches!(self.phase, Phase::Inspecting | Phase::Forwarding)
    }

    /// Over: closing, with nothing left in flight. The worker frees it.
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Closing && self.inflight == 0
    }

    pub fn end(&self) -> Option<End> {
        self.end
    }

    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    pub fn routed(&self) -> bool {
        self.routed
    }

    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    pub fn accepted(&self) -> Duration {
        self.accepted
    }

    pub fn connect_time(&self) -> Option<Duration> {
        self.connect_time
    }

    /// Bytes moved in `dir`.
    pub fn bytes(&self, dir: Dir) -> u64 {
        self.flows[dir as usize].bytes
    }

    /// Connect attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Waiting in the queue (counted in the backend's gauge).
    pub fn in_queue(&self) -> bool {
        self.in_queue
    }

    /// A copy buffer `dir` holds, to be given back when the connection is dropped.
    pub fn held_buf(&self, dir: Dir) -> Option<HeldBuf> {
        self.flows[dir as usize].buf
    }

    /// Whether `dir` holds a pipe with bytes still in it.
    pub fn pipe_in_use(&self, dir: Dir) -> Option<bool> {
        let f = &self.flows[dir as usize];
        f.pipe.then_some(f.in_pipe > 0)
    }

    /// A request completed; `on_*` methods call this first.
    fn completed(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
    }

    /// A completion for a request of this connection that carries nothing it needs (the
    /// connect's timeout, or anything after it began closing).
    pub fn on_other(&mut self) {
        self.completed();
    }

    /// Records why the connection ends; a reset or timeout outranks a clean close.
    fn set_end(&mut self, end: End) {
        if self.end.is_none_or(|e| e.is_close() && !end.is_close()) {
            self.end = Some(end);
            self.end_phase = self.phase;
        }
    }

    /// Time spent waiting in the queue.
    pub fn queue_time(&self) -> Duration {
        self.queue_time
    }

    /// HAProxy's termination state: who or what ended the connection, and in which phase
    /// (`--` a clean close; `CD` a client reset while forwarding; `SC` no server took it;
    /// `sQ` the queue timed out; `cR` the PROXY header came too late ...).
    pub fn termination(&self) -> [u8; 2] {
        let end = self.end.unwrap_or(End::Shutdown);
        let cause = match end {
            End::ClientClose | End::ServerClose => return *b"--",
            End::ClientReset => b'C',
            End::ServerReset | End::NoServer => b'S',
            End::ClientTimeout | End::ProxyTimeout => b'c',
            End::ServerTimeout | End::QueueTimeout => b's',
            End::Drained => b'D',
            End::Shutdown | End::Killed => b'K',
            End::BadProxy | End::NoRoute => b'P',
        };
        let phase = match self.end_phase {
            Phase::Inspecting => b'R',
            Phase::Queued => b'Q',
            Phase::Connecting => b'C',
            Phase::Forwarding | Phase::Closing => b'D',
        };
        [cause, phase]
    }

    /// `side` failed (reset, or an error on its socket): the other side gets a reset too.
    fn abort(&mut self, side: Side, io: &mut impl ConnIo) {
        self.set_end(End::reset_of(side));
        let other = match side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        if other == Side::Client || self.server_open {
            io.reset(other);
        }
        self.begin_close(io);
    }

    /// Cancels whatever is in flight; over once the last completion is in.
    fn begin_close(&mut self, io: &mut impl ConnIo) {
        if self.phase == Phase::Closing {
            return;
        }
        self.phase = Phase::Closing;
        if self.in_queue {
            self.in_queue = false;
            io.dequeue();
        }
        if self.inflight > 0 {
            io.cancel_all();
        }
    }

    /// Closes the connection now because an admin asked (`shutdown sessions server`).
    pub fn kill(&mut self, io: &mut impl ConnIo) {
        if self.phase != Phase::Closing {
            self.set_end(End::Killed);
            self.begin_close(io);
        }
    }

    /// Closes the connection now, from outside (end of the grace period).
    pub fn shut_down(&mut self, io: &mut impl ConnIo) {
        if self.phase != Phase::Closing {
            self.end = Some(End::Shutdown);
        }
        self.begin_close(io);
    }
}
