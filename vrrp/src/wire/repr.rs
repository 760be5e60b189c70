//! A validated VRRP advertisement ([`AdvertRepr`]): parsed from a [`Packet`] with the RFC 9568
//! §7.1 checks the VRRP layer can make, and emitted back with the right checksum.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{field, TYPE_ADVERTISEMENT};
use super::{Auth, ChecksumMode, Family, Packet, RxMeta, Version, VirtualAddrs};
use crate::drops::DropReason;
use crate::time::Interval;

/// An [`AdvertRepr`] that cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReprError {
    #[error("VRRPv2 carries IPv4 addresses only")]
    V2OverIpv6,
    #[error("an advert carries at least one address")]
    NoAddresses,
    #[error("{0} addresses do not fit the 8-bit count")]
    TooManyAddresses(usize),
    #[error("{version} cannot carry an interval of {interval}")]
    IntervalOutOfRange {
        version: Version,
        interval: Interval,
    },
    #[error("VRRPv3 has no authentication")]
    AuthOnV3,
}

/// An advert could not be emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("buffer of {have} bytes, the advert needs {need}")]
    BufferTooSmall { need: usize, have: usize },
    #[error("the packet view or the IP addresses are not of the advert's family")]
    FamilyMismatch,
}

/// A well-formed advertisement: version, family, interval range and address count are
/// consistent, so [`emit`](AdvertRepr::emit) fails only on a short buffer or wrong addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdvertRepr {
    version: Version,
    vrid: u8,
    priority: u8,
    interval: Interval,
    auth: Auth,
    addrs: VirtualAddrs,
}

impl AdvertRepr {
    /// An advert from its parts. The VRID is not checked (0 is invalid for a router but legal
    /// to hold, as received).
    pub fn new(
        version: Version,
        vrid: u8,
        priority: u8,
        interval: Interval,
        auth: Auth,
        addrs: VirtualAddrs,
    ) -> Result<AdvertRepr, ReprError> {
        if addrs.is_empty() {
            return Err(ReprError::NoAddresses);
        }
        if addrs.len() > usize::from(u8::MAX) {
            return Err(ReprError::TooManyAddresses(addrs.len()));
        }
        let interval_fits = match version {
            Version::V2 => interval.whole_secs().is_some(),
            Version::V3 => interval.centis() <= 0x0fff,
        };
        if !interval_fits {
            return Err(ReprError::IntervalOutOfRange { version, interval });
        }
        match (version, addrs.family(), auth) {
            (Version::V2, Family::Ipv6, _) => return Err(ReprError::V2OverIpv6),
            (Version::V3, _, Auth::Password(_) | Auth::Other { .. }) => {
                return Err(ReprError::AuthOnV3)
            }
            _ => {}
        }
        Ok(AdvertRepr {
            version,
            vrid,
            priority,
            interval,
            auth,
            addrs,
        })
    }

