//! A split brain and its healing: the two balancers' bridge ports are isolated from each
//! other for 5 s (both become master; the client still reaches both), then joined again at
//! a random moment. The lower node yields; the client path must be repaired within one
//! second every time, not only when the winner happens to hear the loser first (the old
//! race: nobody re-announces the VIP and the client keeps the loser's MAC address until
//! its ARP entry expires).

use std::process::Command;
use std::thread;
use std::time::Duration;

use super::nodes::{vip_holders, wait_vip};
use super::probe::{outcome, Attempt, Outcome, Probe};
use super::{target, STEADY_LIMIT};

/// How long the balancers cannot hear each other.
pub const CUT: Duration = Duration::from_secs(5);
/// The bound on the client-seen outage once the link is back.
pub const HEAL_LIMIT: Duration = Duration::from_secs(1);
/// How long the client is watched after the link is back, whatever it sees.
const WATCH: Duration = Duration::from_secs(3);
/// How long a repetition then waits for the client path before it counts it as black-holed
/// (and repairs the client by hand for the next repetition).
const GIVE_UP: Duration = Duration::from_secs(3);

/// Isolates (or joins) the two balancers' ports on the lab bridge: isolated ports reach the
/// client and the web servers but not each other.
fn isolate(on: bool) {
    for lb in ["br-lb1", "br-lb2"] {
        let ok = Command::new("ip")
            .args([
                "-n",
                "lab-br",
                "link",
                "set",
                "dev",
                lb,
                "type",
                "bridge_slave",
            ])
            .args(["isolated", if on { "on" } else { "off" }])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "isolate {lb} {on}");
    }
}

/// The outage the client saw from `from` on (attempts stamped from the probe's start).
fn outage_after(attempts: &[Attempt], from: Duration) -> Outcome {
    let after: Vec<Attempt> = attempts
        .iter()
        .filter(|a| a.at >= from)
        .map(|a| Attempt {
            at: a.at - from,
            ok: a.ok,
        })
        .collect();
    outcome(&after)
}

/// `reps` split brains with lb1 (the higher priority) master at the start of each; returns
/// the client-seen outage after each heal. Whatever runs on lb1 and lb2 (ringlb, or
/// keepalived + HAProxy) must already be up.
pub fn split_brains(label: &str, reps: usize) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(reps);
    for rep in 1..=reps {
        wait_vip(1, true, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{label} split brain {rep}: lb1 master alone: {e}"));
        let probe = Probe::start("lab-client", target());
        if !probe.wait_streak(10, STEADY_LIMIT) {
            // The previous heal left the client on the loser's MAC address after all.
            if let Some(last) = outcomes.last_mut() {
                last.outage = last.outage.max(WATCH + GIVE_UP + STEADY_LIMIT);
                eprintln!("lab: {label} split brain {}: black-holed later", rep - 1);
            }
            flush_client_arp();
            assert!(
                probe.wait_streak(10, STEADY_LIMIT),
                "{label} split brain {rep}: the service was not steady before the cut"
            );
        }
        // A random phase against both nodes' advert timers, for the cut and for the heal.
        thread::sleep(Duration::from_millis(rand::random_range(0..1000)));
        isolate(true);
        let both = wait_until(Duration::from_secs(3), || vip_holders() == vec![1, 2]);
        thread::sleep(CUT + Duration::from_millis(rand::random_range(0..1000)));
        isolate(false);
        let healed_at = probe.elapsed();
        assert!(
            both,
            "{label} split brain {rep}: lb2 did not become master while cut off"
        );
        let one = wait_until(Duration::from_secs(3), || vip_holders() == vec![1]);
        // Watch a while: a client can keep the loser's MAC address until its ARP entry is
        // next revalidated, so the path may break after the first successes.
        thread::sleep(WATCH);
        let steady = probe.wait_streak(20, GIVE_UP);
        let seen = outage_after(&probe.attempts(), healed_at);
        assert!(
            one,
            "{label} split brain {rep}: two VIP owners 3 s after the heal"
        );
        eprintln!(
            "lab: {label} split brain {rep}/{reps}: outage after the heal {} ms ({} failed){}",
            seen.outage.as_millis(),
            seen.failures,
            if steady { "" } else { ", black-holed" }
        );
        if !steady {
            flush_client_arp();
        }
        outcomes.push(seen);
    }
    outcomes
}

/// The client may still send to the loser's MAC address: forget it, as its ARP entry
/// expiring would, so the next repetition starts clean.
fn flush_client_arp() {
    let _ = Command::new("ip")
        .args(["-n", "lab-client", "neigh", "flush", "all"])
        .status();
}

fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// "n of m over 1 s (worst X ms)" for the table.
pub fn summary(outcomes: &[Outcome]) -> String {
    let over = outcomes.iter().filter(|o| o.outage > HEAL_LIMIT).count();
    let worst = outcomes.iter().map(|o| o.outage).max().unwrap_or_default();
    format!(
        "{over} of {} over 1 s (worst {} ms)",
        outcomes.len(),
        worst.as_millis()
    )
}
