//! The scale-out figures (`bench/ecmp` runs them; never a timed test): what clients see when
//! a balancer is SIGKILLed or its whole box freezes (part 3), established connections on the
//! surviving balancers and on the leaving one when one leaves and one joins, with plain
//! ECMP and with a resilient next-hop group, each with and without `announce.handoff`
//! (part 6), and wrk through the router with 1, 2 and 3 balancers (part 7).
//! Every load is bounded in count and time.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::client::{self, enter, sources, Prober, CLIENT_NS, VIP};
use crate::fleet::{
    balancer_addr, balancer_of, config, config_without_handoff, next_hops, ringlb, wait_next_hops,
    ROUTER_NS,
};
use crate::nodes::Node;

/// Part 3: one balancer SIGKILLed (ringlb alone; BIRD goes on), then a whole box frozen
/// (ringlb and BIRD SIGSTOPped: BFD's case). Returns the report's lines.
pub fn crash(lbs: &mut [Node], dir: &std::path::Path, sources_n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let srcs: Vec<Ipv4Addr> = sources().into_iter().take(sources_n).collect();
    let period = Duration::from_millis(10);

    // SIGKILL of lb3's serving process (the supervising parent then exits too).
    let prober = Prober::start(srcs.clone(), period);
    thread::sleep(Duration::from_millis(1000));
    let at = prober.elapsed();
    for pid in lbs[2].children() {
        // SAFETY: plain syscall on the balancer's serving process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let gone = wait_next_hops(&[1, 2], Duration::from_secs(5));
    lbs[2].reap(Duration::from_secs(5));
    thread::sleep(Duration::from_millis(1000));
    let attempts = prober.finish();
    out.push(impact(
        "ringlb's serving process SIGKILLed (BIRD alive)",
        &attempts,
        at,
        gone,
        srcs.len(),
        period,
    ));
    lbs[2] = ringlb(3, &config(3), dir, "after-kill");
    wait_back();

    // The whole box frozen: ringlb and BIRD stopped.
    let bird = bird_pid(3);
    let prober = Prober::start(srcs.clone(), period);
    thread::sleep(Duration::from_millis(1000));
    let at = prober.elapsed();
    lbs[2].signal(libc::SIGSTOP);
    if let Some(p) = bird {
        // SAFETY: plain syscall on the lab's BIRD process.
        unsafe { libc::kill(p, libc::SIGSTOP) };
    }
    let gone = wait_next_hops(&[1, 2], Duration::from_secs(5));
    thread::sleep(Duration::from_millis(1000));
    let attempts = prober.finish();
    lbs[2].signal(libc::SIGCONT);
    if let Some(p) = bird {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGCONT) };
    }
    out.push(impact(
        "box frozen (ringlb + BIRD SIGSTOPped): BFD",
        &attempts,
        at,
        gone,
        srcs.len(),
        period,
    ));
    wait_back();
    out
}

/// One table row: when the route left the router, the outage of new connections, the
/// share of client addresses that saw a failure.
fn impact(
    what: &str,
    attempts: &[client::Attempt],
    at: Duration,
    gone: Result<Duration, Vec<u8>>,
    sources_n: usize,
    period: Duration,
) -> String {
    let failed: Vec<&client::Attempt> = attempts.iter().filter(|a| a.result.is_err()).collect();
    let affected: HashSet<Ipv4Addr> = failed.iter().map(|a| a.src).collect();
    // Per source: from its last success before a failure to its first success after.
    let mut by_src: HashMap<Ipv4Addr, Vec<&client::Attempt>> = HashMap::new();
    for a in attempts {
        by_src.entry(a.src).or_default().push(a);
    }
    let mut worst = Duration::ZERO;
    for list in by_src.values() {
        let mut last_ok: Option<Duration> = None;
        let mut failing = false;
        for a in list {
            match (&a.result, failing) {
                (Ok(_), true) => {
                    worst = worst.max(a.at.saturating_sub(last_ok.unwrap_or(at)));
                    failing = false;
                    last_ok = Some(a.at);
                }
                (Ok(_), false) => last_ok = Some(a.at),
                (Err(_), _) => failing = true,
            }
        }
    }
    let first = failed.first().map(|a| a.at.saturating_sub(at));
    let last = failed.last().map(|a| a.at.saturating_sub(at));
    let gone = match gone {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(h) => format!("not within 5 s (next hops {h:?})"),
    };
    format!(
        "| {what} | {gone} | {} of {} ({}) | {} | {}/{sources_n} | {} |",
        failed.len(),
        attempts.len(),
        match (first, last) {
            (Some(f), Some(l)) => format!("from +{} to +{} ms", f.as_millis(), l.as_millis()),
            _ => "none".into(),
        },
        if worst.is_zero() {
            "0".to_string()
        } else {
            format!("{} ms", worst.as_millis())
        },
        affected.len(),
        format_args!("{} addresses x 1 per {} ms", sources_n, period.as_millis()),
    )
}

