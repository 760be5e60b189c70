//! PROXY protocol v1/v2 headers built and parsed by hand, and a server that records the
//! header it gets.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{set_timeouts, wait_for, IO_TIMEOUT};

/// The 12-byte signature of a PROXY v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
pub const PP2_TYPE_CRC32C: u8 = 0x03;
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

/// A v1 header for a TCP connection from `src` to `dst` (same family).
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A v2 PROXY-command header for a TCP connection from `src` to `dst`, with `tlvs`.
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr, tlvs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    let fam = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x21
        }
        _ => panic!("mixed families {src} {dst}"),
    };
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    for (t, v) in tlvs {
        body.push(*t);
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
    }
    v2_frame(0x21, fam, &body)
}

/// A v2 LOCAL-command header (no addresses).
pub fn proxy_v2_local() -> Vec<u8> {
    v2_frame(0x20, 0x00, &[])
}

fn v2_frame(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A parsed PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: u8,
    /// False for v2 LOCAL and v1 UNKNOWN.
    pub proxied: bool,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub tlvs: Vec<(u8, Vec<u8>)>,
    /// The header's bytes as received.
    pub raw: Vec<u8>,
}

impl ProxyHeader {
    pub fn tlv(&self, t: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the CRC32C TLV matches the header (computed with the TLV's value zeroed).
    pub fn crc32c_ok(&self) -> Option<bool> {
        let want = self.tlv(PP2_TYPE_CRC32C)?;
        if want.len() != 4 {
            return Some(false);
        }
        // Find the TLV in the raw bytes and zero its value.
        let mut raw = self.raw.clone();
        let mut at = 16 + addr_len(raw[13]);
        while at + 3 <= raw.len() {
            let len = usize::from(u16::from_be_bytes([raw[at + 1], raw[at + 2]]));
            if raw[at] == PP2_TYPE_CRC32C {
                raw[at + 3..at + 3 + len].fill(0);
                break;
            }
            at += 3 + len;
        }
        Some(crc32c(&raw).to_be_bytes() == want)
    }
}

fn addr_len(fam: u8) -> usize {
    match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    }
}

/// Parses a PROXY header at the start of `buf`: `Ok(None)` while incomplete, the header and
/// its length once complete.
pub fn parse_proxy(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, String> {
    if (buf.len() >= 12 && buf[..12] == V2_SIGNATURE) || V2_SIGNATURE.starts_with(buf) {
        return parse_v2(buf);
    }
    if !buf.starts_with(b"PROXY ") && !b"PROXY ".starts_with(buf) {
        return Err(format!(
            "no PROXY signature: {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > 107 {
            Err("v1 header longer than 107 bytes".into())
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
    let parts: Vec<&str> = line.split(' ').collect();
    let header = |proxied, src, dst| ProxyHeader {
        version: 1,
        proxied,
        src,
        dst,
        tlvs: Vec::new(),
        raw: buf[..end + 2].to_vec(),
    };
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Some((header(false, None, None), end + 2))),
        ["PROXY", "TCP4" | "TCP6", s, d, sp, dp] => {
            let addr = |ip: &str, port: &str| -> Result<SocketAddr, String> {
                let ip: IpAddr = ip.parse().map_err(|e| format!("{ip}: {e}"))?;
                let port: u16 = port.parse().map_err(|e| format!("{port}: {e}"))?;
                Ok(SocketAddr::new(ip, port))
            };
            Ok(Some((
                header(true, Some(addr(s, sp)?), Some(addr(d, dp)?)),
                end + 2,
            )))
        }
        _ => Err(format!("bad v1 line {line:?}")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, String> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if buf.len() < len {
        return Ok(None);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(format!("version nibble {ver_cmd:#x}"));
    }
    let proxied = match ver_cmd & 0x0f {
        0 => false,
        1 => true,
        c => return Err(format!("command {c}")),
    };
    let body = &buf[16..len];
    let alen = addr_len(fam);
    if body.len() < alen {
        return Err(format!(
            "address block of {} bytes for family {fam:#x}",
            body.len()
        ));
    }
    let (src, dst) = match (proxied, fam >> 4) {
        (true, 1) => {
            let ip = |o: usize| IpAddr::from([body[o], body[o + 1], body[o + 2], body[o + 3]]);
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(8))),
                Some(SocketAddr::new(ip(4), port(10))),
            )
        }
        (true, 2) => {
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[o..o + 16]);
                IpAddr::from(a)
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(32))),
                Some(SocketAddr::new(ip(16), port(34))),
            )
        }
        _ => (None, None),
    };
    let mut tlvs = Vec::new();
    let mut rest = &body[alen..];
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err("truncated TLV".into());
        }
        let l = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + l {
            return Err("TLV longer than the header".into());
        }
        tlvs.push((rest[0], rest[3..3 + l].to_vec()));
        rest = &rest[3 + l..];
    }
    Ok(Some((
        ProxyHeader {
            version: 2,
            proxied,
            src,
            dst,
            tlvs,
            raw: buf[..len].to_vec(),
        },
        len,
    )))
}

/// CRC-32C (Castagnoli), bit by bit: headers are short.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// What a `ProxyServer` got on one connection.
#[derive(Debug, Clone)]
pub struct ProxyReceived {
    pub header: Result<ProxyHeader, String>,
    /// The bytes after the header, to the client's EOF.
    pub rest: Vec<u8>,
}

/// A loopback server for connections that start with a PROXY header: it reads the header
/// (within 2 s), records it, writes `greeting` at once (a server that speaks first), then
/// echoes everything after the header until EOF, and records those bytes too.
pub struct ProxyServer {
    backend: crate::common::Backend,
    got: Arc<Mutex<Vec<ProxyReceived>>>,
}

impl ProxyServer {
    pub fn start(greeting: &'static str) -> ProxyServer {
        let got: Arc<Mutex<Vec<ProxyReceived>>> = Arc::default();
        let record = got.clone();
        let backend = crate::common::Backend::spawn(move |mut s| {
            set_timeouts(&s, Duration::from_secs(2));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let header = loop {
                match parse_proxy(&buf) {
                    Ok(Some((h, n))) => break Ok((h, n)),
                    Err(e) => break Err(e),
                    Ok(None) => {}
                }
                match s.read(&mut chunk) {
                    Ok(0) => break Err(format!("EOF after {buf:?}")),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => break Err(format!("{e} after {buf:?}")),
                }
            };
            let (header, mut rest) = match header {
                Ok((h, n)) => (Ok(h), buf[n..].to_vec()),
                Err(e) => (Err(e), Vec::new()),
            };
            if header.is_ok() {
                set_timeouts(&s, IO_TIMEOUT);
                let _ = s.write_all(greeting.as_bytes());
                let _ = s.write_all(&rest);
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            rest.extend_from_slice(&chunk[..n]);
                            if s.write_all(&chunk[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            }
            record.lock().unwrap().push(ProxyReceived { header, rest });
        });
        ProxyServer { backend, got }
    }

    pub fn addr(&self) -> SocketAddr {
        self.backend.addr()
    }

    /// Waits (bounded) for the `n`th (from 1) finished connection.
    pub fn wait_received(&self, n: usize, timeout: Duration) -> Option<ProxyReceived> {
        wait_for(timeout, || self.got.lock().unwrap().get(n - 1).cloned())
    }
}
