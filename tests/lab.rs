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

#[path = "lab/nodes.rs"]
mod nodes;
#[path = "lab/probe.rs"]
mod probe;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nodes::{
    crash_namespace, edited_config, edited_document, haproxy, have, holders, keepalived,
    keepalived_auth, keepalived_ipv6, keepalived_unicast, ringlb, ringlb_config, skip_reason,
    sysctl, vip_holders, wait_holder, wait_vip, Lab, Node, VIP, VIP6,
};
use probe::{Outcome, Probe};
use vrrp::time::{master_down_interval, skew_time};
use vrrp::Interval;

/// Advert interval of the lab configs (conf/lab-lb*.json) and priorities: lb1 150, lb2 100.
const INTERVAL_CS: u16 = 10;
const BACKUP_PRIORITY: u8 = 100;
/// conf/lab-lb*.json: `track.worker_stall`.
const WORKER_STALL: Duration = Duration::from_millis(300);
/// How long a scenario waits for the client to see the service steady again.
const RECOVER_LIMIT: Duration = Duration::from_secs(5);

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

/// What keepalived says about adverts it rejects (and about other failures).
const PROTOCOL_ERRORS: &str = r"(?i)invalid|mismatch|bogus|not present|too short|wrong|error|bad ";

/// Starts a node again under a new log tag.
type Restart<'a> = dyn Fn(&str) -> Node + 'a;

/// Outages of one product, by scenario.
#[derive(Default)]
struct Outages {
    crash: Option<Duration>,
    graceful: Option<Duration>,
    preempt: Option<Duration>,
    stall: Option<Duration>,
    stall_leave: Option<Duration>,
}

#[test]
fn lab() {
    if let Some(why) = skip_reason() {
        eprintln!("lab: skipped: {why}");
        return;
    }
    let _lab = Lab::up();
    let dir = work_dir();
    eprintln!("lab: logs in {}", dir.display());

    let ringlb_numbers = ringlb_pair(&dir);

    if have("keepalived") {
        keepalived_interop(&dir, 3, "100ms", "0.1", None);
        keepalived_interop(&dir, 2, "1s", "1", Some("secret1"));
    } else {
        eprintln!("lab: keepalived interop skipped: keepalived is not installed");
    }

    if have("keepalived") {
        unicast_and_notify(&dir);
    }
    ipv6(&dir);

    let classic = if have("keepalived") && have("haproxy") {
        Some(keepalived_haproxy_pair(&dir))
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
        probe.wait_streak(20, Duration::from_secs(5)),
        "{label}: the service was not steady before the action"
    );
    action();
    if let Err(e) = done() {
        let _ = probe.finish();
        panic!("{label}: {e}");
    }
    let steady = probe.wait_streak(30, RECOVER_LIMIT);
    let outcome = probe.finish();
    assert!(
        steady && outcome.recovered,
        "{label}: no recovery: {outcome:?}"
    );
    eprintln!(
        "lab: {label}: outage {} ms ({} of {} attempts failed)",
        outcome.outage.as_millis(),
        outcome.failures,
        outcome.attempts
    );
    outcome
}