fn bird_pid(lb: u8) -> Option<i32> {
    std::fs::read_to_string(format!("/run/ringlb-ecmp/lb{lb}/bird.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn wait_back() {
    if let Err(h) = wait_next_hops(&[1, 2, 3], Duration::from_secs(20)) {
        panic!("the route did not come back to all three balancers: {h:?}");
    }
    // BFD and BGP settle; the next scenario starts from a quiet state.
    thread::sleep(Duration::from_millis(500));
}

/// An established HTTP/1.1 connection through the VIP and the balancer that answered on it.
pub struct Held {
    stream: TcpStream,
    balancer: u8,
}

/// One keep-alive request on `s`; the balancer that answered.
fn request(s: &mut TcpStream) -> Result<u8, String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: ecmp\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if Instant::now() > deadline {
            return Err("timeout".into());
        }
        let n = s.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed".into());
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        // nginx's `return 200 "webN addr\n"`: the body ends with a newline.
        if let Some(body) = text.split("\r\n\r\n").nth(1).filter(|b| b.ends_with('\n')) {
            let addr = body.trim().split(' ').nth(1).unwrap_or("");
            return addr
                .parse()
                .ok()
                .and_then(balancer_of)
                .ok_or_else(|| format!("body {body:?}"));
        }
    }
}

/// Opens `per_source` keep-alive connections from each source; each answers once.
pub fn hold(per_source: usize) -> Vec<Held> {
    let srcs: Vec<IpAddr> = sources().into_iter().map(IpAddr::V4).collect();
    hold_via(&srcs, IpAddr::V4(VIP), per_source)
}

/// `hold` from `srcs` to `vip` (either family).
pub fn hold_via(srcs: &[IpAddr], vip: IpAddr, per_source: usize) -> Vec<Held> {
    let mut held = Vec::new();
    for _ in 0..per_source {
        for &src in srcs {
            let Ok(s) = Socket::new(
                Domain::for_address(SocketAddr::new(vip, 80)),
                Type::STREAM,
                None,
            ) else {
                continue;
            };
            if s.bind(&SocketAddr::new(src, 0).into()).is_err()
                || s.connect_timeout(&SocketAddr::new(vip, 80).into(), Duration::from_secs(1))
                    .is_err()
            {
                continue;
            }
            let mut stream = TcpStream::from(s);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            if let Ok(balancer) = request(&mut stream) {
                held.push(Held { stream, balancer });
            }
        }
    }
    held
}

/// Of the held connections on the balancers in `survivors`: how many, and how many failed
/// their next request.
pub fn reset_on(held: &mut [Held], survivors: &[u8]) -> (usize, usize) {
    let mut on = 0;
    let mut reset = 0;
    for h in held.iter_mut().filter(|h| survivors.contains(&h.balancer)) {
        on += 1;
        if request(&mut h.stream).is_err() {
            reset += 1;
        }
    }
    (on, reset)
}

