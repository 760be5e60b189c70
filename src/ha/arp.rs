//! Gratuitous ARP: an ARP request for a VIP from the VIP itself (sender = target = VIP),
//! broadcast in a raw Ethernet frame on an AF_PACKET socket, so switches and neighbours learn
//! the new master's MAC at once.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const BROADCAST: [u8; 6] = [0xff; 6];
/// The minimum Ethernet payload is 46 bytes; the frame is padded to 60 without the FCS.
pub const FRAME_LEN: usize = 60;

/// The frame of one gratuitous ARP request.
pub fn frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request, as keepalived sends
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An AF_PACKET socket that only sends (protocol 0: it receives nothing).
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl ArpSocket {
    pub fn open(ifindex: u32) -> io::Result<ArpSocket> {
        // SAFETY: plain syscall; the descriptor is owned by the OwnedFd below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ArpSocket { fd, ifindex })
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut to: libc::sockaddr_ll = unsafe { mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = ETH_P_ARP.to_be();
        to.sll_ifindex = self.ifindex as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&BROADCAST);
        // SAFETY: `frame` and `to` outlive the call; the length arguments match them.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_request_names_the_vip_twice() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let f = frame(mac, Ipv4Addr::new(192, 0, 2, 10));
        let want_head: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08,
            0x06, // Ethernet
            0, 1, 0x08, 0, 6, 4, 0, 1, // ARP request for IPv4 over Ethernet
            0x02, 0, 0, 0, 0, 0x01, 192, 0, 2, 10, // sender
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 192, 0, 2, 10, // target
        ];
        assert_eq!(f[..42], want_head);
        assert!(f[42..].iter().all(|&b| b == 0));
    }
}
