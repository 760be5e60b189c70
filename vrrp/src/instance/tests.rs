//! State machine scripts in virtual time: "at t = 10.00 s A stops, B is master at 10.60 s".
//! Times are in centiseconds, the unit of the RFC's timer arithmetic.

use std::net::IpAddr;
use std::time::Duration;

use super::harness::Net;
use super::*;
use crate::drop::DropKind;
use crate::wire::{vectors, ChecksumMode, VirtualAddrs};

const A: usize = 0;
const B: usize = 1;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// VRRPv3, VRID 51, VIP 192.0.2.100, the given priority and interval; node i is 192.0.2.(i+1).
fn cfg(node: usize, priority: u8, interval_cs: u16) -> Config {
    let vips = VirtualAddrs::V4(vec!["192.0.2.100".parse().unwrap()]);
    let mut c = Config::new(51, ip(&format!("192.0.2.{}", node + 1)), vips);
    c.priority = priority;
    c.advert_interval = Interval::from_centis(interval_cs).unwrap();
    c
}

fn cs(centis: u64) -> Instant {
    Instant::from_centis(centis)
}

fn centis(t: Instant) -> u64 {
    (t.since_origin().as_millis() / 10) as u64
}

/// Node `i`'s state changes as (centiseconds, event).
fn transitions(net: &Net, i: usize) -> Vec<(u64, Event)> {
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

fn master(cause: Cause) -> Event {
    Event::BecameMaster { cause }
}

fn backup(cause: Cause) -> Event {
    Event::BecameBackup { cause }
}

/// When node `i` sent adverts, in centiseconds.
fn sent_at(net: &Net, i: usize) -> Vec<u64> {
    net.nodes[i].sent.iter().map(|(t, _)| centis(*t)).collect()
}

#[test]
fn higher_priority_wins_the_election() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.run_until(cs(2000));
    // A: MDI = 3 * 100 + (56 * 100) / 256 = 321 cs. B's 360 cs never comes.
    let want_a = vec![
        (0, backup(Cause::Startup)),
        (321, master(Cause::MasterDownTimerExpired)),
    ];
    assert_eq!(transitions(&net, A), want_a);
    assert_eq!(transitions(&net, B), vec![(0, backup(Cause::Startup))]);
    assert_eq!(sent_at(&net, A)[..3], [321, 421, 521]);
    assert!(net.nodes[B].sent.is_empty());
    let status = net.nodes[B].inst.status();
    assert_eq!(
        status.master,
        Some(MasterInfo {
            addr: ip("192.0.2.1"),
            priority: 200
        })
    );
    assert_eq!(status.state, State::Backup);
    assert!(net.nodes.iter().all(|n| n.drops.is_empty()));
}

#[test]
fn backup_takes_over_exactly_master_down_interval_after_the_last_advert() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.run_until(cs(1000));
    net.crash(A);
    net.run_until(cs(3000));
    // A's last advert left at 921; B: skew (156 * 100) / 256 = 60, MDI 360 -> 921 + 360.
    assert_eq!(*sent_at(&net, A).last().unwrap(), 921);
    let want = vec![
        (0, backup(Cause::Startup)),
        (1281, master(Cause::MasterDownTimerExpired)),
    ];
    assert_eq!(transitions(&net, B), want);
    assert_eq!(net.nodes[B].sent[0].1.reason, TransmitReason::BecameMaster);
}

#[test]
fn sub_second_interval_takeover() {
    let mut net = Net::started(vec![cfg(A, 200, 10), cfg(B, 100, 10)]);
    net.run_until(cs(100));
    net.crash(A);
    net.run_until(cs(300));
    // A: MDI 30 + (56 * 10) / 256 = 32, adverts every 10 cs, last at 92. B: skew 6, MDI 36.
    assert_eq!(
        transitions(&net, A)[1],
        (32, master(Cause::MasterDownTimerExpired))
    );
    assert_eq!(*sent_at(&net, A).last().unwrap(), 92);
    assert_eq!(
        transitions(&net, B)[1],
        (128, master(Cause::MasterDownTimerExpired))
    );
}

