//! Configuration of one virtual router instance, with RFC 9568 and keepalived defaults (and
//! keepalived's names where it has the knob), validated once by [`Instance::new`].
//!
//! [`Instance::new`]: crate::Instance::new

use std::net::IpAddr;
use std::time::Duration;

use crate::time::Interval;
use crate::wire::{AdvertRepr, Auth, ChecksumMode, Family, ReprError, Version, VirtualAddrs};

/// Largest `garp_master_repeat` / `garp_master_refresh_repeat` accepted: a burst is sent as one
/// event per round, so an absurd count would flood the event queue.
pub const MAX_GARP_REPEAT: u32 = 255;

/// One virtual router: VRID, family (from its addresses), priority and timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// V3 by default; keepalived's default is V2 (`vrrp_version 2`), IPv4 only.
    pub version: Version,
    /// Virtual router ID, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 means this router owns the virtual addresses.
    pub priority: u8,
    /// `Advertisement_Interval`; whole seconds for V2. Default 1 s.
    pub advert_interval: Interval,
    /// This router's address on the VRRP interface: the adverts' IP source and the tie-breaker
    /// between equal priorities. Same family as the virtual addresses.
    pub primary_addr: IpAddr,
    /// The virtual addresses, all of one family.
    pub virtual_addrs: VirtualAddrs,
    /// V2 only: `Auth::None` or a password.
    pub auth: Auth,
    /// `Preempt_Mode`: a higher-priority backup takes over from a lower master. Default true.
    pub preempt: bool,
    /// keepalived `preempt_delay`: after startup or after first hearing a lower-priority
    /// master, keep accepting it this long before pre-empting. Default 0.
    pub preempt_delay: Duration,
    /// `Accept_Mode`: carried for the I/O side, which decides whether to accept packets for the
    /// virtual addresses while master and not owner. Default false.
    pub accept_mode: bool,
    /// Checksum of v3-over-IPv4 adverts. Default RFC.
    pub checksum_mode: ChecksumMode,
    /// keepalived `garp_master_repeat`: gratuitous ARP/NA rounds on becoming master. Default 5.
    pub garp_master_repeat: u32,
    /// keepalived `garp_interval`: time between rounds of a burst; zero sends them together.
    pub garp_interval: Duration,
    /// keepalived `garp_master_delay`: a second burst this long after becoming master; zero
    /// for none. Default 5 s.
    pub garp_master_delay: Duration,
    /// keepalived `garp_master_refresh`: a burst every this long while master. Default none.
    pub garp_master_refresh: Option<Duration>,
    /// keepalived `garp_master_refresh_repeat`: rounds per refresh burst. Default 1.
    pub garp_master_refresh_repeat: u32,
}

impl Config {
    /// A config with the defaults above.
    pub fn new(vrid: u8, primary_addr: IpAddr, virtual_addrs: VirtualAddrs) -> Config {
        Config {
            version: Version::V3,
            vrid,
            priority: 100,
            advert_interval: Interval::ONE_SECOND,
            primary_addr,
            virtual_addrs,
            auth: Auth::None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            checksum_mode: ChecksumMode::Rfc,
            garp_master_repeat: 5,
            garp_interval: Duration::ZERO,
            garp_master_delay: Duration::from_secs(5),
            garp_master_refresh: None,
            garp_master_refresh_repeat: 1,
        }
    }

    /// Checks the config and returns the advert it sends (at its configured priority).
    pub fn advert(&self) -> Result<AdvertRepr, ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::ZeroVrid);
        }
        if self.priority == 0 {
            return Err(ConfigError::ZeroPriority);
        }
        let family = self.virtual_addrs.family();
        if Family::of(self.primary_addr) != family {
            return Err(ConfigError::PrimaryFamily {
                primary: Family::of(self.primary_addr),
                virtual_addrs: family,
            });
        }
        for repeat in [self.garp_master_repeat, self.garp_master_refresh_repeat] {
            if repeat > MAX_GARP_REPEAT {
                return Err(ConfigError::GarpRepeat(repeat));
            }
        }
        if self.garp_master_refresh == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroGarpRefresh);
        }
        Ok(AdvertRepr::new(
            self.version,
            self.vrid,
            self.priority,
            self.advert_interval,
            self.auth,
            self.virtual_addrs.clone(),
        )?)
    }
}

/// A [`Config`] that cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("VRID 0 is not valid (1..=255)")]
    ZeroVrid,
    #[error("priority 0 is reserved for a leaving master (1..=255)")]
    ZeroPriority,
    #[error("primary address is {primary}, virtual addresses are {virtual_addrs}")]
    PrimaryFamily {
        primary: Family,
        virtual_addrs: Family,
    },
    #[error("gratuitous ARP repeat {0} is over {MAX_GARP_REPEAT}")]
    GarpRepeat(u32),
    #[error("gratuitous ARP refresh period is zero")]
    ZeroGarpRefresh,
    #[error(transparent)]
    Advert(#[from] ReprError),
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn config() -> Config {
        let vips = VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]);
        Config::new(51, "192.0.2.1".parse().unwrap(), vips)
    }

    #[test]
    fn defaults_are_valid() {
        let c = config();
        assert_eq!(c.advert().unwrap().priority(), 100);
        assert!(c.preempt);
        assert_eq!(
            (c.garp_master_repeat, c.garp_master_delay),
            (5, Duration::from_secs(5))
        );
    }

    #[test]
    fn invalid_configs_say_why() {
        assert_eq!(
            Config {
                vrid: 0,
                ..config()
            }
            .advert(),
            Err(ConfigError::ZeroVrid)
        );
        assert_eq!(
            Config {
                priority: 0,
                ..config()
            }
            .advert(),
            Err(ConfigError::ZeroPriority)
        );
        let v6 = Config {
            primary_addr: "fe80::1".parse().unwrap(),
            ..config()
        };
        assert!(matches!(
            v6.advert(),
            Err(ConfigError::PrimaryFamily { .. })
        ));
        let sub_second_v2 = Config {
            version: Version::V2,
            advert_interval: Interval::from_centis(50).unwrap(),
            ..config()
        };
        assert!(matches!(
            sub_second_v2.advert(),
            Err(ConfigError::Advert(ReprError::IntervalOutOfRange { .. }))
        ));
        let v3_pass = Config {
            auth: Auth::password(b"pw").unwrap(),
            ..config()
        };
        assert_eq!(
            v3_pass.advert(),
            Err(ConfigError::Advert(ReprError::AuthOnV3))
        );
        assert_eq!(
            Config {
                garp_master_repeat: 256,
                ..config()
            }
            .advert(),
            Err(ConfigError::GarpRepeat(256))
        );
        let zero_refresh = Config {
            garp_master_refresh: Some(Duration::ZERO),
            ..config()
        };
        assert_eq!(zero_refresh.advert(), Err(ConfigError::ZeroGarpRefresh));
    }
}
