//! The log: connection lines from the workers and event lines from every thread reach the
//! configured target (stderr, syslog, journald; text or JSON) through the `ringlb-log`
//! thread, so that a slow or stuck receiver (a pipe nobody drains, a journald that lags)
//! blocks that thread only. What cannot be queued is dropped and counted, never waited
//! for.
//!
//! Bounds: at most `BATCH_QUEUE` batches of connection lines and `EVENT_QUEUE` event lines
//! wait for the sink; past that, lines are dropped, counted in [`dropped`], and the writer
//! says how many once the sink takes lines again. Datagram targets never block: a
//! datagram that cannot be sent at once is dropped and counted too.

mod record;
mod sink;
mod time;

use std::fmt;
use std::io::{self, Write as _};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TrySendError};

pub use record::{encode, Event, Format, Framing, Level, Line, Millis, Style, Value};
pub use sink::{Address, Target};
pub use time::Rfc3339;

use sink::Sink;

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
/// Lines dropped because the sink did not keep up.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The current [`Style`], packed (see `pack`): read by every thread that formats a line.
static STYLE: AtomicU32 = AtomicU32::new(0);

struct Log {
    events: Sender<Batch>,
    batches: Sender<Batch>,
    /// Emptied batch buffers coming back from the writer, so workers rarely allocate.
    spare: Receiver<Vec<u8>>,
    /// A new sink for the writer (a reload changed the target).
    sinks: Sender<Sink>,
    /// Told to drain and stop.
    stop: Sender<()>,
    stopped: Receiver<()>,
}

/// Lines handed to the writer together.
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
    /// Records are datagrams, each behind its length (u32, native order).
    framed: bool,
}

fn pack(style: Style) -> u32 {
    let format = match style.format {
        Format::Text => 0,
        Format::Json => 1,
    };
    let framing = match style.framing {
        Framing::Stream => 0,
        Framing::Syslog { facility, rfc5424 } => {
            1 | u32::from(rfc5424) << 4 | u32::from(facility) << 8
        }
        Framing::Journald => 2,
    };
    format | framing << 4
}

fn unpack(v: u32) -> Style {
    let format = if v & 1 == 1 {
        Format::Json
    } else {
        Format::Text
    };
    let framing = match (v >> 4) & 0xf {
        1 => Framing::Syslog {
            facility: (v >> 12) as u8,
            rfc5424: (v >> 8) & 1 == 1,
        },
        2 => Framing::Journald,
        _ => Framing::Stream,
    };
    Style { format, framing }
}

/// The style lines are formatted in now.
pub fn style() -> Style {
    unpack(STYLE.load(Ordering::Relaxed))
}

/// Starts the writer on `target`; from now on, events and [`ConnLog::flush`] never block.
/// Before it (start-up, `--check`, unit tests), events go straight to stderr. `spawn` runs
/// [`Writer::run`] on a thread of its own: the caller supervises it (see `fault`, which
/// logs through this module and so sits above it).
pub fn start(target: &Target, spawn: impl FnOnce(Writer) -> io::Result<()>) -> io::Result<()> {
    let sink = Sink::open(target)?;
    STYLE.store(pack(target.style), Ordering::Relaxed);
    let (events, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
    let (batches, batches_rx) = crossbeam_channel::bounded(BATCH_QUEUE);
    let (spare_tx, spare) = crossbeam_channel::bounded(BATCH_QUEUE);
    let (sinks, sinks_rx) = crossbeam_channel::bounded(1);
    let (stop, stop_rx) = crossbeam_channel::bounded(1);
    let (stopped_tx, stopped) = crossbeam_channel::bounded(1);
    let writer = Writer {
        sink,
        events: events_rx,
        batches: batches_rx,
        spare: spare_tx,
        sinks: sinks_rx,
        stop: stop_rx,
        stopped: stopped_tx,
        reported: 0,
        reported_at: None,
    };
    spawn(writer)?;
    // A second start (never done) would keep the first log.
    let _ = LOG.set(Log {
        events,
        batches,
        spare,
        sinks,
        stop,
        stopped,
    });
    Ok(())
}

/// Moves the log to `target` (a reload). Lines already queued go to the new target.
pub fn reconfigure(target: &Target) -> io::Result<()> {
    let Some(log) = LOG.get() else {
        return Ok(());
    };
    let sink = Sink::open(target)?;
    STYLE.store(pack(target.style), Ordering::Relaxed);
    log.sinks
        .send_timeout(sink, Duration::from_secs(1))
        .map_err(|_| io::Error::other("the log thread did not take the new target"))
}

/// Writes one event line at `level`, without ever blocking.
pub fn write_event(level: Level, args: fmt::Arguments<'_>) {
    let style = style();
    let mut bytes = Vec::with_capacity(128);
    let framed = frame(style, &mut bytes, |out| {
        record::encode(
            style,
            Rfc3339::now(),
            &Event {
                level,
                message: args,
            },
            out,
        )
    });
    send_event(Batch {
        bytes,
        lines: 1,
        framed,
    });
}

/// Writes text as it is (lines ending in a newline; a config error's report), as event
/// lines at `level`, without ever blocking.
pub fn write_text(level: Level, text: &str) {
    for line in text.lines() {
        write_event(level, format_args!("{line}"));
    }
}

fn send_event(batch: Batch) {
    match LOG.get() {
        Some(log) => {
            if let Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) =
                log.events.try_send(batch)
            {
                DROPPED.fetch_add(b.lines, Ordering::Relaxed);
            }
        }
        None => write_unstarted(&batch),
    }
}

