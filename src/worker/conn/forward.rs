//! Moving bytes, each direction on its own: copy (a recv into the worker's buffer ring,
//! then a send), splice (readiness from io_uring, then splice(2) through a pipe), and the
//! auto policy between them; FIN passed on as a half-close; a failure on either socket
//! resets the other. Backpressure is strict: a direction holds at most one buffer or one
//! pipe, and reads nothing more until that is written.

use std::time::Duration;

use super::{
    Conn, ConnIo, Dir, DirState, End, HeldBuf, Phase, AUTO_SHORT_ROUND, AUTO_TO_COPY,
    AUTO_TO_SPLICE, SPLICE_CHUNK, SPLICE_ROUNDS,
};
use crate::config::Forward;
use crate::sys::Spliced;

impl Conn {
    /// Waits for bytes from `dir`'s source: a recv into the buffer ring (copy) or a
    /// readiness poll (splice).
    pub(super) fn start_dir(&mut self, dir: Dir, io: &mut impl ConnIo) {
        let flow = &mut self.flows[dir as usize];
        self.inflight += 1;
        if flow.splice {
            flow.state = DirState::PollIn;
            io.poll_in(dir);
        } else {
            flow.state = DirState::Recv;
            io.recv(dir);
        }
    }

    /// A recv of `dir` completed: `res` bytes in buffer `bid`, or an error.
    pub fn on_recv(
        &mut self,
        now: Duration,
        dir: Dir,
        res: i32,
        bid: Option<u16>,
        io: &mut impl ConnIo,
    ) {
        self.completed();
        if self.phase != Phase::Forwarding {
            // A buffer the kernel picked for a recv no longer wanted goes straight back.
            if let Some(bid) = bid {
                io.recycle(bid);
            }
            return;
        }
        if res == -libc::ENOBUFS {
            self.flows[dir as usize].state = DirState::WaitBuf;
            return io.wait_buf(dir);
        }
        if res < 0 {
            return self.abort(dir.source(), io);
        }
        if res == 0 {
            return self.eof(dir, io);
        }
        let Some(bid) = bid else {
            // The kernel always names the buffer of a successful buffer-select recv.
            return self.abort(dir.source(), io);
        };
        let n = res as u32;
        self.active = now;
        io.bytes(dir, u64::from(n));
        let auto = self.policy.forward == Forward::Auto;
        let flow = &mut self.flows[dir as usize];
        flow.bytes += u64::from(n);
        if auto {
            flow.streak = if n == self.buf_size {
                flow.streak.saturating_add(1)
            } else {
                0
            };
        }
        let buf = HeldBuf {
            bid,
            sent: 0,
            len: n,
        };
        flow.buf = Some(buf);
        flow.state = DirState::Send;
        self.inflight += 1;
        io.send(dir, buf);
    }

    /// A send of `dir` completed.
    pub fn on_send(&mut self, now: Duration, dir: Dir, res: i32, io: &mut impl ConnIo) {
        self.completed();
        if self.phase != Phase::Forwarding {
            return;
        }
        if res <= 0 {
            return self.abort(dir.sink(), io);
        }
        self.active = now;
        let flow = &mut self.flows[dir as usize];
        let Some(mut buf) = flow.buf else {
            return;
        };
        buf.sent += res as u32;
        if buf.sent < buf.len {
            flow.buf = Some(buf);
            self.inflight += 1;
            return io.send(dir, buf);
        }
        flow.buf = None;
        io.recycle(buf.bid);
        if flow.streak >= AUTO_TO_SPLICE && self.policy.forward == Forward::Auto {
            flow.splice = true;
            flow.streak = 0;
        }
        self.start_dir(dir, io);
    }

    /// A buffer came back to the ring: a direction that found it empty reads again.
    /// Returns whether this connection took the turn.
    pub fn on_buf_available(&mut self, dir: Dir, io: &mut impl ConnIo) -> bool {
        if self.phase == Phase::Forwarding && self.flows[dir as usize].state == DirState::WaitBuf {
            self.start_dir(dir, io);
            return true;
        }
        false
    }

