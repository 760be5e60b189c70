//! A stalled worker leaves the accept path. Every worker has its own `SO_REUSEPORT`
//! listener, and the kernel spreads new connections over the group without knowing whether
//! the worker behind a socket still runs: one frozen worker of two would take half of
//! them and answer none. So the control thread watches the heartbeats; a worker whose loop
//! has not turned for `worker_stall` has its listening sockets shut (`Listening::shut`).
//! The kernel then sends new connections only to the other workers' sockets and, with
//! `net.ipv4.tcp_migrate_req = 1`, moves the connections waiting in the stalled worker's
//! accept queues to them too, so those are served late rather than lost. A worker that
//! runs again finds its accepts failing and listens again (`Worker::relisten`).
//!
//! The last worker still turning its loop is never taken out: with every worker stalled
//! there is nobody to take its connections, and the VRRP `track` moves the VIP instead.

use std::time::Duration;

use crate::logging::event;
use crate::shared::Shared;
use crate::sys::{self, SwitchOn};
use crate::watchdog::{Ages, Watchdog};

/// How often the heartbeats are read: a stalled worker is out of the accept path within
/// `worker_stall` plus this.
pub const PERIOD: Duration = Duration::from_millis(50);

const MIGRATE_REQ: &str = "/proc/sys/net/ipv4/tcp_migrate_req";

/// Which workers are out of the accept path.
pub struct Evictor {
    watchdog: Watchdog,
    out: Vec<bool>,
}

impl Evictor {
    pub fn new(shared: &Shared) -> Evictor {
        Evictor {
            // The control thread itself frozen for 4 periods blames no worker.
            watchdog: shared.watchdog(PERIOD * 4),
            out: vec![false; shared.heartbeats.len()],
        }
    }

    /// Reads the heartbeats and takes workers out of, or back into, the accept path.
    pub fn check(&mut self, shared: &Shared, stall: Duration) {
        let ages = shared.worker_ages(&mut self.watchdog);
        let limit = stall.as_millis() as u64;
        for (worker, action) in decide(&ages, limit, &self.out) {
            match action {
                Action::Out => {
                    let shut = shared.listening.shut(worker);
                    event!(warning:
                        "worker {worker} has not turned its loop for {}ms (worker_stall {limit}ms): \
                         {shut} of its listening sockets shut; new and queued connections go to \
                         the other workers",
                        ages.0[worker]
                    );
                    self.out[worker] = true;
                }
                Action::In => {
                    event!(notice:
                        "worker {worker} turns its loop again; it listens again at its next accept"
                    );
                    self.out[worker] = false;
                }
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Action {
    Out,
    In,
}

/// What to do with each worker, given their ages and who is out: a stalled worker goes
/// out while another one turns its loop and is in; a worker that is out comes back in as
/// soon as it turns its loop.
fn decide(ages: &Ages, limit: u64, out: &[bool]) -> Vec<(usize, Action)> {
    let mut out = out.to_vec();
    let mut actions = Vec::new();
    for (w, &age) in ages.0.iter().enumerate() {
        let stalled = age > limit;
        if !stalled && out[w] {
            out[w] = false;
            actions.push((w, Action::In));
        }
    }
    for (w, &age) in ages.0.iter().enumerate() {
        if age <= limit || out[w] {
            continue;
        }
        let another_serves = ages
            .0
            .iter()
            .enumerate()
            .any(|(o, &a)| o != w && a <= limit && !out[o]);
        if another_serves {
            out[w] = true;
            actions.push((w, Action::Out));
        }
    }
    actions
}

/// With more than one worker, makes sure `net.ipv4.tcp_migrate_req` is 1 (it is per
/// network namespace), so that a stalled worker's queued connections move to the others
/// instead of being reset; says so when it cannot.
pub fn prepare_migration(workers: usize) {
    if workers < 2 {
        return;
    }
    match sys::switch_on(MIGRATE_REQ) {
        SwitchOn::WasOn => {}
        SwitchOn::Set => event!(notice:
            "set net.ipv4.tcp_migrate_req = 1: connections queued on a stalled worker's \
             listener move to the other workers"
        ),
        SwitchOn::CannotSet(e) => event!(warning:
            "net.ipv4.tcp_migrate_req is 0 and cannot be set ({e}): connections queued on \
             a stalled worker's listener are reset when it leaves the accept path; set it \
             in /etc/sysctl.d"
        ),
        SwitchOn::CannotRead(e) => event!(warning:
            "cannot read {MIGRATE_REQ} ({e}): a stalled worker's queued connections may be \
             reset when it leaves the accept path"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ages(a: &[u64]) -> Ages {
        Ages(a.to_vec())
    }

    #[test]
    fn a_stalled_worker_goes_out_while_another_serves() {
        assert_eq!(
            decide(&ages(&[10, 500]), 200, &[false, false]),
            vec![(1, Action::Out)]
        );
        // Already out: nothing more.
        assert_eq!(decide(&ages(&[10, 900]), 200, &[false, true]), vec![]);
        // Back: in again.
        assert_eq!(
            decide(&ages(&[10, 20]), 200, &[false, true]),
            vec![(1, Action::In)]
        );
    }

    #[test]
    fn the_last_serving_worker_stays() {
        // Both stalled: nobody could take the connections.
        assert_eq!(decide(&ages(&[500, 500]), 200, &[false, false]), vec![]);
        // One already out, the other stalls too: it stays in.
        assert_eq!(decide(&ages(&[500, 900]), 200, &[false, true]), vec![]);
        // A lone worker never goes out.
        assert_eq!(decide(&ages(&[900]), 200, &[false]), vec![]);
    }

    #[test]
    fn of_several_stalled_all_but_the_serving_ones_go() {
        assert_eq!(
            decide(&ages(&[500, 10, 600, 700]), 200, &[false; 4]),
            vec![(0, Action::Out), (2, Action::Out), (3, Action::Out)]
        );
        // One comes back while another stalls: both in one check.
        assert_eq!(
            decide(&ages(&[10, 500]), 200, &[true, false]),
            vec![(0, Action::In), (1, Action::Out)]
        );
    }
}
