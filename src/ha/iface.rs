//! What the VRRP thread needs to know about an interface: its index, its MAC address and its
//! own (primary) address of the instance's family, which is the adverts' source and the
//! tie-breaker: the first IPv4 address, or the IPv6 link-local one (RFC 9568 §5.1.2.1).

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

use super::error::SetupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub mac: [u8; 6],
    pub primary: IpAddr,
}

/// Looks `name` up; `exclude` are addresses that cannot be the primary (the VIPs, which a
/// crashed predecessor may have left behind).
pub fn lookup(name: &str, ipv6: bool, exclude: &[IpAddr]) -> Result<Interface, SetupError> {
    let c_name = std::ffi::CString::new(name).map_err(|_| SetupError::BadName(name.to_string()))?;
    // SAFETY: c_name is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(SetupError::NoInterface {
            name: name.to_string(),
            err: io::Error::last_os_error(),
        });
    }
    let mac = hardware_address(name).map_err(|err| SetupError::Mac {
        name: name.to_string(),
        err,
    })?;
    let primary = nix::ifaddrs::getifaddrs()
        .map_err(|err| SetupError::Addresses {
            name: name.to_string(),
            err,
        })?
        .filter(|a| a.interface_name == name)
        .filter_map(|a| {
            let s = a.address?;
            if ipv6 {
                let ip = s.as_sockaddr_in6()?.ip();
                // Link-local, fe80::/10.
                ((ip.segments()[0] & 0xffc0) == 0xfe80).then_some(IpAddr::V6(ip))
            } else {
                s.as_sockaddr_in().map(|sin| IpAddr::V4(sin.ip()))
            }
        })
        .find(|ip| !exclude.contains(ip))
        .ok_or_else(|| SetupError::NoPrimary {
            name: name.to_string(),
            ipv6,
        })?;
    Ok(Interface {
        index,
        mac,
        primary,
    })
}

fn hardware_address(name: &str) -> io::Result<[u8; 6]> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), None)?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, &src) in req
        .ifr_name
        .iter_mut()
        .zip(name.as_bytes().iter().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr inside `req`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl succeeded, so the union holds ifr_hwaddr.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data.iter()) {
        *m = *d as u8;
    }
    Ok(mac)
}
