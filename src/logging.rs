//! The log: connection lines from the workers and event lines from every thread reach
//! stderr through the `ringlb-log` thread, so that a slow or stuck reader (a pipe nobody
//! drains, a journald that lags) blocks that thread only. What cannot be queued is dropped
//! and counted, never waited for.
//!
//! Bounds: at most `BATCH_QUEUE` batches of connection lines and `EVENT_QUEUE` event lines
//! wait for the sink; past that, lines are dropped, counted in [`dropped`], and the writer
//! says how many once the sink takes lines again.

use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TrySendError};

/// Batches of connection lines that may wait for the sink: with 16 KiB batches about
/// 1 MiB, some 7,000 lines, a second of a busy balancer's log.
const BATCH_QUEUE: usize = 64;
/// Event lines that may wait for the sink.
const EVENT_QUEUE: usize = 4096;
/// A worker hands its lines over once its batch reaches this size (and every tick).
pub const BATCH_BYTES: usize = 16 * 1024;
/// How often the writer reports dropped lines, at most.
const DROP_REPORT: Duration = Duration::from_secs(1);

/// The log of the running process, set once by [`start`].
static LOG: OnceLock<Log> = OnceLock::new();
/// Lines dropped because the sink did not keep up (also counted before `start`: never).
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct Log {
    events: Sender<String>,
    batches: Sender<Batch>,
    /// Emptied batch buffers coming back from the writer, so workers rarely allocate.
    spare: Receiver<Vec<u8>>,
    /// Told to drain and stop.
    stop: Sender<()>,
    stopped: Receiver<()>,
}

/// Connection lines of one worker, handed to the writer together.
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

/// Starts the writer thread; from now on, [`write_event`] and [`ConnLog::flush`] never block.
/// Before it (start-up, `--check`, unit tests), events go straight to stderr.
pub fn start() -> io::Result<()> {
    let (events, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
    let (batches, batches_rx) = crossbeam_channel::bounded(BATCH_QUEUE);
    let (spare_tx, spare) = crossbeam_channel::bounded(BATCH_QUEUE);
    let (stop, stop_rx) = crossbeam_channel::bounded(1);
    let (stopped_tx, stopped) = crossbeam_channel::bounded(1);
    let writer = Writer {
        events: events_rx,
        batches: batches_rx,
        spare: spare_tx,
        stop: stop_rx,
        stopped: stopped_tx,
        reported: 0,
        reported_at: None,
    };
    thread::Builder::new()
        .name("ringlb-log".into())
        .spawn(move || crate::fault::supervise(crate::fault::Helper::Log, writer, Writer::run))?;
    // A second start (never done) would keep the first log.
    let _ = LOG.set(Log {
        events,
        batches,
        spare,
        stop,
        stopped,
    });
    Ok(())
}

/// Writes one event line, `ringlb: ` and the text, without ever blocking.
pub fn write_event(args: fmt::Arguments<'_>) {
    let mut line = String::with_capacity(96);
    line.push_str("ringlb: ");
    let _ = line.write_fmt(args);
    line.push('\n');
    raw(line);
}

/// Writes text as it is (it ends in a newline), without ever blocking.
pub fn raw(text: String) {
    match LOG.get() {
        Some(log) => {
            if let Err(TrySendError::Full(text) | TrySendError::Disconnected(text)) =
                log.events.try_send(text)
            {
                DROPPED.fetch_add(text.lines().count().max(1) as u64, Ordering::Relaxed);
            }
        }
        None => {
            let _ = io::stderr().write_all(text.as_bytes());
        }
    }
}

/// Lines dropped so far because the sink did not keep up.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Writes what is queued and stops the writer, waiting at most `timeout` (a stuck sink
/// must not keep the process from exiting).
pub fn shutdown(timeout: Duration) {
    if let Some(log) = LOG.get() {
        if log.stop.try_send(()).is_ok() {
            let _ = log.stopped.recv_timeout(timeout);
        }
    }
}

/// `event!("...", args)`: an event line (`ringlb: ...`) that never blocks its thread.
macro_rules! event {
    ($($arg:tt)*) => {
        $crate::logging::write_event(format_args!($($arg)*))
    };
}
pub(crate) use event;

/// One worker's connection lines, handed to the writer in batches.
pub struct ConnLog {
    bytes: Vec<u8>,
    lines: u64,
}

impl ConnLog {
    pub fn new() -> ConnLog {
        ConnLog {
            bytes: Vec::with_capacity(BATCH_BYTES * 2),
            lines: 0,
        }
    }

    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.bytes.write_fmt(args);
        self.bytes.push(b'\n');
        self.lines += 1;
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Hands the batch to the writer; when its queue is full the lines are dropped and
    /// counted. Never blocks.
    pub fn flush(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let Some(log) = LOG.get() else {
            let _ = io::stderr().write_all(&self.bytes);
            self.bytes.clear();
            self.lines = 0;
            return;
        };
        let next = log
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES * 2));
        let batch = Batch {
            bytes: std::mem::replace(&mut self.bytes, next),
            lines: std::mem::take(&mut self.lines),
        };
        if let Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) =
            log.batches.try_send(batch)
        {
            DROPPED.fetch_add(batch.lines, Ordering::Relaxed);
            // Keep the larger buffer; the other one goes.
            let mut bytes = batch.bytes;
            bytes.clear();
            if bytes.capacity() > self.bytes.capacity() {
                self.bytes = bytes;
            }
        }
    }
}

