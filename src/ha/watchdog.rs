//! Fate-sharing: how long the slowest worker has gone without turning its event loop, read
//! from the heartbeats the workers store (milliseconds since `Shared::epoch`).
//!
//! A watchdog that was itself frozen (SIGSTOP, a stopped VM) sees every heartbeat as old when
//! it wakes; it then restarts its measure from its own wake-up instead of blaming workers
//! that were frozen with it.

/// Tracks the oldest heartbeat; pure, so it is tested with made-up clocks.
#[derive(Debug)]
pub struct Watchdog {
    /// A gap between two checks longer than this means the watchdog itself was frozen.
    own_gap_limit: u64,
    last_check_ms: Option<u64>,
    /// Heartbeats count from no earlier than this (the watchdog's start or wake-up).
    since_ms: u64,
}

/// The slowest worker at one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oldest {
    pub worker: usize,
    pub age_ms: u64,
}

impl Watchdog {
    pub fn new(now_ms: u64, own_gap_limit_ms: u64) -> Watchdog {
        Watchdog {
            own_gap_limit: own_gap_limit_ms,
            last_check_ms: None,
            since_ms: now_ms,
        }
    }

    /// The worker whose last loop turn is oldest, and how old it is.
    pub fn check(&mut self, now_ms: u64, heartbeats: impl IntoIterator<Item = u64>) -> Oldest {
        if self
            .last_check_ms
            .is_some_and(|last| now_ms.saturating_sub(last) > self.own_gap_limit)
        {
            self.since_ms = now_ms;
        }
        self.last_check_ms = Some(now_ms);
        heartbeats
            .into_iter()
            .enumerate()
            .map(|(worker, beat)| Oldest {
                worker,
                age_ms: now_ms.saturating_sub(beat.max(self.since_ms)),
            })
            .max_by_key(|o| o.age_ms)
            .unwrap_or(Oldest {
                worker: 0,
                age_ms: 0,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_worker_and_its_age() {
        let mut w = Watchdog::new(0, 100);
        assert_eq!(
            w.check(50, [40, 10]),
            Oldest {
                worker: 1,
                age_ms: 40
            }
        );
        assert_eq!(
            w.check(100, [90, 95]),
            Oldest {
                worker: 0,
                age_ms: 10
            }
        );
        // Worker 1 stops turning; its age grows with each check.
        for now in [150, 200, 250, 300, 350] {
            assert_eq!(w.check(now, [now - 10, 95]).age_ms, now - 95);
        }
    }

    #[test]
    fn heartbeats_before_start_count_from_start() {
        let mut w = Watchdog::new(1_000, 100);
        assert_eq!(w.check(1_050, [0, 0]).age_ms, 50);
    }

    #[test]
    fn a_frozen_watchdog_does_not_blame_the_workers() {
        let mut w = Watchdog::new(0, 100);
        assert_eq!(w.check(50, [45]).age_ms, 5);
        // The whole process was stopped for 5 s: every heartbeat looks 5 s old.
        assert_eq!(w.check(5_050, [45]).age_ms, 0);
        assert_eq!(w.check(5_100, [5_080]).age_ms, 20);
        // A worker still not turning after the wake-up is stalled again from then on.
        assert_eq!(w.check(5_150, [45]).age_ms, 100);
    }
}
