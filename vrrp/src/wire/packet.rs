//! A zero-copy view of one VRRP message (the IP payload): byte ranges in [`field`], accessors
//! that cannot panic once [`Packet::check_len`] has passed, and setters for emission.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{ChecksumMode, Family};
use crate::drops::DropReason;

/// Byte offsets of the VRRP header (RFC 9568 §5.1, RFC 3768 §5.1).
///
/// ```text
///  0       4       8              16              24              32
///  |Version| Type  | Virtual Rtr ID|   Priority    |  Count Addrs  |
///  v3: | rsvd  |   Max Adver Int (cs) |          Checksum             |
///  v2: |   Auth Type   | Adver Int (s) |          Checksum             |
///  |                  Addresses (4 or 16 bytes each)               |
///  v2 only: |          Authentication Data (8 bytes)              |
/// ```
pub mod field {
    /// A byte range within the message.
    pub type Field = core::ops::Range<usize>;

    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const ADDR_COUNT: usize = 3;
    /// VRRPv2: authentication type.
    pub const AUTH_TYPE: usize = 4;
    /// VRRPv2: advertisement interval in seconds.
    pub const ADVER_INT_SECS: usize = 5;
    /// VRRPv3: 4 reserved bits, then 12 bits of maximum advertisement interval in centiseconds.
    pub const MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    /// Start of the address list.
    pub const ADDRESSES: usize = 8;

    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 8;
    /// Length of the VRRPv2 authentication data after the addresses.
    pub const AUTH_DATA_LEN: usize = 8;
}

