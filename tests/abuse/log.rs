//! Abuse: a log sink that stops reading. With stderr a pipe nobody drains, the workers go
//! on forwarding at full rate; the lines that cannot be queued are dropped and counted
//! (`ringlb_log_dropped_total`), and a line says so once the sink reads again.

use std::io::Read;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// Connections made while nobody reads stderr: at about 150 bytes a line, twice what a
/// 64 KiB pipe and the log queue (about 1 MiB) hold together.
const CONNECTIONS: usize = 15_000;

#[test]
fn a_stderr_nobody_reads_does_not_stop_forwarding() {
    let echo = Backend::echo();
    let port = free_port();
    let stats = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        r#"{{ "workers": 2, "stats": {{ "bind": "{stats}" }},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true }} ],
  "backends": [ {{ "name": "be", "servers": {} }} ] }}"#,
        servers(&[echo.addr()])
    );
    let mut lb = Ringlb::launch(
        &config,
        &Launch {
            stderr_pipe: true,
            ..Launch::default()
        },
    );
    let mut stderr = lb.take_stderr().expect("stderr pipe");

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..CONNECTIONS {
        let t = Instant::now();
        let mut c = connect(frontend(port));
        assert!(
            echoes(&mut c, b"ping", Duration::from_secs(2)),
            "connection {i} was not forwarded while stderr is not read"
        );
        slowest = slowest.max(t.elapsed());
        if started.elapsed() > Duration::from_secs(120) {
            panic!("only {i} connections in 120 s");
        }
    }
    eprintln!(
        "{CONNECTIONS} connections in {:?} with stderr unread (slowest {slowest:?})",
        started.elapsed()
    );

    let metrics = http_get(stats, "/metrics").expect("metrics while stderr is unread");
    let dropped = metric(&metrics, "ringlb_log_dropped_total").expect("ringlb_log_dropped_total");
    assert!(dropped > 0.0, "no log line dropped; metrics:\n{metrics}");

    // Reading again, the sink hears how many lines it missed.
    let reader = thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&text).contains("log lines dropped") {
                break;
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    // A few more connections keep the workers flushing while the reader drains.
    for _ in 0..50 {
        let mut c = connect(frontend(port));
        assert!(echoes(&mut c, b"pong", Duration::from_secs(2)));
        thread::sleep(Duration::from_millis(20));
    }
    let text = reader.join().expect("reader");
    assert!(
        text.contains("log lines dropped: the log sink did not keep up"),
        "no drop report once stderr was read again; read {} bytes",
        text.len()
    );
}
