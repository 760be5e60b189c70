//! The raw socket of one VRRP instance (IP protocol 112), IPv4 or IPv6: bound to the
//! interface, TTL / hop limit 255, joined to 224.0.0.18 / ff02::12 (or unicast to peers).
//! IPv4 receives with the IP header; IPv6 with the hop limit and destination as control
//! messages. Either way the TTL and both addresses reach the VRRP core's checks.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use vrrp::wire::{MULTICAST_V4, MULTICAST_V6, PROTOCOL, TTL};
use vrrp::RxMeta;

pub struct VrrpSocket {
    socket: Socket,
    ifindex: u32,
    local: IpAddr,
}

/// A received packet: the IP-layer facts and where the VRRP message sits in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub meta: RxMeta,
    pub message: Range<usize>,
}

/// Why a received datagram never reached the VRRP core.
#[derive(Debug, PartialEq, Eq)]
pub enum IpHeaderError {
    Truncated,
    NotIpv4,
    /// IPv6: the kernel gave no hop limit, destination or source.
    MissingControl,
}

impl VrrpSocket {
    /// Opens the socket on `ifname`; `local` (IPv4, or IPv6 link-local) is the adverts'
    /// source address and picks the family. With `multicast` it joins the VRRP group.
    pub fn open(ifname: &str, ifindex: u32, local: IpAddr, multicast: bool) -> io::Result<Self> {
        let domain = if local.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let socket = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(i32::from(PROTOCOL))),
        )?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        match local {
            IpAddr::V4(local) => {
                socket.set_ttl_v4(u32::from(TTL))?;
                socket.set_multicast_ttl_v4(u32::from(TTL))?;
                socket.set_multicast_loop_v4(false)?;
                socket.set_multicast_if_v4(&local)?;
                if multicast {
                    let on = InterfaceIndexOrAddress::Index(ifindex);
                    socket.join_multicast_v4_n(&MULTICAST_V4, &on)?;
                }
            }
            IpAddr::V6(_) => {
                socket.set_unicast_hops_v6(u32::from(TTL))?;
                socket.set_multicast_hops_v6(u32::from(TTL))?;
                socket.set_multicast_loop_v6(false)?;
                socket.set_multicast_if_v6(ifindex)?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
                setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
                if multicast {
                    socket.join_multicast_v6(&MULTICAST_V6, ifindex)?;
                }
            }
        }
        Ok(VrrpSocket {
            socket,
            ifindex,
            local,
        })
    }

    /// Sends one VRRP message to `dst` (of the socket's family), from the instance's own
    /// address, not from a VIP that may sit on the same interface.
    pub fn send(&self, message: &[u8], dst: IpAddr) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let iov = [IoSlice::new(message)];
        let flags = MsgFlags::MSG_DONTWAIT;
        match (self.local, dst) {
            (IpAddr::V4(local), IpAddr::V4(dst)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(local).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))?;
            }
            (IpAddr::V6(local), IpAddr::V6(dst)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: local.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                sendmsg(fd, &iov, &cmsg, flags, Some(&to))?;
            }
            _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
        Ok(())
    }

    /// Receives one datagram into `buf`; `Ok(None)` when none is waiting. IPv4 datagrams
    /// carry their IP header, which is split off here.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Result<Received, IpHeaderError>>> {
        let fd = self.socket.as_raw_fd();
        if self.local.is_ipv4() {
            return match nix::sys::socket::recv(fd, buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => Ok(Some(split_ipv4(&buf[..n]))),
                Err(nix::errno::Errno::EAGAIN) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let msg =
            match recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
        let (mut hops, mut dst) = (None, None);
        for c in msg.cmsgs()? {
            match c {
                ControlMessageOwned::Ipv6HopLimit(h) => hops = u8::try_from(h).ok(),
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
        }
        let src = msg.address.map(|a| a.ip());
        let received = match (hops, dst, src) {
            (Some(ttl), Some(dst), Some(src)) => Ok(Received {
                meta: RxMeta {
                    ttl,
                    src: IpAddr::V6(src),
                    dst: IpAddr::V6(dst),
                },
                message: 0..msg.bytes,
            }),
            _ => Err(IpHeaderError::MissingControl),
        };
        Ok(Some(received))
    }
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// Splits a datagram from a raw IPv4 socket into the IP facts and the VRRP message, cut at
/// the header's total length (anything after it is link padding).
pub fn split_ipv4(datagram: &[u8]) -> Result<Received, IpHeaderError> {
    let first = *datagram.first().ok_or(IpHeaderError::Truncated)?;
    if first >> 4 != 4 {
        return Err(IpHeaderError::NotIpv4);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || datagram.len() < header_len {
        return Err(IpHeaderError::Truncated);
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if total < header_len || total > datagram.len() {
        return Err(IpHeaderError::Truncated);
    }
    let addr = |at: usize| {
        Ipv4Addr::new(
            datagram[at],
            datagram[at + 1],
            datagram[at + 2],
            datagram[at + 3],
        )
    };
    Ok(Received {
        meta: RxMeta {
            ttl: datagram[8],
            src: IpAddr::V4(addr(12)),
            dst: IpAddr::V4(addr(16)),
        },
        message: header_len..total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keepalived-style VRRPv2 advert as a raw socket hands it over: 20-byte IP header,
    /// 20-byte message, then 6 bytes of Ethernet padding.
    const DATAGRAM: [u8; 46] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00, 192, 0, 2, 2, 224,
        0, 0, 18, // IP
        0x21, 51, 150, 1, 0, 1, 0, 0, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, // VRRP
        0, 0, 0, 0, 0, 0, // padding
    ];

    #[test]
    fn splits_header_and_cuts_padding() {
        let r = split_ipv4(&DATAGRAM).unwrap();
        assert_eq!(r.meta.ttl, 255);
        assert_eq!(r.meta.src, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(r.meta.dst, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(r.message, 20..40);
    }

    #[test]
    fn rejects_short_and_foreign_headers() {
        assert_eq!(split_ipv4(&[]), Err(IpHeaderError::Truncated));
        assert_eq!(split_ipv4(&DATAGRAM[..19]), Err(IpHeaderError::Truncated));
        let mut v6 = DATAGRAM;
        v6[0] = 0x60;
        assert_eq!(split_ipv4(&v6), Err(IpHeaderError::NotIpv4));
        let mut short_ihl = DATAGRAM;
        short_ihl[0] = 0x44;
        assert_eq!(split_ipv4(&short_ihl), Err(IpHeaderError::Truncated));
        let mut long_total = DATAGRAM;
        long_total[3] = 200;
        assert_eq!(split_ipv4(&long_total), Err(IpHeaderError::Truncated));
        for n in 0..DATAGRAM.len() {
            let _ = split_ipv4(&DATAGRAM[..n]);
        }
    }
}
