//! One configured instance at run time: its `vrrp::Instance`, its sockets, and how its
//! adverts, events and transitions become packets, netlink requests, log lines and notify
//! commands.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant as StdInstant;

use vrrp::{Cause, Event, GarpReason, Instance, State, VirtualAddrs};

use super::arp::{self, ArpSocket};
use super::error::SetupError;
use super::iface::{self, Interface};
use super::nd::NaSocket;
use super::reload::needs_restart;
use super::socket::VrrpSocket;
use super::{InstanceStatus, Io};
use crate::config::{TrackAction, VrrpInstance};
use crate::logging::event;
use crate::watchdog::Ages;

/// Drop and send-error lines per instance at most this often (a flood must not flood the
/// log).
const DROP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) struct Router {
    cfg: VrrpInstance,
    vr: Instance,
    iface: Interface,
    socket: VrrpSocket,
    announce: Announcer,
    /// The state last logged, for `FROM -> TO` lines.
    state: State,
    /// The workers are stalled past `track.worker_stall` (the penalty or stop is applied).
    stalled: bool,
    /// Why tracking (a script, an interface) holds the instance in FAULT.
    fault: Option<String>,
    /// Out of the cluster (FAULT, or stalled with `stop_adverts`): no adverts, no VIPs.
    out: bool,
    /// Set when a transition is caused by fate-sharing rather than by the protocol.
    track_cause: Option<String>,
    transitions: u64,
    drop_log: RateLimited,
    send_error_log: RateLimited,
    heal_log: RateLimited,
}

