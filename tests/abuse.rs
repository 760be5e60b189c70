//! The abuse suite: what an attacker or an unlucky operator can do to the parts of ringlb
//! outside the data path (the stats listener, the log sink, extreme config values, fd
//! exhaustion), each shown not to stop forwarding. Every test is bounded in time.

pub mod common;
mod abuse {
    pub mod config;
    pub mod fds;
    pub mod hooks;
    pub mod log;
    pub mod stats;
}
