//! The one backend that answers with its name, so that a test can tell which server a
//! connection reached; it also answers health checks. And the clients that ask it: a short
//! exchange (`fetch_name`), or a connection held open (`HeldConn`).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::backends::{echo_to_eof, BACKEND_BACKLOG};
use super::{connect_from, connect_from_known_port, read_to_eof, set_timeouts, Ringlb, IO_TIMEOUT};

/// What a test client sends to a `NamedServer` to be served: anything else is a health
/// check.
pub const TRAFFIC_LINE: &[u8] = b"TRAFFIC\n";

/// How long a `NamedServer` waits for a client's first line before treating the connection
/// as a bare TCP check.
const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(2);

/// A loopback server that answers with its name: traffic gets `NAME\n`, then an echo of
/// everything until the client's EOF, then EOF. It also answers health checks, counts both,
/// and can close its listener (connects are then refused) and reopen it on the same port.
///
/// Started with `start`, a connection is traffic when it begins with `TRAFFIC_LINE`; anything
/// else is a check: the server reads up to the end of an HTTP header block (or EOF), records
/// the bytes, and answers `HTTP/1.0 <status>` with the status set by `set_status`, or nothing
/// at all while `set_hang(true)`. Started with `greeting`, every connection is traffic and the
/// name comes first, for clients whose first bytes are their own (a ClientHello, a PROXY
/// header).
pub struct NamedServer {
    name: &'static str,
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
}

#[derive(Default)]
struct State {
    /// Every connection is traffic, greeted with the name (`greeting`).
    greets: bool,
    status: AtomicU16,
    hang: AtomicBool,
    checks: AtomicU64,
    traffic: AtomicU64,
    open_traffic: AtomicU64,
    peak_traffic: AtomicU64,
    last_check: Mutex<Vec<u8>>,
}

impl NamedServer {
    /// Listens on `127.0.0.1:0`, serving traffic after `TRAFFIC_LINE` and answering checks
    /// with 200.
    pub fn start(name: &'static str) -> NamedServer {
        NamedServer::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// `start` on `addr` (port 0 for any).
    pub fn start_at(name: &'static str, addr: SocketAddr) -> NamedServer {
        NamedServer::open_with(name, addr, false)
    }

    /// Listens on `127.0.0.1:0` and says its name to every client at once; no checks.
    pub fn greeting(name: &'static str) -> NamedServer {
        NamedServer::open_with(name, SocketAddr::from(([127, 0, 0, 1], 0)), true)
    }

    fn open_with(name: &'static str, addr: SocketAddr, greets: bool) -> NamedServer {
        let state = Arc::new(State {
            greets,
            ..State::default()
        });
        state.status.store(200, Ordering::Relaxed);
        let mut server = NamedServer {
            name,
            addr,
            state,
            accept: None,
        };
        server.open();
        server
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The HTTP status of the next check answers.
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::Relaxed);
    }

    /// While set, checks are read but never answered (a hung application).
    pub fn set_hang(&self, hang: bool) {
        self.state.hang.store(hang, Ordering::Relaxed);
    }

    /// Check connections accepted so far (HTTP requests or bare connects).
    pub fn checks(&self) -> u64 {
        self.state.checks.load(Ordering::Relaxed)
    }

    /// Traffic connections served so far.
    pub fn traffic(&self) -> u64 {
        self.state.traffic.load(Ordering::Relaxed)
    }

    /// Most traffic connections this server ever had open at once.
    pub fn peak_traffic(&self) -> u64 {
        self.state.peak_traffic.load(Ordering::Relaxed)
    }

    /// The bytes of the last check that sent any.
    pub fn last_check(&self) -> Vec<u8> {
        self.state
            .last_check
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes the listener: from the return on, connects to `addr` are refused. Connections
    /// already in the accept queue are accepted and served first, so none is reset by the
    /// close itself; established connections go on.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.accept.take() {
            stop.store(true, Ordering::Relaxed);
            thread.join().expect("named server accept thread");
        }
    }

    /// Listens again on the same address after `stop`.
    pub fn restart(&mut self) {
        assert!(self.accept.is_none(), "{} is still listening", self.name);
        self.open();
    }

    fn open(&mut self) {
        use socket2::{Domain, Socket, Type};
        let socket =
            Socket::new(Domain::for_address(self.addr), Type::STREAM, None).expect("socket");
        // The port of a stopped server has connections in TIME_WAIT; reopening must work.
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        socket
            .bind(&self.addr.into())
            .unwrap_or_else(|e| panic!("bind {}: {e}", self.addr));
        socket.listen(BACKEND_BACKLOG).expect("listen");
        socket.set_nonblocking(true).expect("non-blocking listener");
        let listener: TcpListener = socket.into();
        self.addr = listener.local_addr().expect("named server addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let state = self.state.clone();
        let name = self.name;
        let thread = thread::Builder::new()
            .name(format!("named-{name}"))
            .spawn(move || loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = state.clone();
                        let spawned = thread::Builder::new()
                            .stack_size(256 * 1024)
                            .spawn(move || serve(&state, name, stream));
                        if let Err(e) = spawned {
                            eprintln!("named server {name}: cannot spawn a thread: {e}");
                        }
                    }
                    // The queue is empty: only now may a stop close the listener.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if stopping.load(Ordering::Relaxed) {
                            return;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            })
            .expect("spawn named server thread");
        self.accept = Some((stop, thread));
    }
}

