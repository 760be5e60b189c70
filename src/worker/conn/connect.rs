//! Choosing a server and connecting: retries on another server up to the backend's
//! `retries`, waiting in the queue while every server is at its `maxconn` (or no socket
//! can be had), giving up with `no_server` or `queue_timeout`, and the server's first
//! write (a PROXY header, what inspection read) once connected.

use std::time::Duration;

use super::{Conn, ConnIo, Dir, DirState, End, Phase, Pick, Preface, Refusal, Side, Submitted};

impl Conn {
    /// Connects to the next server, queues when every candidate is full, or ends the
    /// connection when retries are used up or no server is usable.
    pub(super) fn next_server(&mut self, now: Duration, io: &mut impl ConnIo) {
        if self.in_queue {
            self.in_queue = false;
            io.dequeue();
        }
        if self.phase == Phase::Queued {
            self.queue_time = now.saturating_sub(self.queued_since);
        }
        if self.attempts > self.policy.retries {
            return self.no_server(End::NoServer, io);
        }
        if self.attempts > 0 {
            // No further attempt for a client that has gone.
            if let Some(end) = io.client_gone() {
                self.set_end(end);
                return self.begin_close(io);
            }
        }
        match io.pick() {
            Pick::Server(_) => {}
            Pick::Full => return self.wait_for_room(now, io),
            Pick::None => return self.no_server(End::NoServer, io),
        }
        match io.connect(self.policy.connect_timeout, self.attempts > 0) {
            Submitted::Connect => {
                self.phase = Phase::Connecting;
                self.attempts += 1;
                self.server_open = true;
                self.connect_started = now;
                self.inflight += 2;
            }
            // Not the client's fault, nor the server's: wait as for a full server.
            Submitted::NoSocket => self.wait_for_room(now, io),
        }
    }

    /// Waits in the queue for a server with room, until the queue timeout.
    fn wait_for_room(&mut self, now: Duration, io: &mut impl ConnIo) {
        let first = self.phase != Phase::Queued;
        let until = match self.queued_until {
            Some(until) if !first => until,
            _ => {
                let until = now.saturating_add(self.policy.queue_timeout);
                self.phase = Phase::Queued;
                self.queued_since = now;
                self.queued_until = Some(until);
                until
            }
        };
        if now >= until {
            return self.no_server(End::QueueTimeout, io);
        }
        self.in_queue = true;
        io.enqueue(first);
    }

    /// The worker's queue came to this connection: a server may have room now.
    pub fn on_queue_turn(&mut self, now: Duration, io: &mut impl ConnIo) {
        if self.phase == Phase::Queued {
            self.next_server(now, io);
        }
    }

    /// No server will take this client: close it at once, with a RST unless the backend
    /// asks for a plain close.
    fn no_server(&mut self, end: End, io: &mut impl ConnIo) {
        self.set_end(end);
        io.refused(Refusal::NoServer);
        if self.policy.reset_on_no_server {
            io.reset(Side::Client);
        }
        self.begin_close(io);
    }

    /// The connect completed (`res` < 0: it failed or timed out).
    pub fn on_connect(&mut self, now: Duration, res: i32, io: &mut impl ConnIo) {
        self.completed();
        if self.phase != Phase::Connecting {
            return;
        }
        if res < 0 {
            self.server_open = false;
            io.connect_failed();
            return self.next_server(now, io);
        }
        self.connect_time = Some(now.saturating_sub(self.connect_started));
        io.connected();
        self.phase = Phase::Forwarding;
        self.active = now;
        let inspected = !self.pre.is_empty();
        match io.preface(&mut self.pre, inspected, self.sni.as_deref()) {
            Preface::None => {
                self.start_dir(Dir::Up, io);
                self.start_dir(Dir::Down, io);
            }
            Preface::ClientFailed => self.abort(Side::Client, io),
            Preface::Ready {
                from_client,
                client_eof,
            } => {
                if from_client > 0 {
                    self.flows[Dir::Up as usize].bytes += from_client as u64;
                    io.bytes(Dir::Up, from_client as u64);
                }
                self.client_eof |= client_eof;
                self.pre_sent = 0;
                self.flows[Dir::Up as usize].state = DirState::Send;
                self.send_pre(io);
                self.start_dir(Dir::Down, io);
            }
        }
    }

    fn send_pre(&mut self, io: &mut impl ConnIo) {
        let rest = &self.pre[self.pre_sent..];
        self.inflight += 1;
        io.send_preface(rest.as_ptr(), rest.len());
    }

    /// Part or all of the server's first write went out.
    pub fn on_preface_sent(&mut self, now: Duration, res: i32, io: &mut impl ConnIo) {
        self.completed();
        if self.phase != Phase::Forwarding {
            return;
        }
        if res <= 0 {
            return self.abort(Side::Server, io);
        }
        self.active = now;
        self.pre_sent += res as usize;
        if self.pre_sent < self.pre.len() {
            return self.send_pre(io);
        }
        self.pre = Vec::new();
        if self.client_eof {
            self.eof(Dir::Up, io);
        } else {
            self.start_dir(Dir::Up, io);
        }
    }
}
