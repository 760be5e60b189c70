//! What a finished connection adds to the counters, in the worker's own cells: the end
//! reason for its frontend and (when it reached one) its server, and its connect time and
//! duration for that server's histograms.

use super::conn::{Conn, End};
use super::link::Link;
use super::Worker;

impl Worker {
    pub(super) fn count_end(&self, conn: &Conn, link: &Link) {
        // As in the log line: a connection without an end was closed by a stop.
        let reason = end_index(conn.end().unwrap_or(End::Shutdown));
        link.tables.frontends[link.frontend]
            .stats
            .cells
            .of(self.id)
            .ends
            .add(reason);
        let (Some(connect_time), Some(i)) = (conn.connect_time(), link.server_idx) else {
            return;
        };
        let cell = link.backend_table().servers[i].stats.cells.of(self.id);
        cell.ends.add(reason);
        cell.record(
            self.now,
            Some(connect_time),
            self.now.saturating_sub(conn.accepted()),
        );
    }
}

/// The place of `end` in `END_REASONS`. A match rather than `end as usize`, so that a new
/// `End` does not build until it has its counter.
fn end_index(end: End) -> usize {
    match end {
        End::ClientClose => 0,
        End::ServerClose => 1,
        End::ClientReset => 2,
        End::ServerReset => 3,
        End::ClientTimeout => 4,
        End::ServerTimeout => 5,
        End::NoServer => 6,
        End::QueueTimeout => 7,
        End::Drained => 8,
        End::Shutdown => 9,
        End::BadProxy => 10,
        End::ProxyTimeout => 11,
        End::NoRoute => 12,
        End::Killed => 13,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::END_REASONS;

    #[test]
    fn every_end_counts_under_its_log_name() {
        let all = [
            End::ClientClose,
            End::ServerClose,
            End::ClientReset,
            End::ServerReset,
            End::ClientTimeout,
            End::ServerTimeout,
            End::NoServer,
            End::QueueTimeout,
            End::Drained,
            End::Shutdown,
            End::BadProxy,
            End::ProxyTimeout,
            End::NoRoute,
            End::Killed,
        ];
        assert_eq!(all.len(), END_REASONS.len());
        for e in all {
            assert_eq!(END_REASONS[end_index(e)], e.as_str());
        }
    }
}
