//! The worker's connections: slots (a connection's index never moves; a generation tells
//! a stale completion from a current one), starting a connection, handing completions and
//! deadlines to its state machine, the queue of connections waiting for a server, the
//! directions waiting for a copy buffer, and freeing a connection with its log line.

use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use io_uring::cqueue;
use socket2::SockAddr;

use super::conn::{Conn, Dir, InspectPlan};
use super::link::{policy, Link, Ops};
use super::log_line::ConnLine;
use super::token::{Op, Token};
use super::{Worker, CONN_FDS};
use crate::counters;
use crate::sys;
use crate::table::Tables;

pub(super) struct Slot {
    pub gen: u16,
    pub entry: Option<Box<Entry>>,
}

/// A connection: its state machine and the worker's handles for it.
pub(super) struct Entry {
    pub conn: Conn,
    pub link: Link,
}

impl Worker {
    pub(super) fn token(&self, op: Op, slot: u32, dir: usize) -> u64 {
        Token {
            op,
            dir: dir as u8,
            gen: self.slots[slot as usize].gen,
            slot,
        }
        .encode()
    }

    /// The connection in `slot` if it is still generation `gen`, taken out of its slot so
    /// that it and the worker can both be borrowed; it goes back with [`Worker::put_back`].
    fn take(&mut self, slot: u32, gen: u16) -> Option<Box<Entry>> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.gen != gen {
            return None;
        }
        s.entry.take()
    }

    /// Returns a connection to its slot, or frees the slot if the connection is over.
    fn put_back(&mut self, slot: u32, entry: Box<Entry>) {
        if entry.conn.is_over() {
            self.release(slot, entry);
        } else {
            self.slots[slot as usize].entry = Some(entry);
        }
    }

    /// Runs `f` on the connection in `slot` (generation `gen`) with the worker as its I/O.
    fn with_conn(&mut self, slot: u32, gen: u16, f: impl FnOnce(&mut Conn, &mut Ops<'_>)) {
        let Some(mut entry) = self.take(slot, gen) else {
            return;
        };
        let Entry { conn, link } = &mut *entry;
        f(
            conn,
            &mut Ops {
                w: self,
                link,
                slot,
            },
        );
        self.put_back(slot, entry);
    }

    /// A new client connection of `frontend` in `tables`, already counted against its
    /// `maxconn`s, with its fds reserved.
    pub(super) fn start_conn(
        &mut self,
        fd: RawFd,
        bind: std::net::SocketAddr,
        tables: Arc<Tables>,
        frontend: usize,
    ) {
        let Some(slot) = self.free.pop() else {
            // Accepts reserve a slot before they are armed; keep the invariant visible.
            self.shared.release(&tables.frontends[frontend]);
            self.close_unstarted(fd);
            return;
        };
        let f = &tables.frontends[frontend];
        let inspect = f.inspect.as_deref();
        // Without routes `backend` is always set; with them it is only a placeholder until
        // the ClientHello has been read.
        let backend = f.backend.unwrap_or(0);
        let peer = if f.log || inspect.is_some() || tables.backends[backend].hashes_source {
            sys::peer_addr(fd)
        } else {
            None
        };
        let plan = inspect.map(|t| InspectPlan {
            proxy: t.settings.expects_proxy(peer.map(|p| p.ip())),
            hello: t.routes_tls(),
            timeout: t.settings.timeout,
            max: t.settings.max,
        });
        f.stats.cells.of(self.id).conns.add(1);
        counters::raise_peak(&f.stats.peak, f.conns.load(Ordering::Relaxed));
        let conn = Conn::new(
            self.now,
            policy(&tables, frontend, backend),
            self.bufs.buf_size(),
        );
        let link = Link {
            client: fd,
            bind,
            server: -1,
            tables,
            frontend,
            backend,
            server_idx: None,
            counted: None,
            peer,
            proxied: None,
            target: SockAddr::from(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
            connect_timeout: io_uring::types::Timespec::new(),
            pipes: [None, None],
            id: None,
            seq: self.seq,
            ready: [true, false],
        };
        self.seq += 1;
        self.live += 1;
        let gen = self.slots[slot as usize].gen;
        self.slots[slot as usize].entry = Some(Box::new(Entry { conn, link }));
        let now = self.now;
        self.with_conn(slot, gen, |conn, io| conn.start(now, plan, io));
    }

    /// Hands a completion to its connection.
    pub(super) fn on_conn_event(&mut self, token: Token, res: i32, flags: u32) {
        let now = self.now;
        let dir = Dir::from_index(token.dir);
        let Some(mut entry) = self.take(token.slot, token.gen) else {
            // A connection's completions all come back before its slot is freed; a
            // buffer picked for none is returned anyway.
            if let (Op::Recv, Some(bid)) = (token.op, cqueue::buffer_select(flags)) {
                self.bufs.recycle(bid);
            }
            return;
        };
        let slot = token.slot;
        let Entry { conn, link } = &mut *entry;
        if token.op == Op::Recv {
            link.ready[dir as usize] = u32::try_from(res) == Ok(self.bufs.buf_size());
        }
        let io = &mut Ops {
            w: self,
            link,
            slot,
        };
        match token.op {
            Op::Connect => conn.on_connect(now, res, io),
            Op::InspectRecv => conn.on_inspect_recv(now, res, io),
            Op::Preface => conn.on_preface_sent(now, res, io),
            Op::Recv => conn.on_recv(now, dir, res, cqueue::buffer_select(flags), io),
            Op::Send => conn.on_send(now, dir, res, io),
            Op::PollIn => conn.on_poll(now, dir, false, res, io),
            Op::PollOut => conn.on_poll(now, dir, true, res, io),
            _ => conn.on_other(),
        }
        self.put_back(slot, entry);
        if self.bufs_returned {
            self.bufs_returned = false;
            self.serve_buf_waiters();
        }
    }

    /// Closes sockets, returns buffers and pipes, logs, and frees the slot.
    fn release(&mut self, slot: u32, entry: Box<Entry>) {
        let freed_server = entry.link.counted.is_some();
        let Entry { conn, mut link } = *entry;
        self.give_back(&conn, &mut link);
        self.count_end(&conn, &link);
        if link.tables.frontends[link.frontend].log {
            self.log_conn(&conn, &link);
        }
        let s = &mut self.slots[slot as usize];
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
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

    /// Everything a connection holds goes back: buffers, pipes, sockets, its fds in the
    /// budget, its server's load unit, its `maxconn` units, its place in the queue gauge.
    fn give_back(&mut self, conn: &Conn, link: &mut Link) {
        for dir in Dir::BOTH {
            if let Some(b) = conn.held_buf(dir) {
                self.bufs.recycle(b.bid);
            }
            if let Some(p) = link.pipes[dir as usize].take() {
                if conn.pipe_in_use(dir) == Some(false) {
                    self.pipes.give(p);
                } else {
                    self.pipes.discard(p);
                }
            }
        }
        sys::close(link.client);
        if link.server >= 0 {
            sys::close(link.server);
        }
        self.shared.fds.release(CONN_FDS);
        if let Some(idx) = link.counted.take() {
            link.backend_table().load[idx].fetch_sub(1, Ordering::Relaxed);
        }
        if conn.in_queue() {
            link.backend_table().stats.cells.of(self.id).queued.sub(1);
        }
        self.shared.release(&link.tables.frontends[link.frontend]);
    }

    /// A connection of a worker that is ending abnormally: gives back what it holds,
    /// without logging or touching the ring.
    pub(super) fn forget(&mut self, entry: Box<Entry>) {
        let Entry { conn, mut link } = *entry;
        self.give_back(&conn, &mut link);
        self.live -= 1;
    }

    fn log_conn(&mut self, conn: &Conn, link: &Link) {
        let backend = link.backend_table();
        let f = &link.tables.frontends[link.frontend];
        let line = ConnLine {
            worker: self.id,
            client: link.client_addr(),
            via: link.proxied.and(link.peer),
            frontend: &f.name,
            bind: link.bind,
            backend: conn.routed().then_some(backend.name.as_str()),
            server: match (link.server_idx, conn.connect_time()) {
                (Some(i), Some(_)) => Some(backend.servers[i].name.as_str()),
                _ => None,
            },
            server_addr: link
                .server_idx
                .filter(|_| conn.routed())
                .map(|i| backend.servers[i].addr),
            connect: conn.connect_time(),
            queue: conn.queue_time(),
            duration: self.now.saturating_sub(conn.accepted()),
            bytes_in: conn.bytes(Dir::Up),
            bytes_out: conn.bytes(Dir::Down),
            retries: conn.attempts().saturating_sub(1),
            end: conn.end().unwrap_or(super::conn::End::Shutdown),
            term: conn.termination(),
            sni: f
                .inspect
                .as_ref()
                .is_some_and(|t| t.routes_tls())
                .then(|| conn.sni()),
            id: link.id.as_deref(),
            reason: conn.reason(),
        };
        let ts = crate::logging::Rfc3339(self.shared.wall_epoch + self.now);
        self.log.record(ts, &line);
    }

    /// Ends connections whose deadline passed (idle timeouts, inspection).
    pub(super) fn sweep(&mut self) {
        let now = self.now;
        for slot in 0..self.slots.len() as u32 {
            let Some(entry) = self.slots[slot as usize].entry.as_ref() else {
                continue;
            };
            if !entry.conn.has_deadline() {
                continue;
            }
            let gen = self.slots[slot as usize].gen;
            self.with_conn(slot, gen, |conn, io| conn.on_sweep(now, io));
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
        let now = self.now;
        let mut draining = 0;
        for slot in 0..self.slots.len() as u32 {
            let s = &self.slots[slot as usize];
            let Some(entry) = s.entry.as_ref() else {
                continue;
            };
            if !entry.conn.forwarding() || Arc::ptr_eq(&entry.link.tables, &current) {
                continue;
            }
            let Some(server) = entry.link.server_idx else {
                continue;
            };
            // Still there, or back again after a later reload?
            let removed = (!current.has_server_of(&entry.link.tables, entry.link.backend, server))
                .then_some(timeout);
            let gen = s.gen;
            self.with_conn(slot, gen, |conn, io| {
                if conn.on_server_removed(now, removed, io) {
                    draining += 1;
                }
            });
        }
        self.draining = draining;
    }

    /// Closes the connections to `server` of `backend` (by name): an admin's `shutdown
    /// sessions server`. Returns how many.
    pub(super) fn kill_server(&mut self, backend: &str, server: &str) -> usize {
        let mut killed = 0;
        for slot in 0..self.slots.len() as u32 {
            let s = &self.slots[slot as usize];
            let Some(entry) = s.entry.as_ref() else {
                continue;
            };
            let table = entry.link.backend_table();
            let to_it = entry.conn.routed()
                && table.name == backend
                && entry
                    .link
                    .server_idx
                    .is_some_and(|i| table.servers[i].name == server);
            if !to_it {
                continue;
            }
            killed += 1;
            let gen = s.gen;
            self.with_conn(slot, gen, |conn, io| conn.kill(io));
        }
        killed
    }

    /// Closes every connection (end of the grace period).
    pub(super) fn abort_all(&mut self) {
        for slot in 0..self.slots.len() as u32 {
            if self.slots[slot as usize].entry.is_none() {
                continue;
            }
            let gen = self.slots[slot as usize].gen;
            self.with_conn(slot, gen, |conn, io| conn.shut_down(io));
        }
    }

    /// Gives queued connections a server when one has room, and ends those whose queue
    /// timeout passed.
    pub(super) fn serve_queue(&mut self) {
        let now = self.now;
        for _ in 0..self.queue.len() {
            let Some((slot, gen)) = self.queue.pop_front() else {
                return;
            };
            // Connects, re-queues (keeping the deadline) or ends the connection.
            self.with_conn(slot, gen, |conn, io| conn.on_queue_turn(now, io));
        }
    }

    /// Restarts a direction that found the buffer ring empty: one per call, as one
    /// buffer came back.
    pub(super) fn serve_buf_waiters(&mut self) {
        while let Some((slot, gen, d)) = self.buf_waiters.pop_front() {
            let mut took = false;
            self.with_conn(slot, gen, |conn, io| {
                took = conn.on_buf_available(Dir::from_index(d), io);
            });
            if took {
                return;
            }
        }
    }

    /// An id unique across this process's life and its workers: start time, worker, and a
    /// per-worker sequence number, in hex.
    pub(super) fn unique_id(&self, seq: u64) -> String {
        let mut id = String::with_capacity(24);
        let _ = write!(
            id,
            "{:08x}{:02x}{:012x}",
            self.started_unix as u32, self.id as u8, seq
        );
        id
    }
}