impl Router {
    /// The instance `cfg` on its interface, with its sockets open; an error says what is
    /// missing (the caller names the instance).
    pub(super) fn new(cfg: &VrrpInstance) -> Result<Router, SetupError> {
        let ipv6 = cfg.vips.first().is_some_and(|v| v.addr.is_ipv6());
        let vips: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
        let iface = iface::lookup(&cfg.interface, ipv6, &vips)?;
        let addrs = if ipv6 {
            let v6 = vips.iter().filter_map(|a| match a {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            });
            VirtualAddrs::V6(v6.collect())
        } else {
            let v4 = vips.iter().filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            });
            VirtualAddrs::V4(v4.collect())
        };
        let mut vc = vrrp::Config::new(cfg.vrid, iface.primary, addrs);
        vc.version = cfg.version;
        vc.priority = cfg.priority;
        vc.advert_interval = cfg.advert_interval;
        vc.auth = cfg.auth;
        vc.preempt = cfg.preempt;
        vc.preempt_delay = cfg.preempt_delay;
        vc.accept_mode = cfg.accept_mode;
        vc.checksum_mode = cfg.checksum;
        vc.garp_master_repeat = cfg.garp_repeat;
        vc.garp_interval = cfg.garp_interval;
        vc.garp_master_delay = cfg.garp_delay;
        vc.garp_master_refresh = cfg.garp_refresh;
        let vr = Instance::new(vc)?;
        let multicast = cfg.unicast_peers.is_empty();
        let socket = VrrpSocket::open(&cfg.interface, iface.index, iface.primary, multicast)
            .map_err(|err| SetupError::RawSocket {
                name: cfg.interface.clone(),
                err,
            })?;
        let announce = if ipv6 {
            NaSocket::open(&cfg.interface, iface.index).map(Announcer::Na)
        } else {
            ArpSocket::open(iface.index).map(Announcer::Arp)
        }
        .map_err(|err| SetupError::AnnounceSocket {
            name: cfg.interface.clone(),
            err,
        })?;
        Ok(Router {
            cfg: cfg.clone(),
            vr,
            iface,
            socket,
            announce,
            state: State::Initialize,
            stalled: false,
            fault: None,
            out: false,
            track_cause: None,
            transitions: 0,
            drop_log: RateLimited::default(),
            send_error_log: RateLimited::default(),
            heal_log: RateLimited::default(),
        })
    }

    /// Clears VIPs a crashed predecessor left on the interface (as keepalived does), then
    /// starts as backup (or master, as address owner).
    pub(super) fn start(&mut self, now: vrrp::Instant, io: &mut Io) {
        let peers = if self.cfg.unicast_peers.is_empty() {
            format!(
                "multicast {}",
                vrrp::Family::of(self.iface.primary).multicast_group()
            )
        } else {
            let list: Vec<String> = self
                .cfg
                .unicast_peers
                .iter()
                .map(|p| p.to_string())
                .collect();
            format!("unicast to {}", list.join(", "))
        };
        event!(
            "vrrp {}: {} VRID {} priority {} interval {}ms on {} from {} ({peers})",
            self.cfg.name,
            self.cfg.version,
            self.cfg.vrid,
            self.cfg.priority,
            self.cfg.advert_interval.as_duration().as_millis(),
            self.cfg.interface,
            self.iface.primary,
        );
        // An address owner's VIPs are its own addresses: nothing stale to clear.
        let owner = self.cfg.priority == 255;
        for vip in self.cfg.vips.iter().filter(|_| !owner) {
            match io.netlink.remove(self.iface.index, super::if_addr(vip)) {
                Ok(crate::sys::netlink::Outcome::Done) => event!(
                    "vrrp {}: removed {}/{} left on {} from an earlier run",
                    self.cfg.name,
                    vip.addr,
                    vip.prefix_len,
                    self.cfg.interface
                ),
                Ok(_) => {}
                Err(e) => event!("vrrp {}: cannot clear {}: {e}", self.cfg.name, vip.addr),
            }
        }
        self.vr.startup(now);
        self.flush(io);
    }

    pub(super) fn stop(&mut self, now: vrrp::Instant, io: &mut Io) {
        self.vr.shutdown(now);
        self.flush(io);
        let c = self.vr.counters();
        event!(
            "vrrp {}: stopped; adverts sent {} received {} dropped {}, {} transitions",
            self.cfg.name,
            c.adverts_sent,
            c.adverts_received,
            c.drops.total(),
            self.transitions
        );
    }

    pub(super) fn name(&self) -> &str {
        &self.cfg.name
    }

    pub(super) fn hooks(&self) -> &crate::config::InstanceHooks {
        &self.cfg.hooks
    }

    /// Applies a reloaded instance config (see `reload::needs_restart` for what cannot).
    pub(super) fn reload(&mut self, new: &VrrpInstance, now: vrrp::Instant, io: &mut Io) {
        let name = self.cfg.name.clone();
        for field in needs_restart(&self.cfg, new) {
            event!(
                "vrrp {name}: reload: {field} changed; needs a restart \
                 (the running value stays)"
            );
        }
        if new.priority != self.cfg.priority {
            match self.vr.set_priority(now, new.priority) {
                Ok(()) => self.cfg.priority = new.priority,
                Err(e) => event!("vrrp {name}: reload: priority: {e}"),
            }
        }
        if !new.unicast_peers.is_empty() && !self.cfg.unicast_peers.is_empty() {
            self.cfg.unicast_peers = new.unicast_peers.clone();
        }
        if new.track != self.cfg.track {
            // Lift what the old setting applied; the next check applies the new one.
            if self.stalled {
                self.stalled = false;
                match self.cfg.track.map(|t| t.action) {
                    Some(TrackAction::Penalty(_)) => self.vr.set_penalty(now, 0),
                    Some(TrackAction::StopAdverts) => {
                        self.track_cause = Some("tracking changed by a reload".into());
                        self.vr.startup(now);
                    }
                    None => {}
                }
            }
            self.cfg.track = new.track;
        }
        self.cfg.notify = new.notify.clone();
        self.cfg.hooks = new.hooks.clone();
        self.flush(io);
    }

    pub(super) fn poll_timeout(&self) -> Option<vrrp::Instant> {
        self.vr.poll_timeout()
    }

    pub(super) fn socket_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    pub(super) fn on_timeout(&mut self, now: vrrp::Instant, io: &mut Io) {
        if self.vr.poll_timeout().is_some_and(|at| at <= now) {
            self.vr.handle_timeout(now);
            self.flush(io);
        }
    }

    /// Reads every waiting datagram and hands ours to the instance.
    pub(super) fn on_readable(&mut self, now: vrrp::Instant, buf: &mut [u8], io: &mut Io) {
        loop {
            let received = match self.socket.recv(buf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    event!("vrrp {}: receive failed: {e}", self.cfg.name);
                    break;
                }
            };
            let rx = match received {
                Ok(rx) => rx,
                Err(e) => {
                    self.log_drop(format_args!("unusable IP header ({e:?})"));
                    continue;
                }
            };
            let message = &buf[rx.message.clone()];
            let from_peer =
                self.cfg.unicast_peers.is_empty() || self.cfg.unicast_peers.contains(&rx.meta.src);
            // Adverts of another virtual router on the link, or from a host that is no
            // configured unicast peer, are not ours: skipped, and not counted as drops.
            let other_vrid = message.get(1).is_some_and(|&v| v != self.cfg.vrid);
            if !from_peer || other_vrid {
                continue;
            }
            // Left the cluster on purpose (stop_adverts): the master's adverts are expected.
            if self.vr.state() == State::Initialize {
                continue;
            }
            if let Err(reason) = self.vr.handle_packet(now, &rx.meta, message) {
                let src = rx.meta.src;
                self.log_drop(format_args!("dropped advert from {src}: {reason}"));
            }
            self.flush(io);
        }
    }

    /// Fate-sharing: applies the configured action while fewer than `track.min_workers`
    /// workers have turned their loop within `track.worker_stall`, lifts it when enough do.
    pub(super) fn on_worker_health(&mut self, now: vrrp::Instant, ages: &Ages, io: &mut Io) {
        let Some(track) = self.cfg.track else {
            return;
        };
        let limit = track.worker_stall.as_millis() as u64;
        let workers = ages.0.len();
        let min = track.min_workers(workers);
        let live = ages.live(limit);
        let stalled = live < min;
        if stalled == self.stalled {
            return;
        }
        self.stalled = stalled;
        let name = &self.cfg.name;
        let why = if stalled {
            let oldest = ages.oldest();
            let which: Vec<String> = ages.stalled(limit).map(|w| w.to_string()).collect();
            format!(
                "worker {} has not turned its loop for {}ms (limit {limit}ms; stalled: {}; \
                 {live} of {workers} live, {min} needed)",
                oldest.worker,
                oldest.age_ms,
                which.join(", "),
            )
        } else if live == workers {
            "every worker turns its loop again".to_string()
        } else {
            format!("{live} of {workers} workers turn their loop again ({min} needed)")
        };
        match track.action {
            TrackAction::Penalty(p) => {
                let verb = if stalled {
                    "lowering priority by"
                } else {
                    "restoring priority, was lowered by"
                };
                event!("vrrp {name}: {why}: {verb} {p}");
                self.vr.set_penalty(now, if stalled { p } else { 0 });
            }
            TrackAction::StopAdverts => {
                let verb = if stalled {
                    "leaving the cluster"
                } else {
                    "rejoining as backup"
                };
                event!("vrrp {name}: {why}: {verb}");
                self.track_cause = Some(why);
                self.update_membership(now);
            }
        }
        self.flush(io);
    }

    /// keepalived's tracking: `offset` added to the configured priority (an address owner
    /// keeps 255), and a FAULT (out of the cluster, VIPs released) while `fault` says why.
    pub(super) fn on_tracking(
        &mut self,
        now: vrrp::Instant,
        offset: i32,
        fault: Option<String>,
        io: &mut Io,
    ) {
        let base = i32::from(self.cfg.priority);
        if base != 255 {
            let target = (base + offset).clamp(1, 254) as u8;
            if target != self.vr.status().configured_priority {
                if let Err(e) = self.vr.set_priority(now, target) {
                    event!(warning: "vrrp {}: tracking: priority {target}: {e}", self.cfg.name);
                }
            }
        }
        if fault != self.fault {
            match &fault {
                Some(why) => {
                    event!(warning: "vrrp {}: fault: {why}", self.cfg.name);
                    self.track_cause = Some(format!("fault: {why}"));
                }
                None => {
                    event!(notice: "vrrp {}: fault cleared: rejoining as backup", self.cfg.name);
                    self.track_cause = Some("fault cleared".into());
                }
            }
            self.fault = fault;
            self.update_membership(now);
        }
        self.flush(io);
    }

    /// Leaves or rejoins the cluster as FAULT and stalls (with `stop_adverts`) say.
    fn update_membership(&mut self, now: vrrp::Instant) {
        let stop_stalled = self.stalled
            && self
                .cfg
                .track
                .is_some_and(|t| t.action == TrackAction::StopAdverts);
        let out = self.fault.is_some() || stop_stalled;
        if out && !self.out {
            self.vr.shutdown(now);
        } else if !out && self.out {
            self.vr.startup(now);
        }
        self.out = out;
    }

    /// The state keepalived would name: FAULT while tracking holds the instance out.
    pub(super) fn state_label(&self) -> &'static str {
        if self.fault.is_some() && self.vr.state() == State::Initialize {
            "FAULT"
        } else {
            state_name(self.vr.state())
        }
    }

    pub(super) fn report(&self) -> InstanceStatus {
        InstanceStatus {
            name: self.cfg.name.clone(),
            state: self.state_label(),
            fault: self.fault.clone(),
            vrid: self.cfg.vrid,
            status: self.vr.status(),
            counters: self.vr.counters().clone(),
            transitions: self.transitions,
        }
    }

    /// Sends what the instance queued, then applies its events in order.
    fn flush(&mut self, io: &mut Io) {
        let mut buf = [0u8; 1500];
        let src = self.iface.primary;
        while let Some(tx) = self.vr.poll_transmit() {
            let dsts: Vec<IpAddr> = if self.cfg.unicast_peers.is_empty() {
                vec![tx.multicast_dst()]
            } else {
                self.cfg.unicast_peers.clone()
            };
            for dst in dsts {
                // The v3 checksum covers the destination: emit once per destination.
                let sent = tx
                    .emit(&mut buf, src, dst)
                    .map_err(|e| e.to_string())
                    .and_then(|len| {
                        let sent = self.socket.send(&buf[..len], dst);
                        sent.map_err(|e| e.to_string())
                    });
                if let Err(e) = sent {
                    let what = format_args!("cannot send advert to {dst}: {e}");
                    self.send_error_log.log(&self.cfg.name, what);
                }
            }
        }
        while let Some(event) = self.vr.poll_event() {
            self.apply(event, io);
        }
    }

    fn apply(&mut self, event: Event, io: &mut Io) {
        let name = &self.cfg.name;
        match event {
            Event::BecameMaster { cause } => self.transition(State::Master, cause, io),
            Event::BecameBackup { cause } => self.transition(State::Backup, cause, io),
            Event::Stopped { cause } => self.transition(State::Initialize, cause, io),
            Event::AddVips(_) => {
                for vip in &self.cfg.vips {
                    if let Err(e) = io.netlink.add(self.iface.index, super::if_addr(vip)) {
                        event!(
                            "vrrp {name}: cannot add {}/{} to {}: {e}",
                            vip.addr,
                            vip.prefix_len,
                            self.cfg.interface
                        );
                    }
                }
            }
            // An address owner keeps its own addresses when it stops being master.
            Event::RemoveVips(_) if self.cfg.priority == 255 => {}
            Event::RemoveVips(_) => {
                for vip in &self.cfg.vips {
                    if let Err(e) = io.netlink.remove(self.iface.index, super::if_addr(vip)) {
                        event!(
                            "vrrp {name}: cannot remove {}/{} from {}: {e}",
                            vip.addr,
                            vip.prefix_len,
                            self.cfg.interface
                        );
                    }
                }
            }
            Event::SendGratuitousArp { reason } => {
                if reason == GarpReason::SplitBrainHeal {
                    let what = format_args!(
                        "heard a master of lower priority (split brain healing): \
                         advertising and announcing the VIPs again"
                    );
                    self.heal_log.log(&self.cfg.name, what);
                }
                for vip in &self.cfg.vips {
                    let mac = self.iface.mac;
                    let sent = match (&self.announce, vip.addr) {
                        (Announcer::Arp(s), IpAddr::V4(a)) => s.send(&arp::frame(mac, a)),
                        (Announcer::Na(s), IpAddr::V6(a)) => s.send(mac, a),
                        _ => Ok(()),
                    };
                    if let Err(e) = sent {
                        event!(
                            "vrrp {name}: announcing {} (gratuitous ARP / NA) failed: {e}",
                            vip.addr
                        );
                    }
                }
            }
            Event::PriorityChanged { from, to } => {
                event!(notice: "vrrp {name}: priority {from} -> {to}");
            }
        }
    }

    /// Logs `FROM -> TO (cause)` and runs the notify commands: `notify` with keepalived's
    /// arguments (`INSTANCE name state priority`), and the state's own (`notify_master`,
    /// `notify_backup`, `notify_fault`, `notify_stop`).
    fn transition(&mut self, to: State, cause: Cause, io: &mut Io) {
        let why = self.track_cause.take().unwrap_or_else(|| describe(cause));
        let label = match to {
            State::Initialize if self.fault.is_some() => "FAULT",
            _ => state_name(to),
        };
        let from =
            if self.fault.is_some() && self.state == State::Initialize && self.transitions > 0 {
                "FAULT"
            } else {
                state_name(self.state)
            };
        event!(notice: "vrrp {}: {from} -> {label} ({why})", self.cfg.name);
        self.state = to;
        self.transitions += 1;
        // keepalived's names: STOP when the process stops, FAULT when tracking holds it
        // out (a stall with stop_adverts too: the instance cannot serve).
        let notified = match to {
            State::Master => "MASTER",
            State::Backup => "BACKUP",
            State::Initialize if cause == Cause::Shutdown && !self.out => "STOP",
            State::Initialize => "FAULT",
        };
        let priority = self.vr.effective_priority().to_string();
        if let Some(cmd) = &self.cfg.notify {
            let cmd = cmd.display().to_string();
            io.notify.run(
                &cmd,
                &["INSTANCE", &self.cfg.name, notified, &priority],
                &self.cfg.name,
            );
        }
        let own = match notified {
            "MASTER" => &self.cfg.hooks.notify_master,
            "BACKUP" => &self.cfg.hooks.notify_backup,
            "FAULT" => &self.cfg.hooks.notify_fault,
            _ => &self.cfg.hooks.notify_stop,
        };
        if let Some(cmd) = own {
            io.notify.run(cmd, &[], &self.cfg.name);
        }
    }

    fn log_drop(&mut self, what: std::fmt::Arguments<'_>) {
        self.drop_log.log(&self.cfg.name, what);
    }
}

