//! State machine scripts in virtual time: "at t = 10.00 s A stops, B is master at 10.60 s".
//! Times are in centiseconds, the unit of the RFC's timer arithmetic.

use std::net::IpAddr;

use super::harness::Net;
use super::*;
use crate::wire::VirtualAddrs;

mod election;
mod inputs;

pub(super) const A: usize = 0;
pub(super) const B: usize = 1;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// VRRPv3, VRID 51, VIP 192.0.2.100, the given priority and interval; node i is 192.0.2.(i+1).
pub(super) fn cfg(node: usize, priority: u8, interval_cs: u16) -> Config {
    let vips = VirtualAddrs::V4(vec!["192.0.2.100".parse().unwrap()]);
    let mut c = Config::new(51, ip(&format!("192.0.2.{}", node + 1)), vips);
    c.priority = priority;
    c.advert_interval = Interval::from_centis(interval_cs).unwrap();
    c
}

pub(super) fn cs(centis: u64) -> Instant {
    Instant::from_centis(centis)
}

pub(super) fn centis(t: Instant) -> u64 {
    (t.since_origin().as_millis() / 10) as u64
}

/// Node `i`'s state changes as (centiseconds, event).
pub(super) fn transitions(net: &Net, i: usize) -> Vec<(u64, Event)> {
    net.nodes[i]
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::BecameMaster { .. } | Event::BecameBackup { .. } | Event::Stopped { .. }
            )
        })
        .map(|(t, e)| (centis(*t), e.clone()))
        .collect()
}

pub(super) fn master(cause: Cause) -> Event {
    Event::BecameMaster { cause }
}

pub(super) fn backup(cause: Cause) -> Event {
    Event::BecameBackup { cause }
}

/// When node `i` sent adverts, in centiseconds.
pub(super) fn sent_at(net: &Net, i: usize) -> Vec<u64> {
    net.nodes[i].sent.iter().map(|(t, _)| centis(*t)).collect()
}
