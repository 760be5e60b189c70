//! ringlb: command line, start-up (config, fd limit, listeners, workers) and the control
//! loop that turns signals into worker commands.

mod balance;
mod config;
mod ha;
mod health;
mod listener;
mod sys;
mod table;
mod worker;

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::{select, Receiver, Sender};
use nix::sys::signal::{SigSet, Signal};

use config::Config;
use health::Checker;
use table::ServerRegistry;
use worker::{Command, ListenerSpec, Shared, Worker, WorkerSpec};

/// File descriptors kept out of the connection budget: listeners, rings, eventfds, logs.
const FD_RESERVE: u64 = 128;

#[derive(Parser, Debug)]
#[command(
    name = "ringlb",
    version,
    about = "Layer-4 TCP load balancer on io_uring",
    long_about = "Layer-4 TCP load balancer on io_uring.\n\n\
        Accepts TCP connections on the frontends' bind addresses and forwards each one to a \
        server of the frontend's backend (weighted round robin, retrying the next server when \
        a connect fails). One worker thread per CPU.\n\n\
        Signals: SIGTERM or SIGINT stop accepting and let established connections finish for \
        `grace` (default 10s); a second one exits at once.",
    after_help = "Example:\n  ringlb -c conf/demo.json --check   # validate, like haproxy -c\n  \
        ringlb -c conf/demo.json           # run"
)]
struct Cli {
    /// JSON configuration file
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration and exit: 0 when valid, 1 with every error otherwise
    #[arg(long)]
    check: bool,
    /// Number of worker threads (overrides "workers" in the file)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        println!("{}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    match run(config, cli.workers.map(usize::from)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(config: Config, workers_override: Option<usize>) -> Result<(), String> {
    sys::ignore_sigpipe();
    // Signals are taken by one thread with sigwait; every thread spawned below inherits
    // this mask, so none is ever interrupted by them.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;

    let cpus = usable_cpus();
    let workers = workers_override
        .or(config.workers)
        .unwrap_or(cpus.len().max(1));
    let nofile = sys::raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    // A connection costs two sockets; pipes come from a budget of their own.
    let fd_conns = nofile.saturating_sub(FD_RESERVE + 2 * 1024) / 2;
    let maxconn = config
        .maxconn
        .map_or(fd_conns, |m| (m as u64).min(fd_conns))
        .max(1) as u32;
    eprintln!(
        "ringlb: fd limit {nofile} allows {fd_conns} connections; maxconn {maxconn}, {workers} workers"
    );

    let registry = Arc::new(Mutex::new(ServerRegistry::new(config.clone())));
    let tables = lock(&registry).tables();
    // Servers are checked once before the listeners open, so the first clients find
    // the servers that are up.
    let checker = start_health_checks(&registry)?;
    let shared = Arc::new(Shared {
        conns: AtomicU32::new(0),
        maxconn,
        frontend_conns: config.frontends.iter().map(|_| AtomicU32::new(0)).collect(),
        frontend_maxconn: config
            .frontends
            .iter()
            .map(|f| f.maxconn.unwrap_or(u32::MAX))
            .collect(),
        heartbeats: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        epoch: Instant::now(),
        passive: checker.as_ref().map(Checker::reporter),
    });

    // Every worker gets its own socket for every bind, all in one SO_REUSEPORT group.
    let mut per_worker: Vec<Vec<ListenerSpec>> = (0..workers).map(|_| Vec::new()).collect();
    for (fi, f) in config.frontends.iter().enumerate() {
        for addr in &f.bind {
            for specs in per_worker.iter_mut() {
                let fd = listener::reuseport_listener(*addr)
                    .map_err(|e| format!("cannot listen on {addr} (frontend {}): {e}", f.name))?;
                specs.push(ListenerSpec {
                    fd,
                    addr: *addr,
                    frontend: fi,
                });
            }
        }
    }

    let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<usize>();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Result<(), String>>();
    let mut controls = Vec::with_capacity(workers);
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let wake = Arc::new(eventfd().map_err(|e| format!("eventfd: {e}"))?);
        controls.push((cmd_tx, wake.clone()));
        let spec = WorkerSpec {
            id,
            cpu: cpus.get(id % cpus.len().max(1)).copied(),
            listeners,
            tables: tables.clone(),
            commands: cmd_rx,
            wake,
            shared: shared.clone(),
            max_conns: maxconn as usize,
            workers,
        };
        let exit_tx = exit_tx.clone();
        let ready_tx = ready_tx.clone();
        thread::Builder::new()
            .name(format!("ringlb-w{id}"))
            .spawn(move || {
                // The ring is made on the thread that submits to it (SINGLE_ISSUER).
                match Worker::new(spec) {
                    Ok(w) => {
                        let _ = ready_tx.send(Ok(()));
                        w.run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("worker {id}: {e}")));
                    }
                }
                let _ = exit_tx.send(id);
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
    }
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a worker exited during start-up".into()),
        }
    }
    for f in &config.frontends {
        for addr in &f.bind {
            eprintln!(
                "ringlb: listening on {addr} (frontend {}, {workers} workers)",
                f.name
            );
        }
    }

    // VRRP starts once the workers listen, so a new master can serve at once.
    let vrrp = ha::start(&config.vrrp.instances, shared.clone())?;
    let sig_rx = spawn_signal_thread(signals)?;
    control_loop(&config, &controls, &sig_rx, &exit_rx, workers, vrrp);
    drop(checker);
    Ok(())
}

