//! Hand-written test adverts, one comment per field, with checksums worked out independently
//! of the crate (by [`reference_checksum`] here and by hand), shared by the wire tests.

use std::net::IpAddr;

use super::RxMeta;

/// VRRPv2 over IPv4 as keepalived sends it by default with `auth_type PASS`.
/// Checksum by hand: 2133 + 6401 + 0101 + c000 + 0264 + 7365 + 6372 + 6574 = 2_84e4,
/// folded 84e6, complemented 7b19.
pub const V2_IPV4: [u8; 20] = [
    0x21, // version 2, type 1 (advertisement)
    51,   // VRID 51
    100,  // priority 100
    1,    // one address
    1,    // auth type 1: simple text password
    1,    // advert interval 1 s
    0x7b, 0x19, // checksum over the message only
    192, 0, 2, 100, // 192.0.2.100
    b's', b'e', b'c', b'r', b'e', b't', 0, 0, // password "secret", zero-padded to 8 bytes
];
pub const V2_IPV4_SRC: &str = "192.0.2.1";

/// VRRPv3 over IPv4, RFC 9568 checksum (pseudo-header 192.0.2.1 -> 224.0.0.18, proto 112,
/// length 16).
pub const V3_IPV4: [u8; 16] = [
    0x31, // version 3, type 1
    51,   // VRID 51
    100,  // priority 100
    2,    // two addresses
    0x00, 0x64, // reserved 0, max advert interval 100 cs
    0x43, 0x07, // checksum with pseudo-header
    192, 0, 2, 100, // 192.0.2.100
    192, 0, 2, 101, // 192.0.2.101
];
pub const V3_IPV4_SRC: &str = "192.0.2.1";
pub const V3_IPV4_DST: &str = "224.0.0.18";

/// [`V3_IPV4`] with the pre-RFC keepalived checksum (message only, `vrrp_checksum_compat`).
pub const V3_IPV4_COMPAT: [u8; 16] = [
    0x31, 51, 100, 2, // version 3 type 1; VRID 51; priority 100; two addresses
    0x00, 0x64, // 100 cs
    0xe5, 0x9b, // checksum over the message only
    192, 0, 2, 100, // 192.0.2.100
    192, 0, 2, 101, // 192.0.2.101
];

/// VRRPv3 over IPv6, pseudo-header fe80::a -> ff02::12, 32-bit length 40, next header 112.
pub const V3_IPV6: [u8; 40] = [
    0x31, // version 3, type 1
    1,    // VRID 1
    200,  // priority 200
    2,    // two addresses
    0x00, 0x0a, // reserved 0, max advert interval 10 cs (100 ms)
    0xdb, 0x7e, // checksum with pseudo-header
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // fe80::1 (link-local first)
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // 2001:db8::100
];
pub const V3_IPV6_SRC: &str = "fe80::a";
pub const V3_IPV6_DST: &str = "ff02::12";

/// What the receiving router's IP layer reports for a packet from `src` to `dst`, TTL 255.
pub fn rx_meta(src: &str, dst: &str) -> RxMeta {
    RxMeta {
        ttl: 255,
        src: ip(src),
        dst: ip(dst),
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The checksum written the plain way, independently of `wire::checksum`: 32-bit sum of
/// 16-bit words of `pseudo ++ message` (checksum field zeroed), carries folded, complemented.
pub fn reference_checksum(pseudo: &[u8], message: &[u8]) -> u16 {
    let mut bytes = pseudo.to_vec();
    bytes.extend_from_slice(message);
    bytes[pseudo.len() + 6] = 0;
    bytes[pseudo.len() + 7] = 0;
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = 0;
    for i in (0..bytes.len()).step_by(2) {
        sum += (bytes[i] as u32) << 8 | bytes[i + 1] as u32;
    }
    while sum > 0xffff {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    !(sum as u16)
}

/// The IPv4 pseudo-header: src, dst, zero, protocol 112, 16-bit length.
pub fn pseudo_v4(src: &str, dst: &str, len: usize) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(src), ip(dst)) else {
        panic!("not IPv4")
    };
    let mut p = s.octets().to_vec();
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&[0, 112]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

/// The IPv6 pseudo-header: src, dst, 32-bit length, three zero bytes, next header 112.
pub fn pseudo_v6(src: &str, dst: &str, len: usize) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (ip(src), ip(dst)) else {
        panic!("not IPv6")
    };
    let mut p = s.octets().to_vec();
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 112]);
    p
}

/// Rewrites the checksum of a v3-over-IPv4 message after a test edits it.
pub fn fix_v3_ipv4(msg: &mut [u8]) {
    let c = reference_checksum(&pseudo_v4(V3_IPV4_SRC, V3_IPV4_DST, msg.len()), msg);
    msg[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Rewrites the checksum of a v2 message after a test edits it.
pub fn fix_v2(msg: &mut [u8]) {
    let c = reference_checksum(&[], msg);
    msg[6..8].copy_from_slice(&c.to_be_bytes());
}

/// A small xorshift64 so the brute-force tests need no `rand`.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn vector_checksums_are_right() {
    let v4 = |m: &[u8]| reference_checksum(&pseudo_v4(V3_IPV4_SRC, V3_IPV4_DST, m.len()), m);
    assert_eq!(
        reference_checksum(&[], &V2_IPV4).to_be_bytes(),
        [V2_IPV4[6], V2_IPV4[7]]
    );
    assert_eq!(v4(&V3_IPV4).to_be_bytes(), [V3_IPV4[6], V3_IPV4[7]]);
    assert_eq!(
        reference_checksum(&[], &V3_IPV4_COMPAT).to_be_bytes(),
        [0xe5, 0x9b]
    );
    let v6 = reference_checksum(
        &pseudo_v6(V3_IPV6_SRC, V3_IPV6_DST, V3_IPV6.len()),
        &V3_IPV6,
    );
    assert_eq!(v6.to_be_bytes(), [V3_IPV6[6], V3_IPV6[7]]);
}
