//! One active check in flight on a non-blocking socket: Connecting → Sending → Receiving →
//! verdict, bounded by the check's timeout, plus the pure judges that read an HTTP status
//! line or a send/expect answer from the bytes received so far.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use regex::bytes::Regex;
use socket2::{Domain, Protocol, Socket, Type};

use super::state::{later, CheckResult, Failure, Pass};
use crate::config::{CheckKind, Expect, HealthCheck, SendProxy};
use crate::proxy;

/// Most bytes read from one answer; a regex that has not matched by then never will.
pub const MAX_ANSWER: usize = 16 * 1024;
/// `HTTP/1.x NNN`: enough to judge a status line.
const STATUS_LINE_LEN: usize = 12;

/// What a check sends and how it judges the answer, prepared once per target.
#[derive(Debug, Clone)]
pub struct Plan {
    send: Vec<u8>,
    judge: Judge,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Judge {
    Connect,
    Status(Vec<(u16, u16)>),
    Prefix(Vec<u8>),
    Regex(Regex),
}

impl Plan {
    /// Fails only on a regex that does not compile (the config validation rejects those).
    pub fn new(
        check: &HealthCheck,
        addr: SocketAddr,
        send_proxy: Option<SendProxy>,
    ) -> Result<Plan, regex::Error> {
        let (request, judge) = match &check.kind {
            CheckKind::Tcp => (Vec::new(), Judge::Connect),
            CheckKind::Http {
                request,
                headers,
                expect_status,
            } => (
                http_request(request, headers, addr),
                Judge::Status(expect_status.clone()),
            ),
            CheckKind::SendExpect { send, expect } => {
                let judge = match expect {
                    Expect::Prefix(p) => Judge::Prefix(p.clone()),
                    Expect::Regex(r) => Judge::Regex(Regex::new(r)?),
                };
                (send.clone(), judge)
            }
        };
        let mut send = Vec::new();
        match send_proxy {
            Some(SendProxy::V1) => proxy::encode_v1(None, &mut send),
            Some(SendProxy::V2) => proxy::encode_v2(None, &proxy::Tlvs::default(), &mut send),
            None => {}
        }
        send.extend_from_slice(&request);
        Ok(Plan {
            send,
            judge,
            timeout: check.timeout,
        })
    }
}

/// `{request}\r\n`, `Host` for HTTP/1.1 when not given, the configured headers, `\r\n`.
fn http_request(request: &str, headers: &[(String, String)], addr: SocketAddr) -> Vec<u8> {
    let mut out = format!("{request}\r\n");
    let has_host = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
    if request.ends_with("HTTP/1.1") && !has_host {
        // Writing to a String cannot fail.
        let _ = write!(out, "Host: {addr}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending { written: usize },
    Receiving,
}

/// A check in flight. Dropping it closes the socket with a reset, as HAProxy does, so
/// checks leave no TIME_WAIT behind.
#[derive(Debug)]
pub struct Probe {
    socket: Socket,
    phase: Phase,
    started: Instant,
    answer: Vec<u8>,
}

/// What `Probe::start` gives: a check under way, or one that is already decided.
pub enum Started {
    InFlight(Probe),
    Done(CheckResult),
}

impl Probe {
    /// Opens a non-blocking socket and starts connecting to `addr`.
    pub fn start(addr: SocketAddr, now: Instant) -> Started {
        let socket = match Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        ) {
            Ok(s) => s,
            Err(e) => return Started::Done(fail(Failure::Socket(e.to_string()), now, now)),
        };
        // Small writes go out at once; a failure here only costs latency.
        let _ = socket.set_tcp_nodelay(true);
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Started::Done(fail(connect_failure(e), now, now)),
        }
        Started::InFlight(Probe {
            socket,
            phase: Phase::Connecting,
            started: now,
            answer: Vec::new(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The poll(2) events this check waits for.
    pub fn events(&self) -> libc::c_short {
        match self.phase {
            Phase::Connecting | Phase::Sending { .. } => libc::POLLOUT,
            Phase::Receiving => libc::POLLIN,
        }
    }

    /// When the whole check times out.
    pub fn deadline(&self, plan: &Plan) -> Instant {
        later(self.started, plan.timeout)
    }

    /// Moves the check on after poll(2) reported its socket; `Some` once decided.
    pub fn advance(&mut self, plan: &Plan, now: Instant) -> Option<CheckResult> {
        loop {
            match self.phase {
                Phase::Connecting => {
                    match self.socket.take_error() {
                        Ok(None) => {}
                        Ok(Some(e)) | Err(e) => return Some(self.fail(connect_failure(e), now)),
                    }
                    match self.socket.peer_addr() {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return None,
                        Err(e) => return Some(self.fail(connect_failure(e), now)),
                    }
                    if let (Judge::Connect, true) = (&plan.judge, plan.send.is_empty()) {
                        return Some(self.pass(Pass::Connected, now));
                    }
                    self.phase = if plan.send.is_empty() {
                        Phase::Receiving
                    } else {
                        Phase::Sending { written: 0 }
                    };
                }
                Phase::Sending { written } => {
                    match self
                        .socket
                        .send_with_flags(&plan.send[written..], libc::MSG_NOSIGNAL)
                    {
                        Ok(n) if written + n >= plan.send.len() => {
                            // A connect check with a PROXY header passes once it is sent.
                            if let Judge::Connect = plan.judge {
                                return Some(self.pass(Pass::Connected, now));
                            }
                            self.phase = Phase::Receiving;
                        }
                        Ok(n) => {
                            self.phase = Phase::Sending {
                                written: written + n,
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(self.fail(io_failure(e), now)),
                    }
                }
                Phase::Receiving => {
                    let mut buf = [0u8; 4096];
                    let room = (MAX_ANSWER - self.answer.len()).min(buf.len());
                    let eof = match (&self.socket).read(&mut buf[..room]) {
                        Ok(0) => true,
                        Ok(n) => {
                            self.answer.extend_from_slice(&buf[..n]);
                            self.answer.len() >= MAX_ANSWER
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Some(self.fail(io_failure(e), now)),
                    };
                    if let Some(outcome) = judge(&plan.judge, &self.answer, eof) {
                        return Some(CheckResult {
                            outcome,
                            elapsed: now.saturating_duration_since(self.started),
                        });
                    }
                }
            }
        }
    }

    /// The verdict when the deadline passed before any other.
    pub fn timed_out(&self, plan: &Plan, now: Instant) -> CheckResult {
        let t = plan.timeout;
        let failure = match (self.phase, &plan.judge) {
            (Phase::Connecting, _) => Failure::ConnectTimeout(t),
            (Phase::Sending { .. }, _) => Failure::WriteTimeout(t),
            (Phase::Receiving, Judge::Regex(r)) if !self.answer.is_empty() => {
                Failure::NoMatchBeforeTimeout {
                    regex: r.as_str().to_string(),
                    after: t,
                }
            }
            (Phase::Receiving, _) => Failure::ReadTimeout(t),
        };
        self.fail(failure, now)
    }

    fn pass(&self, pass: Pass, now: Instant) -> CheckResult {
        CheckResult::pass(pass, now.saturating_duration_since(self.started))
    }

    fn fail(&self, failure: Failure, now: Instant) -> CheckResult {
        fail(failure, self.started, now)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Only changes how the close goes out (RST instead of FIN); nothing to do if it fails.
        let _ = self.socket.set_linger(Some(Duration::ZERO));
    }
}

fn fail(failure: Failure, started: Instant, now: Instant) -> CheckResult {
    CheckResult::fail(failure, now.saturating_duration_since(started))
}

fn connect_failure(e: io::Error) -> Failure {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Failure::Refused,
        _ => Failure::Connect(e.to_string()),
    }
}

fn io_failure(e: io::Error) -> Failure {
    match e.raw_os_error() {
        Some(libc::ECONNRESET | libc::EPIPE) => Failure::Reset,
        _ => Failure::Io(e.to_string()),
    }
}

/// Judges the answer so far; `None` while more bytes could change the verdict. With
/// `eof` (the peer closed, or `MAX_ANSWER` bytes are in) it always decides.
fn judge(judge: &Judge, answer: &[u8], eof: bool) -> Option<Result<Pass, Failure>> {
    match judge {
        // Connect checks are decided on connect; an answer changes nothing.
        Judge::Connect => Some(Ok(Pass::Connected)),
        Judge::Status(ranges) => judge_status(ranges, answer, eof),
        Judge::Prefix(expected) => judge_prefix(expected, answer, eof),
        Judge::Regex(r) => {
            if r.is_match(answer) {
                Some(Ok(Pass::Matches(r.as_str().to_string())))
            } else if eof {
                Some(Err(Failure::NoMatch {
                    regex: r.as_str().to_string(),
                }))
            } else {
                None
            }
        }
    }
}

/// Reads `HTTP/1.x NNN` from the start of the answer, failing as soon as a byte cannot
/// belong to one.
fn judge_status(ranges: &[(u16, u16)], answer: &[u8], eof: bool) -> Option<Result<Pass, Failure>> {
    const SHAPE: &[u8; STATUS_LINE_LEN] = b"HTTP/1.D DDD";
    let head = &answer[..answer.len().min(STATUS_LINE_LEN)];
    let fits = head.iter().zip(SHAPE).all(|(&b, &s)| match s {
        b'D' => b.is_ascii_digit(),
        _ => b == s,
    });
    if !fits {
        return Some(Err(Failure::NotHttp));
    }
    if head.len() < STATUS_LINE_LEN {
        return eof.then_some(Err(Failure::ClosedBeforeStatus));
    }
    if answer
        .get(STATUS_LINE_LEN)
        .is_some_and(|b| !matches!(b, b' ' | b'\r' | b'\n'))
    {
        return Some(Err(Failure::NotHttp));
    }
    let code = head[9..]
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&code)) {
        Some(Ok(Pass::HttpStatus(code)))
    } else {
        Some(Err(Failure::HttpStatus(code)))
    }
}

fn judge_prefix(expected: &[u8], answer: &[u8], eof: bool) -> Option<Result<Pass, Failure>> {
    let n = answer.len().min(expected.len());
    if answer[..n] != expected[..n] {
        return Some(Err(Failure::Mismatch {
            expected: expected.to_vec(),
            got: answer.to_vec(),
        }));
    }
    if n == expected.len() {
        return Some(Ok(Pass::StartsWith(expected.to_vec())));
    }
    eof.then(|| {
        Err(Failure::ClosedBeforeExpected {
            expected: expected.to_vec(),
            got: answer.to_vec(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[(u16, u16)] = &[(200, 299), (300, 399)];

    #[test]
    fn status_line_is_judged_as_soon_as_it_is_complete() {
        assert_eq!(judge_status(OK, b"HTTP/1.", false), None);
        assert_eq!(judge_status(OK, b"HTTP/1.1 20", false), None);
        assert_eq!(
            judge_status(OK, b"HTTP/1.1 200", false),
            Some(Ok(Pass::HttpStatus(200)))
        );
        assert_eq!(
            judge_status(OK, b"HTTP/1.0 302 Found\r\n", false),
            Some(Ok(Pass::HttpStatus(302)))
        );
        assert_eq!(
            judge_status(OK, b"HTTP/1.1 503 Service Unavailable\r\n", false),
            Some(Err(Failure::HttpStatus(503)))
        );
        assert_eq!(
            judge_status(&[(503, 503)], b"HTTP/1.1 503\r\n", false),
            Some(Ok(Pass::HttpStatus(503)))
        );
    }

    #[test]
    fn bad_status_lines_fail_early() {
        assert_eq!(
            judge_status(OK, b"SSH-", false),
            Some(Err(Failure::NotHttp))
        );
        assert_eq!(
            judge_status(OK, b"HTTP/2 200", false),
            Some(Err(Failure::NotHttp))
        );
        assert_eq!(
            judge_status(OK, b"HTTP/1.1 2000", false),
            Some(Err(Failure::NotHttp))
        );
        assert_eq!(
            judge_status(OK, b"", true),
            Some(Err(Failure::ClosedBeforeStatus))
        );
        assert_eq!(
            judge_status(OK, b"HTTP/1.1 2", true),
            Some(Err(Failure::ClosedBeforeStatus))
        );
    }

    #[test]
    fn prefix_is_decided_on_the_first_wrong_byte() {
        assert_eq!(judge_prefix(b"+PONG", b"+PO", false), None);
        assert_eq!(
            judge_prefix(b"+PONG", b"+PONG\r\n", false),
            Some(Ok(Pass::StartsWith(b"+PONG".to_vec())))
        );
        assert_eq!(
            judge_prefix(b"+PONG", b"-", false),
            Some(Err(Failure::Mismatch {
                expected: b"+PONG".to_vec(),
                got: b"-".to_vec()
            }))
        );
        assert_eq!(
            judge_prefix(b"+PONG", b"+PO", true).map(|r| r.unwrap_err().to_string()),
            Some("connection closed before \"+PONG\" (got \"+PO\")".into())
        );
    }

    #[test]
    fn regex_waits_for_a_match_or_the_end() {
        let j = Judge::Regex(Regex::new(r"^220 .*ESMTP").unwrap());
        assert_eq!(judge(&j, b"220 mail", false), None);
        assert_eq!(
            judge(&j, b"220 mail ESMTP ready\r\n", false),
            Some(Ok(Pass::Matches(r"^220 .*ESMTP".into())))
        );
        assert_eq!(
            judge(&j, b"554 go away\r\n", true),
            Some(Err(Failure::NoMatch {
                regex: r"^220 .*ESMTP".into()
            }))
        );
    }

    #[test]
    fn http_request_bytes() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let ua = vec![("User-Agent".to_string(), "ringlb-check".to_string())];
        assert_eq!(
            http_request("HEAD /check.txt HTTP/1.0", &ua, addr),
            b"HEAD /check.txt HTTP/1.0\r\nUser-Agent: ringlb-check\r\n\r\n"
        );
        assert_eq!(
            http_request("GET / HTTP/1.1", &ua, addr),
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ringlb-check\r\n\r\n"
        );
        let with_host = vec![("host".to_string(), "www.example.com".to_string())];
        assert_eq!(
            http_request("GET / HTTP/1.1", &with_host, addr),
            b"GET / HTTP/1.1\r\nhost: www.example.com\r\n\r\n"
        );
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(http_request("GET / HTTP/1.1", &[], v6)
            .starts_with(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n"));
    }
}
