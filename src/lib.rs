//! ringlb's modules that run no thread of their own (the log's writer aside), as a library:
//! selection algorithms, the PROXY protocol and ClientHello codecs, the config, the log and
//! `ringlb import`. The binary (`main.rs`) builds on it, and so do the benchmarks
//! (`benches/`) and the fuzz targets (`tests/fuzz/`), which test exactly this code. The
//! threads, the io_uring workers, health checks, VRRP I/O and the stats page stay in the
//! binary.

pub mod balance;
pub mod config;
pub mod import;
pub mod logging;
pub mod proxy;
pub mod tls;