/// The `ringlb-log` thread: the only place that writes to stderr once started.
struct Writer {
    events: Receiver<String>,
    batches: Receiver<Batch>,
    spare: Sender<Vec<u8>>,
    stop: Receiver<()>,
    stopped: Sender<()>,
    /// Dropped lines already reported, and when.
    reported: u64,
    reported_at: Option<Instant>,
}

impl Writer {
    fn run(&mut self) {
        // Not locked for good: a stray eprintln! elsewhere must not wait for this thread.
        let mut out = io::stderr();
        loop {
            select! {
                recv(self.events) -> e => match e {
                    Ok(text) => {
                        let _ = out.write_all(text.as_bytes());
                    }
                    Err(_) => return,
                },
                recv(self.batches) -> b => match b {
                    Ok(batch) => self.write_batch(&mut out, batch),
                    Err(_) => return,
                },
                recv(self.stop) -> _ => {
                    self.drain(&mut out);
                    self.report_drops(&mut out, true);
                    let _ = self.stopped.try_send(());
                    return;
                },
                default(DROP_REPORT) => {}
            }
            self.report_drops(&mut out, false);
        }
    }

    fn write_batch(&self, out: &mut impl io::Write, batch: Batch) {
        let _ = out.write_all(&batch.bytes);
        let mut bytes = batch.bytes;
        bytes.clear();
        let _ = self.spare.try_send(bytes);
    }

    /// Writes everything still queued (at exit).
    fn drain(&mut self, out: &mut impl io::Write) {
        while let Ok(batch) = self.batches.try_recv() {
            self.write_batch(out, batch);
        }
        while let Ok(text) = self.events.try_recv() {
            let _ = out.write_all(text.as_bytes());
        }
        let _ = out.flush();
    }

    /// Says how many lines were dropped since the last report (at most once per
    /// `DROP_REPORT`, unless `now`), once the sink takes lines again: this write is what
    /// proves it does.
    fn report_drops(&mut self, out: &mut impl io::Write, now: bool) {
        let due = now || self.reported_at.is_none_or(|t| t.elapsed() >= DROP_REPORT);
        let total = DROPPED.load(Ordering::Relaxed);
        if due && total > self.reported {
            self.reported_at = Some(Instant::now());
            let _ = writeln!(
                out,
                "ringlb: {} log lines dropped: the log sink did not keep up ({total} since start)",
                total - self.reported
            );
            self.reported = total;
        }
    }
}

impl Default for ConnLog {
    fn default() -> Self {
        ConnLog::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_log_counts_lines() {
        let mut log = ConnLog::new();
        log.line(format_args!("conn a={}", 1));
        log.line(format_args!("conn b={}", 2));
        assert_eq!(log.lines, 2);
        assert_eq!(log.bytes, b"conn a=1\nconn b=2\n");
    }
}
