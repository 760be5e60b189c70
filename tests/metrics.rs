//! `/metrics` of the real binary after known traffic: connections ended by reason (a clean
//! close, a client reset, a client timeout, a connect that found no server) per frontend
//! and per server, sane `process_*` values, the build info with its commit, and no label
//! named `instance`. Then Prometheus's own linter on a live scrape in the classic text
//! format (`promtool check metrics`) and on the shipped alerting rules (`promtool check
//! rules`). promtool comes with Debian's `prometheus` package (scripts/test installs it).

pub mod common;
// Shared with tests/stats.rs, which uses the helpers this file does not.
#[allow(dead_code)]
mod stats {
    #[path = "../stats/client.rs"]
    pub mod client;
    #[path = "../stats/openmetrics.rs"]
    pub mod openmetrics;
}

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use stats::client::*;
use stats::openmetrics::{self, Exposition};

/// Frontend `fe` → backend `be` (one echo server, idle clients closed after 300 ms);
/// frontend `dead` → backend `gone`, whose only server refuses connections.
fn metrics_config(port: u16, dead_port: u16, stats: SocketAddr, echo: SocketAddr) -> String {
    format!(
        r#"{{
  "workers": 2,
  "stats": {{ "bind": "{stats}" }},
  "frontends": [
    {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true }},
    {{ "name": "dead", "bind": ["127.0.0.1:{dead_port}"], "backend": "gone", "log": true }}
  ],
  "backends": [
    {{ "name": "be", "timeouts": {{ "client": "300ms" }},
       "servers": [ {{ "name": "s1", "addr": "{echo}" }} ] }},
    {{ "name": "gone", "retries": 0,
       "servers": [ {{ "name": "r1", "addr": "{}" }} ] }}
  ]
}}"#,
        refused_addr()
    )
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[test]
fn end_reasons_process_and_build_info_and_promtool_agree() {
    let started = unix_now();
    let echo = Backend::echo();
    let (port, dead_port, st) = (free_port(), free_port(), stats_addr());
    let lb = Ringlb::start(&metrics_config(port, dead_port, st, echo.addr()));

    // A clean close.
    let mut c = connect(frontend(port));
    c.write_all(b"hello").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut c, 64).unwrap(), b"hello");
    // A client reset, once the server is connected (the echo answers).
    let mut c = connect(frontend(port));
    c.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    c.read_exact(&mut one).unwrap();
    reset(c);
    // A client that goes quiet: closed by the 300 ms client timeout.
    let mut c = connect(frontend(port));
    c.write_all(b"y").unwrap();
    c.read_exact(&mut one).unwrap();
    set_timeouts(&c, IO_TIMEOUT);
    let _ = read_to_eof(&mut c, 64);
    // No server for this one.
    let mut c = connect(frontend(dead_port));
    let _ = read_to_eof(&mut c, 64);

    let ended = wait_for(Duration::from_secs(5), || {
        (lb.conn_lines().len() == 4).then_some(())
    });
    assert!(ended.is_some(), "log:\n{}", lb.log());
    let a = request(st, "GET", "/metrics", None, None);
    assert_eq!(a.status, 200);
    let m = openmetrics::parse(&a.body).unwrap_or_else(|e| panic!("{e}\n{}", a.body));

    let ends = |labels: &[(&str, &str)], family: &str| {
        let mut got: Vec<(String, f64)> = m
            .family(family)
            .unwrap_or_else(|| panic!("no {family}"))
            .samples
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                    && s.value > 0.0
            })
            .map(|s| (s.labels["end"].clone(), s.value))
            .collect();
        got.sort_by(|x, y| x.0.cmp(&y.0));
        got
    };
    let three = vec![
        ("client_close".to_string(), 1.0),
        ("client_reset".to_string(), 1.0),
        ("client_timeout".to_string(), 1.0),
    ];
    let fe_ended = "ringlb_frontend_connections_ended";
    let sv_ended = "ringlb_server_connections_ended";
    assert_eq!(ends(&[("frontend", "fe")], fe_ended), three);
    assert_eq!(
        ends(&[("backend", "be"), ("server", "s1")], sv_ended),
        three
    );
    assert_eq!(
        ends(&[("frontend", "dead")], fe_ended),
        vec![("no_server".to_string(), 1.0)]
    );
    // It never reached its server: nothing ended there, one connect failed.
    assert_eq!(ends(&[("server", "r1")], sv_ended), vec![]);
    assert_eq!(
        m.value("ringlb_server_connect_errors_total", &[("server", "r1")]),
        1.0
    );
    // Every reason is there, zeros included, so series do not appear from nowhere.
    assert_eq!(
        m.family(fe_ended).unwrap().samples.len(),
        2 * 14,
        "14 reasons per frontend"
    );

    check_process(&m, started);
    check_build_info(&m);
    for f in &m.families {
        for s in &f.samples {
            assert!(!s.labels.contains_key("instance"), "{s:?}");
        }
    }

    // The classic text format, for promtool.
    let (content_type, text) = get_text(st);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let out = promtool(&["check", "metrics"], Some(&text));
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check_process(m: &Exposition, started: f64) {
    let start = m.value("process_start_time_seconds", &[]);
    // Start ticks are 10 ms; the boot time they count from is whole seconds.
    assert!(
        start >= started - 2.0 && start <= unix_now() + 1.0,
        "start {start}, test started {started}"
    );
    let cpu = m.value("process_cpu_seconds_total", &[]);
    assert!(cpu >= 0.0 && cpu < unix_now() - started + 60.0, "{cpu}");
    let rss = m.value("process_resident_memory_bytes", &[]);
    let vsz = m.value("process_virtual_memory_bytes", &[]);
    assert!(rss > 1e6 && rss <= vsz, "rss {rss} vsz {vsz}");
    let (open, max) = (
        m.value("process_open_fds", &[]),
        m.value("process_max_fds", &[]),
    );
    assert!(open >= 5.0 && open < max, "open {open} max {max}");
    for name in ["ringlb_open_fds", "ringlb_max_fds"] {
        assert!(m.family(name).is_none(), "{name} is process_* now");
    }
}

fn check_build_info(m: &Exposition) {
    let info = &m.family("ringlb_build").expect("ringlb_build").samples;
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].name, "ringlb_build_info");
    assert_eq!(info[0].labels["version"], env!("CARGO_PKG_VERSION"));
    let commit = &info[0].labels["commit"];
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(here)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built from this checkout: the commit checked out (cargo rebuilds when HEAD moves).
        Some(head) => assert_eq!(commit, &head),
        None => assert_eq!(commit, "unknown"),
    }
}

/// `/metrics` asked for in the text format: (Content-Type, body).
fn get_text(addr: SocketAddr) -> (String, String) {
    let mut s = connect(addr);
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAccept: text/plain;version=0.0.4\r\n\r\n"
    )
    .unwrap();
    let raw = String::from_utf8(read_to_eof(&mut s, 8 << 20).unwrap()).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let content_type = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-type: ")
                .or(l.strip_prefix("Content-Type: "))
        })
        .expect("Content-Type")
        .to_string();
    (content_type, body.to_string())
}

/// Runs promtool with `input` on stdin; a missing promtool fails with what to install.
fn promtool(args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's prometheus package, which \
                 ships it (scripts/test does)"
            )
        });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.unwrap_or("").as_bytes())
        .expect("feed promtool");
    drop(stdin);
    child.wait_with_output().expect("promtool runs")
}

#[test]
fn shipped_alerting_rules_pass_promtool() {
    let out = promtool(&["check", "rules", "conf/prometheus-rules.yml"], None);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
