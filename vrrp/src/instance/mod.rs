//! The RFC 9568 §6 state machine of one virtual router, sans-IO in the quinn-proto style: the
//! caller feeds it `(now, input)` and drains what it wants sent ([`Instance::poll_transmit`]),
//! done ([`Instance::poll_event`]) and when to call back ([`Instance::poll_timeout`]).

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::config::{Config, ConfigError};
use crate::drops::DropReason;
use crate::time::{master_down_interval, skew_time, Instant, Interval};
use crate::wire::{AdvertRepr, Auth, Family, Packet, RxMeta, Version};

mod event;
mod garp;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

pub use event::{
    Cause, Counters, Event, GarpReason, MasterInfo, State, Status, Transmit, TransmitReason,
};
use garp::GarpSchedule;

/// One virtual router (one VRID of one family on one interface).
#[derive(Clone, Debug)]
pub struct Instance {
    config: Config,
    /// The advert this router sends, at its configured priority; each send sets the priority.
    advert: AdvertRepr,
    phase: Phase,
    penalty: u8,
    master_adver_interval: Interval,
    /// In Backup: the master whose advert was last accepted.
    master: Option<MasterInfo>,
    /// keepalived `preempt_delay`: until then a lower-priority master is still accepted.
    preempt_at: Option<Instant>,
    garp: GarpSchedule,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
}

/// The state with its own deadline, as smoltcp keeps them.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Initialize,
    Backup {
        master_down_at: Instant,
        /// Set by a priority-0 advert, which shortened the timer to `Skew_Time`.
        zero_from: Option<IpAddr>,
        /// Set by a lower-priority advert ignored for pre-emption.
        preempting: Option<MasterInfo>,
    },
    Master {
        advert_at: Instant,
    },
}

impl Instance {
    /// A stopped instance (Initialize); [`startup`](Instance::startup) starts it.
    pub fn new(config: Config) -> Result<Instance, ConfigError> {
        let advert = config.advert()?;
        Ok(Instance {
            master_adver_interval: config.advert_interval,
            config,
            advert,
            phase: Phase::Initialize,
            penalty: 0,
            master: None,
            preempt_at: None,
            garp: GarpSchedule::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    /// The Startup event (RFC 9568 §6.4.1): the address owner becomes Master at once, anyone
    /// else Backup with `Master_Down_Timer = Master_Down_Interval`. No-op unless stopped.
    pub fn startup(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Initialize) {
            return;
        }
        if self.effective_priority() == 255 {
            self.become_master(now, Cause::Startup);
            return;
        }
        self.master_adver_interval = self.config.advert_interval;
        self.master = None;
        self.preempt_at = (self.config.preempt && !self.config.preempt_delay.is_zero())
            .then(|| now + self.config.preempt_delay);
        self.enter_backup(now, Cause::Startup);
    }

    /// The Shutdown event: a master sends a priority-0 advert and releases its addresses; any
    /// state goes to Initialize. No-op when already stopped.
    pub fn shutdown(&mut self, _now: Instant) {
        match self.phase {
            Phase::Initialize => return,
            Phase::Master { .. } => {
                self.queue_advert(0, TransmitReason::Shutdown);
                self.events
                    .push_back(Event::RemoveVips(self.config.virtual_addrs.clone()));
            }
            Phase::Backup { .. } => {}
        }
        self.phase = Phase::Initialize;
        self.garp.clear();
        self.master = None;
        self.preempt_at = None;
        self.events.push_back(Event::Stopped {
            cause: Cause::Shutdown,
        });
    }

    /// Parses a received VRRP message (the IP payload) with the IP-layer facts and handles it.
    /// Every drop is counted in [`Counters::drops`] and returned for logging.
    ///
    /// When several instances share a socket, parse once with [`AdvertRepr::parse`], route by
    /// VRID and call [`handle_advert`](Instance::handle_advert) instead.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        rx: &RxMeta,
        message: &[u8],
    ) -> Result<(), DropReason> {
        let packet = Packet::new_unchecked(message, Family::of(rx.src));
        match AdvertRepr::parse(&packet, rx, self.config.checksum_mode) {
            Ok(advert) => self.handle_advert(now, rx.src, &advert),
            Err(reason) => {
                self.counters.drops.record(&reason);
                Err(reason)
            }
        }
    }

    /// Handles a parsed advert from `src` (the IP source, the sender's primary address) after
    /// the checks that need this router's configuration: VRID, version, family, owner, and for
    /// VRRPv2 auth, interval and address list (RFC 3768 §7.1).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        advert: &AdvertRepr,
    ) -> Result<(), DropReason> {
        if let Err(reason) = self.check_advert(src, advert) {
            self.counters.drops.record(&reason);
            return Err(reason);
        }
        self.counters.adverts_received += 1;
        if advert.priority() == 0 {
            self.counters.priority_zero_received += 1;
        }
        match self.phase {
            Phase::Initialize => {}
            Phase::Backup { .. } => self.backup_receive(now, src, advert),
            Phase::Master { .. } => self.master_receive(now, src, advert),
        }
        Ok(())
    }

