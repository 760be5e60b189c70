//! A server's health verdicts over its life (carried across reloads with its identity):
//! how often the verdict changed and how long it was DOWN, the current DOWN spell
//! included. Kept by the registry, which every verdict passes through; `now` is passed in.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct HealthHistory {
    /// Verdict changes, UP to DOWN and DOWN to UP.
    changes: u64,
    /// DOWN time of the spells that ended.
    down_before: Duration,
    /// When the current DOWN spell began; `None` while UP.
    down_since: Option<Instant>,
}

impl HealthHistory {
    /// A server whose first state is DOWN (checked, no verdict yet) or UP (unchecked).
    pub fn new(down: bool, now: Instant) -> HealthHistory {
        HealthHistory {
            changes: 0,
            down_before: Duration::ZERO,
            down_since: down.then_some(now),
        }
    }

    /// Takes a verdict; one that repeats the current state changes nothing.
    pub fn verdict(&mut self, down: bool, now: Instant) {
        match (self.down_since, down) {
            (None, true) => self.down_since = Some(now),
            (Some(since), false) => {
                self.down_before += now.saturating_duration_since(since);
                self.down_since = None;
            }
            _ => return,
        }
        self.changes += 1;
    }

    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Time spent DOWN up to `now`.
    pub fn downtime(&self, now: Instant) -> Duration {
        self.down_before
            + self
                .down_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downtime_adds_up_spells_and_counts_the_current_one() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = HealthHistory::new(true, t0);
        assert_eq!(h.downtime(at(3)), Duration::from_secs(3));
        h.verdict(false, at(5)); // UP after 5 s DOWN
        h.verdict(false, at(6)); // a repeat is no change
        assert_eq!(
            (h.changes(), h.downtime(at(20))),
            (1, Duration::from_secs(5))
        );
        h.verdict(true, at(20));
        h.verdict(true, at(25));
        assert_eq!(h.downtime(at(30)), Duration::from_secs(15));
        h.verdict(false, at(32));
        assert_eq!(
            (h.changes(), h.downtime(at(99))),
            (3, Duration::from_secs(17))
        );
        // A server without checks starts UP and has no downtime.
        let up = HealthHistory::new(false, t0);
        assert_eq!((up.changes(), up.downtime(at(9))), (0, Duration::ZERO));
    }
}
