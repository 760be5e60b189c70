//! Malformed adverts: each yields its own [`DropReason`], and no input (truncated, random,
//! mutated) makes the parser panic.

use super::vectors::*;
use super::{AdvertRepr, ChecksumMode, Family, Packet, RxMeta};
use crate::drops::DropReason;

fn parse(bytes: &[u8], rx: &RxMeta) -> Result<AdvertRepr, DropReason> {
    AdvertRepr::parse(
        &Packet::new_unchecked(bytes, Family::of(rx.src)),
        rx,
        ChecksumMode::Rfc,
    )
}

fn rx4() -> RxMeta {
    rx_meta(V3_IPV4_SRC, V3_IPV4_DST)
}

#[test]
fn ttl_254_is_bad_ttl() {
    let rx = RxMeta { ttl: 254, ..rx4() };
    assert_eq!(parse(&V3_IPV4, &rx), Err(DropReason::BadTtl(254)));
    let rx6 = RxMeta {
        ttl: 64,
        ..rx_meta(V3_IPV6_SRC, V3_IPV6_DST)
    };
    assert_eq!(parse(&V3_IPV6, &rx6), Err(DropReason::BadTtl(64)));
}

#[test]
fn truncated() {
    assert_eq!(
        parse(&V3_IPV4[..0], &rx4()),
        Err(DropReason::Truncated { len: 0 })
    );
    assert_eq!(
        parse(&V3_IPV4[..7], &rx4()),
        Err(DropReason::Truncated { len: 7 })
    );
    // Cut inside the second address.
    assert_eq!(
        parse(&V3_IPV4[..14], &rx4()),
        Err(DropReason::Truncated { len: 14 })
    );
    // v2 cut inside the auth data.
    let rx = rx_meta(V2_IPV4_SRC, "224.0.0.18");
    assert_eq!(
        parse(&V2_IPV4[..13], &rx),
        Err(DropReason::Truncated { len: 13 })
    );
}

#[test]
fn wrong_version() {
    for (nibble, v) in [(0x11, 1), (0x41, 4), (0x01, 0), (0xf1, 15)] {
        let mut msg = V3_IPV4;
        msg[0] = nibble;
        fix_v3_ipv4(&mut msg);
        assert_eq!(parse(&msg, &rx4()), Err(DropReason::BadVersion(v)));
    }
    // v2 over IPv6: version nibble 2 in an IPv6 packet.
    let mut msg = V3_IPV6;
    msg[0] = 0x21;
    assert_eq!(
        parse(&msg, &rx_meta(V3_IPV6_SRC, V3_IPV6_DST)),
        Err(DropReason::V2OverIpv6)
    );
}

#[test]
fn wrong_type() {
    let mut msg = V3_IPV4;
    msg[0] = 0x32;
    fix_v3_ipv4(&mut msg);
    assert_eq!(parse(&msg, &rx4()), Err(DropReason::BadType(2)));
}

#[test]
fn zero_interval() {
    let mut msg = V3_IPV4;
    msg[4..6].copy_from_slice(&[0xf0, 0x00]); // reserved bits set, interval zero
    fix_v3_ipv4(&mut msg);
    assert_eq!(parse(&msg, &rx4()), Err(DropReason::ZeroInterval));
    let mut v2 = V2_IPV4;
    v2[5] = 0;
    fix_v2(&mut v2);
    assert_eq!(
        parse(&v2, &rx_meta(V2_IPV4_SRC, "224.0.0.18")),
        Err(DropReason::ZeroInterval)
    );
}

#[test]
fn bad_checksum() {
    let mut msg = V3_IPV4;
    msg[7] ^= 1;
    assert_eq!(parse(&msg, &rx4()), Err(DropReason::BadChecksum));
    // A flipped bit anywhere else is caught too.
    let mut msg = V3_IPV4;
    msg[13] ^= 0x40;
    assert_eq!(parse(&msg, &rx4()), Err(DropReason::BadChecksum));
    let mut v2 = V2_IPV4;
    v2[19] = 1;
    assert_eq!(
        parse(&v2, &rx_meta(V2_IPV4_SRC, "224.0.0.18")),
        Err(DropReason::BadChecksum)
    );
}

