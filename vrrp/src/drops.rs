//! Why a received advert was dropped: one variant per check of RFC 9568 §7.1 / RFC 3768 §7.1
//! (and per check this crate adds), so the I/O side can log the detail and count by kind.

use crate::time::Interval;
use crate::wire::{Family, Version};

/// A received VRRP packet failed a check and was discarded. Never fatal: network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    // IP-layer facts (checked first, as RFC 9568 §7.1 lists them).
    #[error("TTL/hop limit {0} is not 255: sent from off-link")]
    BadTtl(u8),
    #[error("IP source and destination (or the packet view) are of different families")]
    MixedFamilies,

    // The message itself.
    #[error("message of {len} bytes is shorter than its header, addresses and auth data")]
    Truncated { len: usize },
    #[error("version {0} is not 2 or 3")]
    BadVersion(u8),
    #[error("VRRPv2 received over IPv6")]
    V2OverIpv6,
    #[error("address count {count} does not match the {len}-byte message")]
    BadAddrCount { count: u8, len: usize },
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("type {0} is not an advertisement")]
    BadType(u8),
    #[error("advertisement interval is zero")]
    ZeroInterval,

    // Against the receiving instance's configuration.
    #[error("instance is not running (Initialize state)")]
    NotRunning,
    #[error("advert is {got}, instance runs {expected}")]
    VersionMismatch { expected: Version, got: Version },
    #[error("advert is {got}, instance is {expected}")]
    WrongFamily { expected: Family, got: Family },
    #[error("VRID {got} is not this instance's {expected}")]
    VridMismatch { expected: u8, got: u8 },
    #[error("advert comes from this router's own address (looped back)")]
    OwnAdvert,
    #[error("this router owns the addresses (priority 255) and ignores adverts")]
    LocalOwner,
    #[error("auth type {got} differs from the configured {expected}")]
    AuthTypeMismatch { expected: u8, got: u8 },
    #[error("authentication data differs from the configured password")]
    AuthMismatch,
    #[error("VRRPv2 advert interval {got} differs from the configured {expected}")]
    IntervalMismatch { expected: Interval, got: Interval },
    #[error("VRRPv2 address list differs from the configured one and the sender is not the owner")]
    AddressListMismatch,
}

impl DropReason {
    /// The reason without its detail, for counting.
    pub const fn kind(&self) -> DropKind {
        match self {
            DropReason::BadTtl(_) => DropKind::BadTtl,
            DropReason::MixedFamilies => DropKind::MixedFamilies,
            DropReason::Truncated { .. } => DropKind::Truncated,
            DropReason::BadVersion(_) => DropKind::BadVersion,
            DropReason::V2OverIpv6 => DropKind::V2OverIpv6,
            DropReason::BadAddrCount { .. } => DropKind::BadAddrCount,
            DropReason::BadChecksum => DropKind::BadChecksum,
            DropReason::BadType(_) => DropKind::BadType,
            DropReason::ZeroInterval => DropKind::ZeroInterval,
            DropReason::NotRunning => DropKind::NotRunning,
            DropReason::VersionMismatch { .. } => DropKind::VersionMismatch,
            DropReason::WrongFamily { .. } => DropKind::WrongFamily,
            DropReason::VridMismatch { .. } => DropKind::VridMismatch,
            DropReason::OwnAdvert => DropKind::OwnAdvert,
            DropReason::LocalOwner => DropKind::LocalOwner,
            DropReason::AuthTypeMismatch { .. } => DropKind::AuthTypeMismatch,
            DropReason::AuthMismatch => DropKind::AuthMismatch,
            DropReason::IntervalMismatch { .. } => DropKind::IntervalMismatch,
            DropReason::AddressListMismatch => DropKind::AddressListMismatch,
        }
    }
}

