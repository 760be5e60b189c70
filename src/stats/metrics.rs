//! `/metrics`: a `Report` in the OpenMetrics text format that Prometheus scrapes, written
//! by the prometheus-client crate through a collector built per scrape (the numbers are
//! summed from per-worker cells at read time, so there is no long-lived metric object to
//! update). Names are `ringlb_*`, with `_total`, `_bytes` and `_seconds` per Prometheus
//! conventions; latencies are histograms with fixed buckets filled from hdrhistogram.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::report::{FrontendRow, Report};
use hdrhistogram::Histogram;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
const VRRP_STATES: [&str; 3] = ["MASTER", "BACKUP", "INIT"];

pub fn encode(report: Report) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ReportCollector(report)));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

type Labels = Vec<(&'static str, String)>;

enum Value {
    Counter(u64),
    Gauge(f64),
    /// Sum (seconds), count, and per-bucket (not cumulative) counts ending with +Inf.
    Histogram(f64, u64, Vec<(f64, u64)>),
}

#[derive(Debug)]
struct ReportCollector(Report);

impl Collector for ReportCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.0;
        let p = &r.process;
        let none = || Labels::new();
        let one = |v: f64| vec![(none(), Value::Gauge(v))];
        enc.encode_descriptor("ringlb_build", "ringlb's version", None, MetricType::Info)?
            .encode_info(&vec![("version", p.version.to_string())])?;
        family(
            &mut enc,
            "ringlb_uptime",
            "Time since ringlb started",
            Some(Unit::Seconds),
            MetricType::Gauge,
            one(p.uptime_seconds),
        )?;
        family(
            &mut enc,
            "ringlb_workers",
            "Worker threads",
            None,
            MetricType::Gauge,
            one(p.workers as f64),
        )?;
        family(
            &mut enc,
            "ringlb_max_fds",
            "Soft limit on open file descriptors",
            None,
            MetricType::Gauge,
            one(p.fd_limit as f64),
        )?;
        if let Some(n) = p.fds_open {
            family(
                &mut enc,
                "ringlb_open_fds",
                "Open file descriptors",
                None,
                MetricType::Gauge,
                one(n as f64),
            )?;
        }
        family(
            &mut enc,
            "ringlb_maxconn",
            "Global cap on client connections",
            None,
            MetricType::Gauge,
            one(f64::from(p.maxconn)),
        )?;
        family(
            &mut enc,
            "ringlb_current_connections",
            "Client connections open now",
            None,
            MetricType::Gauge,
            one(f64::from(p.conns)),
        )?;
        family(
            &mut enc,
            "ringlb_reloads",
            "Configuration reloads (SIGHUP)",
            None,
            MetricType::Counter,
            vec![(none(), Value::Counter(p.reloads))],
        )?;
        family(
            &mut enc,
            "ringlb_reload_failures",
            "Reloads that were refused",
            None,
            MetricType::Counter,
            vec![(none(), Value::Counter(p.failed_reloads))],
        )?;
        family(
            &mut enc,
            "ringlb_connection_fds",
            "File descriptors reserved by connections (two each, also for armed accepts)",
            None,
            MetricType::Gauge,
            one(f64::from(p.conn_fds)),
        )?;
        family(
            &mut enc,
            "ringlb_connection_fds_limit",
            "File descriptors connections may hold: the fd limit less what the rest needs",
            None,
            MetricType::Gauge,
            one(f64::from(p.conn_fds_limit)),
        )?;
        family(
            &mut enc,
            "ringlb_log_dropped",
            "Log lines dropped because the log sink did not keep up",
            None,
            MetricType::Counter,
            vec![(none(), Value::Counter(p.log_dropped))],
        )?;
        family(
            &mut enc,
            "ringlb_thread_faults",
            "Faults (panics) caught in a helper thread, each followed by a restart",
            None,
            MetricType::Counter,
            p.thread_faults
                .iter()
                .map(|&(thread, n)| (vec![("thread", thread.to_string())], Value::Counter(n)))
                .collect(),
        )?;
        if let Some(last) = &p.last_reload {
            family(
                &mut enc,
                "ringlb_last_reload_success",
                "Whether the last reload was applied (1) or refused (0)",
                None,
                MetricType::Gauge,
                one(if last.ok { 1.0 } else { 0.0 }),
            )?;
        }

        // One family per frontend figure, a sample per frontend.
        type Figure = fn(&FrontendRow) -> Value;
        let frontend_families: [(&str, &str, Option<Unit>, MetricType, Figure); 9] = [
            (
                "ringlb_frontend_current_connections",
                "Connections open now",
                None,
                MetricType::Gauge,
                |f| Value::Gauge(f64::from(f.conns)),
            ),
            (
                "ringlb_frontend_max_connections",
                "Most connections open at once",
                None,
                MetricType::Gauge,
                |f| Value::Gauge(f64::from(f.peak)),
            ),
            (
                "ringlb_frontend_connections",
                "Connections accepted",
                None,
                MetricType::Counter,
                |f| Value::Counter(f.conns_total),
            ),
            (
                "ringlb_frontend_received",
                "Bytes received from clients",
                Some(Unit::Bytes),
                MetricType::Counter,
                |f| Value::Counter(f.bytes_in),
            ),
            (
                "ringlb_frontend_sent",
                "Bytes sent to clients",
                Some(Unit::Bytes),
                MetricType::Counter,
                |f| Value::Counter(f.bytes_out),
            ),
            (
                "ringlb_frontend_maxconn_waits",
                "Connections that waited in the accept queue because a maxconn was reached",
                None,
                MetricType::Counter,
                |f| Value::Counter(f.held),
            ),
            (
                "ringlb_frontend_no_server",
                "Connections closed because no server would take them",
                None,
                MetricType::Counter,
                |f| Value::Counter(f.no_server),
            ),
            (
                "ringlb_frontend_proxy_errors",
                "Connections closed for a malformed, missing or late PROXY protocol header",
                None,
                MetricType::Counter,
                |f| Value::Counter(f.proxy_errors),
            ),
            (
                "ringlb_frontend_no_route",
                "Connections closed because no route matched their TLS server name",
                None,
                MetricType::Counter,
                |f| Value::Counter(f.no_route),
            ),
        ];
        for (name, help, unit, metric_type, figure) in frontend_families {
            let samples = r
                .frontends
                .iter()
                .map(|f| (vec![("frontend", f.name.clone())], figure(f)))
                .collect();
            family(&mut enc, name, help, unit, metric_type, samples)?;
        }

        let be = |name: &str| vec![("backend", name.to_string())];
        family(
            &mut enc,
            "ringlb_backend_servers_up",
            "Servers taking new connections",
            None,
            MetricType::Gauge,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Gauge(b.servers_up as f64)))
                .collect(),
        )?;
        family(
            &mut enc,
            "ringlb_backend_queue_current",
            "Connections waiting now for a server below its maxconn",
            None,
            MetricType::Gauge,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Gauge(b.queue as f64)))
                .collect(),
        )?;
        family(
            &mut enc,
            "ringlb_backend_queued",
            "Connections that waited for a server",
            None,
            MetricType::Counter,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Counter(b.queue_total)))
                .collect(),
        )?;

        self.encode_servers(&mut enc)?;
        self.encode_vrrp(&mut enc)
    }
}

