//! The `health_check` section of a backend: its serde shape and its validation into a
//! `HealthCheck` whose kind carries only the fields that kind uses.

use std::time::Duration;

use serde::Deserialize;

use super::{HumanDuration, Problems};

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    /// Between checks while the state is settled UP.
    pub interval: Duration,
    /// Between checks while a change of state is pending (some results disagree).
    pub fast_interval: Duration,
    /// Between checks while the server is DOWN.
    pub down_interval: Duration,
    pub rise: u32,
    pub fall: u32,
    pub timeout: Duration,
    /// Each interval is spread by up to this many percent either way.
    pub jitter_percent: u32,
    /// Check this port instead of the traffic port.
    pub port: Option<u16>,
    /// Consecutive failed connects from live traffic that count as one failed check
    /// each; `None` turns passive marking off.
    pub passive_errors: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// A TCP connect succeeds.
    Tcp,
    /// An HTTP request gets a status in `expect_status`.
    Http {
        /// Request line, e.g. `HEAD /check.txt HTTP/1.0`.
        request: String,
        headers: Vec<(String, String)>,
        expect_status: Vec<(u16, u16)>,
    },
    /// `send` is written, then the answer must start with (bytes) or match (regex) `expect`.
    SendExpect { send: Vec<u8>, expect: Expect },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Prefix(Vec<u8>),
    Regex(String),
}

pub const DEFAULT_HTTP_REQUEST: &str = "HEAD / HTTP/1.0";
pub const DEFAULT_USER_AGENT: &str = "ringlb-check";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RISE: u32 = 2;
const DEFAULT_FALL: u32 = 3;
const DEFAULT_JITTER: u32 = 5;
/// The longest check timeout. Start waits for the first round of checks (up to the longest
/// timeout) before it opens the listeners, so a day-long timeout and one hung server would
/// hold the start for a day.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// The most consecutive results `rise` and `fall` may ask for: past this a server would take
/// hours to change state even at a short interval.
pub const MAX_RISE_FALL: u32 = 100;
/// The most consecutive failed connects `passive_errors` may ask for.
pub const MAX_PASSIVE_ERRORS: u32 = 1000;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Tcp,
    Http,
    SendExpect,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStatus {
    Code(u16),
    Class(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    #[serde(rename = "type")]
    kind: RawKind,
    request: Option<String>,
    headers: Option<serde_json::Map<String, serde_json::Value>>,
    expect_status: Option<Vec<RawStatus>>,
    send: Option<String>,
    expect: Option<String>,
    expect_regex: Option<String>,
    interval: Option<HumanDuration>,
    fast_interval: Option<HumanDuration>,
    down_interval: Option<HumanDuration>,
    rise: Option<u32>,
    fall: Option<u32>,
    timeout: Option<HumanDuration>,
    jitter: Option<u32>,
    port: Option<u16>,
    passive_errors: Option<u32>,
}

pub(super) fn validate(raw: &RawHealthCheck, at: &str, p: &mut Problems<'_>) -> HealthCheck {
    let only_for = |p: &mut Problems<'_>, field: &str, present: bool, kind: &str| {
        if present {
            p.add(
                format!("{at}.{field}"),
                format!("only applies to health checks of type {kind:?}"),
            );
        }
    };
    if raw.kind != RawKind::Http {
        only_for(p, "request", raw.request.is_some(), "http");
        only_for(p, "headers", raw.headers.is_some(), "http");
        only_for(p, "expect_status", raw.expect_status.is_some(), "http");
    }
    if raw.kind != RawKind::SendExpect {
        only_for(p, "send", raw.send.is_some(), "send_expect");
        only_for(p, "expect", raw.expect.is_some(), "send_expect");
        only_for(p, "expect_regex", raw.expect_regex.is_some(), "send_expect");
    }
    let kind = match raw.kind {
        RawKind::Tcp => CheckKind::Tcp,
        RawKind::Http => http_kind(raw, at, p),
        RawKind::SendExpect => send_expect_kind(raw, at, p),
    };

    let mut positive = |field: &str, d: Option<HumanDuration>, default: Duration| {
        let d = d.map_or(default, |d| d.0);
        if d.is_zero() {
            p.add(format!("{at}.{field}"), "must be greater than zero".into());
        }
        d
    };
    let interval = positive("interval", raw.interval, DEFAULT_INTERVAL);
    let fast_interval = positive("fast_interval", raw.fast_interval, interval);
    let down_interval = positive("down_interval", raw.down_interval, interval);
    let timeout = positive("timeout", raw.timeout, DEFAULT_TIMEOUT);
    if timeout > MAX_CHECK_TIMEOUT {
        p.add(
            format!("{at}.timeout"),
            format!(
                "{}ms is longer than the maximum of {}s",
                timeout.as_millis(),
                MAX_CHECK_TIMEOUT.as_secs()
            ),
        );
    }
    for (field, v, max) in [
        ("rise", raw.rise, MAX_RISE_FALL),
        ("fall", raw.fall, MAX_RISE_FALL),
        ("passive_errors", raw.passive_errors, MAX_PASSIVE_ERRORS),
    ] {
        match v {
            Some(0) => p.add(format!("{at}.{field}"), "must be at least 1".into()),
            Some(n) if n > max => p.add(
                format!("{at}.{field}"),
                format!("{n} is out of range (1 to {max})"),
            ),
            _ => {}
        }
    }
    if let Some(j) = raw.jitter.filter(|&j| j > 50) {
        p.add(
            format!("{at}.jitter"),
            format!("{j} is out of range (0 to 50 percent)"),
        );
    }
    if raw.port == Some(0) {
        p.add(format!("{at}.port"), "port 0 is not allowed".into());
    }
    HealthCheck {
        kind,
        interval,
        fast_interval,
        down_interval,
        rise: raw.rise.unwrap_or(DEFAULT_RISE),
        fall: raw.fall.unwrap_or(DEFAULT_FALL),
        timeout,
        jitter_percent: raw.jitter.unwrap_or(DEFAULT_JITTER),
        port: raw.port,
        passive_errors: raw.passive_errors,
    }
}

