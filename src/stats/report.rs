//! One reading of everything the stats page shows: the registry's view (states, reasons,
//! weights) with the per-worker counters summed and histograms merged, process facts and
//! VRRP status. The HTML page, `/stats.json` and `/metrics` all render one `Report`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::process::{self, ProcessFacts};
use super::Sources;
use crate::counters::{EndTotals, Timings, WINDOW_MINUTES};
use crate::fault::{self, Helper};
use crate::registry::{self, RegistryView};
use crate::table::ServerState;
use crate::version;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub process: Process,
    pub vrrp: Vec<VrrpRow>,
    /// The `announce` section's VIPs and handoff; `None` without one.
    pub announce: Option<AnnounceRow>,
    pub frontends: Vec<FrontendRow>,
    pub backends: Vec<BackendRow>,
}

#[derive(Debug, Default, Serialize)]
pub struct Process {
    pub version: &'static str,
    /// The commit built (`unknown` without git at build time).
    pub commit: &'static str,
    pub pid: u32,
    pub uptime_seconds: f64,
    pub workers: usize,
    pub fd_limit: u64,
    /// Entries of /proc/self/fd; `None` when it cannot be read.
    pub fds_open: Option<u64>,
    pub maxconn: u32,
    /// Client connections open now, all frontends.
    pub conns: u32,
    pub reloads: u64,
    pub failed_reloads: u64,
    pub last_reload: Option<ReloadRow>,
    /// Fds reserved by connections, held ones and armed accepts, and the most they may.
    pub conn_fds: u32,
    pub conn_fds_limit: u32,
    /// Log lines dropped because the log sink did not keep up.
    pub log_dropped: u64,
    /// Faults caught per helper thread (each restarted it).
    pub thread_faults: Vec<(&'static str, u64)>,
    /// What the `*_window` latencies cover: the current minute and those before it.
    pub latency_window_seconds: u64,
    /// CPU, memory, fds and start time, as the `process_*` metrics give them.
    pub resources: ProcessFacts,
}

#[derive(Debug, Serialize)]
pub struct ReloadRow {
    pub number: u64,
    pub ok: bool,
    pub summary: String,
    pub seconds_ago: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct VrrpRow {
    pub name: String,
    pub vrid: u8,
    /// `MASTER`, `BACKUP`, `INIT`, or `FAULT` while tracking holds it out.
    pub state: &'static str,
    /// In FAULT: the tracked script, file or interface that holds it there.
    pub fault: Option<String>,
    /// Configured priority less the fate-sharing penalty.
    pub priority: u8,
    pub configured_priority: u8,
    /// In BACKUP: the master whose adverts it follows.
    pub master: Option<String>,
    pub transitions: u64,
    pub adverts_sent: u64,
    /// Adverts that passed every check.
    pub adverts_received: u64,
    /// Dropped adverts by reason (the vrrp crate's labels), zeros included.
    pub drops: Vec<(&'static str, u64)>,
}

#[derive(Debug, Default, Serialize)]
pub struct AnnounceRow {
    pub interface: String,
    pub vips: Vec<AnnouncedVipRow>,
    pub handoff: Option<HandoffRow>,
}

#[derive(Debug, Default, Serialize)]
pub struct AnnouncedVipRow {
    pub vip: String,
    pub announced: bool,
    /// Why it is not announced.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct HandoffRow {
    pub peers: Vec<String>,
    /// Seconds the open window has to run; 0 when none is open.
    pub window_seconds_left: f64,
    pub windows_opened: u64,
    pub notices_sent: u64,
    pub notices_received: u64,
    pub notices_dropped: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct FrontendRow {
    pub name: String,
    pub bind: Vec<String>,
    pub backend: String,
    pub conns: u32,
    pub peak: u32,
    pub maxconn: Option<u32>,
    pub conns_total: u64,
    /// New connections per second over the last sampling period.
    pub rate: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Connections that waited in the accept queue for a `maxconn`.
    pub held: u64,
    /// Connections closed because no server would take them.
    pub no_server: u64,
    /// Connections closed for a bad, missing or late PROXY header.
    pub proxy_errors: u64,
    /// Connections closed for want of a route for their TLS server name.
    pub no_route: u64,
    /// Connections by how they ended (the log's `end=`).
    pub ends: EndTotals,
}

#[derive(Debug, Default, Serialize)]
pub struct BackendRow {
    pub name: String,
    pub balance: String,
    /// `UP` while a server takes new connections, else `DOWN`.
    pub state: &'static str,
    pub servers_up: usize,
    pub conns: u64,
    pub conns_total: u64,
    pub queue: u64,
    pub queue_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub retries: u64,
    /// Since start.
    pub connect_ms: Option<Latency>,
    pub duration_ms: Option<Latency>,
    /// Over the last `latency_window_seconds`.
    pub connect_ms_window: Option<Latency>,
    pub duration_ms_window: Option<Latency>,
    pub servers: Vec<ServerRow>,
}

#[derive(Debug, Default, Serialize)]
pub struct ServerRow {
    pub name: String,
    pub addr: String,
    /// `UP`, `DOWN`, `DRAIN` or `MAINT`.
    pub state: &'static str,
    /// The health verdict alone (`UP` without checks).
    pub health: &'static str,
    /// `READY`, `DRAIN` or `MAINT`.
    pub admin: &'static str,
    pub checked: bool,
    pub reason: String,
    pub since_seconds: f64,
    pub weight: u32,
    pub backup: bool,
    pub conns: u32,
    pub peak: u32,
    pub maxconn: Option<u32>,
    pub conns_total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub retries: u64,
    /// Failed health checks.
    pub check_failures: u64,
    /// Health verdict changes (UP to DOWN and back).
    pub state_changes: u64,
    /// Time the health checks held it DOWN, the current spell included.
    pub downtime_seconds: f64,
    /// Connections that reached it, by how they ended.
    pub ends: EndTotals,
    /// Since start.
    pub connect_ms: Option<Latency>,
    pub duration_ms: Option<Latency>,
    /// Over the last `latency_window_seconds`.
    pub connect_ms_window: Option<Latency>,
    pub duration_ms_window: Option<Latency>,
    #[serde(skip)]
    pub timings: Timings,
    #[serde(skip)]
    pub window: Timings,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Option<Latency> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| Latency {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
}

/// Connection rates per frontend, from totals sampled by the stats thread.
#[derive(Debug, Default)]
pub struct Rates {
    last: Option<(Instant, HashMap<String, u64>)>,
    per_second: HashMap<String, f64>,
}

impl Rates {
    pub fn sample(&mut self, view: &RegistryView) {
        let now = Instant::now();
        let totals: HashMap<String, u64> = view
            .frontends
            .iter()
            .map(|f| (f.name.clone(), f.stats.totals().conns))
            .collect();
        if let Some((at, before)) = &self.last {
            let secs = now.duration_since(*at).as_secs_f64().max(1e-3);
            self.per_second = totals
                .iter()
                .map(|(name, &n)| {
                    let prev = before.get(name).copied().unwrap_or(n);
                    (name.clone(), n.saturating_sub(prev) as f64 / secs)
                })
                .collect();
        }
        self.last = Some((now, totals));
    }

    fn of(&self, frontend: &str) -> f64 {
        self.per_second.get(frontend).copied().unwrap_or(0.0)
    }
}

pub fn collect(sources: &Sources, rates: &Rates) -> Report {
    let view = registry::lock(&sources.registry).view();
    let now = Instant::now();
    // The workers' clock, which their latency windows are kept in.
    let since_epoch = now.saturating_duration_since(sources.shared.epoch);
    let frontends = view
        .frontends
        .iter()
        .map(|f| {
            let t = f.stats.totals();
            FrontendRow {
                name: f.name.clone(),
                bind: f.bind.iter().map(|a| a.to_string()).collect(),
                backend: f.backend.clone(),
                conns: f.conns.load(Ordering::Relaxed),
                peak: t.peak,
                maxconn: f.maxconn,
                conns_total: t.conns,
                rate: rates.of(&f.name),
                bytes_in: t.bytes_in,
                bytes_out: t.bytes_out,
                held: t.held,
                no_server: t.no_server,
                proxy_errors: t.proxy_errors,
                no_route: t.no_route,
                ends: t.ends,
            }
        })
        .collect();
    let backends = view
        .backends
        .iter()
        .map(|b| {
            let servers: Vec<ServerRow> = b
                .servers
                .iter()
                .map(|s| {
                    let t = s.stats.totals(since_epoch);
                    ServerRow {
                        name: s.name.clone(),
                        addr: s.addr.to_string(),
                        state: s.state.as_str(),
                        health: s.health.as_str(),
                        admin: s.admin.as_str(),
                        checked: s.checked,
                        reason: s.reason.clone(),
                        since_seconds: now.duration_since(s.since).as_secs_f64(),
                        weight: s.weight,
                        backup: s.backup,
                        conns: s.load.load(Ordering::Relaxed),
                        peak: t.peak,
                        maxconn: s.maxconn,
                        conns_total: t.conns,
                        bytes_in: t.bytes_in,
                        bytes_out: t.bytes_out,
                        connect_errors: t.connect_errors,
                        retries: t.retries,
                        check_failures: t.check_failures,
                        state_changes: s.history.changes(),
                        downtime_seconds: s.history.downtime(now).as_secs_f64(),
                        ends: t.ends,
                        connect_ms: Latency::of(&t.timings.connect),
                        duration_ms: Latency::of(&t.timings.duration),
                        connect_ms_window: Latency::of(&t.window.connect),
                        duration_ms_window: Latency::of(&t.window.duration),
                        timings: t.timings,
                        window: t.window,
                    }
                })
                .collect();
            let (mut merged, mut window) = (Timings::default(), Timings::default());
            for s in &servers {
                merged.add(&s.timings);
                window.add(&s.window);
            }
            let (queue, queue_total) = b.stats.queue();
            let servers_up = b
                .servers
                .iter()
                .filter(|s| s.state == ServerState::Up && s.weight > 0)
                .count();
            let sum = |f: fn(&ServerRow) -> u64| servers.iter().map(f).sum::<u64>();
            BackendRow {
                name: b.name.clone(),
                balance: format!("{:?}", b.balance).to_lowercase(),
                state: if servers_up > 0 { "UP" } else { "DOWN" },
                servers_up,
                conns: sum(|s| u64::from(s.conns)),
                conns_total: sum(|s| s.conns_total),
                queue,
                queue_total,
                bytes_in: sum(|s| s.bytes_in),
                bytes_out: sum(|s| s.bytes_out),
                connect_errors: sum(|s| s.connect_errors),
                retries: sum(|s| s.retries),
                connect_ms: Latency::of(&merged.connect),
                duration_ms: Latency::of(&merged.duration),
                connect_ms_window: Latency::of(&window.connect),
                duration_ms_window: Latency::of(&window.duration),
                servers,
            }
        })
        .collect();
    Report {
        process: process_row(sources, now),
        vrrp: vrrp(sources),
        announce: announce(sources),
        frontends,
        backends,
    }
}

fn process_row(sources: &Sources, now: Instant) -> Process {
    let (reloads, failed_reloads, last) = sources.reload_status();
    let resources = process::read();
    Process {
        version: version::VERSION,
        commit: version::COMMIT,
        pid: std::process::id(),
        uptime_seconds: now.duration_since(sources.started).as_secs_f64(),
        workers: sources.workers,
        fd_limit: sources.fd_limit,
        fds_open: resources.open_fds,
        maxconn: sources.shared.maxconn.load(Ordering::Relaxed),
        conns: sources.shared.conns.load(Ordering::Relaxed),
        reloads,
        failed_reloads,
        last_reload: last.map(|r| ReloadRow {
            number: r.number,
            ok: r.ok,
            summary: r.summary,
            seconds_ago: now.duration_since(r.at).as_secs_f64(),
        }),
        conn_fds: sources.shared.fds.used(),
        conn_fds_limit: sources.shared.fds.limit(),
        log_dropped: crate::logging::dropped(),
        thread_faults: Helper::ALL
            .iter()
            .map(|&h| (h.name(), fault::faults(h)))
            .collect(),
        latency_window_seconds: WINDOW_MINUTES * 60,
        resources,
    }
}

fn announce(sources: &Sources) -> Option<AnnounceRow> {
    let st = sources.announce.as_ref()?.read();
    Some(AnnounceRow {
        interface: st.interface,
        vips: st
            .vips
            .into_iter()
            .map(|v| AnnouncedVipRow {
                vip: v.addr.to_string(),
                announced: v.announced,
                reason: v.reason,
            })
            .collect(),
        handoff: st.handoff.map(|h| HandoffRow {
            peers: h.peers.iter().map(|p| p.to_string()).collect(),
            window_seconds_left: h.window_left.as_secs_f64(),
            windows_opened: h.counts.windows_opened,
            notices_sent: h.counts.notices_sent,
            notices_received: h.counts.notices_received,
            notices_dropped: h.counts.notices_dropped,
        }),
    })
}

fn vrrp(sources: &Sources) -> Vec<VrrpRow> {
    let Some(reader) = &sources.vrrp else {
        return Vec::new();
    };
    reader
        .read()
        .into_iter()
        .map(|i| VrrpRow {
            name: i.name,
            vrid: i.vrid,
            state: i.state,
            fault: i.fault,
            priority: i.status.effective_priority,
            configured_priority: i.status.configured_priority,
            master: i
                .status
                .master
                .map(|m| format!("{} (priority {})", m.addr, m.priority)),
            transitions: i.transitions,
            adverts_sent: i.counters.adverts_sent,
            adverts_received: i.counters.adverts_received,
            drops: i
                .counters
                .drops
                .iter()
                .map(|(kind, n)| (kind.label(), n))
                .collect(),
        })
        .collect()
}
