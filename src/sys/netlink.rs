//! Addresses on and off an interface with rtnetlink (RTM_NEWADDR / RTM_DELADDR), each
//! request acknowledged by the kernel before the next, so a failure is reported with its
//! address: VRRP's VIPs (`ha`) and the announced VIPs (`announce`). IPv6 addresses are added
//! with IFA_F_NODAD: usable at once, without duplicate address detection (the other router
//! has just released it, or the address is a /128 on an interface of its own).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// An address with its prefix length, as it sits on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IfAddr {
    /// The address alone: /32 or /128.
    pub fn host(addr: IpAddr) -> IfAddr {
        IfAddr {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

pub struct Rtnetlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// What adding or removing an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Add: it was there already. Remove: it was not there.
    AlreadyThere,
}

impl Rtnetlink {
    pub fn open() -> io::Result<Rtnetlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnetlink {
            socket,
            seq: 0,
            buf: Vec::with_capacity(8192),
        })
    }

    pub fn add(&mut self, ifindex: u32, vip: IfAddr) -> io::Result<Outcome> {
        let msg = RouteNetlinkMessage::NewAddress(address_message(ifindex, vip));
        match self.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Outcome::AlreadyThere),
            r => r.map(|()| Outcome::Done),
        }
    }

    pub fn remove(&mut self, ifindex: u32, vip: IfAddr) -> io::Result<Outcome> {
        let msg = RouteNetlinkMessage::DelAddress(address_message(ifindex, vip));
        match self.request(msg, 0) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => {
                Ok(Outcome::AlreadyThere)
            }
            r => r.map(|()| Outcome::Done),
        }
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            self.buf.clear();
            let n = self.socket.recv(&mut self.buf, 0)?;
            let mut at = 0;
            while at < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[at..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(err) = reply.payload {
                        return match err.code {
                            None => Ok(()),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
    }
}

fn address_message(ifindex: u32, vip: IfAddr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.prefix_len = vip.prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = ifindex;
    match vip.addr {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(vip.addr));
            msg.attributes.push(AddressAttribute::Address(vip.addr));
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(vip.addr));
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    #[test]
    fn ipv6_vips_skip_duplicate_address_detection() {
        let vip = IfAddr {
            addr: "2001:db8::10".parse().unwrap(),
            prefix_len: 64,
        };
        let msg = address_message(7, vip);
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        // ifaddrmsg: family AF_INET6, prefix 64, flags IFA_F_NODAD, scope 0, index 7.
        assert_eq!(buf[..8], [10, 64, 0x02, 0, 7, 0, 0, 0]);
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
    }

    #[test]
    fn ipv4_vips_carry_local_and_address() {
        let vip = IfAddr {
            addr: "192.0.2.10".parse().unwrap(),
            prefix_len: 24,
        };
        let msg = address_message(3, vip);
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        assert_eq!(buf[..8], [2, 24, 0, 0, 3, 0, 0, 0]);
        assert_eq!(msg.attributes.len(), 2);
    }
}