impl Drop for NamedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(state: &State, name: &str, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let mut got = Vec::new();
    if !state.greets {
        set_timeouts(&stream, FIRST_LINE_TIMEOUT);
        let mut buf = [0u8; 4096];
        // Up to the end of an HTTP header block, or the traffic line, or EOF / error.
        while !got.ends_with(b"\r\n\r\n") && got != TRAFFIC_LINE && got.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }
    if state.greets || got == TRAFFIC_LINE {
        let open = state.open_traffic.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak_traffic.fetch_max(open, Ordering::SeqCst);
        state.traffic.fetch_add(1, Ordering::SeqCst);
        set_timeouts(&stream, IO_TIMEOUT);
        if stream.write_all(format!("{name}\n").as_bytes()).is_ok() {
            // The connection stays open until the client closes it (or IO_TIMEOUT).
            echo_to_eof(&mut stream);
        }
        state.open_traffic.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    state.checks.fetch_add(1, Ordering::SeqCst);
    if !got.is_empty() {
        *state
            .last_check
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = got;
    }
    if state.hang.load(Ordering::Relaxed) {
        // Never answer; the checker gives up at its timeout and closes.
        set_timeouts(&stream, IO_TIMEOUT);
        let _ = read_to_eof(&mut stream, 1 << 20);
        return;
    }
    let status = state.status.load(Ordering::Relaxed);
    let _ =
        stream.write_all(format!("HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes());
}

/// One short traffic exchange with a `NamedServer` through `addr` from 127.0.0.1: returns
/// the client address and the name of the server that answered.
pub fn fetch_name(addr: SocketAddr) -> (SocketAddr, io::Result<String>) {
    fetch_name_from(Ipv4Addr::LOCALHOST.into(), addr)
}

/// `fetch_name` from the loopback address `local_ip`.
pub fn fetch_name_from(local_ip: IpAddr, addr: SocketAddr) -> (SocketAddr, io::Result<String>) {
    let (local, connected) = connect_from(local_ip, addr);
    let result = connected.and_then(|mut s| {
        s.write_all(TRAFFIC_LINE)?;
        s.shutdown(Shutdown::Write)?;
        let answer = read_to_eof(&mut s, 1024)?;
        let text = String::from_utf8_lossy(&answer);
        match text.strip_suffix('\n') {
            Some(name) if !name.is_empty() && !name.contains('\n') => Ok(name.to_owned()),
            _ => Err(io::Error::other(format!("unexpected answer {text:?}"))),
        }
    });
    (local, result)
}

/// `fetch_name`, panicking with the log on failure.
pub fn must_fetch_name(lb: &Ringlb, addr: SocketAddr) -> String {
    let (local, result) = fetch_name(addr);
    result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()))
}

/// A traffic connection kept open: it has been served (the server's name was read) unless
/// `wait_served` is still to be called.
pub struct HeldConn {
    pub local: SocketAddr,
    pub stream: TcpStream,
}

impl HeldConn {
    /// Connects through `addr` and sends the traffic line, without waiting for an answer.
    pub fn open(addr: SocketAddr) -> HeldConn {
        let (local, connected) = connect_from_known_port(addr);
        let mut stream = connected.unwrap_or_else(|e| panic!("connect from {local}: {e}"));
        stream.write_all(TRAFFIC_LINE).expect("write traffic line");
        HeldConn { local, stream }
    }

    /// Reads the serving server's name, waiting at most `timeout`.
    pub fn read_name(&mut self, timeout: Duration) -> io::Result<String> {
        self.stream.set_read_timeout(Some(timeout))?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            match self.stream.read(&mut byte)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("closed after {:?}", String::from_utf8_lossy(&line)),
                    ))
                }
                _ => line.push(byte[0]),
            }
            if line.len() > 64 {
                return Err(io::Error::other("answer line too long"));
            }
        }
        line.pop();
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Opens a connection and waits until it is served; returns it and the server's name.
    pub fn served(lb: &Ringlb, addr: SocketAddr) -> (HeldConn, String) {
        let mut conn = HeldConn::open(addr);
        let name = conn
            .read_name(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("held connection {}: {e}; log:\n{}", conn.local, lb.log()));
        (conn, name)
    }
}
