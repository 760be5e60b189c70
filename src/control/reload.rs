//! A reload inside the running process: the config file is read and checked again, and a
//! valid one is applied as a diff (listeners opened first and closed last, a new snapshot,
//! health targets replaced, VRRP adjusted in place); an invalid one changes nothing. The
//! outcome is logged, told to systemd and kept for the stats page (`ReloadStatus`).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Instant;

use super::{health_targets, Control, JobError};
use crate::config::{self, Config};
use crate::listener;
use crate::logging::{self, event};
use crate::registry::lock;
use crate::worker::{Command, ListenerSpec};

/// Why a reload failed. All but the checker's leave the previous configuration in place,
/// whole; the checker fails after the new snapshot is out, with its old targets.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("configuration invalid:\n{0}")]
    Invalid(config::ConfigErrors),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("cannot open the log ({target}): {source}")]
    Log {
        target: logging::Target,
        source: io::Error,
    },
    #[error("health checker: {0}")]
    Checker(io::Error),
}

/// Reloads so far and the last one's result, kept by the control thread.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    pub reloads: u64,
    pub failed: u64,
    pub last: Option<LastReload>,
}

#[derive(Debug, Clone)]
pub struct LastReload {
    /// The reload's number (from 1).
    pub number: u64,
    pub ok: bool,
    /// What changed, or why it failed.
    pub summary: String,
    pub at: Instant,
}

impl ReloadStatus {
    pub fn record(&mut self, number: u64, failed: u64, ok: bool, summary: String) {
        self.reloads = number;
        self.failed = failed;
        self.last = Some(LastReload {
            number,
            ok,
            summary,
            at: Instant::now(),
        });
    }
}

impl Control {
    /// Re-reads the config file. An invalid file changes nothing; a valid one is applied
    /// as a diff, and one summary line says what changed. Returns that line, or why the
    /// reload failed.
    pub(super) fn reload(&mut self) -> Result<String, JobError> {
        self.reloads += 1;
        let n = self.reloads;
        self.notifier.reloading();
        let file = self.config_path.display().to_string();
        let loaded = config::load(&self.config_path)
            .and_then(|c| config::host_problems(&file, &c).map(|()| c));
        let outcome = match loaded {
            Ok(new) => self.apply(new),
            Err(e) => {
                logging::write_text(logging::Level::Error, &e.to_string());
                Err(ReloadError::Invalid(e))
            }
        };
        match &outcome {
            Ok(summary) => {
                event!(notice: "reload #{n} ok: {summary}");
                self.record_reload(true, summary.clone());
            }
            Err(e) => {
                self.failed_reloads += 1;
                match e {
                    // Its lines were logged above, one by one.
                    ReloadError::Invalid(_) => event!(
                        error: "reload #{n} failed: configuration invalid; still serving the previous one"
                    ),
                    _ => event!(
                        error: "reload #{n} failed: {e}; still serving the previous configuration"
                    ),
                }
                self.record_reload(false, e.to_string());
            }
        }
        self.notifier.ready(&self.status_line());
        outcome
            .map(|s| format!("reload #{n} ok: {s}\n"))
            .map_err(|source| JobError::Reload { number: n, source })
    }

    fn record_reload(&self, ok: bool, summary: String) {
        let mut status = self
            .reload_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        status.record(self.reloads, self.failed_reloads, ok, summary);
    }

    fn apply(&mut self, new: Config) -> Result<String, ReloadError> {
        let old_binds = binds(lock(&self.registry).config());
        let new_binds = binds(&new);
        let added: Vec<_> = new_binds
            .iter()
            .filter(|a| !old_binds.contains(a))
            .copied()
            .collect();
        let removed: Vec<_> = old_binds
            .iter()
            .filter(|a| !new_binds.contains(a))
            .copied()
            .collect();

        // Open every new socket before changing anything: a bind that fails leaves the
        // old configuration in place, whole.
        let mut per_worker: Vec<Vec<ListenerSpec>> =
            self.workers.iter().map(|_| Vec::new()).collect();
        for &addr in &added {
            let fds = listener::reuseport_group(addr, per_worker.len())
                .map_err(|source| ReloadError::Listen { addr, source })?;
            for (specs, fd) in per_worker.iter_mut().zip(fds) {
                specs.push(ListenerSpec { fd, addr });
            }
        }

        let log_target = new.log.clone();
        let log_changed = lock(&self.registry).config().log != log_target;
        if log_changed {
            // Opened first: a target that cannot be opened fails the reload, whole.
            logging::reconfigure(&log_target).map_err(|source| ReloadError::Log {
                target: log_target.clone(),
                source,
            })?;
        }
        let maxconn = new.maxconn.map_or(self.fd_conns, |m| m.min(self.fd_conns));
        let vrrp_section = new.vrrp.clone();
        let announce_section = new.announce.clone();
        let (mut outcome, targets, carried, generation) = {
            let mut reg = lock(&self.registry);
            let (outcome, before) = reg.reload(new);
            let (targets, _) = health_targets(&reg);
            let carried = reg.carried_health(&before);
            (outcome, targets, carried, reg.generation())
        };
        self.shared.maxconn.store(maxconn, Ordering::Relaxed);

        // The new snapshot is published: now the new listeners may accept.
        for (w, specs) in self.workers.iter().zip(per_worker) {
            if !specs.is_empty() {
                w.send(Command::AddListeners(specs));
            }
        }
        if !removed.is_empty() {
            self.broadcast(|| Command::RemoveListeners(removed.clone()));
        }
        self.checker
            .replace(targets, carried, generation)
            .map_err(ReloadError::Checker)?;
        // The VRRP thread applies priority, peers, tracking and notify in place and logs
        // what else would need a restart.
        match &self.vrrp {
            Some(vrrp) => vrrp.reload(&vrrp_section),
            None if !vrrp_section.instances.is_empty() => outcome
                .needs_restart
                .push("vrrp (no instance ran at start)".to_string()),
            None => {}
        }
        match &mut self.announce {
            Some(a) => a.reload(announce_section.as_ref()),
            None if announce_section.is_some() => outcome
                .needs_restart
                .push("announce (not running since start)".to_string()),
            None => {}
        }
        for what in &outcome.needs_restart {
            event!(warning: "reload: {what} changed; this needs a restart and is not applied");
        }
        Ok(outcome.summary)
    }
}

fn binds(c: &Config) -> Vec<std::net::SocketAddr> {
    c.frontends
        .iter()
        .flat_map(|f| f.bind.iter().copied())
        .collect()
}