/// One kind of repeated log line (dropped adverts, send errors), written at most once per
/// [`DROP_LOG_EVERY`] with a count of the lines held back.
#[derive(Default)]
struct RateLimited {
    last: Option<StdInstant>,
    held_back: u64,
}

impl RateLimited {
    fn log(&mut self, instance: &str, what: std::fmt::Arguments<'_>) {
        if self.last.is_some_and(|at| at.elapsed() < DROP_LOG_EVERY) {
            self.held_back += 1;
            return;
        }
        let more = match self.held_back {
            0 => String::new(),
            n => format!(" (and {n} more since the last such line)"),
        };
        event!(warning: "vrrp {instance}: {what}{more}");
        self.last = Some(StdInstant::now());
        self.held_back = 0;
    }
}

/// Tells the link who has a VIP now: gratuitous ARP (IPv4) or unsolicited NA (IPv6).
enum Announcer {
    Arp(ArpSocket),
    Na(NaSocket),
}

/// keepalived's names for the states.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
    }
}

fn describe(cause: Cause) -> String {
    match cause {
        Cause::Startup => "startup".into(),
        Cause::Shutdown => "shutdown".into(),
        Cause::MasterDownTimerExpired => "master down timer expired".into(),
        Cause::PriorityZeroReceived { from } => format!("master {from} left with priority 0"),
        Cause::Preempted {
            master,
            master_priority,
        } => format!("preempted master {master} of lower priority {master_priority}"),
        Cause::HigherPriorityAdvert { from, priority } => {
            format!("advert of higher priority {priority} from {from}")
        }
        Cause::EqualPriorityHigherAddress { from } => {
            format!("advert of equal priority from higher address {from}")
        }
    }
}