/// The router's route to the VIP as a resilient next-hop group above BIRD's route (BIRD
/// 2.0.12 writes multipath routes, not next-hop objects): `members` of balancers 1 to 3.
fn resilient(members: &[u8]) {
    let group: Vec<String> = members.iter().map(|m| m.to_string()).collect();
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for lb in 1..=3u8 {
        cmds.push(
            format!(
                "nexthop replace id {lb} via {} dev veth-l",
                balancer_addr(lb)
            )
            .split(' ')
            .map(String::from)
            .collect(),
        );
    }
    // idle_timer: a bucket moves to a joining balancer only after no packet used it for
    // this long; unbalanced_timer 0: never forced.
    cmds.push(
        format!(
            "nexthop replace id 100 group {} type resilient buckets 256 idle_timer 60 unbalanced_timer 0",
            group.join("/")
        )
        .split(' ')
        .map(String::from)
        .collect(),
    );
    cmds.push(
        "route replace 192.0.2.240/32 nhid 100 metric 10"
            .split(' ')
            .map(String::from)
            .collect(),
    );
    for c in cmds {
        let ok = Command::new("ip")
            .args(["-n", ROUTER_NS])
            .args(&c)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip {}", c.join(" "));
    }
}

fn remove_resilient() {
    let _ = Command::new("ip")
        .args([
            "-n",
            ROUTER_NS,
            "route",
            "del",
            "192.0.2.240/32",
            "metric",
            "10",
        ])
        .status();
    let _ = Command::new("ip")
        .args(["-n", ROUTER_NS, "nexthop", "flush"])
        .status();
}

/// Part 6: established connections on the surviving balancers when lb2 leaves (graceful
/// stop) and when it joins again, with the router's plain ECMP and with a resilient group.
pub fn churn(lbs: &mut [Node], dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for handoff in [false, true] {
        restart_all(lbs, dir, handoff);
        let with = if handoff { "handoff" } else { "no handoff" };
        for mode in [
            "plain ECMP (BIRD's multipath route)",
            "resilient group, 256 buckets",
        ] {
            out.extend(churn_once(lbs, dir, handoff, mode, with));
        }
    }
    out
}

/// Stops the three balancers and starts them again on their configs with or without
/// `announce.handoff`; returns once the router routes through all three.
fn restart_all(lbs: &mut [Node], dir: &std::path::Path, handoff: bool) {
    for lb in lbs.iter_mut() {
        lb.signal(libc::SIGTERM);
    }
    for lb in lbs.iter_mut() {
        lb.reap(Duration::from_secs(15));
    }
    for (i, lb) in lbs.iter_mut().enumerate() {
        let n = i as u8 + 1;
        let cfg = if handoff {
            config(n)
        } else {
            config_without_handoff(n, dir)
        };
        *lb = ringlb(n, &cfg, dir, &format!("churn-{handoff}"));
    }
    let _ = wait_next_hops(&[1, 2, 3], Duration::from_secs(20));
    // Past the windows the starts opened (`handoff.window` 30s is longer than a round:
    // the figures with a handoff are those of a window opened by the leave and the join).
    thread::sleep(Duration::from_millis(500));
}

