//! Running ringlb as HAProxy + keepalived operators do: `ringlb ctl` on the control socket
//! (shows, admin settings, closing a server's connections, a reload that reports its
//! outcome), systemd's notify protocol on a socket the test owns, HAProxy's signals, and the
//! server-state file across a restart. (The shipped unit is checked in `conf.rs`.)

pub mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use nix::sys::signal::Signal;

use common::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config with a control socket in a fresh temp dir (and optionally a state file).
fn config_with_socket(port: u16, servers: &str, extra: &str) -> (String, PathBuf) {
    let dir = temp_dir("ctl");
    let socket = dir.join("ringlb.sock");
    let config = format!(
        r#"{{ "workers": 2, "control": {{ "socket": "{}" }}{extra},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be" }} ],
  "backends": [ {{ "name": "be", "servers": {servers} }} ] }}"#,
        socket.display()
    );
    (config, socket)
}

#[test]
fn ctl_shows_sets_and_closes_a_servers_connections() {
    let a = Backend::echo();
    let b = Backend::echo();
    let port = free_port();
    let (config, socket) = config_with_socket(port, &servers(&[a.addr(), b.addr()]), "");
    let lb = Ringlb::start(&config);
    // Only the service's user may drive it.
    let mode = fs::metadata(&socket)
        .expect("control socket")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "control socket mode {:o}",
        mode & 0o777
    );

    let out = ctl(&socket, "show servers");
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("server "), "{table}");
    assert!(
        table.contains("be/s1") && table.contains("be/s2"),
        "{table}"
    );

    let out = ctl(&socket, "show info --json");
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON info");
    assert_eq!(info["workers"], 2);
    let out = ctl(&socket, "show frontends");
    assert!(stdout(&out).contains(&format!("127.0.0.1:{port}")));
    // Instances in FAULT and their cause: tests/vrrp.rs (it needs a namespace).
    let out = ctl(&socket, "show vrrp");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no VRRP instance\n");
    assert_eq!(stdout(&ctl(&socket, "--json show vrrp")).trim(), "[]");

    // Two connections held open; then s1 is drained and its connections closed.
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(frontend(port))).collect();
    for c in &mut held {
        assert!(echoes(c, b"x", Duration::from_secs(2)));
    }
    let out = ctl(&socket, "set server be/s1 state drain");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("admin DRAIN"), "{}", stdout(&out));
    let out = ctl(&socket, "shutdown sessions server be/s1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("closing 2 connections of be/s1"),
        "{}",
        stdout(&out)
    );
    let killed = wait_for(Duration::from_secs(5), || {
        let lines = lb.conn_lines();
        let k: Vec<_> = lines.into_iter().filter(|l| l.end() == "killed").collect();
        (k.len() == 2).then_some(k)
    })
    .unwrap_or_else(|| panic!("no two end=killed lines; log:\n{}", lb.log()));
    assert!(killed.iter().all(|l| l.field("server") == "be/s1"));
    assert!(killed.iter().all(|l| l.field("term") == "KD"));
    // New connections go to s2 only; the log names who did it.
    for _ in 0..4 {
        let mut c = connect(frontend(port));
        assert!(echoes(&mut c, b"y", Duration::from_secs(2)));
    }
    assert!(lb.log().contains("admin ctl uid=0 pid="), "{}", lb.log());

    // Weights and errors.
    let out = ctl(&socket, "set server be/s2 weight 5 --json");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["weight"], 5);
    let out = ctl(&socket, "set server be/nope state ready");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no server \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = ctl(&socket, "frobnicate");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown command"), "{}", stderr(&out));
}

#[test]
fn ctl_reload_waits_and_fails_when_the_reload_fails() {
    let a = Backend::echo();
    let port = free_port();
    let (config, socket) = config_with_socket(port, &servers(&[a.addr()]), "");
    let lb = Ringlb::start(&config);
    let out = ctl(&socket, "reload");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("reload #1 ok"), "{}", stdout(&out));

    fs::write(
        lb.config_path(),
        config.replace("\"backend\": \"be\"", "\"backend\": \"nope\""),
    )
    .unwrap();
    let out = ctl(&socket, "reload");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("reload #2 failed: configuration invalid"),
        "{err}"
    );
    assert!(err.contains("unknown backend \"nope\""), "{err}");
    // Still serving the previous config.
    let mut c = connect(frontend(port));
    assert!(echoes(&mut c, b"still", Duration::from_secs(2)));
}

#[test]
fn ctl_without_a_ringlb_says_so() {
    let dir = temp_dir("ctl-none");
    let out = ctl(&dir.join("none.sock"), "show info");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}

/// Datagrams from ringlb's notify socket, as text.
fn notifications(sock: &UnixDatagram, until: impl Fn(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = until(&text);
        got.push(text);
        if done {
            break;
        }
    }
    got
}

