//! Test-only fault switches, compiled only with the `test-hooks` feature (never in a
//! release build), armed by `RINGLB_TEST_FAULTS=1` in the environment:
//!
//! - SIGRTMIN+3 toggles a stall of every worker (each sleeps in its loop until the next
//!   one), so the lab tests can show that a hung balancer loses the VIP;
//! - SIGRTMIN+4 toggles a stall of worker 1 alone (a frozen worker among live ones);
//! - SIGRTMIN+1 makes worker 0 panic at its next loop turn (a worker fault);
//! - SIGRTMIN+2 makes the health thread panic at its next loop turn (a helper fault);
//! - SIGRTMIN+5 makes worker 0's next `io_uring_enter` fail with EFAULT (a ring failure);
//! - SIGRTMIN+6 makes worker 0's next [`BUSY_ENTERS`] `io_uring_enter` calls fail with
//!   EBUSY (a completion queue with no room), so the reaping paths run;
//! - SIGRTMIN+7 makes the announce thread panic at its next turn (a helper fault with
//!   routes to give back).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::logging::event;

static STALLED: AtomicBool = AtomicBool::new(false);
static STALLED_1: AtomicBool = AtomicBool::new(false);
static PANIC_WORKER: AtomicBool = AtomicBool::new(false);
static PANIC_HEALTH: AtomicBool = AtomicBool::new(false);
static RING_FAIL: AtomicBool = AtomicBool::new(false);
static BUSY: AtomicU32 = AtomicU32::new(0);
static PANIC_ANNOUNCE: AtomicBool = AtomicBool::new(false);

/// How many of worker 0's enters SIGRTMIN+6 turns into EBUSY.
pub const BUSY_ENTERS: u32 = 1000;

pub const ENV: &str = "RINGLB_TEST_FAULTS";

/// Installs the handlers when the environment asks for it.
pub fn install_if_enabled() {
    if std::env::var_os(ENV).is_none_or(|v| v != "1") {
        return;
    }
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 7] = [
        (libc::SIGRTMIN() + 3, toggle_stall),
        (libc::SIGRTMIN() + 4, toggle_stall_1),
        (libc::SIGRTMIN() + 1, panic_worker),
        (libc::SIGRTMIN() + 2, panic_health),
        (libc::SIGRTMIN() + 5, fail_ring),
        (libc::SIGRTMIN() + 6, busy_ring),
        (libc::SIGRTMIN() + 7, panic_announce),
    ];
    for (signal, handler) in handlers {
        // SAFETY: each handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
    event!(
        "{ENV}=1: test fault switches: SIGRTMIN+3 stalls and resumes every worker, SIGRTMIN+4 \
         worker 1 alone, SIGRTMIN+1 panics worker 0, SIGRTMIN+2 panics the health thread, \
         SIGRTMIN+5 fails worker 0's ring, SIGRTMIN+6 makes it busy, SIGRTMIN+7 panics the \
         announce thread"
    );
}

extern "C" fn toggle_stall(_: libc::c_int) {
    STALLED.fetch_xor(true, Ordering::Relaxed);
}

extern "C" fn toggle_stall_1(_: libc::c_int) {
    STALLED_1.fetch_xor(true, Ordering::Relaxed);
}

extern "C" fn panic_worker(_: libc::c_int) {
    PANIC_WORKER.store(true, Ordering::Relaxed);
}

extern "C" fn panic_health(_: libc::c_int) {
    PANIC_HEALTH.store(true, Ordering::Relaxed);
}

extern "C" fn panic_announce(_: libc::c_int) {
    PANIC_ANNOUNCE.store(true, Ordering::Relaxed);
}

extern "C" fn fail_ring(_: libc::c_int) {
    RING_FAIL.store(true, Ordering::Relaxed);
}

extern "C" fn busy_ring(_: libc::c_int) {
    BUSY.store(BUSY_ENTERS, Ordering::Relaxed);
}

/// Called by each worker before each `io_uring_enter`: the error to return instead, when a
/// switch asks for one.
pub fn injected_enter_error(id: usize) -> Option<std::io::Error> {
    if id != 0 {
        return None;
    }
    if RING_FAIL.swap(false, Ordering::Relaxed) {
        return Some(std::io::Error::from_raw_os_error(libc::EFAULT));
    }
    BUSY.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .ok()
        .map(|_| std::io::Error::from_raw_os_error(libc::EBUSY))
}

/// Called by each worker once per loop turn: sleeps while a stall switch for it is on,
/// and panics worker 0 when asked to.
pub fn worker_turn(id: usize) {
    while STALLED.load(Ordering::Relaxed) || (id == 1 && STALLED_1.load(Ordering::Relaxed)) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if id == 0 && PANIC_WORKER.swap(false, Ordering::Relaxed) {
        panic!("test fault switch: worker 0 panics");
    }
}

/// Called by the health thread once per loop turn.
pub fn health_turn() {
    if PANIC_HEALTH.swap(false, Ordering::Relaxed) {
        panic!("test fault switch: the health thread panics");
    }
}

/// Called by the announce thread once per turn.
pub fn announce_turn() {
    if PANIC_ANNOUNCE.swap(false, Ordering::Relaxed) {
        panic!("test fault switch: the announce thread panics");
    }
}