/// Before the writer starts, lines go to stderr as they are.
fn write_unstarted(batch: &Batch) {
    let mut err = io::stderr();
    if batch.framed {
        for record in records(&batch.bytes) {
            let _ = err.write_all(record);
            let _ = err.write_all(b"\n");
        }
    } else {
        let _ = err.write_all(&batch.bytes);
    }
}

/// Appends one record made by `encode` to `out`: behind its length when `style` sends
/// datagrams (returns true), as it is for a stream.
fn frame(style: Style, out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
    if style.framing == Framing::Stream {
        encode(out);
        return false;
    }
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode(out);
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    true
}

/// The records of a framed batch.
fn records(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = (u32::from_ne_bytes(*len) as usize).min(rest.len());
        let (record, rest) = rest.split_at(len);
        bytes = rest;
        Some(record)
    })
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

/// `event!("...", args)`: an info event line; `event!(warning: "...")` (or `error:`,
/// `notice:`) at another level. Never blocks its thread.
#[macro_export]
macro_rules! event {
    (error: $($arg:tt)*) => {
        $crate::logging::write_event($crate::logging::Level::Error, format_args!($($arg)*))
    };
    (warning: $($arg:tt)*) => {
        $crate::logging::write_event($crate::logging::Level::Warning, format_args!($($arg)*))
    };
    (notice: $($arg:tt)*) => {
        $crate::logging::write_event($crate::logging::Level::Notice, format_args!($($arg)*))
    };
    ($($arg:tt)*) => {
        $crate::logging::write_event($crate::logging::Level::Info, format_args!($($arg)*))
    };
}
pub use crate::event;

/// One worker's connection lines, handed to the writer in batches.
pub struct ConnLog {
    bytes: Vec<u8>,
    lines: u64,
    framed: bool,
}

impl ConnLog {
    pub fn new() -> ConnLog {
        ConnLog {
            bytes: Vec::with_capacity(BATCH_BYTES * 2),
            lines: 0,
            framed: false,
        }
    }

    /// Formats `line`, stamped `ts`, in the current style into the batch.
    pub fn record(&mut self, ts: Rfc3339, line: &impl Line) {
        let style = style();
        let framed = style.framing != Framing::Stream;
        if framed != self.framed && !self.bytes.is_empty() {
            // The style changed (a reload): what is batched goes out in its own framing.
            self.flush();
        }
        self.framed = frame(style, &mut self.bytes, |out| {
            record::encode(style, ts, line, out)
        });
        self.lines += 1;
    }

