//! A backup and master pair fed arbitrary packets and clock steps: nothing panics, deadlines
//! never lie in the past, and every rejected packet is counted.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vrrp::{Config, Instance, Instant, RxMeta, VirtualAddrs};

fn instance(me: [u8; 4], priority: u8, now: Instant) -> Instance {
    let vips = VirtualAddrs::V4(vec![[192, 0, 2, 100].into()]);
    let mut config = Config::new(51, me.into(), vips);
    config.priority = priority;
    let mut vr = Instance::new(config).expect("valid config");
    vr.startup(now);
    vr
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::ZERO;
    let mut vrs = [
        instance([192, 0, 2, 1], 100, now),
        instance([192, 0, 2, 2], 255, now),
    ];
    let src: IpAddr = [192, 0, 2, 9].into();
    let dst: IpAddr = [224, 0, 0, 18].into();
    // Records: [step in cs, ttl, len, len bytes of message].
    let mut rest = data;
    while let [step, ttl, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (message, next) = tail.split_at(len);
        rest = next;
        now = now + Duration::from_millis(u64::from(*step) * 10);
        for vr in &mut vrs {
            if vr.poll_timeout().is_some_and(|t| t <= now) {
                vr.handle_timeout(now);
            }
            let before = vr.counters().drops.total();
            let rx = RxMeta {
                ttl: *ttl,
                src,
                dst,
            };
            if vr.handle_packet(now, &rx, message).is_err() {
                assert_eq!(vr.counters().drops.total(), before + 1);
            }
            while vr.poll_transmit().is_some() {}
            while vr.poll_event().is_some() {}
            assert!(vr.poll_timeout().is_none_or(|t| t >= now));
        }
    }
});
