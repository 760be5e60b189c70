//! Start-up: every bind of a frontend listens, IPv4 and IPv6 alike, with its log line; the
//! `--workers` flag overrides the file.

pub mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;

use common::*;

fn echo_through(addr: SocketAddr, msg: &[u8]) -> SocketAddr {
    let mut c = connect(addr);
    c.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).expect("read echo");
    assert_eq!(back, msg, "echo through {addr} differs");
    c.local_addr().unwrap()
}

/// One frontend bound on 127.0.0.1 and [::1], forwarding to a server on [::1].
#[test]
fn ipv4_and_ipv6_binds() {
    let echo6 = Backend::echo_at("[::1]:0");
    let port = free_port();
    let cfg = format!(
        r#"{{
  "workers": 2,
  "frontends": [
    {{ "name": "dual", "bind": ["127.0.0.1:{port}", "[::1]:{port}"], "backend": "be", "log": true }}
  ],
  "backends": [ {{ "name": "be", "servers": {} }} ]
}}"#,
        servers(&[echo6.addr()])
    );
    let lb = Ringlb::start(&cfg);
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    for addr in [v4, v6] {
        let want = format!("ringlb: listening on {addr} (frontend dual, 2 workers)");
        assert!(
            lb.wait_for_line(LOG_TIMEOUT, |l| l == want).is_some(),
            "no line {want:?}; log:\n{}",
            lb.log()
        );
        let local = echo_through(addr, format!("via {addr}").as_bytes());
        let line = lb.conn_line(local);
        assert_eq!(line.field("frontend"), "dual", "{}", line.line);
        assert_eq!(line.field("server"), "be/s1", "{}", line.line);
    }
}

/// The worker= field of 60 connections' log lines, for a file saying `file_workers` and
/// the command line saying `--workers flag`.
fn workers_seen(file_workers: u32, flag: &str) -> BTreeSet<String> {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(file_workers, port, "", "", &servers(&[echo.addr()]));
    let lb = Ringlb::start_with_args(&cfg, &["--workers", flag]);
    let clients: BTreeSet<String> = (0..60)
        .map(|i| echo_through(frontend(port), format!("conn {i}").as_bytes()).to_string())
        .collect();
    // Log lines are written in batches: wait for all of them at once.
    let lines = wait_for(LOG_TIMEOUT, || {
        let lines = lb.conn_lines();
        (lines.len() >= clients.len()).then_some(lines)
    })
    .unwrap_or_else(|| panic!("not every connection was logged; log:\n{}", lb.log()));
    lines
        .iter()
        .filter(|l| clients.contains(l.field("client")))
        .map(|l| l.field("worker").to_owned())
        .collect()
}

/// SO_REUSEPORT spreads 60 connections over every worker (missing one of three has odds
/// near 1e-10), so the set of worker ids shows how many workers run.
#[test]
fn workers_flag_overrides_config() {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        workers_seen(1, "3"),
        ids(&["0", "1", "2"]),
        "--workers 3 over \"workers\": 1"
    );
    assert_eq!(
        workers_seen(3, "1"),
        ids(&["0"]),
        "--workers 1 over \"workers\": 3"
    );
}

/// A second ringlb on an address the first one listens on fails to start, instead of
/// joining the first one's SO_REUSEPORT group and taking a share of its connections.
#[test]
fn second_instance_on_the_same_address_is_refused() {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(2, port, "", "", &servers(&[echo.addr()]));
    let first = Ringlb::start(&cfg);
    let path = first.config_path().to_path_buf();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("-c")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run a second ringlb");
    let status = wait_for(IO_TIMEOUT, || second.try_wait().ok().flatten());
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    let mut stderr = String::new();
    if let Some(mut e) = second.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.is_some_and(|s| !s.success()),
        "the second instance started ({status:?}):\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (frontend fe): another process is already listening there"
        )),
        "{stderr}"
    );
    // The first one still has every connection.
    for _ in 0..20 {
        let local = echo_through(frontend(port), b"still here");
        assert_eq!(first.conn_line(local).field("server"), "be/s1");
    }
}

/// Makes `io_uring_setup` fail with EPERM in the child, as a container runtime's default
/// seccomp profile does.
fn deny_io_uring(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (prctl) between fork and exec; the filter
    // program outlives the call that installs it.
    unsafe {
        cmd.pre_exec(|| {
            let filter = [
                // A = seccomp_data.nr
                libc::sock_filter {
                    code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_io_uring_setup as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn io_uring_blocked_by_seccomp_is_named_at_start() {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(1, port, "", "", &servers(&[echo.addr()]));
    let dir = temp_dir("seccomp");
    let path = dir.join("ringlb.json");
    std::fs::write(&path, &cfg).expect("write config");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"));
    cmd.arg("-c").arg(&path).stdin(std::process::Stdio::null());
    deny_io_uring(&mut cmd);
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ringlb under the filter");
    let status = wait_for(IO_TIMEOUT, || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        status.is_some_and(|s| s.code() == Some(1)),
        "ringlb without io_uring must exit 1 ({status:?}):\n{stderr}"
    );
    assert!(
        stderr.contains("io_uring is blocked, most likely by a seccomp profile"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
