//! What the instance does with what it receives and sends: malformed and foreign adverts,
//! stopped instances, VRRPv2 with auth, IPv6, and the gratuitous ARP events.

use std::time::Duration;

use super::*;
use crate::drops::DropKind;
use crate::wire::{vectors, ChecksumMode};

#[test]
fn malformed_adverts_are_ignored_and_counted() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.run_until(cs(1000));
    let deadline = net.nodes[B].inst.poll_timeout();
    let a = ip("192.0.2.1");
    // A priority-0 advert from A, as bytes, to corrupt in different ways.
    let zero = net.nodes[A].inst.advert.with_priority(0);
    let mut good = [0u8; 12];
    let tx = Transmit {
        advert: zero,
        checksum_mode: ChecksumMode::Rfc,
        reason: TransmitReason::Shutdown,
    };
    tx.emit(&mut good, a, tx.multicast_dst()).unwrap();

    assert_eq!(net.inject(B, a, 254, &good), Err(DropReason::BadTtl(254)));
    assert_eq!(
        net.inject(B, a, 255, &good[..11]),
        Err(DropReason::Truncated { len: 11 })
    );
    let mut bad_sum = good;
    bad_sum[7] ^= 0xff;
    assert_eq!(
        net.inject(B, a, 255, &bad_sum),
        Err(DropReason::BadChecksum)
    );
    let mut other_vrid = good;
    other_vrid[1] = 52;
    vectors::fix_v3_ipv4(&mut other_vrid); // checksum for 192.0.2.1 -> 224.0.0.18
    assert_eq!(
        net.inject(B, a, 255, &other_vrid),
        Err(DropReason::VridMismatch {
            expected: 51,
            got: 52
        })
    );
    let mut zero_int = good;
    zero_int[4..6].copy_from_slice(&[0, 0]);
    vectors::fix_v3_ipv4(&mut zero_int);
    assert_eq!(
        net.inject(B, a, 255, &zero_int),
        Err(DropReason::ZeroInterval)
    );
    let v2 = vectors::V2_IPV4;
    let want = DropReason::VersionMismatch {
        expected: Version::V3,
        got: Version::V2,
    };
    assert_eq!(net.inject(B, a, 255, &v2), Err(want));
    assert_eq!(
        net.inject(B, ip("192.0.2.2"), 255, &good).unwrap_err(),
        DropReason::BadChecksum
    );

    // Nothing moved B's timer or state, and every drop is counted by kind.
    assert_eq!(net.nodes[B].inst.poll_timeout(), deadline);
    assert_eq!(net.nodes[B].inst.state(), State::Backup);
    let drops = &net.nodes[B].inst.counters().drops;
    for kind in [
        DropKind::BadTtl,
        DropKind::Truncated,
        DropKind::VridMismatch,
        DropKind::ZeroInterval,
    ] {
        assert_eq!(drops.get(kind), 1, "{kind:?}");
    }
    assert_eq!(drops.get(DropKind::BadChecksum), 2);
    assert_eq!(drops.get(DropKind::VersionMismatch), 1);
    assert_eq!(drops.total(), 7);

    // The intact one still works: MDT becomes now + skew (60).
    assert_eq!(net.inject(B, a, 255, &good), Ok(()));
    assert_eq!(net.nodes[B].inst.poll_timeout(), Some(cs(1060)));
}

#[test]
fn gratuitous_arp_bursts_on_becoming_master() {
    let mut a = cfg(A, 200, 100);
    a.garp_interval = Duration::from_millis(10);
    let mut net = Net::started(vec![a, cfg(B, 100, 100)]);
    net.run_until(cs(2000));
    let garps: Vec<(u64, GarpReason)> = net.nodes[A]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::SendGratuitousArp { reason } => Some((centis(*t), *reason)),
            _ => None,
        })
        .collect();
    use GarpReason::{BecameMaster, Delayed};
    let mut want: Vec<_> = (0..5).map(|k| (321 + k, BecameMaster)).collect();
    want.extend((0..5).map(|k| (821 + k, Delayed)));
    assert_eq!(garps, want);
    // AddVips comes before the first ARP.
    let order: Vec<_> = net.nodes[A]
        .events
        .iter()
        .map(|(_, e)| e.clone())
        .skip(1)
        .take(3)
        .collect();
    assert!(matches!(
        order[..],
        [
            Event::BecameMaster { .. },
            Event::AddVips(_),
            Event::SendGratuitousArp { .. }
        ]
    ));
}

