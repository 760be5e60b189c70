//! The gratuitous ARP/NA schedule of a master: a burst on becoming master, a second burst after
//! `garp_master_delay`, optional periodic refreshes, and heal bursts; each round is an
//! [`Event::SendGratuitousArp`] whose deadline is folded into `poll_timeout`.

use std::collections::VecDeque;

use super::event::{Event, GarpReason};
use crate::config::Config;
use crate::time::Instant;

#[derive(Clone, Debug, Default)]
pub(crate) struct GarpSchedule {
    burst: Option<Burst>,
    delayed_at: Option<Instant>,
    refresh_at: Option<Instant>,
    /// When the last heal burst started: the rival's last advert and its yielding one
    /// arrive together, and one heal is enough.
    healed_at: Option<Instant>,
}

#[derive(Clone, Debug)]
struct Burst {
    next_at: Instant,
    remaining: u32,
    reason: GarpReason,
}

impl GarpSchedule {
    /// Starts the schedule of a new master and emits the rounds due now.
    pub(crate) fn became_master(&mut self, now: Instant, cfg: &Config, out: &mut VecDeque<Event>) {
        *self = GarpSchedule::default();
        self.start_burst(now, cfg.garp_master_repeat, GarpReason::BecameMaster);
        if cfg.garp_master_repeat > 0 && !cfg.garp_master_delay.is_zero() {
            self.delayed_at = Some(now + cfg.garp_master_delay);
        }
        self.refresh_at = cfg.garp_master_refresh.map(|period| now + period);
        self.poll(now, cfg, out);
    }

    /// Starts a heal burst unless a burst is already running or one started within the
    /// last advert interval; true when it did.
    pub(crate) fn heal(&mut self, now: Instant, cfg: &Config, out: &mut VecDeque<Event>) -> bool {
        let recent = self
            .healed_at
            .is_some_and(|at| now < at + cfg.advert_interval.as_duration());
        if self.burst.is_none() && !recent {
            self.healed_at = Some(now);
            self.start_burst(
                now,
                cfg.garp_master_repeat.max(1),
                GarpReason::SplitBrainHeal,
            );
            self.poll(now, cfg, out);
            return true;
        }
        false
    }

    /// Forgets everything (leaving Master).
    pub(crate) fn clear(&mut self) {
        *self = GarpSchedule::default();
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let burst = self.burst.as_ref().map(|b| b.next_at);
        [burst, self.delayed_at, self.refresh_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Emits every round due at `now`.
    pub(crate) fn poll(&mut self, now: Instant, cfg: &Config, out: &mut VecDeque<Event>) {
        if self.delayed_at.is_some_and(|at| at <= now) {
            self.delayed_at = None;
            self.start_burst(now, cfg.garp_master_repeat, GarpReason::Delayed);
        }
        if let (Some(at), Some(period)) = (self.refresh_at, cfg.garp_master_refresh) {
            if at <= now {
                self.refresh_at = Some(now + period);
                self.start_burst(now, cfg.garp_master_refresh_repeat, GarpReason::Refresh);
            }
        }
        if let Some(b) = &mut self.burst {
            while b.remaining > 0 && b.next_at <= now {
                out.push_back(Event::SendGratuitousArp { reason: b.reason });
                b.remaining -= 1;
                b.next_at = b.next_at + cfg.garp_interval;
            }
            if b.remaining == 0 {
                self.burst = None;
            }
        }
    }

    fn start_burst(&mut self, now: Instant, rounds: u32, reason: GarpReason) {
        self.burst = (rounds > 0).then_some(Burst {
            next_at: now,
            remaining: rounds,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::wire::VirtualAddrs;

    fn config() -> Config {
        let vips = VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]);
        Config::new(1, "192.0.2.1".parse().unwrap(), vips)
    }

    /// Runs the schedule to `end`, stepping to each deadline; returns (time in ms, reason).
    fn run(cfg: &Config, end: Instant) -> Vec<(u128, GarpReason)> {
        let mut g = GarpSchedule::default();
        let mut out = VecDeque::new();
        let mut seen = Vec::new();
        g.became_master(Instant::ZERO, cfg, &mut out);
        let mut now = Instant::ZERO;
        loop {
            for e in out.drain(..) {
                let Event::SendGratuitousArp { reason } = e else {
                    panic!("{e:?}")
                };
                seen.push((now.since_origin().as_millis(), reason));
            }
            match g.next_deadline() {
                Some(t) if t <= end => now = t,
                _ => return seen,
            }
            g.poll(now, cfg, &mut out);
        }
    }

    #[test]
    fn default_is_five_now_and_five_after_five_seconds() {
        let seen = run(&config(), Instant::from_millis(60_000));
        let want: Vec<_> = [(0, GarpReason::BecameMaster); 5]
            .into_iter()
            .chain([(5000, GarpReason::Delayed); 5])
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn spaced_rounds_and_refresh() {
        let cfg = Config {
            garp_master_repeat: 3,
            garp_interval: Duration::from_millis(20),
            garp_master_delay: Duration::from_secs(2),
            garp_master_refresh: Some(Duration::from_secs(3)),
            garp_master_refresh_repeat: 2,
            ..config()
        };
        use GarpReason::*;
        let seen = run(&cfg, Instant::from_millis(6100));
        let want = vec![
            (0, BecameMaster),
            (20, BecameMaster),
            (40, BecameMaster),
            (2000, Delayed),
            (2020, Delayed),
            (2040, Delayed),
            (3000, Refresh),
            (3020, Refresh),
            (6000, Refresh),
            (6020, Refresh),
        ];
        assert_eq!(seen, want);
    }

    #[test]
    fn zero_repeat_sends_nothing_and_schedules_nothing() {
        let cfg = Config {
            garp_master_repeat: 0,
            ..config()
        };
        assert_eq!(run(&cfg, Instant::from_millis(60_000)), vec![]);
    }

    #[test]
    fn heal_does_not_restart_a_running_burst() {
        let cfg = Config {
            garp_interval: Duration::from_millis(10),
            ..config()
        };
        let mut g = GarpSchedule::default();
        let mut out = VecDeque::new();
        g.became_master(Instant::ZERO, &cfg, &mut out);
        assert_eq!(out.len(), 1);
        g.heal(Instant::ZERO, &cfg, &mut out);
        assert_eq!(out.len(), 1);
        g.clear();
        assert_eq!(g.next_deadline(), None);
        g.heal(Instant::ZERO, &cfg, &mut out);
        assert_eq!(
            out.back(),
            Some(&Event::SendGratuitousArp {
                reason: GarpReason::SplitBrainHeal
            })
        );
    }
}
