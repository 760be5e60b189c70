//! Virtual-time tests of the per-server state machine: first result, rise/fall, the three
//! intervals, jitter bounds and determinism, passive failures, reasons.

use std::time::{Duration, Instant};

use super::*;
use crate::config::CheckKind;

const MS: Duration = Duration::from_millis(1);

fn check() -> HealthCheck {
    HealthCheck {
        kind: CheckKind::Tcp,
        interval: Duration::from_secs(2),
        fast_interval: Duration::from_millis(500),
        down_interval: Duration::from_secs(10),
        rise: 2,
        fall: 3,
        timeout: Duration::from_secs(1),
        jitter_percent: 0,
        port: None,
        passive_errors: None,
    }
}

fn ok(code: u16, ms: u32) -> CheckResult {
    CheckResult::pass(Pass::HttpStatus(code), ms * MS)
}

fn bad(code: u16, ms: u32) -> CheckResult {
    CheckResult::fail(Failure::HttpStatus(code), ms * MS)
}

#[test]
fn first_result_decides_at_once() {
    let t0 = Instant::now();
    let mut h = ServerHealth::new("webfarm/web1", &check(), t0);
    assert!(!h.is_up() && !h.has_result());
    assert_eq!(h.next_check_at(), t0, "first check runs at once");
    let t = h.record(t0 + 2 * MS, &ok(200, 2)).unwrap();
    assert!(t.up && h.is_up());
    assert_eq!(t.reason.to_string(), "HTTP 200 (first check, after 2 ms)");
    assert_eq!(h.next_check_at(), t0 + 2 * MS + Duration::from_secs(2));

    let mut h = ServerHealth::new("webfarm/web2", &check(), t0);
    let t = h
        .record(t0, &CheckResult::fail(Failure::Refused, Duration::ZERO))
        .unwrap();
    assert!(!t.up && !h.is_up() && h.has_result());
    assert_eq!(
        t.reason.to_string(),
        "connection refused (first check, after 0 ms)"
    );
    assert_eq!(h.next_check_at(), t0 + Duration::from_secs(10));
}

#[test]
fn falls_after_fall_failures_with_fast_interval_between() {
    let t0 = Instant::now();
    let mut h = ServerHealth::new("webfarm/web1", &check(), t0);
    h.record(t0, &ok(200, 1));
    let mut t = t0 + Duration::from_secs(2);
    assert_eq!(h.record(t, &bad(503, 5)), None);
    assert_eq!(h.next_check_at(), t + 500 * MS, "pending: fast interval");
    t += 500 * MS;
    assert_eq!(h.record(t, &bad(503, 7)), None);
    assert!(h.is_up());
    t += 500 * MS;
    let tr = h.record(t, &bad(503, 12)).unwrap();
    assert!(!tr.up && !h.is_up());
    assert_eq!(
        tr.reason.to_string(),
        "HTTP 503 (3/3 checks failed, last after 12 ms)"
    );
    assert_eq!(
        h.next_check_at(),
        t + Duration::from_secs(10),
        "settled DOWN"
    );
}

#[test]
fn a_pass_resets_pending_failures() {
    let t0 = Instant::now();
    let mut h = ServerHealth::new("b/s", &check(), t0);
    h.record(t0, &ok(200, 1));
    for _ in 0..2 {
        assert_eq!(h.record(t0, &bad(500, 1)), None);
    }
    assert_eq!(h.record(t0, &ok(200, 1)), None);
    assert_eq!(h.next_check_at(), t0 + Duration::from_secs(2), "settled UP");
    for _ in 0..2 {
        assert_eq!(h.record(t0, &bad(500, 1)), None);
    }
    assert!(
        h.is_up(),
        "two failures after a pass are not three in a row"
    );
    assert!(h.record(t0, &bad(500, 1)).is_some());
}

#[test]
fn rises_after_rise_passes() {
    let t0 = Instant::now();
    let mut h = ServerHealth::new("webfarm/web1", &check(), t0);
    let timeout = Failure::ConnectTimeout(Duration::from_secs(1));
    h.record(t0, &CheckResult::fail(timeout, Duration::from_secs(1)));
    assert!(!h.is_up());
    assert_eq!(h.record(t0, &ok(200, 4)), None);
    assert_eq!(
        h.next_check_at(),
        t0 + 500 * MS,
        "pending rise: fast interval"
    );
    assert_eq!(
        h.record(t0, &bad(503, 1)),
        None,
        "a failure resets the rise"
    );
    assert_eq!(h.record(t0, &ok(200, 4)), None);
    let tr = h.record(t0, &ok(200, 3)).unwrap();
    assert!(tr.up);
    assert_eq!(
        tr.reason.to_string(),
        "HTTP 200 (2/2 checks passed, last after 3 ms)"
    );
}

