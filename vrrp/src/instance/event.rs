//! What an [`Instance`](super::Instance) hands back to the I/O side: adverts to send
//! ([`Transmit`]), things to do or log ([`Event`], each transition with its [`Cause`]), and its
//! state and counters for the stats page.

use std::net::IpAddr;

use crate::drops::DropCounts;
use crate::time::Interval;
use crate::wire::{AdvertRepr, ChecksumMode, EmitError, Family, Packet, Version, VirtualAddrs};

/// RFC 9568 §6.4 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running: before [`startup`](super::Instance::startup), after `shutdown`.
    Initialize,
    Backup,
    Master,
}

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Startup: to Backup, or to Master for the address owner (priority 255).
    Startup,
    /// Shutdown: to Initialize (a master sent a priority-0 advert first).
    Shutdown,
    /// No advert from a master within `Master_Down_Interval`.
    MasterDownTimerExpired,
    /// The master announced it is leaving (priority 0) and `Skew_Time` passed.
    PriorityZeroReceived { from: IpAddr },
    /// This backup ignored a lower-priority master (preempt on) until the master down timer
    /// expired.
    Preempted { master: IpAddr, master_priority: u8 },
    /// A master heard a higher-priority advert.
    HigherPriorityAdvert { from: IpAddr, priority: u8 },
    /// A master heard an advert of its own priority from a higher address.
    EqualPriorityHigherAddress { from: IpAddr },
}

/// Why a round of gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6) is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GarpReason {
    /// The burst on becoming master (`garp_master_repeat` rounds, `garp_interval` apart).
    BecameMaster,
    /// The second burst, `garp_master_delay` after becoming master.
    Delayed,
    /// The periodic burst every `garp_master_refresh` while master.
    Refresh,
    /// A master heard a lower-priority master: switches may have learnt the VIPs' MAC on the
    /// other box, so announce again (ringlb's split-brain heal).
    SplitBrainHeal,
}

/// Something for the I/O side to do or record, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    BecameMaster {
        cause: Cause,
    },
    BecameBackup {
        cause: Cause,
    },
    /// Back to Initialize.
    Stopped {
        cause: Cause,
    },
    /// Configure the virtual addresses (emitted right after `BecameMaster`, before any ARP).
    AddVips(VirtualAddrs),
    /// Remove the virtual addresses (emitted on leaving Master, before the new state).
    RemoveVips(VirtualAddrs),
    /// Send one gratuitous ARP (IPv4) or unsolicited NA (IPv6) for each virtual address.
    SendGratuitousArp {
        reason: GarpReason,
    },
    /// The effective priority changed (configured priority or fate-sharing penalty).
    PriorityChanged {
        from: u8,
        to: u8,
    },
}

/// Why an advert is being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransmitReason {
    /// The `Adver_Timer` fired.
    Periodic,
    BecameMaster,
    /// A master answers a priority-0 advert at once (RFC 9568 §6.4.3).
    PriorityZeroReply,
    /// A master answers a lower-priority master at once.
    SplitBrainHeal,
    /// A master's effective priority changed; backups learn it now.
    PriorityChanged,
    /// A master yielding to a higher one sends one last advert, so that the winner hears
    /// it had a rival and announces the addresses again (split-brain heal), whichever of
    /// their adverts crossed a healed link first.
    Yielding,
    /// A leaving master's priority-0 advert.
    Shutdown,
}

/// An advert to send: to the family's multicast group, or to each unicast peer (the I/O
/// side's choice; the v3 checksum differs per destination, so emit once per destination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub advert: AdvertRepr,
    pub checksum_mode: ChecksumMode,
    pub reason: TransmitReason,
}

impl Transmit {
    pub fn version(&self) -> Version {
        self.advert.version()
    }

    pub fn family(&self) -> Family {
        self.advert.family()
    }

    pub fn priority(&self) -> u8 {
        self.advert.priority()
    }

    pub fn interval(&self) -> Interval {
        self.advert.interval()
    }

    /// The multicast group to send to (224.0.0.18 or ff02::12) with TTL/hop limit 255.
    pub fn multicast_dst(&self) -> IpAddr {
        self.family().multicast_group()
    }

    /// Writes the VRRP message (the IP payload, protocol 112) for `src` -> `dst` at the front
    /// of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize, EmitError> {
        let mut packet = Packet::new_unchecked(buf, self.family());
        self.advert.emit(&mut packet, src, dst, self.checksum_mode)
    }
}

/// The master as a backup last heard it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MasterInfo {
    pub addr: IpAddr,
    pub priority: u8,
}

/// A snapshot for the stats page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Configured priority less the penalty (see [`Instance::effective_priority`]).
    ///
    /// [`Instance::effective_priority`]: super::Instance::effective_priority
    pub effective_priority: u8,
    pub configured_priority: u8,
    pub penalty: u8,
    /// In Backup: the master whose advert was last accepted.
    pub master: Option<MasterInfo>,
    /// `Master_Adver_Interval` (learnt from the master's adverts in VRRPv3).
    pub master_adver_interval: Interval,
    pub accept_mode: bool,
}

/// Monotonic counters of one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts that passed every check and were acted on.
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    pub became_master: u64,
    pub became_backup: u64,
    /// Lower-priority adverts a pre-empting backup ignored (RFC 9568 §6.4.2).
    pub preempt_discards: u64,
    /// Lower-priority adverts a master answered at once.
    pub split_brain_heals: u64,
    /// Adverts whose address list differs from ours (logged, not dropped, in VRRPv3).
    pub address_list_mismatch: u64,
    /// Dropped packets by reason.
    pub drops: DropCounts,
}