#[test]
fn stopped_instances_ignore_adverts_and_restart() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.run_until(cs(500));
    net.nodes[B].inst.shutdown(net.now);
    net.flush();
    assert_eq!(
        transitions(&net, B).last().unwrap(),
        &(
            500,
            Event::Stopped {
                cause: Cause::Shutdown
            }
        )
    );
    assert!(
        net.nodes[B].sent.is_empty(),
        "a backup sends nothing on shutdown"
    );
    net.run_until(cs(700));
    assert_eq!(
        net.nodes[B]
            .drops
            .iter()
            .map(|(_, d)| *d)
            .collect::<Vec<_>>(),
        vec![DropReason::NotRunning; 2]
    );
    net.start(B);
    assert_eq!(net.nodes[B].inst.state(), State::Backup);
    assert_eq!(net.nodes[B].inst.poll_timeout(), Some(cs(700 + 360)));
}

#[test]
fn vrrp_v2_with_password_like_keepalived() {
    let v2 = |node, prio| Config {
        version: Version::V2,
        auth: Auth::password(b"secret").unwrap(),
        ..cfg(node, prio, 100)
    };
    let mut net = Net::started(vec![v2(A, 150), v2(B, 100)]);
    net.run_until(cs(1000));
    // A: MDI 300 + (106 * 100) / 256 = 341.
    assert_eq!(
        transitions(&net, A)[1],
        (341, master(Cause::MasterDownTimerExpired))
    );
    assert_eq!(net.nodes[A].sent[0].1.version(), Version::V2);
    // Wrong password and wrong interval are dropped by B.
    let a = ip("192.0.2.1");
    let mut wrong_pass = vectors::V2_IPV4;
    wrong_pass[12] = b'S';
    vectors::fix_v2(&mut wrong_pass);
    assert_eq!(
        net.inject(B, a, 255, &wrong_pass),
        Err(DropReason::AuthMismatch)
    );
    let mut wrong_int = vectors::V2_IPV4;
    wrong_int[5] = 2;
    vectors::fix_v2(&mut wrong_int);
    let two = Interval::from_secs(2).unwrap();
    let want = DropReason::IntervalMismatch {
        expected: Interval::ONE_SECOND,
        got: two,
    };
    assert_eq!(net.inject(B, a, 255, &wrong_int), Err(want));
    let mut no_auth = vectors::V2_IPV4;
    no_auth[4] = 0;
    vectors::fix_v2(&mut no_auth);
    assert_eq!(
        net.inject(B, a, 255, &no_auth),
        Err(DropReason::AuthTypeMismatch {
            expected: 1,
            got: 0
        })
    );
    let mut other_vip = vectors::V2_IPV4;
    other_vip[11] = 99;
    vectors::fix_v2(&mut other_vip);
    assert_eq!(
        net.inject(B, a, 255, &other_vip),
        Err(DropReason::AddressListMismatch)
    );
    net.crash(A);
    net.run_until(cs(3000));
    // Last advert at 941; B: 941 + 360.
    assert_eq!(
        transitions(&net, B)[1],
        (1301, master(Cause::MasterDownTimerExpired))
    );
}

#[test]
fn ipv6_instances_elect_over_ff02_12() {
    let v6 = |node: usize, prio| {
        let vips = VirtualAddrs::V6(vec![
            "fe80::100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ]);
        let mut c = Config::new(7, ip(&format!("fe80::{}", node + 1)), vips);
        c.priority = prio;
        c.advert_interval = Interval::from_centis(10).unwrap();
        c
    };
    let mut net = Net::started(vec![v6(A, 100), v6(B, 200)]);
    net.run_until(cs(200));
    assert_eq!(
        transitions(&net, B)[1],
        (32, master(Cause::MasterDownTimerExpired))
    );
    let tx = &net.nodes[B].sent[0].1;
    assert_eq!(
        (tx.version(), tx.family(), tx.multicast_dst()),
        (Version::V3, Family::Ipv6, ip("ff02::12"))
    );
    assert_eq!(net.nodes[A].inst.state(), State::Backup);
    assert!(net.nodes[A].drops.is_empty());
}

#[test]
fn v3_address_list_mismatch_is_counted_not_dropped() {
    let mut b = cfg(B, 100, 100);
    b.virtual_addrs = VirtualAddrs::V4(vec!["192.0.2.200".parse().unwrap()]);
    let mut net = Net::started(vec![cfg(A, 200, 100), b]);
    net.run_until(cs(1000));
    assert_eq!(net.nodes[B].inst.state(), State::Backup);
    assert_eq!(net.nodes[B].inst.counters().address_list_mismatch, 7);
}
