//! Small thread-per-connection backends on loopback (echo, hash sink, sender, resetter, or
//! any handler), and a listener whose accept queue is full.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{hash_to_eof, reset, set_timeouts, write_seeded, IO_TIMEOUT};

/// A loopback server that runs `handler` on a thread per accepted connection. Stops accepting
/// on drop; connections in progress finish on their own (their sockets have timeouts).
pub struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn spawn<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::spawn_with_timeout(IO_TIMEOUT, handler)
    }

    /// Like `spawn`, with `timeout` as read/write timeout of every accepted socket.
    pub fn spawn_with_timeout<F>(timeout: Duration, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::spawn_at("127.0.0.1:0", timeout, handler)
    }

    /// Like `spawn_with_timeout`, listening on `bind` (e.g. `[::1]:0`).
    pub fn spawn_at<F>(bind: &str, timeout: Duration, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = listen(bind.parse().expect("backend bind address"), BACKEND_BACKLOG);
        let addr = listener.local_addr().expect("backend addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = stop.clone();
        thread::Builder::new()
            .name(format!("backend-{addr}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    set_timeouts(&stream, timeout);
                    let handler = handler.clone();
                    // Small stacks: the scale test runs 2,000 of these at once.
                    let spawned = thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn(move || handler(stream));
                    if let Err(e) = spawned {
                        eprintln!("backend {addr}: cannot spawn connection thread: {e}");
                    }
                }
            })
            .expect("spawn backend thread");
        Backend { addr, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Echoes everything back; on EOF, half-closes its side and closes.
    pub fn echo() -> Backend {
        Backend::echo_at("127.0.0.1:0")
    }

    /// `echo` listening on `bind`.
    pub fn echo_at(bind: &str) -> Backend {
        Backend::spawn_at(bind, IO_TIMEOUT, |mut s| echo_to_eof(&mut s))
    }

    /// Reads to EOF, then answers with the 32-byte sha256 of what it read and closes.
    pub fn hash_sink() -> Backend {
        Backend::spawn(|mut s| {
            if let Ok((_, digest)) = hash_to_eof(&mut s) {
                let _ = s.write_all(&digest);
            }
        })
    }

    /// Writes `len` bytes of data seeded with `seed`, half-closes, then drains its input to
    /// EOF before closing (closing with unread input would send an RST instead of a FIN).
    pub fn sender(seed: u64, len: usize) -> Backend {
        Backend::spawn(move |mut s| {
            if write_seeded(&mut s, seed, len).is_ok() {
                let _ = s.shutdown(Shutdown::Write);
                let _ = hash_to_eof(&mut s);
            }
        })
    }

    /// Reads to EOF, and only then answers with the sha256 of what it read followed by
    /// `len` seeded bytes, and closes.
    pub fn half_close_answerer(seed: u64, len: usize) -> Backend {
        Backend::spawn(move |mut s| {
            if let Ok((_, digest)) = hash_to_eof(&mut s) {
                if s.write_all(&digest).is_ok() {
                    let _ = write_seeded(&mut s, seed, len);
                }
            }
        })
    }

    /// Waits for the first bytes from the client, then closes with an RST.
    pub fn resetter() -> Backend {
        Backend::spawn(|mut s| {
            let mut buf = [0u8; 1024];
            if let Ok(n) = s.read(&mut buf) {
                if n > 0 {
                    reset(s);
                }
            }
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Accept queue length of test backends. With std's 128, a burst of connects from the
/// balancer overflows the queue; the kernel then drops the handshake's last ACK, and a
/// connection on which the server is to speak first stays half-open for good.
pub(super) const BACKEND_BACKLOG: i32 = 4096;

/// A TCP listener on `addr` with an accept queue of `backlog` connections.
fn listen(addr: SocketAddr, backlog: i32) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(backlog).expect("listen");
    socket.into()
}

/// A listener whose accept queue is full: further SYNs to it are dropped by the kernel, so a
/// connect to it neither succeeds nor is refused until the connecting side gives up.
pub struct FullBacklog {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn open() -> FullBacklog {
        // Backlog 1: the queue is full after two unaccepted connections.
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 1);
        let addr = listener.local_addr().expect("local addr");
        let mut fillers = Vec::new();
        for _ in 0..200 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => fillers.push(s),
                Err(_) => {
                    return FullBacklog {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    }
                }
            }
        }
        panic!("accept queue of {addr} still not full after 200 connections");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Echoes everything until EOF, then half-closes; gives up on an error.
pub(super) fn echo_to_eof(s: &mut TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}
