//! The registry's side of the stats page and runtime admin: one consistent view of every
//! frontend, backend and server (state and why, weight, counters), and admin settings
//! (READY / DRAIN / MAINT, weight) that outrank health until the config file changes the
//! server.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;

use super::{HealthHistory, ServerRegistry};
use crate::config::{Balance, MAX_WEIGHT};
use crate::counters::{BackendStats, FrontendStats, ServerStats};
use crate::table::{AdminState, ServerState};

/// One server as the stats page shows it.
#[derive(Debug, Clone)]
pub struct ServerView {
    pub name: String,
    pub addr: SocketAddr,
    pub backup: bool,
    pub maxconn: Option<u32>,
    /// Effective state (admin over health).
    pub state: ServerState,
    /// The health verdict alone (`Up` without checks).
    pub health: ServerState,
    pub checked: bool,
    pub admin: AdminState,
    /// Why the server is in `state`.
    pub reason: String,
    pub since: Instant,
    /// Effective weight (admin over config).
    pub weight: u32,
    pub load: Arc<AtomicU32>,
    pub stats: Arc<ServerStats>,
    /// Health verdict changes and DOWN time.
    pub history: HealthHistory,
}

#[derive(Debug, Clone)]
pub struct BackendView {
    pub name: String,
    pub balance: Balance,
    pub servers: Vec<ServerView>,
    pub stats: Arc<BackendStats>,
}

#[derive(Debug, Clone)]
pub struct FrontendView {
    pub name: String,
    pub bind: Vec<SocketAddr>,
    pub backend: String,
    pub maxconn: Option<u32>,
    pub conns: Arc<AtomicU32>,
    pub stats: Arc<FrontendStats>,
}

/// Everything the stats page reads from the registry, taken under one lock.
#[derive(Debug, Clone)]
pub struct RegistryView {
    pub frontends: Vec<FrontendView>,
    pub backends: Vec<BackendView>,
}

/// Why an admin action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("unknown backend {0:?}")]
    UnknownBackend(String),
    #[error("backend {0:?} has no server {1:?}")]
    UnknownServer(String, String),
    #[error("weight {0} is out of range (0 to {max})", max = MAX_WEIGHT)]
    Weight(u32),
}

impl ServerRegistry {
    /// Sets server `server` of backend `backend` to READY, DRAIN or MAINT and/or its
    /// weight (what is `None` stays); `by` names who did it. Kept across reloads until the
    /// config file changes that server, and across restarts with a state file. Publishes a
    /// new snapshot; returns the effective state, the admin state and the weight.
    pub fn set_admin(
        &mut self,
        backend: &str,
        server: &str,
        state: Option<AdminState>,
        weight: Option<u32>,
        by: &str,
    ) -> Result<(ServerState, AdminState, u32), AdminError> {
        let b = self
            .config
            .backends
            .iter()
            .position(|b| b.name == backend)
            .ok_or_else(|| AdminError::UnknownBackend(backend.to_string()))?;
        let s = self.config.backends[b]
            .servers
            .iter()
            .position(|s| s.name == server)
            .ok_or_else(|| AdminError::UnknownServer(backend.to_string(), server.to_string()))?;
        if let Some(w) = weight.filter(|&w| w > MAX_WEIGHT) {
            return Err(AdminError::Weight(w));
        }
        let configured = self.config.backends[b].servers[s].weight;
        let rt = &mut self.servers[b][s];
        let before = rt.effective();
        if let Some(state) = state {
            rt.admin = state;
        }
        rt.admin_by = by.to_string();
        if weight.is_some() {
            rt.admin_weight = weight;
        }
        if rt.effective() != before {
            rt.since = Instant::now();
        }
        let result = (
            rt.effective(),
            rt.admin,
            rt.admin_weight.unwrap_or(configured),
        );
        self.publish();
        self.persist();
        Ok(result)
    }

