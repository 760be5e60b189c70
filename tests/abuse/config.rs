//! Abuse: config values that pass JSON parsing but would hurt at run time (durations that
//! wrap deadlines, billions of retries, an 8 GB Maglev table, unbounded workers, a VRRP
//! interface this host lacks). Each is refused by `--check` with its path and position; a
//! reload carrying one fails and the running instance keeps serving.

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::common::*;

/// How long a ringlb expected to exit at once may run before the test kills it and fails.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// An interface name no host of the tests has (at most 15 bytes, like every name).
const MISSING_INTERFACE: &str = "rlbtest-none0";

/// `(line L, column C)` of `needle` in `text`: of its first character, or of its last with
/// `at_end` (where serde_json reports a value it could not take).
fn position(text: &str, needle: &str, at_end: bool) -> String {
    assert_eq!(
        text.matches(needle).count(),
        1,
        "{needle:?} must occur once"
    );
    let start = text.find(needle).expect("needle");
    let offset = if at_end {
        start + needle.len() - 1
    } else {
        start
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    format!("(line {line}, column {column})")
}

/// A good file: frontend `fe` on `port`, backend `be` with one server at `server`;
/// `backend_extra` goes into the backend (`, "retries": 1`).
fn good(port: u16, server: SocketAddr, backend_extra: &str) -> String {
    config(2, port, "", backend_extra, &servers(&[server]))
}

/// `good` plus a `vrrp` section with one unicast instance on `interface`.
fn with_vrrp(port: u16, server: SocketAddr, interface: &str) -> String {
    let text = good(port, server, "");
    let end = text.rfind('}').expect("closing brace");
    format!(
        "{},\n  \"vrrp\": {{ \"instances\": [ {{ \"name\": \"VI_1\", \"interface\": \"{interface}\", \
         \"vrid\": 51,\n    \"vips\": [\"192.0.2.10/24\"], \"unicast_peers\": [\"192.0.2.2\"] }} ] }}\n}}",
        text[..end].trim_end()
    )
}

/// Runs `ringlb -c FILE ARGS` on `text` until it exits (bounded); its status and stderr.
fn run_to_exit(text: &str, args: &[&str]) -> (ExitStatus, String, PathBuf) {
    let dir = temp_dir("abuse-config");
    let path = dir.join("ringlb.json");
    fs::write(&path, text).expect("write config");
    let stderr_path = dir.join("stderr.log");
    let stderr = fs::File::create(&stderr_path).expect("create stderr file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("-c")
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn ringlb");
    let status = wait_for(EXIT_TIMEOUT, || child.try_wait().expect("try_wait"));
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "ringlb still running after {EXIT_TIMEOUT:?}; stderr:\n{}",
            fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    };
    let log = fs::read_to_string(&stderr_path).expect("read stderr");
    let _ = fs::remove_dir_all(&dir);
    (status, log, path)
}

/// Bytes go through `addr` and come back (the backend echoes).
fn assert_serves(addr: SocketAddr, lb: &Ringlb) {
    let mut stream = connect(addr);
    stream.write_all(b"still serving\n").expect("write");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("read through ringlb: {e}; log:\n{}", lb.log()));
    assert_eq!(answer, b"still serving\n", "log:\n{}", lb.log());
}