    /// Bytes batched so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Hands the batch to the writer; when its queue is full the lines are dropped and
    /// counted. Never blocks.
    pub fn flush(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let Some(log) = LOG.get() else {
            write_unstarted(&Batch {
                bytes: std::mem::take(&mut self.bytes),
                lines: 0,
                framed: self.framed,
            });
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
            framed: self.framed,
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

impl Default for ConnLog {
    fn default() -> Self {
        ConnLog::new()
    }
}

/// The `ringlb-log` thread: the only writer of the log once started.
pub struct Writer {
    sink: Sink,
    events: Receiver<Batch>,
    batches: Receiver<Batch>,
    spare: Sender<Vec<u8>>,
    sinks: Receiver<Sink>,
    stop: Receiver<()>,
    stopped: Sender<()>,
    /// Dropped lines already reported, and when.
    reported: u64,
    reported_at: Option<Instant>,
}

impl Writer {
    /// Writes what comes until the log stops; after a panic, may be run again on the same
    /// writer.
    pub fn run(&mut self) {
        loop {
            select! {
                recv(self.events) -> e => match e {
                    Ok(batch) => self.write(batch),
                    Err(_) => return,
                },
                recv(self.batches) -> b => match b {
                    Ok(batch) => self.write(batch),
                    Err(_) => return,
                },
                recv(self.sinks) -> s => {
                    if let Ok(sink) = s {
                        self.sink = sink;
                    }
                },
                recv(self.stop) -> _ => {
                    self.drain();
                    self.report_drops(true);
                    let _ = self.stopped.try_send(());
                    return;
                },
                default(DROP_REPORT) => {}
            }
            self.report_drops(false);
        }
    }

    fn write(&mut self, batch: Batch) {
        let mut lost = 0;
        match (batch.framed, self.sink.is_stream()) {
            (false, true) => {
                self.sink.write(&batch.bytes);
            }
            (true, false) => {
                for record in records(&batch.bytes) {
                    lost += u64::from(!self.sink.write(record));
                }
            }
            // The target changed between formatting and writing: one line at a time.
            (true, true) => {
                for record in records(&batch.bytes) {
                    self.sink.write(record);
                    self.sink.write(b"\n");
                }
            }
            (false, false) => {
                for line in batch.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    lost += u64::from(!self.sink.write(line));
                }
            }
        }
        if lost > 0 {
            DROPPED.fetch_add(lost, Ordering::Relaxed);
        }
        let mut bytes = batch.bytes;
        bytes.clear();
        let _ = self.spare.try_send(bytes);
    }

    /// Writes everything still queued (at exit).
    fn drain(&mut self) {
        while let Ok(batch) = self.batches.try_recv() {
            self.write(batch);
        }
        while let Ok(batch) = self.events.try_recv() {
            self.write(batch);
        }
        if self.sink.is_stream() {
            let _ = io::stderr().flush();
        }
    }

    /// Says how many lines were dropped since the last report (at most once per
    /// `DROP_REPORT`, unless `now`), once the sink takes lines again: this write is what
    /// proves it does.
    fn report_drops(&mut self, now: bool) {
        let due = now || self.reported_at.is_none_or(|t| t.elapsed() >= DROP_REPORT);
        let total = DROPPED.load(Ordering::Relaxed);
        if !due || total <= self.reported {
            return;
        }
        self.reported_at = Some(Instant::now());
        let style = style();
        let mut bytes = Vec::with_capacity(160);
        let framed = frame(style, &mut bytes, |out| {
            record::encode(
                style,
                Rfc3339::now(),
                &Event {
                    level: Level::Warning,
                    message: format_args!(
                        "{} log lines dropped: the log sink did not keep up ({total} since start)",
                        total - self.reported
                    ),
                },
                out,
            )
        });
        self.reported = total;
        self.write(Batch {
            bytes,
            lines: 1,
            framed,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_pack_and_unpack() {
        for style in [
            Style::DEFAULT,
            Style {
                format: Format::Json,
                framing: Framing::Journald,
            },
            Style {
                format: Format::Text,
                framing: Framing::Syslog {
                    facility: 23,
                    rfc5424: true,
                },
            },
        ] {
            assert_eq!(unpack(pack(style)), style);
        }
    }

    #[test]
    fn framed_records_come_back_whole() {
        let style = Style {
            format: Format::Text,
            framing: Framing::Journald,
        };
        let mut out = Vec::new();
        assert!(frame(style, &mut out, |o| o.extend_from_slice(b"one")));
        assert!(frame(style, &mut out, |o| o.extend_from_slice(b"")));
        assert!(frame(style, &mut out, |o| o.extend_from_slice(b"three\nlines")));
        let got: Vec<&[u8]> = records(&out).collect();
        assert_eq!(got, [&b"one"[..], b"", b"three\nlines"]);
        // A truncated batch ends early instead of reading past its end.
        assert_eq!(records(&out[..out.len() - 2]).count(), 3);
    }
}
