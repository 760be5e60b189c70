//! Announcing the VIPs to an ECMP router (the `announce` section): the `ringlb-announce`
//! thread puts each VIP on ringlb's own TUN interface (`tun.rs`) while this box can serve
//! it, and takes it off when it cannot; the routing daemon (BIRD's `protocol direct` on that
//! interface) turns the address into a BGP announcement or withdrawal. The route shares fate
//! with the workers as the VRRP VIP does: fewer than `min_workers` workers turning their
//! loop, or (with `require_up_server`) no UP server behind the VIP, withdraws it; a stop
//! withdraws everything before the listeners close; the process dying deletes the interface.

mod handoff;
mod tun;

pub use tun::set_link;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::config::Announce;
use crate::fault::{self, Helper};
use crate::logging::event;
use crate::registry::{lock, ServerRegistry};
use crate::shared::Shared;
use crate::sys::netlink::{IfAddr, Outcome, Rtnetlink};
use crate::watchdog::Watchdog;

/// How often the heartbeats are read: a stall is seen within `worker_stall` plus this, and
/// the route is gone from the router a few milliseconds later (BIRD reacts to the address
/// change at once; measured in the lab: 9 ms from the removal to the router's FIB).
const PERIOD: Duration = Duration::from_millis(20);
/// How often servers' states are read for `require_up_server` (under the registry lock).
const SERVER_PERIOD: u32 = 5;
/// The longest a withdrawal or a stop waits for the thread.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the announce thread last published: each VIP's state and the handoff's, for the
/// stats page, `/metrics` and `ringlb ctl show announce`.
#[derive(Debug, Clone, Default)]
pub struct AnnounceStatus {
    pub interface: String,
    pub vips: Vec<VipStatus>,
    pub handoff: Option<HandoffStatus>,
}

#[derive(Debug, Clone)]
pub struct VipStatus {
    pub addr: IpAddr,
    pub announced: bool,
    /// Why it is not announced (or why the last change failed).
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HandoffStatus {
    pub peers: Vec<IpAddr>,
    /// Seconds the open window has to run; 0 when none is open.
    pub window_left: Duration,
    pub counts: handoff::HandoffCounts,
}

/// Reads what the announce thread last published (a short mutex hold).
#[derive(Clone)]
pub struct AnnounceReader(Arc<Mutex<AnnounceStatus>>);

impl AnnounceReader {
    pub fn read(&self) -> AnnounceStatus {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The running announcer. Dropping it withdraws every VIP.
pub struct Announcer {
    commands: Sender<Cmd>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    withdraw_delay: Duration,
    status: AnnounceReader,
}

enum Cmd {
    Reload(Option<Announce>),
    /// Withdraw every VIP for good (a stop) ahead of a drain of `drain`; answer when done.
    Withdraw {
        drain: Duration,
        reply: Sender<usize>,
    },
    Stop,
}

/// Why the announcer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("announce.interface: cannot create TUN interface {interface:?}: {source}{hint}")]
    Tun {
        interface: String,
        source: io::Error,
        hint: &'static str,
    },
    #[error("announce: rtnetlink socket: {0}")]
    Netlink(io::Error),
    #[error("announce.vips: cannot put {addr} on lo (so that this box accepts it): {source}")]
    Local { addr: IpAddr, source: io::Error },
    #[error("announce.handoff: {0}")]
    Handoff(String),
    #[error("announce: cannot start thread: {0}")]
    Thread(io::Error),
}

/// Creates the interface, makes sure every VIP is local (on `lo`), and starts the thread,
/// which announces the VIPs at its first turn if the workers turn and (when asked) servers
/// are up.
pub fn start(
    cfg: &Announce,
    shared: Arc<Shared>,
    registry: Arc<Mutex<ServerRegistry>>,
) -> Result<Announcer, StartError> {
    let tun = tun::Tun::create(&cfg.interface).map_err(|source| StartError::Tun {
        interface: cfg.interface.clone(),
        hint: match source.raw_os_error() {
            Some(libc::EBUSY) => " (another process holds it: is another ringlb running?)",
            Some(libc::EPERM) | Some(libc::EACCES) => " (needs CAP_NET_ADMIN)",
            Some(libc::ENOENT) | Some(libc::ENODEV) => " (no /dev/net/tun: modprobe tun)",
            _ => "",
        },
        source,
    })?;
    let mut netlink = Rtnetlink::open().map_err(StartError::Netlink)?;
    for vip in &cfg.vips {
        make_local(&mut netlink, vip.addr).map_err(|source| StartError::Local {
            addr: vip.addr,
            source,
        })?;
    }
    let handoff = match &cfg.handoff {
        Some(h) => Some(
            handoff::Handoff::install(h, &cfg.interface, vip_addrs(cfg))
                .map_err(StartError::Handoff)?,
        ),
        None => {
            handoff::remove_stale(&cfg.interface);
            None
        }
    };
    event!(
        "announce: interface {} (index {}) for {} VIPs; the routing daemon exports its addresses",
        tun.name,
        tun.index,
        cfg.vips.len()
    );
    let (commands, commands_rx) = crossbeam_channel::unbounded();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let workers = shared.heartbeats.len();
    let status = AnnounceReader(Arc::new(Mutex::new(AnnounceStatus::default())));
    let runner = Runner {
        status: status.clone(),
        reasons: HashMap::new(),
        // It notices its own freeze after half the stall limit.
        watchdog: shared.watchdog(cfg.worker_stall / 2),
        cfg: cfg.clone(),
        tun,
        netlink,
        handoff,
        joining: None,
        shared,
        registry,
        workers,
        announced: HashMap::new(),
        failing: HashMap::new(),
        servers_up: Vec::new(),
        ticks: 0,
        stopping: false,
        commands: commands_rx,
        done: done_tx,
    };
    let withdraw_delay = cfg.withdraw_delay;
    let thread = thread::Builder::new()
        .name("ringlb-announce".into())
        .spawn(move || {
            let mut runner = runner;
            fault::supervise_with(Helper::Announce, &mut runner, Runner::run, Runner::recover)
        })
        .map_err(StartError::Thread)?;
    Ok(Announcer {
        commands,
        done,
        thread: Some(thread),
        withdraw_delay,
        status,
    })
}

impl Announcer {
    /// Withdraws every VIP and keeps them withdrawn (a stop that then drains established
    /// connections for `drain`; with a handoff, the peers are asked to hand this box's
    /// flows back until the drain is over); returns how many were announced, once they
    /// are off the interface (or after a bounded wait).
    pub fn withdraw(&self, drain: Duration) -> usize {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let _ = self.commands.send(Cmd::Withdraw { drain, reply: tx });
        match rx.recv_timeout(STOP_TIMEOUT) {
            Ok(n) => n,
            Err(_) => {
                event!(error: "announce: the announce thread did not withdraw in {STOP_TIMEOUT:?}");
                0
            }
        }
    }

