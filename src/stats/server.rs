//! The body of the `ringlb-stats` thread: hyper (HTTP/1 only) on a current-thread tokio
//! runtime, so any number of slow clients cost memory, never threads, and every client is
//! bounded: connections, header size and count, body size, and read, idle and write times.
//! Accept errors (fd exhaustion) back off and never end the loop. Everything the body
//! builds is rebuilt by calling it again with the same listener.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::auth::FailedLogins;
use super::http;
use super::report::{self, Rates, Report};
use super::timed_io::{Cycle, TimedIo, Timeouts};
use super::Sources;
use crate::config::Stats;
use crate::logging::event;
use crate::registry;

/// Connections served at once; one more is accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes of a request head (request line and headers); past it, 431 and close.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Header fields in a request; past it, 431 and close.
pub const MAX_HEADERS: usize = 32;
/// hyper's read buffer per connection (it reads a request head and small bodies).
const READ_BUFFER: usize = 2 * MAX_HEADER_BYTES;
/// How long a request head may take from its first byte (from the accept for the first
/// request), a kept-alive connection may rest, and a stalled write may wait.
pub const TIMEOUTS: Timeouts = Timeouts {
    header: Duration::from_secs(5),
    idle: Duration::from_secs(30),
    write: Duration::from_secs(10),
};
/// How long an admin request's body may take once its head is read.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Back-off after an accept error such as EMFILE, doubled up to the maximum.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accept errors are logged at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// How often connection rates are sampled.
const RATE_PERIOD: Duration = Duration::from_secs(1);

/// Why the stats thread's body returned: it could not start. Serving never fails.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the stats runtime: {0}")]
    Runtime(io::Error),
    #[error("cannot use the stats listener: {0}")]
    Listener(io::Error),
}

/// Serves the stats listener until the process ends. Takes the listener by reference so
/// that a caller may run it again after a fault; everything else is built here.
pub fn run(
    listener: &std::net::TcpListener,
    startup: &Stats,
    sources: &Arc<Sources>,
) -> Result<Infallible, ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = listener.try_clone().map_err(ServeError::Listener)?;
    listener
        .set_nonblocking(true)
        .map_err(ServeError::Listener)?;
    let state = Rc::new(StatsState {
        sources: sources.clone(),
        startup: startup.clone(),
        rates: RefCell::default(),
        failed_logins: RefCell::default(),
    });
    let tasks = tokio::task::LocalSet::new();
    tasks.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Listener)?;
        tokio::task::spawn_local(sample_rates(state.clone()));
        Ok(accept_loop(&listener, &state).await)
    })
}

/// What the stats thread keeps between requests; nothing in it outlives a restart.
pub struct StatsState {
    pub sources: Arc<Sources>,
    /// The settings the listener was started with; a reload that moves the bind applies
    /// only with a restart, and until then none of its stats settings apply.
    startup: Stats,
    // Borrowed only between awaits: the thread has no other task running meanwhile.
    rates: RefCell<Rates>,
    failed_logins: RefCell<FailedLogins>,
}

impl StatsState {
    /// The reloaded settings (auth, hosts, refresh) when the bind is unchanged, else the
    /// startup's.
    pub fn settings(&self) -> Stats {
        let reg = registry::lock(&self.sources.registry);
        match &reg.config().stats {
            Some(s) if s.bind == self.startup.bind => s.clone(),
            _ => self.startup.clone(),
        }
    }

    pub fn report(&self) -> Report {
        report::collect(&self.sources, &self.rates.borrow())
    }

    pub fn failed_logins(&self) -> Ref<'_, FailedLogins> {
        self.failed_logins.borrow()
    }

    pub fn failed_logins_mut(&self) -> RefMut<'_, FailedLogins> {
        self.failed_logins.borrow_mut()
    }
}

async fn sample_rates(state: Rc<StatsState>) {
    let mut tick = tokio::time::interval(RATE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let view = registry::lock(&state.sources.registry).view();
        state.rates.borrow_mut().sample(&view);
    }
}

async fn accept_loop(listener: &tokio::net::TcpListener, state: &Rc<StatsState>) -> Infallible {
    let http = http_builder();
    let open = Rc::new(Cell::new(0usize));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut logged: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                if open.get() >= MAX_CONNECTIONS {
                    // Closed at once: a client that cannot be served learns it now.
                    drop(stream);
                    continue;
                }
                let slot = Slot::take(&open);
                let conn = serve(stream, peer, state.clone(), http.clone());
                tokio::task::spawn_local(async move {
                    conn.await;
                    drop(slot);
                });
            }
            // Errors of one connection that went away before it was accepted.
            Err(e) if per_connection(&e) => {}
            Err(e) => {
                if logged.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL) {
                    event!(warning: "stats: accept: {e}; backing off {backoff:?}");
                    logged = Some(Instant::now());
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

fn http_builder() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.max_buf_size(READ_BUFFER)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        // `TimedIo` enforces the header, idle and write timeouts (see there why).
        .header_read_timeout(None)
        .keep_alive(true);
    http
}

/// One open connection, counted while its task lives.
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(open: &Rc<Cell<usize>>) -> Slot {
        open.set(open.get() + 1);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Rc<StatsState>,
    http: http1::Builder,
) {
    let cycle = Cycle::new(TIMEOUTS);
    let io = TokioIo::new(TimedIo::new(stream, cycle.clone()));
    let service = service_fn(move |request| {
        let (state, cycle) = (state.clone(), cycle.clone());
        async move {
            cycle.request_started();
            let reply = http::answer(request, peer, &state).await;
            Ok::<_, Infallible>(reply.into_response(cycle))
        }
    });
    // Errors here are the client's doing (timeouts, resets, malformed requests, which
    // hyper has answered with 400 or 431): nothing to log.
    let _ = http.serve_connection(io, service).await;
}
