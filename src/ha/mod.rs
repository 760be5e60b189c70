//! The I/O side of VRRP: the `ringlb-vrrp` thread drives every configured instance (the
//! sans-IO `vrrp` crate) with poll(2) and the instances' deadlines, owns their raw sockets,
//! puts the VIPs on and off the interface with rtnetlink, sends gratuitous ARP, and lowers
//! the priority while a worker is stalled (fate-sharing with the dataplane).

mod arp;
mod error;
mod iface;
mod nd;
mod notify;
mod release;
mod reload;
mod router;
mod socket;
mod track;

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::config;
use crate::fault::{self, Helper};
use crate::logging::event;
use crate::shared::Shared;
use crate::sys::netlink::{IfAddr, Rtnetlink};
use crate::sys::EventFd;
use crate::watchdog::Watchdog;
pub use release::release;
use router::Router;

/// How often the heartbeats are read when an instance tracks the workers.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(20);
/// The longest the thread sleeps with nothing due (to reap notify commands).
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// How long a stop waits for the priority-0 adverts and the VIP removal.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// The running VRRP thread. Dropping it stops the instances (priority 0, VIPs removed).
pub struct Vrrp {
    commands: Sender<Cmd>,
    wake: Arc<EventFd>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<Vec<InstanceStatus>>>,
}

/// What the control thread asks of the VRRP thread (with a write to its eventfd).
enum Cmd {
    Reload(config::Vrrp),
    Stop,
}

/// One instance as the stats page shows it.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    pub name: String,
    /// keepalived's name of its state: MASTER, BACKUP, INIT, or FAULT while tracking holds
    /// it out of the cluster.
    pub state: &'static str,
    /// Why it is in FAULT.
    pub fault: Option<String>,
    pub vrid: u8,
    pub status: vrrp::Status,
    pub counters: vrrp::Counters,
    /// Transitions since start (to any state).
    pub transitions: u64,
}

/// Reads what the VRRP thread last published about its instances (a short mutex hold).
#[derive(Clone)]
pub struct StatusReader(Arc<Mutex<Vec<InstanceStatus>>>);

impl StatusReader {
    pub fn read(&self) -> Vec<InstanceStatus> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Why the VRRP thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("vrrp: rtnetlink socket: {0}")]
    Netlink(io::Error),
    /// What this instance lacks: its interface, a socket, a valid setting.
    #[error("vrrp {instance}: {why}")]
    Instance {
        instance: String,
        why: error::SetupError,
    },
    #[error("vrrp: eventfd: {0}")]
    EventFd(io::Error),
    #[error("vrrp: cannot start thread: {0}")]
    Thread(io::Error),
}