    /// A readiness poll of `dir` completed: its source has bytes (or FIN), or its sink has
    /// room (`out`). Moves bytes with splice(2) until the source is drained, the sink is
    /// full, or this connection has had its share of the loop turn.
    pub fn on_poll(&mut self, now: Duration, dir: Dir, out: bool, res: i32, io: &mut impl ConnIo) {
        self.completed();
        if self.phase != Phase::Forwarding {
            return;
        }
        if res < 0 {
            let side = if out { dir.sink() } else { dir.source() };
            return self.abort(side, io);
        }
        self.pump(now, dir, io);
    }

    fn pump(&mut self, now: Duration, dir: Dir, io: &mut impl ConnIo) {
        let d = dir as usize;
        let mut moved = 0usize;
        for _ in 0..SPLICE_ROUNDS {
            if self.flows[d].in_pipe > 0 {
                match io.splice_out(dir, self.flows[d].in_pipe) {
                    Ok(Spliced::Moved(m)) => {
                        self.flows[d].in_pipe -= m;
                        self.active = now;
                    }
                    Ok(Spliced::WouldBlock | Spliced::Eof) => {}
                    Err(_) => return self.abort(dir.sink(), io),
                }
                if self.flows[d].in_pipe > 0 {
                    return self.wait_writable(dir, io);
                }
            }
            if !self.flows[d].pipe {
                if !io.take_pipe(dir) {
                    // No pipe to be had: this direction copies instead.
                    self.flows[d].splice = false;
                    return self.start_dir(dir, io);
                }
                self.flows[d].pipe = true;
            }
            match io.splice_in(dir, SPLICE_CHUNK) {
                Ok(Spliced::Moved(n)) => {
                    let flow = &mut self.flows[d];
                    flow.in_pipe = n;
                    flow.bytes += n as u64;
                    io.bytes(dir, n as u64);
                    self.active = now;
                    moved += n;
                }
                Ok(Spliced::Eof) => {
                    self.return_pipe(dir, io);
                    return self.eof(dir, io);
                }
                Ok(Spliced::WouldBlock) => break,
                Err(_) => return self.abort(dir.source(), io),
            }
        }
        if self.flows[d].in_pipe > 0 {
            // The round budget ran out with bytes in the pipe: flush on the next poll.
            return self.wait_writable(dir, io);
        }
        self.return_pipe(dir, io);
        if self.policy.forward == Forward::Auto {
            let flow = &mut self.flows[d];
            flow.streak = if moved < AUTO_SHORT_ROUND {
                flow.streak.saturating_add(1)
            } else {
                0
            };
            if flow.streak >= AUTO_TO_COPY {
                flow.splice = false;
                flow.streak = 0;
            }
        }
        self.start_dir(dir, io);
    }

    /// Bytes wait in `dir`'s pipe: poll its sink for room.
    fn wait_writable(&mut self, dir: Dir, io: &mut impl ConnIo) {
        self.flows[dir as usize].state = DirState::PollOut;
        self.inflight += 1;
        io.poll_out(dir);
    }

    fn return_pipe(&mut self, dir: Dir, io: &mut impl ConnIo) {
        let flow = &mut self.flows[dir as usize];
        if flow.pipe {
            io.return_pipe(dir, flow.in_pipe == 0);
            flow.pipe = false;
            flow.in_pipe = 0;
        }
    }

    /// `dir`'s source sent FIN: pass it on, and finish when both directions are done.
    pub(super) fn eof(&mut self, dir: Dir, io: &mut impl ConnIo) {
        self.flows[dir as usize].state = DirState::Done;
        io.shutdown_write(dir.sink());
        self.set_end(match dir {
            Dir::Up => End::ClientClose,
            Dir::Down => End::ServerClose,
        });
        if self.flows.iter().all(|f| f.state == DirState::Done) {
            self.begin_close(io);
        }
    }
}
