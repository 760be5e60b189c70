//! ringlb's stats listener over plain HTTP: a GET, and one sample of `/metrics`.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{read_to_eof, set_timeouts, IO_TIMEOUT};

/// A plain HTTP/1.0 GET of `path` on `addr` (`Host` is the address); the whole answer.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    set_timeouts(&s, IO_TIMEOUT);
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let raw = read_to_eof(&mut s, 16 << 20)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The value of an unlabelled sample `name` in an OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
