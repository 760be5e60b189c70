//! The stats listener: the `ringlb-stats` thread serves the HTML page (`/`), the same data
//! as JSON (`/stats.json`), Prometheus metrics (`/metrics`) and admin actions
//! (`POST /admin/server`, only with basic auth configured). It reads the per-worker
//! counters (`counters`) and the registry; no worker ever waits for it. This file owns the
//! socket and the thread; `server` the connections, `http` the requests.

mod admin;
mod auth;
mod html;
mod http;
mod metrics;
mod origin;
mod process;
pub mod report;
mod server;
mod timed_io;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::announce::AnnounceReader;
use crate::config::Stats;
use crate::control::{LastReload, ReloadStatus};
use crate::fault::{self, Helper};
use crate::ha::StatusReader;
use crate::logging::event;
use crate::registry::ServerRegistry;
use crate::shared::Shared;

/// The report `/stats.json` shows, as of now (without connection rates, which only the
/// stats thread samples).
pub fn report_now(sources: &Sources) -> report::Report {
    report::collect(sources, &report::Rates::default())
}

/// Everything the stats thread reads.
pub struct Sources {
    pub registry: Arc<Mutex<ServerRegistry>>,
    pub shared: Arc<Shared>,
    pub reloads: Arc<Mutex<ReloadStatus>>,
    pub vrrp: Option<StatusReader>,
    pub announce: Option<AnnounceReader>,
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

/// Why the stats listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} (stats): {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("stats listener on {addr}: TCP_NODELAY: {source}")]
    NoDelay { addr: SocketAddr, source: io::Error },
    #[error("cannot start the stats thread: {0}")]
    Thread(io::Error),
}

/// The bound stats socket, made before the workers start so that a bad address stops
/// ringlb at once.
pub struct StatsListener {
    listener: TcpListener,
    settings: Stats,
}

impl StatsListener {
    pub fn bind(settings: &Stats) -> Result<StatsListener, StartError> {
        let addr = settings.bind;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        // Accepted sockets inherit TCP_NODELAY: a response whose head and body leave in
        // two writes must not wait for the client's delayed ACK (40 ms a poll).
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .map_err(|source| StartError::NoDelay { addr, source })?;
        Ok(StatsListener {
            listener,
            settings: settings.clone(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.settings.bind
    }

    /// Starts the `ringlb-stats` thread.
    pub fn serve(self, sources: Arc<Sources>) -> Result<(), StartError> {
        thread::Builder::new()
            .name("ringlb-stats".into())
            .spawn(move || {
                let state = (self.listener, self.settings, sources);
                // A panic restarts the listener (see `fault`); `run` itself returns only
                // when it cannot start (no runtime, no fd to clone the listener), and is
                // tried again a little later. Forwarding goes on meanwhile.
                fault::supervise(Helper::Stats, state, |(listener, settings, sources)| {
                    let mut wait = Duration::from_millis(100);
                    loop {
                        let Err(e) = server::run(listener, settings, sources);
                        event!(warning: "stats: {e}; trying again in {wait:?}");
                        thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                })
            })
            .map_err(StartError::Thread)?;
        Ok(())
    }
}
