//! Connections ended, counted by why they ended: one counter per `end=` value of the
//! connection log line, per frontend and per server, in each worker's own cell. The worker
//! maps its `End` to an index here (`worker::tally`); the names are the log's, so a metric
//! label and a log line say the same thing.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::Cell;

/// Every `end=` value of the log, in counter order.
pub const END_REASONS: [&str; 14] = [
    "client_close",
    "server_close",
    "client_reset",
    "server_reset",
    "client_timeout",
    "server_timeout",
    "no_server",
    "queue_timeout",
    "drained",
    "shutdown",
    "bad_proxy",
    "proxy_timeout",
    "no_route",
    "killed",
];

/// One worker's counts, a counter per reason.
#[derive(Debug, Default)]
pub struct EndCounts([Cell; END_REASONS.len()]);

impl EndCounts {
    /// Counts one end of reason `END_REASONS[reason]`; an index past the list counts
    /// nowhere rather than panicking on a worker.
    #[inline]
    pub fn add(&self, reason: usize) {
        if let Some(c) = self.0.get(reason) {
            c.add(1);
        }
    }

    fn get(&self, reason: usize) -> u64 {
        self.0[reason].get()
    }
}

/// Ends per reason, all workers together; serialized as an object keyed by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndTotals([u64; END_REASONS.len()]);

impl EndTotals {
    /// Sums the counts of every worker.
    pub fn sum<'a>(cells: impl Iterator<Item = &'a EndCounts>) -> EndTotals {
        let mut totals = [0u64; END_REASONS.len()];
        for c in cells {
            for (i, t) in totals.iter_mut().enumerate() {
                *t = t.wrapping_add(c.get(i));
            }
        }
        EndTotals(totals)
    }

    /// Every reason with its count, zeros included (stable series for metrics).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        END_REASONS.iter().copied().zip(self.0.iter().copied())
    }
}

impl Serialize for EndTotals {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(END_REASONS.len()))?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason, &n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_per_reason_and_ignore_unknown_indices() {
        let (a, b) = (EndCounts::default(), EndCounts::default());
        a.add(0);
        a.add(12);
        b.add(12);
        b.add(99);
        let t = EndTotals::sum([&a, &b].into_iter());
        let got: Vec<_> = t.iter().filter(|&(_, n)| n > 0).collect();
        assert_eq!(got, [("client_close", 1), ("no_route", 2)]);
        assert_eq!(
            serde_json::to_value(t).unwrap()["no_route"],
            serde_json::json!(2)
        );
        let mut names = END_REASONS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), END_REASONS.len());
    }
}
