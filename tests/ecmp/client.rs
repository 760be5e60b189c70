//! The scale-out lab's clients, inside `ecmp-client`: one request through the VIP from a
//! chosen source address (nginx answers `webN <balancer address>`, so every answer says
//! which balancer and which server served it), batches of them, and a prober that opens a
//! new connection from each of many source addresses every 10 ms and records every attempt.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

pub const CLIENT_NS: &str = "ecmp-client";
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 240);
/// An attempt with no full answer by then failed: shorter than the 1 s SYN retransmit, so
/// a SYN lost to a moving route counts as a failure, not as a late success.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// A prober never runs longer than this, whatever the scenario does.
const MAX_PROBE: Duration = Duration::from_secs(60);

/// The client's source addresses (scripts/lab-ecmp: 192.0.2.140 to .179).
pub fn sources() -> Vec<Ipv4Addr> {
    (140..180).map(|h| Ipv4Addr::new(192, 0, 2, h)).collect()
}

/// The VIP's IPv6 address (conf/ecmp-lb*.json).
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xee, 0, 0, 0, 0, 0x240);

/// The client's IPv6 source addresses (scripts/lab-ecmp: 2001:db8:ec::140 to ::179, the
/// same host numbers as the IPv4 ones, read as hex digits).
pub fn sources6() -> Vec<Ipv6Addr> {
    (140..180)
        .map(|h| {
            let hex = u16::from_str_radix(&h.to_string(), 16).expect("digits");
            Ipv6Addr::new(0x2001, 0xdb8, 0xec, 0, 0, 0, 0, hex)
        })
        .collect()
}

/// Who served one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    pub server: String,
    pub balancer: Ipv4Addr,
}

/// Moves the calling thread into network namespace `ns` (a name under /run/netns).
pub fn enter(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("open /run/netns/{ns}: {e}"));
    // SAFETY: plain syscall on a descriptor we hold; it moves only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// One `GET /` through the VIP from `src`; the answer names the server and the balancer.
pub fn fetch(src: Ipv4Addr) -> Result<Answer, String> {
    fetch_via(IpAddr::V4(src), IpAddr::V4(VIP))
}

/// One `GET /` to `vip` (either family) from `src`.
pub fn fetch_via(src: IpAddr, vip: IpAddr) -> Result<Answer, String> {
    let started = Instant::now();
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(vip, 80)),
        Type::STREAM,
        None,
    )
    .map_err(|e| e.to_string())?;
    s.bind(&SocketAddr::new(src, 0).into())
        .map_err(|e| format!("bind {src}: {e}"))?;
    s.connect_timeout(&SocketAddr::new(vip, 80).into(), ATTEMPT_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    let mut s = std::net::TcpStream::from(s);
    let left = ATTEMPT_TIMEOUT.saturating_sub(started.elapsed());
    if left.is_zero() {
        return Err("timeout".into());
    }
    s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: ecmp\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while answer.len() < 4096 {
        if started.elapsed() > ATTEMPT_TIMEOUT {
            return Err("timeout".into());
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("answer: {text:?}"));
    }
    let body = text.rsplit("\r\n\r\n").next().unwrap_or("").trim();
    let (server, balancer) = body
        .split_once(' ')
        .ok_or_else(|| format!("body: {body:?}"))?;
    Ok(Answer {
        server: server.to_string(),
        balancer: balancer.parse().map_err(|_| format!("body: {body:?}"))?,
    })
}

/// `per_source` requests from every source, spread over `threads` threads in the client's
/// namespace; every result with its source.
pub fn batch(per_source: usize, threads: usize) -> Vec<(Ipv4Addr, Result<Answer, String>)> {
    let srcs: Vec<IpAddr> = sources().into_iter().map(IpAddr::V4).collect();
    batch_via(&srcs, IpAddr::V4(VIP), per_source, threads)
        .into_iter()
        .filter_map(|(src, r)| match src {
            IpAddr::V4(v4) => Some((v4, r)),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// `batch` from `srcs` to `vip` (either family).
pub fn batch_via(
    srcs: &[IpAddr],
    vip: IpAddr,
    per_source: usize,
    threads: usize,
) -> Vec<(IpAddr, Result<Answer, String>)> {
    let jobs: Vec<IpAddr> = (0..per_source).flat_map(|_| srcs.to_vec()).collect();
    let jobs = Arc::new(jobs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let jobs = jobs.clone();
            thread::spawn(move || {
                enter(CLIENT_NS);
                jobs.iter()
                    .skip(t)
                    .step_by(threads)
                    .map(|&src| (src, fetch_via(src, vip)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

/// One attempt of a prober.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it started, from the prober's start.
    pub at: Duration,
    pub src: Ipv4Addr,
    pub result: Result<Answer, String>,
}

/// Opens a new connection from every source every `period` (each source on its own
/// schedule, each attempt on its own thread) until finished.
pub struct Prober {
    stop: Arc<AtomicBool>,
    started: Instant,
    handle: JoinHandle<Vec<Attempt>>,
}

impl Prober {
    pub fn start(srcs: Vec<Ipv4Addr>, period: Duration) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let started = Instant::now();
        let handle = thread::spawn(move || {
            enter(CLIENT_NS);
            let (tx, rx) = mpsc::channel::<Attempt>();
            let mut launched = 0usize;
            let mut next = Instant::now();
            // Sources take turns within the period, so attempts are spread evenly.
            let step = period / srcs.len().max(1) as u32;
            'outer: while started.elapsed() < MAX_PROBE {
                for &src in &srcs {
                    if stop2.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    let at = started.elapsed();
                    let tx = tx.clone();
                    thread::spawn(move || {
                        let result = fetch(src);
                        let _ = tx.send(Attempt { at, src, result });
                    });
                    launched += 1;
                    next += step;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
            }
            drop(tx);
            let mut attempts = crate::nodes::gather(&rx, launched, ATTEMPT_TIMEOUT * 4);
            attempts.sort_by_key(|a| a.at);
            attempts
        });
        Prober {
            stop,
            started,
            handle,
        }
    }

    /// Time since the prober started (attempts' `at` are on this clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(self) -> Vec<Attempt> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("prober thread")
    }
}
