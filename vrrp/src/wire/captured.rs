//! Adverts captured from real peers (keepalived first), kept as regression vectors.
//!
//! To add one: capture with `tcpdump -i IFACE -w vrrp.pcap 'ip proto 112 or ip6 proto 112'`,
//! take one packet's IP payload (the VRRP message, cut at the IP total/payload length) and its
//! IP header's TTL, source and destination, and append a [`Capture`] to [`CAPTURES`] with what
//! the peer's configuration says the advert holds. The test below parses every entry with the
//! crate's own checks, checksum included, and emits it back byte for byte.

use std::net::IpAddr;

use super::{AdvertRepr, ChecksumMode, Family, Packet, RxMeta, Version};

/// One captured advert and what it must parse to.
pub struct Capture {
    /// Where it came from: peer software and version, its config in a few words.
    pub name: &'static str,
    pub ttl: u8,
    pub src: &'static str,
    pub dst: &'static str,
    /// `V2Compat` for peers running keepalived's `vrrp_checksum_compat`.
    pub checksum_mode: ChecksumMode,
    /// The VRRP message (IP payload).
    pub payload: &'static [u8],
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub interval_centis: u16,
    pub addrs: &'static [&'static str],
}

/// Captures from real peers, recorded with tcpdump in the namespace lab (`scripts/lab`).
pub const CAPTURES: &[Capture] = &[
    Capture {
        name: "keepalived 2.2.7 (Debian 12), vrrp_version 3, advert_int 0.1, priority 100",
        ttl: 255,
        src: "192.0.2.3",
        dst: "224.0.0.18",
        checksum_mode: ChecksumMode::Rfc,
        payload: &[
            0x31, 0x33, 0x64, 0x01, 0x00, 0x0a, 0x06, 0x24, 0xc0, 0x00, 0x02, 0x0a,
        ],
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval_centis: 10,
        addrs: &["192.0.2.10"],
    },
    Capture {
        name: "keepalived 2.2.7 (Debian 12), vrrp_version 2, advert_int 1, auth_type PASS \
               auth_pass secret1, priority 100",
        ttl: 255,
        src: "192.0.2.3",
        dst: "224.0.0.18",
        checksum_mode: ChecksumMode::Rfc,
        payload: &[
            0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0x4a, 0x73, 0xc0, 0x00, 0x02, 0x0a, 0x73, 0x65,
            0x63, 0x72, 0x65, 0x74, 0x31, 0x00,
        ],
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_centis: 100,
        addrs: &["192.0.2.10"],
    },
    Capture {
        name:
            "keepalived 2.2.7 (Debian 12), vrrp_version 3 over IPv6, advert_int 0.1, priority 100",
        ttl: 255,
        src: "fe80::808e:e8ff:feee:9baa",
        dst: "ff02::12",
        checksum_mode: ChecksumMode::Rfc,
        payload: &[
            0x31, 0x34, 0x64, 0x01, 0x00, 0x0a, 0x3a, 0xb1, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
        ],
        version: Version::V3,
        vrid: 52,
        priority: 100,
        interval_centis: 10,
        addrs: &["2001:db8::10"],
    },
];

fn check(c: &Capture) {
    let src: IpAddr = c.src.parse().unwrap();
    let dst: IpAddr = c.dst.parse().unwrap();
    let rx = RxMeta {
        ttl: c.ttl,
        src,
        dst,
    };
    let packet = Packet::new_unchecked(c.payload, Family::of(src));
    let repr = AdvertRepr::parse(&packet, &rx, c.checksum_mode)
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    assert_eq!(repr.version(), c.version, "{}", c.name);
    assert_eq!(repr.vrid(), c.vrid, "{}", c.name);
    assert_eq!(repr.priority(), c.priority, "{}", c.name);
    assert_eq!(repr.interval().centis(), c.interval_centis, "{}", c.name);
    let want: Vec<IpAddr> = c.addrs.iter().map(|a| a.parse().unwrap()).collect();
    assert_eq!(repr.addrs().iter().collect::<Vec<_>>(), want, "{}", c.name);
    let mut out = vec![0; repr.buffer_len()];
    let mut view = Packet::new_unchecked(&mut out[..], Family::of(src));
    repr.emit(&mut view, src, dst, c.checksum_mode).unwrap();
    assert_eq!(out, c.payload, "{}: emit differs from the capture", c.name);
}

#[test]
fn captured_adverts_parse_and_emit_byte_for_byte() {
    for c in CAPTURES {
        check(c);
    }
}

/// Keeps `check` honest while `CAPTURES` is empty: a made-up entry in the capture format.
#[test]
fn capture_format_works() {
    check(&Capture {
        name: "hand-written v2 keepalived-style advert (see vectors::V2_IPV4)",
        ttl: 255,
        src: "192.0.2.1",
        dst: "224.0.0.18",
        checksum_mode: ChecksumMode::Rfc,
        payload: &super::vectors::V2_IPV4,
        version: Version::V2,
        vrid: 51,
        priority: 100,
        interval_centis: 100,
        addrs: &["192.0.2.100"],
    });
}