fn churn_once(
    lbs: &mut [Node],
    dir: &std::path::Path,
    handoff: bool,
    mode: &str,
    with: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let resilient_mode = mode.starts_with("resilient");
    if resilient_mode {
        resilient(&[1, 2, 3]);
    }
    // Leave.
    let mut held = in_client(|| hold(6));
    lbs[1].signal(libc::SIGTERM);
    if resilient_mode {
        resilient(&[1, 3]);
    }
    let _ = wait_next_hops(&[1, 3], Duration::from_secs(3));
    thread::sleep(Duration::from_millis(300));
    let (on, reset) = in_client(|| reset_on(&mut held, &[1, 3]));
    out.push(format!(
        "| {mode} | {with} | lb2 leaves (SIGTERM) | {reset} of {on} | {:.0}% |",
        pct(reset, on)
    ));
    // lb2's own established connections, still in its drain: their packets now reach
    // another balancer, which has no socket for them.
    let (on, reset) = in_client(|| reset_on(&mut held, &[2]));
    out.push(format!(
        "| {mode} | {with} | (lb2's own established connections, in its drain) | {reset} of {on} | {:.0}% |",
        pct(reset, on)
    ));
    drop(held);
    lbs[1].reap(Duration::from_secs(15));
    // Join.
    let mut held = in_client(|| hold(6));
    let cfg = if handoff {
        config(2)
    } else {
        config_without_handoff(2, dir)
    };
    lbs[1] = ringlb(2, &cfg, dir, &format!("join-{resilient_mode}-{handoff}"));
    let _ = wait_next_hops(&[1, 2, 3], Duration::from_secs(20));
    if resilient_mode {
        resilient(&[1, 2, 3]);
    }
    thread::sleep(Duration::from_millis(300));
    let (on, reset) = in_client(|| reset_on(&mut held, &[1, 3]));
    out.push(format!(
        "| {mode} | {with} | lb2 joins | {reset} of {on} | {:.0}% |",
        pct(reset, on)
    ));
    if resilient_mode {
        // Who takes new flows right after the join: buckets move only once idle.
        let after = in_client(|| client::batch(3, 4));
        let to_lb2 = after
            .iter()
            .filter(|(_, r)| matches!(r, Ok(a) if balancer_of(a.balancer) == Some(2)))
            .count();
        out.push(format!(
            "| {mode} | {with} | (new connections right after the join: {to_lb2} of {} to lb2) | | |",
            after.len()
        ));
        remove_resilient();
    }
    drop(held);
    thread::sleep(Duration::from_millis(500));
    out
}

fn pct(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// Runs `f` on a thread inside the client's namespace.
pub fn in_client<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| {
        s.spawn(|| {
            enter(CLIENT_NS);
            f()
        })
        .join()
        .expect("client thread")
    })
}

/// Part 7: wrk (Connection: close) from the client through the router with 1, 2 and 3
/// balancers announcing.
pub fn throughput(lbs: &mut [Node], dir: &std::path::Path, secs: u32) -> Vec<String> {
    let mut out = Vec::new();
    // Down to one balancer.
    for i in [1, 2] {
        lbs[i].signal(libc::SIGTERM);
    }
    let _ = wait_next_hops(&[1], Duration::from_secs(5));
    for i in [1, 2] {
        lbs[i].reap(Duration::from_secs(15));
    }
    for n in 1..=3u8 {
        if n > 1 {
            let i = usize::from(n - 1);
            lbs[i] = ringlb(n, &config(n), dir, "wrk");
        }
        let want: Vec<u8> = (1..=n).collect();
        if let Err(h) = wait_next_hops(&want, Duration::from_secs(20)) {
            out.push(format!("| {n} | route not on {want:?} but {h:?} | | |"));
            continue;
        }
        thread::sleep(Duration::from_millis(500));
        let (rate, p99, errors) = wrk(secs, true);
        out.push(format!(
            "| {n} | {rate:.0} | {p99} | {errors} | {:?} |",
            next_hops()
        ));
    }
    out
}

