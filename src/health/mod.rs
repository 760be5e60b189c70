//! Active health checks: which address each server is checked at, the per-server state
//! machine (`state`), one check in flight (`probe`) and the thread that runs them all
//! (`checker`). A server goes DOWN after `fall` failed checks in a row and UP after `rise`
//! passed ones; its first result decides at once.

mod checker;
mod probe;
mod state;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::config::{HealthCheck, SendProxy, Server};

pub use checker::{Checker, PassiveReporter};
#[cfg(test)] // the registry's tests make reasons
pub use state::Count;
pub use state::Reason;

/// One server to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// `backend/server`, as in the log lines.
    pub label: String,
    /// Where the checks connect.
    pub addr: SocketAddr,
    pub check: HealthCheck,
    /// The server expects a PROXY header first: checks send one with the LOCAL command
    /// (v2) or `UNKNOWN` (v1), which says "this is not a client's connection".
    pub send_proxy: Option<SendProxy>,
    /// Failed active checks, counted here for the metrics (the server's counter, kept
    /// across reloads with its identity; one of its own until `counting_failures_in`).
    pub failures: Arc<AtomicU64>,
}

impl Target {
    /// The target for `server` of backend `backend`, checked at [`check_addr`].
    pub fn new(backend: &str, server: &Server, check: &HealthCheck) -> Target {
        Target {
            label: format!("{backend}/{}", server.name),
            addr: check_addr(server, check),
            check: check.clone(),
            send_proxy: server.send_proxy,
            failures: Arc::default(),
        }
    }

    /// Counts this target's failed checks in `failures`.
    pub fn counting_failures_in(self, failures: Arc<AtomicU64>) -> Target {
        Target { failures, ..self }
    }
}

/// A server that changed state, as given to `on_change`. Shown as its log line, e.g.
/// `server webfarm/web1 is DOWN: HTTP 503 (3/3 checks failed, last after 12 ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// Index in the targets given to `Checker::spawn` or `Checker::replace`.
    pub target: usize,
    /// The `generation` given with the targets (`replace`); 0 for those of `spawn`.
    pub generation: u64,
    /// The target's `backend/server`.
    pub label: String,
    pub up: bool,
    pub reason: Reason,
}

impl fmt::Display for StateChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.up { "UP" } else { "DOWN" };
        write!(f, "server {} is {state}: {}", self.label, self.reason)
    }
}

/// `server.check_addr`, else `server.addr` with its port replaced by the check's `port`.
pub fn check_addr(server: &Server, check: &HealthCheck) -> SocketAddr {
    server.check_addr.unwrap_or_else(|| {
        let mut addr = server.addr;
        if let Some(port) = check.port {
            addr.set_port(port);
        }
        addr
    })
}

#[cfg(test)]
mod tests;
