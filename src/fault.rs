//! What a fault (a panic) in a thread does to the process. Helper threads (stats, health
//! checks, VRRP, control, signals, log) are supervised: the panic is caught at the thread
//! boundary, logged, counted, and the thread's work restarts after a back-off, so the
//! workers keep forwarding. A worker is not restarted: its connections are closed as it
//! unwinds and the process stops with a non-zero status (see `control`), so systemd
//! restarts it and the VRRP peer takes over.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::logging::event;

/// The first restart waits this long, each further one twice as long, up to the maximum.
const RESTART_MIN: Duration = Duration::from_millis(100);
const RESTART_MAX: Duration = Duration::from_secs(30);

/// The supervised helper threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    Stats,
    Health,
    Vrrp,
    Control,
    Signals,
    Log,
    /// The control socket (`ringlb ctl`).
    Ctl,
    /// The announcer of the VIPs to an ECMP router.
    Announce,
}

impl Helper {
    pub const ALL: [Helper; 8] = [
        Helper::Stats,
        Helper::Health,
        Helper::Vrrp,
        Helper::Control,
        Helper::Signals,
        Helper::Log,
        Helper::Ctl,
        Helper::Announce,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Helper::Stats => "stats",
            Helper::Health => "health",
            Helper::Vrrp => "vrrp",
            Helper::Control => "control",
            Helper::Signals => "signals",
            Helper::Log => "log",
            Helper::Ctl => "ctl",
            Helper::Announce => "announce",
        }
    }
}

static FAULTS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Faults caught in `helper` since start (each one restarted it).
pub fn faults(helper: Helper) -> u64 {
    FAULTS[helper as usize].load(Ordering::Relaxed)
}

/// Logs every panic as an event line (which never blocks) instead of the default hook's
/// blocking write to stderr.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let thread = thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let location = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        event!(error:
            "thread {name} panicked{location}: {}",
            message(info.payload())
        );
    }));
}

/// Runs `body` on `state` until it returns. A panic in it is logged and counted, and
/// `body` runs again on the same state after a back-off (doubling up to `RESTART_MAX`;
/// back to the minimum after a minute without a fault).
pub fn supervise<S>(helper: Helper, mut state: S, body: fn(&mut S)) {
    supervise_with(helper, &mut state, body, |_| {});
}

/// As [`supervise`], calling `recover` on the state after each fault, before the restart
/// (e.g. VRRP gives up its addresses, so a thread that keeps failing holds nothing).
pub fn supervise_with<S>(helper: Helper, state: &mut S, body: fn(&mut S), recover: fn(&mut S)) {
    let mut backoff = RESTART_MIN;
    loop {
        let started = std::time::Instant::now();
        match panic::catch_unwind(AssertUnwindSafe(|| body(state))) {
            Ok(()) => return,
            Err(_) => {
                let n = FAULTS[helper as usize].fetch_add(1, Ordering::Relaxed) + 1;
                if started.elapsed() >= Duration::from_secs(60) {
                    backoff = RESTART_MIN;
                }
                event!(error:
                    "{} thread fault #{n}: restarting it in {backoff:?}; forwarding goes on",
                    helper.name()
                );
                let _ = panic::catch_unwind(AssertUnwindSafe(|| recover(state)));
                thread::sleep(backoff);
                backoff = (backoff * 2).min(RESTART_MAX);
            }
        }
    }
}

/// Runs `f`, catching a panic in it: logged and counted against `helper`, `None`
/// returned. For a helper whose loop cannot simply start again (the control thread).
pub fn catch<T>(helper: Helper, f: impl FnOnce() -> T) -> Option<T> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(_) => {
            let n = FAULTS[helper as usize].fetch_add(1, Ordering::Relaxed) + 1;
            event!(error:
                "{} thread fault #{n}: going on; forwarding is not affected",
                helper.name()
            );
            None
        }
    }
}

/// The text of a panic payload.
pub fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        runs: u32,
    }

    fn fails_twice(s: &mut Flaky) {
        s.runs += 1;
        if s.runs <= 2 {
            panic!("fault {}", s.runs);
        }
    }

    #[test]
    fn a_helper_that_panics_is_restarted_on_its_state() {
        let before = faults(Helper::Signals);
        let mut state = Flaky { runs: 0 };
        supervise_with(Helper::Signals, &mut state, fails_twice, |_| {});
        assert_eq!(state.runs, 3);
        assert!(faults(Helper::Signals) >= before + 2);
    }

    #[test]
    fn payload_text() {
        let p: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(message(p.as_ref()), "static");
        let p: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(message(p.as_ref()), "owned");
        let p: Box<dyn Any + Send> = Box::new(7u8);
        assert_eq!(message(p.as_ref()), "(no message)");
    }
}
