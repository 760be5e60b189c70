//! The health of one server as a pure state machine: UP/DOWN with rise/fall counters, the
//! schedule of its next check (interval, fast or down interval, with deterministic jitter)
//! and the reason of every change. No I/O and no clock: the caller passes `now`.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use crate::config::HealthCheck;

/// What one check found, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub outcome: Result<Pass, Failure>,
    /// From the start of the connect to the verdict.
    pub elapsed: Duration,
}

impl CheckResult {
    pub fn pass(pass: Pass, elapsed: Duration) -> CheckResult {
        CheckResult {
            outcome: Ok(pass),
            elapsed,
        }
    }

    pub fn fail(failure: Failure, elapsed: Duration) -> CheckResult {
        CheckResult {
            outcome: Err(failure),
            elapsed,
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Why a check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    Connected,
    HttpStatus(u16),
    StartsWith(Vec<u8>),
    Matches(String),
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pass::Connected => write!(f, "connected"),
            Pass::HttpStatus(code) => write!(f, "HTTP {code}"),
            Pass::StartsWith(p) => write!(f, "answer starts with \"{}\"", Escaped(p)),
            Pass::Matches(r) => write!(f, "answer matches /{r}/"),
        }
    }
}

/// Why a check failed. The `Display` text is the reason in the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("connection refused")]
    Refused,
    #[error("connect error: {0}")]
    Connect(String),
    #[error("cannot create a socket: {0}")]
    Socket(String),
    #[error("connect timeout after {}", Short(*.0))]
    ConnectTimeout(Duration),
    #[error("write timeout after {}", Short(*.0))]
    WriteTimeout(Duration),
    #[error("read timeout after {}", Short(*.0))]
    ReadTimeout(Duration),
    #[error("connection reset")]
    Reset,
    #[error("i/o error: {0}")]
    Io(String),
    #[error("connection closed before a status line")]
    ClosedBeforeStatus,
    #[error("not an HTTP status line")]
    NotHttp,
    #[error("HTTP {0}")]
    HttpStatus(u16),
    #[error("expected \"{}\", got \"{}\"", Escaped(.expected), Escaped(.got))]
    Mismatch { expected: Vec<u8>, got: Vec<u8> },
    #[error("connection closed before \"{}\" (got \"{}\")", Escaped(.expected), Escaped(.got))]
    ClosedBeforeExpected { expected: Vec<u8>, got: Vec<u8> },
    #[error("answer does not match /{regex}/")]
    NoMatch { regex: String },
    #[error("answer does not match /{regex}/ (read timeout after {})", Short(*.after))]
    NoMatchBeforeTimeout { regex: String, after: Duration },
    #[error("{0} passive connect failures")]
    Passive(u32),
}

/// A change of state, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub up: bool,
    pub reason: Reason,
}

/// Why a server changed state: what the deciding check found and the count behind the
/// verdict. Shown as `HTTP 503 (3/3 checks failed, last after 12 ms)` on the stats page;
/// the log line puts the server and its new state before it (`StateChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// What the last check found: `HTTP 503`, `connection refused`, `3 passive connect
    /// failures` (a `Pass` or a `Failure` as text).
    pub found: String,
    pub count: Count,
}

/// The results behind a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The first result, which decides at once; it took `after`.
    First { after: Duration },
    /// `needed` results in a row that disagreed with the state; the last one took `last`
    /// (none for passive failures, which are not timed).
    InARow {
        needed: u32,
        passed: bool,
        last: Option<Duration>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count {
            Count::First { after } => {
                write!(f, "{} (first check, after {})", self.found, Millis(after))
            }
            Count::InARow {
                needed,
                passed,
                last,
            } => {
                let verb = if passed { "passed" } else { "failed" };
                write!(f, "{} ({needed}/{needed} checks {verb}", self.found)?;
                if let Some(last) = last {
                    write!(f, ", last after {}", Millis(last))?;
                }
                write!(f, ")")
            }
        }
    }
}

/// One server's health: state, counters, schedule.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    rise: u32,
    fall: u32,
    interval: Duration,
    fast_interval: Duration,
    down_interval: Duration,
    jitter_percent: u32,
    passive_limit: Option<u32>,
    /// False until the first result decides the state.
    checked: bool,
    up: bool,
    /// Consecutive results that disagree with `up` (failures when UP, passes when DOWN).
    contrary: u32,
    /// Passive failures since the last passing check or the last one they counted as.
    passive: u32,
    next_at: Instant,
    rng: u64,
}

impl ServerHealth {
    /// A server with no result yet: DOWN, to be checked at `now`.
    pub fn new(label: &str, check: &HealthCheck, now: Instant) -> ServerHealth {
        ServerHealth {
            rise: check.rise.max(1),
            fall: check.fall.max(1),
            interval: check.interval,
            fast_interval: check.fast_interval,
            down_interval: check.down_interval,
            jitter_percent: check.jitter_percent.min(100),
            passive_limit: check.passive_errors.map(|n| n.max(1)),
            checked: false,
            up: false,
            contrary: 0,
            passive: 0,
            next_at: now,
            rng: seed(label),
        }
    }