impl ReportCollector {
    fn encode_servers(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let servers: Vec<_> = self
            .0
            .backends
            .iter()
            .flat_map(|b| b.servers.iter().map(move |s| (b.name.as_str(), s)))
            .collect();
        let label = |b: &str, s: &str| vec![("backend", b.to_string()), ("server", s.to_string())];
        let each = |f: &dyn Fn(&super::report::ServerRow) -> Value| {
            servers
                .iter()
                .map(|(b, s)| (label(b, &s.name), f(s)))
                .collect::<Vec<_>>()
        };
        let states = servers
            .iter()
            .flat_map(|(b, s)| {
                SERVER_STATES.iter().map(move |&st| {
                    let mut l = label(b, &s.name);
                    l.push(("state", st.to_string()));
                    (l, Value::Gauge(if s.state == st { 1.0 } else { 0.0 }))
                })
            })
            .collect();
        family(
            enc,
            "ringlb_server_state",
            "1 for the server's current state (UP, DOWN, DRAIN, MAINT), 0 for the others",
            None,
            MetricType::Gauge,
            states,
        )?;
        family(
            enc,
            "ringlb_server_weight",
            "Effective weight",
            None,
            MetricType::Gauge,
            each(&|s| Value::Gauge(f64::from(s.weight))),
        )?;
        family(
            enc,
            "ringlb_server_current_connections",
            "Connections open now",
            None,
            MetricType::Gauge,
            each(&|s| Value::Gauge(f64::from(s.conns))),
        )?;
        family(
            enc,
            "ringlb_server_max_connections",
            "Most connections open at once",
            None,
            MetricType::Gauge,
            each(&|s| Value::Gauge(f64::from(s.peak))),
        )?;
        family(
            enc,
            "ringlb_server_connections",
            "Connections established",
            None,
            MetricType::Counter,
            each(&|s| Value::Counter(s.conns_total)),
        )?;
        family(
            enc,
            "ringlb_server_sent",
            "Bytes from clients, forwarded to the server",
            Some(Unit::Bytes),
            MetricType::Counter,
            each(&|s| Value::Counter(s.bytes_in)),
        )?;
        family(
            enc,
            "ringlb_server_received",
            "Bytes from the server, forwarded to clients",
            Some(Unit::Bytes),
            MetricType::Counter,
            each(&|s| Value::Counter(s.bytes_out)),
        )?;
        family(
            enc,
            "ringlb_server_connect_errors",
            "Failed connects (refused, reset, timeout)",
            None,
            MetricType::Counter,
            each(&|s| Value::Counter(s.connect_errors)),
        )?;
        family(
            enc,
            "ringlb_server_retries",
            "Connects to this server that retried a failed one",
            None,
            MetricType::Counter,
            each(&|s| Value::Counter(s.retries)),
        )?;
        family(
            enc,
            "ringlb_server_connect",
            "Time to connect to the server",
            Some(Unit::Seconds),
            MetricType::Histogram,
            each(&|s| {
                histogram(
                    &s.timings.connect,
                    s.timings.connect_sum_us,
                    &CONNECT_BUCKETS,
                )
            }),
        )?;
        family(
            enc,
            "ringlb_server_connection_duration",
            "Life of client connections served by the server",
            Some(Unit::Seconds),
            MetricType::Histogram,
            each(&|s| {
                histogram(
                    &s.timings.duration,
                    s.timings.duration_sum_us,
                    &DURATION_BUCKETS,
                )
            }),
        )
    }