/// The peak resident size of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// Every extreme value of the findings, one file each: exit 1, one line with the value's
/// path and position, nothing on stdout.
#[test]
fn extreme_values_are_refused_by_check() {
    let (port, server) = (free_port(), refused_addr());
    let base = good(port, server, "");
    let huge = r#""18446744073709551615ms""#;
    let cases: Vec<(String, String)> = vec![
        {
            let text = config(
                2,
                port,
                &format!(r#", "inspect_timeout": {huge}"#),
                "",
                &servers(&[server]),
            );
            let at = position(&text, huge, true);
            let want = format!(
                "frontends[0].inspect_timeout: \"18446744073709551615ms\" is longer than the \
                 maximum of 24h {at}"
            );
            (text, want)
        },
        {
            let text = good(
                port,
                server,
                &format!(r#", "timeouts": {{ "queue": {huge} }}"#),
            );
            let at = position(&text, huge, true);
            let want = format!(
                "backends[0].timeouts.queue: \"18446744073709551615ms\" is longer than the \
                 maximum of 24h {at}"
            );
            (text, want)
        },
        {
            let text = good(port, server, r#", "retries": 4294967295"#);
            let at = position(&text, "4294967295", false);
            (
                text,
                format!("backends[0].retries: 4294967295 is out of range (0 to 32) {at}"),
            )
        },
        {
            let text = base.replacen(r#""workers": 2"#, r#""workers": 100000"#, 1);
            let at = position(&text, "100000", false);
            (
                text,
                format!("workers: 100000 is out of range (1 to 64) {at}"),
            )
        },
    ]
    .into_iter()
    .chain(["2147483647", "100000007", "4294967291"].map(|size| {
        let text = good(
            port,
            server,
            &format!(r#", "balance": "source", "hash_table_size": {size}"#),
        );
        let at = position(&text, size, false);
        let want = format!(
            "backends[0].hash_table_size: {size} is out of range (a prime from 101 to 655373) {at}"
        );
        (text, want)
    }))
    .collect();
    for (text, want) in cases {
        let (out, path) = run_check("extreme.json", &text);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{}: {want}\n", path.display()),
            "file:\n{text}"
        );
        assert_eq!(out.status.code(), Some(1), "{want}");
        assert!(out.stdout.is_empty(), "{want}");
    }
}

/// The reload that aborted a running instance (an 8 GB table) now fails before any table is
/// built; the instance keeps serving and its memory stays small.
#[test]
fn reload_with_a_huge_hash_table_fails_and_keeps_serving() {
    let echo = Backend::echo();
    let port = free_port();
    let addr = frontend(port);
    let source = r#", "balance": "source""#;
    let lb = Ringlb::start(&good(port, echo.addr(), source));
    assert_serves(addr, &lb);

    let huge = good(
        port,
        echo.addr(),
        &format!(r#"{source}, "hash_table_size": 2147483647"#),
    );
    let line = lb.reload(1, &huge);
    assert_eq!(
        line,
        "ringlb: reload #1 failed: configuration invalid; still serving the previous one",
        "log:\n{}",
        lb.log()
    );
    let want = format!(
        "{}: backends[0].hash_table_size: 2147483647 is out of range (a prime from 101 to \
         655373) {}",
        lb.config_path().display(),
        position(&huge, "2147483647", false)
    );
    assert!(
        lb.log().contains(&want),
        "no {want:?} in log:\n{}",
        lb.log()
    );
    for _ in 0..3 {
        assert_serves(addr, &lb);
    }
    let peak = peak_rss_kb(lb.pid());
    assert!(peak < 512 * 1024, "peak RSS {peak} kB");

    // The largest size allowed is built and served.
    let largest = good(
        port,
        echo.addr(),
        &format!(r#"{source}, "hash_table_size": 655373"#),
    );
    let line = lb.reload(2, &largest);
    assert!(line.starts_with("ringlb: reload #2 ok: "), "{line}");
    assert_serves(addr, &lb);
}

#[test]
fn workers_flag_over_the_maximum_is_refused() {
    let text = good(free_port(), refused_addr(), "");
    let (status, stderr, _) = run_to_exit(&text, &["--workers", "100000"]);
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("invalid value '100000' for '--workers <N>': 100000 is not in 1..=64"),
        "stderr:\n{stderr}"
    );
}

/// `--check` may run on another host: a missing interface is a warning there, and the file
/// is still valid; the interface that every host has gives no warning.
#[test]
fn missing_vrrp_interface_is_a_warning_in_check() {
    assert!(
        nix::net::if_::if_nametoindex(MISSING_INTERFACE).is_err(),
        "this host has an interface {MISSING_INTERFACE}"
    );
    let (port, server) = (free_port(), refused_addr());
    let text = with_vrrp(port, server, MISSING_INTERFACE);
    let (out, path) = run_check("vrrp.json", &text);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: warning: vrrp.instances[0].interface: no interface \"{MISSING_INTERFACE}\" on \
             this host {}\n",
            path.display(),
            position(&text, &format!("\"{MISSING_INTERFACE}\""), false)
        )
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: configuration is valid\n", path.display())
    );
    assert_eq!(out.status.code(), Some(0));

    let (out, _) = run_check("vrrp.json", &with_vrrp(port, server, "lo"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_vrrp_interface_stops_the_start() {
    let port = free_port();
    let text = with_vrrp(port, refused_addr(), MISSING_INTERFACE);
    let (status, stderr, path) = run_to_exit(&text, &[]);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert_eq!(
        stderr,
        format!(
            "{}: vrrp.instances[0].interface: no interface \"{MISSING_INTERFACE}\" on this \
             host {}\n",
            path.display(),
            position(&text, &format!("\"{MISSING_INTERFACE}\""), false)
        )
    );
}

/// A reload adding an instance on a missing interface fails and changes nothing; one on an
/// interface that exists is accepted (and, with no instance at start, left for a restart,
/// so this test touches no interface).
#[test]
fn reload_adding_a_missing_vrrp_interface_fails_and_keeps_serving() {
    let echo = Backend::echo();
    let port = free_port();
    let addr = frontend(port);
    let lb = Ringlb::start(&good(port, echo.addr(), ""));
    assert_serves(addr, &lb);

    let missing = with_vrrp(port, echo.addr(), MISSING_INTERFACE);
    let line = lb.reload(1, &missing);
    assert_eq!(
        line,
        "ringlb: reload #1 failed: configuration invalid; still serving the previous one",
        "log:\n{}",
        lb.log()
    );
    let want = format!(
        "{}: vrrp.instances[0].interface: no interface \"{MISSING_INTERFACE}\" on this host {}",
        lb.config_path().display(),
        position(&missing, &format!("\"{MISSING_INTERFACE}\""), false)
    );
    assert!(
        lb.log().contains(&want),
        "no {want:?} in log:\n{}",
        lb.log()
    );
    assert_serves(addr, &lb);

    let line = lb.reload(2, &with_vrrp(port, echo.addr(), "lo"));
    assert!(line.starts_with("ringlb: reload #2 ok: "), "{line}");
    assert_serves(addr, &lb);
}
