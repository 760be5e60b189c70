//! Listening sockets: one per worker per bind address, in a SO_REUSEPORT group so the
//! kernel spreads new connections across workers, with IP_FREEBIND so a backup balancer
//! can bind a floating address before it holds it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::logging::event;

/// Accept queue length (the kernel caps it at net.core.somaxconn). Also what one
/// multishot accept may take in one turn, so the fd budget keeps that much room before it
/// uses multishot (`FdBudget`).
pub const BACKLOG: u32 = 1024;

/// One listening socket per worker for `addr`, all in one SO_REUSEPORT group.
///
/// SO_REUSEPORT would also let this group join one that another process (a second ringlb
/// started by mistake) already has on `addr`, and the two would silently share its
/// connections. A probe bound first without SO_REUSEPORT fails on any listener there, so
/// that case is an error, as a plain bind would be.
///
/// The listeners of a ringlb that just exited can outlive it briefly: its io_uring is torn
/// down after the exit, and a pending accept holds its socket until then. So a busy
/// address is retried for up to `PROBE_WAIT` (a restart right after a crash or a stop)
/// before giving up.
pub fn reuseport_group(addr: SocketAddr, workers: usize) -> io::Result<Vec<OwnedFd>> {
    let deadline = Instant::now() + PROBE_WAIT;
    let mut waited = false;
    loop {
        let probe = socket_for(addr)?;
        match probe.bind(&addr.into()) {
            Ok(()) => {
                if waited {
                    let ms = (PROBE_WAIT - deadline.saturating_duration_since(Instant::now()))
                        .as_millis();
                    event!("{addr} was released after {ms} ms");
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                if !waited {
                    waited = true;
                    event!(
                        "{addr} is busy; waiting up to {}s for it to be released",
                        PROBE_WAIT.as_secs()
                    );
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        e.kind(),
                        "another process is already listening there",
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
    (0..workers).map(|_| reuseport_listener(addr)).collect()
}

/// How long a busy address may take to become free.
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// A TCP socket for `addr` with SO_REUSEADDR (TIME_WAIT leftovers do not block a bind) and
/// IP_FREEBIND.
fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv4() {
        socket.set_freebind_v4(true)?;
    } else {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    }
    Ok(socket)
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<OwnedFd> {
    let socket = socket_for(addr)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG as i32)?;
    Ok(socket.into())
}
