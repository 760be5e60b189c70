//! Deadlines, checked by the worker's periodic sweep: idle timeouts while forwarding, the
//! inspection deadline, and the drain deadline of a connection whose server a reload
//! removed.

use std::time::Duration;

use super::{Conn, ConnIo, Dir, DirState, End, Phase};

impl Conn {
    /// Ends the connection if a deadline has passed at `now`.
    pub fn on_sweep(&mut self, now: Duration, io: &mut impl ConnIo) {
        match self.phase {
            Phase::Inspecting => self.expire_inspection(now, io),
            Phase::Forwarding => {
                if let Some(end) = self.idle_end(now) {
                    self.set_end(end);
                    self.begin_close(io);
                }
            }
            _ => {}
        }
    }

    /// Which idle timeout has passed, if one has: no byte moved either way for `client`
    /// while the client may still send, or for `server` while the server may.
    fn idle_end(&self, now: Duration) -> Option<End> {
        let idle = now.saturating_sub(self.active);
        let p = &self.policy;
        let waiting_client = self.flows[Dir::Up as usize].state != DirState::Done;
        let waiting_server = self.flows[Dir::Down as usize].state != DirState::Done;
        let client_due = waiting_client && idle >= p.client_timeout;
        let server_due = waiting_server && idle >= p.server_timeout;
        match (client_due, server_due) {
            (true, true) if p.server_timeout < p.client_timeout => Some(End::ServerTimeout),
            (true, _) => Some(End::ClientTimeout),
            (false, true) => Some(End::ServerTimeout),
            (false, false) => None,
        }
    }

    /// Whether the connection is forwarding (the only phase a drain applies to).
    pub fn forwarding(&self) -> bool {
        self.phase == Phase::Forwarding
    }

    /// Its server is gone from the current snapshot (`Some(timeout)`) or back in it
    /// (`None`): counts down `drain_timeout` from the first time it is seen gone, and ends
    /// the connection when that passes. Returns whether it is still draining.
    pub fn on_server_removed(
        &mut self,
        now: Duration,
        removed: Option<Duration>,
        io: &mut impl ConnIo,
    ) -> bool {
        let Some(timeout) = removed else {
            self.drain_until = None;
            return false;
        };
        let until = *self
            .drain_until
            .get_or_insert_with(|| now.saturating_add(timeout));
        if now < until {
            return true;
        }
        self.set_end(End::Drained);
        self.begin_close(io);
        false
    }
}