fn lock(registry: &Mutex<ServerRegistry>) -> std::sync::MutexGuard<'_, ServerRegistry> {
    // The registry stays consistent across a panic elsewhere: every change is one store.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the health checker when any backend has checks, and waits (bounded by the
/// longest check timeout) for every server's first verdict.
fn start_health_checks(registry: &Arc<Mutex<ServerRegistry>>) -> Result<Option<Checker>, String> {
    let (targets, wait) = {
        let reg = lock(registry);
        let c = reg.config();
        let mut wait = Duration::ZERO;
        let targets: Vec<health::Target> = reg
            .targets()
            .iter()
            .filter_map(|&(b, s)| {
                let backend = &c.backends[b];
                let check = backend.health_check.as_ref()?;
                wait = wait.max(check.timeout);
                Some(health::Target::new(
                    &backend.name,
                    &backend.servers[s],
                    check,
                ))
            })
            .collect();
        (targets, wait)
    };
    if targets.is_empty() {
        return Ok(None);
    }
    let reg = registry.clone();
    let checker = Checker::spawn(
        targets,
        Box::new(move |changes| {
            let mut reg = lock(&reg);
            for change in changes {
                reg.set_health(change.target, change.up);
            }
            reg.publish();
        }),
    )
    .map_err(|e| format!("health checker: {e}"))?;
    if !checker.wait_first_round(wait + Duration::from_millis(500)) {
        eprintln!("ringlb: first health checks still running; starting anyway");
    }
    Ok(Some(checker))
}

/// Waits for SIGTERM/SIGINT, then drains: workers stop accepting, get `grace` to finish
/// their connections, then are told to close what is left. A second signal exits at once.
fn control_loop(
    config: &Config,
    controls: &[(Sender<Command>, Arc<OwnedFd>)],
    signals: &Receiver<Signal>,
    exits: &Receiver<usize>,
    workers: usize,
    vrrp: Option<ha::Vrrp>,
) {
    let mut running = workers;
    loop {
        select! {
            recv(signals) -> sig => match sig {
                Ok(Signal::SIGHUP) => {
                    eprintln!("ringlb: SIGHUP: configuration reload is not supported yet; ignored");
                }
                Ok(sig) => {
                    eprintln!("ringlb: {sig}: stopping; established connections get {:?}", config.grace);
                    break;
                }
                Err(_) => return,
            },
            recv(exits) -> _ => {
                running -= 1;
                if running == 0 {
                    eprintln!("ringlb: every worker exited");
                    return;
                }
            }
        }
    }
    // Hand the VIPs over first (priority 0, VIPs removed), then drain.
    if let Some(vrrp) = vrrp {
        vrrp.shutdown();
    }
    broadcast(controls, Command::Stop);
    let deadline = crossbeam_channel::after(config.grace);
    let mut aborted = false;
    while running > 0 {
        select! {
            recv(exits) -> _ => running -= 1,
            recv(signals) -> sig => {
                if !matches!(sig, Ok(Signal::SIGHUP)) {
                    eprintln!("ringlb: second signal: exiting now");
                    std::process::exit(0);
                }
            },
            recv(deadline) -> _ => {
                if !aborted {
                    aborted = true;
                    eprintln!("ringlb: grace period over; closing remaining connections");
                    broadcast(controls, Command::Abort);
                }
            }
        }
    }
    eprintln!("ringlb: stopped");
}

fn broadcast(controls: &[(Sender<Command>, Arc<OwnedFd>)], cmd: Command) {
    for (tx, wake) in controls {
        let _ = tx.send(cmd);
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a u64 to our own eventfd.
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&**wake),
                (&one as *const u64).cast(),
                8,
            );
        }
    }
}

fn spawn_signal_thread(signals: SigSet) -> Result<Receiver<Signal>, String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("ringlb-signals".into())
        .spawn(move || loop {
            match signals.wait() {
                Ok(sig) => {
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        })
        .map_err(|e| format!("cannot start signal thread: {e}"))?;
    Ok(rx)
}

fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by the OwnedFd below.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// CPUs this process may run on, in order.
fn usable_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}
