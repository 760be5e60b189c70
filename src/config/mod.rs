//! The JSON configuration file: its serde shape, the value types that cannot hold bad
//! input (addresses, durations, forwarding modes), and the semantic checks that turn a
//! parsed file into a `Config` the rest of ringlb can trust.
//!
//! Every error names the file, the JSON path, the line and the column; semantic checks
//! report every problem at once, as `haproxy -c` does.

mod announce;
mod health;
mod host;
mod host_check;
mod inspect;
mod log;
mod prime;
mod span;
mod stats;
mod values;
mod vrrp;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use self::vrrp::{InstanceHooks, TrackAction, TrackFile, TrackScript, Vip, Vrrp, VrrpInstance};
pub use announce::{Announce, AnnouncedVip, Handoff, MAX_HANDOFF_WINDOW};
pub use health::{CheckKind, Expect, HealthCheck};
pub use host::{Host, HostPort};
pub use host_check::host_problems;
pub use inspect::{Inspect, Net, ProxyTlvs, SendProxy};
use span::SpanIndex;
pub use stats::{Stats, StatsAuth};
pub use values::{Addr, Forward, HumanDuration};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub workers: Option<usize>,
    /// Pin each worker to a CPU; `None`: pin when there is one worker per usable CPU.
    pub pin_workers: Option<bool>,
    pub maxconn: Option<u32>,
    pub grace: Duration,
    /// A worker whose loop has not turned for this long leaves the accept path: its
    /// listening sockets are shut, their queued connections move to the other workers.
    pub worker_stall: Duration,
    /// After a reload removes a server, its established connections may run this long;
    /// `None`: until they finish.
    pub drain_timeout: Option<Duration>,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    /// Virtual router instances (empty without a `vrrp` section).
    pub vrrp: Vrrp,
    /// VIPs announced to an ECMP router while this box can serve them.
    pub announce: Option<Announce>,
    /// The stats page's listener, when configured.
    pub stats: Option<Stats>,
    /// Where the log goes and its format.
    pub log: crate::logging::Target,
    /// The control socket `ringlb ctl` talks to, when the config names one (else
    /// `DEFAULT_CONTROL_SOCKET`, tried without failing the start).
    pub control_socket: Option<std::path::PathBuf>,
    /// Where admin states and weights are kept across restarts (HAProxy's
    /// `server-state-file`), when set.
    pub state_file: Option<std::path::PathBuf>,
    /// What this file needs of the host it runs on, each with where it is written; see
    /// `host_problems`.
    host_needs: Vec<host_check::Need>,
    /// Valid but probably not what was meant (tracking that cannot move the VIP): shown by
    /// `--check` and logged at start as warnings.
    advice: Vec<ConfigError>,
}

impl Config {
    /// Valid settings that probably do not do what was meant, as warnings of `file`.
    pub fn advice(&self, file: &str) -> Option<ConfigErrors> {
        (!self.advice.is_empty()).then(|| ConfigErrors {
            file: file.to_string(),
            errors: self.advice.clone(),
        })
    }
}

/// Where the control socket is when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/ringlb/ringlb.sock";

#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    pub name: String,
    pub bind: Vec<SocketAddr>,
    /// Index into `Config::backends`; with `routes`, the backend of unrouted connections
    /// (`None`: they are closed).
    pub backend: Option<usize>,
    pub maxconn: Option<u32>,
    pub forward: Forward,
    pub log: bool,
    pub inspect: Inspect,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub name: String,
    pub balance: Balance,
    pub retries: u32,
    pub timeouts: Timeouts,
    pub health_check: Option<HealthCheck>,
    /// What a client gets when no server can take it.
    pub no_server: NoServer,
    /// Maglev lookup table size for `balance: source` (a prime).
    pub hash_table_size: u32,
    /// TLVs of the PROXY v2 headers sent to this backend's servers.
    pub proxy_tlvs: ProxyTlvs,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    Roundrobin,
    Leastconn,
    Source,
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoServer {
    /// Close with a RST, so the client fails fast.
    #[default]
    Reset,
    /// Close with a FIN.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub client: Duration,
    pub server: Duration,
    /// How long a connection may wait for a server below its `maxconn`.
    pub queue: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    pub maxconn: Option<u32>,
    /// Where health checks go, when not to `addr` (or `addr` with the check's `port`).
    pub check_addr: Option<SocketAddr>,
    /// The PROXY header this server gets first (its own setting, else its backend's).
    pub send_proxy: Option<SendProxy>,
}

pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// The default of `worker_stall`: two idle ticks of a worker, so that a worker that is
/// only idle is never taken for stalled, and short enough that connections queued on a
/// stalled worker's listener move on well within a client's patience.
pub const DEFAULT_WORKER_STALL: Duration = Duration::from_millis(200);
pub const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    client: Duration::from_secs(50),
    server: Duration::from_secs(50),
    queue: Duration::from_secs(5),
};
pub const DEFAULT_HASH_TABLE_SIZE: u32 = crate::balance::DEFAULT_TABLE_SIZE as u32;
pub use crate::balance::MAX_WEIGHT;

/// The most worker threads. Each has fixed costs whatever its load: 16 idle pipes (32 fds,
/// and 64 workers × 16 pipes is the 1024-pipe budget of fs.pipe-user-pages-soft, past which
/// new pipes shrink to one page), its ring, eventfd and one listener per bind, a thread and
/// 64 MiB of copy buffers. 64 workers take about 2,200 fds of the 20,000 the hard limit
/// allows, and more workers than cores only add context switches.
pub const MAX_WORKERS: usize = 64;
/// The most extra connect attempts per client. Every attempt is a connect that may wait a
/// whole connect timeout; HAProxy's default is 3, and 32 already revisits servers of any
/// usual backend.
pub const MAX_RETRIES: u32 = 32;
/// The most servers in one backend. Selection structures are rebuilt for every new
/// snapshot (each health change), in O(total weight × servers) for the rotations and
/// O(table size × servers) at worst for Maglev; see README "Limits of config values".
pub const MAX_SERVERS: usize = 256;
/// Bounds of `hash_table_size`: a prime of at least 101 (the paper's small table) and at most
/// `balance::MAX_TABLE_SIZE`.
pub const MIN_HASH_TABLE_SIZE: u32 = 101;
pub const MAX_HASH_TABLE_SIZE: u32 = crate::balance::MAX_TABLE_SIZE as u32;
/// The most Maglev slots of all `source` backends together (four tables of the largest
/// size, forty of the default). Each backend holds up to two tables of 4-byte slots, all
/// rebuilt for every new snapshot: this caps them at 21 MB and about 0.2 s of building.
pub const MAX_HASH_SLOTS: u64 = 4 * crate::balance::MAX_TABLE_SIZE as u64;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value, e.g. `backends[0].servers[1].addr`; empty for the
    /// document itself.
    pub path: String,
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Everything wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// The same problems as warnings, `FILE: warning: path: message (line L, column C)`: for
    /// `--check`, which may run on another host than the one the file is for.
    pub fn warnings(&self) -> Warnings<'_> {
        Warnings(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, label: &str) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {label}", self.file)?;
            if !e.path.is_empty() {
                write!(f, "{}: ", e.path)?;
            }
            write!(f, "{}", e.message)?;
            if e.line > 0 {
                write!(f, " (line {}, column {})", e.line, e.column)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, "")
    }
}

/// Problems shown as warnings; see `ConfigErrors::warnings`.
pub struct Warnings<'a>(&'a ConfigErrors);

impl fmt::Display for Warnings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, "warning: ")
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: file.clone(),
        errors: vec![ConfigError {
            path: String::new(),
            message: format!("cannot read: {e}"),
            line: 0,
            column: 0,
        }],
    })?;
    parse(&file, &text)
}

/// Parses and validates configuration text; `file` only labels the errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        file: file.to_string(),
        errors,
    };
    let json_error = |path: String, e: serde_json::Error| ConfigError {
        // serde_path_to_error writes `?` for a position it could not name (a syntax error
        // between keys); the enclosing value is the useful part.
        path: match path.trim_end_matches(".?").trim_end_matches('?') {
            "." => String::new(),
            p => p.to_string(),
        },
        message: strip_position(&e),
        line: e.line(),
        column: e.column(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: RawConfig = match serde_path_to_error::deserialize(&mut de) {
        Ok(raw) => raw,
        Err(e) => {
            let path = e.path().to_string();
            return Err(fail(vec![json_error(path, e.into_inner())]));
        }
    };
    if let Err(e) = de.end() {
        return Err(fail(vec![json_error(String::new(), e)]));
    }
    validate(raw, &SpanIndex::new(text)).map_err(fail)
}

/// serde_json appends " at line L column C" to its messages; we print positions our way.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    msg.strip_suffix(&suffix).unwrap_or(&msg).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    workers: Option<usize>,
    pin_workers: Option<bool>,
    maxconn: Option<u32>,
    grace: Option<HumanDuration>,
    worker_stall: Option<HumanDuration>,
    drain_timeout: Option<HumanDuration>,
    frontends: Vec<RawFrontend>,
    backends: Vec<RawBackend>,
    vrrp: Option<self::vrrp::RawVrrp>,
    announce: Option<announce::RawAnnounce>,
    stats: Option<stats::RawStats>,
    log: Option<log::RawLog>,
    control: Option<RawControl>,
    state_file: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: std::path::PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    name: String,
    bind: Vec<Addr>,
    backend: Option<String>,
    maxconn: Option<u32>,
    forward: Option<Forward>,
    log: Option<bool>,
    accept_proxy: Option<bool>,
    proxy_trusted: Option<Vec<Net>>,
    routes: Option<Vec<inspect::RawRoute>>,
    inspect_timeout: Option<HumanDuration>,
    inspect_max: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    name: String,
    balance: Option<Balance>,
    retries: Option<u32>,
    timeouts: Option<RawTimeouts>,
    health_check: Option<health::RawHealthCheck>,
    no_server: Option<NoServer>,
    hash_table_size: Option<u32>,
    send_proxy: Option<SendProxy>,
    proxy_tlvs: Option<Vec<inspect::RawTlv>>,
    servers: Vec<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect: Option<HumanDuration>,
    client: Option<HumanDuration>,
    server: Option<HumanDuration>,
    queue: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    addr: Addr,
    weight: Option<u32>,
    backup: Option<bool>,
    maxconn: Option<u32>,
    check_addr: Option<Addr>,
    send_proxy: Option<SendProxy>,
}

