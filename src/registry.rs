//! The control plane's view of every server: the current config, each server's health
//! state, admin setting and counters, and the snapshot last published. A health verdict,
//! an admin action or a reload changes this view and publishes a new snapshot; state and
//! counters follow a server's identity (backend, name, address) across reloads.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::balance::{Selector, ServerSpec};
use crate::config::{Backend, Balance, Config, Server};
use crate::counters::{BackendStats, FrontendStats, ServerStats};
use crate::health::Reason;
use crate::logging::event;
use crate::table::{
    algorithm, AdminState, BackendTable, FrontendTable, InspectTable, ServerEntry, ServerState,
    SharedTables, Tables,
};

mod admin;
mod diff;
mod history;
mod state_file;

/// A server's identity: a reload that keeps all three keeps its state and counter.
type ServerKey = (String, String, SocketAddr);

struct ServerRuntime {
    /// The health verdict: `Up` or `Down` (always `Up` without checks).
    state: ServerState,
    /// Why: the last health transition, e.g. `HTTP 503 (3/3 checks failed, last after 2 ms)`.
    reason: String,
    admin: AdminState,
    /// A weight set by an admin, in place of the configured one.
    admin_weight: Option<u32>,
    /// Who set `admin` (the auth user, or the client address without auth).
    admin_by: String,
    /// When the effective state last changed.
    since: Instant,
    load: Arc<AtomicU32>,
    stats: Arc<ServerStats>,
    /// Verdict changes and DOWN time, for the metrics.
    history: HealthHistory,
}

impl ServerRuntime {
    /// What the server does with new connections: the admin setting outranks health.
    fn effective(&self) -> ServerState {
        match self.admin {
            AdminState::Ready => self.state,
            AdminState::Drain => ServerState::Drain,
            AdminState::Maint => ServerState::Maint,
        }
    }
}

pub use admin::{AdminError, RegistryView};
pub use history::HealthHistory;

pub struct ServerRegistry {
    config: Config,
    /// Worker threads: every counter block has a cell for each.
    workers: usize,
    /// Per backend, per server (config order).
    servers: Vec<Vec<ServerRuntime>>,
    /// Per frontend (config order).
    frontend_conns: Vec<Arc<AtomicU32>>,
    frontend_stats: Vec<Arc<FrontendStats>>,
    /// Per backend (config order).
    backend_stats: Vec<Arc<BackendStats>>,
    /// Health-check target index → (backend, server).
    targets: Vec<(usize, usize)>,
    /// Bumped by every reload; health verdicts carry the generation of their targets.
    generation: u64,
    tables: SharedTables,
}

/// The registry behind its mutex, as the control, health, stats and ctl threads share it.
pub fn lock(registry: &Mutex<ServerRegistry>) -> MutexGuard<'_, ServerRegistry> {
    // The registry stays consistent across a panic elsewhere: every change is one store.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a reload did, for the summary log line and the health checker.
pub struct ReloadOutcome {
    /// e.g. `backend webfarm +web3 -web1 ~web2(weight 1→3); frontend api added`.
    pub summary: String,
    /// Settings that only a restart applies.
    pub needs_restart: Vec<String>,
}

