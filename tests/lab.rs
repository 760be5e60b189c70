//! End-to-end VRRP in the namespace lab (`scripts/lab`): two balancers, two nginx servers and
//! a client that opens a new connection through the VIP every 10 ms and records the outage.
//!
//! - ringlb pair: crash (SIGKILL), preemption by the returning master, graceful stop
//!   (SIGTERM), stalled workers (the test fault switch), SIGSTOP/SIGCONT;
//! - interop with keepalived 2.2.7 as the other node, VRRPv3 and VRRPv2, both roles;
//! - the same crash / graceful / preemption outages for keepalived + HAProxy, printed beside
//!   ringlb's (`cargo test --test lab -- --nocapture` shows the table).
//!
//! Root only: skipped with a message otherwise. One `#[test]` runs everything in sequence on
//! one lab (a file lock keeps other runs out); the lab is torn down even on failure.

#[path = "lab/inject.rs"]
mod inject;
#[path = "lab/keepalived.rs"]
mod keepalived;
#[path = "lab/nodes.rs"]
mod nodes;
#[path = "lab/probe.rs"]
mod probe;
#[path = "lab/split.rs"]
mod split;
#[path = "lab/tracking.rs"]
mod tracking;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nodes::{
    crash_namespace, edited_config, edited_document, have, holders, keepalived_ipv6,
    relaxed_config, ringlb, skip_reason, vip_holders, wait_holder, wait_vip, Lab, VIP, VIP6,
};
use probe::{Outcome, Probe};
use vrrp::time::{master_down_interval, skew_time};
use vrrp::Interval;

/// Advert interval of the lab configs (conf/lab-lb*.json) and priorities: lb1 150, lb2 100.
const INTERVAL_CS: u16 = 10;
const BACKUP_PRIORITY: u8 = 100;
/// conf/lab-lb*.json: `track.worker_stall`.
const WORKER_STALL: Duration = Duration::from_millis(300);
/// How long a scenario waits for the client to see the service steady (before the action
/// and after it): generous, for a loaded 2-core CI machine.
const STEADY_LIMIT: Duration = Duration::from_secs(10);

fn interval() -> Interval {
    Interval::from_centis(INTERVAL_CS).unwrap()
}

fn target() -> SocketAddr {
    format!("{VIP}:80").parse().unwrap()
}

fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringlb-lab-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Outages of one product, by scenario.
#[derive(Default)]
struct Outages {
    crash: Option<Duration>,
    /// The serving process killed, the box (and ringlb's supervisor) alive.
    killed: Option<Duration>,
    graceful: Option<Duration>,
    preempt: Option<Duration>,
    stall: Option<Duration>,
    stall_leave: Option<Duration>,
    /// A tracked interface going down (FAULT).
    fault: Option<Duration>,
    /// A tracked script failing, its weight taking the master under the backup.
    script: Option<Duration>,
    /// One of the master's two workers (HAProxy threads) frozen for [`FREEZE`].
    frozen_worker: Option<Outcome>,
    /// The client-seen outage after each healed split brain.
    split: Vec<Outcome>,
}

/// Split brains the ringlb pair must heal within a second, every one of them.
const SPLIT_REPS: usize = 10;
/// The same for keepalived + HAProxy, for the table (not a pass/fail bar: it races).
const SPLIT_REPS_CLASSIC: usize = 3;

/// How long the frozen-worker scenario keeps one worker (or HAProxy thread) stopped.
const FREEZE: Duration = Duration::from_millis(1500);

