//! The supervising parent, with VRRP or `announce`: ringlb forks once at start, before any thread. The
//! child serves; the parent, single-threaded and idle, forwards signals to it and waits. If
//! the child dies by any means but a clean exit (SIGKILL, the OOM killer, an abort), the
//! parent at once releases what the child held (`ha::release`: the VIPs leave this box and a
//! priority-0 advert hands them to the backup after `Skew_Time`, as a graceful stop would),
//! then exits with the child's status for the service manager to see. keepalived's answer
//! to the same problem is a parent process too; this one has nothing to do but that.
//!
//! The child stops (SIGTERM, a graceful stop) if the parent dies (PR_SET_PDEATHSIG).
//!
//! With `announce`, the parent also watches the child's announce thread through a shared
//! page (`Beat`): a child that has not beaten for `announce.worker_stall` is frozen as a
//! whole (SIGSTOP, a stuck process), which its own watchdog cannot see. The parent then
//! takes the announce interface down, and the routing daemon withdraws every VIP on it;
//! the child, turning again, sees it and announces afresh. A child that dies takes the
//! interface with it (see `announce/tun.rs`), so there is nothing to release for
//! `announce`.

use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getppid, ForkResult, Pid};

use crate::beat;
use crate::config::Config;
use crate::ha;
use crate::logging::event;

/// What `fork_if_needed` made of this process.
pub enum Role {
    /// Serve (no VRRP: no parent needed; or the child of the supervisor).
    Serve,
    /// The supervisor, whose child has ended: exit with this.
    Done(ExitCode),
}

/// Forks when the config has VRRP instances or an `announce` section (else serves in this
/// process). Must run before any thread is started: only the calling thread survives a
/// fork.
pub fn fork_if_needed(config: &Config) -> Role {
    if config.vrrp.instances.is_empty() && config.announce.is_none() {
        return Role::Serve;
    }
    if config.announce.is_some() && !beat::map() {
        event!(
            warning: "cannot map the supervisor's page ({}): a frozen ringlb keeps its routes until BFD or a restart",
            std::io::Error::last_os_error()
        );
    }
    let parent = nix::unistd::getpid();
    // SAFETY: no other thread exists yet (main calls this first), so the child may run
    // anything; the parent only waits and forwards signals.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // SAFETY: prctl with constant arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
            // The parent died between fork and prctl: stop as if told to.
            if getppid() != parent {
                let _ = signal::raise(Signal::SIGTERM);
            }
            Role::Serve
        }
        Ok(ForkResult::Parent { child }) => Role::Done(supervise(child, config)),
        Err(e) => {
            event!(
                warning: "cannot fork the supervising parent ({e}): a crash will leave the VIPs until the peer's timers notice"
            );
            Role::Serve
        }
    }
}

/// Blocks, and returns as a set to wait on, the signals the parent passes on (the service
/// manager's, HAProxy's, the real-time ones of the test fault switches) and SIGCHLD.
fn block_signals() -> libc::sigset_t {
    let rt = libc::SIGRTMIN()..=libc::SIGRTMAX();
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset and sigprocmask take it by pointer
    // on this process's only thread.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        let base = [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCHLD,
        ];
        for s in base.into_iter().chain(rt) {
            libc::sigaddset(set.as_mut_ptr(), s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
        set.assume_init()
    }
}

/// How often the parent reads the child's beat.
const WATCH_PERIOD: Duration = Duration::from_millis(50);
/// Beyond `worker_stall`, what the announce thread may legitimately pause for (a notice's
/// 100 ms lead, starting `nft`). With the default 300 ms stall a frozen process is
/// withdrawn within 300 + 100 + 50 ms.
const BEAT_SLACK: Duration = Duration::from_millis(100);

fn supervise(child: Pid, config: &Config) -> ExitCode {
    let set = block_signals();
    let watch = beat::page().zip(config.announce.as_ref());
    let period = libc::timespec {
        tv_sec: 0,
        tv_nsec: WATCH_PERIOD.as_nanos() as libc::c_long,
    };
    loop {
        let sig = if watch.is_some() {
            // SAFETY: waits for one of the blocked signals, at most `period`.
            unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &period) }
        } else {
            // SAFETY: waits for one of the blocked signals; no siginfo is needed.
            unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) }
        };
        if let Some((page, announce)) = watch {
            check_beat(child, page, announce);
        }
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill(2) to our own child with a signal we received.
            unsafe { libc::kill(child.as_raw(), sig) };
            continue;
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, 0)) => return ExitCode::SUCCESS,
            Ok(WaitStatus::Exited(_, code)) => {
                release(child, &format!("exited with status {code}"), config);
                return ExitCode::from(u8::try_from(code).unwrap_or(1));
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                release(child, &format!("was killed by {sig}"), config);
                return ExitCode::from(128u8.saturating_add(sig as u8));
            }
            _ => {}
        }
    }
}

/// Takes the announce interface down when the child has not beaten for `worker_stall`
/// plus `BEAT_SLACK`:
/// the process is frozen as a whole. Once per freeze: the child clears `pulled_ms` when it
/// turns again.
fn check_beat(child: Pid, page: &beat::Page, announce: &crate::config::Announce) {
    let Some(silent) = page.silent_for() else {
        return;
    };
    let silent = silent.as_millis() as u64;
    if silent < (announce.worker_stall + BEAT_SLACK).as_millis() as u64 {
        return;
    }
    page.pull();
    match crate::announce::set_link(&announce.interface, false) {
        Ok(()) => event!(error:
            "supervisor: ringlb (pid {child}) has not turned for {silent} ms (worker_stall \
             {:?}): interface {} down, so the routing daemon withdraws its VIPs",
            announce.worker_stall, announce.interface
        ),
        Err(e) => event!(error:
            "supervisor: ringlb (pid {child}) has not turned for {silent} ms, and interface {} \
             cannot be taken down: {e}",
            announce.interface
        ),
    }
}

fn release(child: Pid, how: &str, config: &Config) {
    if config.vrrp.instances.is_empty() {
        event!(error: "supervisor: ringlb (pid {child}) {how}; its announce interface went with it");
        return;
    }
    event!(
        error: "supervisor: ringlb (pid {child}) {how}; releasing its VIPs so the backup takes over now"
    );
    for line in ha::release(&config.vrrp) {
        event!("supervisor: {line}");
    }
}