/// Collects semantic errors with positions.
struct Problems<'a> {
    spans: &'a SpanIndex,
    errors: Vec<ConfigError>,
}

impl Problems<'_> {
    fn add(&mut self, path: String, message: String) {
        let (line, column) = self.spans.locate(&path).unwrap_or((0, 0));
        self.errors.push(ConfigError {
            path,
            message,
            line,
            column,
        });
    }
}

fn validate(raw: RawConfig, spans: &SpanIndex) -> Result<Config, Vec<ConfigError>> {
    let mut p = Problems {
        spans,
        errors: Vec::new(),
    };

    match raw.workers {
        Some(0) => p.add("workers".into(), "must be at least 1".into()),
        Some(n) if n > MAX_WORKERS => p.add(
            "workers".into(),
            format!("{n} is out of range (1 to {MAX_WORKERS})"),
        ),
        _ => {}
    }
    if raw.maxconn == Some(0) {
        p.add("maxconn".into(), "must be at least 1".into());
    }
    if raw.frontends.is_empty() {
        p.add(
            "frontends".into(),
            "at least one frontend is required".into(),
        );
    }

    let mut backend_index: HashMap<&str, usize> = HashMap::new();
    for (i, b) in raw.backends.iter().enumerate() {
        if let Some(first) = backend_index.get(b.name.as_str()) {
            p.add(
                format!("backends[{i}].name"),
                format!(
                    "duplicate backend name {:?} (first at backends[{first}])",
                    b.name
                ),
            );
        } else {
            backend_index.insert(&b.name, i);
        }
    }

    let mut backends = Vec::with_capacity(raw.backends.len());
    for (i, b) in raw.backends.iter().enumerate() {
        backends.push(validate_backend(i, b, &mut p));
    }
    hash_slots_budget(&backends, &mut p);

    let mut bound: HashMap<SocketAddr, (usize, usize)> = HashMap::new();
    let mut frontend_names: HashMap<&str, usize> = HashMap::new();
    let mut frontends = Vec::with_capacity(raw.frontends.len());
    for (i, f) in raw.frontends.iter().enumerate() {
        let at = format!("frontends[{i}]");
        if let Some(first) = frontend_names.get(f.name.as_str()) {
            p.add(
                format!("{at}.name"),
                format!(
                    "duplicate frontend name {:?} (first at frontends[{first}])",
                    f.name
                ),
            );
        } else {
            frontend_names.insert(&f.name, i);
        }
        if f.bind.is_empty() {
            p.add(
                format!("{at}.bind"),
                "at least one address is required".into(),
            );
        }
        for (j, addr) in f.bind.iter().enumerate() {
            if addr.0.port() == 0 {
                p.add(format!("{at}.bind[{j}]"), "port 0 is not allowed".into());
            } else if let Some(&(fi, fj)) = bound.get(&addr.0) {
                p.add(
                    format!("{at}.bind[{j}]"),
                    format!("{} is already bound at frontends[{fi}].bind[{fj}]", addr.0),
                );
            } else {
                bound.insert(addr.0, (i, j));
            }
        }
        if f.maxconn == Some(0) {
            p.add(format!("{at}.maxconn"), "must be at least 1".into());
        }
        let backend = match &f.backend {
            Some(name) => match backend_index.get(name.as_str()) {
                Some(&b) => Some(b),
                None => {
                    p.add(format!("{at}.backend"), format!("unknown backend {name:?}"));
                    Some(0)
                }
            },
            None => {
                if f.routes.is_none() {
                    p.add(
                        at.clone(),
                        "needs a \"backend\" (or \"routes\" by TLS server name)".into(),
                    );
                }
                None
            }
        };
        let inspect = inspect::validate(
            inspect::RawInspect {
                accept_proxy: f.accept_proxy,
                proxy_trusted: &f.proxy_trusted,
                routes: &f.routes,
                timeout: f.inspect_timeout,
                max: f.inspect_max,
            },
            &at,
            &backend_index,
            &mut p,
        );
        frontends.push(Frontend {
            name: f.name.clone(),
            bind: f.bind.iter().map(|a| a.0).collect(),
            backend,
            maxconn: f.maxconn,
            forward: f.forward.unwrap_or_default(),
            log: f.log.unwrap_or(true),
            inspect,
        });
    }

    let vrrp = raw
        .vrrp
        .as_ref()
        .map(|v| self::vrrp::validate(v, &mut p))
        .unwrap_or_default();
    let announce = raw
        .announce
        .as_ref()
        .map(|a| announce::validate(a, &frontends, &mut p));
    let host_needs = host_check::needs(&vrrp, announce.as_ref(), spans);
    let empty = backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.servers.is_empty())
        .map(|(i, b)| {
            (
                format!("backends[{i}].servers"),
                format!(
                    "backend {:?} has no servers: its connections are closed at once, as \
                     HAProxy's \"no server available\" (add servers and reload)",
                    b.name
                ),
            )
        });
    let advice = empty
        .chain(vrrp.advice())
        .map(|(path, message)| {
            let (line, column) = spans.locate(&path).unwrap_or((0, 0));
            ConfigError {
                path,
                message,
                line,
                column,
            }
        })
        .collect();
    let stats = raw.stats.as_ref().map(|s| stats::validate(s, &mut p));
    let log = raw
        .log
        .as_ref()
        .map_or(crate::logging::Target::STDERR, |l| log::validate(l, &mut p));
    let control_socket = raw.control.as_ref().map(|c| c.socket.clone());
    // sun_path holds 107 bytes and a NUL.
    if let Some(path) = control_socket
        .as_ref()
        .filter(|p| p.as_os_str().len() > 107 || !p.is_absolute())
    {
        p.add(
            "control.socket".into(),
            format!(
                "{} must be an absolute path of at most 107 bytes",
                path.display()
            ),
        );
    }
    let worker_stall = raw.worker_stall.map_or(DEFAULT_WORKER_STALL, |d| d.0);
    if worker_stall <= vrrp::WORKER_TICK {
        p.add(
            "worker_stall".into(),
            format!(
                "must be longer than the workers' {}ms tick",
                vrrp::WORKER_TICK.as_millis()
            ),
        );
    }
    if let Some(f) = raw.state_file.as_ref().filter(|f| !f.is_absolute()) {
        p.add(
            "state_file".into(),
            format!("{} must be an absolute path", f.display()),
        );
    }

    if !p.errors.is_empty() {
        // Report problems in document order, whatever order the checks ran in.
        p.errors.sort_by_key(|e| (e.line, e.column));
        return Err(p.errors);
    }
    Ok(Config {
        workers: raw.workers,
        pin_workers: raw.pin_workers,
        maxconn: raw.maxconn,
        grace: raw.grace.map_or(DEFAULT_GRACE, |d| d.0),
        worker_stall,
        drain_timeout: raw.drain_timeout.map(|d| d.0),
        frontends,
        backends,
        vrrp,
        announce,
        stats,
        log,
        control_socket,
        state_file: raw.state_file,
        host_needs,
        advice,
    })
}

