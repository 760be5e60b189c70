//! A relay that splits the client's first bytes into small segments, and what it saw.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::common::{set_timeouts, IO_TIMEOUT};

/// What the relay saw on one connection.
#[derive(Debug, Clone, Default)]
pub struct RelayedConn {
    /// The relay's address towards the target: the client address the target sees.
    pub upstream_local: Option<SocketAddr>,
    /// Writes of client bytes to the target before the target's first byte came back.
    pub writes_before_answer: usize,
    /// The client's first bytes (up to 64 KiB).
    pub first_bytes: Vec<u8>,
}

impl RelayedConn {
    /// The size of the client's first TLS handshake message (a ClientHello: 4-byte header
    /// plus its length), read from the first record; `None` if the bytes are not TLS.
    pub fn client_hello_len(&self) -> Option<usize> {
        let b = &self.first_bytes;
        if b.len() < 9 || b[0] != 0x16 || b[5] != 0x01 {
            return None;
        }
        Some(4 + (usize::from(b[6]) << 16 | usize::from(b[7]) << 8 | usize::from(b[8])))
    }
}

/// A loopback TCP relay in front of `target`: each client's first `split_bytes` bytes go to
/// the target in writes of at most `chunk` bytes with `gap` between them (TCP_NODELAY, so
/// each is its own segment), then bytes are copied both ways as they come.
pub struct SplitRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Arc<Mutex<RelayedConn>>>>>,
}

impl SplitRelay {
    pub fn start(
        target: SocketAddr,
        chunk: usize,
        gap: Duration,
        split_bytes: usize,
    ) -> SplitRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Arc<Mutex<RelayedConn>>>>> = Arc::default();
        let (stopping, all) = (stop.clone(), conns.clone());
        thread::Builder::new()
            .name("split-relay".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let seen = Arc::new(Mutex::new(RelayedConn::default()));
                    all.lock().unwrap().push(seen.clone());
                    thread::spawn(move || {
                        relay_one(client, target, chunk, gap, split_bytes, &seen)
                    });
                }
            })
            .expect("spawn relay thread");
        SplitRelay { addr, stop, conns }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every connection relayed so far.
    pub fn conns(&self) -> Vec<RelayedConn> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}

impl Drop for SplitRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn relay_one(
    client: TcpStream,
    target: SocketAddr,
    chunk: usize,
    gap: Duration,
    split_bytes: usize,
    seen: &Arc<Mutex<RelayedConn>>,
) {
    set_timeouts(&client, IO_TIMEOUT);
    let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    set_timeouts(&upstream, IO_TIMEOUT);
    let _ = upstream.set_nodelay(true);
    seen.lock().unwrap().upstream_local = upstream.local_addr().ok();
    let answered = Arc::new(AtomicBool::new(false));

    let (Ok(mut up_r), Ok(mut client_w)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    let answered_down = answered.clone();
    let down = thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match up_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answered_down.store(true, Ordering::SeqCst);
                    if client_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_w.shutdown(Shutdown::Write);
    });

    let (mut client_r, mut up_w) = (client, upstream);
    let mut buf = vec![0u8; 16 * 1024];
    let mut forwarded = 0usize;
    loop {
        let n = match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut s = seen.lock().unwrap();
            let room = (64 * 1024usize).saturating_sub(s.first_bytes.len());
            s.first_bytes.extend_from_slice(&buf[..n.min(room)]);
        }
        let mut data = &buf[..n];
        let mut failed = false;
        while !data.is_empty() {
            let piece = if forwarded < split_bytes {
                data.len().min(chunk)
            } else {
                data.len()
            };
            if up_w.write_all(&data[..piece]).is_err() {
                failed = true;
                break;
            }
            if !answered.load(Ordering::SeqCst) {
                seen.lock().unwrap().writes_before_answer += 1;
            }
            forwarded += piece;
            data = &data[piece..];
            if forwarded < split_bytes + piece && !data.is_empty() {
                thread::sleep(gap);
            }
        }
        if failed {
            break;
        }
    }
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = down.join();
}
