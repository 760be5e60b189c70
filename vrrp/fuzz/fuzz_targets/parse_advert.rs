//! Any bytes, under any receive context: parsing never panics, and whatever parses emits and
//! parses back to itself. Built with `cfg(fuzzing)`, so checksums are not checked.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp::{AdvertRepr, ChecksumMode, Family, Packet, RxMeta};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, message)) = data.split_first() else {
        return;
    };
    let (src, dst): (IpAddr, IpAddr) = if ctl & 1 == 0 {
        ([192, 0, 2, 1].into(), [224, 0, 0, 18].into())
    } else {
        ("fe80::1".parse().unwrap(), "ff02::12".parse().unwrap())
    };
    let mode = if ctl & 2 == 0 {
        ChecksumMode::Rfc
    } else {
        ChecksumMode::V2Compat
    };
    let ttl = if ctl & 4 == 0 { 255 } else { ctl };
    let family = Family::of(src);
    let rx = RxMeta { ttl, src, dst };

    if let Ok(p) = Packet::new_checked(message, family) {
        let _ = (
            p.addresses().count(),
            p.auth_data(),
            p.max_adver_int(),
            p.adver_int_secs(),
        );
    }
    let packet = Packet::new_unchecked(message, family);
    if let Ok(repr) = AdvertRepr::parse(&packet, &rx, mode) {
        let mut out = vec![0; repr.buffer_len()];
        let mut view = Packet::new_unchecked(&mut out[..], family);
        repr.emit(&mut view, src, dst, mode)
            .expect("a parsed advert emits");
        let view = Packet::new_unchecked(&out[..], family);
        assert_eq!(AdvertRepr::parse(&view, &rx, mode).as_ref(), Ok(&repr));
    }
});
