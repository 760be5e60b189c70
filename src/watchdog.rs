//! How long each worker has gone without turning its event loop, read from the heartbeats
//! the workers store (milliseconds since `Shared::epoch`). The control thread takes a
//! stalled worker out of the accept path with it; the VRRP thread shares fate with the
//! workers through it.
//!
//! A watchdog that was itself frozen (SIGSTOP, a stopped VM) sees every heartbeat as old when
//! it wakes; it then restarts its measure from its own wake-up instead of blaming workers
//! that were frozen with it.

/// Reads heartbeats into ages; pure, so it is tested with made-up clocks.
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

/// Each worker's age at one check: how long since its last loop turn, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ages(pub Vec<u64>);

impl Ages {
    /// The worker whose last loop turn is oldest, and how old it is.
    pub fn oldest(&self) -> Oldest {
        self.0
            .iter()
            .enumerate()
            .map(|(worker, &age_ms)| Oldest { worker, age_ms })
            .max_by_key(|o| o.age_ms)
            .unwrap_or(Oldest {
                worker: 0,
                age_ms: 0,
            })
    }

    /// The workers that have not turned their loop for longer than `limit_ms`.
    pub fn stalled(&self, limit_ms: u64) -> impl Iterator<Item = usize> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(move |(_, &age)| age > limit_ms)
            .map(|(w, _)| w)
    }

    /// How many workers turned their loop within `limit_ms`.
    pub fn live(&self, limit_ms: u64) -> usize {
        self.0.iter().filter(|&&age| age <= limit_ms).count()
    }
}

impl Watchdog {
    pub fn new(now_ms: u64, own_gap_limit_ms: u64) -> Watchdog {
        Watchdog {
            own_gap_limit: own_gap_limit_ms,
            last_check_ms: None,
            since_ms: now_ms,
        }
    }

    /// Each worker's age now.
    pub fn check(&mut self, now_ms: u64, heartbeats: impl IntoIterator<Item = u64>) -> Ages {
        if self
            .last_check_ms
            .is_some_and(|last| now_ms.saturating_sub(last) > self.own_gap_limit)
        {
            self.since_ms = now_ms;
        }
        self.last_check_ms = Some(now_ms);
        Ages(
            heartbeats
                .into_iter()
                .map(|beat| now_ms.saturating_sub(beat.max(self.since_ms)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_worker_and_its_age() {
        let mut w = Watchdog::new(0, 100);
        assert_eq!(
            w.check(50, [40, 10]).oldest(),
            Oldest {
                worker: 1,
                age_ms: 40
            }
        );
        assert_eq!(
            w.check(100, [90, 95]).oldest(),
            Oldest {
                worker: 0,
                age_ms: 10
            }
        );
        // Worker 1 stops turning; its age grows with each check.
        for now in [150, 200, 250, 300, 350] {
            assert_eq!(w.check(now, [now - 10, 95]).oldest().age_ms, now - 95);
        }
    }

    #[test]
    fn heartbeats_before_start_count_from_start() {
        let mut w = Watchdog::new(1_000, 100);
        assert_eq!(w.check(1_050, [0, 0]).oldest().age_ms, 50);
    }

    #[test]
    fn a_frozen_watchdog_does_not_blame_the_workers() {
        let mut w = Watchdog::new(0, 100);
        assert_eq!(w.check(50, [45]).oldest().age_ms, 5);
        // The whole process was stopped for 5 s: every heartbeat looks 5 s old.
        assert_eq!(w.check(5_050, [45]).oldest().age_ms, 0);
        assert_eq!(w.check(5_100, [5_080]).oldest().age_ms, 20);
        // A worker still not turning after the wake-up is stalled again from then on.
        assert_eq!(w.check(5_150, [45]).oldest().age_ms, 100);
    }

    #[test]
    fn stalled_and_live_workers() {
        let mut w = Watchdog::new(0, 1_000);
        let ages = w.check(500, [490, 100, 480, 250]);
        assert_eq!(ages.0, vec![10, 400, 20, 250]);
        assert_eq!(ages.stalled(300).collect::<Vec<_>>(), vec![1]);
        assert_eq!(ages.live(300), 3);
        assert_eq!(ages.live(5), 0);
        assert_eq!(Ages::default().oldest().age_ms, 0);
    }
}
