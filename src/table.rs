//! Immutable server tables, built off the hot path (by `registry`) from a validated config
//! plus the servers' current states, and published with arc-swap. Workers load the current
//! snapshot per new connection and pick a server from prebuilt structures: no lock, no
//! allocation.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::balance::{Algorithm, Selector};
use crate::config::{Balance, Forward, Inspect, NoServer, ProxyTlvs, SendProxy, Timeouts};
use crate::counters::{BackendStats, FrontendStats, ServerStats};

#[derive(Debug)]
pub struct Tables {
    pub frontends: Vec<FrontendTable>,
    pub backends: Vec<BackendTable>,
    /// How long connections to a server that a reload removed may go on.
    pub drain_timeout: Option<std::time::Duration>,
    /// Which frontend each bound address serves. Listeners know only their address, so a
    /// reload can move a bind between frontends without touching its socket.
    pub binds: Vec<(SocketAddr, usize)>,
}

impl Tables {
    /// Whether server `server` of backend `backend` of `older` is still in this snapshot
    /// under the same identity (backend name, server name, address).
    pub fn has_server_of(&self, older: &Tables, backend: usize, server: usize) -> bool {
        let b = &older.backends[backend];
        let s = &b.servers[server];
        self.backends
            .iter()
            .filter(|nb| nb.name == b.name)
            .any(|nb| {
                nb.servers
                    .iter()
                    .any(|ns| ns.name == s.name && ns.addr == s.addr)
            })
    }

    /// The frontend a connection accepted on `addr` belongs to, if the bind still exists.
    pub fn frontend_of(&self, addr: SocketAddr) -> Option<usize> {
        self.binds.iter().find(|(a, _)| *a == addr).map(|&(_, f)| f)
    }
}

#[derive(Debug)]
pub struct FrontendTable {
    pub name: String,
    /// The backend of connections no route names (`None`: they are closed).
    pub backend: Option<usize>,
    /// What is read from a client before its server is chosen, when anything is.
    pub inspect: Option<Box<InspectTable>>,
    pub forward: Forward,
    pub log: bool,
    /// `u32::MAX` when unlimited.
    pub maxconn: u32,
    /// Current connections, counted by every worker; kept across reloads by frontend name.
    pub conns: Arc<AtomicU32>,
    /// Per-worker counters, kept across reloads by frontend name.
    pub stats: Arc<FrontendStats>,
}

#[derive(Debug)]
pub struct BackendTable {
    pub name: String,
    pub retries: u32,
    pub timeouts: Timeouts,
    pub no_server: NoServer,
    pub proxy_tlvs: ProxyTlvs,
    /// The selector reads the client address (so workers must fetch it).
    pub hashes_source: bool,
    /// Failed connects count against the server's health (`passive_errors`).
    pub passive_checks: bool,
    pub servers: Vec<ServerEntry>,
    pub selector: Selector,
    /// Current connections per server, counted by every worker. Each counter belongs to a
    /// server identity (backend, name, address) and outlives snapshots and reloads.
    pub load: Box<[Arc<AtomicU32>]>,
    /// Per-worker queue counters, kept across reloads by backend name.
    pub stats: Arc<BackendStats>,
}

#[derive(Debug)]
pub struct ServerEntry {
    pub name: String,
    pub addr: SocketAddr,
    /// `u32::MAX` when unlimited.
    pub maxconn: u32,
    /// Index of this server's health-check target, when its backend is checked.
    pub check: Option<usize>,
    pub send_proxy: Option<SendProxy>,
    /// Per-worker counters, kept across reloads by server identity.
    pub stats: Arc<ServerStats>,
}

/// A frontend's inspection settings, with its routes indexed for lookup.
#[derive(Debug)]
pub struct InspectTable {
    pub settings: Inspect,
    /// Exact server names → backend.
    exact: std::collections::HashMap<String, usize>,
    /// `.suffix` → backend, longest suffix first.
    wildcards: Vec<(String, usize)>,
}

impl InspectTable {
    pub fn new(settings: &Inspect) -> Option<Box<InspectTable>> {
        if !settings.active() {
            return None;
        }
        let exact = settings
            .routes
            .iter()
            .filter(|r| !r.wildcard)
            .map(|r| (r.name.clone(), r.backend))
            .collect();
        let mut wildcards: Vec<(String, usize)> = settings
            .routes
            .iter()
            .filter(|r| r.wildcard)
            .map(|r| (r.name.clone(), r.backend))
            .collect();
        wildcards.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Some(Box::new(InspectTable {
            settings: settings.clone(),
            exact,
            wildcards,
        }))
    }

    /// Whether connections wait for a ClientHello.
    pub fn routes_tls(&self) -> bool {
        !self.settings.routes.is_empty()
    }

    /// The backend routed for server name `sni` (lowercase), if a route names it.
    pub fn route(&self, sni: &str) -> Option<usize> {
        if let Some(&b) = self.exact.get(sni) {
            return Some(b);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| sni.len() > suffix.len() && sni.ends_with(suffix.as_str()))
            .map(|&(_, b)| b)
    }
}

/// What a server does with new connections; established ones go on in every state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Takes new connections.
    Up,
    /// Failed its health checks.
    Down,
    /// Set by an admin: no new connections.
    Drain,
    /// Set by an admin for maintenance: no new connections (health checks go on).
    Maint,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "UP",
            ServerState::Down => "DOWN",
            ServerState::Drain => "DRAIN",
            ServerState::Maint => "MAINT",
        }
    }
}

/// A server's admin setting. It outranks health (DRAIN and MAINT) until set back to READY,
/// and lasts across reloads until the config file changes that server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminState {
    /// Follows its health checks.
    #[default]
    Ready,
    Drain,
    Maint,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "READY",
            AdminState::Drain => "DRAIN",
            AdminState::Maint => "MAINT",
        }
    }
}

pub type SharedTables = Arc<ArcSwap<Tables>>;

pub fn algorithm(b: Balance) -> Algorithm {
    match b {
        Balance::Roundrobin => Algorithm::RoundRobin,
        Balance::Leastconn => Algorithm::LeastConn,
        Balance::Source => Algorithm::Source,
        Balance::Random => Algorithm::Random,
    }
}