impl ServerRegistry {
    /// Servers of a checked backend start DOWN until their first check; the others UP, as
    /// HAProxy treats servers without `check`. Counter blocks get a cell per worker.
    pub fn new(config: Config, workers: usize) -> ServerRegistry {
        let mut registry = ServerRegistry {
            workers,
            servers: Vec::new(),
            frontend_conns: Vec::new(),
            frontend_stats: Vec::new(),
            backend_stats: Vec::new(),
            targets: Vec::new(),
            generation: 0,
            tables: Arc::new(ArcSwap::from_pointee(Tables {
                drain_timeout: None,
                frontends: Vec::new(),
                backends: Vec::new(),
                binds: Vec::new(),
            })),
            // Nothing to carry yet: adopt() pairs the old config with no runtime state.
            config: config.clone(),
        };
        registry.adopt(config);
        registry
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether backend `b` has a server that takes new connections (UP, admin READY).
    pub fn has_up_server(&self, b: usize) -> bool {
        self.servers
            .get(b)
            .is_some_and(|s| s.iter().any(|s| s.effective() == ServerState::Up))
    }

    pub fn tables(&self) -> SharedTables {
        self.tables.clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// (backend, server) of every health-check target, in target order.
    pub fn targets(&self) -> &[(usize, usize)] {
        &self.targets
    }

    /// The failed-check counter of server `s` of backend `b` (indices of the current
    /// config), kept with the server's identity.
    pub fn check_failures(&self, b: usize, s: usize) -> Arc<AtomicU64> {
        self.servers[b][s].stats.check_failures.clone()
    }

    /// The last verdict of each target while its server existed before this reload, for
    /// the checker to carry: `None` for targets that are new.
    pub fn carried_health(&self, before: &HashMap<ServerKey, ServerState>) -> Vec<Option<bool>> {
        self.targets
            .iter()
            .map(|&(b, s)| {
                let backend = &self.config.backends[b];
                before
                    .get(&server_key(backend, &backend.servers[s]))
                    .map(|&st| st == ServerState::Up)
            })
            .collect()
    }

    /// Records a health verdict for check target `target` of `generation`, and why;
    /// verdicts about the targets of an older config are dropped.
    pub fn set_health(&mut self, generation: u64, target: usize, up: bool, reason: &Reason) {
        if generation != self.generation {
            return;
        }
        if let Some(&(b, s)) = self.targets.get(target) {
            let rt = &mut self.servers[b][s];
            let before = rt.effective();
            rt.state = if up {
                ServerState::Up
            } else {
                ServerState::Down
            };
            rt.reason = reason.to_string();
            let now = Instant::now();
            rt.history.verdict(!up, now);
            if rt.effective() != before {
                rt.since = now;
            }
        }
    }

    /// Applies a new config: servers that keep their identity keep their state and
    /// counter, checked servers that are new start DOWN, and the snapshot is published.
    /// Returns the summary and the checked servers' states from before, for the checker.
    pub fn reload(&mut self, new: Config) -> (ReloadOutcome, HashMap<ServerKey, ServerState>) {
        let before = self.checked_states();
        let summary = diff::describe_changes(&self.config, &new);
        let needs_restart = diff::needs_restart(&self.config, &new);
        self.adopt(new);
        self.generation += 1;
        (
            ReloadOutcome {
                summary,
                needs_restart,
            },
            before,
        )
    }

    fn checked_states(&self) -> HashMap<ServerKey, ServerState> {
        self.targets
            .iter()
            .map(|&(b, s)| {
                let backend = &self.config.backends[b];
                (
                    server_key(backend, &backend.servers[s]),
                    self.servers[b][s].state,
                )
            })
            .collect()
    }

    /// Takes `config` as current, carrying runtime state by identity, and publishes.
    fn adopt(&mut self, config: Config) {
        let old = &self.config;
        let workers = self.workers;
        self.frontend_stats = carry(
            old.frontends.iter().map(|f| f.name.clone()),
            self.frontend_stats.drain(..),
            config.frontends.iter().map(|f| f.name.clone()),
            || Arc::new(FrontendStats::new(workers)),
        );
        self.frontend_conns = carry(
            old.frontends.iter().map(|f| f.name.clone()),
            self.frontend_conns.drain(..),
            config.frontends.iter().map(|f| f.name.clone()),
            Arc::default,
        );
        self.backend_stats = carry(
            old.backends.iter().map(|b| b.name.clone()),
            self.backend_stats.drain(..),
            config.backends.iter().map(|b| b.name.clone()),
            || Arc::new(BackendStats::new(workers)),
        );
        // Each server's runtime with its old config (to tell whether the file changed it),
        // or None for a server that is new; in the new config's order, backend by backend.
        let mut carried = carry(
            old.backends
                .iter()
                .flat_map(|b| b.servers.iter().map(move |s| server_key(b, s))),
            old.backends
                .iter()
                .zip(self.servers.drain(..))
                .flat_map(|(b, runtimes)| b.servers.iter().cloned().zip(runtimes))
                .map(Some),
            config
                .backends
                .iter()
                .flat_map(|b| b.servers.iter().map(move |s| server_key(b, s))),
            || None,
        )
        .into_iter();

        self.targets.clear();
        self.servers = config
            .backends
            .iter()
            .enumerate()
            .map(|(bi, b)| {
                b.servers
                    .iter()
                    .enumerate()
                    .map(|(si, s)| {
                        let checked = b.health_check.is_some();
                        if checked {
                            self.targets.push((bi, si));
                        }
                        let Some((old_server, mut rt)) = carried.next().flatten() else {
                            return ServerRuntime {
                                state: if checked {
                                    ServerState::Down
                                } else {
                                    ServerState::Up
                                },
                                reason: initial_reason(checked).to_string(),
                                admin: AdminState::Ready,
                                admin_weight: None,
                                admin_by: String::new(),
                                since: Instant::now(),
                                load: Arc::default(),
                                stats: Arc::new(ServerStats::new(workers)),
                                history: HealthHistory::new(checked, Instant::now()),
                            };
                        };
                        let before = rt.effective();
                        if !checked {
                            rt.state = ServerState::Up;
                            rt.reason = initial_reason(false).to_string();
                            rt.history.verdict(false, Instant::now());
                        }
                        let overridden =
                            rt.admin != AdminState::Ready || rt.admin_weight.is_some();
                        if overridden && old_server != *s {
                            event!(
                                "admin setting of {}/{} dropped: the config file changed the server",
                                b.name, s.name
                            );
                            rt.admin = AdminState::Ready;
                            rt.admin_weight = None;
                        }
                        if rt.effective() != before {
                            rt.since = Instant::now();
                        }
                        rt
                    })
                    .collect()
            })
            .collect();
        self.config = config;
        self.publish();
    }

    /// Builds and publishes a snapshot of the current config and states.
    pub fn publish(&mut self) {
        let c = &self.config;
        let target_of = |b: usize, s: usize| self.targets.iter().position(|&t| t == (b, s));
        let tables = Tables {
            drain_timeout: c.drain_timeout,
            frontends: c
                .frontends
                .iter()
                .zip(&self.frontend_conns)
                .zip(&self.frontend_stats)
                .map(|((f, conns), stats)| FrontendTable {
                    name: f.name.clone(),
                    backend: f.backend,
                    inspect: InspectTable::new(&f.inspect),
                    forward: f.forward,
                    log: f.log,
                    maxconn: f.maxconn.unwrap_or(u32::MAX),
                    conns: conns.clone(),
                    stats: stats.clone(),
                })
                .collect(),
            binds: c
                .frontends
                .iter()
                .enumerate()
                .flat_map(|(i, f)| f.bind.iter().map(move |a| (*a, i)))
                .collect(),
            backends: c
                .backends
                .iter()
                .zip(&self.servers)
                .zip(&self.backend_stats)
                .enumerate()
                .map(|(bi, ((b, runtimes), stats))| {
                    let specs: Vec<ServerSpec<'_>> = b
                        .servers
                        .iter()
                        .zip(runtimes)
                        .map(|(s, rt)| ServerSpec {
                            name: &s.name,
                            weight: rt.admin_weight.unwrap_or(s.weight),
                            usable: rt.effective() == ServerState::Up,
                            backup: s.backup,
                        })
                        .collect();
                    BackendTable {
                        name: b.name.clone(),
                        retries: b.retries,
                        timeouts: b.timeouts,
                        no_server: b.no_server,
                        proxy_tlvs: b.proxy_tlvs,
                        hashes_source: b.balance == Balance::Source,
                        passive_checks: b
                            .health_check
                            .as_ref()
                            .is_some_and(|h| h.passive_errors.is_some()),
                        selector: Selector::build_sized(
                            algorithm(b.balance),
                            &specs,
                            b.hash_table_size as usize,
                        ),
                        load: runtimes.iter().map(|rt| rt.load.clone()).collect(),
                        stats: stats.clone(),
                        servers: b
                            .servers
                            .iter()
                            .zip(runtimes)
                            .enumerate()
                            .map(|(si, (s, rt))| ServerEntry {
                                name: s.name.clone(),
                                addr: s.addr,
                                maxconn: s.maxconn.unwrap_or(u32::MAX),
                                check: target_of(bi, si),
                                send_proxy: s.send_proxy,
                                stats: rt.stats.clone(),
                            })
                            .collect(),
                    }
                })
                .collect(),
        };
        self.tables.store(Arc::new(tables));
    }
}

/// A server's identity in `backend`.
fn server_key(backend: &Backend, server: &Server) -> ServerKey {
    (backend.name.clone(), server.name.clone(), server.addr)
}

/// What a reload carries, the one rule for frontends, backends and servers alike: each
/// item of the new config takes what the old item of the same identity held (`old_keys`
/// and `old` in the old config's order), and an item that is new gets `fresh()`.
fn carry<K: Eq + Hash, T>(
    old_keys: impl Iterator<Item = K>,
    old: impl Iterator<Item = T>,
    new_keys: impl Iterator<Item = K>,
    mut fresh: impl FnMut() -> T,
) -> Vec<T> {
    let mut old: HashMap<K, T> = old_keys.zip(old).collect();
    new_keys
        .map(|k| old.remove(&k).unwrap_or_else(&mut fresh))
        .collect()
}

fn initial_reason(checked: bool) -> &'static str {
    if checked {
        "not checked yet"
    } else {
        "no health check"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::config;
    use crate::health::Count;

    pub(super) const TEXT: &str = r#"{
  "frontends": [ { "name": "f", "bind": ["127.0.0.1:1"], "backend": "checked" } ],
  "backends": [
    { "name": "checked", "health_check": { "type": "tcp" },
      "servers": [ { "name": "a", "addr": "127.0.0.1:2" }, { "name": "b", "addr": "127.0.0.1:3" } ] },
    { "name": "plain", "servers": [ { "name": "c", "addr": "127.0.0.1:4", "maxconn": 7 } ] }
  ] }"#;

    pub(super) fn parse(text: &str) -> Config {
        config::parse("t", text).unwrap()
    }

    /// A passed first check: `HTTP 200 (first check, after 1 ms)`.
    pub(super) fn first_check() -> Reason {
        Reason {
            found: "HTTP 200".into(),
            count: Count::First {
                after: Duration::from_millis(1),
            },
        }
    }

    #[test]
    fn checked_servers_start_down_and_follow_verdicts() {
        let mut r = ServerRegistry::new(parse(TEXT), 2);
        let t = r.tables().load_full();
        assert_eq!(t.backends[0].selector.candidates(), 0);
        assert_eq!(t.backends[1].selector.candidates(), 1);
        assert_eq!(t.backends[1].servers[0].maxconn, 7);
        assert_eq!(r.targets(), &[(0, 0), (0, 1)]);
        assert_eq!(t.backends[0].servers[1].check, Some(1));
        assert_eq!(t.frontend_of("127.0.0.1:1".parse().unwrap()), Some(0));

        r.set_health(0, 1, true, &first_check());
        r.publish();
        let t2 = r.tables().load_full();
        assert_eq!(t2.backends[0].selector.candidates(), 1);
        assert!(Arc::ptr_eq(&t.backends[0].load[1], &t2.backends[0].load[1]));
        // A verdict about an older generation of targets is dropped.
        r.set_health(7, 0, true, &first_check());
        r.publish();
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 1);
    }

