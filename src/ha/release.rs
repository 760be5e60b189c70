//! Releasing what a ringlb that is gone held: each instance's VIPs are taken off their
//! interface, and where one was there (this box was master), a priority-0 advert tells the
//! backup to take over after `Skew_Time` instead of three missed adverts. Run by the
//! supervising parent when the serving process dies by any means, and by `ringlb release`
//! (the unit's `ExecStopPost`, for a service killed whole).

use std::net::IpAddr;

use vrrp::{AdvertRepr, Transmit, TransmitReason, VirtualAddrs};

use super::error::SetupError;
use super::iface;
use super::socket::VrrpSocket;
use crate::config::{self, VrrpInstance};
use crate::sys::netlink::{Outcome, Rtnetlink};

/// Releases every instance's VIPs; one line per thing done or failed.
pub fn release(vrrp: &config::Vrrp) -> Vec<String> {
    let mut out = Vec::new();
    let mut netlink = match Rtnetlink::open() {
        Ok(n) => n,
        Err(e) => {
            out.push(format!("vrrp: rtnetlink socket: {e}"));
            return out;
        }
    };
    for vi in &vrrp.instances {
        release_instance(vi, &mut netlink, &mut out);
    }
    out
}

fn release_instance(vi: &VrrpInstance, netlink: &mut Rtnetlink, out: &mut Vec<String>) {
    let name = &vi.name;
    // An address owner's VIPs are its own addresses.
    if vi.priority == 255 {
        return;
    }
    let ipv6 = vi.vips.first().is_some_and(|v| v.addr.is_ipv6());
    let vips: Vec<IpAddr> = vi.vips.iter().map(|v| v.addr).collect();
    let iface = match iface::lookup(&vi.interface, ipv6, &vips) {
        Ok(i) => i,
        Err(e) => {
            out.push(format!("vrrp {name}: {e}"));
            return;
        }
    };
    let mut held = false;
    for vip in &vi.vips {
        match netlink.remove(iface.index, super::if_addr(vip)) {
            Ok(Outcome::Done) => {
                held = true;
                out.push(format!(
                    "vrrp {name}: removed {}/{} from {}",
                    vip.addr, vip.prefix_len, vi.interface
                ));
            }
            Ok(_) => {}
            Err(e) => out.push(format!("vrrp {name}: cannot remove {}: {e}", vip.addr)),
        }
    }
    if !held {
        return;
    }
    match priority_zero(vi, &iface) {
        Ok(n) => out.push(format!(
            "vrrp {name}: sent priority 0 ({n} adverts): the backup takes over now"
        )),
        Err(e) => out.push(format!("vrrp {name}: cannot send priority 0: {e}")),
    }
}

/// Sends the priority-0 advert a leaving master sends, to the group or each peer.
fn priority_zero(vi: &VrrpInstance, iface: &iface::Interface) -> Result<usize, SetupError> {
    let addrs = match iface.primary {
        IpAddr::V4(_) => VirtualAddrs::V4(
            vi.vips
                .iter()
                .filter_map(|v| match v.addr {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect(),
        ),
        IpAddr::V6(_) => VirtualAddrs::V6(
            vi.vips
                .iter()
                .filter_map(|v| match v.addr {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                })
                .collect(),
        ),
    };
    let advert = AdvertRepr::new(vi.version, vi.vrid, 0, vi.advert_interval, vi.auth, addrs)?;
    let tx = Transmit {
        advert,
        checksum_mode: vi.checksum,
        reason: TransmitReason::Shutdown,
    };
    let multicast = vi.unicast_peers.is_empty();
    let socket =
        VrrpSocket::open(&vi.interface, iface.index, iface.primary, multicast).map_err(|err| {
            SetupError::RawSocket {
                name: vi.interface.clone(),
                err,
            }
        })?;
    let dsts = if multicast {
        vec![tx.multicast_dst()]
    } else {
        vi.unicast_peers.clone()
    };
    let mut buf = [0u8; 1500];
    for &dst in &dsts {
        let len = tx.emit(&mut buf, iface.primary, dst)?;
        socket
            .send(&buf[..len], dst)
            .map_err(|err| SetupError::Send { dst, err })?;
    }
    Ok(dsts.len())
}
