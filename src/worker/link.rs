//! The worker's half of a connection: its sockets, pipes, table snapshot and server, and
//! [`Ops`], which carries out what the connection's state machine asks (`ConnIo`) with
//! io_uring submissions, splice(2), the buffer ring, the pipe pool and the counters.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use io_uring::types::{Fd, Timespec};
use io_uring::{opcode, squeue};
use socket2::SockAddr;

use super::conn::{ConnIo, Dir, End, HeldBuf, Pick, Policy, Preface, Refusal, Side, Submitted};
use super::pipes::Pipe;
use super::token::Op;
use super::{cancel_fd, Worker, BUF_GROUP};
use crate::balance::hash_addr;
use crate::config::SendProxy;
use crate::counters::{self, ServerCell};
use crate::proxy;
use crate::sys::{self, Spliced};
use crate::table::{BackendTable, Tables};

/// `IORING_RECVSEND_POLL_FIRST`: arm the poll first instead of trying the recv at once.
const RECVSEND_POLL_FIRST: u16 = 1;

/// Room for client bytes read without waiting, to go out with the PROXY header.
const EARLY_READ: usize = 16 * 1024;

pub(super) struct Link {
    pub client: RawFd,
    /// The listener's address: what the client connected to.
    pub bind: SocketAddr,
    /// -1 while no server socket is open.
    pub server: RawFd,
    pub tables: Arc<Tables>,
    pub frontend: usize,
    /// Without routes always the frontend's backend; with them a placeholder until routed.
    pub backend: usize,
    /// The server of the current (or last) attempt.
    pub server_idx: Option<usize>,
    /// The server whose load counter this connection holds a unit of.
    pub counted: Option<usize>,
    /// The client as seen on the socket (when it was needed: logging, inspection, hashing).
    pub peer: Option<SocketAddr>,
    /// The client a PROXY header named, and the address it reached.
    pub proxied: Option<(SocketAddr, SocketAddr)>,
    /// Connect's target and timeout: the kernel reads both when the SQEs are submitted,
    /// and the box they live in keeps their addresses stable until then.
    pub target: SockAddr,
    pub connect_timeout: Timespec,
    pub pipes: [Option<Pipe>; 2],
    /// The unique id sent in a PROXY v2 header.
    pub id: Option<Box<str>>,
    /// This worker's connection number.
    pub seq: u64,
    /// Per direction: its source probably has bytes waiting (a client's first bytes often
    /// arrive before the server is connected; a recv that filled a whole buffer leaves more
    /// behind), so the next recv tries at once instead of waiting for readiness first.
    pub ready: [bool; 2],
}

impl Link {
    fn fd(&self, side: Side) -> RawFd {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    /// The client as the connection knows it: the one a PROXY header named, else the peer.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.proxied.map(|(src, _)| src).or(self.peer)
    }

    pub fn backend_table(&self) -> &BackendTable {
        &self.tables.backends[self.backend]
    }
}

/// What a backend asks of a connection of `forward`'s frontend.
pub(super) fn policy(tables: &Tables, frontend: usize, backend: usize) -> Policy {
    let b = &tables.backends[backend];
    Policy {
        forward: tables.frontends[frontend].forward,
        retries: b.retries,
        connect_timeout: b.timeouts.connect,
        queue_timeout: b.timeouts.queue,
        client_timeout: b.timeouts.client,
        server_timeout: b.timeouts.server,
        reset_on_no_server: b.no_server == crate::config::NoServer::Reset,
    }
}

/// The worker carrying out one connection's requests.
pub(super) struct Ops<'a> {
    pub w: &'a mut Worker,
    pub link: &'a mut Link,
    pub slot: u32,
}