    /// Parses and validates a received message (RFC 9568 §7.1, RFC 3768 §7.1), in this order:
    /// TTL/hop limit 255, one address family, complete message (version, count and length),
    /// checksum, type, non-zero interval. Checks that need the receiving router's
    /// configuration (VRID, auth, owner) are the [`Instance`](crate::Instance)'s.
    ///
    /// Under `cfg(fuzzing)` the checksum is not checked, so fuzzers reach the later checks.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        rx: &RxMeta,
        mode: ChecksumMode,
    ) -> Result<AdvertRepr, DropReason> {
        if rx.check()? != packet.family() {
            return Err(DropReason::MixedFamilies);
        }
        packet.check_len()?;
        if !cfg!(fuzzing) && !packet.verify_checksum(rx.src, rx.dst, mode) {
            return Err(DropReason::BadChecksum);
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(DropReason::BadType(packet.msg_type()));
        }
        let (version, interval, auth) = match packet.version() {
            2 => (
                Version::V2,
                Interval::from_secs(packet.adver_int_secs()),
                Auth::from_wire(packet.auth_type(), packet.auth_data()),
            ),
            3 => (
                Version::V3,
                Interval::from_centis(packet.max_adver_int()),
                Auth::None,
            ),
            v => return Err(DropReason::BadVersion(v)),
        };
        let interval = interval.ok_or(DropReason::ZeroInterval)?;
        let bytes = packet.addr_bytes();
        let addrs = match packet.family() {
            Family::Ipv4 => VirtualAddrs::V4(
                bytes
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect(),
            ),
            Family::Ipv6 => VirtualAddrs::V6(
                bytes
                    .chunks_exact(16)
                    .map(|c| {
                        let mut a = [0; 16];
                        a.copy_from_slice(c);
                        Ipv6Addr::from(a)
                    })
                    .collect(),
            ),
        };
        Ok(AdvertRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval,
            auth,
            addrs,
        })
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        let trailer = match self.version {
            Version::V2 => field::AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        field::HEADER_LEN + self.addrs.len() * self.addrs.family().addr_len() + trailer
    }

    /// Writes the advert into the first [`buffer_len`](AdvertRepr::buffer_len) bytes of
    /// `packet`, with the checksum for a message sent from `src` to `dst`, and returns that
    /// length. Hand it a view of exactly that length to parse it back.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<usize, EmitError> {
        let family = self.family();
        if packet.family() != family || Family::of(src) != family || Family::of(dst) != family {
            return Err(EmitError::FamilyMismatch);
        }
        let need = self.buffer_len();
        let have = packet.as_ref().len();
        if have < need {
            return Err(EmitError::BufferTooSmall { need, have });
        }
        // A view of exactly `need` bytes, so the checksum covers the message only.
        let mut out = Packet::new_unchecked(&mut packet.as_mut()[..need], family);
        out.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        out.set_vrid(self.vrid);
        out.set_priority(self.priority);
        // `new` capped the count at 255.
        out.set_addr_count(self.addrs.len() as u8);
        match self.version {
            Version::V2 => {
                out.set_auth_type(self.auth.auth_type());
                // `new` checked that a v2 interval is whole seconds; 0 is never written.
                out.set_adver_int_secs(self.interval.whole_secs().unwrap_or(0));
            }
            Version::V3 => out.set_max_adver_int(self.interval.centis()),
        }
        let addr_len = family.addr_len();
        let slots = out.addr_bytes_mut().chunks_exact_mut(addr_len);
        for (slot, addr) in slots.zip(self.addrs.iter()) {
            match addr {
                IpAddr::V4(a) => slot.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => slot.copy_from_slice(&a.octets()),
            }
        }
        let auth = out.auth_data_mut();
        let auth_len = auth.len();
        auth.copy_from_slice(&self.auth.data()[..auth_len]);
        out.fill_checksum(src, dst, mode);
        Ok(need)
    }

    /// The same advert with another priority (0 to announce a shutdown).
    pub fn with_priority(&self, priority: u8) -> AdvertRepr {
        AdvertRepr {
            priority,
            ..self.clone()
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn family(&self) -> Family {
        self.addrs.family()
    }

    pub fn vrid(&self) -> u8 {
        self.vrid
    }

    /// 0 = the master is leaving, 255 = sent by the address owner.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The advertisement interval (`Max Adver Int` for v3, `Adver Int` for v2), in centiseconds.
    pub fn interval(&self) -> Interval {
        self.interval
    }

    pub fn auth(&self) -> Auth {
        self.auth
    }

    pub fn addrs(&self) -> &VirtualAddrs {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vectors::*;

    fn parse(bytes: &[u8], rx: &RxMeta, mode: ChecksumMode) -> Result<AdvertRepr, DropReason> {
        AdvertRepr::parse(&Packet::new_unchecked(bytes, Family::of(rx.src)), rx, mode)
    }

    fn emit(repr: &AdvertRepr, src: &str, dst: &str, mode: ChecksumMode) -> Vec<u8> {
        let mut buf = vec![0xee; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut buf[..], repr.family());
        assert_eq!(
            repr.emit(&mut packet, ip(src), ip(dst), mode),
            Ok(buf.len())
        );
        buf
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v2_repr() -> AdvertRepr {
        AdvertRepr::new(
            Version::V2,
            51,
            100,
            Interval::from_secs(1).unwrap(),
            Auth::password(b"secret").unwrap(),
            VirtualAddrs::V4(vec![v4("192.0.2.100")]),
        )
        .unwrap()
    }

    fn v3_ipv4_repr() -> AdvertRepr {
        let addrs = VirtualAddrs::V4(vec![v4("192.0.2.100"), v4("192.0.2.101")]);
        let interval = Interval::from_centis(100).unwrap();
        AdvertRepr::new(Version::V3, 51, 100, interval, Auth::None, addrs).unwrap()
    }

    fn v3_ipv6_repr() -> AdvertRepr {
        let addrs = VirtualAddrs::V6(vec![
            "fe80::1".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ]);
        let interval = Interval::from_centis(10).unwrap();
        AdvertRepr::new(Version::V3, 1, 200, interval, Auth::None, addrs).unwrap()
    }

    #[test]
    fn v2_ipv4_round_trip() {
        let rx = rx_meta(V2_IPV4_SRC, "224.0.0.18");
        assert_eq!(parse(&V2_IPV4, &rx, ChecksumMode::Rfc), Ok(v2_repr()));
        assert_eq!(
            emit(&v2_repr(), V2_IPV4_SRC, "224.0.0.18", ChecksumMode::Rfc),
            V2_IPV4
        );
        // The v2 checksum does not depend on the IP addresses.
        assert_eq!(
            parse(
                &V2_IPV4,
                &rx_meta("192.0.2.9", "192.0.2.7"),
                ChecksumMode::Rfc
            ),
            Ok(v2_repr())
        );
        assert_eq!(v2_repr().auth().data(), *b"secret\0\0");
    }

    #[test]
    fn v3_ipv4_round_trip() {
        let rx = rx_meta(V3_IPV4_SRC, V3_IPV4_DST);
        assert_eq!(parse(&V3_IPV4, &rx, ChecksumMode::Rfc), Ok(v3_ipv4_repr()));
        assert_eq!(
            emit(&v3_ipv4_repr(), V3_IPV4_SRC, V3_IPV4_DST, ChecksumMode::Rfc),
            V3_IPV4
        );
    }

    #[test]
    fn v3_ipv6_round_trip() {
        let rx = rx_meta(V3_IPV6_SRC, V3_IPV6_DST);
        assert_eq!(parse(&V3_IPV6, &rx, ChecksumMode::Rfc), Ok(v3_ipv6_repr()));
        assert_eq!(
            emit(&v3_ipv6_repr(), V3_IPV6_SRC, V3_IPV6_DST, ChecksumMode::Rfc),
            V3_IPV6
        );
        assert_eq!(v3_ipv6_repr().interval().as_duration().as_millis(), 100);
    }

    #[test]
    fn v3_ipv4_compat_checksum() {
        let rx = rx_meta(V3_IPV4_SRC, V3_IPV4_DST);
        // RFC mode wants the pseudo-header; compat mode takes either form.
        assert_eq!(
            parse(&V3_IPV4_COMPAT, &rx, ChecksumMode::Rfc),
            Err(DropReason::BadChecksum)
        );
        assert_eq!(
            parse(&V3_IPV4_COMPAT, &rx, ChecksumMode::V2Compat),
            Ok(v3_ipv4_repr())
        );
        assert_eq!(
            parse(&V3_IPV4, &rx, ChecksumMode::V2Compat),
            Ok(v3_ipv4_repr())
        );
        let out = emit(
            &v3_ipv4_repr(),
            V3_IPV4_SRC,
            V3_IPV4_DST,
            ChecksumMode::V2Compat,
        );
        assert_eq!(out, V3_IPV4_COMPAT);
    }

    #[test]
    fn compat_mode_changes_nothing_for_ipv6() {
        let out = emit(
            &v3_ipv6_repr(),
            V3_IPV6_SRC,
            V3_IPV6_DST,
            ChecksumMode::V2Compat,
        );
        assert_eq!(out, V3_IPV6);
        // A message-only checksum over IPv6 is wrong in either mode.
        let mut msg = V3_IPV6;
        let c = reference_checksum(&[], &msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        let rx = rx_meta(V3_IPV6_SRC, V3_IPV6_DST);
        assert_eq!(
            parse(&msg, &rx, ChecksumMode::V2Compat),
            Err(DropReason::BadChecksum)
        );
    }

    #[test]
    fn v3_checksum_covers_the_ip_addresses() {
        let other_dst = rx_meta(V3_IPV4_SRC, "192.0.2.2");
        assert_eq!(
            parse(&V3_IPV4, &other_dst, ChecksumMode::Rfc),
            Err(DropReason::BadChecksum)
        );
        // Unicast peers get a checksum for their own address.
        let out = emit(&v3_ipv4_repr(), V3_IPV4_SRC, "192.0.2.2", ChecksumMode::Rfc);
        assert_eq!(
            parse(&out, &other_dst, ChecksumMode::Rfc),
            Ok(v3_ipv4_repr())
        );
    }

    #[test]
    fn reserved_bits_are_ignored_on_receipt() {
        let mut msg = V3_IPV4;
        msg[4] = 0xa0;
        fix_v3_ipv4(&mut msg);
        let rx = rx_meta(V3_IPV4_SRC, V3_IPV4_DST);
        assert_eq!(parse(&msg, &rx, ChecksumMode::Rfc), Ok(v3_ipv4_repr()));
    }

    #[test]
    fn auth_types_as_received() {
        let mut msg = V2_IPV4;
        msg[4] = 0;
        fix_v2(&mut msg);
        let rx = rx_meta(V2_IPV4_SRC, "224.0.0.18");
        // Type 0 ignores the data (RFC 3768 §5.3.10), so it is emitted as zeros.
        assert_eq!(
            parse(&msg, &rx, ChecksumMode::Rfc).unwrap().auth(),
            Auth::None
        );
        msg[4] = 2;
        fix_v2(&mut msg);
        let auth = parse(&msg, &rx, ChecksumMode::Rfc).unwrap().auth();
        assert_eq!(
            auth,
            Auth::Other {
                auth_type: 2,
                data: *b"secret\0\0"
            }
        );
    }

    #[test]
    fn reprs_that_cannot_be_sent_are_refused() {
        let one_v4 = || VirtualAddrs::V4(vec![v4("192.0.2.100")]);
        let s1 = Interval::ONE_SECOND;
        let new = |ver, int, auth, addrs| AdvertRepr::new(ver, 1, 100, int, auth, addrs);
        let v6 = VirtualAddrs::V6(vec!["fe80::1".parse().unwrap()]);
        assert_eq!(
            new(Version::V2, s1, Auth::None, v6),
            Err(ReprError::V2OverIpv6)
        );
        assert_eq!(
            new(Version::V3, s1, Auth::None, VirtualAddrs::V4(vec![])),
            Err(ReprError::NoAddresses)
        );
        let many = VirtualAddrs::V4(vec![v4("192.0.2.1"); 256]);
        assert_eq!(
            new(Version::V3, s1, Auth::None, many),
            Err(ReprError::TooManyAddresses(256))
        );
        let cs150 = Interval::from_centis(150).unwrap();
        assert!(matches!(
            new(Version::V2, cs150, Auth::None, one_v4()),
            Err(ReprError::IntervalOutOfRange { .. })
        ));
        let cs4096 = Interval::from_centis(4096).unwrap();
        assert!(matches!(
            new(Version::V3, cs4096, Auth::None, one_v4()),
            Err(ReprError::IntervalOutOfRange { .. })
        ));
        let pass = Auth::password(b"x").unwrap();
        assert_eq!(
            new(Version::V3, s1, pass, one_v4()),
            Err(ReprError::AuthOnV3)
        );
        let max = VirtualAddrs::V4(vec![v4("192.0.2.1"); 255]);
        assert_eq!(
            new(
                Version::V3,
                Interval::from_centis(4095).unwrap(),
                Auth::None,
                max
            )
            .unwrap()
            .buffer_len(),
            8 + 4 * 255
        );
    }

    #[test]
    fn emit_errors() {
        let repr = v3_ipv4_repr();
        let mut small = [0u8; 15];
        let mut p = Packet::new_unchecked(&mut small[..], Family::Ipv4);
        let (src, dst) = (ip(V3_IPV4_SRC), ip(V3_IPV4_DST));
        assert_eq!(
            repr.emit(&mut p, src, dst, ChecksumMode::Rfc),
            Err(EmitError::BufferTooSmall { need: 16, have: 15 })
        );
        let mut big = [0xeeu8; 20];
        let mut p = Packet::new_unchecked(&mut big[..], Family::Ipv4);
        assert_eq!(
            repr.emit(&mut p, src, ip("ff02::12"), ChecksumMode::Rfc),
            Err(EmitError::FamilyMismatch)
        );
        // A longer buffer gets the message at its front, the rest untouched.
        assert_eq!(repr.emit(&mut p, src, dst, ChecksumMode::Rfc), Ok(16));
        assert_eq!(&big[..16], &V3_IPV4);
        assert_eq!(&big[16..], &[0xee; 4]);
        let mut p6 = Packet::new_unchecked(&mut big[..], Family::Ipv6);
        assert_eq!(
            repr.emit(&mut p6, src, dst, ChecksumMode::Rfc),
            Err(EmitError::FamilyMismatch)
        );
    }

    #[test]
    fn priority_zero_advert() {
        let zero = v3_ipv4_repr().with_priority(0);
        let out = emit(&zero, V3_IPV4_SRC, V3_IPV4_DST, ChecksumMode::Rfc);
        assert_eq!(out[2], 0);
        let rx = rx_meta(V3_IPV4_SRC, V3_IPV4_DST);
        assert_eq!(parse(&out, &rx, ChecksumMode::Rfc).unwrap().priority(), 0);
    }
}