fn ringlb_pair(dir: &Path) -> Outages {
    let conf = |lb: u8| {
        PathBuf::from(format!(
            "{}/conf/lab-lb{lb}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
    };
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

    lb1 = ringlb(1, &conf(1), dir, "pair-stall");
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 preempts again");

    // Stalled workers (fault switch): the watchdog lowers lb1's priority, lb2 takes over.
    let stall = measured(
        "ringlb stalled workers",
        || lb1.signal(libc::SIGUSR2),
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
    lb1.signal(libc::SIGUSR2);
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 master again once its workers run");
    assert!(lb1.log_text().contains("every worker turns its loop again"));

    // Frozen master: the backup takes over; after SIGCONT exactly one VIP owner remains.
    lb1.signal(libc::SIGSTOP);
    let frozen = wait_vip(2, false, Duration::from_secs(3));
    lb1.signal(libc::SIGCONT);
    frozen.expect("lb2 takes over from a frozen lb1");
    wait_vip(1, true, Duration::from_secs(3)).expect("one owner (lb1) after SIGCONT");
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
        || lb1.signal(libc::SIGUSR2),
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    assert!(
        left.outage <= WORKER_STALL + skew + Duration::from_millis(300),
        "stalled-worker outage with stop_adverts {:?}",
        left.outage
    );
    out.stall_leave = Some(left.outage);
    lb1.signal(libc::SIGUSR2);
    wait_vip(1, true, Duration::from_secs(3)).expect("lb1 rejoins and preempts");
    assert!(lb1.log_text().contains("MASTER -> INIT (worker"));
    assert!(lb1
        .log_text()
        .contains("INIT -> BACKUP (every worker turns its loop again)"));

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

/// keepalived as the other node, both roles: the right node becomes master, a graceful stop
/// hands over and the returning higher-priority node preempts, in both directions; neither
/// side logs protocol errors.
fn keepalived_interop(
    dir: &Path,
    version: u8,
    interval: &str,
    advert_int: &str,
    pass: Option<&str>,
) {
    let limit = if version == 2 {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(3)
    };
    let protocol_errors = regex::Regex::new(PROTOCOL_ERRORS).unwrap();
    for ringlb_lb in [1u8, 2] {
        let ka_lb = 3 - ringlb_lb;
        let tag = format!("v{version}-ringlb-lb{ringlb_lb}");
        let label = format!("VRRPv{version}, ringlb on lb{ringlb_lb}, keepalived on lb{ka_lb}");
        let config = ringlb_config(ringlb_lb, version, interval, pass, dir);
        let prio = |lb: u8| if lb == 1 { 150 } else { 100 };
        let auth = keepalived_auth(pass);
        let start_ka = |t: &str| keepalived(ka_lb, prio(ka_lb), version, advert_int, &auth, dir, t);
        let start_ringlb = |t: &str| ringlb(ringlb_lb, &config, dir, t);

        let mut ka = start_ka(&tag);
        let mut rl = start_ringlb(&tag);
        wait_vip(1, true, limit).unwrap_or_else(|e| panic!("{label}: start: {e}"));
        // lb1 leaves gracefully, lb2 takes over; lb1 returns and preempts.
        let (lb1, restart): (&mut Node, Box<Restart<'_>>) = if ringlb_lb == 1 {
            (&mut rl, Box::new(start_ringlb))
        } else {
            (&mut ka, Box::new(start_ka))
        };
        assert!(
            lb1.stop(libc::SIGTERM, Duration::from_secs(5)),
            "{label}: lb1 stops"
        );
        let first_run = lb1.log_text();
        wait_vip(2, true, limit).unwrap_or_else(|e| panic!("{label}: graceful handover: {e}"));
        *lb1 = restart(&format!("{tag}-restart"));
        wait_vip(1, true, limit).unwrap_or_else(|e| panic!("{label}: preemption: {e}"));

        drop(restart);
        let (mut ka_log, mut rl_log) = (String::new(), String::new());
        if ringlb_lb == 1 {
            rl_log.push_str(&first_run);
        } else {
            ka_log.push_str(&first_run);
        }
        ka.stop(libc::SIGTERM, Duration::from_secs(5));
        rl.stop(libc::SIGTERM, Duration::from_secs(5));
        ka_log.push_str(&ka.log_text());
        rl_log.push_str(&rl.log_text());
        let bad: Vec<&str> = ka_log
            .lines()
            .filter(|l| protocol_errors.is_match(l))
            .collect();
        assert!(
            bad.is_empty(),
            "{label}: keepalived logs protocol errors:\n{}",
            bad.join("\n")
        );
        assert!(
            !rl_log.contains("dropped advert"),
            "{label}: ringlb drops:\n{rl_log}"
        );
        assert!(
            ka_log.contains("Entering MASTER STATE") && ka_log.contains("Entering BACKUP STATE"),
            "{label}: keepalived was both master and backup:\n{ka_log}"
        );
        eprintln!("lab: interop {label}: start, graceful handover and preemption work");
    }
}

/// Unicast adverts (no multicast on the link) between ringlb on lb1 and keepalived on lb2,
/// and the notify command run on every transition.
fn unicast_and_notify(dir: &Path) {
    let notified = dir.join("notify.log");
    let script = dir.join("notify.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", notified.display()),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = edited_config(1, "lab-lb1-unicast.json", dir, |vi| {
        vi["unicast_peers"] = serde_json::json!(["192.0.2.3"]);
        vi["notify"] = script.to_str().unwrap().into();
    });
    let unicast = keepalived_unicast("192.0.2.3", "192.0.2.2");
    let mut ka = keepalived(2, 100, 3, "0.1", &unicast, dir, "unicast");
    let mut rl = ringlb(1, &config, dir, "unicast");
    wait_vip(1, true, Duration::from_secs(3)).expect("unicast: lb1 (ringlb) becomes master");
    assert!(rl.stop(libc::SIGTERM, Duration::from_secs(5)));
    wait_vip(2, true, Duration::from_secs(2)).expect("unicast: keepalived takes over");
    ka.stop(libc::SIGTERM, Duration::from_secs(5));
    let ka_log = ka.log_text();
    assert!(
        ka_log.contains("Backup received priority 0 advertisement"),
        "unicast: keepalived heard ringlb's priority-0 advert:\n{ka_log}"
    );
    let rl_log = rl.log_text();
    assert!(rl_log.contains("(unicast to 192.0.2.3)"), "{rl_log}");
    assert!(
        !rl_log.contains("dropped advert"),
        "unicast: ringlb drops:\n{rl_log}"
    );
    // Notify commands run asynchronously; the last one may still be on its way.
    let mut lines = String::new();
    for _ in 0..100 {
        lines = fs::read_to_string(&notified).unwrap_or_default();
        if lines.lines().count() >= 3 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        lines, "VI_1 BACKUP\nVI_1 MASTER\nVI_1 INIT\n",
        "notify calls"
    );
    eprintln!("lab: unicast interop with keepalived and notify work");
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
    let errors = regex::Regex::new(PROTOCOL_ERRORS).unwrap();
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

/// The classic pair with the same timers: keepalived (VRRPv3, 100ms, priorities 150/100)
/// plus HAProxy in `mode tcp` on each balancer.
fn keepalived_haproxy_pair(dir: &Path) -> Outages {
    let mut out = Outages::default();
    for lb in [1, 2] {
        sysctl(lb, "net.ipv4.ip_nonlocal_bind=1");
    }
    let _hap2 = haproxy(2, dir, "classic");
    let _ka2 = keepalived(2, 100, 3, "0.1", "", dir, "classic");
    let mut hap1 = haproxy(1, dir, "classic");
    let mut ka1 = keepalived(1, 150, 3, "0.1", "", dir, "classic");
    wait_vip(1, true, Duration::from_secs(3)).expect("classic: lb1 becomes master");

    let crash = measured(
        "keepalived+HAProxy crash (SIGKILL)",
        || crash_namespace(1),
        || wait_vip(2, false, Duration::from_secs(2)),
    );
    out.crash = Some(crash.outage);
    hap1.reap(Duration::from_secs(2));
    ka1.reap(Duration::from_secs(2));

    let preempt = measured(
        "keepalived+HAProxy preemption",
        || {
            hap1 = haproxy(1, dir, "classic-restart");
            ka1 = keepalived(1, 150, 3, "0.1", "", dir, "classic-restart");
        },
        || wait_vip(1, true, Duration::from_secs(3)),
    );
    out.preempt = Some(preempt.outage);

    let graceful = measured(
        "keepalived+HAProxy graceful stop (SIGTERM)",
        || ka1.signal(libc::SIGTERM),
        || wait_vip(2, true, Duration::from_secs(2)),
    );
    out.graceful = Some(graceful.outage);
    drop(ka1);
    drop(hap1);
    for lb in [1, 2] {
        sysctl(lb, "net.ipv4.ip_nonlocal_bind=0");
    }
    out
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
}
