//! Hand-made VRRP packets sent into the lab from the client's namespace, to show that the
//! balancers drop malformed or off-link adverts (and count them) instead of acting on them.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::thread;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp::{AdvertRepr, Auth, ChecksumMode, Interval, Packet, Version, VirtualAddrs};

/// A valid VRRPv3 advert for VRID 51 / 192.0.2.10 from `src` at `priority`, 100 ms interval.
pub fn advert(src: Ipv4Addr, priority: u8) -> Vec<u8> {
    let repr = AdvertRepr::new(
        Version::V3,
        51,
        priority,
        Interval::from_centis(10).unwrap(),
        Auth::None,
        VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, 10)]),
    )
    .unwrap();
    let mut buf = vec![0; repr.buffer_len()];
    let mut packet = Packet::new_unchecked(&mut buf[..], vrrp::Family::Ipv4);
    let dst = vrrp::wire::MULTICAST_V4;
    repr.emit(&mut packet, src.into(), dst.into(), ChecksumMode::Rfc)
        .unwrap();
    buf
}

/// Sends each `(ttl, message)` to 224.0.0.18 from inside `netns`, in order.
pub fn send_multicast(netns: &str, from: Ipv4Addr, packets: Vec<(u32, Vec<u8>)>) {
    let ns = File::open(format!("/run/netns/{netns}")).expect("open netns");
    thread::spawn(move || {
        // SAFETY: plain syscall on a descriptor we hold; moves only this thread.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
        socket.set_multicast_if_v4(&from).unwrap();
        let to = SockAddr::from(SocketAddrV4::new(vrrp::wire::MULTICAST_V4, 0));
        for (ttl, message) in packets {
            socket.set_multicast_ttl_v4(ttl).unwrap();
            socket.send_to(&message, &to).unwrap();
        }
    })
    .join()
    .expect("inject thread");
}