impl Ops<'_> {
    fn token(&self, op: Op, dir: Dir) -> u64 {
        self.w.token(op, self.slot, dir as usize)
    }

    fn src(&self, dir: Dir) -> RawFd {
        self.link.fd(dir.source())
    }

    fn dst(&self, dir: Dir) -> RawFd {
        self.link.fd(dir.sink())
    }

    /// This worker's cell of the connection's current server.
    fn server_cell(&self) -> Option<&ServerCell> {
        let i = self.link.server_idx?;
        Some(
            self.link.tables.backends[self.link.backend].servers[i]
                .stats
                .cells
                .of(self.w.id),
        )
    }

    fn uncount(&mut self) {
        if let Some(idx) = self.link.counted.take() {
            self.link.backend_table().load[idx].fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The PROXY header for this connection: the client as the header it sent us named it
    /// (or as we saw it), and the address it reached.
    fn proxy_header(&mut self, version: SendProxy, sni: Option<&str>, out: &mut Vec<u8>) {
        let client = self.link.client;
        let dst = self
            .link
            .proxied
            .map(|(_, dst)| dst)
            .or_else(|| sys::local_addr(client));
        let peer = self.link.client_addr().or_else(|| sys::peer_addr(client));
        let addrs = peer.zip(dst);
        match version {
            SendProxy::V1 => proxy::encode_v1(addrs, out),
            SendProxy::V2 => {
                let wanted = self.link.backend_table().proxy_tlvs;
                let id = wanted.unique_id.then(|| self.w.unique_id(self.link.seq));
                let tlvs = proxy::Tlvs {
                    authority: if wanted.authority { sni } else { None },
                    unique_id: id.as_deref().map(str::as_bytes),
                    crc32c: wanted.crc32c,
                };
                proxy::encode_v2(addrs, &tlvs, out);
                self.link.id = id.map(String::into_boxed_str);
            }
        }
    }
}

impl ConnIo for Ops<'_> {
    fn pick(&mut self) -> Pick {
        let link = &mut *self.link;
        let table = &link.tables.backends[link.backend];
        let key = link.client_addr().map_or(0, |p| hash_addr(p.ip()));
        let mut exclude = link.server_idx;
        let pick = &mut self.w.picks[link.backend];
        for _ in 0..table.selector.candidates() {
            let Some(idx) = table.selector.pick(pick, key, &*table.load, exclude) else {
                return Pick::None;
            };
            let load = &table.load[idx];
            let before = load.fetch_add(1, Ordering::Relaxed);
            if before < table.servers[idx].maxconn {
                link.counted = Some(idx);
                link.server_idx = Some(idx);
                counters::raise_peak(&table.servers[idx].stats.peak, before + 1);
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

    fn connect(&mut self, timeout: Duration, retry: bool) -> Submitted {
        let Some(idx) = self.link.server_idx else {
            return Submitted::NoSocket;
        };
        let addr = self.link.backend_table().servers[idx].addr;
        let fd = match sys::tcp_socket_for(&addr) {
            Ok(fd) => fd,
            Err(e) => {
                // The fd budget keeps this from happening for want of fds in this process
                // (EMFILE); the system-wide table (ENFILE) or kernel memory can still run
                // out. The client is not failed for it: it waits as for a full server.
                self.w.log_fd_exhaustion(&format!("socket for {addr}: {e}"));
                self.uncount();
                return Submitted::NoSocket;
            }
        };
        if retry {
            if let Some(cell) = self.server_cell() {
                cell.retries.add(1);
            }
        }
        let link = &mut *self.link;
        link.server = fd;
        link.target = SockAddr::from(addr);
        link.connect_timeout = Timespec::from(timeout);
        let connect = opcode::Connect::new(Fd(fd), link.target.as_ptr().cast(), link.target.len())
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(self.w.token(Op::Connect, self.slot, 0));
        let timer = opcode::LinkTimeout::new(&link.connect_timeout as *const Timespec)
            .build()
            .user_data(self.w.token(Op::ConnectTimeout, self.slot, 0));
        self.w.push_all(&[connect, timer]);
        Submitted::Connect
    }

    fn connect_failed(&mut self) {
        sys::close(self.link.server);
        self.link.server = -1;
        self.uncount();
        if let Some(cell) = self.server_cell() {
            cell.connect_errors.add(1);
        }
        // Passive health marking: a failed connect counts against a checked server.
        let table = self.link.backend_table();
        if table.passive_checks {
            if let Some(t) = self.link.server_idx.and_then(|i| table.servers[i].check) {
                self.w.shared.passive.passive_failure(t);
            }
        }
    }

    fn connected(&mut self) {
        if let Some(cell) = self.server_cell() {
            cell.conns.add(1);
        }
    }

    fn client_gone(&mut self) -> Option<End> {
        // A client that only half-closed still waits for its answer: not gone.
        match sys::poll_now(self.link.client, libc::POLLIN | libc::POLLRDHUP) {
            r if r & libc::POLLERR != 0 => Some(End::ClientReset),
            r if r & libc::POLLHUP != 0 => Some(End::ClientClose),
            _ => None,
        }
    }

    fn enqueue(&mut self, first: bool) {
        let cell = self.link.backend_table().stats.cells.of(self.w.id);
        cell.queued.add(1);
        if first {
            cell.queued_total.add(1);
        }
        let gen = self.w.slots[self.slot as usize].gen;
        self.w.queue.push_back((self.slot, gen));
    }

    fn dequeue(&mut self) {
        self.link
            .backend_table()
            .stats
            .cells
            .of(self.w.id)
            .queued
            .sub(1);
    }

    fn route(
        &mut self,
        sni: Option<&str>,
        proxied: Option<(SocketAddr, SocketAddr)>,
    ) -> Option<Policy> {
        let link = &mut *self.link;
        link.proxied = proxied;
        let f = &link.tables.frontends[link.frontend];
        let routed = match (&f.inspect, sni) {
            (Some(t), Some(name)) => t.route(name),
            _ => None,
        };
        let backend = routed.or(f.backend)?;
        link.backend = backend;
        if link.peer.is_none() && link.tables.backends[backend].hashes_source {
            link.peer = sys::peer_addr(link.client);
        }
        Some(policy(&link.tables, link.frontend, backend))
    }

    fn refused(&mut self, why: Refusal) {
        let cell = self.link.tables.frontends[self.link.frontend]
            .stats
            .cells
            .of(self.w.id);
        match why {
            Refusal::NoServer => cell.no_server.add(1),
            Refusal::ProxyError => cell.proxy_errors.add(1),
            Refusal::NoRoute => cell.no_route.add(1),
        }
    }

    fn inspect_recv(&mut self, ptr: *mut u8, len: usize) {
        let entry = opcode::Recv::new(Fd(self.link.client), ptr, len as u32)
            .build()
            .user_data(self.token(Op::InspectRecv, Dir::Up));
        self.w.push(entry);
    }

    fn preface(&mut self, pre: &mut Vec<u8>, inspected: bool, sni: Option<&str>) -> Preface {
        let Some(idx) = self.link.server_idx else {
            return Preface::None;
        };
        let version = self.link.backend_table().servers[idx].send_proxy;
        if version.is_none() && !inspected {
            return Preface::None;
        }
        if inspected {
            let n = pre.len();
            if let Some(version) = version {
                let mut header = Vec::new();
                self.proxy_header(version, sni, &mut header);
                pre.splice(0..0, header);
            }
            return Preface::Ready {
                from_client: n,
                client_eof: false,
            };
        }
        if let Some(version) = version {
            self.proxy_header(version, sni, pre);
        }
        // Whatever the client has sent already goes out in the same write as the header:
        // no extra round trip for the usual request-first protocols.
        pre.reserve_exact(EARLY_READ);
        let before = pre.len();
        let client_eof = match sys::recv_queued(self.link.client, pre) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => return Preface::ClientFailed,
        };
        Preface::Ready {
            from_client: pre.len() - before,
            client_eof,
        }
    }

    fn send_preface(&mut self, ptr: *const u8, len: usize) {
        let entry = opcode::Send::new(Fd(self.link.server), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(self.token(Op::Preface, Dir::Up));
        self.w.push(entry);
    }

    fn recv(&mut self, dir: Dir) {
        // Otherwise the recv comes right after this direction sent all it had, and its
        // source has rarely sent more yet (request/response): waiting for readiness first
        // saves a recv that would fail with EAGAIN and be retried after the poll anyway.
        let prio = if self.link.ready[dir as usize] {
            0
        } else {
            RECVSEND_POLL_FIRST
        };
        let entry = opcode::Recv::new(
            Fd(self.src(dir)),
            std::ptr::null_mut(),
            self.w.bufs.buf_size(),
        )
        .buf_group(BUF_GROUP)
        .ioprio(prio)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
        .user_data(self.token(Op::Recv, dir));
        self.w.push(entry);
    }

    fn send(&mut self, dir: Dir, buf: HeldBuf) {
        // SAFETY (of the pointer handed to the kernel): `sent < len <= buf_size`, inside
        // buffer `bid`, which this direction owns until the send completes.
        let ptr = self.w.bufs.ptr(buf.bid).wrapping_add(buf.sent as usize);
        let entry = opcode::Send::new(Fd(self.dst(dir)), ptr, buf.len - buf.sent)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(self.token(Op::Send, dir));
        self.w.push(entry);
    }

    fn recycle(&mut self, bid: u16) {
        self.w.bufs.recycle(bid);
        self.w.bufs_returned = true;
    }

    fn wait_buf(&mut self, dir: Dir) {
        let gen = self.w.slots[self.slot as usize].gen;
        self.w.buf_waiters.push_back((self.slot, gen, dir as u8));
    }

    fn poll_in(&mut self, dir: Dir) {
        let entry =
            opcode::PollAdd::new(Fd(self.src(dir)), (libc::POLLIN | libc::POLLRDHUP) as u32)
                .build()
                .user_data(self.token(Op::PollIn, dir));
        self.w.push(entry);
    }

    fn poll_out(&mut self, dir: Dir) {
        let entry = opcode::PollAdd::new(Fd(self.dst(dir)), libc::POLLOUT as u32)
            .build()
            .user_data(self.token(Op::PollOut, dir));
        self.w.push(entry);
    }

    fn take_pipe(&mut self, dir: Dir) -> bool {
        match self.w.pipes.take() {
            Some(p) => {
                self.link.pipes[dir as usize] = Some(p);
                true
            }
            None => false,
        }
    }

    fn return_pipe(&mut self, dir: Dir, empty: bool) {
        if let Some(p) = self.link.pipes[dir as usize].take() {
            if empty {
                self.w.pipes.give(p);
            } else {
                self.w.pipes.discard(p);
            }
        }
    }

    fn splice_in(&mut self, dir: Dir, len: usize) -> std::io::Result<Spliced> {
        let Some(pipe) = &self.link.pipes[dir as usize] else {
            return Ok(Spliced::WouldBlock);
        };
        sys::splice(self.src(dir), pipe.write, len)
    }

    fn splice_out(&mut self, dir: Dir, len: usize) -> std::io::Result<Spliced> {
        let Some(pipe) = &self.link.pipes[dir as usize] else {
            return Ok(Spliced::WouldBlock);
        };
        sys::splice(pipe.read, self.dst(dir), len)
    }

    fn bytes(&mut self, dir: Dir, n: u64) {
        let f = self.link.tables.frontends[self.link.frontend]
            .stats
            .cells
            .of(self.w.id);
        let s = self.server_cell();
        match dir {
            Dir::Up => {
                f.bytes_in.add(n);
                if let Some(s) = s {
                    s.bytes_in.add(n);
                }
            }
            Dir::Down => {
                f.bytes_out.add(n);
                if let Some(s) = s {
                    s.bytes_out.add(n);
                }
            }
        }
    }

    fn shutdown_write(&mut self, side: Side) {
        sys::shutdown_write(self.link.fd(side));
    }

    fn reset(&mut self, side: Side) {
        let fd = self.link.fd(side);
        if fd >= 0 {
            sys::set_linger_zero(fd);
        }
    }

    fn cancel_all(&mut self) {
        for fd in [self.link.client, self.link.server] {
            if fd >= 0 {
                self.w.push(cancel_fd(fd));
            }
        }
    }
}