    pub fn status_reader(&self) -> AnnounceReader {
        self.status.clone()
    }

    /// How long a stop goes on accepting after the withdrawal.
    pub fn withdraw_delay(&self) -> Duration {
        self.withdraw_delay
    }

    /// Applies a reloaded `announce` section: VIPs, tracking and the delay change in place
    /// (`None`: every VIP is withdrawn); a new interface name needs a restart.
    pub fn reload(&mut self, cfg: Option<&Announce>) {
        if let Some(c) = cfg {
            self.withdraw_delay = c.withdraw_delay;
        }
        let _ = self.commands.send(Cmd::Reload(cfg.cloned()));
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.commands.send(Cmd::Stop);
        if self.done.recv_timeout(STOP_TIMEOUT).is_ok() {
            let _ = thread.join();
        } else {
            event!(error: "announce: the announce thread did not stop in {STOP_TIMEOUT:?}");
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a VIP is not announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Withdrawn {
    Stopping,
    Workers { live: usize, min: usize },
    NoUpServer,
}

impl std::fmt::Display for Withdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withdrawn::Stopping => write!(f, "stopping"),
            Withdrawn::Workers { live, min } => write!(
                f,
                "{live} workers turn their loop, fewer than min_workers {min}"
            ),
            Withdrawn::NoUpServer => write!(f, "no frontend bound to it has an UP server"),
        }
    }
}

/// Whether a VIP is announced: `Ok` to announce, else why not. `server_up` is `None`
/// without `require_up_server`.
fn verdict(
    stopping: bool,
    live: usize,
    min: usize,
    server_up: Option<bool>,
) -> Result<(), Withdrawn> {
    if stopping {
        Err(Withdrawn::Stopping)
    } else if live < min {
        Err(Withdrawn::Workers { live, min })
    } else if server_up == Some(false) {
        Err(Withdrawn::NoUpServer)
    } else {
        Ok(())
    }
}

struct Runner {
    cfg: Announce,
    tun: tun::Tun,
    netlink: Rtnetlink,
    handoff: Option<handoff::Handoff>,
    /// Since when a join waits for `HANDOFF_LEAD`.
    joining: Option<Instant>,
    status: AnnounceReader,
    /// Per VIP: why it is not announced, as of the last tick.
    reasons: HashMap<IpAddr, String>,
    shared: Arc<Shared>,
    registry: Arc<Mutex<ServerRegistry>>,
    workers: usize,
    watchdog: Watchdog,
    /// VIPs on the interface now.
    announced: HashMap<IpAddr, bool>,
    /// The last netlink error per VIP, logged once until it changes.
    failing: HashMap<IpAddr, String>,
    /// Per VIP of `cfg.vips`: a frontend bound to it has an UP server.
    servers_up: Vec<bool>,
    ticks: u32,
    stopping: bool,
    commands: Receiver<Cmd>,
    done: Sender<()>,
}

impl Runner {
    /// After a fault: every VIP off, so a thread that keeps failing announces nothing; the
    /// restart announces again what may be.
    fn recover(&mut self) {
        self.withdraw_all("announce thread fault");
    }

