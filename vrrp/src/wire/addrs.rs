//! The virtual address list an advert carries, typed so one list cannot mix families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Family;

/// The virtual addresses of a router, all of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VirtualAddrs {
    V4(Vec<Ipv4Addr>),
    V6(Vec<Ipv6Addr>),
}

impl VirtualAddrs {
    pub fn family(&self) -> Family {
        match self {
            VirtualAddrs::V4(_) => Family::Ipv4,
            VirtualAddrs::V6(_) => Family::Ipv6,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            VirtualAddrs::V4(a) => a.len(),
            VirtualAddrs::V6(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (v4, v6) = match self {
            VirtualAddrs::V4(a) => (a.as_slice(), &[][..]),
            VirtualAddrs::V6(a) => (&[][..], a.as_slice()),
        };
        v4.iter()
            .map(|&a| IpAddr::V4(a))
            .chain(v6.iter().map(|&a| IpAddr::V6(a)))
    }

    /// True if both hold the same addresses, in any order.
    pub fn same_set(&self, other: &VirtualAddrs) -> bool {
        let mut a: Vec<IpAddr> = self.iter().collect();
        let mut b: Vec<IpAddr> = other.iter().collect();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        a == b
    }
}

impl From<Vec<Ipv4Addr>> for VirtualAddrs {
    fn from(addrs: Vec<Ipv4Addr>) -> VirtualAddrs {
        VirtualAddrs::V4(addrs)
    }
}

impl From<Vec<Ipv6Addr>> for VirtualAddrs {
    fn from(addrs: Vec<Ipv6Addr>) -> VirtualAddrs {
        VirtualAddrs::V6(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_iteration_and_set_comparison() {
        let a = VirtualAddrs::from(vec![
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        ]);
        let b = VirtualAddrs::from(vec![
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 1),
        ]);
        let v6 = VirtualAddrs::from(vec![Ipv6Addr::LOCALHOST]);
        assert_eq!((a.family(), v6.family()), (Family::Ipv4, Family::Ipv6));
        assert_eq!(
            a.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["192.0.2.1", "192.0.2.2"]
        );
        assert!(a.same_set(&b));
        assert!(!a.same_set(&v6));
        assert!(!a.same_set(&VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, 1)])));
        assert_eq!(
            v6.iter().collect::<Vec<_>>(),
            [IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(VirtualAddrs::V6(vec![]).is_empty());
    }
}