    /// Fires every deadline at or before `now`: the master down timer, the advert timer, and
    /// gratuitous ARP rounds.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Backup {
                master_down_at,
                zero_from,
                preempting,
            } if master_down_at <= now => {
                let cause = match (zero_from, preempting) {
                    (Some(from), _) => Cause::PriorityZeroReceived { from },
                    (None, Some(m)) => Cause::Preempted {
                        master: m.addr,
                        master_priority: m.priority,
                    },
                    (None, None) => Cause::MasterDownTimerExpired,
                };
                self.become_master(now, cause);
            }
            Phase::Master { advert_at } if advert_at <= now => {
                self.advertise_now(now, TransmitReason::Periodic);
            }
            _ => {}
        }
        if matches!(self.phase, Phase::Master { .. }) {
            self.garp.poll(now, &self.config, &mut self.events);
        }
    }

    /// The next deadline, if any: call [`handle_timeout`](Instance::handle_timeout) then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Initialize => None,
            Phase::Backup { master_down_at, .. } => Some(master_down_at),
            Phase::Master { advert_at } => Some(advert_at),
        };
        [phase, self.garp.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next advert to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Changes the configured priority (1..=255). A master advertises the new one at once.
    pub fn set_priority(&mut self, now: Instant, priority: u8) -> Result<(), ConfigError> {
        if priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        let before = self.effective_priority();
        self.config.priority = priority;
        self.priority_changed(now, before);
        Ok(())
    }

    /// Sets the fate-sharing penalty (absolute, not cumulative: the watchdog recomputes it from
    /// worker health each time). A master advertises the new priority at once.
    pub fn set_penalty(&mut self, now: Instant, penalty: u8) {
        let before = self.effective_priority();
        self.penalty = penalty;
        self.priority_changed(now, before);
    }

    /// Configured priority less the penalty, clamped to 1..=254; 255 only for an address owner
    /// with no penalty.
    pub fn effective_priority(&self) -> u8 {
        if self.config.priority == 255 && self.penalty == 0 {
            255
        } else {
            self.config
                .priority
                .saturating_sub(self.penalty)
                .clamp(1, 254)
        }
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Initialize => State::Initialize,
            Phase::Backup { .. } => State::Backup,
            Phase::Master { .. } => State::Master,
        }
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state(),
            effective_priority: self.effective_priority(),
            configured_priority: self.config.priority,
            penalty: self.penalty,
            master: self.master,
            master_adver_interval: self.master_adver_interval,
            accept_mode: self.config.accept_mode,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn check_advert(&mut self, src: IpAddr, advert: &AdvertRepr) -> Result<(), DropReason> {
        let cfg = &self.config;
        let family = cfg.virtual_addrs.family();
        if matches!(self.phase, Phase::Initialize) {
            return Err(DropReason::NotRunning);
        }
        if Family::of(src) != advert.family() {
            return Err(DropReason::MixedFamilies);
        }
        if advert.family() != family {
            return Err(DropReason::WrongFamily {
                expected: family,
                got: advert.family(),
            });
        }
        if advert.version() != cfg.version {
            return Err(DropReason::VersionMismatch {
                expected: cfg.version,
                got: advert.version(),
            });
        }
        if advert.vrid() != cfg.vrid {
            return Err(DropReason::VridMismatch {
                expected: cfg.vrid,
                got: advert.vrid(),
            });
        }
        if src == cfg.primary_addr {
            return Err(DropReason::OwnAdvert);
        }
        // RFC 9568 §7.1: the address owner discards adverts. It is Master for good.
        if self.effective_priority() == 255 {
            return Err(DropReason::LocalOwner);
        }
        if cfg.version == Version::V2 {
            let (want, got) = (cfg.auth, advert.auth());
            if want.auth_type() != got.auth_type() {
                return Err(DropReason::AuthTypeMismatch {
                    expected: want.auth_type(),
                    got: got.auth_type(),
                });
            }
            if matches!(want, Auth::Password(_)) && want.data() != got.data() {
                return Err(DropReason::AuthMismatch);
            }
            if advert.interval() != cfg.advert_interval {
                return Err(DropReason::IntervalMismatch {
                    expected: cfg.advert_interval,
                    got: advert.interval(),
                });
            }
        }
        if !advert.addrs().same_set(&cfg.virtual_addrs) {
            // A MAY-check in v3 (log only); in v2 a MUST-drop unless the owner sent it.
            if cfg.version == Version::V2 && advert.priority() != 255 {
                return Err(DropReason::AddressListMismatch);
            }
            self.counters.address_list_mismatch += 1;
        }
        Ok(())
    }

    /// RFC 9568 §6.4.2, plus keepalived's `preempt_delay`.
    fn backup_receive(&mut self, now: Instant, src: IpAddr, advert: &AdvertRepr) {
        let local = self.effective_priority();
        let theirs = advert.priority();
        if theirs == 0 {
            let at = now + skew_time(local, self.master_adver_interval);
            if let Phase::Backup {
                master_down_at,
                zero_from,
                ..
            } = &mut self.phase
            {
                *master_down_at = at;
                *zero_from = Some(src);
            }
            return;
        }
        let lower = theirs < local;
        let delay = self.config.preempt_delay;
        let delay_holds = !delay.is_zero() && self.preempt_at.map_or(true, |at| now < at);
        if self.config.preempt && lower && !delay_holds {
            self.counters.preempt_discards += 1;
            let master = MasterInfo {
                addr: src,
                priority: theirs,
            };
            if delay.is_zero() {
                // RFC 9568 lets the Master_Down_Timer run out first (3 intervals and a
                // skew); the outcome is already known, so take over now. This is what
                // makes a master that lowers its priority (fate-sharing penalty) hand
                // over at once.
                return self.become_master(
                    now,
                    Cause::Preempted {
                        master: master.addr,
                        master_priority: master.priority,
                    },
                );
            }
            if let Phase::Backup { preempting, .. } = &mut self.phase {
                *preempting = Some(master);
            }
            return;
        }
        if self.config.preempt && !delay.is_zero() {
            if !lower {
                self.preempt_at = None;
            } else if self.preempt_at.is_none() {
                self.preempt_at = Some(now + delay);
            }
        }
        self.accept_master(src, advert);
        let at = now + master_down_interval(local, self.master_adver_interval);
        self.phase = Phase::Backup {
            master_down_at: at,
            zero_from: None,
            preempting: None,
        };
    }

    /// RFC 9568 §6.4.3, plus the split-brain heal for a lower-priority master.
    fn master_receive(&mut self, now: Instant, src: IpAddr, advert: &AdvertRepr) {
        let local = self.effective_priority();
        let theirs = advert.priority();
        if theirs == 0 {
            self.advertise_now(now, TransmitReason::PriorityZeroReply);
            return;
        }
        // Same family, checked: IpAddr orders by octets, the RFC's unsigned network-order compare.
        if theirs > local || (theirs == local && src > self.config.primary_addr) {
            let cause = if theirs > local {
                Cause::HigherPriorityAdvert {
                    from: src,
                    priority: theirs,
                }
            } else {
                Cause::EqualPriorityHigherAddress { from: src }
            };
            // Told before yielding: the winner may never have heard us (after a split
            // brain, our advert may have been the one lost), and hearing a lower master
            // is what makes it announce the addresses again.
            self.queue_advert(local, TransmitReason::Yielding);
            self.accept_master(src, advert);
            self.garp.clear();
            self.events
                .push_back(Event::RemoveVips(self.config.virtual_addrs.clone()));
            self.enter_backup(now, cause);
            return;
        }
        // Another master of lower rank: it will yield on hearing us, so tell it now rather than
        // at the next interval, and re-announce the addresses it may have taken.
        self.advertise_now(now, TransmitReason::SplitBrainHeal);
        if self.garp.heal(now, &self.config, &mut self.events) {
            self.counters.split_brain_heals += 1;
        }
    }

    /// Records the master of an accepted advert; VRRPv3 learns its interval.
    fn accept_master(&mut self, src: IpAddr, advert: &AdvertRepr) {
        if self.config.version == Version::V3 {
            self.master_adver_interval = advert.interval();
        }
        self.master = Some(MasterInfo {
            addr: src,
            priority: advert.priority(),
        });
    }

    fn enter_backup(&mut self, now: Instant, cause: Cause) {
        let mdi = master_down_interval(self.effective_priority(), self.master_adver_interval);
        self.phase = Phase::Backup {
            master_down_at: now + mdi,
            zero_from: None,
            preempting: None,
        };
        self.counters.became_backup += 1;
        self.events.push_back(Event::BecameBackup { cause });
    }

    fn become_master(&mut self, now: Instant, cause: Cause) {
        self.phase = Phase::Master { advert_at: now };
        self.master = None;
        self.preempt_at = None;
        self.counters.became_master += 1;
        self.events.push_back(Event::BecameMaster { cause });
        self.events
            .push_back(Event::AddVips(self.config.virtual_addrs.clone()));
        self.advertise_now(now, TransmitReason::BecameMaster);
        self.garp.became_master(now, &self.config, &mut self.events);
    }

    /// Sends an advert now and restarts the `Adver_Timer` (Master only).
    fn advertise_now(&mut self, now: Instant, reason: TransmitReason) {
        if let Phase::Master { advert_at } = &mut self.phase {
            *advert_at = now + self.config.advert_interval.as_duration();
            self.queue_advert(self.effective_priority(), reason);
        }
    }

    fn queue_advert(&mut self, priority: u8, reason: TransmitReason) {
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        self.transmits.push_back(Transmit {
            advert: self.advert.with_priority(priority),
            checksum_mode: self.config.checksum_mode,
            reason,
        });
    }

    fn priority_changed(&mut self, now: Instant, before: u8) {
        let after = self.effective_priority();
        if after != before {
            self.events.push_back(Event::PriorityChanged {
                from: before,
                to: after,
            });
            self.advertise_now(now, TransmitReason::PriorityChanged);
        }
    }
}
