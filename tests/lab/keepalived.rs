//! The lab scenarios with keepalived: as the other VRRP node (VRRPv3 and VRRPv2, both
//! roles, unicast), and keepalived + HAProxy as the classic pair whose outages ringlb's are
//! compared with.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::nodes::{
    crash_namespace, edited_config, haproxy, haproxy_freeze_thread, haproxy_socket, keepalived,
    keepalived_auth, keepalived_unicast, ringlb, ringlb_config, sysctl, vip_holders, wait_vip,
    Node,
};
use super::{measured, Outages, FREEZE};

/// What keepalived says about adverts it rejects (and about other failures).
pub const PROTOCOL_ERRORS: &str =
    r"(?i)invalid|mismatch|bogus|not present|too short|wrong|error|bad ";

/// Starts a node again under a new log tag.
type Restart<'a> = dyn Fn(&str) -> Node + 'a;

/// keepalived as the other node, both roles: the right node becomes master, a graceful stop
/// hands over and the returning higher-priority node preempts, in both directions; neither
/// side logs protocol errors.
pub fn keepalived_interop(
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
pub fn unicast_and_notify(dir: &Path) {
    let notified = dir.join("notify.log");
    let script = dir.join("notify.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notified.display()),
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
        lines, "INSTANCE VI_1 BACKUP 150\nINSTANCE VI_1 MASTER 150\nINSTANCE VI_1 STOP 150\n",
        "notify calls, with keepalived's arguments"
    );
    eprintln!("lab: unicast interop with keepalived and notify work");
}

/// The classic pair with the same timers: keepalived (VRRPv3, 100ms, priorities 150/100)
/// plus HAProxy in `mode tcp` on each balancer.
pub fn keepalived_haproxy_pair(dir: &Path) -> Outages {
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

    // One HAProxy thread of two frozen (the same 1.5 s as ringlb's frozen worker).
    let socket = haproxy_socket(dir, 1, "classic-restart");
    let freezer = std::cell::RefCell::new(None);
    let frozen = measured(
        "keepalived+HAProxy one thread of two frozen",
        || {
            *freezer.borrow_mut() = Some(thread::spawn(move || {
                haproxy_freeze_thread(&socket, FREEZE)
            }))
        },
        || {
            let done = freezer.borrow_mut().take().expect("the freeze was started");
            done.join().expect("the freezing thread ran")?;
            Ok(FREEZE)
        },
    );
    assert_eq!(
        vip_holders(),
        vec![1],
        "HAProxy's frozen thread does not move the VIP"
    );
    out.frozen_worker = Some(frozen);
    out.split = super::split::split_brains("keepalived+HAProxy", super::SPLIT_REPS_CLASSIC);

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