/// Sets up every instance (sockets, interface facts) and starts the thread. `Ok(None)`
/// without instances.
pub fn start(vrrp: &config::Vrrp, shared: Arc<Shared>) -> Result<Option<Vrrp>, StartError> {
    let instances = &vrrp.instances;
    if instances.is_empty() {
        return Ok(None);
    }
    let netlink = Rtnetlink::open().map_err(StartError::Netlink)?;
    let routers = instances
        .iter()
        .map(|i| {
            Router::new(i).map_err(|why| StartError::Instance {
                instance: i.name.clone(),
                why,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let wake = Arc::new(EventFd::new().map_err(StartError::EventFd)?);
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let (commands, commands_rx) = crossbeam_channel::unbounded();
    let status = Arc::new(Mutex::new(Vec::new()));
    let track = instances
        .iter()
        .filter_map(|i| i.track.map(|t| t.worker_stall))
        .min();
    let hooks: Vec<&config::InstanceHooks> = instances.iter().map(|i| &i.hooks).collect();
    let trackers = track::Trackers::new(
        &vrrp.scripts,
        &vrrp.files,
        &hooks,
        std::time::Instant::now(),
    );
    let runner = Runner {
        routers,
        io: Io {
            netlink,
            notify: notify::Notifier::new(vrrp.notify_timeout),
        },
        trackers,
        // `track` is the shortest stall limit; the watchdog notices its own freeze after
        // half of it.
        watchdog: track.map(|stall| shared.watchdog(stall / 2)),
        shared,
        origin: std::time::Instant::now(),
        wake: wake.clone(),
        commands: commands_rx,
        done: done_tx,
        status: status.clone(),
    };
    let thread = thread::Builder::new()
        .name("ringlb-vrrp".into())
        .spawn(move || {
            let mut runner = runner;
            fault::supervise_with(Helper::Vrrp, &mut runner, Runner::run, Runner::recover)
        })
        .map_err(StartError::Thread)?;
    Ok(Some(Vrrp {
        commands,
        wake,
        done,
        thread: Some(thread),
        status,
    }))
}

impl Vrrp {
    /// Stops every instance: a master sends priority 0 so its backup takes over after
    /// `Skew_Time`, and releases the VIPs. Returns when done (or after a bounded wait).
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Applies a reloaded `vrrp` section: priority, unicast peers, tracking and notify change
    /// in place; every other difference is logged as needing a restart.
    pub fn reload(&self, vrrp: &config::Vrrp) {
        let _ = self.commands.send(Cmd::Reload(vrrp.clone()));
        self.wake_thread();
    }

    /// A handle the stats thread keeps to read the instances' status while the control
    /// thread owns this `Vrrp`.
    pub fn status_reader(&self) -> StatusReader {
        StatusReader(self.status.clone())
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.commands.send(Cmd::Stop);
        self.wake_thread();
        if self.done.recv_timeout(STOP_TIMEOUT).is_ok() {
            let _ = thread.join();
        } else {
            event!(error: "vrrp: the VRRP thread did not stop in {STOP_TIMEOUT:?}");
        }
    }
}

impl Vrrp {
    fn wake_thread(&self) {
        // Fails only when the counter is full: the thread is due to wake anyway.
        let _ = self.wake.write(1);
    }
}

impl Drop for Vrrp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What instances share for their side effects.
pub(crate) struct Io {
    netlink: Rtnetlink,
    /// Notify commands, reaped as they finish.
    notify: notify::Notifier,
}

struct Runner {
    routers: Vec<Router>,
    io: Io,
    /// Scripts, files and links the instances track (keepalived's tracking).
    trackers: track::Trackers,
    watchdog: Option<Watchdog>,
    shared: Arc<Shared>,
    origin: std::time::Instant,
    wake: Arc<EventFd>,
    commands: Receiver<Cmd>,
    done: Sender<()>,
    status: Arc<Mutex<Vec<InstanceStatus>>>,
}

impl Runner {
    /// After a fault: every instance stops as on shutdown (a master sends priority 0 and
    /// gives up its addresses), so a thread that keeps failing holds no VIP; the restart
    /// starts the instances again.
    fn recover(&mut self) {
        let now = self.now();
        for r in &mut self.routers {
            r.stop(now, &mut self.io);
        }
        self.publish();
    }

    fn run(&mut self) {
        let now = self.now();
        for r in &mut self.routers {
            r.start(now, &mut self.io);
        }
        self.apply_tracking(now);
        let mut buf = vec![0u8; 65536];
        loop {
            let now = self.now();
            self.watch_workers(now);
            if self.trackers.poll(std::time::Instant::now()) {
                self.apply_tracking(now);
            }
            for r in &mut self.routers {
                r.on_timeout(now, &mut self.io);
            }
            self.io.notify.reap();
            self.publish();

            let readable = match self.wait(now) {
                Ok(r) => r,
                Err(e) => {
                    event!(error: "vrrp: poll failed: {e}");
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if readable.wake && self.on_commands() {
                break;
            }
            let now = self.now();
            for (r, ready) in self.routers.iter_mut().zip(readable.sockets) {
                if ready {
                    r.on_readable(now, &mut buf, &mut self.io);
                }
            }
        }
        let now = self.now();
        for r in &mut self.routers {
            r.stop(now, &mut self.io);
        }
        self.publish();
        let _ = self.done.send(());
    }

    fn now(&self) -> vrrp::Instant {
        vrrp::Instant::from_duration(self.origin.elapsed())
    }

    /// Sleeps until a socket is readable, the stop eventfd is written, the next deadline, or
    /// the next watchdog check.
    fn wait(&self, now: vrrp::Instant) -> nix::Result<Readable> {
        let mut sleep = IDLE_WAKE;
        for r in &self.routers {
            if let Some(at) = r.poll_timeout() {
                sleep = sleep.min(at.saturating_duration_since(now));
            }
        }
        if self.watchdog.is_some() {
            sleep = sleep.min(WATCHDOG_PERIOD);
        }
        if let Some(at) = self.trackers.next_due() {
            sleep = sleep.min(at.saturating_duration_since(std::time::Instant::now()));
        }
        if self.io.notify.busy() {
            sleep = sleep.min(track::POLL);
        }
        // Round up, so a deadline 0.4 ms away is not polled for in a busy loop.
        let ms = sleep.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.routers.len() + 1);
        fds.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
        for r in &self.routers {
            fds.push(PollFd::new(r.socket_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        let ready = |fd: &PollFd<'_>| {
            fd.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
        };
        Ok(Readable {
            wake: ready(&fds[0]),
            sockets: fds[1..].iter().map(ready).collect(),
        })
    }

    /// Clears the eventfd and handles every queued command; true to stop.
    fn on_commands(&mut self) -> bool {
        // WouldBlock (a spurious wake-up) is harmless: the commands are read regardless.
        let _ = self.wake.read();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Cmd::Stop => return true,
                Cmd::Reload(vrrp) => self.reload(&vrrp),
            }
        }
        false
    }

    fn reload(&mut self, vrrp: &config::Vrrp) {
        let instances = &vrrp.instances;
        let now = self.now();
        // Scripts, files and links start over with the new definitions.
        self.trackers.stop();
        let hooks: Vec<&config::InstanceHooks> = instances.iter().map(|i| &i.hooks).collect();
        self.trackers = track::Trackers::new(
            &vrrp.scripts,
            &vrrp.files,
            &hooks,
            std::time::Instant::now(),
        );
        self.io.notify.set_timeout(vrrp.notify_timeout);
        for r in &mut self.routers {
            match instances.iter().find(|i| i.name == r.name()) {
                Some(new) => r.reload(new, now, &mut self.io),
                None => event!(
                    "vrrp {}: reload: instance removed from the config; \
                     still running until a restart",
                    r.name()
                ),
            }
        }
        for i in instances {
            if !self.routers.iter().any(|r| r.name() == i.name) {
                event!(
                    "vrrp {}: reload: new instance; starts with a restart",
                    i.name
                );
            }
        }
        let stall = instances
            .iter()
            .filter_map(|i| i.track.map(|t| t.worker_stall))
            .min();
        if let (None, Some(stall)) = (&self.watchdog, stall) {
            self.watchdog = Some(self.shared.watchdog(stall / 2));
        }
        self.apply_tracking(now);
    }

    /// Hands every instance what its tracking says now.
    fn apply_tracking(&mut self, now: vrrp::Instant) {
        for r in &mut self.routers {
            let (offset, fault) = self.trackers.verdict(r.hooks());
            r.on_tracking(now, offset, fault, &mut self.io);
        }
    }

    /// Fate-sharing: reads the heartbeats and lets each tracking instance react.
    fn watch_workers(&mut self, now: vrrp::Instant) {
        let Some(watchdog) = &mut self.watchdog else {
            return;
        };
        let ages = self.shared.worker_ages(watchdog);
        for r in &mut self.routers {
            r.on_worker_health(now, &ages, &mut self.io);
        }
    }

    fn publish(&self) {
        if let Ok(mut s) = self.status.lock() {
            s.clear();
            s.extend(self.routers.iter().map(Router::report));
        }
    }
}

/// A VRRP VIP as rtnetlink puts it on the interface.
fn if_addr(vip: &config::Vip) -> IfAddr {
    IfAddr {
        addr: vip.addr,
        prefix_len: vip.prefix_len,
    }
}

struct Readable {
    /// The control thread sent a command.
    wake: bool,
    sockets: Vec<bool>,
}
