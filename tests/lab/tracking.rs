//! keepalived's tracking and notify hooks in the lab: a tracked interface going down (or
//! losing the address it had) puts the master in FAULT (priority 0, VIP released,
//! `notify_fault`), its return makes it a backup that preempts back; a failing script with a negative weight lowers the priority
//! under the backup's, which takes over at once (no Master_Down_Interval); `notify` gets
//! keepalived's arguments.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::nodes::{edited_document, relaxed_config, ringlb, wait_vip};
use crate::{measured, Outages};

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {}", args.join(" "));
}

/// Adds (or deletes) the tracked link's own address.
fn trk0_address(add_or_del: &str) {
    ip(&[
        "-n",
        "lab-lb1",
        "addr",
        add_or_del,
        "192.0.2.251/32",
        "dev",
        "trk0",
    ]);
}

/// Waits (bounded) until `path` has at least `n` lines; returns its text.
fn lines(path: &Path, n: usize) -> String {
    let mut text = String::new();
    for _ in 0..150 {
        text = fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    text
}

pub fn tracking(dir: &Path, out: &mut Outages) {
    // A veth pair inside lb1 (this kernel has no dummy links): trk0 is the tracked one.
    ip(&[
        "-n", "lab-lb1", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ]);
    ip(&["-n", "lab-lb1", "link", "set", "trk1", "up"]);
    ip(&["-n", "lab-lb1", "link", "set", "trk0", "up"]);
    // An address of its own, so that losing it counts too.
    trk0_address("add");
    let ok = dir.join("chk-ok");
    fs::write(&ok, "").unwrap();
    let notified = dir.join("notify-args.log");
    let faults = dir.join("notify-fault.log");
    let notify = dir.join("notify.sh");
    fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notified.display()),
    )
    .unwrap();
    fs::set_permissions(&notify, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = edited_document(1, "lab-lb1-tracking.json", dir, |json| {
        json["vrrp"]["scripts"] = serde_json::json!([{
            "name": "chk_service", "script": format!("test -e {}", ok.display()),
            "interval": "100ms", "weight": -60, "rise": 1, "fall": 1
        }]);
        let vi = &mut json["vrrp"]["instances"][0];
        vi["track_scripts"] = serde_json::json!([{ "name": "chk_service" }]);
        vi["track_interfaces"] = serde_json::json!([{ "name": "trk0" }]);
        vi["notify"] = notify.to_str().unwrap().into();
        vi["notify_fault"] = format!("echo fault >> {}", faults.display()).into();
    });
    let lb2 = ringlb(2, &relaxed_config(2, dir), dir, "tracking");
    let mut lb1 = ringlb(1, &config, dir, "tracking");
    wait_vip(1, true, Duration::from_secs(3)).expect("tracking: lb1 becomes master");

    // The tracked link goes down: FAULT, like a stop (priority 0, VIP released).
    let fault = measured(
        "ringlb track_interface down (FAULT)",
        || ip(&["-n", "lab-lb1", "link", "set", "trk0", "down"]),
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    out.fault = Some(fault.outage);
    assert!(
        lines(&faults, 1).starts_with("fault"),
        "notify_fault ran on FAULT"
    );
    assert!(lb1.log_text().contains("fault: interface trk0 down"));
    assert!(
        lb1.log_text().contains("MASTER -> FAULT"),
        "{}",
        lb1.log_text()
    );
    ip(&["-n", "lab-lb1", "link", "set", "trk0", "up"]);
    wait_vip(1, true, Duration::from_secs(3)).expect("tracking: lb1 back from FAULT, preempts");

    // The tracked interface loses its address, the link staying up: FAULT as well.
    measured(
        "ringlb track_interface address removed (FAULT)",
        || {
            ip(&[
                "-n",
                "lab-lb1",
                "addr",
                "del",
                "192.0.2.251/32",
                "dev",
                "trk0",
            ])
        },
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    assert!(lb1
        .log_text()
        .contains("tracked interface trk0 is down (its addresses are gone)"));
    trk0_address("add");
    wait_vip(1, true, Duration::from_secs(3)).expect("tracking: lb1 back once addressed");

    // The script fails: 150 - 60 = 90 < 100, and the backup takes over on hearing it.
    let lowered = measured(
        "ringlb track_script fails (weight -60)",
        || fs::remove_file(&ok).unwrap(),
        || wait_vip(2, true, Duration::from_secs(3)),
    );
    out.script = Some(lowered.outage);
    assert!(lb2
        .log_text()
        .contains("BACKUP -> MASTER (preempted master 192.0.2.2 of lower priority 90)"));
    fs::write(&ok, "").unwrap();
    wait_vip(1, true, Duration::from_secs(3)).expect("tracking: lb1 preempts back");

    assert!(lb1.stop(libc::SIGTERM, Duration::from_secs(5)));
    let want = [
        "INSTANCE VI_1 BACKUP 150",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 FAULT 150",
        "INSTANCE VI_1 BACKUP 150",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 FAULT 150",
        "INSTANCE VI_1 BACKUP 150",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 BACKUP 90",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 STOP 150",
    ];
    // The STOP script may still be running as ringlb exits.
    let args = lines(&notified, want.len());
    let got: Vec<&str> = args.lines().collect();
    assert_eq!(got, want, "notify got keepalived's arguments");
    drop(lb2);
    ip(&["-n", "lab-lb1", "link", "del", "trk0"]);
    eprintln!("lab: tracking and notify hooks work");
}
