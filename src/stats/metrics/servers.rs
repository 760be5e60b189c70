//! The per-server families (`backend` and `server` labels): state, weight, connections,
//! bytes, errors, health (check failures, state changes, downtime), how connections
//! ended, and the latency histograms since start, in fixed buckets filled from hdrhistogram.

use hdrhistogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::{Family, Labels, Value};
use crate::stats::report::{Report, ServerRow};

/// Upper bounds (seconds) of the connect-time buckets.
const CONNECT_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds (seconds) of the connection-duration buckets.
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
];
const SERVER_STATES: [&str; 4] = ["UP", "DOWN", "DRAIN", "MAINT"];

type Figure = fn(&ServerRow) -> Value;

/// One sample per server.
const FIGURES: [(&str, &str, Option<Unit>, MetricType, Figure); 13] = [
    (
        "ringlb_server_weight",
        "Effective weight",
        None,
        MetricType::Gauge,
        |s| Value::Gauge(f64::from(s.weight)),
    ),
    (
        "ringlb_server_current_connections",
        "Connections open now",
        None,
        MetricType::Gauge,
        |s| Value::Gauge(f64::from(s.conns)),
    ),
    (
        "ringlb_server_max_connections",
        "Most connections open at once",
        None,
        MetricType::Gauge,
        |s| Value::Gauge(f64::from(s.peak)),
    ),
    (
        "ringlb_server_connections",
        "Connections established",
        None,
        MetricType::Counter,
        |s| Value::Counter(s.conns_total),
    ),
    (
        "ringlb_server_sent",
        "Bytes from clients, forwarded to the server",
        Some(Unit::Bytes),
        MetricType::Counter,
        |s| Value::Counter(s.bytes_in),
    ),
    (
        "ringlb_server_received",
        "Bytes from the server, forwarded to clients",
        Some(Unit::Bytes),
        MetricType::Counter,
        |s| Value::Counter(s.bytes_out),
    ),
    (
        "ringlb_server_connect_errors",
        "Failed connects (refused, reset, timeout)",
        None,
        MetricType::Counter,
        |s| Value::Counter(s.connect_errors),
    ),
    (
        "ringlb_server_retries",
        "Connects to this server that retried a failed one",
        None,
        MetricType::Counter,
        |s| Value::Counter(s.retries),
    ),
    (
        "ringlb_server_check_failures",
        "Failed active health checks",
        None,
        MetricType::Counter,
        |s| Value::Counter(s.check_failures),
    ),
    (
        "ringlb_server_state_changes",
        "Health verdict changes, UP to DOWN and DOWN to UP",
        None,
        MetricType::Counter,
        |s| Value::Counter(s.state_changes),
    ),
    (
        "ringlb_server_downtime",
        "Time the health checks held the server DOWN since start, the current spell included",
        Some(Unit::Seconds),
        MetricType::Counter,
        |s| Value::FloatCounter(s.downtime_seconds),
    ),
    (
        "ringlb_server_connect",
        "Time to connect to the server",
        Some(Unit::Seconds),
        MetricType::Histogram,
        |s| {
            histogram(
                &s.timings.connect,
                s.timings.connect_sum_us,
                &CONNECT_BUCKETS,
            )
        },
    ),
    (
        "ringlb_server_connection_duration",
        "Life of client connections served by the server",
        Some(Unit::Seconds),
        MetricType::Histogram,
        |s| {
            histogram(
                &s.timings.duration,
                s.timings.duration_sum_us,
                &DURATION_BUCKETS,
            )
        },
    ),
];

pub fn families(r: &Report) -> Vec<Family> {
    let servers: Vec<(&str, &ServerRow)> = r
        .backends
        .iter()
        .flat_map(|b| b.servers.iter().map(move |s| (b.name.as_str(), s)))
        .collect();
    let label = |b: &str, s: &ServerRow| -> Labels {
        vec![("backend", b.to_string()), ("server", s.name.clone())]
    };
    let mut out = vec![Family::new(
        "ringlb_server_state",
        "1 for the server's current state (UP, DOWN, DRAIN, MAINT), 0 for the others",
        None,
        MetricType::Gauge,
        servers
            .iter()
            .flat_map(|&(b, s)| {
                SERVER_STATES.iter().map(move |&st| {
                    let mut l = label(b, s);
                    l.push(("state", st.to_string()));
                    (l, Value::Gauge(if s.state == st { 1.0 } else { 0.0 }))
                })
            })
            .collect(),
    )];
    out.extend(FIGURES.into_iter().map(|(name, help, unit, kind, figure)| {
        let samples = servers
            .iter()
            .map(|&(b, s)| (label(b, s), figure(s)))
            .collect();
        Family::new(name, help, unit, kind, samples)
    }));
    out.push(Family::new(
        "ringlb_server_connections_ended",
        "Connections that reached the server, by how they ended (the end= of the log line)",
        None,
        MetricType::Counter,
        servers
            .iter()
            .flat_map(|&(b, s)| {
                s.ends.iter().map(move |(end, n)| {
                    let mut l = label(b, s);
                    l.push(("end", end.to_string()));
                    (l, Value::Counter(n))
                })
            })
            .collect(),
    ));
    out
}

/// Fixed buckets (seconds) filled from a histogram in microseconds. A bucket takes the
/// values up to its bound within the histogram's 1 % resolution.
fn histogram(h: &Histogram<u64>, sum_us: u64, bounds: &[f64]) -> Value {
    let mut buckets = Vec::with_capacity(bounds.len() + 1);
    let mut below = 0;
    for &b in bounds {
        let upto = if h.is_empty() {
            0
        } else {
            h.count_between(0, (b * 1e6) as u64).min(h.len())
        };
        buckets.push((b, upto.saturating_sub(below)));
        below = below.max(upto);
    }
    buckets.push((f64::INFINITY, h.len().saturating_sub(below)));
    Value::Histogram(sum_us as f64 / 1e6, h.len(), buckets)
}
