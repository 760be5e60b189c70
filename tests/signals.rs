//! SIGTERM: stop accepting at once, let established connections finish within the grace
//! period, close what is left when it ends, exit 0.

pub mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use common::*;

fn config_with_grace(grace: &str, port: u16, echo: SocketAddr) -> String {
    format!(
        r#"{{
  "workers": 2,
  "grace": "{grace}",
  "frontends": [
    {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true }}
  ],
  "backends": [ {{ "name": "be", "servers": {} }} ]
}}"#,
        servers(&[echo])
    )
}

fn echo_once(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).expect("read echo");
    assert_eq!(back, msg, "echo differs");
}

/// Waits until a connect to `addr` is refused; false if it still connects after `timeout`.
fn becomes_refused(addr: SocketAddr, timeout: Duration) -> bool {
    wait_for(timeout, || {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        }
    })
    .is_some()
}

#[test]
fn sigterm_drains_established_connection_and_exits_0() {
    let echo = Backend::echo();
    let port = free_port();
    let mut lb = Ringlb::start(&config_with_grace("5s", port, echo.addr()));

    let mut client = connect(frontend(port));
    let local = client.local_addr().unwrap();
    echo_once(&mut client, b"before the signal\n");

    lb.send_signal(Signal::SIGTERM);
    assert!(
        becomes_refused(frontend(port), Duration::from_secs(2)),
        "new connections still accepted 2 s after SIGTERM; log:\n{}",
        lb.log()
    );
    thread::sleep(Duration::from_millis(300));
    assert!(
        lb.wait_exit(Duration::ZERO).is_none(),
        "ringlb exited with a connection in flight"
    );

    // The established connection keeps working during the drain.
    echo_once(&mut client, b"during the drain\n");
    client.shutdown(Shutdown::Write).unwrap();
    let rest = read_to_eof(&mut client, 1024).expect("read to EOF");
    assert!(rest.is_empty(), "unexpected bytes after the echo");
    drop(client);

    let status = lb.wait_exit(Duration::from_secs(8));
    let status =
        status.unwrap_or_else(|| panic!("still running after the drain; log:\n{}", lb.log()));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", lb.log());
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "client_close", "{}", line.line);
}

#[test]
fn sigterm_closes_remaining_connections_when_grace_ends() {
    let echo = Backend::echo();
    let port = free_port();
    let mut lb = Ringlb::start(&config_with_grace("1s", port, echo.addr()));

    let mut client = connect(frontend(port));
    let local = client.local_addr().unwrap();
    echo_once(&mut client, b"hello\n");

    let signalled = Instant::now();
    lb.send_signal(Signal::SIGTERM);
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed at the end of grace, got {other:?}"),
    }
    assert_between(
        "closing a connection left at the end of a 1 s grace",
        signalled.elapsed(),
        Duration::from_millis(900),
        Duration::from_millis(3000),
    );
    let status = lb.wait_exit(Duration::from_secs(3));
    let status = status.unwrap_or_else(|| panic!("still running after grace; log:\n{}", lb.log()));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", lb.log());
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "shutdown", "{}", line.line);
}