#[test]
fn wrong_address_count() {
    for count in [0u8, 1, 3, 255] {
        let mut msg = V3_IPV4;
        msg[3] = count;
        fix_v3_ipv4(&mut msg);
        assert_eq!(
            parse(&msg, &rx4()),
            Err(DropReason::BadAddrCount { count, len: 16 })
        );
    }
    // Two whole IPv6 addresses but a count of 1.
    let mut msg = V3_IPV6;
    msg[3] = 1;
    let rx6 = rx_meta(V3_IPV6_SRC, V3_IPV6_DST);
    assert_eq!(
        parse(&msg, &rx6),
        Err(DropReason::BadAddrCount { count: 1, len: 40 })
    );
}

#[test]
fn mixed_families() {
    let rx = RxMeta {
        dst: ip("ff02::12"),
        ..rx4()
    };
    assert_eq!(parse(&V3_IPV4, &rx), Err(DropReason::MixedFamilies));
    // A view made for IPv6 given IPv4 IP facts.
    let p = Packet::new_unchecked(&V3_IPV4[..], Family::Ipv6);
    assert_eq!(
        AdvertRepr::parse(&p, &rx4(), ChecksumMode::Rfc),
        Err(DropReason::MixedFamilies)
    );
}

/// Parses under every receive context; whatever parses must emit and parse back to itself.
fn parse_everywhere(bytes: &[u8]) {
    let contexts = [
        rx4(),
        rx_meta(V3_IPV6_SRC, V3_IPV6_DST),
        RxMeta { ttl: 0, ..rx4() },
        RxMeta {
            dst: ip("ff02::12"),
            ..rx4()
        },
    ];
    for rx in &contexts {
        for mode in [ChecksumMode::Rfc, ChecksumMode::V2Compat] {
            let family = Family::of(rx.src);
            let packet = Packet::new_unchecked(bytes, family);
            if let Ok(repr) = AdvertRepr::parse(&packet, rx, mode) {
                let mut out = vec![0; repr.buffer_len()];
                let mut view = Packet::new_unchecked(&mut out[..], family);
                repr.emit(&mut view, rx.src, rx.dst, mode).unwrap();
                let view = Packet::new_unchecked(&out[..], family);
                assert_eq!(AdvertRepr::parse(&view, rx, mode), Ok(repr));
            }
            // The view's own accessors are safe once check_len passed.
            if let Ok(p) = Packet::new_checked(bytes, family) {
                let _ = (
                    p.addresses().count(),
                    p.auth_data(),
                    p.max_adver_int(),
                    p.checksum(),
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_every_vector() {
    for v in [&V2_IPV4[..], &V3_IPV4, &V3_IPV4_COMPAT, &V3_IPV6] {
        for end in 0..=v.len() {
            for start in 0..=end.min(9) {
                parse_everywhere(&v[start..end]);
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        let len = rng.below(80);
        buf.clear();
        buf.extend((0..len).map(|_| rng.next() as u8));
        // Often give it a plausible version/type so the deeper checks run too.
        if len > 0 && rng.below(2) == 0 {
            buf[0] = [0x21, 0x31][rng.below(2)];
        }
        parse_everywhere(&buf);
    }
}

#[test]
fn mutated_vectors_never_panic() {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    for _ in 0..20_000 {
        let v = [&V2_IPV4[..], &V3_IPV4, &V3_IPV4_COMPAT, &V3_IPV6][rng.below(4)];
        let mut buf = v.to_vec();
        for _ in 0..=rng.below(3) {
            let i = rng.below(buf.len());
            buf[i] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            buf.truncate(rng.below(buf.len() + 1));
        }
        parse_everywhere(&buf);
    }
}
