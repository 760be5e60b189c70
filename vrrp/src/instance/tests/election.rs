//! Who becomes master and exactly when: election, takeover, priority-0 handover, preemption,
//! learned interval, fate-sharing penalty and the split-brain heal.

use std::time::Duration;

use super::*;
use crate::drops::DropKind;
use crate::wire::{vectors, ChecksumMode};

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
    // B alone: master at 360. A, started at 1050, takes over on B's first advert (1060)
    // rather than letting its Master_Down_Timer run out (1050 + 321): the outcome is known.
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
        vec![(1050, backup(Cause::Startup)), (1060, master(preempted))]
    );
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.1"),
        priority: 200,
    };
    assert_eq!(transitions(&net, B)[2], (1060, backup(outranked)));
    assert_eq!(net.nodes[A].inst.counters().preempt_discards, 1);
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
    // A tells the backups at once; B (150) takes over on hearing it, and A, outranked,
    // yields with one last advert.
    let told: Vec<(u64, u8, TransmitReason)> = net.nodes[A]
        .sent
        .iter()
        .filter(|(t, _)| centis(*t) == 1000)
        .map(|(t, tx)| (centis(*t), tx.priority(), tx.reason))
        .collect();
    assert_eq!(
        told,
        [
            (1000, 100, TransmitReason::PriorityChanged),
            (1000, 100, TransmitReason::Yielding)
        ]
    );
    assert!(net.nodes[A]
        .events
        .iter()
        .any(|(_, e)| *e == Event::PriorityChanged { from: 200, to: 100 }));
    net.run_until(cs(3000));
    // Not after B's Master_Down_Interval (341, at 1262): at once.
    let preempted = Cause::Preempted {
        master: ip("192.0.2.1"),
        master_priority: 100,
    };
    assert_eq!(transitions(&net, B)[1], (1000, master(preempted)));
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.2"),
        priority: 150,
    };
    assert_eq!(transitions(&net, A)[2], (1000, backup(outranked)));
    // Lifting the penalty at 3000 makes A pre-empt back on B's next advert.
    net.nodes[A].inst.set_penalty(net.now, 0);
    net.run_until(cs(5000));
    let preempted = Cause::Preempted {
        master: ip("192.0.2.2"),
        master_priority: 150,
    };
    let back = transitions(&net, A)[3].clone();
    assert_eq!(back.1, master(preempted));
    assert!(
        back.0 > 3000 && back.0 <= 3100,
        "preempted back at {}",
        back.0
    );
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
fn a_yielding_master_tells_the_winner_which_then_garps_whoever_spoke_first() {
    // The other order of the test above: the link heals just before A's advert (due at
    // 1121), after B's at 1060 was lost. B yields on hearing A; its last advert is what
    // tells A that B held the addresses, so A announces them again.
    let mut net = Net::started(vec![cfg(A, 200, 100), cfg(B, 100, 100)]);
    net.partitioned = true;
    net.run_until(cs(1100));
    assert_eq!(net.nodes[B].inst.state(), State::Master);
    net.partitioned = false;
    net.run_until(cs(2000));
    let outranked = Cause::HigherPriorityAdvert {
        from: ip("192.0.2.1"),
        priority: 200,
    };
    assert_eq!(transitions(&net, B)[2], (1121, backup(outranked)));
    let yielded: Vec<(u64, TransmitReason)> = net.nodes[B]
        .sent
        .iter()
        .filter(|(t, _)| centis(*t) >= 1121)
        .map(|(t, tx)| (centis(*t), tx.reason))
        .collect();
    assert_eq!(yielded, vec![(1121, TransmitReason::Yielding)]);
    let heal = Event::SendGratuitousArp {
        reason: GarpReason::SplitBrainHeal,
    };
    let heals: Vec<u64> = net.nodes[A]
        .events
        .iter()
        .filter(|(_, e)| *e == heal)
        .map(|(t, _)| centis(*t))
        .collect();
    assert_eq!(heals, vec![1121; 5]);
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
