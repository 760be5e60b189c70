//! The deployment files in `conf/`: every example config passes `ringlb --check`, and the
//! systemd unit passes `systemd-analyze verify` (where systemd is installed) and keeps the
//! commands that reload and stop ringlb the documented way.

pub mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::temp_dir;

/// JSON files in `conf/` that are not ringlb configs.
const NOT_CONFIGS: [&str; 1] = ["grafana-dashboard.json"];

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

#[test]
fn every_example_config_passes_check() {
    let mut files: Vec<PathBuf> = fs::read_dir(conf_dir())
        .expect("read conf/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !NOT_CONFIGS.iter().any(|n| p.ends_with(n)))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the example configs in conf/, found {files:?}"
    );
    for file in &files {
        let output = Command::new(env!("CARGO_BIN_EXE_ringlb"))
            .arg("-c")
            .arg(file)
            .arg("--check")
            .stdin(Stdio::null())
            .output()
            .expect("run ringlb --check");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} fails --check:\n{stderr}",
            file.display()
        );
        assert_eq!(
            stdout.trim_end(),
            format!("{}: configuration is valid", file.display())
        );
    }
}

/// The value of every `Key=` line of the unit (a key may repeat).
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect()
}

#[test]
fn systemd_unit_checks_reloads_and_drains() {
    let path = conf_dir().join("ringlb.service");
    let unit = fs::read_to_string(&path).expect("read conf/ringlb.service");
    let start = unit_values(&unit, "ExecStart");
    assert_eq!(start, ["/usr/local/bin/ringlb -c /etc/ringlb/ringlb.json"]);
    assert_eq!(
        unit_values(&unit, "ExecStartPre"),
        [format!("{} --check", start[0])]
    );
    // The reload waits for its outcome on the control socket, so a failed one fails
    // `systemctl reload`; readiness and the watchdog come from ringlb itself.
    assert_eq!(
        unit_values(&unit, "ExecReload"),
        ["/usr/local/bin/ringlb ctl -c /etc/ringlb/ringlb.json reload"]
    );
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    assert_eq!(unit_values(&unit, "RuntimeDirectory"), ["ringlb"]);
    assert!(!unit_values(&unit, "WatchdogSec").is_empty());
    assert_eq!(unit_values(&unit, "KillSignal"), ["SIGTERM"]);
    for caps in ["AmbientCapabilities", "CapabilityBoundingSet"] {
        assert_eq!(
            unit_values(&unit, caps),
            ["CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW"],
            "{caps}"
        );
    }
    // The unit's stop timeout must outlast the default grace (10 s), or systemd kills the
    // drain half-way.
    let stop = unit_values(&unit, "TimeoutStopSec");
    let secs: u64 = stop
        .first()
        .and_then(|v| v.strip_suffix('s'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("TimeoutStopSec {stop:?} is not N s"));
    assert!(secs > 10, "TimeoutStopSec={secs}s does not outlast grace");

    // systemd-analyze verify wants the binaries to exist: check a copy that runs this build.
    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not installed: unit syntax not verified");
        return;
    };
    assert!(analyze.status.success());
    let dir = temp_dir("unit");
    let copy = dir.join("ringlb.service");
    fs::write(
        &copy,
        unit.replace("/usr/local/bin/ringlb", env!("CARGO_BIN_EXE_ringlb")),
    )
    .expect("write unit copy");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = fs::remove_dir_all(&dir);
    // Warnings about the unit name it; others (about the host's own units) are not ours.
    assert!(
        output.status.success() && !stderr.contains("ringlb.service"),
        "systemd-analyze verify {}: {}\n{stderr}",
        path.display(),
        output.status
    );
}