#[test]
fn priority_zero_hands_over_after_skew_time() {
    for (interval, stop, want) in [(100, 1000, 1060), (10, 100, 106)] {
        let mut net = Net::started(vec![cfg(A, 200, interval), cfg(B, 100, interval)]);
        net.run_until(cs(stop));
        net.nodes[A].inst.shutdown(net.now);
        net.flush();
        let (t, last) = net.nodes[A].sent.last().unwrap();
        assert_eq!(
            (centis(*t), last.priority(), last.reason),
            (stop, 0, TransmitReason::Shutdown)
        );
        net.run_until(cs(stop + 1000));
        let from = ip("192.0.2.1");
        assert_eq!(
            transitions(&net, B)[1],
            (want, master(Cause::PriorityZeroReceived { from }))
        );
        let a_tail: Vec<_> = net.nodes[A]
            .events
            .iter()
            .rev()
            .take(2)
            .map(|(_, e)| e.clone())
            .collect();
        assert_eq!(
            a_tail[0],
            Event::Stopped {
                cause: Cause::Shutdown
            }
        );
        assert!(matches!(a_tail[1], Event::RemoveVips(_)));
        assert_eq!(net.nodes[A].inst.poll_timeout(), None);
        assert_eq!(net.nodes[B].inst.counters().priority_zero_received, 1);
    }
}

#[test]
fn higher_priority_backup_preempts() {
    let mut net = Net::new(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.start(B);
    net.run_until(cs(1050));
    net.start(A);
    net.run_until(cs(3000));
    // B alone: master at 360, adverts at 1060..1360, all ignored by A, whose MDT (1050 + 321)
    // fires at 1371.
    assert_eq!(
        transitions(&net, B)[1],
        (360, master(Cause::MasterDownTimerExpired))
    );
    let preempted = Cause::Preempted {
        master: ip("192.0.2.2"),
        master_priority: 100,
    };
    assert_eq!(
        transitions(&net, A),
        vec![(1050, backup(Cause::Startup)), (1371, master(preempted))]
    );
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.1"),
        priority: 200,
    };
    assert_eq!(transitions(&net, B)[2], (1371, backup(outranked)));
    assert_eq!(net.nodes[A].inst.counters().preempt_discards, 4);
    assert_eq!(
        net.nodes[B]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::RemoveVips(_)))
            .count(),
        1
    );
}

#[test]
fn preempt_delay_keeps_accepting_the_lower_master_until_it_ends() {
    let mut a = cfg(A, 200, 100);
    a.preempt_delay = Duration::from_secs(5);
    let mut net = Net::new(vec![a, cfg(B, 100, 100)]);
    net.start(B);
    net.run_until(cs(1050));
    net.start(A);
    net.run_until(cs(3000));
    // Delay ends at 1550: adverts at 1060..1460 accepted, 1560.. ignored; 1460 + 321 = 1781.
    let preempted = Cause::Preempted {
        master: ip("192.0.2.2"),
        master_priority: 100,
    };
    assert_eq!(transitions(&net, A)[1], (1781, master(preempted)));
    assert_eq!(net.nodes[A].inst.counters().preempt_discards, 3);
}

#[test]
fn no_preemption_when_preempt_is_off() {
    let mut a = cfg(A, 200, 100);
    a.preempt = false;
    let mut net = Net::new(vec![a, cfg(B, 100, 100)]);
    net.start(B);
    net.run_until(cs(1050));
    net.start(A);
    net.run_until(cs(6000));
    assert_eq!(transitions(&net, A), vec![(1050, backup(Cause::Startup))]);
    assert_eq!(net.nodes[B].inst.state(), State::Master);
    assert_eq!(net.nodes[A].inst.counters().preempt_discards, 0);
}

