//! Which families `/metrics` has and where each number comes from in the `Report`: the
//! process (the standard `process_*` set and ringlb's own), frontends and backends here;
//! servers and VRRP instances in their own files.

use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::{announce, servers, vrrp, Family, Labels, Value};
use crate::stats::report::{FrontendRow, Report};

pub fn families(r: &Report) -> Vec<Family> {
    let mut out = process(r);
    out.extend(ringlb(r));
    out.extend(frontends(r));
    out.extend(backends(r));
    out.extend(servers::families(r));
    out.extend(vrrp::families(r));
    out.extend(announce::families(r));
    out
}

/// The set every Prometheus client library exports, with the same names and help. A fact
/// that could not be read is left out rather than shown as 0.
fn process(r: &Report) -> Vec<Family> {
    let p = &r.process.resources;
    let fact = |name, help, unit, kind, v: Option<Value>| {
        v.map(|v| Family::single(name, help, unit, kind, v))
    };
    let gauge = |v: Option<u64>| v.map(|v| Value::Gauge(v as f64));
    [
        fact(
            "process_cpu",
            "Total user and system CPU time spent in seconds.",
            Some(Unit::Seconds),
            MetricType::Counter,
            p.cpu_seconds.map(Value::FloatCounter),
        ),
        fact(
            "process_resident_memory",
            "Resident memory size in bytes.",
            Some(Unit::Bytes),
            MetricType::Gauge,
            gauge(p.resident_memory_bytes),
        ),
        fact(
            "process_virtual_memory",
            "Virtual memory size in bytes.",
            Some(Unit::Bytes),
            MetricType::Gauge,
            gauge(p.virtual_memory_bytes),
        ),
        fact(
            "process_open_fds",
            "Number of open file descriptors.",
            None,
            MetricType::Gauge,
            gauge(p.open_fds),
        ),
        fact(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            None,
            MetricType::Gauge,
            gauge(p.max_fds),
        ),
        fact(
            "process_start_time",
            "Start time of the process since unix epoch in seconds.",
            Some(Unit::Seconds),
            MetricType::Gauge,
            p.start_time_seconds.map(Value::Gauge),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn ringlb(r: &Report) -> Vec<Family> {
    let p = &r.process;
    let gauge =
        |name, help, v: f64| Family::single(name, help, None, MetricType::Gauge, Value::Gauge(v));
    let counter = |name, help, v: u64| {
        Family::single(name, help, None, MetricType::Counter, Value::Counter(v))
    };
    let mut out = vec![
        Family::new(
            "ringlb_build",
            "ringlb's version and the commit it was built from",
            None,
            MetricType::Info,
            vec![(
                vec![
                    ("version", p.version.to_string()),
                    ("commit", p.commit.to_string()),
                ],
                Value::Info,
            )],
        ),
        Family::single(
            "ringlb_uptime",
            "Time since ringlb started",
            Some(Unit::Seconds),
            MetricType::Gauge,
            Value::Gauge(p.uptime_seconds),
        ),
        gauge("ringlb_workers", "Worker threads", p.workers as f64),
        gauge(
            "ringlb_maxconn",
            "Global cap on client connections",
            f64::from(p.maxconn),
        ),
        gauge(
            "ringlb_current_connections",
            "Client connections open now",
            f64::from(p.conns),
        ),
        counter(
            "ringlb_reloads",
            "Configuration reloads (SIGHUP)",
            p.reloads,
        ),
        counter(
            "ringlb_reload_failures",
            "Reloads that were refused",
            p.failed_reloads,
        ),
        gauge(
            "ringlb_connection_fds",
            "File descriptors reserved by connections (two each, also for armed accepts)",
            f64::from(p.conn_fds),
        ),
        gauge(
            "ringlb_connection_fds_limit",
            "File descriptors connections may hold: the fd limit less what the rest needs",
            f64::from(p.conn_fds_limit),
        ),
        counter(
            "ringlb_log_dropped",
            "Log lines dropped because the log sink did not keep up",
            p.log_dropped,
        ),
        Family::new(
            "ringlb_thread_faults",
            "Faults (panics) caught in a helper thread, each followed by a restart",
            None,
            MetricType::Counter,
            p.thread_faults
                .iter()
                .map(|&(thread, n)| (vec![("thread", thread.to_string())], Value::Counter(n)))
                .collect(),
        ),
    ];
    if let Some(last) = &p.last_reload {
        out.push(gauge(
            "ringlb_last_reload_success",
            "Whether the last reload was applied (1) or refused (0)",
            if last.ok { 1.0 } else { 0.0 },
        ));
    }
    out
}

fn frontends(r: &Report) -> Vec<Family> {
    // One family per frontend figure, a sample per frontend.
    type Figure = fn(&FrontendRow) -> Value;
    let figures: [(&str, &str, Option<Unit>, MetricType, Figure); 9] = [
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
    let fe = |f: &FrontendRow| vec![("frontend", f.name.clone())];
    let mut out: Vec<Family> = figures
        .into_iter()
        .map(|(name, help, unit, kind, figure)| {
            let samples = r.frontends.iter().map(|f| (fe(f), figure(f))).collect();
            Family::new(name, help, unit, kind, samples)
        })
        .collect();
    out.push(Family::new(
        "ringlb_frontend_connections_ended",
        "Connections ended, by how they ended (the end= of the log line)",
        None,
        MetricType::Counter,
        r.frontends
            .iter()
            .flat_map(|f| {
                f.ends.iter().map(|(end, n)| {
                    let mut l = fe(f);
                    l.push(("end", end.to_string()));
                    (l, Value::Counter(n))
                })
            })
            .collect(),
    ));
    out
}

fn backends(r: &Report) -> Vec<Family> {
    let be = |name: &str| -> Labels { vec![("backend", name.to_string())] };
    vec![
        Family::new(
            "ringlb_backend_servers_up",
            "Servers taking new connections",
            None,
            MetricType::Gauge,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Gauge(b.servers_up as f64)))
                .collect(),
        ),
        Family::new(
            "ringlb_backend_queue_current",
            "Connections waiting now for a server below its maxconn",
            None,
            MetricType::Gauge,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Gauge(b.queue as f64)))
                .collect(),
        ),
        Family::new(
            "ringlb_backend_queued",
            "Connections that waited for a server",
            None,
            MetricType::Counter,
            r.backends
                .iter()
                .map(|b| (be(&b.name), Value::Counter(b.queue_total)))
                .collect(),
        ),
    ]
}