    /// Every frontend, backend and server with its state, reason, weight and counters.
    pub fn view(&self) -> RegistryView {
        let c = &self.config;
        let frontends = c
            .frontends
            .iter()
            .enumerate()
            .map(|(i, f)| FrontendView {
                name: f.name.clone(),
                bind: f.bind.clone(),
                backend: c
                    .backends
                    .get(f.backend.unwrap_or(usize::MAX))
                    .map_or_else(|| "-".to_string(), |b| b.name.clone()),
                maxconn: f.maxconn,
                conns: self.frontend_conns[i].clone(),
                stats: self.frontend_stats[i].clone(),
            })
            .collect();
        let backends = c
            .backends
            .iter()
            .zip(&self.servers)
            .zip(&self.backend_stats)
            .map(|((b, runtimes), stats)| BackendView {
                name: b.name.clone(),
                balance: b.balance,
                stats: stats.clone(),
                servers: b
                    .servers
                    .iter()
                    .zip(runtimes)
                    .map(|(s, rt)| ServerView {
                        name: s.name.clone(),
                        addr: s.addr,
                        backup: s.backup,
                        maxconn: s.maxconn,
                        state: rt.effective(),
                        health: rt.state,
                        checked: b.health_check.is_some(),
                        admin: rt.admin,
                        reason: match rt.admin {
                            AdminState::Ready => rt.reason.clone(),
                            a => format!(
                                "set to {} by {}; health: {}",
                                a.as_str(),
                                rt.admin_by,
                                rt.reason
                            ),
                        },
                        since: rt.since,
                        weight: rt.admin_weight.unwrap_or(s.weight),
                        load: rt.load.clone(),
                        stats: rt.stats.clone(),
                        history: rt.history,
                    })
                    .collect(),
            })
            .collect();
        RegistryView {
            frontends,
            backends,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::tests::{first_check, parse, TEXT};

    #[test]
    fn admin_settings_last_until_the_config_changes_the_server() {
        let mut r = ServerRegistry::new(parse(TEXT), 1);
        r.set_health(0, 0, true, &first_check());
        r.set_health(0, 1, true, &first_check());
        r.publish();
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 2);
        assert_eq!(
            r.set_admin("checked", "a", Some(AdminState::Drain), None, "ops"),
            Ok((ServerState::Drain, AdminState::Drain, 1))
        );
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 1);
        let v = r.view();
        assert_eq!(v.backends[0].servers[0].state, ServerState::Drain);
        assert_eq!(
            v.backends[0].servers[0].reason,
            "set to DRAIN by ops; health: HTTP 200 (first check, after 1 ms)"
        );
        // A health verdict does not lift DRAIN.
        r.set_health(0, 0, true, &first_check());
        r.publish();
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 1);
        assert_eq!(
            r.set_admin("plain", "c", Some(AdminState::Maint), Some(5), "ops"),
            Ok((ServerState::Maint, AdminState::Maint, 5))
        );
        assert_eq!(r.tables().load_full().backends[1].selector.candidates(), 0);
        assert_eq!(
            r.set_admin("plain", "x", Some(AdminState::Ready), None, "ops"),
            Err(AdminError::UnknownServer("plain".into(), "x".into()))
        );
        assert_eq!(
            r.set_admin("nope", "x", Some(AdminState::Ready), None, "ops"),
            Err(AdminError::UnknownBackend("nope".into()))
        );
        assert_eq!(
            r.set_admin("plain", "c", Some(AdminState::Ready), Some(300), "ops"),
            Err(AdminError::Weight(300))
        );

        // A reload that leaves a unchanged keeps its DRAIN; c's weight changes in the
        // file, so its MAINT and weight are dropped.
        r.reload(parse(
            &TEXT.replace(r#""maxconn": 7 }"#, r#""maxconn": 7, "weight": 3 }"#),
        ));
        let v = r.view();
        assert_eq!(v.backends[0].servers[0].state, ServerState::Drain);
        assert_eq!(v.backends[1].servers[0].state, ServerState::Up);
        assert_eq!(v.backends[1].servers[0].weight, 3);
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 1);

        assert_eq!(
            r.set_admin("checked", "a", Some(AdminState::Ready), None, "ops"),
            Ok((ServerState::Up, AdminState::Ready, 1))
        );
        assert_eq!(r.tables().load_full().backends[0].selector.candidates(), 2);
        assert_eq!(
            r.view().backends[0].servers[0].reason,
            "HTTP 200 (first check, after 1 ms)"
        );
    }

    #[test]
    fn counters_follow_identity_across_reloads() {
        let mut r = ServerRegistry::new(parse(TEXT), 2);
        let before = r.tables().load_full();
        before.backends[1].servers[0].stats.cells.of(1).conns.add(4);
        before.frontends[0].stats.cells.of(0).bytes_in.add(9);
        r.reload(parse(&TEXT.replace("127.0.0.1:3", "127.0.0.1:9")));
        let after = r.tables().load_full();
        assert_eq!(
            after.backends[1].servers[0]
                .stats
                .totals(std::time::Duration::ZERO)
                .conns,
            4
        );
        assert_eq!(after.frontends[0].stats.totals().bytes_in, 9);
        assert!(!Arc::ptr_eq(
            &before.backends[0].servers[1].stats,
            &after.backends[0].servers[1].stats
        ));
    }

    #[test]
    fn verdicts_and_failures_reach_the_view_and_survive_reloads() {
        let mut r = ServerRegistry::new(parse(TEXT), 1);
        let failures = r.check_failures(0, 0);
        failures.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        r.set_health(0, 0, true, &first_check());
        r.set_health(0, 0, true, &first_check());
        r.set_health(0, 0, false, &first_check());
        r.reload(parse(&TEXT.replace("127.0.0.1:3", "127.0.0.1:9")));
        let v = r.view();
        let a = &v.backends[0].servers[0];
        // First verdict UP (from not checked yet), a repeat, then DOWN: two changes.
        assert_eq!(a.history.changes(), 2);
        assert!(a.history.downtime(Instant::now()) > std::time::Duration::ZERO);
        assert!(Arc::ptr_eq(&a.stats.check_failures, &failures));
        // The unchecked server is never DOWN.
        let c = &v.backends[1].servers[0];
        assert_eq!(c.history.changes(), 0);
        assert_eq!(
            c.history.downtime(Instant::now()),
            std::time::Duration::ZERO
        );
    }
}
