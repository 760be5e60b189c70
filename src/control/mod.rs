//! The control thread after start-up: turns signals into actions. SIGHUP reloads the
//! config inside the running process (`reload.rs`); SIGTERM/SIGINT drain; reloads and
//! connection shutdowns asked on the control socket arrive as jobs (`jobs.rs`). It also
//! pings systemd's watchdog while every worker turns its loop.

mod evict;
mod jobs;
mod reload;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, Receiver, Sender};
use nix::sys::signal::Signal;

use crate::fault::{self, Helper};
use crate::health::{self, Checker};
use crate::logging::{self, event};
use crate::notify::Notifier;
use crate::registry::{lock, ServerRegistry};
use crate::shared::Shared;
use crate::sys::EventFd;
use crate::worker::{Command, WorkerExit};
pub use evict::{prepare_migration, Evictor};
pub use jobs::{Job, JobError, JobKind};
pub use reload::{LastReload, ReloadError, ReloadStatus};

/// How the control thread reaches one worker.
pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub wake: Arc<EventFd>,
}

impl WorkerHandle {
    fn send(&self, cmd: Command) {
        let _ = self.commands.send(cmd);
        // Fails only when the counter is full: the worker is due to wake anyway.
        let _ = self.wake.write(1);
    }
}

pub struct Control {
    pub config_path: PathBuf,
    pub registry: Arc<Mutex<ServerRegistry>>,
    pub checker: Checker,
    pub workers: Vec<WorkerHandle>,
    pub shared: Arc<Shared>,
    /// The connection budget the fd limit allows; `maxconn` never exceeds it.
    pub fd_conns: u32,
    pub reloads: u64,
    pub failed_reloads: u64,
    /// Shut down (priority 0, VIPs removed) before draining.
    pub vrrp: Option<crate::ha::Vrrp>,
    /// Withdraws the announced VIPs, then waits `withdraw_delay`, before draining.
    pub announce: Option<crate::announce::Announcer>,
    /// The last reload's result, for the stats page.
    pub reload_status: Arc<Mutex<ReloadStatus>>,
    /// Reloads and connection shutdowns asked for on the control socket.
    pub jobs: Receiver<Job>,
    /// systemd's notify socket (READY, RELOADING, STATUS, WATCHDOG, STOPPING).
    pub notifier: Notifier,
    /// Takes stalled workers out of the accept path (with more than one worker).
    pub evictor: Option<Evictor>,
}

/// Health-check targets of the registry's current config, and the longest check timeout.
pub fn health_targets(reg: &ServerRegistry) -> (Vec<health::Target>, Duration) {
    let c = reg.config();
    let mut wait = Duration::ZERO;
    let targets = reg
        .targets()
        .iter()
        .filter_map(|&(b, s)| {
            let backend = &c.backends[b];
            let check = backend.health_check.as_ref()?;
            wait = wait.max(check.timeout);
            Some(
                health::Target::new(&backend.name, &backend.servers[s], check)
                    .counting_failures_in(reg.check_failures(b, s)),
            )
        })
        .collect();
    (targets, wait)
}

/// Starts the health checker for `targets`; its verdicts update `registry`.
pub fn spawn_checker(
    registry: &Arc<Mutex<ServerRegistry>>,
    targets: Vec<health::Target>,
) -> io::Result<Checker> {
    let reg = registry.clone();
    Checker::spawn(
        targets,
        Box::new(move |changes| {
            let mut reg = lock(&reg);
            for change in changes {
                reg.set_health(change.generation, change.target, change.up, &change.reason);
            }
            reg.publish();
            // Logged once the new state is what workers see, not before.
            for change in changes.iter().filter(|c| c.generation == reg.generation()) {
                if change.up {
                    event!(notice: "{change}");
                } else {
                    event!(warning: "{change}");
                }
            }
        }),
    )
}

/// How often the status line (and, without a watchdog, nothing else) is refreshed.
const STATUS_PERIOD: Duration = Duration::from_secs(5);

