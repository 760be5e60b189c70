//! Immutable server tables, built off the hot path from a validated config plus the
//! servers' current states, and published with arc-swap. Workers load the current snapshot
//! per new connection and pick a server from prebuilt structures: no lock, no allocation.
//!
//! `ServerRegistry` is the control-plane side: it owns the config and every server's state
//! (health, admin), and publishes a new snapshot whenever one of them changes.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::balance::{Algorithm, Selector, ServerSpec};
use crate::config::{Balance, Config, Forward, NoServer, Timeouts};

#[derive(Debug)]
pub struct Tables {
    pub frontends: Vec<FrontendTable>,
    pub backends: Vec<BackendTable>,
}

#[derive(Debug)]
pub struct FrontendTable {
    pub name: String,
    pub backend: usize,
    pub forward: Forward,
    pub log: bool,
}

#[derive(Debug)]
pub struct BackendTable {
    pub name: String,
    pub retries: u32,
    pub timeouts: Timeouts,
    pub no_server: NoServer,
    /// The selector reads the client address (so workers must fetch it).
    pub hashes_source: bool,
    /// Failed connects count against the server's health (`passive_errors`).
    pub passive_checks: bool,
    pub servers: Vec<ServerEntry>,
    pub selector: Selector,
    /// Current connections per server, counted by every worker. Successive snapshots of a
    /// backend share one array while its server list is unchanged.
    pub load: Arc<[AtomicU32]>,
}

#[derive(Debug)]
pub struct ServerEntry {
    pub name: String,
    pub addr: SocketAddr,
    /// `u32::MAX` when unlimited.
    pub maxconn: u32,
    /// Index of this server's health-check target, when its backend is checked.
    pub check: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Takes new connections.
    Up,
    /// Failed its health checks.
    Down,
}

pub type SharedTables = Arc<ArcSwap<Tables>>;

fn algorithm(b: Balance) -> Algorithm {
    match b {
        Balance::Roundrobin => Algorithm::RoundRobin,
        Balance::Leastconn => Algorithm::LeastConn,
        Balance::Source => Algorithm::Source,
        Balance::Random => Algorithm::Random,
    }
}

/// The control plane's view of every server, and the snapshot it last published.
pub struct ServerRegistry {
    config: Config,
    /// Per backend, per server.
    states: Vec<Vec<ServerState>>,
    loads: Vec<Arc<[AtomicU32]>>,
    /// Health-check target index → (backend, server).
    targets: Vec<(usize, usize)>,
    tables: SharedTables,
}

impl ServerRegistry {
    /// Servers of a checked backend start DOWN until their first check; the others UP,
    /// as HAProxy treats servers without `check`.
    pub fn new(config: Config) -> ServerRegistry {
        let mut targets = Vec::new();
        let states = config
            .backends
            .iter()
            .enumerate()
            .map(|(bi, b)| {
                b.servers
                    .iter()
                    .enumerate()
                    .map(|(si, _)| {
                        if b.health_check.is_some() {
                            targets.push((bi, si));
                            ServerState::Down
                        } else {
                            ServerState::Up
                        }
                    })
                    .collect()
            })
            .collect();
        let loads = config
            .backends
            .iter()
            .map(|b| b.servers.iter().map(|_| AtomicU32::new(0)).collect())
            .collect();
        let mut registry = ServerRegistry {
            config,
            states,
            loads,
            targets,
            tables: Arc::new(ArcSwap::from_pointee(Tables {
                frontends: Vec::new(),
                backends: Vec::new(),
            })),
        };
        registry.publish();
        registry
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn tables(&self) -> SharedTables {
        self.tables.clone()
    }

    /// (backend, server) of every health-check target, in target order.
    pub fn targets(&self) -> &[(usize, usize)] {
        &self.targets
    }

    /// Records a health verdict for check target `target`.
    pub fn set_health(&mut self, target: usize, up: bool) {
        if let Some(&(b, s)) = self.targets.get(target) {
            self.states[b][s] = if up {
                ServerState::Up
            } else {
                ServerState::Down
            };
        }
    }

    /// Builds and publishes a snapshot of the current config and states.
    pub fn publish(&mut self) {
        let c = &self.config;
        let target_of = |b: usize, s: usize| self.targets.iter().position(|&t| t == (b, s));
        let tables = Tables {
            frontends: c
                .frontends
                .iter()
                .map(|f| FrontendTable {
                    name: f.name.clone(),
                    backend: f.backend,
                    forward: f.forward,
                    log: f.log,
                })
                .collect(),
            backends: c
                .backends
                .iter()
                .enumerate()
                .map(|(bi, b)| {
                    let specs: Vec<ServerSpec<'_>> = b
                        .servers
                        .iter()
                        .enumerate()
                        .map(|(si, s)| ServerSpec {
                            name: &s.name,
                            weight: s.weight,
                            usable: self.states[bi][si] == ServerState::Up,
                            backup: s.backup,
                        })
                        .collect();
                    BackendTable {
                        name: b.name.clone(),
                        retries: b.retries,
                        timeouts: b.timeouts,
                        no_server: b.no_server,
                        hashes_source: b.balance == Balance::Source,
                        passive_checks: b
                            .health_check
                            .as_ref()
                            .is_some_and(|h| h.passive_errors.is_some()),
                        selector: Selector::build(algorithm(b.balance), &specs),
                        load: self.loads[bi].clone(),
                        servers: b
                            .servers
                            .iter()
                            .enumerate()
                            .map(|(si, s)| ServerEntry {
                                name: s.name.clone(),
                                addr: s.addr,
                                maxconn: s.maxconn.unwrap_or(u32::MAX),
                                check: target_of(bi, si),
                            })
                            .collect(),
                    }
                })
                .collect(),
        };
        self.tables.store(Arc::new(tables));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    const TEXT: &str = r#"{
  "frontends": [ { "name": "f", "bind": ["127.0.0.1:1"], "backend": "checked" } ],
  "backends": [
    { "name": "checked", "health_check": { "type": "tcp" },
      "servers": [ { "name": "a", "addr": "127.0.0.1:2" }, { "name": "b", "addr": "127.0.0.1:3" } ] },
    { "name": "plain", "servers": [ { "name": "c", "addr": "127.0.0.1:4", "maxconn": 7 } ] }
  ] }"#;

    #[test]
    fn checked_servers_start_down_and_follow_verdicts() {
        let mut r = ServerRegistry::new(config::parse("t", TEXT).unwrap());
        let t = r.tables().load_full();
        assert_eq!(t.backends[0].selector.candidates(), 0);
        assert_eq!(t.backends[1].selector.candidates(), 1);
        assert_eq!(t.backends[1].servers[0].maxconn, 7);
        assert_eq!(r.targets(), &[(0, 0), (0, 1)]);
        assert_eq!(t.backends[0].servers[1].check, Some(1));

        r.set_health(1, true);
        r.publish();
        let t2 = r.tables().load_full();
        assert_eq!(t2.backends[0].selector.candidates(), 1);
        // The load counters survive the rebuild.
        assert!(Arc::ptr_eq(&t.backends[0].load, &t2.backends[0].load));
    }
}