#[test]
fn failure_reasons_read_as_documented() {
    let s = Duration::from_secs(1);
    let cases = [
        (Failure::ConnectTimeout(s), "connect timeout after 1s"),
        (Failure::ReadTimeout(200 * MS), "read timeout after 200ms"),
        (
            Failure::ClosedBeforeStatus,
            "connection closed before a status line",
        ),
        (Failure::NotHttp, "not an HTTP status line"),
        (
            Failure::Mismatch {
                expected: b"+PONG".to_vec(),
                got: b"-ERR unknown command 'PIGN', with args beginning with:\r\n".to_vec(),
            },
            "expected \"+PONG\", got \"-ERR unknown command 'PIGN', with args b...\"",
        ),
        (
            Failure::NoMatch {
                regex: "^220 ".into(),
            },
            "answer does not match /^220 /",
        ),
        (
            Failure::ClosedBeforeExpected {
                expected: b"OK".to_vec(),
                got: b"\x00\xff\"\\\t".to_vec(),
            },
            "connection closed before \"OK\" (got \"\\x00\\xff\\\"\\\\\\t\")",
        ),
        (Failure::Passive(3), "3 passive connect failures"),
    ];
    for (failure, text) in cases {
        assert_eq!(failure.to_string(), text);
    }
    let t0 = Instant::now();
    let mut h = ServerHealth::new("webfarm/web1", &check(), t0);
    h.record(t0, &ok(200, 1));
    let mut last = None;
    for _ in 0..3 {
        last = h.record(t0, &CheckResult::fail(Failure::ConnectTimeout(s), s));
    }
    assert_eq!(
        last.unwrap().reason.to_string(),
        "connect timeout after 1s (3/3 checks failed, last after 1000 ms)"
    );
}

#[test]
fn jitter_stays_in_bounds_and_repeats_per_label() {
    let hc = HealthCheck {
        jitter_percent: 10,
        ..check()
    };
    let t0 = Instant::now();
    let schedule = |label: &str| {
        let mut h = ServerHealth::new(label, &hc, t0);
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..200 {
            h.record(now, &ok(200, 1));
            delays.push(h.next_check_at() - now);
            now = h.next_check_at();
        }
        delays
    };
    let a = schedule("webfarm/web1");
    assert_eq!(a, schedule("webfarm/web1"), "same label, same schedule");
    assert_ne!(
        a,
        schedule("webfarm/web2"),
        "another label, another schedule"
    );
    let (lo, hi) = (Duration::from_millis(1800), Duration::from_millis(2200));
    assert!(a.iter().all(|d| (lo..=hi).contains(d)), "{a:?}");
    // Spread over the range, not stuck at one end.
    assert!(a.iter().any(|d| *d < Duration::from_millis(1900)));
    assert!(a.iter().any(|d| *d > Duration::from_millis(2100)));
}

#[test]
fn passive_failures_count_as_failed_checks() {
    let hc = HealthCheck {
        passive_errors: Some(2),
        fall: 2,
        ..check()
    };
    let t0 = Instant::now();
    let mut h = ServerHealth::new("webfarm/web1", &hc, t0);
    assert_eq!(
        h.record_passive_failure(t0),
        None,
        "ignored before a result"
    );
    h.record(t0, &ok(200, 1));
    let t1 = t0 + 100 * MS;
    assert_eq!(h.record_passive_failure(t1), None);
    assert_eq!(
        h.next_check_at(),
        t0 + Duration::from_secs(2),
        "1 of 2: no change"
    );
    assert_eq!(
        h.record_passive_failure(t1),
        None,
        "2 of 2: one failed check"
    );
    assert_eq!(h.next_check_at(), t1 + 500 * MS, "brought forward");
    assert_eq!(h.record_passive_failure(t1), None);
    // A passing check in between resets the passive count.
    h.record(t1, &ok(200, 1));
    assert_eq!(h.record_passive_failure(t1), None);
    assert_eq!(h.next_check_at(), t1 + Duration::from_secs(2));
    h.record_passive_failure(t1);
    let tr = (0..2).find_map(|_| h.record_passive_failure(t1)).unwrap();
    assert!(!tr.up);
    assert_eq!(
        tr.reason.to_string(),
        "2 passive connect failures (2/2 checks failed)"
    );
    assert_eq!(h.record_passive_failure(t1), None, "ignored while DOWN");
}

#[test]
fn passive_failures_are_off_without_passive_errors() {
    let t0 = Instant::now();
    let mut h = ServerHealth::new("b/s", &check(), t0);
    h.record(t0, &ok(200, 1));
    for _ in 0..100 {
        assert_eq!(h.record_passive_failure(t0), None);
    }
    assert!(h.is_up());
    assert_eq!(h.next_check_at(), t0 + Duration::from_secs(2));
}

#[test]
fn carried_state_is_settled() {
    let t0 = Instant::now();
    let h = ServerHealth::carried("b/s", &check(), t0, true);
    assert!(h.is_up() && h.has_result());
    assert_eq!(h.next_check_at(), t0 + Duration::from_secs(2));
    let mut h = ServerHealth::carried("b/s", &check(), t0, false);
    assert_eq!(h.next_check_at(), t0 + Duration::from_secs(10));
    assert_eq!(
        h.record(t0, &ok(200, 1)),
        None,
        "rise applies, not first check"
    );
}
