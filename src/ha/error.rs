//! What can stop an instance from being set up (its interface, its sockets, its settings)
//! or a priority-0 advert from leaving, as one type the callers name the instance in.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("bad interface name {0:?}")]
    BadName(String),
    #[error("no interface {name:?}: {err}")]
    NoInterface { name: String, err: io::Error },
    #[error("MAC address of {name}: {err}")]
    Mac { name: String, err: io::Error },
    #[error("addresses of {name}: {err}")]
    Addresses { name: String, err: nix::Error },
    #[error("interface {name} has no {} address of its own", if *.ipv6 { "IPv6 link-local" } else { "IPv4" })]
    NoPrimary { name: String, ipv6: bool },
    #[error(transparent)]
    Config(#[from] vrrp::ConfigError),
    #[error(transparent)]
    Advert(#[from] vrrp::wire::ReprError),
    #[error(transparent)]
    Emit(#[from] vrrp::wire::EmitError),
    #[error("raw socket on {name}: {err}")]
    RawSocket { name: String, err: io::Error },
    #[error("announce socket on {name}: {err}")]
    AnnounceSocket { name: String, err: io::Error },
    #[error("sending to {dst}: {err}")]
    Send {
        dst: std::net::IpAddr,
        err: io::Error,
    },
}