/// The packet path's cost of `announce.handoff`, one balancer (lb1) behind the router:
/// its nftables table absent, present with no window open (the steady state), and present
/// with a window open (every packet to the VIP then looks its socket up). One ringlb
/// throughout, the table taken out and put back between runs, so that nothing but the
/// packet path differs; `rounds` rounds of wrk for `secs` per mode and load, the modes'
/// order rotated each round; medians of requests/s and of the whole machine's CPU time
/// per request (client, router, balancer and nginx share the two cores: the difference
/// between the modes is what the rules cost).
pub fn handoff_cost(
    lbs: &mut [Node],
    dir: &std::path::Path,
    secs: u32,
    rounds: usize,
) -> Vec<String> {
    for lb in lbs.iter_mut() {
        lb.signal(libc::SIGTERM);
    }
    for lb in lbs.iter_mut() {
        lb.reap(Duration::from_secs(15));
    }
    lbs[0] = ringlb(1, &config(1), dir, "cost");
    let _ = wait_next_hops(&[1], Duration::from_secs(20));
    let table = nft_lb1("list table ip ringlb_vip\n");
    // The table as ringlb installed it, without the window its start opened.
    let table: String = table
        .lines()
        .filter(|l| !l.trim_start().starts_with("elements = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let modes = ["no table", "table, no window", "table, window open"];
    let loads = [("Connection: close", true), ("keep-alive", false)];
    let mut results: HashMap<(usize, usize), Vec<(f64, f64)>> = HashMap::new();
    for round in 0..rounds {
        for k in 0..modes.len() {
            let m = (round + k) % modes.len();
            nft_lb1("table ip ringlb_vip\ndelete table ip ringlb_vip\n");
            if m > 0 {
                nft_lb1(&table);
            }
            if m == 2 {
                nft_lb1("add element ip ringlb_vip windows { 192.0.2.240 timeout 600s }\n");
            }
            thread::sleep(Duration::from_millis(300));
            for (l, (_, close)) in loads.iter().enumerate() {
                let busy_before = busy_ms();
                let (rate, _, _) = wrk(secs, *close);
                let busy = busy_ms() - busy_before;
                let requests = rate * f64::from(secs);
                if requests > 0.0 {
                    results
                        .entry((m, l))
                        .or_default()
                        .push((rate, busy * 1000.0 / requests));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (l, (load, _)) in loads.iter().enumerate() {
        let base = median(results.get(&(0, l)).map_or(&[][..], |v| v), |r| r.1);
        for (m, mode) in modes.iter().enumerate() {
            let v = results.get(&(m, l)).map_or(&[][..], |v| v);
            let rate = median(v, |r| r.0);
            let cpu = median(v, |r| r.1);
            out.push(format!(
                "| {load} | {mode} | {rate:.0} | {cpu:.1} | {:.3} | {} |",
                cpu / base,
                v.len()
            ));
        }
    }
    // Back to three balancers, each with its own table, for whatever runs next.
    lbs[0].signal(libc::SIGTERM);
    lbs[0].reap(Duration::from_secs(15));
    for (i, lb) in lbs.iter_mut().enumerate() {
        *lb = ringlb(i as u8 + 1, &config(i as u8 + 1), dir, "after-cost");
    }
    let _ = wait_next_hops(&[1, 2, 3], Duration::from_secs(20));
    out
}

/// Runs `nft -f -` on `script` in lb1's namespace; its output.
fn nft_lb1(script: &str) -> String {
    let mut child = Command::new("ip")
        .args(["netns", "exec", "ecmp-lb1", "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run nft");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).expect("write to nft");
    }
    let out = child.wait_with_output().expect("nft");
    assert!(out.status.success(), "nft -f - failed on\n{script}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn median<T>(v: &[T], key: impl Fn(&T) -> f64) -> f64 {
    let mut k: Vec<f64> = v.iter().map(key).collect();
    if k.is_empty() {
        return f64::NAN;
    }
    k.sort_by(|a, b| a.total_cmp(b));
    k[k.len() / 2]
}

/// The whole machine's busy CPU time so far, in milliseconds (/proc/stat: every field but
/// idle and iowait, in USER_HZ ticks of 10 ms).
fn busy_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: f64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, v)| v)
        .sum();
    busy * 10.0
}

/// wrk from the client through the router for `secs`: requests/s, p99, the error line.
fn wrk(secs: u32, close: bool) -> (f64, String, String) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", CLIENT_NS, "wrk", "-t2", "-c32"])
        .arg(format!("-d{secs}s"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .args(["--latency", "http://192.0.2.240/"])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    let errors = text
        .lines()
        .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .unwrap_or("none")
        .trim()
        .to_string();
    (rate, p99, errors)
}