/// Advertisement, the only VRRP type (RFC 9568 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// A read/write view of a VRRP message.
///
/// The buffer must be exactly the message: the IP payload cut at the IP header's length. The
/// address family comes from the IP header and decides the address length.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic until [`check_len`] passes.
    ///
    /// [`check_len`]: Packet::check_len
    pub const fn new_unchecked(buffer: T, family: Family) -> Packet<T> {
        Packet { buffer, family }
    }

    /// Wraps `buffer` and checks that every accessor is in bounds.
    pub fn new_checked(buffer: T, family: Family) -> Result<Packet<T>, DropReason> {
        let packet = Packet::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds exactly the header, `Count` addresses of the family and, for
    /// VRRPv2, the authentication data. The layout depends on the version, so an unknown
    /// version (or v2 over IPv6) fails here too.
    ///
    /// A buffer too short for the header, or ending inside an address or the auth data, is
    /// `Truncated`; whole addresses in a number other than `Count` (or a zero count) is
    /// `BadAddrCount`.
    pub fn check_len(&self) -> Result<(), DropReason> {
        let data = self.buffer.as_ref();
        let len = data.len();
        if len < field::HEADER_LEN {
            return Err(DropReason::Truncated { len });
        }
        let trailer = match data[field::VER_TYPE] >> 4 {
            2 if self.family == Family::Ipv6 => return Err(DropReason::V2OverIpv6),
            2 => field::AUTH_DATA_LEN,
            3 => 0,
            v => return Err(DropReason::BadVersion(v)),
        };
        let addr_len = self.family.addr_len();
        let addr_bytes = (len - field::HEADER_LEN)
            .checked_sub(trailer)
            .ok_or(DropReason::Truncated { len })?;
        if addr_bytes % addr_len != 0 {
            return Err(DropReason::Truncated { len });
        }
        let count = data[field::ADDR_COUNT];
        if count == 0 || addr_bytes != usize::from(count) * addr_len {
            return Err(DropReason::BadAddrCount { count, len });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The address family the view was made for.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The type nibble.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The virtual router ID.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority (0 = leaving, 255 = address owner).
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The `Count IPvX Addr` field.
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::ADDR_COUNT]
    }

    /// VRRPv2: the authentication type.
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// VRRPv2: the advertisement interval in seconds.
    pub fn adver_int_secs(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT_SECS]
    }

    /// VRRPv3: the 4 reserved bits (sent as zero, ignored on receipt).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_ADVER_INT.start] >> 4
    }

    /// VRRPv3: the maximum advertisement interval in centiseconds (12 bits).
    pub fn max_adver_int(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::MAX_ADVER_INT];
        u16::from_be_bytes([d[0], d[1]]) & 0x0fff
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The address list as raw bytes (`Count` × 4 or 16).
    pub fn addr_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[self.addr_range()]
    }

    /// The address list.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let family = self.family;
        self.addr_bytes()
            .chunks_exact(family.addr_len())
            .map(move |chunk| match family {
                Family::Ipv4 => {
                    let mut a = [0; 4];
                    a.copy_from_slice(chunk);
                    IpAddr::V4(Ipv4Addr::from(a))
                }
                Family::Ipv6 => {
                    let mut a = [0; 16];
                    a.copy_from_slice(chunk);
                    IpAddr::V6(Ipv6Addr::from(a))
                }
            })
    }

    /// VRRPv2: the 8 bytes of authentication data after the addresses; empty for VRRPv3.
    pub fn auth_data(&self) -> &[u8] {
        match self.auth_range() {
            Some(r) => &self.buffer.as_ref()[r],
            None => &[],
        }
    }

    /// True if the checksum is right for this message sent from `src` to `dst`.
    ///
    /// VRRPv2 sums the message only; VRRPv3 adds the pseudo-header, except that v3-over-IPv4
    /// in [`ChecksumMode::V2Compat`] also passes with the message-only sum.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr, mode: ChecksumMode) -> bool {
        let data = self.buffer.as_ref();
        if self.version() == 2 {
            return checksum::verify(data, None);
        }
        checksum::verify(data, Some((src, dst)))
            || (mode == ChecksumMode::V2Compat
                && self.family == Family::Ipv4
                && checksum::verify(data, None))
    }

    fn addr_range(&self) -> field::Field {
        let end = field::ADDRESSES + usize::from(self.addr_count()) * self.family.addr_len();
        field::ADDRESSES..end
    }

    fn auth_range(&self) -> Option<field::Field> {
        (self.version() == 2).then(|| {
            let start = self.addr_range().end;
            start..start + field::AUTH_DATA_LEN
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version and type nibbles.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::ADDR_COUNT] = count;
    }

    /// VRRPv2: sets the authentication type.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// VRRPv2: sets the advertisement interval in seconds.
    pub fn set_adver_int_secs(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT_SECS] = secs;
    }

    /// VRRPv3: sets the interval (low 12 bits of `centis`) and zeroes the reserved bits.
    pub fn set_max_adver_int(&mut self, centis: u16) {
        self.buffer.as_mut()[field::MAX_ADVER_INT]
            .copy_from_slice(&(centis & 0x0fff).to_be_bytes());
    }

    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// The address list, mutable; sized by the count field, so set that first.
    pub fn addr_bytes_mut(&mut self) -> &mut [u8] {
        let r = self.addr_range();
        &mut self.buffer.as_mut()[r]
    }

    /// VRRPv2: the authentication data, mutable; empty for VRRPv3. Set version and count first.
    pub fn auth_data_mut(&mut self) -> &mut [u8] {
        match self.auth_range() {
            Some(r) => &mut self.buffer.as_mut()[r],
            None => &mut [],
        }
    }

    /// Computes and stores the checksum for a message sent from `src` to `dst`: message only for
    /// VRRPv2 and for v3-over-IPv4 in [`ChecksumMode::V2Compat`], with pseudo-header otherwise.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr, mode: ChecksumMode) {
        let pseudo = match (self.version(), self.family, mode) {
            (2, _, _) | (_, Family::Ipv4, ChecksumMode::V2Compat) => None,
            _ => Some((src, dst)),
        };
        self.set_checksum(0);
        let c = checksum::vrrp_checksum(self.buffer.as_ref(), pseudo);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AsMut<[u8]> for Packet<T> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VRRPv3 over IPv4, VRID 51, priority 100, two addresses, 100 cs (checksum left zero).
    const V3_V4: [u8; 16] = [
        0x31, 51, 100, 2, // v3, advert; VRID; priority; count
        0xf0, 0x64, 0x00, 0x00, // rsvd = 0xf (ignored), 100 cs; checksum
        192, 0, 2, 100, // 192.0.2.100
        192, 0, 2, 101, // 192.0.2.101
    ];

    #[test]
    fn accessors_read_their_fields() {
        let p = Packet::new_checked(&V3_V4[..], Family::Ipv4).unwrap();
        assert_eq!(
            (p.version(), p.msg_type(), p.vrid(), p.priority()),
            (3, 1, 51, 100)
        );
        assert_eq!(
            (p.addr_count(), p.reserved(), p.max_adver_int()),
            (2, 0xf, 100)
        );
        assert_eq!(p.checksum(), 0);
        let addrs: Vec<IpAddr> = p.addresses().collect();
        assert_eq!(
            addrs,
            [
                "192.0.2.100".parse::<IpAddr>().unwrap(),
                "192.0.2.101".parse().unwrap()
            ]
        );
        assert!(p.auth_data().is_empty());
    }

    #[test]
    fn length_checks_name_what_is_wrong() {
        let check = |b: &[u8], f| Packet::new_checked(b, f).map(|_| ());
        assert_eq!(
            check(&V3_V4[..7], Family::Ipv4),
            Err(DropReason::Truncated { len: 7 })
        );
        assert_eq!(
            check(&V3_V4[..14], Family::Ipv4),
            Err(DropReason::Truncated { len: 14 })
        );
        assert_eq!(
            check(&V3_V4[..12], Family::Ipv4),
            Err(DropReason::BadAddrCount { count: 2, len: 12 })
        );
        // 8 bytes of addresses are half an IPv6 address.
        assert_eq!(
            check(&V3_V4, Family::Ipv6),
            Err(DropReason::Truncated { len: 16 })
        );
        let mut v2 = V3_V4;
        v2[0] = 0x21;
        // As v2, the last 8 bytes are auth data, leaving none for the two addresses.
        assert_eq!(
            check(&v2, Family::Ipv4),
            Err(DropReason::BadAddrCount { count: 2, len: 16 })
        );
        assert_eq!(
            check(&v2[..12], Family::Ipv4),
            Err(DropReason::Truncated { len: 12 })
        );
        assert_eq!(check(&v2, Family::Ipv6), Err(DropReason::V2OverIpv6));
        let mut v4 = V3_V4;
        v4[0] = 0x41;
        assert_eq!(check(&v4, Family::Ipv4), Err(DropReason::BadVersion(4)));
        let mut zero = V3_V4;
        zero[3] = 0;
        assert_eq!(
            check(&zero[..8], Family::Ipv4),
            Err(DropReason::BadAddrCount { count: 0, len: 8 })
        );
    }

    #[test]
    fn setters_write_their_fields() {
        let mut buf = [0xaau8; 20];
        let mut p = Packet::new_unchecked(&mut buf[..], Family::Ipv4);
        p.set_version_type(2, 1);
        p.set_vrid(7);
        p.set_priority(255);
        p.set_addr_count(1);
        p.set_auth_type(1);
        p.set_adver_int_secs(3);
        p.addr_bytes_mut().copy_from_slice(&[10, 0, 0, 1]);
        p.auth_data_mut().copy_from_slice(b"password");
        p.fill_checksum(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ChecksumMode::Rfc,
        );
        assert!(p.check_len().is_ok());
        assert_eq!(&buf[..8], &[0x21, 7, 255, 1, 1, 3, buf[6], buf[7]]);
        assert_eq!(&buf[12..], b"password");
        let p = Packet::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert_eq!(p.auth_data(), b"password");
        assert_eq!(p.adver_int_secs(), 3);
        let any = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(p.verify_checksum(any, any, ChecksumMode::Rfc));
    }

    #[test]
    fn set_max_adver_int_clears_reserved_bits() {
        let mut buf = V3_V4;
        let mut p = Packet::new_unchecked(&mut buf[..], Family::Ipv4);
        p.set_max_adver_int(0xffff);
        assert_eq!((p.reserved(), p.max_adver_int()), (0, 0x0fff));
    }
}
