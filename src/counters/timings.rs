//! Latency histograms of one server in one worker's cell: connect times and connection
//! durations since start, and the same over a sliding window of the last few minutes kept
//! as a ring of per-minute histograms. The worker records; the stats thread merges, and
//! while it reads it also clears the slot of the coming minute, so that a worker seldom
//! clears one itself. Time is passed in (`now` since `Shared::epoch`): no clock here.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant digits kept by the latency histograms: 1 % precision, and memory that grows
/// with the range actually seen (a few KiB per histogram).
const SIGFIG: u8 = 2;

/// Minutes the sliding window spans: the current minute and the ones before it.
pub const WINDOW_MINUTES: u64 = 5;

/// The window's minutes and one more: the slot of the next minute, which the reader clears
/// ahead of time, holds a minute already out of the window.
const SLOTS: usize = WINDOW_MINUTES as usize + 1;

/// Connect times and connection durations in microseconds, with their exact sums.
#[derive(Debug)]
pub struct Timings {
    pub connect: Histogram<u64>,
    pub duration: Histogram<u64>,
    pub connect_sum_us: u64,
    pub duration_sum_us: u64,
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            connect: new_histogram(),
            duration: new_histogram(),
            connect_sum_us: 0,
            duration_sum_us: 0,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing: starts tiny and grows to the largest value recorded. `new` fails
    // only for sigfig > 5.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("SIGFIG is 2"))
}

impl Timings {
    pub fn add(&mut self, other: &Timings) {
        // Both auto-resize, so adding never runs out of range.
        let _ = self.connect.add(&other.connect);
        let _ = self.duration.add(&other.duration);
        self.connect_sum_us = self.connect_sum_us.wrapping_add(other.connect_sum_us);
        self.duration_sum_us = self.duration_sum_us.wrapping_add(other.duration_sum_us);
    }

    fn record(&mut self, connect: Option<Duration>, duration: Duration) {
        if let Some(c) = connect {
            let us = micros(c);
            record(&mut self.connect, us);
            self.connect_sum_us = self.connect_sum_us.wrapping_add(us);
        }
        let us = micros(duration);
        record(&mut self.duration, us);
        self.duration_sum_us = self.duration_sum_us.wrapping_add(us);
    }

    /// Empties the histograms (counts, min and max), keeping their memory for the minute
    /// that reuses them.
    fn reset(&mut self) {
        self.connect.reset();
        self.duration.reset();
        self.connect_sum_us = 0;
        self.duration_sum_us = 0;
    }
}

/// Records `v`, growing the histogram as needed (`saturating_record` would clamp to the
/// current range instead of growing).
fn record(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The minute (since the epoch of `now`) that `now` falls in.
fn minute_of(now: Duration) -> u64 {
    now.as_secs() / 60
}

/// One minute of the ring.
#[derive(Debug, Default)]
struct Minute {
    /// Which minute the slot holds; `None` before its first use.
    minute: Option<u64>,
    timings: Timings,
}

/// What one cell keeps: everything since start, and the ring of minutes.
#[derive(Debug, Default)]
pub struct CellTimings {
    since_start: Timings,
    ring: [Minute; SLOTS],
}

impl CellTimings {
    /// Records a finished connection at `now`: its connect time, if it connected, and how
    /// long the client was with ringlb.
    pub fn record(&mut self, now: Duration, connect: Option<Duration>, duration: Duration) {
        self.since_start.record(connect, duration);
        self.minute(minute_of(now)).record(connect, duration);
    }

    /// Adds this cell's histograms to `since_start`, and those of the window ending at
    /// `now` to `window`; then readies the slot of the next minute, so that the worker finds
    /// it empty when that minute starts.
    pub fn merge_into(&mut self, now: Duration, since_start: &mut Timings, window: &mut Timings) {
        since_start.add(&self.since_start);
        let current = minute_of(now);
        for slot in &self.ring {
            if slot
                .minute
                .is_some_and(|m| m <= current && current - m < WINDOW_MINUTES)
            {
                window.add(&slot.timings);
            }
        }
        self.minute(current + 1);
    }

    /// The slot of `minute`, emptied first when it still holds an older minute.
    fn minute(&mut self, minute: u64) -> &mut Timings {
        let slot = &mut self.ring[(minute % SLOTS as u64) as usize];
        if slot.minute != Some(minute) {
            slot.timings.reset();
            slot.minute = Some(minute);
        }
        &mut slot.timings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(minutes: u64, secs: u64) -> Duration {
        MIN * minutes as u32 + Duration::from_secs(secs)
    }

    fn read(cell: &mut CellTimings, now: Duration) -> (Timings, Timings) {
        let (mut start, mut window) = (Timings::default(), Timings::default());
        cell.merge_into(now, &mut start, &mut window);
        (start, window)
    }

    #[test]
    fn the_window_keeps_the_last_five_minutes_and_start_keeps_all() {
        let mut cell = CellTimings::default();
        // One connection a minute for ten minutes, each lasting `minute + 1` ms.
        for m in 0..10u64 {
            cell.record(
                at(m, 30),
                Some(Duration::from_micros(100)),
                Duration::from_millis(m + 1),
            );
        }
        let (start, window) = read(&mut cell, at(9, 45));
        assert_eq!(start.duration.len(), 10);
        assert_eq!(start.connect_sum_us, 1000);
        // Minutes 5 to 9: durations 6 to 10 ms.
        assert_eq!(window.duration.len(), 5);
        assert_eq!(window.duration_sum_us, (6..=10).sum::<u64>() * 1000);
        assert_eq!(
            window.duration.min(),
            window.duration.lowest_equivalent(6000)
        );

        // Nothing new for three minutes: two of those minutes are left in the window.
        let (start, window) = read(&mut cell, at(12, 0));
        assert_eq!(start.duration.len(), 10);
        assert_eq!(window.duration.len(), 2);
        // Long after: the window is empty, since start is not.
        let (start, window) = read(&mut cell, at(60, 0));
        assert_eq!((start.duration.len(), window.duration.len()), (10, 0));
    }

    #[test]
    fn a_reused_slot_forgets_its_old_minute_whoever_clears_it() {
        let mut cell = CellTimings::default();
        cell.record(at(0, 1), None, Duration::from_millis(1));
        // Six minutes later the same slot comes round; the worker clears it (no reader).
        cell.record(at(6, 1), None, Duration::from_millis(2));
        let (_, window) = read(&mut cell, at(6, 2));
        assert_eq!(window.duration.len(), 1);
        assert_eq!(window.connect.len(), 0);
        // The reader readied minute 7 (clearing minute 1's slot); a record then keeps it.
        cell.record(at(7, 0), None, Duration::from_millis(3));
        let (start, window) = read(&mut cell, at(7, 1));
        assert_eq!(window.duration.len(), 2);
        assert_eq!(start.duration.len(), 3);
        // A worker clock a little behind the reader's still lands in the window.
        cell.record(at(7, 59), None, Duration::from_millis(4));
        let (_, window) = read(&mut cell, at(8, 0));
        assert_eq!(window.duration.len(), 3);
    }
}