    fn run(&mut self) {
        loop {
            crate::beat::beat();
            match self.commands.recv_timeout(PERIOD) {
                Ok(Cmd::Reload(cfg)) => self.reload(cfg),
                Ok(Cmd::Withdraw { drain, reply }) => {
                    self.stopping = true;
                    // The peers open their windows before the router moves this box's
                    // flows to them; the window lasts until the drain is over.
                    if let Some(h) = &mut self.handoff {
                        h.tell(handoff::Notice {
                            change: handoff::Change::Leaving,
                            window: self.cfg.withdraw_delay + drain + HANDOFF_MARGIN,
                        });
                        let until = Instant::now() + HANDOFF_LEAD;
                        while Instant::now() < until {
                            crate::beat::beat();
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                    let n = self.withdraw_all("stopping");
                    self.reasons = self
                        .cfg
                        .vips
                        .iter()
                        .map(|v| (v.addr, Withdrawn::Stopping.to_string()))
                        .collect();
                    self.publish();
                    let _ = reply.send(n);
                }
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick();
        }
        crate::beat::stop_beating();
        self.withdraw_all("stopping");
        let _ = self.done.send(());
    }

    fn tick(&mut self) {
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::announce_turn();
        if let Some(ago) = crate::beat::take_pulled() {
            self.announce_afresh(ago);
        }
        let ages = self.shared.worker_ages(&mut self.watchdog);
        let live = ages.live(self.cfg.worker_stall.as_millis() as u64);
        let min = self.cfg.min_workers(self.workers);
        if self.cfg.require_up_server
            && (self.ticks % SERVER_PERIOD == 0 || self.servers_up.len() != self.cfg.vips.len())
        {
            self.read_servers();
        }
        self.ticks = self.ticks.wrapping_add(1);
        let wants: Vec<(IpAddr, Result<(), Withdrawn>)> = (0..self.cfg.vips.len())
            .map(|i| {
                let server_up = self
                    .cfg
                    .require_up_server
                    .then(|| self.servers_up.get(i).copied().unwrap_or(false));
                (
                    self.cfg.vips[i].addr,
                    verdict(self.stopping, live, min, server_up),
                )
            })
            .collect();
        let joining = wants
            .iter()
            .any(|(a, w)| w.is_ok() && !self.announced.get(a).copied().unwrap_or(false));
        let hold_joins = joining && !self.ready_to_join();
        let mut left = false;
        for (addr, want) in wants {
            match &want {
                Ok(()) if hold_joins => {
                    self.reasons
                        .insert(addr, "telling the handoff peers first".into());
                    continue;
                }
                Ok(()) => self.reasons.remove(&addr),
                Err(why) => self.reasons.insert(addr, why.to_string()),
            };
            if self.set(addr, want) == Some(false) {
                left = true;
            }
        }
        if !hold_joins {
            // Joined (or nothing to join): the next join tells the peers again.
            self.joining = None;
        }
        if left && !self.stopping {
            self.tell(handoff::Change::Leaving);
        }
        if let Some(h) = &mut self.handoff {
            h.poll();
        }
        self.publish();
    }

    /// Publishes each VIP's state and the handoff's for the stats readers.
    fn publish(&self) {
        let mut st = self.status.0.lock().unwrap_or_else(PoisonError::into_inner);
        st.interface.clone_from(&self.tun.name);
        st.vips = self
            .cfg
            .vips
            .iter()
            .map(|v| VipStatus {
                addr: v.addr,
                announced: self.announced.get(&v.addr).copied().unwrap_or(false),
                reason: self
                    .failing
                    .get(&v.addr)
                    .or_else(|| self.reasons.get(&v.addr))
                    .cloned(),
            })
            .collect();
        st.handoff = self.handoff.as_ref().map(|h| HandoffStatus {
            peers: h.peers().to_vec(),
            window_left: h.window_left(),
            counts: h.counts(),
        });
    }

    /// The supervising parent took the interface down while this process was frozen:
    /// every VIP comes off it, the interface goes up again, and the VIPs are announced
    /// afresh (a join, with the handoff's notice first) by the ticks that follow.
    fn announce_afresh(&mut self, ago: Duration) {
        event!(warning:
            "announce: the supervisor withdrew every VIP {ago:?} ago, this process having \
             been frozen; announcing afresh"
        );
        self.withdraw_all("frozen, withdrawn by the supervisor");
        self.joining = None;
        if let Err(e) = set_link(&self.tun.name, true) {
            event!(error: "announce: cannot bring {} up again: {e}", self.tun.name);
        }
    }

    /// Whether a VIP about to be announced may go now. With a handoff, the peers are told
    /// first and this box opens its own window (flows the router moves to it belong to the
    /// peers until they end); the announcement follows `HANDOFF_LEAD` later, once the
    /// peers' windows are open too.
    fn ready_to_join(&mut self) -> bool {
        if self.handoff.is_none() {
            return true;
        }
        match self.joining {
            Some(since) => since.elapsed() >= HANDOFF_LEAD,
            None => {
                self.tell(handoff::Change::Joined);
                let window = self.window();
                if let Some(h) = &mut self.handoff {
                    h.open(window, "this box joins");
                }
                self.joining = Some(Instant::now());
                false
            }
        }
    }

    /// The window this box asks for on a join, or on a withdrawal that is not a stop.
    fn window(&self) -> Duration {
        self.cfg
            .handoff
            .as_ref()
            .map_or(Duration::ZERO, |c| c.window)
    }

    fn tell(&mut self, change: handoff::Change) {
        let window = self.window();
        if let Some(h) = &mut self.handoff {
            h.tell(handoff::Notice { change, window });
        }
    }

    /// Reads, per VIP, whether a frontend bound to it has an UP server (its backend or one
    /// of its TLS routes' backends).
    fn read_servers(&mut self) {
        let reg = lock(&self.registry);
        let c = reg.config();
        self.servers_up = self
            .cfg
            .vips
            .iter()
            .map(|v| {
                v.frontends
                    .iter()
                    .filter_map(|&f| c.frontends.get(f))
                    .any(|f| {
                        f.backend
                            .into_iter()
                            .chain(f.inspect.routes.iter().map(|r| r.backend))
                            .any(|b| reg.has_up_server(b))
                    })
            })
            .collect();
    }

    /// Puts `addr` on the interface or takes it off, logging each change once; returns
    /// the change made (`Some(true)`: announced).
    fn set(&mut self, addr: IpAddr, want: Result<(), Withdrawn>) -> Option<bool> {
        let on = self.announced.get(&addr).copied().unwrap_or(false);
        if on == want.is_ok() {
            return None;
        }
        let host = IfAddr::host(addr);
        let result = if want.is_ok() {
            self.netlink.add(self.tun.index, host)
        } else {
            self.netlink.remove(self.tun.index, host)
        };
        match result {
            Ok(_) => {
                self.failing.remove(&addr);
                self.announced.insert(addr, want.is_ok());
                match want {
                    Ok(()) => event!(notice: "announce: {addr} announced (on {})", self.tun.name),
                    Err(why) => event!(warning: "announce: {addr} withdrawn: {why}"),
                }
                Some(want.is_ok())
            }
            Err(e) => {
                let msg = e.to_string();
                if self.failing.get(&addr) != Some(&msg) {
                    event!(error:
                        "announce: cannot {} {addr} on {}: {msg}",
                        if want.is_ok() { "put" } else { "take off" },
                        self.tun.name
                    );
                    self.failing.insert(addr, msg);
                }
                None
            }
        }
    }

    /// Takes every VIP off the interface; returns how many were on it.
    fn withdraw_all(&mut self, why: &str) -> usize {
        let mut n = 0;
        let on: Vec<IpAddr> = self
            .announced
            .iter()
            .filter(|(_, &on)| on)
            .map(|(&a, _)| a)
            .collect();
        for addr in on {
            match self.netlink.remove(self.tun.index, IfAddr::host(addr)) {
                Ok(Outcome::Done) => {
                    n += 1;
                    event!(warning: "announce: {addr} withdrawn: {why}");
                }
                Ok(Outcome::AlreadyThere) => {}
                Err(e) => event!(error: "announce: cannot take {addr} off {}: {e}", self.tun.name),
            }
            self.announced.insert(addr, false);
        }
        n
    }

    fn reload(&mut self, cfg: Option<Announce>) {
        let Some(cfg) = cfg else {
            self.withdraw_all("the announce section was removed");
            self.cfg.vips.clear();
            return;
        };
        if cfg.interface != self.tun.name {
            event!(warning:
                "reload: announce.interface changed ({} → {}); this needs a restart and is not applied",
                self.tun.name, cfg.interface
            );
        }
        let removed: Vec<IpAddr> = self
            .cfg
            .vips
            .iter()
            .map(|v| v.addr)
            .filter(|a| !cfg.vips.iter().any(|v| v.addr == *a))
            .collect();
        for addr in removed {
            let _ = self.set(addr, Err(Withdrawn::Stopping));
            self.announced.remove(&addr);
        }
        for vip in &cfg.vips {
            if let Err(e) = make_local(&mut self.netlink, vip.addr) {
                event!(error: "announce: cannot put {} on lo: {e}", vip.addr);
            }
        }
        if cfg.worker_stall != self.cfg.worker_stall {
            self.watchdog = self.shared.watchdog(cfg.worker_stall / 2);
        }
        let interface = std::mem::take(&mut self.cfg.interface);
        self.cfg = cfg;
        self.cfg.interface = interface;
        self.servers_up.clear();
        self.reload_handoff();
    }

    /// Reinstalls the handoff table when its section or the VIPs changed (an open window
    /// closes), removes it when the section is gone, installs it when it is new. A table
    /// that cannot be installed leaves the handoff off, with an error, and the rest of the
    /// reload applied.
    fn reload_handoff(&mut self) {
        let vips = vip_addrs(&self.cfg);
        let Some(cfg) = &self.cfg.handoff else {
            if self.handoff.take().is_some() {
                event!(notice: "reload: announce.handoff removed");
            }
            return;
        };
        if self.handoff.as_ref().is_some_and(|h| h.same(cfg, &vips)) {
            return;
        }
        // The old table goes first (its port is the new one's, its table the same).
        self.handoff = None;
        match handoff::Handoff::install(cfg, &self.tun.name, vips) {
            Ok(h) => self.handoff = Some(h),
            Err(e) => event!(error: "reload: announce.handoff: {e}; handing off is off"),
        }
    }
}

/// How long before announcing (a join) or withdrawing for a stop the peers are told: they
/// read notices every `PERIOD` and open a window with one `nft` run (a few milliseconds).
const HANDOFF_LEAD: Duration = Duration::from_millis(100);
/// A leaving box's window is its withdrawal plus its drain, and this much more: a notice
/// and the drain's last bytes are not timed to the millisecond.
const HANDOFF_MARGIN: Duration = Duration::from_secs(1);

fn vip_addrs(cfg: &Announce) -> Vec<IpAddr> {
    cfg.vips.iter().map(|v| v.addr).collect()
}

/// Puts `addr` on `lo` (as /32 or /128) unless it is there: the box must accept the VIP
/// whether or not it is announced, so that flows the router still sends during a
/// withdrawal are served, not reset.
fn make_local(netlink: &mut Rtnetlink, addr: IpAddr) -> io::Result<()> {
    let lo = nix::net::if_::if_nametoindex("lo").map_err(io::Error::from)?;
    match netlink.add(lo, IfAddr::host(addr))? {
        Outcome::Done => event!("announce: {addr} added to lo, so that this box accepts it"),
        Outcome::AlreadyThere => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_only_while_serving() {
        assert_eq!(verdict(false, 2, 1, None), Ok(()));
        assert_eq!(verdict(false, 1, 1, Some(true)), Ok(()));
        assert_eq!(
            verdict(false, 0, 1, None),
            Err(Withdrawn::Workers { live: 0, min: 1 })
        );
        assert_eq!(
            verdict(false, 2, 1, Some(false)),
            Err(Withdrawn::NoUpServer)
        );
        // A stop outranks everything.
        assert_eq!(verdict(true, 2, 1, Some(true)), Err(Withdrawn::Stopping));
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            Withdrawn::Workers { live: 1, min: 2 }.to_string(),
            "1 workers turn their loop, fewer than min_workers 2"
        );
    }
}