    /// A server whose state is known already (carried over a reload): settled in that state,
    /// next checked after its usual interval.
    pub fn carried(label: &str, check: &HealthCheck, now: Instant, up: bool) -> ServerHealth {
        let mut h = ServerHealth::new(label, check, now);
        h.checked = true;
        h.up = up;
        h.next_at = later(now, h.spread(h.current_interval()));
        h
    }

    pub fn is_up(&self) -> bool {
        self.checked && self.up
    }

    /// Whether a first result has decided the state yet.
    pub fn has_result(&self) -> bool {
        self.checked
    }

    /// When the next active check is due.
    pub fn next_check_at(&self) -> Instant {
        self.next_at
    }

    /// Takes in the result of an active check finished at `now`; returns the change of
    /// state it causes, if any. The first result always returns one.
    pub fn record(&mut self, now: Instant, result: &CheckResult) -> Option<Transition> {
        let passed = result.passed();
        if passed {
            self.passive = 0;
        }
        let found = match &result.outcome {
            Ok(p) => p.to_string(),
            Err(f) => f.to_string(),
        };
        let transition = if !self.checked {
            self.checked = true;
            self.up = passed;
            self.contrary = 0;
            Some(self.transition(
                found,
                Count::First {
                    after: result.elapsed,
                },
            ))
        } else {
            self.count(passed, found, Some(result.elapsed))
        };
        self.next_at = later(now, self.spread(self.current_interval()));
        transition
    }

    /// Takes in one failed connect seen by the data path at `now`. Every `passive_errors`
    /// consecutive ones (not interrupted by a passing check) count as one failed check, and
    /// bring the next check forward to the fast interval. Ignored while the server is DOWN
    /// or unchecked, or when passive marking is off.
    pub fn record_passive_failure(&mut self, now: Instant) -> Option<Transition> {
        let limit = self.passive_limit?;
        if !self.is_up() {
            return None;
        }
        self.passive += 1;
        if self.passive < limit {
            return None;
        }
        self.passive = 0;
        let transition = self.count(false, Failure::Passive(limit).to_string(), None);
        let sooner = later(now, self.spread(self.current_interval()));
        self.next_at = self.next_at.min(sooner);
        transition
    }

    /// Counts one result after the first.
    fn count(&mut self, passed: bool, found: String, last: Option<Duration>) -> Option<Transition> {
        if passed == self.up {
            self.contrary = 0;
            return None;
        }
        self.contrary += 1;
        let needed = if self.up { self.fall } else { self.rise };
        if self.contrary < needed {
            return None;
        }
        self.up = passed;
        self.contrary = 0;
        Some(self.transition(
            found,
            Count::InARow {
                needed,
                passed,
                last,
            },
        ))
    }

    fn transition(&self, found: String, count: Count) -> Transition {
        Transition {
            up: self.up,
            reason: Reason { found, count },
        }
    }

    fn current_interval(&self) -> Duration {
        if self.contrary > 0 {
            self.fast_interval
        } else if self.up {
            self.interval
        } else {
            self.down_interval
        }
    }

    /// `base` moved by a pseudo-random amount within ±`jitter_percent`.
    fn spread(&mut self, base: Duration) -> Duration {
        let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
        let span = nanos / 100 * u64::from(self.jitter_percent);
        if span == 0 {
            return base;
        }
        // xorshift64: cheap, and the same label gives the same schedule in every run.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let offset = self.rng % span.saturating_mul(2).saturating_add(1);
        (base + Duration::from_nanos(offset)).saturating_sub(Duration::from_nanos(span))
    }
}

/// `now + d`, for any configured duration: absurd ones (centuries) become one year.
pub(super) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// FNV-1a of the label, never zero (xorshift would stay at zero).
fn seed(label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// A duration as whole milliseconds with a space: `12 ms`.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

/// A configured duration as written in the config: `1s`, `200ms`.
pub(super) struct Short(pub Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms > 0 && ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else if ms > 0 || self.0.is_zero() {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}us", self.0.as_micros())
        }
    }
}

/// Received bytes for a log line: printable ASCII as is, `"` `\` CR LF TAB escaped, other
/// bytes as `\xNN`, cut to about 40 characters.
pub(super) struct Escaped<'a>(pub &'a [u8]);

const ESCAPED_MAX: usize = 40;

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for &b in self.0 {
            if out.len() >= ESCAPED_MAX {
                return write!(f, "{out}...");
            }
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\r' => out.push_str("\\r"),
                b'\n' => out.push_str("\\n"),
                b'\t' => out.push_str("\\t"),
                0x20..=0x7e => out.push(char::from(b)),
                // Writing to a String cannot fail.
                _ => {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
        write!(f, "{out}")
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