/// Why the control loop stops serving.
enum Stop {
    Signal(Signal),
    WorkerFailed(usize, String),
    AllExited,
    SignalsGone,
}

/// What ended a wait while stopping.
enum Waited {
    Timeout,
    AllExited,
}

impl Control {
    /// Serves signals until SIGTERM/SIGINT or a worker failure, then drains: workers stop
    /// accepting, get `grace` to finish their connections, then close what is left. A
    /// second signal exits at once. Exits non-zero when a worker failed, so that the
    /// service manager restarts ringlb (its VRRP peer has taken over by then).
    pub fn run(
        mut self,
        signals: &Receiver<Signal>,
        exits: &Receiver<(usize, WorkerExit)>,
    ) -> ExitCode {
        let mut running = self.workers.len();
        // A fault while handling one signal (a reload) is caught and the loop goes on.
        let stop = loop {
            if let Some(stop) =
                fault::catch(Helper::Control, || self.serve(signals, exits, &mut running))
            {
                break stop;
            }
        };
        let code = match stop {
            Stop::Signal(sig) => {
                event!(notice:
                    "{sig}: stopping; established connections get {:?}",
                    self.grace()
                );
                ExitCode::SUCCESS
            }
            Stop::WorkerFailed(id, why) => {
                event!(error:
                    "worker {id} failed: {why}; stopping (exit status 1) so that ringlb is \
                     restarted; established connections on the other workers get {:?}",
                    self.grace()
                );
                ExitCode::from(1)
            }
            Stop::AllExited => {
                event!(error: "every worker exited");
                return ExitCode::from(1);
            }
            Stop::SignalsGone => return ExitCode::from(1),
        };
        self.notifier.stopping();
        self.withdraw(signals, exits, &mut running);
        if let Some(vrrp) = self.vrrp.take() {
            vrrp.shutdown();
        }
        self.broadcast(|| Command::Stop);
        let deadline = crossbeam_channel::after(self.grace());
        if let Waited::Timeout = self.wait_stopping(signals, exits, &mut running, &deadline) {
            event!(notice: "grace period over; closing remaining connections");
            self.broadcast(|| Command::Abort);
            self.wait_stopping(signals, exits, &mut running, &crossbeam_channel::never());
        }
        self.checker.stop();
        lock(&self.registry).persist();
        event!(notice: "stopped");
        code
    }

    /// Withdraws the announced VIPs and goes on accepting for `withdraw_delay`, so that the
    /// router has moved new flows to the other balancers before the listeners close. A
    /// second stop signal cuts the wait short (and exits, as it does while draining).
    fn withdraw(
        &mut self,
        signals: &Receiver<Signal>,
        exits: &Receiver<(usize, WorkerExit)>,
        running: &mut usize,
    ) {
        let Some(announce) = &self.announce else {
            return;
        };
        let n = announce.withdraw(self.grace());
        let delay = announce.withdraw_delay();
        event!(notice:
            "announce: {n} VIPs withdrawn; still accepting for {delay:?} (withdraw_delay) while \
             the router moves new flows away"
        );
        self.wait_stopping(signals, exits, running, &crossbeam_channel::after(delay));
    }

    /// Waits while stopping until `until` fires or every worker has exited: workers that
    /// fail are logged, control-socket jobs are answered "stopping", and a second stop
    /// signal exits at once.
    fn wait_stopping(
        &mut self,
        signals: &Receiver<Signal>,
        exits: &Receiver<(usize, WorkerExit)>,
        running: &mut usize,
        until: &Receiver<std::time::Instant>,
    ) -> Waited {
        while *running > 0 {
            select! {
                recv(exits) -> exit => {
                    *running -= 1;
                    if let Ok((id, WorkerExit::Failed(why))) = exit {
                        event!(error: "worker {id} failed while stopping: {why}");
                    }
                },
                recv(self.jobs) -> job => match job {
                    Ok(job) => {
                        let _ = job.reply.send(Err(JobError::Stopping));
                    }
                    // No control socket: never ready again (a closed channel would be
                    // ready at every turn and spin this loop).
                    Err(_) => self.jobs = crossbeam_channel::never(),
                },
                recv(signals) -> sig => {
                    if !matches!(sig, Ok(Signal::SIGHUP | Signal::SIGUSR2)) {
                        event!(notice: "second signal: exiting now");
                        logging::shutdown(Duration::from_millis(500));
                        std::process::exit(0);
                    }
                },
                recv(until) -> _ => return Waited::Timeout,
            }
        }
        Waited::AllExited
    }

