//! VRRP on the wire: VRRPv3 for IPv4 and IPv6 (RFC 9568) and VRRPv2 for IPv4 (RFC 3768), as
//! parse/emit over byte slices in the smoltcp shape: a [`Packet`] view over the VRRP message
//! (the IP payload) and an [`AdvertRepr`] that holds only valid adverts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::drops::DropReason;

mod addrs;
mod auth;
mod checksum;
mod packet;
mod repr;

#[cfg(test)]
mod captured;
#[cfg(test)]
mod malformed;
#[cfg(test)]
pub(crate) mod vectors;

pub use addrs::VirtualAddrs;
pub use auth::Auth;
pub use checksum::vrrp_checksum;
pub use packet::{field, Packet, TYPE_ADVERTISEMENT};
pub use repr::{AdvertRepr, EmitError, ReprError};

/// IP protocol number of VRRP (both versions).
pub const PROTOCOL: u8 = 112;
/// TTL / hop limit every VRRP packet is sent with and must arrive with (RFC 9568 §5.1.1.3).
pub const TTL: u8 = 255;
/// IPv4 multicast group of VRRP, 224.0.0.18.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP, ff02::12.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768, IPv4 only, interval in whole seconds, 8 bytes of authentication data.
    V2,
    /// RFC 9568, IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    /// The value of the version nibble.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// Address family of a virtual router (RFC 9568 treats the families as separate routers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of `addr`.
    pub const fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// Bytes per address in the advert's address list.
    pub const fn addr_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// The VRRP multicast group of this family.
    pub const fn multicast_group(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(MULTICAST_V4),
            Family::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }

    /// The virtual router MAC address `00-00-5e-00-01-{vrid}` (IPv4) or `00-00-5e-00-02-{vrid}`
    /// (IPv6), RFC 9568 §7.3.
    pub const fn virtual_mac(self, vrid: u8) -> [u8; 6] {
        let kind = match self {
            Family::Ipv4 => 0x01,
            Family::Ipv6 => 0x02,
        };
        [0x00, 0x00, 0x5e, 0x00, kind, vrid]
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// Which checksum a VRRPv3-over-IPv4 advert carries. VRRPv2 always sums the message only and
/// VRRPv3-over-IPv6 always includes the pseudo-header; this setting changes neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumMode {
    /// RFC 9568 §5.2.8: the IPv4 pseudo-header (src, dst, protocol 112, length) plus the message.
    #[default]
    Rfc,
    /// Older keepalived (`vrrp_checksum_compat`): v3-over-IPv4 summed like v2, over the message
    /// only. Emits that form and accepts either form on receipt.
    V2Compat,
}

/// The IP-layer facts of a received VRRP packet, which the VRRP message does not carry but its
/// validation needs (RFC 9568 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RxMeta {
    /// IPv4 TTL or IPv6 hop limit as received.
    pub ttl: u8,
    /// IP source address (the sender's primary address).
    pub src: IpAddr,
    /// IP destination address (the multicast group, or this router for unicast peers).
    pub dst: IpAddr,
}

impl RxMeta {
    /// Checks what the IP layer alone decides: TTL/hop limit is 255 and both addresses are of
    /// one family, which is returned.
    pub fn check(&self) -> Result<Family, DropReason> {
        if self.ttl != TTL {
            return Err(DropReason::BadTtl(self.ttl));
        }
        let family = Family::of(self.src);
        if family != Family::of(self.dst) {
            return Err(DropReason::MixedFamilies);
        }
        Ok(family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_meta_checks_ttl_first_then_families() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let ok = RxMeta {
            ttl: 255,
            src: v4,
            dst: Family::Ipv4.multicast_group(),
        };
        assert_eq!(ok.check(), Ok(Family::Ipv4));
        assert_eq!(
            RxMeta { ttl: 254, ..ok }.check(),
            Err(DropReason::BadTtl(254))
        );
        assert_eq!(
            RxMeta {
                ttl: 1,
                dst: v6,
                ..ok
            }
            .check(),
            Err(DropReason::BadTtl(1))
        );
        assert_eq!(
            RxMeta { dst: v6, ..ok }.check(),
            Err(DropReason::MixedFamilies)
        );
    }

    #[test]
    fn virtual_macs() {
        assert_eq!(Family::Ipv4.virtual_mac(51), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(Family::Ipv6.virtual_mac(1), [0, 0, 0x5e, 0, 2, 1]);
        assert_eq!(Family::Ipv6.multicast_group().to_string(), "ff02::12");
    }
}
