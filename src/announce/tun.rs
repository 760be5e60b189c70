//! The interface the announced VIPs sit on: a TUN device this process creates and holds
//! open. It is not persistent, so the kernel deletes it, and with it every VIP on it, the
//! moment the last descriptor closes: when ringlb exits or dies by any means (SIGKILL, the
//! OOM killer, an abort). The routing daemon, which exports the interface's addresses
//! (BIRD's `protocol direct`), then withdraws the routes; nothing has to run after ringlb
//! for that, neither the supervising parent nor `ExecStopPost`. Nothing is ever routed into
//! the device (the VIPs are /32 and /128, which make no prefix route), so nobody reads it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// `_IOW('T', 202, int)` from <linux/if_tun.h>.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// The open TUN device; dropping it deletes the interface.
pub struct Tun {
    _file: File,
    pub index: u32,
    pub name: String,
}

impl Tun {
    /// Creates interface `name` and brings it up. Fails with `EBUSY` when another process
    /// holds an interface of that name open (another ringlb on this host), and with
    /// `EPERM` without CAP_NET_ADMIN.
    pub fn create(name: &str) -> io::Result<Tun> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
        // SAFETY: TUNSETIFF reads and writes one ifreq, which lives across the call.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_link(name, true)?;
        let index = nix::net::if_::if_nametoindex(name).map_err(io::Error::from)?;
        Ok(Tun {
            _file: file,
            index,
            name: name.to_string(),
        })
    }
}

/// An ifreq naming `name` (at most 15 bytes, checked by the config).
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() || name.bytes().any(|b| b == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Sets or clears IFF_UP on `name` (SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket).
/// Down, the routing daemon withdraws every address on it (the supervising parent's way
/// of withdrawing a frozen child's VIPs).
pub fn set_link(name: &str, up: bool) -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the fd is owned by `sock` below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut req = ifreq(name)?;
    // SAFETY: both ioctls read and write one ifreq, which lives across the calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        if up {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        } else {
            req.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short);
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
