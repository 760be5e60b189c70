//! A per-worker pool of pipes for splice forwarding. A connection holds a pipe only while
//! bytes sit in it; the pool keeps a fixed number idle (made at start, so the process's
//! fd count does not drift) and caps how many exist, since every pipe costs two fds and
//! up to 64 KiB of kernel memory.

use std::os::fd::RawFd;

use crate::sys;

#[derive(Debug)]
pub struct Pipe {
    pub read: RawFd,
    pub write: RawFd,
}

pub struct PipePool {
    idle: Vec<Pipe>,
    keep_idle: usize,
    max: usize,
    live: usize,
}

impl PipePool {
    pub fn new(keep_idle: usize, max: usize) -> Self {
        let mut pool = PipePool {
            idle: Vec::with_capacity(keep_idle),
            keep_idle,
            max,
            live: 0,
        };
        for _ in 0..keep_idle {
            match sys::pipe() {
                Ok((read, write)) => {
                    pool.live += 1;
                    pool.idle.push(Pipe { read, write });
                }
                Err(_) => break,
            }
        }
        pool.keep_idle = pool.idle.len();
        pool
    }

    /// An empty pipe, or None when the cap is reached or pipes cannot be made (fd table
    /// full): the caller falls back to copying.
    pub fn take(&mut self) -> Option<Pipe> {
        if let Some(p) = self.idle.pop() {
            return Some(p);
        }
        if self.live >= self.max {
            return None;
        }
        let (read, write) = sys::pipe().ok()?;
        self.live += 1;
        Some(Pipe { read, write })
    }

    /// Returns an empty pipe. A pipe that may still hold bytes must go to `discard`.
    pub fn give(&mut self, pipe: Pipe) {
        if self.idle.len() < self.keep_idle {
            self.idle.push(pipe);
        } else {
            self.discard(pipe);
        }
    }

    pub fn discard(&mut self, pipe: Pipe) {
        sys::close(pipe.read);
        sys::close(pipe.write);
        self.live -= 1;
    }
}

impl Drop for PipePool {
    fn drop(&mut self) {
        for p in std::mem::take(&mut self.idle) {
            self.discard(p);
        }
    }
}