#[test]
fn backup_learns_the_master_interval() {
    // A (50) is configured for 100 cs, the master B (100) sends every 50 cs.
    let mut net = Net::started(vec![cfg(A, 50, 100), cfg(B, 100, 50)]);
    net.run_until(cs(1000));
    // B: MDI 150 + (156 * 50) / 256 = 180; adverts at 180, 230, ... 980.
    assert_eq!(
        transitions(&net, B)[1],
        (180, master(Cause::MasterDownTimerExpired))
    );
    assert_eq!(
        net.nodes[A].inst.status().master_adver_interval.centis(),
        50
    );
    net.crash(B);
    net.run_until(cs(3000));
    // Learnt MDI 150 + (206 * 50) / 256 = 190, not the configured 300 + 80.
    assert_eq!(
        transitions(&net, A)[1],
        (980 + 190, master(Cause::MasterDownTimerExpired))
    );
    // As master A sends at its own interval again.
    assert_eq!(sent_at(&net, A)[..2], [1170, 1270]);
}

#[test]
fn penalty_makes_the_master_lose() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 150, 100)]);
    net.run_until(cs(1000));
    net.nodes[A].inst.set_penalty(net.now, 100);
    net.flush();
    assert_eq!(net.nodes[A].inst.effective_priority(), 100);
    let (t, tx) = net.nodes[A].sent.last().unwrap();
    assert_eq!(
        (centis(*t), tx.priority(), tx.reason),
        (1000, 100, TransmitReason::PriorityChanged)
    );
    assert!(net.nodes[A]
        .events
        .iter()
        .any(|(_, e)| *e == Event::PriorityChanged { from: 200, to: 100 }));
    net.run_until(cs(3000));
    // B last accepted A at 921; MDI 300 + (106 * 100) / 256 = 341 -> 1262.
    let preempted = Cause::Preempted {
        master: ip("192.0.2.1"),
        master_priority: 100,
    };
    assert_eq!(transitions(&net, B)[1], (1262, master(preempted)));
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.2"),
        priority: 150,
    };
    assert_eq!(transitions(&net, A)[2], (1262, backup(outranked)));
    // Lifting the penalty makes A pre-empt back after its own MDI: 1262 + 321... of B's adverts.
    net.nodes[A].inst.set_penalty(net.now, 0);
    net.run_until(cs(5000));
    assert_eq!(net.nodes[A].inst.state(), State::Master);
}

#[test]
fn effective_priority_is_clamped() {
    let mut inst = Instance::new(cfg(A, 200, 100)).unwrap();
    inst.set_penalty(Instant::ZERO, 255);
    assert_eq!(inst.effective_priority(), 1);
    inst.set_priority(Instant::ZERO, 255).unwrap();
    assert_eq!(inst.effective_priority(), 1);
    inst.set_penalty(Instant::ZERO, 1);
    assert_eq!(inst.effective_priority(), 254);
    inst.set_penalty(Instant::ZERO, 0);
    assert_eq!(inst.effective_priority(), 255);
    assert_eq!(
        inst.set_priority(Instant::ZERO, 0),
        Err(ConfigError::ZeroPriority)
    );
    // Not running: the change is reported but nothing is sent.
    assert_eq!(inst.poll_transmit(), None);
    assert_eq!(
        inst.poll_event(),
        Some(Event::PriorityChanged { from: 200, to: 1 })
    );
}

