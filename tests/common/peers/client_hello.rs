//! TLS ClientHellos built by hand, written in small pieces.

use std::io::{self, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

/// A TLS 1.3 ClientHello record for `sni` (none if empty) with a key share of `big_share`
/// bytes for group 0x11EC (X25519MLKEM768, 1216 bytes in real clients) besides an X25519
/// one, and `padding` bytes of padding extension. Not for a real handshake: for routing.
pub fn client_hello(sni: &str, big_share: usize, padding: usize) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, t: u16, body: &[u8]) {
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut exts = Vec::new();
    if !sni.is_empty() {
        let mut list = vec![0u8];
        list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        list.extend_from_slice(sni.as_bytes());
        let mut body = (list.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&list);
        ext(&mut exts, 0x0000, &body);
    }
    ext(&mut exts, 0x000a, &[0, 4, 0x11, 0xec, 0x00, 0x1d]);
    ext(&mut exts, 0x000d, &[0, 4, 0x08, 0x04, 0x04, 0x03]);
    ext(&mut exts, 0x002b, &[2, 0x03, 0x04]);
    let mut shares = Vec::new();
    if big_share > 0 {
        shares.extend_from_slice(&[0x11, 0xec]);
        shares.extend_from_slice(&(big_share as u16).to_be_bytes());
        shares.extend((0..big_share).map(|i| (i * 7 + 3) as u8));
    }
    shares.extend_from_slice(&[0x00, 0x1d, 0, 32]);
    shares.extend((0..32).map(|i| (i * 5 + 1) as u8));
    let mut ks = (shares.len() as u16).to_be_bytes().to_vec();
    ks.extend_from_slice(&shares);
    ext(&mut exts, 0x0033, &ks);
    if padding > 0 {
        ext(&mut exts, 0x0015, &vec![0u8; padding]);
    }

    let mut hello = vec![0x03, 0x03];
    hello.extend((0..32).map(|i| i as u8));
    hello.push(32);
    hello.extend((0..32).map(|i| 0xa0 + i as u8));
    hello.extend_from_slice(&[0, 2, 0x13, 0x01]);
    hello.extend_from_slice(&[1, 0]);
    hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    hello.extend_from_slice(&exts);

    let mut hs = vec![0x01];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Writes `data` in pieces of at most `chunk` bytes with `gap` between them (TCP_NODELAY).
pub fn write_split(s: &mut TcpStream, data: &[u8], chunk: usize, gap: Duration) -> io::Result<()> {
    s.set_nodelay(true)?;
    for (i, piece) in data.chunks(chunk).enumerate() {
        if i > 0 {
            thread::sleep(gap);
        }
        s.write_all(piece)?;
    }
    Ok(())
}

/// The value of `key="..."` (quoted, may contain spaces) or `key=word` in a log line.
pub fn quoted_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(q) = rest.strip_prefix('"') {
        q.find('"').map(|e| q[..e].to_owned())
    } else {
        Some(rest.split_whitespace().next().unwrap_or("").to_owned())
    }
}
