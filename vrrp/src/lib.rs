//! placeholder docs
#![forbid(unsafe_code)]

pub mod config;
pub mod drop;
pub mod instance;
pub mod time;
pub mod wire;

pub use config::{Config, ConfigError};
pub use drop::{DropCounts, DropKind, DropReason};
pub use instance::{
    Cause, Counters, Event, GarpReason, Instance, MasterInfo, State, Status, Transmit,
    TransmitReason,
};
pub use time::{Instant, Interval};
pub use wire::{AdvertRepr, Auth, ChecksumMode, Family, Packet, RxMeta, Version, VirtualAddrs};