/// [`DropReason`] without its detail: a counter index and a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropKind {
    BadTtl,
    MixedFamilies,
    Truncated,
    BadVersion,
    V2OverIpv6,
    BadAddrCount,
    BadChecksum,
    BadType,
    ZeroInterval,
    NotRunning,
    VersionMismatch,
    WrongFamily,
    VridMismatch,
    OwnAdvert,
    LocalOwner,
    AuthTypeMismatch,
    AuthMismatch,
    IntervalMismatch,
    AddressListMismatch,
}

impl DropKind {
    /// Every kind, in declaration order (which is also the counter index).
    pub const ALL: [DropKind; 19] = [
        DropKind::BadTtl,
        DropKind::MixedFamilies,
        DropKind::Truncated,
        DropKind::BadVersion,
        DropKind::V2OverIpv6,
        DropKind::BadAddrCount,
        DropKind::BadChecksum,
        DropKind::BadType,
        DropKind::ZeroInterval,
        DropKind::NotRunning,
        DropKind::VersionMismatch,
        DropKind::WrongFamily,
        DropKind::VridMismatch,
        DropKind::OwnAdvert,
        DropKind::LocalOwner,
        DropKind::AuthTypeMismatch,
        DropKind::AuthMismatch,
        DropKind::IntervalMismatch,
        DropKind::AddressListMismatch,
    ];

    /// A stable snake_case label for metrics.
    pub const fn label(self) -> &'static str {
        match self {
            DropKind::BadTtl => "bad_ttl",
            DropKind::MixedFamilies => "mixed_families",
            DropKind::Truncated => "truncated",
            DropKind::BadVersion => "bad_version",
            DropKind::V2OverIpv6 => "v2_over_ipv6",
            DropKind::BadAddrCount => "bad_addr_count",
            DropKind::BadChecksum => "bad_checksum",
            DropKind::BadType => "bad_type",
            DropKind::ZeroInterval => "zero_interval",
            DropKind::NotRunning => "not_running",
            DropKind::VersionMismatch => "version_mismatch",
            DropKind::WrongFamily => "wrong_family",
            DropKind::VridMismatch => "vrid_mismatch",
            DropKind::OwnAdvert => "own_advert",
            DropKind::LocalOwner => "local_owner",
            DropKind::AuthTypeMismatch => "auth_type_mismatch",
            DropKind::AuthMismatch => "auth_mismatch",
            DropKind::IntervalMismatch => "interval_mismatch",
            DropKind::AddressListMismatch => "address_list_mismatch",
        }
    }
}

/// Dropped adverts counted by [`DropKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    counts: [u64; DropKind::ALL.len()],
}

impl DropCounts {
    /// Counts one drop.
    pub fn record(&mut self, reason: &DropReason) {
        // `kind as usize` is the kind's position in `ALL`, which sizes the array.
        let slot = &mut self.counts[reason.kind() as usize];
        *slot = slot.saturating_add(1);
    }

    /// Drops of one kind.
    pub fn get(&self, kind: DropKind) -> u64 {
        self.counts[kind as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Every kind with its count, zeros included (stable series for metrics).
    pub fn iter(&self) -> impl Iterator<Item = (DropKind, u64)> + '_ {
        DropKind::ALL.iter().map(|&k| (k, self.get(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (i, k) in DropKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        let mut labels: Vec<_> = DropKind::ALL.iter().map(|k| k.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropKind::ALL.len());
    }

    #[test]
    fn counts_by_kind() {
        let mut c = DropCounts::default();
        c.record(&DropReason::BadTtl(254));
        c.record(&DropReason::BadTtl(1));
        c.record(&DropReason::Truncated { len: 3 });
        assert_eq!(c.get(DropKind::BadTtl), 2);
        assert_eq!(c.get(DropKind::Truncated), 1);
        assert_eq!(c.get(DropKind::BadChecksum), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), DropKind::ALL.len());
        assert_eq!(
            DropReason::BadTtl(254).to_string(),
            "TTL/hop limit 254 is not 255: sent from off-link"
        );
    }
}
