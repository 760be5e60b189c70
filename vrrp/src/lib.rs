//! placeholder docs
#![forbid(unsafe_code)]

pub mod drop;
pub mod time;
pub mod wire;

pub use drop::{DropCounts, DropKind, DropReason};
pub use time::{Instant, Interval};
pub use wire::{AdvertRepr, Auth, ChecksumMode, Family, Packet, RxMeta, Version, VirtualAddrs};
