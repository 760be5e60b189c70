//! Thin, documented wrappers over the few raw syscalls the data path makes outside
//! io_uring: socket setup, splice(2), shutdown, close, and the eventfd the threads wake
//! each other with (`eventfd.rs`). Each `unsafe` block here works on an fd or buffer whose
//! validity the caller already owns. The data path's few others stay beside what they guard:
//! the buffer ring's mapping, pushing SQEs, the inspection buffer's length.

mod eventfd;
pub mod netlink;

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

pub use eventfd::EventFd;

/// Converts a `-1`-on-error syscall result into an `io::Result`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A non-blocking, close-on-exec TCP socket with TCP_NODELAY, ready to connect to `addr`.
pub fn tcp_socket_for(addr: &SocketAddr) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall with constant arguments.
    let fd = check(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    if let Err(e) = set_nodelay(fd) {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: i32) -> io::Result<()> {
    // SAFETY: `value` outlives the call and the length matches its type.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// SO_LINGER {on, 0}: the next close sends a RST instead of a FIN.
pub fn set_linger_zero(fd: RawFd) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `lg` outlives the call and the length matches its type. A failure only
    // means the peer sees a FIN instead of a RST; there is nothing better to do.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The address of the peer of a connected socket.
pub fn peer_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: `getpeername` writes at most `len` bytes into the storage SockAddr provides.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            check(libc::getpeername(fd, storage.cast(), len)).map(drop)
        })
    }
    .ok()?;
    addr.as_socket()
}

/// The local address of a socket (for an accepted one: the address the client reached).
pub fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: `getsockname` writes at most `len` bytes into the storage SockAddr provides.
    let (_, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            check(libc::getsockname(fd, storage.cast(), len)).map(drop)
        })
    }
    .ok()?;
    addr.as_socket()
}

/// Reads what is already queued on `fd` into the spare capacity of `buf`, without waiting:
/// `Ok(0)` is EOF, `WouldBlock` means nothing is there yet.
pub fn recv_queued(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: the kernel writes at most `spare.len()` bytes into the vector's spare capacity.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: `n` bytes of the spare capacity were just initialised by recv.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// The events pending on `fd` now (poll(2) with a zero timeout); 0 on error.
pub fn poll_now(fd: RawFd, events: libc::c_short) -> libc::c_short {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n == 1 {
        p.revents
    } else {
        0
    }
}

/// Half-closes the sending side: the peer reads EOF once queued bytes are delivered.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: plain syscall; ENOTCONN after a reset is harmless here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}

pub fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and forgets it after this call.
    unsafe {
        libc::close(fd);
    }
}

/// What one non-blocking splice(2) call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spliced {
    Moved(usize),
    /// Zero bytes from a socket: the peer sent FIN.
    Eof,
    WouldBlock,
}

/// splice(2) between `from` and `to`, one of which is a pipe, never blocking.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<Spliced> {
    // SAFETY: no offsets are passed (both null), so the kernel reads no user memory.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    };
    match n {
        0 => Ok(Spliced::Eof),
        n if n > 0 => Ok(Spliced::Moved(n as usize)),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                Ok(Spliced::WouldBlock)
            } else {
                Err(e)
            }
        }
    }
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// Ignores SIGPIPE process-wide: a peer that vanished must give EPIPE, not kill us.
pub fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN has no handler code to be unsafe in.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard)
}

/// What `switch_on` found or did.
pub enum SwitchOn {
    WasOn,
    Set,
    CannotRead(io::Error),
    CannotSet(io::Error),
}

/// Makes a boolean sysctl (`/proc/sys/...`) 1 unless it is: reads it, and writes "1" when
/// it reads otherwise. The caller says what each outcome means for it.
pub fn switch_on(path: &str) -> SwitchOn {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => SwitchOn::WasOn,
        Ok(_) => match std::fs::write(path, "1") {
            Ok(()) => SwitchOn::Set,
            Err(e) => SwitchOn::CannotSet(e),
        },
        Err(e) => SwitchOn::CannotRead(e),
    }
}
