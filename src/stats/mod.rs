//! The stats listener: the `ringlb-stats` thread serves the HTML page (`/`), the same data
//! as JSON (`/stats.json`), Prometheus metrics (`/metrics`) and admin actions
//! (`POST /admin/server`), with basic auth when configured. It reads the per-worker
//! counters (`counters`) and the registry; no worker ever waits for it.

mod admin;
mod counters;
mod html;
mod http;
mod metrics;
mod report;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Stats;
use crate::control;
use crate::ha::StatusReader;
use crate::logging::event;
use crate::registry::ServerRegistry;
use crate::worker::Shared;
pub use counters::{raise_peak, BackendStats, FrontendStats, ServerCell, ServerStats};
use report::Rates;

/// How often connection rates are sampled.
const RATE_PERIOD: Duration = Duration::from_secs(1);

/// Reloads so far and the last one's result, kept by the control thread.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    pub reloads: u64,
    pub failed: u64,
    pub last: Option<LastReload>,
}

#[derive(Debug, Clone)]
pub struct LastReload {
    /// The reload's number (from 1).
    pub number: u64,
    pub ok: bool,
    /// What changed, or why it failed.
    pub summary: String,
    pub at: Instant,
}

impl ReloadStatus {
    pub fn record(&mut self, number: u64, failed: u64, ok: bool, summary: String) {
        self.reloads = number;
        self.failed = failed;
        self.last = Some(LastReload {
            number,
            ok,
            summary,
            at: Instant::now(),
        });
    }
}

/// Everything the stats thread reads.
pub struct Sources {
    pub registry: Arc<Mutex<ServerRegistry>>,
    pub shared: Arc<Shared>,
    pub reloads: Arc<Mutex<ReloadStatus>>,
    pub vrrp: Option<StatusReader>,
    pub workers: usize,
    /// The soft RLIMIT_NOFILE after start-up raised it.
    pub fd_limit: u64,
    pub started: Instant,
}

impl Sources {
    fn reload_status(&self) -> (u64, u64, Option<LastReload>) {
        let r = self.reloads.lock().unwrap_or_else(PoisonError::into_inner);
        (r.reloads, r.failed, r.last.clone())
    }
}

/// The bound stats socket, made before the workers start so that a bad address stops
/// ringlb at once.
pub struct StatsListener {
    listener: TcpListener,
    settings: Stats,
}

impl StatsListener {
    pub fn bind(settings: &Stats) -> Result<StatsListener, String> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| format!("cannot listen on {} (stats): {e}", settings.bind))?;
        // Accepted sockets inherit TCP_NODELAY. tiny_http writes a response's head and body
        // separately; with Nagle the body waits for the client's delayed ACK (40 ms a poll).
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .map_err(|e| format!("stats listener on {}: TCP_NODELAY: {e}", settings.bind))?;
        Ok(StatsListener {
            listener,
            settings: settings.clone(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.settings.bind
    }

    /// Starts the `ringlb-stats` thread.
    pub fn serve(self, sources: Sources) -> Result<(), String> {
        let bind = self.settings.bind;
        let server = tiny_http::Server::from_listener(self.listener, None)
            .map_err(|e| format!("stats listener on {bind}: {e}"))?;
        let mut thread = StatsThread {
            server,
            startup: self.settings,
            sources,
            rates: Rates::default(),
            last_error: None,
        };
        thread::Builder::new()
            .name("ringlb-stats".into())
            .spawn(move || thread.run())
            .map_err(|e| format!("cannot start the stats thread: {e}"))?;
        Ok(())
    }
}

struct StatsThread {
    server: tiny_http::Server,
    /// The settings the listener was started with; a reload that moves the bind applies
    /// only with a restart, and until then none of its stats settings apply.
    startup: Stats,
    sources: Sources,
    rates: Rates,
    last_error: Option<Instant>,
}

impl StatsThread {
    fn run(&mut self) {
        let mut next_sample = Instant::now();
        loop {
            match self.server.recv_timeout(RATE_PERIOD) {
                Ok(Some(request)) => {
                    let settings = self.settings();
                    http::handle(request, &settings, &self.sources, &self.rates);
                }
                Ok(None) => {}
                Err(e) => {
                    // Accept errors (fd exhaustion) must not spin or flood the log.
                    if self
                        .last_error
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                    {
                        event!(warning: "stats: {e}");
                        self.last_error = Some(Instant::now());
                    }
                    thread::sleep(Duration::from_millis(100));
                }
            }
            if Instant::now() >= next_sample {
                next_sample = Instant::now() + RATE_PERIOD;
                let view = control::lock(&self.sources.registry).view();
                self.rates.sample(&view);
            }
        }
    }

    /// The reloaded settings (auth, refresh) when the bind is unchanged, else the startup's.
    fn settings(&self) -> Stats {
        let reg = control::lock(&self.sources.registry);
        match &reg.config().stats {
            Some(s) if s.bind == self.startup.bind => s.clone(),
            _ => self.startup.clone(),
        }
    }
}
