//! The lab's client: from inside a network namespace, opens a new connection to the VIP
//! every 10 ms (`GET /`, answered by nginx through the balancer) and records which attempts
//! succeeded, so a scenario can measure its outage: the time from the last success before a
//! failure to the first success after it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A new attempt this often.
pub const PERIOD: Duration = Duration::from_millis(10);
/// An attempt that has no full answer by then failed. Shorter than the 1 s SYN retransmit,
/// so a SYN lost to a moving VIP counts as a failure, not as a late success.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// A probe never runs longer than this, whatever the scenario does.
const MAX_RUN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// When it started, from the probe's start.
    pub at: Duration,
    pub ok: bool,
}

pub struct Probe {
    stop: Arc<AtomicBool>,
    /// Successes in a row, in completion order (a failure resets it).
    streak: Arc<AtomicU64>,
    handle: JoinHandle<Vec<Attempt>>,
    started: Instant,
}

/// What one scenario's client saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub attempts: usize,
    pub failures: usize,
    /// The longest time between two successes with failures between them; zero if none
    /// failed. Failures at the very end count from the last success to the last attempt.
    pub outage: Duration,
}

impl Probe {
    /// Starts probing `target` from network namespace `netns` (a name under /run/netns).
    pub fn start(netns: &str, target: SocketAddr) -> Probe {
        let ns = File::open(format!("/run/netns/{netns}"))
            .unwrap_or_else(|e| panic!("open /run/netns/{netns}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let streak = Arc::new(AtomicU64::new(0));
        let (stop2, streak2) = (stop.clone(), streak.clone());
        let started = Instant::now();
        let handle = thread::Builder::new()
            .name("lab-probe".into())
            .spawn(move || {
                // SAFETY: plain syscall on a descriptor we hold; it moves only this thread
                // (and the attempt threads it spawns) into the namespace.
                let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                run(target, started, &stop2, &streak2)
            })
            .expect("spawn probe");
        Probe {
            stop,
            streak,
            handle,
            started,
        }
    }

    /// Waits until `n` attempts in a row succeeded; false if not within `limit`.
    pub fn wait_streak(&self, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.streak.load(Ordering::Relaxed) >= n {
                return true;
            }
            thread::sleep(PERIOD);
        }
        false
    }

    pub fn finish(self) -> Outcome {
        outcome(&self.attempts())
    }

    /// Time since the probe started: attempts are stamped with it.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the probe and returns every attempt, in the order they started.
    pub fn attempts(self) -> Vec<Attempt> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("probe thread")
    }
}

fn run(
    target: SocketAddr,
    start: Instant,
    stop: &AtomicBool,
    streak: &Arc<AtomicU64>,
) -> Vec<Attempt> {
    let (tx, rx) = mpsc::channel::<Attempt>();
    let mut launched = 0usize;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) && start.elapsed() < MAX_RUN {
        let at = start.elapsed();
        let tx = tx.clone();
        let streak = streak.clone();
        thread::spawn(move || {
            let ok = attempt(target);
            if ok {
                streak.fetch_add(1, Ordering::Relaxed);
            } else {
                streak.store(0, Ordering::Relaxed);
            }
            let _ = tx.send(Attempt { at, ok });
        });
        launched += 1;
        next += PERIOD;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    drop(tx);
    let mut attempts = crate::nodes::gather(&rx, launched, ATTEMPT_TIMEOUT * 4);
    attempts.sort_by_key(|a| a.at);
    attempts
}

/// One request through the VIP: connect, `GET /`, a 200 from a lab web server.
fn attempt(target: SocketAddr) -> bool {
    let started = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&target, ATTEMPT_TIMEOUT) else {
        return false;
    };
    let left = ATTEMPT_TIMEOUT.saturating_sub(started.elapsed());
    if left.is_zero()
        || s.set_read_timeout(Some(left)).is_err()
        || s.set_write_timeout(Some(left)).is_err()
        || s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n").is_err()
    {
        return false;
    }
    let mut answer = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while answer.len() < 4096 && started.elapsed() < ATTEMPT_TIMEOUT {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => return false,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.starts_with("HTTP/1.1 200") && (text.ends_with("web1\n") || text.ends_with("web2\n"))
}

pub fn outcome(attempts: &[Attempt]) -> Outcome {
    let mut outage = Duration::ZERO;
    let mut last_ok: Option<Duration> = None;
    let mut failed_since_ok = false;
    let mut failures = 0;
    for a in attempts {
        if a.ok {
            if failed_since_ok {
                let from = last_ok.unwrap_or(Duration::ZERO);
                outage = outage.max(a.at.saturating_sub(from));
            }
            last_ok = Some(a.at);
            failed_since_ok = false;
        } else {
            failures += 1;
            failed_since_ok = true;
        }
    }
    if failed_since_ok {
        let end = attempts.last().map_or(Duration::ZERO, |a| a.at);
        outage = outage.max(end.saturating_sub(last_ok.unwrap_or(Duration::ZERO)));
    }
    Outcome {
        attempts: attempts.len(),
        failures,
        outage,
    }
}