#[test]
fn lab() {
    if let Some(why) = skip_reason() {
        eprintln!("lab: skipped: {why}");
        return;
    }
    let _lab = Lab::up();
    let dir = work_dir();
    eprintln!("lab: logs in {}", dir.display());

    let mut ringlb_numbers = ringlb_pair(&dir);
    ringlb_numbers.split = ringlb_split_brain(&dir);
    malformed_adverts(&dir);
    tracking::tracking(&dir, &mut ringlb_numbers);

    if have("keepalived") {
        keepalived::keepalived_interop(&dir, 3, "100ms", "0.1", None);
        keepalived::keepalived_interop(&dir, 2, "1s", "1", Some("secret1"));
    } else {
        eprintln!("lab: keepalived interop skipped: keepalived is not installed");
    }

    if have("keepalived") {
        keepalived::unicast_and_notify(&dir);
    }
    ipv6(&dir);

    let classic = if have("keepalived") && have("haproxy") {
        Some(keepalived::keepalived_haproxy_pair(&dir))
    } else {
        eprintln!("lab: keepalived + HAProxy comparison skipped: not installed");
        None
    };
    print_table(&ringlb_numbers, classic.as_ref());
}

/// Runs `action` while the client probes the VIP, waits for `done` (bounded) and for the
/// client to see the service steady again, and returns what the client saw.
fn measured(
    label: &str,
    action: impl FnOnce(),
    done: impl Fn() -> Result<Duration, String>,
) -> Outcome {
    measured_at(target(), label, action, done)
}

/// [`measured`] against any address (the IPv6 VIP).
fn measured_at(
    target: SocketAddr,
    label: &str,
    action: impl FnOnce(),
    done: impl Fn() -> Result<Duration, String>,
) -> Outcome {
    let probe = Probe::start("lab-client", target);
    assert!(
        probe.wait_streak(10, STEADY_LIMIT),
        "{label}: the service was not steady before the action"
    );
    action();
    if let Err(e) = done() {
        let _ = probe.finish();
        panic!("{label}: {e}");
    }
    let steady = probe.wait_streak(20, STEADY_LIMIT);
    let outcome = probe.finish();
    // Steady again is the recovery; a lone failure after that (the last attempt timing out
    // on a loaded machine) still counts in the outage, it does not fail the scenario.
    assert!(steady, "{label}: no recovery: {outcome:?}");
    eprintln!(
        "lab: {label}: outage {} ms ({} of {} attempts failed)",
        outcome.outage.as_millis(),
        outcome.failures,
        outcome.attempts
    );
    outcome
}