#[test]
fn master_hearing_a_lower_master_readvertises_at_once_and_garps_again() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.partitioned = true;
    net.run_until(cs(1050));
    assert_eq!(net.nodes[A].inst.state(), State::Master);
    assert_eq!(net.nodes[B].inst.state(), State::Master);
    net.partitioned = false;
    net.run_until(cs(2000));
    // B's advert at 1060 reaches A first (A's next is due at 1121): A answers at once.
    let (t, tx) = &net.nodes[A]
        .sent
        .iter()
        .find(|(t, _)| centis(*t) > 1050)
        .unwrap();
    assert_eq!(
        (centis(*t), tx.reason),
        (1060, TransmitReason::SplitBrainHeal)
    );
    let heal = Event::SendGratuitousArp {
        reason: GarpReason::SplitBrainHeal,
    };
    let heals: Vec<u64> = net.nodes[A]
        .events
        .iter()
        .filter(|(_, e)| *e == heal)
        .map(|(t, _)| centis(*t))
        .collect();
    assert_eq!(heals, vec![1060; 5]);
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.1"),
        priority: 200,
    };
    assert_eq!(transitions(&net, B)[2], (1060, backup(outranked)));
    // The heal restarted A's advert timer.
    let after: Vec<u64> = sent_at(&net, A)
        .into_iter()
        .filter(|&t| t > 1060)
        .take(2)
        .collect();
    assert_eq!(after, vec![1160, 1260]);
    assert_eq!(net.nodes[A].inst.counters().split_brain_heals, 1);
}

#[test]
fn equal_priority_goes_to_the_higher_address() {
    let mut net = Net::started(vec![cfg(A, 100, 100), cfg(B, 100, 100)]);
    net.run_until(cs(2000));
    // Both time out at 360 and advertise; A (.1) yields to B (.2).
    let tie = Cause::EqualPriorityHigherAddress {
        from: ip("192.0.2.2"),
    };
    assert_eq!(
        transitions(&net, A)[1..],
        [
            (360, master(Cause::MasterDownTimerExpired)),
            (360, backup(tie))
        ]
    );
    assert_eq!(
        transitions(&net, B)[1..],
        [(360, master(Cause::MasterDownTimerExpired))]
    );
    assert_eq!(net.nodes[B].inst.state(), State::Master);
}

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
fn address_owner_is_master_from_startup() {
    let mut net = Net::started(vec![cfg(A, 255, 100), cfg(B, 100, 100)]);
    net.run_until(cs(500));
    assert_eq!(transitions(&net, A), vec![(0, master(Cause::Startup))]);
    assert_eq!(sent_at(&net, A), vec![0, 100, 200, 300, 400, 500]);
    assert_eq!(net.nodes[B].inst.status().master.unwrap().priority, 255);
    // The owner discards adverts (RFC 9568 §7.1).
    let bytes = vectors::V3_IPV4;
    assert_eq!(
        net.inject(A, ip("192.0.2.2"), 255, &bytes[..12])
            .unwrap_err()
            .kind(),
        DropKind::BadAddrCount
    );
    let mut one = bytes;
    one[3] = 1;
    let mut one = one[..12].to_vec();
    one[8..12].copy_from_slice(&[192, 0, 2, 100]);
    let c = vectors::reference_checksum(&vectors::pseudo_v4("192.0.2.2", "224.0.0.18", 12), &one);
    one[6..8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        net.inject(A, ip("192.0.2.2"), 255, &one),
        Err(DropReason::LocalOwner)
    );
}

#[test]
fn master_answers_priority_zero_at_once() {
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.run_until(cs(1000));
    let zero = net.nodes[B].inst.advert.with_priority(0);
    let mut buf = [0u8; 12];
    let tx = Transmit {
        advert: zero,
        checksum_mode: ChecksumMode::Rfc,
        reason: TransmitReason::Shutdown,
    };
    let c = ip("192.0.2.3");
    tx.emit(&mut buf, c, tx.multicast_dst()).unwrap();
    assert_eq!(net.inject(A, c, 255, &buf), Ok(()));
    let (t, tx) = net.nodes[A].sent.last().unwrap();
    assert_eq!(
        (centis(*t), tx.reason, tx.priority()),
        (1000, TransmitReason::PriorityZeroReply, 200)
    );
    assert_eq!(net.nodes[A].inst.poll_timeout(), Some(cs(1100)));
    assert_eq!(net.nodes[A].inst.state(), State::Master);
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