    fn encode_vrrp(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let vrrp = &self.0.vrrp;
        if vrrp.is_empty() {
            return Ok(());
        }
        let inst = |n: &str| vec![("instance", n.to_string())];
        let states = vrrp
            .iter()
            .flat_map(|v| {
                VRRP_STATES.iter().map(move |&st| {
                    let mut l = inst(&v.name);
                    l.push(("state", st.to_string()));
                    (l, Value::Gauge(if v.state == st { 1.0 } else { 0.0 }))
                })
            })
            .collect();
        family(
            enc,
            "ringlb_vrrp_state",
            "1 for the instance's current state",
            None,
            MetricType::Gauge,
            states,
        )?;
        family(
            enc,
            "ringlb_vrrp_priority",
            "Effective priority (configured less penalty)",
            None,
            MetricType::Gauge,
            vrrp.iter()
                .map(|v| (inst(&v.name), Value::Gauge(f64::from(v.priority))))
                .collect(),
        )?;
        family(
            enc,
            "ringlb_vrrp_transitions",
            "State transitions since start",
            None,
            MetricType::Counter,
            vrrp.iter()
                .map(|v| (inst(&v.name), Value::Counter(v.transitions)))
                .collect(),
        )
    }
}

/// One metric family: its descriptor, then one sample (or histogram) per label set.
fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric_type: MetricType,
    samples: Vec<(Labels, Value)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), metric_type)?;
    for (labels, value) in &samples {
        if labels.is_empty() {
            // Without a label set, so the sample reads `name value`, not `name{} value`.
            sample(&mut m, value)?;
        } else {
            sample(&mut m.encode_family(labels)?, value)?;
        }
    }
    Ok(())
}

fn sample(m: &mut MetricEncoder, value: &Value) -> Result<(), std::fmt::Error> {
    match value {
        Value::Counter(v) => m.encode_counter::<NoLabelSet, _, u64>(v, None),
        Value::Gauge(v) => m.encode_gauge(v),
        Value::Histogram(sum, count, buckets) => {
            m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
        }
    }
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
