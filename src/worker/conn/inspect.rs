//! Before a server is chosen: the PROXY header a client behind another balancer starts with,
//! and the TLS ClientHello whose server name picks the backend. After the connect: the
//! preface, the server's first bytes (our PROXY header, then what inspection read).

use std::fmt::Write as _;
use std::io;

use io_uring::opcode;
use io_uring::types::Fd;

use super::{Conn, DirState, End, Phase, Side, DOWN, UP};
use crate::config::SendProxy;
use crate::proxy;
use crate::sys;
use crate::tls::{self, Hello};
use crate::worker::token::Op;
use crate::worker::{cancel_fd, Worker};

/// Room for client bytes read without waiting, to go out with the PROXY header.
const EARLY_READ: usize = 16 * 1024;

/// Where a connection is in reading its first bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inspecting {
    /// A PROXY header is still expected.
    proxy: bool,
    /// The ClientHello is still to be read.
    hello: bool,
    /// Coarse deadline.
    until: u64,
    /// The deadline passed; the read in flight is being cancelled.
    expired: bool,
}

impl Worker {
    /// Starts reading the client's first bytes when its frontend asks for it; `false` when
    /// the connection can go straight to connecting.
    pub(super) fn start_inspection(&mut self, slot: u32, conn: &mut Conn) -> bool {
        let tables = conn.tables.clone();
        let Some(table) = tables.frontends[conn.frontend].inspect.as_deref() else {
            return false;
        };
        let proxy = table.settings.expects_proxy(conn.peer.map(|p| p.ip()));
        let hello = table.routes_tls();
        if !proxy && !hello {
            return false;
        }
        conn.phase = Phase::Inspecting;
        conn.pre = Vec::with_capacity(table.settings.max);
        conn.inspect = Some(Inspecting {
            proxy,
            hello,
            until: super::deadline(self.now_ms, table.settings.timeout),
            expired: false,
        });
        self.inspect_recv(slot, conn);
        true
    }

    fn inspect_recv(&mut self, slot: u32, conn: &mut Conn) {
        let spare = conn.pre.spare_capacity_mut();
        // The vector never grows while a read is in flight: its capacity is the limit, and
        // a full buffer ends the inspection instead of reading more.
        let entry = opcode::Recv::new(
            Fd(conn.client),
            spare.as_mut_ptr().cast(),
            spare.len() as u32,
        )
        .build()
        .user_data(self.token(Op::InspectRecv, slot, 0));
        conn.inflight += 1;
        self.push(entry);
    }

    pub(super) fn on_inspect_recv(&mut self, slot: u32, conn: &mut Conn, res: i32) {
        let Some(state) = conn.inspect else {
            return;
        };
        if res > 0 {
            // SAFETY: the kernel wrote `res` bytes into the spare capacity handed to the recv,
            // which nothing else touched while it was in flight.
            unsafe { conn.pre.set_len(conn.pre.len() + res as usize) };
            conn.active_ms = self.now_ms;
        } else if res == -libc::ECANCELED && state.expired {
            // The deadline passed: decide with what arrived.
        } else if res == 0 {
            conn.set_end(End::ClientClose);
            self.begin_close(slot, conn);
            return;
        } else {
            self.abort(slot, conn, Side::Client, End::ClientReset);
            return;
        }
        self.advance_inspection(slot, conn);
    }

    /// Parses what has arrived; reads more, rejects the client, or routes and connects.
    fn advance_inspection(&mut self, slot: u32, conn: &mut Conn) {
        let Some(mut state) = conn.inspect else {
            return;
        };
        let full = |pre: &Vec<u8>| pre.len() == pre.capacity();
        if state.proxy {
            match proxy::parse(&conn.pre) {
                Ok(None) if state.expired => {
                    return self.reject(slot, conn, End::ProxyTimeout, None);
                }
                Ok(None) if full(&conn.pre) => {
                    return self.reject(slot, conn, End::BadProxy, Some("header too long".into()));
                }
                Ok(None) => return self.inspect_recv(slot, conn),
                Ok(Some((header, len))) => {
                    if let Some((src, dst)) = header.addrs {
                        conn.via = conn.peer;
                        conn.peer = Some(src);
                        conn.orig_dst = Some(dst);
                    }
                    conn.pre.drain(..len);
                    state.proxy = false;
                }
                Err(e) => return self.reject(slot, conn, End::BadProxy, Some(e.to_string())),
            }
        }
        if state.hello {
            match tls::parse_client_hello(&conn.pre) {
                Ok(Hello::Complete { sni }) => conn.sni = sni.map(String::into_boxed_str),
                Ok(Hello::Incomplete) if !state.expired && !full(&conn.pre) => {
                    conn.inspect = Some(state);
                    return self.inspect_recv(slot, conn);
                }
                // Late, oversized or not TLS: routed as a client without a name.
                Ok(Hello::Incomplete) | Err(_) => {}
            }
        }
        conn.inspect = None;
        self.route(slot, conn);
    }

    /// Picks the backend (by server name on frontends with routes) and connects.
    fn route(&mut self, slot: u32, conn: &mut Conn) {
        let f = &conn.tables.frontends[conn.frontend];
        let routed = match (&f.inspect, &conn.sni) {
            (Some(t), Some(name)) => t.route(name),
            _ => None,
        };
        let Some(backend) = routed.or(f.backend) else {
            return self.reject(slot, conn, End::NoRoute, None);
        };
        conn.backend = backend;
        conn.routed = true;
        if conn.peer.is_none() && conn.tables.backends[backend].hashes_source {
            conn.peer = sys::peer_addr(conn.client);
        }
        conn.phase = Phase::Connecting;
        self.connect_next(slot, conn);
    }