#[test]
fn systemd_hears_ready_reloading_watchdog_and_stopping() {
    let dir = temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let a = Backend::echo();
    let port = free_port();
    let (config, socket) = config_with_socket(port, &servers(&[a.addr()]), "");
    let path_s = path.display().to_string();
    let mut lb = Ringlb::launch(
        &config,
        &Launch {
            env: &[("NOTIFY_SOCKET", &path_s), ("WATCHDOG_USEC", "400000")],
            ..Launch::default()
        },
    );
    let first = notifications(&sock, |t| t.contains("READY=1"));
    let ready = first.last().expect("READY=1");
    assert!(
        ready.contains("STATUS=0 connections; 1/1 servers up"),
        "{ready}"
    );
    let pings = notifications(&sock, |t| t == "WATCHDOG=1");
    assert_eq!(pings.last().map(String::as_str), Some("WATCHDOG=1"));

    let out = ctl(&socket, "reload");
    assert!(out.status.success());
    let around = notifications(&sock, |t| t.starts_with("READY=1"));
    assert!(
        around
            .iter()
            .any(|t| t.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        "{around:?}"
    );
    lb.send_signal(Signal::SIGTERM);
    let end = notifications(&sock, |t| t.starts_with("STOPPING=1"));
    assert!(
        end.last().is_some_and(|t| t.starts_with("STOPPING=1")),
        "{end:?}"
    );
    assert_eq!(
        lb.wait_exit(Duration::from_secs(15)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn haproxys_signals_reload_and_stop_and_sigpipe_is_ignored() {
    let a = Backend::echo();
    let port = free_port();
    let mut lb = Ringlb::start(&config(2, port, "", "", &servers(&[a.addr()])));
    lb.send_signal(Signal::SIGPIPE);
    lb.send_signal(Signal::SIGUSR2);
    lb.wait_for_line(Duration::from_secs(5), |l| {
        l.starts_with("ringlb: reload #1 ok")
    })
    .unwrap_or_else(|| panic!("SIGUSR2 did not reload; log:\n{}", lb.log()));
    let mut held = connect(frontend(port));
    assert!(echoes(&mut held, b"a", Duration::from_secs(2)));
    lb.send_signal(Signal::SIGUSR1);
    lb.wait_for_line(Duration::from_secs(5), |l| l.contains("SIGUSR1: stopping"))
        .unwrap_or_else(|| panic!("SIGUSR1 did not stop; log:\n{}", lb.log()));
    // Draining: the established connection still works, then ringlb exits 0 once it ends.
    assert!(echoes(&mut held, b"b", Duration::from_secs(2)));
    drop(held);
    assert_eq!(
        lb.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn a_drained_server_stays_drained_across_a_restart() {
    let a = Backend::echo();
    let b = Backend::echo();
    let port = free_port();
    let dir = temp_dir("state");
    let state = dir.join("server-state.json");
    let (config, socket) = config_with_socket(
        port,
        &servers(&[a.addr(), b.addr()]),
        &format!(r#", "state_file": "{}""#, state.display()),
    );
    let mut lb = Ringlb::start(&config);
    let out = ctl(&socket, "set server be/s1 state drain");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(state.exists(), "no state file written on the change");
    lb.send_signal(Signal::SIGTERM);
    assert_eq!(
        lb.wait_exit(Duration::from_secs(15)).and_then(|s| s.code()),
        Some(0)
    );
    drop(lb);

    let lb = Ringlb::start(&config);
    let table = stdout(&ctl(&socket, "show servers"));
    let s1 = table
        .lines()
        .find(|l| l.starts_with("be/s1"))
        .expect("s1 row");
    assert!(s1.contains("DRAIN"), "{table}");
    assert!(
        lb.log().contains("1 admin settings restored"),
        "{}",
        lb.log()
    );
    drop(lb);

    // s1 moved to another address: the saved setting was for a server no longer in the
    // config, so it is skipped with a warning and the s1 now configured is not drained.
    let c = Backend::echo();
    let lb = Ringlb::start(&config.replace(&a.addr().to_string(), &c.addr().to_string()));
    let table = stdout(&ctl(&socket, "show servers"));
    assert!(!table.contains("DRAIN"), "{table}");
    let warning = format!(
        "state file {}: no server be/s1 at {} in the config",
        state.display(),
        a.addr()
    );
    let log = lb.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&warning) && l.ends_with("skipped")),
        "no warning {warning:?}; log:\n{log}"
    );
    assert!(!log.contains("admin settings restored"), "{log}");
    drop(lb);

    // A corrupt file is ignored with a warning: ringlb starts with every server ready.
    fs::write(&state, "{ this is not JSON").unwrap();
    let lb = Ringlb::start(&config);
    let table = stdout(&ctl(&socket, "show servers"));
    assert!(!table.contains("DRAIN"), "{table}");
    assert!(lb.log().contains("ignored"), "{}", lb.log());
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_ringlb_spends_no_cpu_with_or_without_a_control_socket() {
    let a = Backend::echo();
    for with_socket in [true, false] {
        let port = free_port();
        let config = if with_socket {
            config_with_socket(port, &servers(&[a.addr()]), "").0
        } else {
            // The default socket path, which this host may not have: the warning case.
            config(2, port, "", "", &servers(&[a.addr()]))
        };
        let lb = Ringlb::start(&config);
        std::thread::sleep(Duration::from_millis(300));
        let before = cpu_ticks(lb.pid());
        std::thread::sleep(Duration::from_secs(2));
        let spent = cpu_ticks(lb.pid()) - before;
        // 2 s is 200 ticks at 100 Hz; idle ringlb wakes a few times a second per thread.
        assert!(
            spent <= 10,
            "idle ringlb (control socket: {with_socket}) spent {spent} ticks in 2 s"
        );
    }
}