    #[test]
    fn reload_carries_state_and_counters_by_identity() {
        let mut r = ServerRegistry::new(parse(TEXT), 2);
        r.set_health(0, 0, true, &first_check());
        r.set_health(0, 1, true, &first_check());
        r.publish();
        let before = r.tables().load_full();
        before.backends[0].load[0].store(5, Ordering::Relaxed);

        // web b moves address (new identity), a keeps it, d is added; c's weight changes.
        let text = TEXT
            .replace("127.0.0.1:3", "127.0.0.1:9")
            .replace(
                r#"{ "name": "b", "addr": "127.0.0.1:9" }"#,
                r#"{ "name": "b", "addr": "127.0.0.1:9" }, { "name": "d", "addr": "127.0.0.1:5" }"#,
            )
            .replace(r#""maxconn": 7 }"#, r#""maxconn": 7, "weight": 3 }"#)
            .replace(
                r#""bind": ["127.0.0.1:1"]"#,
                r#""bind": ["127.0.0.1:1", "127.0.0.1:8"]"#,
            );
        let (outcome, old_states) = r.reload(parse(&text));
        assert_eq!(
            outcome.summary,
            "backend checked ~b(addr 127.0.0.1:3→127.0.0.1:9) +d; backend plain ~c(weight 1→3); frontend f +bind 127.0.0.1:8"
        );
        assert!(outcome.needs_restart.is_empty());
        let after = r.tables().load_full();
        // a kept its identity: same counter, still UP. b and d are new identities: DOWN.
        assert!(Arc::ptr_eq(
            &before.backends[0].load[0],
            &after.backends[0].load[0]
        ));
        assert_eq!(after.backends[0].load[0].load(Ordering::Relaxed), 5);
        assert_eq!(after.backends[0].selector.candidates(), 1);
        assert_eq!(r.carried_health(&old_states), vec![Some(true), None, None]);
        assert_eq!(r.generation(), 1);
        assert_eq!(after.frontend_of("127.0.0.1:8".parse().unwrap()), Some(0));
        assert!(Arc::ptr_eq(
            &before.frontends[0].conns,
            &after.frontends[0].conns
        ));
    }

    #[test]
    fn reload_reports_restart_only_settings() {
        let mut r = ServerRegistry::new(parse(TEXT), 2);
        let (outcome, _) = r.reload(parse(&TEXT.replacen('{', r#"{ "workers": 3,"#, 1)));
        assert_eq!(outcome.summary, "no change");
        assert_eq!(outcome.needs_restart, vec!["workers auto → 3".to_string()]);
    }

    #[test]
    fn reload_names_announce_changes() {
        let plain = TEXT.replace("127.0.0.1:1", "192.0.2.9:1");
        let with =
            |announce: &str| plain.replacen('{', &format!("{{ \"announce\": {announce},"), 1);
        let one = with(r#"{ "vips": ["192.0.2.9"] }"#);
        let two = with(r#"{ "vips": ["192.0.2.9"], "withdraw_delay": "1s" }"#);
        let mut r = ServerRegistry::new(parse(&plain), 2);
        assert_eq!(r.reload(parse(&one)).0.summary, "announce added");
        assert_eq!(r.reload(parse(&two)).0.summary, "announce settings changed");
        assert_eq!(r.reload(parse(&plain)).0.summary, "announce removed");
    }
}