fn ringlb_pair(dir: &Path) -> Outages {
    // The lab configs as they are (worker_stall 300ms) for the stalled-worker scenario,
    // relaxed ones for the rest.
    let as_shipped = PathBuf::from(format!("{}/conf/lab-lb1.json", env!("CARGO_MANIFEST_DIR")));
    let conf = |lb: u8| relaxed_config(lb, dir);
    let mdi = master_down_interval(BACKUP_PRIORITY, interval());
    let skew = skew_time(BACKUP_PRIORITY, interval());
    let mut out = Outages::default();

    let lb2 = ringlb(2, &conf(2), dir, "pair");
    let mut lb1 = ringlb(1, &conf(1), dir, "pair");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 (priority 150) becomes master");

    // Crash: the whole box goes (SIGKILL); its VIP stays configured on its interface.
    let crash = measured(
        "ringlb crash (SIGKILL)",
        || crash_namespace(1),
        || wait_vip(2, false, Duration::from_secs(2)),
    );
    lb1.reap(Duration::from_secs(2));
    assert!(
        crash.outage <= mdi + Duration::from_millis(200),
        "crash outage {:?} over Master_Down_Interval {mdi:?} + 0.2 s",
        crash.outage
    );
    out.crash = Some(crash.outage);
    assert!(
        lb2.log_text()
            .contains("BACKUP -> MASTER (master down timer expired)"),
        "lb2 logs the takeover with its cause:\n{}",
        lb2.log_text()
    );

    // The old master returns with the higher priority: it clears its stale VIP and preempts.
    let preempt = measured(
        "ringlb preemption",
        || lb1 = ringlb(1, &conf(1), dir, "pair-restart"),
        || wait_vip(1, true, Duration::from_secs(3)),
    );
    assert!(
        preempt.outage <= Duration::from_millis(500),
        "preemption outage {:?}",
        preempt.outage
    );
    out.preempt = Some(preempt.outage);
    assert!(lb1
        .log_text()
        .contains("left on veth-lb1 from an earlier run"));

    // The serving process dies (SIGKILL, as the OOM killer would), the box lives: the
    // supervising parent takes the VIP off and sends priority 0, as a graceful stop does.
    let serving = lb1.children();
    assert_eq!(serving.len(), 1, "lb1 runs as supervisor + serving child");
    let killed = measured(
        "ringlb serving process killed (SIGKILL)",
        // SAFETY: plain syscall on the lab's own process.
        || unsafe {
            libc::kill(serving[0], libc::SIGKILL);
        },
        || wait_vip(2, true, Duration::from_secs(2)),
    );
    lb1.reap(Duration::from_secs(2));
    // The goal: a crash fails over as fast as a graceful stop, under 150 ms.
    assert!(
        killed.outage <= Duration::from_millis(150),
        "killed serving process: outage {:?} over 150 ms",
        killed.outage
    );
    out.killed = Some(killed.outage);
    assert!(
        lb1.log_text()
            .contains("was killed by SIGKILL; releasing its VIPs"),
        "the supervisor says what happened:\n{}",
        lb1.log_text()
    );
    assert!(lb2
        .log_text()
        .contains("BACKUP -> MASTER (master 192.0.2.2 left with priority 0)"));
    lb1 = ringlb(1, &conf(1), dir, "pair-after-kill");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 preempts after its restart");

    // Graceful stop: priority 0, VIP removed, then the drain.
    let graceful = measured(
        "ringlb graceful stop (SIGTERM)",
        || lb1.signal(libc::SIGTERM),
        || wait_vip(2, true, Duration::from_secs(2)),
    );
    assert!(
        graceful.outage <= skew + Duration::from_millis(100),
        "graceful outage {:?} over Skew_Time {skew:?} + 0.1 s",
        graceful.outage
    );
    out.graceful = Some(graceful.outage);
    assert!(
        lb1.stop(libc::SIGTERM, Duration::from_secs(5)),
        "lb1 exits after SIGTERM"
    );
    assert!(lb2
        .log_text()
        .contains("BACKUP -> MASTER (master 192.0.2.2 left with priority 0)"));

    lb1 = ringlb(1, &as_shipped, dir, "pair-stall");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 preempts again");

    // Stalled workers (fault switch): the watchdog lowers lb1's priority, lb2 takes over.
    let stall = measured(
        "ringlb stalled workers",
        || lb1.signal(libc::SIGRTMIN() + 3),
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    assert!(
        stall.outage <= WORKER_STALL + mdi + Duration::from_millis(500),
        "stalled-worker outage {:?}",
        stall.outage
    );
    out.stall = Some(stall.outage);
    assert!(lb1.log_text().contains("has not turned its loop for"));
    // Workers resume: the penalty is lifted and lb1 preempts back.
    lb1.signal(libc::SIGRTMIN() + 3);
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 master again once its workers run");
    // With `min_workers` 1 of 2, the first worker to turn again restores the priority.
    let log = lb1.log_text();
    assert!(
        log.contains("every worker turns its loop again")
            || log.contains("1 of 2 workers turn their loop again"),
        "{log}"
    );

    // One worker of two frozen: it leaves the accept path (worker_stall), the other takes
    // every new connection, the VIP stays (track.min_workers defaults to half the workers).
    let frozen_worker = measured(
        "ringlb one worker of two frozen",
        || lb1.signal(libc::SIGRTMIN() + 4),
        || {
            thread::sleep(FREEZE);
            lb1.signal(libc::SIGRTMIN() + 4);
            Ok(FREEZE)
        },
    );
    assert_eq!(
        vip_holders(),
        vec![1],
        "one frozen worker does not move the VIP"
    );
    assert!(
        frozen_worker.failures <= 2,
        "one frozen worker of two cost {} connections (HAProxy's bar: 2)",
        frozen_worker.failures
    );
    assert!(
        lb1.log_text().contains("back in the accept path"),
        "the worker rejoins:\n{}",
        lb1.log_text()
    );
    out.frozen_worker = Some(frozen_worker);

    // Frozen master: the backup takes over; after SIGCONT exactly one VIP owner remains.
    lb1.signal(libc::SIGSTOP);
    let frozen = wait_vip(2, false, Duration::from_secs(3));
    lb1.signal(libc::SIGCONT);
    frozen.expect("lb2 takes over from a frozen lb1");
    wait_vip(1, true, Duration::from_secs(3)).expect("one owner (lb1) after SIGCONT");
    assert!(
        lb1.log_text().contains("split brain healing"),
        "lb1 heard lb2's adverts queued while it was frozen and re-announced"
    );
    for _ in 0..20 {
        assert_eq!(
            vip_holders(),
            vec![1],
            "exactly one VIP owner after SIGCONT"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let after = measured(
        "ringlb after SIGCONT (no action)",
        || {},
        || Ok(Duration::ZERO),
    );
    assert_eq!(after.failures, 0, "service steady after SIGCONT");

    // The other fate-sharing action: a stalled master leaves the cluster (priority 0, VIP
    // released) instead of lowering its priority, and rejoins as backup when healthy.
    assert!(lb1.stop(libc::SIGTERM, Duration::from_secs(5)));
    let leave = edited_config(1, "lab-lb1-stop-adverts.json", dir, |vi| {
        vi["track"] = serde_json::json!({ "worker_stall": "300ms", "stop_adverts": true });
    });
    lb1 = ringlb(1, &leave, dir, "pair-stop-adverts");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 preempts with stop_adverts");
    let left = measured(
        "ringlb stalled workers (stop_adverts)",
        || lb1.signal(libc::SIGRTMIN() + 3),
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    assert!(
        left.outage <= WORKER_STALL + skew + Duration::from_millis(300),
        "stalled-worker outage with stop_adverts {:?}",
        left.outage
    );
    out.stall_leave = Some(left.outage);
    lb1.signal(libc::SIGRTMIN() + 3);
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 rejoins and preempts");
    assert!(lb1.log_text().contains("MASTER -> INIT (worker"));
    assert!(lb1
        .log_text()
        .lines()
        .any(|l| l.contains("INIT -> BACKUP (") && l.contains("loop again")));

    for node in [&lb1, &lb2] {
        let log = node.log_text();
        assert!(
            !log.contains("dropped advert"),
            "{}: drops:\n{log}",
            node.name
        );
        assert!(!log.contains("cannot "), "{}: errors:\n{log}", node.name);
    }
    drop(lb1);
    drop(lb2);
    assert_eq!(
        vip_holders(),
        Vec::<u8>::new(),
        "both stopped: no VIP left behind"
    );
    out
}

/// A split brain healed at random moments, [`SPLIT_REPS`] times: the client path is whole
/// again within a second every time.
fn ringlb_split_brain(dir: &Path) -> Vec<Outcome> {
    let lb2 = ringlb(2, &relaxed_config(2, dir), dir, "split");
    let lb1 = ringlb(1, &relaxed_config(1, dir), dir, "split");
    let outcomes = split::split_brains("ringlb", SPLIT_REPS);
    let over: Vec<_> = outcomes
        .iter()
        .filter(|o| o.outage > split::HEAL_LIMIT)
        .collect();
    assert!(
        over.is_empty(),
        "split brains not healed within {:?}: {over:?}\nlb1:\n{}\nlb2:\n{}",
        split::HEAL_LIMIT,
        lb1.log_text(),
        lb2.log_text()
    );
    assert!(lb1.log_text().contains("split brain healing"));
    outcomes
}

/// Adverts a master must not act on: a higher priority but sent from off-link (TTL 64), a
/// bad checksum, a truncated message and an unknown version. Each is dropped and counted;
/// the master stays master.
fn malformed_adverts(dir: &Path) {
    let mut lb1 = ringlb(1, &relaxed_config(1, dir), dir, "malformed");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 master alone");
    let client = std::net::Ipv4Addr::new(192, 0, 2, 100);
    let good = inject::advert(client, 200);
    let mut bad_checksum = good.clone();
    bad_checksum[6] ^= 0xff;
    let mut bad_version = good.clone();
    bad_version[0] = 0x11;
    inject::send_multicast(
        "lab-client",
        client,
        vec![
            (64, good),
            (255, bad_checksum),
            (255, vec![0x31, 51, 200]),
            (255, bad_version),
        ],
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(vip_holders(), vec![1], "lb1 stays master");
    assert!(lb1.stop(libc::SIGTERM, Duration::from_secs(5)));
    let log = lb1.log_text();
    assert!(
        log.contains("dropped advert from 192.0.2.100: TTL/hop limit 64 is not 255"),
        "{log}"
    );
    assert!(
        log.contains("received 0 dropped 4,"),
        "every bad advert counted:\n{log}"
    );
    assert!(!log.contains("-> BACKUP (advert"), "{log}");
    eprintln!("lab: off-link and malformed adverts are dropped and counted");
}

/// Dual stack: beside VI_1, an instance VI_6 (VRID 52) owns 2001:db8::10/64, the frontend
/// listens on both VIPs, web1 is reached over IPv6 and web2 over IPv4. Graceful handover
/// and preemption move both VIPs (the client follows the unsolicited NAs), then keepalived
/// is the backup over IPv6.
fn ipv6(dir: &Path) {
    let target: SocketAddr = format!("[{VIP6}]:80").parse().unwrap();
    let conf = |lb: u8| {
        edited_document(lb, &format!("lab-lb{lb}-dual-stack.json"), dir, |json| {
            json["frontends"][0]["bind"] =
                serde_json::json!([format!("{VIP}:80"), format!("[{VIP6}]:80")]);
            json["backends"][0]["servers"][0]["addr"] = "[2001:db8::21]:80".into();
            let mut vi = json["vrrp"]["instances"][0].clone();
            vi["name"] = "VI_6".into();
            vi["vrid"] = 52.into();
            vi["vips"] = serde_json::json!([format!("{VIP6}/64")]);
            json["vrrp"]["instances"].as_array_mut().unwrap().push(vi);
        })
    };
    let skew = skew_time(BACKUP_PRIORITY, interval());
    let lb2 = ringlb(2, &conf(2), dir, "ipv6");
    let mut lb1 = ringlb(1, &conf(1), dir, "ipv6");
    wait_holder(VIP6, 1, true, Duration::from_secs(3)).expect("IPv6: lb1 becomes master");
    wait_vip(1, true, Duration::from_secs(1)).expect("dual stack: lb1 holds the IPv4 VIP too");
    let graceful = measured_at(
        target,
        "IPv6 ringlb graceful stop (SIGTERM)",
        || lb1.signal(libc::SIGTERM),
        || wait_holder(VIP6, 2, true, Duration::from_secs(2)),
    );
    wait_vip(2, true, Duration::from_secs(1)).expect("dual stack: the IPv4 VIP moves too");
    assert!(
        graceful.outage <= skew + Duration::from_millis(100),
        "IPv6 graceful outage {:?}",
        graceful.outage
    );
    assert!(lb1.stop(libc::SIGTERM, Duration::from_secs(5)));
    let preempt = measured_at(
        target,
        "IPv6 ringlb preemption",
        || lb1 = ringlb(1, &conf(1), dir, "ipv6-restart"),
        || wait_holder(VIP6, 1, true, Duration::from_secs(3)),
    );
    wait_vip(1, true, Duration::from_secs(1)).expect("dual stack: the IPv4 VIP comes back");
    assert!(
        preempt.outage <= Duration::from_millis(500),
        "IPv6 preemption outage {:?}",
        preempt.outage
    );
    for node in [&lb1, &lb2] {
        let log = node.log_text();
        assert!(log.contains("(multicast ff02::12)"), "{log}");
        assert!(
            !log.contains("dropped advert") && !log.contains("cannot "),
            "{log}"
        );
        assert!(!log.contains("failed"), "{}: {log}", node.name);
    }
    drop(lb1);
    drop(lb2);
    assert_eq!(holders(VIP6), Vec::<u8>::new(), "IPv6: no VIP left behind");
    assert_eq!(
        vip_holders(),
        Vec::<u8>::new(),
        "dual stack: no IPv4 VIP left behind"
    );

    if !have("keepalived") {
        return;
    }
    let mut ka = keepalived_ipv6(2, 100, dir, "ipv6");
    let mut rl = ringlb(1, &conf(1), dir, "ipv6-keepalived");
    wait_holder(VIP6, 1, true, Duration::from_secs(3)).expect("IPv6 interop: ringlb master");
    assert!(rl.stop(libc::SIGTERM, Duration::from_secs(5)));
    wait_holder(VIP6, 2, true, Duration::from_secs(2))
        .expect("IPv6 interop: keepalived takes over");
    rl = ringlb(1, &conf(1), dir, "ipv6-keepalived-restart");
    wait_holder(VIP6, 1, true, Duration::from_secs(3)).expect("IPv6 interop: ringlb preempts");
    ka.stop(libc::SIGTERM, Duration::from_secs(5));
    let ka_log = ka.log_text();
    let errors = regex::Regex::new(keepalived::PROTOCOL_ERRORS).unwrap();
    let bad: Vec<&str> = ka_log.lines().filter(|l| errors.is_match(l)).collect();
    assert!(
        bad.is_empty(),
        "IPv6: keepalived logs protocol errors:\n{}",
        bad.join("\n")
    );
    assert!(
        ka_log.contains("Master received advert from fe80::"),
        "{ka_log}"
    );
    assert!(!rl.log_text().contains("dropped advert"));
    eprintln!("lab: IPv6 handover, preemption and keepalived interop work");
}

fn print_table(ringlb: &Outages, classic: Option<&Outages>) {
    let ms = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
    let c = |f: fn(&Outages) -> Option<Duration>| ms(classic.and_then(f));
    eprintln!("\nlab: client-seen outage, VRRPv3 advert 100ms, priorities 150/100, new connection every 10ms");
    eprintln!("| scenario | ringlb | keepalived + HAProxy |");
    eprintln!("|---|---|---|");
    eprintln!(
        "| master crash (SIGKILL) | {} | {} |",
        ms(ringlb.crash),
        c(|o| o.crash)
    );
    eprintln!(
        "| serving process killed (SIGKILL), box alive | {} | not comparable: HAProxy's death leaves keepalived master |",
        ms(ringlb.killed)
    );
    eprintln!(
        "| graceful stop (SIGTERM) | {} | {} |",
        ms(ringlb.graceful),
        c(|o| o.graceful)
    );
    eprintln!(
        "| old master preempts back | {} | {} |",
        ms(ringlb.preempt),
        c(|o| o.preempt)
    );
    eprintln!(
        "| master's workers stalled, penalty 60 | {} | not detected |",
        ms(ringlb.stall)
    );
    eprintln!(
        "| master's workers stalled, stop_adverts | {} | not detected |",
        ms(ringlb.stall_leave)
    );
    let failed = |o: Option<&Outcome>| {
        o.map_or("-".to_string(), |o| {
            format!("{} failed ({} ms)", o.failures, o.outage.as_millis())
        })
    };
    eprintln!(
        "| one of two workers (threads) frozen {} ms | {} | {} |",
        FREEZE.as_millis(),
        failed(ringlb.frozen_worker.as_ref()),
        failed(classic.and_then(|o| o.frozen_worker.as_ref()))
    );
    eprintln!(
        "| split brain (5 s cut) healed, client outage after the heal | {} | {} |",
        split::summary(&ringlb.split),
        classic.map_or("-".to_string(), |o| split::summary(&o.split))
    );
    eprintln!(
        "| tracked interface down (FAULT) | {} | - |",
        ms(ringlb.fault)
    );
    eprintln!(
        "| tracked script fails, weight -60 | {} | - |",
        ms(ringlb.script)
    );
}
