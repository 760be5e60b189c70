//! Harness shared by the integration tests: a guard that runs the real `ringlb` binary on a
//! config written to a temp dir (`ringlb.rs`), its log lines (`log.rs`), configs
//! (`configs.rs`), loopback sockets (`net.rs`), small thread-per-connection backends
//! (`backends.rs`) and the one that answers with its name (`named.rs`), seeded data
//! (`data.rs`), the stats listener over plain HTTP (`http.rs`), and real peers (`peers/`).
//!
//! Every socket gets read and write timeouts and every wait is bounded, so a broken balancer
//! makes a test fail instead of hang.
//!
//! Each test crate declares `pub mod common;`: the helpers are the harness's API, exported
//! by every crate, so one that a crate leaves unused is not dead code there (no
//! `allow(dead_code)`); the harness's private items are still checked.

mod backends;
mod configs;
mod data;
mod http;
mod log;
mod named;
mod net;
mod netns;
pub mod peers;
mod ringlb;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use backends::*;
pub use configs::*;
pub use data::*;
pub use http::*;
pub use log::*;
pub use named::*;
pub use net::*;
pub use netns::*;
pub use ringlb::*;

/// Read/write timeout for test sockets unless a test needs another one.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Buffer size of the helpers that read or write in a loop.
const CHUNK: usize = 64 * 1024;

/// Makes temp dirs and ports unique within this process.
static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, named after the running test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let test = thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    let dir = std::env::temp_dir().join(format!("ringlb-{tag}-{test}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Polls `check` every 10 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that `elapsed` lies in `[min, max]`, with a message naming `what`.
pub fn assert_between(what: &str, elapsed: Duration, min: Duration, max: Duration) {
    assert!(
        elapsed >= min && elapsed <= max,
        "{what} took {elapsed:?}, expected between {min:?} and {max:?}"
    );
}