fn http_kind(raw: &RawHealthCheck, at: &str, p: &mut Problems<'_>) -> CheckKind {
    let request = raw
        .request
        .clone()
        .unwrap_or_else(|| DEFAULT_HTTP_REQUEST.to_string());
    let parts: Vec<&str> = request.split(' ').collect();
    let valid = parts.len() == 3
        && !parts[0].is_empty()
        && parts[1].starts_with('/')
        && matches!(parts[2], "HTTP/1.0" | "HTTP/1.1");
    if !valid {
        p.add(
            format!("{at}.request"),
            format!("{request:?} is not a request line like \"HEAD /check.txt HTTP/1.0\""),
        );
    }
    let mut headers = Vec::new();
    for (name, value) in raw.headers.iter().flatten() {
        let bad_name = name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        match value.as_str() {
            Some(v) if !bad_name && !v.contains(['\r', '\n']) => {
                headers.push((name.clone(), v.to_string()))
            }
            _ => p.add(
                format!("{at}.headers.{name}"),
                "must be a header name with a single-line string value".into(),
            ),
        }
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
    {
        headers.push(("User-Agent".into(), DEFAULT_USER_AGENT.into()));
    }
    let mut expect_status = Vec::new();
    for (i, s) in raw.expect_status.iter().flatten().enumerate() {
        let range = match s {
            RawStatus::Code(c) if (100..=599).contains(c) => Some((*c, *c)),
            RawStatus::Class(c) if c.len() == 3 && c.ends_with("xx") => c[..1]
                .parse::<u16>()
                .ok()
                .filter(|d| (1..=5).contains(d))
                .map(|d| (d * 100, d * 100 + 99)),
            _ => None,
        };
        match range {
            Some(r) => expect_status.push(r),
            None => p.add(
                format!("{at}.expect_status[{i}]"),
                "must be a status code (100 to 599) or a class such as \"2xx\"".into(),
            ),
        }
    }
    if raw.expect_status.is_none() {
        expect_status = vec![(200, 299), (300, 399)];
    } else if expect_status.is_empty() && raw.expect_status.iter().flatten().next().is_none() {
        p.add(
            format!("{at}.expect_status"),
            "at least one status is required".into(),
        );
    }
    CheckKind::Http {
        request,
        headers,
        expect_status,
    }
}

fn send_expect_kind(raw: &RawHealthCheck, at: &str, p: &mut Problems<'_>) -> CheckKind {
    let send = raw.send.clone().unwrap_or_default().into_bytes();
    let expect = match (&raw.expect, &raw.expect_regex) {
        (Some(e), None) if !e.is_empty() => Expect::Prefix(e.clone().into_bytes()),
        (None, Some(r)) => {
            if let Err(e) = regex::bytes::Regex::new(r) {
                let first = e.to_string().lines().last().unwrap_or_default().to_string();
                p.add(
                    format!("{at}.expect_regex"),
                    format!("invalid regex: {}", first.trim()),
                );
            }
            Expect::Regex(r.clone())
        }
        (Some(_), Some(_)) => {
            p.add(
                format!("{at}.expect_regex"),
                "give either \"expect\" or \"expect_regex\", not both".into(),
            );
            Expect::Prefix(Vec::new())
        }
        _ => {
            p.add(
                at.to_string(),
                "a send_expect check needs \"expect\" (bytes) or \"expect_regex\"".into(),
            );
            Expect::Prefix(Vec::new())
        }
    };
    CheckKind::SendExpect { send, expect }
}
