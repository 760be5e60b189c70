//! keepalived's notify commands: run by `/bin/sh -c` without waiting (the VRRP thread never
//! blocks on one), reaped as they finish (no zombies), killed past `notify_timeout` with
//! everything they started (each runs in a process group of its own).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::logging::event;

pub struct Notifier {
    running: Vec<Running>,
    timeout: Duration,
}

struct Running {
    what: String,
    child: Child,
    started: Instant,
}

impl Notifier {
    pub fn new(timeout: Duration) -> Notifier {
        Notifier {
            running: Vec::new(),
            timeout,
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Starts `cmd` (a command line) with `args` appended as its arguments.
    pub fn run(&mut self, cmd: &str, args: &[&str], instance: &str) {
        let line = if args.is_empty() {
            cmd.to_string()
        } else {
            // The arguments reach the command as "$@", never through the shell's parsing.
            format!("{cmd} \"$@\"")
        };
        let spawned = Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .arg("sh")
            .args(args)
            .stdin(Stdio::null())
            // Its own group, so that a timeout also kills what the shell runs (a hung
            // `curl`), which would otherwise outlive it.
            .process_group(0)
            .spawn();
        let what = if args.is_empty() {
            cmd.to_string()
        } else {
            format!("{cmd} {}", args.join(" "))
        };
        match spawned {
            Ok(child) => self.running.push(Running {
                what,
                child,
                started: Instant::now(),
            }),
            Err(e) => event!(warning: "vrrp {instance}: cannot run notify {what}: {e}"),
        }
    }

    /// Reaps what finished, and kills what ran past the timeout.
    pub fn reap(&mut self) {
        let timeout = self.timeout;
        self.running.retain_mut(|r| match r.child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    event!(warning: "vrrp: notify {} exited with {status}", r.what);
                }
                false
            }
            Ok(None) if r.started.elapsed() >= timeout => {
                kill_group(&mut r.child);
                event!(warning: "vrrp: notify {} killed after {timeout:?}", r.what);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// Whether a command is still running (the thread wakes to reap it).
    pub fn busy(&self) -> bool {
        !self.running.is_empty()
    }
}

/// Kills a command started in a process group of its own (`process_group(0)`) with
/// everything it started, and reaps it. Not reaped before, so the group (the shell's pid)
/// is still this command's.
pub(super) fn kill_group(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}
