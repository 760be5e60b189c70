//! The beat the serving process gives its supervising parent (with `announce`): one
//! page shared across the fork (`MAP_SHARED | MAP_ANONYMOUS`, mapped before it), where the
//! announce thread writes the time of each turn and the parent, finding it silent (the
//! process frozen as a whole), writes when it withdrew the VIPs. See `supervise.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Times are milliseconds of CLOCK_MONOTONIC, the same clock in both processes.
#[repr(C)]
pub struct Page {
    /// The announce thread's last turn; 0 while nothing is to be watched (before the
    /// first turn, after the thread stopped).
    beat_ms: AtomicU64,
    /// When the parent withdrew the VIPs for want of beats; 0 when it did not.
    pulled_ms: AtomicU64,
}

impl Page {
    /// How long the child has been silent; `None` while nothing is to be watched or
    /// after the parent acted, until the child turns again.
    pub fn silent_for(&self) -> Option<Duration> {
        let beat = self.beat_ms.load(Ordering::Relaxed);
        if beat == 0 || self.pulled_ms.load(Ordering::Relaxed) != 0 {
            return None;
        }
        Some(Duration::from_millis(monotonic_ms().saturating_sub(beat)))
    }

    /// The parent withdrew the VIPs.
    pub fn pull(&self) {
        self.pulled_ms
            .store(monotonic_ms().max(1), Ordering::Relaxed);
    }
}

static PAGE: OnceLock<&'static Page> = OnceLock::new();

/// Maps the page; before the fork, so both processes share it. False when it cannot be.
pub fn map() -> bool {
    // SAFETY: an anonymous shared mapping of one page, zero-filled by the kernel; it is
    // never unmapped, so the 'static reference stays valid. Page is two atomics, for
    // which all zeroes is a valid value.
    let page = unsafe {
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if ptr == libc::MAP_FAILED {
            return false;
        }
        &*(ptr as *const Page)
    };
    PAGE.set(page).is_ok()
}

/// The page, if mapped (a supervising parent watches).
pub fn page() -> Option<&'static Page> {
    PAGE.get().copied()
}

/// Milliseconds of CLOCK_MONOTONIC.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives across the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// The announce thread turned (a no-op without a supervising parent).
pub fn beat() {
    if let Some(p) = page() {
        p.beat_ms.store(monotonic_ms().max(1), Ordering::Relaxed);
    }
}

/// The announce thread stops: nothing to watch any more.
pub fn stop_beating() {
    if let Some(p) = page() {
        p.beat_ms.store(0, Ordering::Relaxed);
    }
}

/// How long ago the parent withdrew the VIPs, if it did since the last call (the child
/// then announces afresh).
pub fn take_pulled() -> Option<Duration> {
    let at = page()?.pulled_ms.swap(0, Ordering::Relaxed);
    (at != 0).then(|| Duration::from_millis(monotonic_ms().saturating_sub(at)))
}