    /// Closes a client that inspection refused, counting and logging why.
    fn reject(&mut self, slot: u32, conn: &mut Conn, end: End, reason: Option<String>) {
        conn.set_end(end);
        conn.reason = reason.map(String::into_boxed_str);
        let cell = conn.tables.frontends[conn.frontend].stats.cells.of(self.id);
        match end {
            End::NoRoute => cell.no_route.add(1),
            _ => cell.proxy_errors.add(1),
        }
        self.begin_close(slot, conn);
    }

    /// The inspection deadline: a missing PROXY header ends the connection; a ClientHello
    /// not complete by then is routed as one without a name, once the read is cancelled.
    pub(super) fn expire_inspection(&mut self, slot: u32, conn: &mut Conn) {
        let Some(state) = conn.inspect.as_mut() else {
            return;
        };
        if state.expired || self.now_ms < state.until {
            return;
        }
        state.expired = true;
        if state.proxy {
            self.reject(slot, conn, End::ProxyTimeout, None);
        } else {
            self.push(cancel_fd(conn.client));
        }
    }

    /// The connect succeeded: sends the server its preface, if it has one, before anything
    /// else from the client. Returns `false` when there is none.
    pub(super) fn send_preface(&mut self, slot: u32, conn: &mut Conn) -> bool {
        let backend = &conn.tables.backends[conn.backend];
        let Some(idx) = conn.server_idx else {
            return false;
        };
        let version = backend.servers[idx].send_proxy;
        if version.is_none() && conn.pre.is_empty() {
            return false;
        }
        let mut pre = std::mem::take(&mut conn.pre);
        let from_client = if pre.is_empty() {
            if let Some(version) = version {
                self.proxy_header(conn, version, &mut pre);
            }
            // Whatever the client has sent already goes out in the same write as the
            // header: no extra round trip for the usual request-first protocols.
            pre.reserve_exact(EARLY_READ);
            let before = pre.len();
            match sys::recv_queued(conn.client, &mut pre) {
                Ok(0) => conn.client_eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.abort(slot, conn, Side::Client, End::ClientReset);
                    return true;
                }
            }
            pre.len() - before
        } else {
            let n = pre.len();
            if let Some(version) = version {
                let mut header = Vec::new();
                self.proxy_header(conn, version, &mut header);
                pre.splice(0..0, header);
            }
            n
        };
        if from_client > 0 {
            conn.dirs[UP].bytes += from_client as u64;
            self.count_bytes(conn, UP, from_client as u64);
        }
        conn.pre = pre;
        conn.pre_sent = 0;
        conn.dirs[UP].state = DirState::Send;
        self.send_pre(slot, conn);
        self.start_dir(slot, conn, DOWN);
        true
    }

    fn send_pre(&mut self, slot: u32, conn: &mut Conn) {
        let rest = &conn.pre[conn.pre_sent..];
        let entry = opcode::Send::new(Fd(conn.server), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(self.token(Op::Preface, slot, UP));
        conn.inflight += 1;
        self.push(entry);
    }

    pub(super) fn on_preface_sent(&mut self, slot: u32, conn: &mut Conn, res: i32) {
        if res <= 0 {
            self.abort(slot, conn, Side::Server, End::ServerReset);
            return;
        }
        conn.active_ms = self.now_ms;
        conn.pre_sent += res as usize;
        if conn.pre_sent < conn.pre.len() {
            self.send_pre(slot, conn);
            return;
        }
        conn.pre = Vec::new();
        if conn.client_eof {
            self.eof(slot, conn, UP);
        } else {
            self.start_dir(slot, conn, UP);
        }
    }

    /// The PROXY header for this connection: the client as the header it sent us named it
    /// (or as we saw it), and the address it reached.
    fn proxy_header(&mut self, conn: &mut Conn, version: SendProxy, out: &mut Vec<u8>) {
        let dst = conn.orig_dst.or_else(|| sys::local_addr(conn.client));
        let peer = conn.peer.or_else(|| sys::peer_addr(conn.client));
        let addrs = peer.zip(dst);
        match version {
            SendProxy::V1 => proxy::encode_v1(addrs, out),
            SendProxy::V2 => {
                let tlvs_wanted = conn.tables.backends[conn.backend].proxy_tlvs;
                let id = tlvs_wanted.unique_id.then(|| self.unique_id(conn));
                let tlvs = proxy::Tlvs {
                    authority: if tlvs_wanted.authority {
                        conn.sni.as_deref()
                    } else {
                        None
                    },
                    unique_id: id.as_deref().map(str::as_bytes),
                    crc32c: tlvs_wanted.crc32c,
                };
                proxy::encode_v2(addrs, &tlvs, out);
                conn.id = id.map(String::into_boxed_str);
            }
        }
    }

    /// An id unique across this process's life and its workers: start time, worker, and a
    /// per-worker sequence number, in hex.
    fn unique_id(&mut self, conn: &Conn) -> String {
        let mut id = String::with_capacity(24);
        let _ = write!(
            id,
            "{:08x}{:02x}{:012x}",
            self.started_unix as u32, self.id as u8, conn.seq
        );
        id
    }
}
