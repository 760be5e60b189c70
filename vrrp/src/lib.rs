//! Sans-IO VRRP: VRRPv3 for IPv4 and IPv6 (RFC 9568) and VRRPv2 for IPv4 (RFC 3768, keepalived's
//! default), as a wire format and a state machine with no socket, no clock and no thread.
//!
//! # The split
//!
//! Like smoltcp's wire modules and quinn-proto, this crate is the deterministic half of VRRP.
//! ringlb's VRRP thread is the other half and owns everything that touches the system:
//!
//! | this crate | the I/O side (ringlb) |
//! |---|---|
//! | parse and validate adverts ([`wire`]), every rejection a [`DropReason`] | raw IP socket, protocol 112, multicast group joins or unicast peers |
//! | emit adverts with the right checksum ([`Transmit::emit`]) | send with TTL/hop limit 255 from the primary address |
//! | RFC 9568 §6 states and timers ([`Instance`]) | the clock: map it onto [`Instant`] and sleep until [`Instance::poll_timeout`] |
//! | say when to add/remove the VIPs and announce them ([`Event`]) | netlink for the VIPs, AF_PACKET for gratuitous ARP / unsolicited NA |
//! | fate-sharing priority ([`Instance::set_penalty`]) | the worker heartbeat watchdog that computes the penalty |
//!
//! Because the core never reads a clock, every timing rule (`Skew_Time`, `Master_Down_Interval`,
//! pre-emption, the gratuitous ARP schedule) is tested exactly, in virtual centiseconds.
//!
//! # Driving an instance
//!
//! ```
//! use vrrp::{Config, Event, Instance, Instant, RxMeta, State, VirtualAddrs};
//!
//! let me = "192.0.2.1".parse()?;
//! let vips = VirtualAddrs::V4(vec!["192.0.2.100".parse()?]);
//! let mut vr = Instance::new(Config::new(51, me, vips))?;
//!
//! // The I/O side's clock, mapped onto the crate's Instant (time since an origin it picks).
//! let mut now = Instant::ZERO;
//! vr.startup(now);
//!
//! // Event loop: wait for a packet or for poll_timeout, whichever comes first.
//! // A received packet goes in as the IP payload plus the IP header's facts:
//! let rx = RxMeta { ttl: 64, src: "192.0.2.2".parse()?, dst: "224.0.0.18".parse()? };
//! assert!(vr.handle_packet(now, &rx, &[0x31, 51, 0, 1]).is_err()); // counted, ignored
//!
//! // No master heard: priority 100 at 1 s becomes master after 3 * 100 + 60 = 360 cs.
//! now = vr.poll_timeout().unwrap();
//! assert_eq!(now, Instant::from_centis(360));
//! vr.handle_timeout(now);
//! assert_eq!(vr.state(), State::Master);
//!
//! while let Some(event) = vr.poll_event() {
//!     match event {
//!         Event::AddVips(addrs) => { /* netlink: add `addrs` */ }
//!         Event::SendGratuitousArp { .. } => { /* one gratuitous ARP / NA per VIP */ }
//!         other => { /* log transitions and their causes */ }
//!     }
//! }
//! while let Some(tx) = vr.poll_transmit() {
//!     let mut buf = [0u8; 1500];
//!     let len = tx.emit(&mut buf, me, tx.multicast_dst())?;
//!     // send &buf[..len] on the raw socket, protocol 112, TTL 255
//!     assert_eq!(len, 12);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the I/O side must get right
//!
//! - Pass exactly the VRRP message: the IP payload cut at the IP header's length.
//! - Pass the real TTL / hop limit (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`): off-link packets are
//!   rejected on it ([`DropReason::BadTtl`]).
//! - With unicast peers, emit once per peer: the v3 checksum covers the destination address.
//! - With several VRIDs on one socket, parse once with [`AdvertRepr::parse`], route by
//!   [`AdvertRepr::vrid`] and call [`Instance::handle_advert`].
//! - Apply events in order: `AddVips` comes before the first `SendGratuitousArp`, `RemoveVips`
//!   before `BecameBackup` / `Stopped`.
//!
//! # Choices beyond the RFCs
//!
//! - keepalived's `preempt_delay` and gratuitous ARP knobs, under keepalived's names
//!   (`garp_master_delay` is the second burst after becoming master).
//! - A master that hears a lower-priority master (a healed split brain) re-advertises at once and
//!   starts a gratuitous ARP burst, instead of waiting for its next interval.
//! - A master whose effective priority changes advertises it at once.
//! - The address owner (effective priority 255) discards adverts, as RFC 9568 §7.1 says.
//! - Adverts from our own primary address (multicast loopback) are dropped.
//!
//! # Modules
//!
//! - [`wire`]: [`Packet`] view, [`AdvertRepr`], checksums, [`RxMeta`].
//! - [`instance`]: [`Instance`] and what it hands back ([`Transmit`], [`Event`], [`Cause`]).
//! - [`config`]: [`Config`] with RFC and keepalived defaults.
//! - [`time`]: [`Instant`], [`Interval`], `Skew_Time` and `Master_Down_Interval`.
//! - [`drops`]: [`DropReason`] and per-kind [`DropCounts`].
#![forbid(unsafe_code)]

pub mod config;
pub mod drops;
pub mod instance;
pub mod time;
pub mod wire;

pub use config::{Config, ConfigError};
pub use drops::{DropCounts, DropKind, DropReason};
pub use instance::{
    Cause, Counters, Event, GarpReason, Instance, MasterInfo, State, Status, Transmit,
    TransmitReason,
};
pub use time::{Instant, Interval};
pub use wire::{AdvertRepr, Auth, ChecksumMode, Family, Packet, RxMeta, Version, VirtualAddrs};