fn validate_backend(i: usize, b: &RawBackend, p: &mut Problems<'_>) -> Backend {
    let at = format!("backends[{i}]");
    if b.servers.len() > MAX_SERVERS {
        p.add(
            format!("{at}.servers"),
            format!(
                "{} servers is over the maximum of {MAX_SERVERS} per backend",
                b.servers.len()
            ),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut servers = Vec::with_capacity(b.servers.len());
    for (j, s) in b.servers.iter().enumerate() {
        let sat = format!("{at}.servers[{j}]");
        if let Some(first) = names.get(s.name.as_str()) {
            p.add(
                format!("{sat}.name"),
                format!(
                    "duplicate server name {:?} (first at servers[{first}])",
                    s.name
                ),
            );
        } else {
            names.insert(&s.name, j);
        }
        if s.addr.0.port() == 0 {
            p.add(format!("{sat}.addr"), "port 0 is not allowed".into());
        }
        let weight = s.weight.unwrap_or(1);
        if weight > MAX_WEIGHT {
            p.add(
                format!("{sat}.weight"),
                format!("{weight} is out of range (0 to {MAX_WEIGHT})"),
            );
        }
        if s.maxconn == Some(0) {
            p.add(format!("{sat}.maxconn"), "must be at least 1".into());
        }
        if s.check_addr.is_some_and(|a| a.0.port() == 0) {
            p.add(format!("{sat}.check_addr"), "port 0 is not allowed".into());
        }
        servers.push(Server {
            name: s.name.clone(),
            addr: s.addr.0,
            weight,
            backup: s.backup.unwrap_or(false),
            maxconn: s.maxconn,
            check_addr: s.check_addr.map(|a| a.0),
            send_proxy: s.send_proxy.or(b.send_proxy),
        });
    }
    if !servers.is_empty() && servers.iter().all(|s| s.weight == 0) {
        p.add(
            format!("{at}.servers"),
            format!("every server of backend {:?} has weight 0", b.name),
        );
    }
    let mut timeouts = DEFAULT_TIMEOUTS;
    // As in HAProxy, the queue timeout defaults to the connect timeout.
    if let Some(c) = b.timeouts.as_ref().and_then(|t| t.connect) {
        timeouts.queue = c.0;
    }
    if let Some(t) = &b.timeouts {
        for (name, value, slot) in [
            ("connect", &t.connect, &mut timeouts.connect),
            ("client", &t.client, &mut timeouts.client),
            ("server", &t.server, &mut timeouts.server),
            ("queue", &t.queue, &mut timeouts.queue),
        ] {
            if let Some(d) = value {
                if d.0.is_zero() {
                    p.add(
                        format!("{at}.timeouts.{name}"),
                        "must be greater than zero".into(),
                    );
                }
                *slot = d.0;
            }
        }
    }
    let retries = b.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        p.add(
            format!("{at}.retries"),
            format!("{retries} is out of range (0 to {MAX_RETRIES})"),
        );
    }
    let hash_table_size = b.hash_table_size.unwrap_or(DEFAULT_HASH_TABLE_SIZE);
    // The range first: it keeps the primality test, and any table built, small.
    if !(MIN_HASH_TABLE_SIZE..=MAX_HASH_TABLE_SIZE).contains(&hash_table_size) {
        p.add(
            format!("{at}.hash_table_size"),
            format!(
                "{hash_table_size} is out of range (a prime from {MIN_HASH_TABLE_SIZE} to \
                 {MAX_HASH_TABLE_SIZE})"
            ),
        );
    } else if !prime::is_prime(u64::from(hash_table_size)) {
        p.add(
            format!("{at}.hash_table_size"),
            format!("{hash_table_size} is not a prime (e.g. {DEFAULT_HASH_TABLE_SIZE})"),
        );
    }
    let proxy_tlvs = inspect::tlvs(&b.proxy_tlvs);
    if b.proxy_tlvs.is_some() && !servers.iter().any(|s| s.send_proxy == Some(SendProxy::V2)) {
        p.add(
            format!("{at}.proxy_tlvs"),
            "needs \"send_proxy\": \"v2\" (TLVs exist only in PROXY v2)".into(),
        );
    }
    let health_check = b
        .health_check
        .as_ref()
        .map(|h| health::validate(h, &format!("{at}.health_check"), p));
    Backend {
        name: b.name.clone(),
        balance: b.balance.unwrap_or(Balance::Roundrobin),
        retries,
        timeouts,
        health_check,
        no_server: b.no_server.unwrap_or_default(),
        hash_table_size,
        proxy_tlvs,
        servers,
    }
}

/// Reports the `source` backend whose Maglev tables take the slots of all of them past
/// `MAX_HASH_SLOTS`.
fn hash_slots_budget(backends: &[Backend], p: &mut Problems<'_>) {
    let mut total: u64 = 0;
    for (i, b) in backends.iter().enumerate() {
        // An out-of-range size has its own error already.
        if b.balance != Balance::Source || b.hash_table_size > MAX_HASH_TABLE_SIZE {
            continue;
        }
        total += u64::from(b.hash_table_size);
        if total > MAX_HASH_SLOTS {
            p.add(
                format!("backends[{i}].hash_table_size"),
                format!(
                    "the \"source\" backends' hash tables reach {total} slots here, over the \
                     limit of {MAX_HASH_SLOTS} for all of them together"
                ),
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests;
