//! The Debian package: `scripts/package` builds a .deb (with the binary under test), which
//! `dpkg -i` installs: the binary, the unit, the example config, the service user; the
//! installed binary checks the installed config and says its version; `dpkg --purge`
//! removes it all again.

pub mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::temp_dir;

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_installs_checks_its_config_and_purges() {
    let dir = temp_dir("deb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package");
    let out = run(
        script.to_str().unwrap(),
        &[
            "--binary",
            env!("CARGO_BIN_EXE_ringlb"),
            "-o",
            dir.to_str().unwrap(),
        ],
    );
    let deb = ok(&out, "scripts/package").trim().to_string();
    assert!(deb.ends_with(".deb"), "{deb}");

    ok(&run("dpkg", &["-i", &deb]), "dpkg -i");
    let version = ok(&run("/usr/sbin/ringlb", &["--version"]), "ringlb --version");
    assert!(version.starts_with("ringlb "), "{version}");
    let check = ok(
        &run(
            "/usr/sbin/ringlb",
            &["-c", "/etc/ringlb/ringlb.json", "--check"],
        ),
        "ringlb --check",
    );
    assert_eq!(check, "/etc/ringlb/ringlb.json: configuration is valid\n");
    ok(&run("getent", &["passwd", "ringlb"]), "the ringlb user");
    let unit = std::fs::read_to_string("/lib/systemd/system/ringlb.service").expect("unit");
    assert!(unit.contains("ExecStart=/usr/sbin/ringlb -c /etc/ringlb/ringlb.json"));
    let sysctl = std::fs::read_to_string("/usr/lib/sysctl.d/60-ringlb.conf").expect("sysctl.d");
    assert!(
        sysctl.contains("\nnet.ipv4.tcp_migrate_req = 1\n")
            && sysctl.contains("\nnet.ipv4.tcp_fwmark_accept = 1\n"),
        "{sysctl}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req")
            .ok()
            .as_deref(),
        Some("1\n"),
        "postinst applies it"
    );

    ok(&run("dpkg", &["--purge", "ringlb"]), "dpkg --purge");
    assert!(!Path::new("/usr/sbin/ringlb").exists());
    assert!(!run("getent", &["passwd", "ringlb"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
