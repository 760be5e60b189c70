//! Where the log goes: stderr (a stream, written blocking by the log thread only), or a
//! datagram socket (syslog on a unix socket or UDP, journald's native socket), written
//! without blocking: a receiver that is gone or full costs the lines, never a wait.

use std::io::{self, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::record::{Framing, Style};

/// Where a datagram target sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Udp(SocketAddr),
}

impl Address {
    pub fn parse(s: &str) -> Option<Address> {
        if s.starts_with('/') {
            return Some(Address::Unix(PathBuf::from(s)));
        }
        s.parse().ok().map(Address::Udp)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Udp(a) => write!(f, "udp {a}"),
        }
    }
}

/// The configured target, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub style: Style,
    /// `None` for stderr.
    pub address: Option<Address>,
}

impl Target {
    pub const STDERR: Target = Target {
        style: Style::DEFAULT,
        address: None,
    };
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.style.framing {
            Framing::Stream => "stderr",
            Framing::Syslog { .. } => "syslog",
            Framing::Journald => "journald",
        };
        match &self.address {
            Some(a) => write!(f, "{what} at {a}"),
            None => f.write_str(what),
        }
    }
}

pub enum Sink {
    Stderr,
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Sink {
    /// Opens `target`: a datagram socket connected to its address, non-blocking.
    pub fn open(target: &Target) -> io::Result<Sink> {
        match (&target.address, target.style.framing) {
            (None, _) | (_, Framing::Stream) => Ok(Sink::Stderr),
            (Some(Address::Unix(path)), _) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path).map_err(|e| with_path(e, path))?;
                s.set_nonblocking(true)?;
                Ok(Sink::Unix(s))
            }
            (Some(Address::Udp(addr)), _) => {
                let local: SocketAddr = if addr.is_ipv6() {
                    "[::]:0".parse().map_err(io::Error::other)?
                } else {
                    "0.0.0.0:0".parse().map_err(io::Error::other)?
                };
                let s = UdpSocket::bind(local)?;
                s.connect(addr)?;
                s.set_nonblocking(true)?;
                Ok(Sink::Udp(s))
            }
        }
    }

    /// Writes stream bytes (stderr), or sends one datagram; a datagram that cannot go at
    /// once is lost (false).
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        match self {
            Sink::Stderr => io::stderr().write_all(bytes).is_ok(),
            Sink::Unix(s) => s.send(bytes).is_ok(),
            Sink::Udp(s) => s.send(bytes).is_ok(),
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Sink::Stderr)
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
