//! Unsolicited neighbour advertisements (RFC 4861 §7.2.6), IPv6's gratuitous ARP: an NA for
//! each VIP with the Override flag and our MAC as target link-layer address, sent to all
//! nodes (ff02::1) with hop limit 255 from the VIP itself. An ICMPv6 raw socket lets the
//! kernel build the IPv6 header and the checksum.

use std::io::{self, IoSlice};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, Socket, Type};

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LINK_ADDR: u8 = 2;
pub const NA_LEN: usize = 32;

/// The ICMPv6 message (checksum left zero: the kernel fills it in).
pub fn message(mac: [u8; 6], vip: Ipv6Addr) -> [u8; NA_LEN] {
    let mut m = [0u8; NA_LEN];
    m[0] = NEIGHBOR_ADVERTISEMENT;
    m[4] = FLAG_OVERRIDE;
    m[8..24].copy_from_slice(&vip.octets());
    m[24] = OPTION_TARGET_LINK_ADDR;
    m[25] = 1; // length in units of 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

pub struct NaSocket {
    socket: Socket,
    ifindex: u32,
}

impl NaSocket {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<NaSocket> {
        let socket = Socket::new(
            Domain::IPV6,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::ICMPV6),
        )?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        socket.set_multicast_hops_v6(255)?;
        socket.set_multicast_if_v6(ifindex)?;
        socket.set_multicast_loop_v6(false)?;
        // Receive nothing: this socket only sends.
        let mut filter = [0xffu8; 32];
        filter.fill(0xff);
        // SAFETY: ICMP6_FILTER takes a 32-byte bitmap; all bits set blocks every type.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_ICMPV6,
                1, // ICMP6_FILTER
                filter.as_ptr().cast(),
                filter.len() as libc::socklen_t,
            );
        }
        Ok(NaSocket { socket, ifindex })
    }

    /// Sends one unsolicited NA for `vip` (which must be on the interface: it is the source).
    pub fn send(&self, mac: [u8; 6], vip: Ipv6Addr) -> io::Result<()> {
        let msg = message(mac, vip);
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: vip.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let to = SockaddrIn6::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        sendmsg(
            self.socket.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[ControlMessage::Ipv6PacketInfo(&info)],
            MsgFlags::MSG_DONTWAIT,
            Some(&to),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsolicited_na_overrides_with_our_mac() {
        let m = message([0x02, 0, 0, 0, 0, 0x01], "2001:db8::10".parse().unwrap());
        let want: [u8; NA_LEN] = [
            136, 0, 0, 0, // type, code, checksum
            0x20, 0, 0, 0, // Override, not Solicited, not Router
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
            2, 1, 0x02, 0, 0, 0, 0, 0x01, // target link-layer address option
        ];
        assert_eq!(m, want);
    }
}
