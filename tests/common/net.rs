//! Loopback sockets with bounded connects and timeouts: free ports, clients from a known
//! address, reads to EOF with a limit, resets, listening sockets as /proc shows them.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CHUNK, IO_TIMEOUT, UNIQUE};

/// A loopback port that was free a moment ago (bind port 0, read it, drop the socket).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A loopback port that was free a moment ago and lies below the kernel's ephemeral range,
/// for a listener opened later (by a reload): a port from `free_port` may meanwhile be the
/// local port of some outgoing connection, and then cannot be bound.
pub fn listener_port() -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(32768);
    assert!(
        low > 12000,
        "ephemeral ports start at {low}: no room below them"
    );
    let span = u32::from(low) - 11000;
    // Spread the start over processes and calls, so that parallel tests do not collide.
    let seed = std::process::id()
        .wrapping_mul(2654435761)
        .wrapping_add(UNIQUE.fetch_add(1, Ordering::Relaxed) as u32 * 7919);
    for i in 0..1000 {
        let port = 10000 + (seed.wrapping_add(i * 13) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 10000 and {}", u32::from(low) - 1000);
}

/// A loopback address with nothing listening on it: connecting to it is refused at once.
pub fn refused_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Connects with a bounded connect and sets `IO_TIMEOUT` on both directions.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    set_timeouts(&stream, IO_TIMEOUT);
    stream
}

/// Connects from a local address chosen before the connect, so the caller knows it (to
/// find the connection's log line) even when the connect fails. A balancer that resets a
/// connection right after accepting it can make the connect itself report
/// `ConnectionReset`: the RST lands before the kernel hands the connected socket back.
pub fn connect_from_known_port(addr: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    let loopback: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    connect_from(loopback, addr)
}

/// Whether a connection was closed by its peer: EOF or a reset, on connect or on read.
pub fn closed_by_peer(connected: io::Result<TcpStream>) -> Result<(), String> {
    let mut stream = match connected {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
        Err(e) => return Err(format!("connect failed: {e}")),
    };
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        other => Err(format!("expected a close, read gave {other:?}")),
    }
}

pub fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
}

/// Reads until EOF, failing past `limit` bytes so a runaway peer cannot exhaust memory.
pub fn read_to_eof(stream: &mut TcpStream, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > limit {
            return Err(io::Error::other(format!(
                "peer sent more than {limit} bytes"
            )));
        }
    }
}

/// Closes the socket with an RST instead of a FIN (SO_LINGER with a zero timeout).
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}

/// A client connection from `local_ip` (port chosen by the kernel, known before the connect
/// so a failed connection's log line can still be found).
pub fn connect_from(local_ip: IpAddr, addr: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(local_ip, 0).into())
        .unwrap_or_else(|e| panic!("bind client socket to {local_ip}: {e}"));
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("client address");
    let result = socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .map(|()| {
            let stream = TcpStream::from(socket);
            set_timeouts(&stream, IO_TIMEOUT);
            stream
        });
    (local, result)
}

/// Sends `msg` and reads it back from an echo path within `timeout`; false if it did not
/// come back whole in time (or the connection failed).
pub fn echoes(stream: &mut TcpStream, msg: &[u8], timeout: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(msg).is_err() {
        return false;
    }
    let mut got = vec![0u8; msg.len()];
    stream.read_exact(&mut got).is_ok() && got == msg
}

/// Inodes of the sockets listening on TCP `port` (IPv4 and IPv6), sorted. Stable across a
/// reload only if the listeners were neither closed nor reopened.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != LISTEN {
                continue;
            }
            let local_port = cols[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.extend(cols[9].parse::<u64>().ok());
            }
        }
    }
    inodes.sort_unstable();
    inodes
}

/// Ports of all TCP sockets in LISTEN state in the network namespace of process `pid`
/// (IPv4 and IPv6).
pub(super) fn listening_ports(pid: u32) -> Vec<u16> {
    const LISTEN: &str = "0A";
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1);
            let state = cols.nth(1);
            if state != Some(LISTEN) {
                continue;
            }
            let port = local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            ports.extend(port);
        }
    }
    ports
}
