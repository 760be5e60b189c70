//! Before a server is chosen: the PROXY header a client behind another balancer starts
//! with, and the TLS ClientHello whose server name picks the backend. Reads go into the
//! connection's own buffer, bounded by `inspect_max`, until `inspect_timeout`.

use std::time::Duration;

use super::{Conn, ConnIo, End, Phase, Refusal, Side};
use crate::proxy;
use crate::tls::{self, Hello};

/// What a frontend reads from a client before routing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectPlan {
    /// A PROXY header is expected from this client.
    pub proxy: bool,
    /// The ClientHello's server name picks the backend.
    pub hello: bool,
    pub timeout: Duration,
    /// Most bytes held while reading both.
    pub max: usize,
}

impl InspectPlan {
    pub(super) fn reads_anything(&self) -> bool {
        self.proxy || self.hello
    }
}

/// Where a connection is in reading its first bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inspecting {
    /// A PROXY header is still expected.
    proxy: bool,
    /// The ClientHello is still to be read.
    hello: bool,
    until: Duration,
    /// The deadline passed; the read in flight is being cancelled.
    expired: bool,
}

impl Conn {
    pub(super) fn start_inspection(
        &mut self,
        now: Duration,
        plan: InspectPlan,
        io: &mut impl ConnIo,
    ) {
        self.phase = Phase::Inspecting;
        self.pre = Vec::with_capacity(plan.max);
        self.inspect = Some(Inspecting {
            proxy: plan.proxy,
            hello: plan.hello,
            until: now.saturating_add(plan.timeout),
            expired: false,
        });
        self.inspect_recv(io);
    }

    fn inspect_recv(&mut self, io: &mut impl ConnIo) {
        // The buffer never grows while a read is in flight: its capacity is the limit, and
        // a full buffer ends the inspection instead of reading more.
        let spare = self.pre.spare_capacity_mut();
        self.inflight += 1;
        io.inspect_recv(spare.as_mut_ptr().cast(), spare.len());
    }

    /// A read of the client's first bytes completed: `res` bytes were written into the
    /// spare room handed to it.
    pub fn on_inspect_recv(&mut self, now: Duration, res: i32, io: &mut impl ConnIo) {
        self.completed();
        let Some(state) = self.inspect else {
            return;
        };
        if self.phase != Phase::Inspecting {
            return;
        }
        if res > 0 {
            let n = (res as usize).min(self.pre.capacity() - self.pre.len());
            // SAFETY: the kernel wrote `n` bytes into the spare capacity handed to the
            // read, which nothing else touched while it was in flight.
            unsafe { self.pre.set_len(self.pre.len() + n) };
            self.active = now;
        } else if res == -libc::ECANCELED && state.expired {
            // The deadline passed: decide with what arrived.
        } else if res == 0 {
            self.set_end(End::ClientClose);
            return self.begin_close(io);
        } else {
            return self.abort(Side::Client, io);
        }
        self.advance_inspection(now, io);
    }

    /// Parses what has arrived; reads more, refuses the client, or routes and connects.
    fn advance_inspection(&mut self, now: Duration, io: &mut impl ConnIo) {
        let Some(mut state) = self.inspect else {
            return;
        };
        let full = self.pre.len() == self.pre.capacity();
        if state.proxy {
            match proxy::parse(&self.pre) {
                Ok(None) if state.expired => return self.refuse(End::ProxyTimeout, None, io),
                Ok(None) if full => {
                    return self.refuse(End::BadProxy, Some("header too long".into()), io);
                }
                Ok(None) => return self.inspect_recv(io),
                Ok(Some((header, len))) => {
                    self.proxied = header.addrs;
                    self.pre.drain(..len);
                    state.proxy = false;
                }
                Err(e) => return self.refuse(End::BadProxy, Some(e.to_string()), io),
            }
        }
        if state.hello {
            let full = self.pre.len() == self.pre.capacity();
            match tls::parse_client_hello(&self.pre) {
                Ok(Hello::Complete { sni }) => self.sni = sni.map(String::into_boxed_str),
                Ok(Hello::Incomplete) if !state.expired && !full => {
                    self.inspect = Some(state);
                    return self.inspect_recv(io);
                }
                // Late, oversized or not TLS: routed as a client without a name.
                Ok(Hello::Incomplete) | Err(_) => {}
            }
        }
        self.inspect = None;
        self.route(now, io);
    }

    /// Picks the backend (by server name on frontends with routes) and connects.
    fn route(&mut self, now: Duration, io: &mut impl ConnIo) {
        let Some(policy) = io.route(self.sni.as_deref(), self.proxied) else {
            return self.refuse(End::NoRoute, None, io);
        };
        self.policy = policy;
        self.routed = true;
        self.phase = Phase::Connecting;
        self.next_server(now, io);
    }

    /// Closes a client that inspection refused, counting and logging why.
    fn refuse(&mut self, end: End, reason: Option<String>, io: &mut impl ConnIo) {
        self.set_end(end);
        self.reason = reason.map(String::into_boxed_str);
        io.refused(match end {
            End::NoRoute => Refusal::NoRoute,
            _ => Refusal::ProxyError,
        });
        self.begin_close(io);
    }

    /// The inspection deadline: a missing PROXY header ends the connection; a ClientHello
    /// not complete by then is routed as one without a name, once the read is cancelled.
    pub(super) fn expire_inspection(&mut self, now: Duration, io: &mut impl ConnIo) {
        let Some(state) = self.inspect.as_mut() else {
            return;
        };
        if state.expired || now < state.until {
            return;
        }
        state.expired = true;
        if state.proxy {
            self.refuse(End::ProxyTimeout, None, io);
        } else {
            io.cancel_all();
        }
    }
}