    fn serve(
        &mut self,
        signals: &Receiver<Signal>,
        exits: &Receiver<(usize, WorkerExit)>,
        running: &mut usize,
    ) -> Stop {
        // The watchdog is pinged only while every worker turns its loop, so a hung
        // balancer is restarted by systemd; the status line is refreshed with it.
        let period = self
            .notifier
            .watchdog_interval()
            .unwrap_or(STATUS_PERIOD)
            .min(STATUS_PERIOD);
        let tick = crossbeam_channel::tick(period);
        let evict_tick = match self.evictor {
            Some(_) => crossbeam_channel::tick(evict::PERIOD),
            None => crossbeam_channel::never(),
        };
        loop {
            select! {
                recv(tick) -> _ => self.on_tick(),
                recv(evict_tick) -> _ => {
                    let stall = lock(&self.registry).config().worker_stall;
                    if let Some(e) = &mut self.evictor {
                        e.check(&self.shared, stall);
                    }
                },
                recv(self.jobs) -> job => match job {
                    Ok(job) => self.run_job(job),
                    Err(_) => self.jobs = crossbeam_channel::never(),
                },
                recv(signals) -> sig => match sig {
                    // SIGUSR2 is HAProxy's reload signal; SIGUSR1 its soft stop (below).
                    Ok(Signal::SIGHUP | Signal::SIGUSR2) => {
                        let _ = self.reload();
                    }
                    Ok(sig) => return Stop::Signal(sig),
                    Err(_) => return Stop::SignalsGone,
                },
                recv(exits) -> exit => {
                    *running -= 1;
                    match exit {
                        Ok((id, WorkerExit::Failed(why))) => return Stop::WorkerFailed(id, why),
                        _ if *running == 0 => return Stop::AllExited,
                        _ => {}
                    }
                }
            }
        }
    }

    /// Pings the watchdog while every worker's heartbeat is fresh, and refreshes the
    /// status line.
    fn on_tick(&self) {
        if let Some(interval) = self.notifier.watchdog_interval() {
            let now = self.shared.now_ms();
            let oldest = self
                .shared
                .heartbeats
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .min()
                .unwrap_or(now);
            let stalled = now.saturating_sub(oldest) > interval.as_millis() as u64;
            if stalled {
                event!(error: "a worker has not turned its loop for {}ms: not pinging the systemd watchdog", now.saturating_sub(oldest));
            } else {
                self.notifier.watchdog();
            }
        }
        if self.notifier.enabled() {
            self.notifier.status(&self.status_line());
        }
    }

    fn grace(&self) -> Duration {
        lock(&self.registry).config().grace
    }

    fn broadcast(&self, cmd: impl Fn() -> Command) {
        for w in &self.workers {
            w.send(cmd());
        }
    }

    /// One line for `systemctl status`: connections, servers up, reloads.
    pub fn status_line(&self) -> String {
        let reg = lock(&self.registry);
        let view = reg.view();
        let (up, all) =
            view.backends
                .iter()
                .flat_map(|b| &b.servers)
                .fold((0, 0), |(up, all), s| {
                    (
                        up + usize::from(s.state == crate::table::ServerState::Up),
                        all + 1,
                    )
                });
        format!(
            "{} connections; {up}/{all} servers up; {} reloads ({} failed)",
            self.shared.conns.load(Ordering::Relaxed),
            self.reloads,
            self.failed_reloads
        )
    }
}
