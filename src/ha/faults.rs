//! A test-only fault switch: with `RINGLB_TEST_FAULTS=1` in the environment, SIGUSR2 toggles
//! a stall of every worker (each sleeps in its loop until the next SIGUSR2), so the lab tests
//! can show that a hung balancer loses the VIP. Without the variable SIGUSR2 keeps its
//! default action and workers never look at the switch beyond one relaxed load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STALLED: AtomicBool = AtomicBool::new(false);

pub const ENV: &str = "RINGLB_TEST_FAULTS";

/// Installs the SIGUSR2 handler when the environment asks for it; true if installed.
pub fn install_if_enabled() -> bool {
    if std::env::var_os(ENV).is_none_or(|v| v != "1") {
        return false;
    }
    let handler = toggle as extern "C" fn(libc::c_int);
    // SAFETY: the handler only touches an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGUSR2, handler as libc::sighandler_t);
    }
    eprintln!("ringlb: {ENV}=1: SIGUSR2 stalls and resumes every worker (test fault switch)");
    true
}

extern "C" fn toggle(_: libc::c_int) {
    STALLED.fetch_xor(true, Ordering::Relaxed);
}

/// Called by each worker once per loop turn: sleeps while the fault switch is on.
pub fn pause_if_stalled() {
    while STALLED.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
}
