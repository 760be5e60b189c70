//! ringlb: command line, start-up (config, fd limit, listeners, workers) and the control
//! loop that turns signals into worker commands.

mod announce;
mod beat;
mod control;
mod counters;
mod ctl;
mod fault;
mod ha;
mod health;
mod limits;
mod listener;
mod notify;
mod registry;
mod shared;
mod stats;
mod supervise;
mod sys;
mod table;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod version;
mod watchdog;
mod worker;

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::Receiver;
use nix::sys::signal::{SigSet, Signal};
// The library's modules, where the binary's own modules find them (`crate::config`).
use ringlb::{balance, config, import, logging, proxy, tls};

use config::Config;
use control::{Control, WorkerHandle};
use limits::FdPlan;
use logging::event;
use registry::ServerRegistry;
use shared::{FdBudget, Shared};
use worker::{ListenerSpec, Worker, WorkerExit, WorkerSpec};

#[derive(Parser, Debug)]
#[command(
    name = "ringlb",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    about = "Layer-4 TCP load balancer on io_uring, with its own VRRP",
    long_about = "Layer-4 TCP load balancer on io_uring, with its own VRRP.\n\n\
        Accepts TCP connections on the frontends' bind addresses and forwards each one to a \
        server of the frontend's backend, picked by the backend's algorithm (roundrobin, \
        leastconn, source, random), retrying another server when a connect fails. Health \
        checks, PROXY protocol, TLS routing by server name, a stats page and Prometheus \
        metrics, and VRRP for a floating address shared by two balancers. One worker \
        thread per CPU.\n\n\
        Signals: SIGHUP or SIGUSR2 reload the config file in place (an invalid one changes \
        nothing); SIGTERM, SIGINT or SIGUSR1 stop accepting and let established connections \
        finish for `grace` (default 10s); a second one exits at once.",
    after_help = "Examples:\n  ringlb -c conf/demo.json --check     # validate, like haproxy -c\n  \
        ringlb -c conf/demo.json             # run\n  \
        ringlb ctl show servers              # ask a running ringlb (control socket)\n  \
        ringlb ctl set server webfarm/web1 state drain\n  \
        ringlb ctl reload                    # reload and wait for the outcome\n  \
        ringlb import --haproxy haproxy.cfg --keepalived keepalived.conf -o ringlb.json"
)]
struct Cli {
    /// Print the version, the commit, and what this kernel's io_uring offers
    #[arg(short = 'V', long = "version")]
    version: bool,
    /// JSON configuration file
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit: 0 when valid, 1 with every error otherwise
    #[arg(long)]
    check: bool,
    /// Number of worker threads, 1 to 64 (overrides "workers" in the file)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=config::MAX_WORKERS as i64))]
    workers: Option<u16>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Send a command to a running ringlb over its control socket and print the answer:
    /// show info|frontends|servers|vrrp, set server B/S state ready|drain|maint,
    /// set server B/S weight N, shutdown sessions server B/S, reload. Exits 1 when the
    /// command failed (a failed reload included).
    Ctl {
        /// The control socket (default: the config's control.socket, else
        /// /run/ringlb/ringlb.sock)
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Read the control socket's path from this config file
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Answer in JSON
        #[arg(long)]
        json: bool,
        /// The command, e.g. `show servers`
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        words: Vec<String>,
    },
    /// Convert haproxy.cfg (and keepalived.conf) into a ringlb configuration; exits 0 when
    /// complete, 2 when something was left out (listed on stderr), 1 on error
    Import(import::ImportArgs),
    /// Take the VRRP instances' VIPs off this box and, where this box held them, send the
    /// priority-0 advert that hands them to the backup at once. For a ringlb that is gone
    /// (the unit's ExecStopPost); a running ringlb's supervisor does it by itself.
    Release {
        /// The configuration whose VRRP instances to release
        #[arg(short = 'c', long = "config", value_name = "FILE", required = true)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return import::usage_error(e),
    };
    if cli.version {
        print!("{}", version::long_version());
        return ExitCode::SUCCESS;
    }
    if let Some(Sub::Import(args)) = &cli.command {
        return import::run(args);
    }
    if let Some(Sub::Release { config }) = &cli.command {
        return match config::load(config) {
            Ok(c) => {
                for line in ha::release(&c.vrrp) {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(Sub::Ctl {
        socket,
        config,
        json,
        words,
    }) = &cli.command
    {
        let socket = match (socket, config) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => match config::load(c) {
                Ok(c) => c
                    .control_socket
                    .unwrap_or_else(|| config::DEFAULT_CONTROL_SOCKET.into()),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            },
            (None, None) => config::DEFAULT_CONTROL_SOCKET.into(),
        };
        return ctl::run_client(&socket, words, *json);
    }
    let Some(config_path) = cli.config else {
        eprintln!("ringlb: --config <FILE> is required (see --help)");
        return ExitCode::from(2);
    };
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // What this host lacks (a VRRP interface) stops a start, but --check may run elsewhere.
    let host = config::host_problems(&config_path.display().to_string(), &config);
    let advice = config.advice(&config_path.display().to_string());
    if cli.check {
        if let Err(e) = host {
            eprintln!("{}", e.warnings());
        }
        if let Some(a) = &advice {
            eprintln!("{}", a.warnings());
        }
        println!("{}: configuration is valid", config_path.display());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = host {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    // With VRRP, a supervising parent releases the VIPs at once if this process dies.
    if let supervise::Role::Done(code) = supervise::fork_if_needed(&config) {
        return code;
    }
    fault::install_panic_hook();
    let code = match run(config_path, config, cli.workers.map(usize::from)) {
        Ok(code) => code,
        Err(e) => {
            event!(error: "{e}");
            ExitCode::from(1)
        }
    };
    // What is queued goes out, unless the sink is stuck.
    logging::shutdown(Duration::from_secs(1));
    code
}

/// Starts every thread and serves until stopped. Its errors are only shown (this is the
/// edge), so any error goes, as text.
fn run(
    config_path: PathBuf,
    config: Config,
    workers_override: Option<usize>,
) -> Result<ExitCode, Box<dyn Error>> {
    sys::ignore_sigpipe();
    // Signals are taken by one thread with sigwait; every thread spawned below inherits
    // this mask, so none is ever interrupted by them.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    logging::start(&config.log, |writer| {
        thread::Builder::new()
            .name("ringlb-log".into())
            .spawn(move || fault::supervise(fault::Helper::Log, writer, logging::Writer::run))
            .map(drop)
    })
    .map_err(|e| format!("cannot open the log ({}): {e}", config.log))?;
    #[cfg(feature = "test-hooks")]
    test_hooks::install_if_enabled();
    if let Some(advice) = config.advice(&config_path.display().to_string()) {
        for line in advice.warnings().to_string().lines() {
            event!(warning: "{line}");
        }
    }
    if let Some(why) = version::running_kernel_too_old() {
        return Err(why.into());
    }

    let cpus = usable_cpus();
    let workers = workers_override
        .or(config.workers)
        .unwrap_or(cpus.len().max(1));
    // One worker per core, pinned, is the design. With fewer workers than CPUs the box
    // runs other work too (measured on 2 cores with wrk and nginx beside one worker:
    // pinned it served a quarter fewer connections), so the scheduler places them.
    let pin = config.pin_workers.unwrap_or(workers == cpus.len());
    let nofile = sys::raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let binds = config.frontends.iter().map(|f| f.bind.len()).sum();
    let plan = FdPlan::new(nofile, workers, binds).map_err(|e| e.to_string())?;
    // A connection costs two sockets; pipes come from a budget of their own.
    let fd_conns = plan.conns;
    let maxconn = config.maxconn.map_or(fd_conns, |m| m.min(fd_conns));
    event!(
        "fd limit {nofile} allows {fd_conns} connections ({} fds kept for the rest, {} pipes); maxconn {maxconn}, {workers} workers{}",
        plan.reserve,
        plan.pipes,
        if pin { ", pinned to CPUs" } else { "" }
    );

    // The stats socket is bound before anything starts, so a bad address stops ringlb here.
    let stats_listener = config
        .stats
        .as_ref()
        .map(stats::StatsListener::bind)
        .transpose()?;
    let registry = Arc::new(Mutex::new(ServerRegistry::new(config.clone(), workers)));
    if let Some(path) = &config.state_file {
        registry::lock(&registry).load_state(path);
    }
    let tables = registry::lock(&registry).tables();
    // Servers are checked once before the listeners open, so the first clients find the
    // servers that are up. The checker thread runs even with nothing to check yet, so a
    // reload can add checks.
    let (targets, wait) = control::health_targets(&registry::lock(&registry));
    let checker =
        control::spawn_checker(&registry, targets).map_err(|e| format!("health checker: {e}"))?;
    if !checker.wait_first_round(wait + Duration::from_millis(500)) {
        event!(warning: "first health checks still running; starting anyway");
    }
    let shared = Arc::new(Shared {
        conns: AtomicU32::new(0),
        maxconn: AtomicU32::new(maxconn),
        fds: FdBudget::new(fd_conns.saturating_mul(shared::CONN_FDS), binds * workers),
        heartbeats: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        epoch: Instant::now(),
        wall_epoch: logging::Rfc3339::now().0,
        passive: checker.reporter(),
        listening: shared::Listening::new(workers),
    });

    control::prepare_migration(workers);
    // Every worker gets its own socket for every bind, all in one SO_REUSEPORT group.
    let mut per_worker: Vec<Vec<ListenerSpec>> = (0..workers).map(|_| Vec::new()).collect();
    for f in &config.frontends {
        for addr in &f.bind {
            let fds = listener::reuseport_group(*addr, workers)
                .map_err(|e| format!("cannot listen on {addr} (frontend {}): {e}", f.name))?;
            for (specs, fd) in per_worker.iter_mut().zip(fds) {
                specs.push(ListenerSpec { fd, addr: *addr });
            }
        }
    }

    let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<(usize, WorkerExit)>();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Result<(), String>>();
    let mut handles = Vec::with_capacity(workers);
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let wake = Arc::new(sys::EventFd::new().map_err(|e| format!("eventfd: {e}"))?);
        handles.push(WorkerHandle {
            commands: cmd_tx,
            wake: wake.clone(),
        });
        let spec = WorkerSpec {
            id,
            cpu: if pin {
                cpus.get(id % cpus.len().max(1)).copied()
            } else {
                None
            },
            listeners,
            tables: tables.clone(),
            commands: cmd_rx,
            wake,
            shared: shared.clone(),
            max_conns: fd_conns as usize,
            pipes: usize::try_from(plan.pipes).unwrap_or(usize::MAX) / workers,
            workers,
        };
        let exit_tx = exit_tx.clone();
        let ready_tx = ready_tx.clone();
        thread::Builder::new()
            .name(format!("ringlb-w{id}"))
            .spawn(move || {
                // A panic unwinds the worker, whose Drop closes its connections; the
                // control thread then stops the process (see `fault`).
                let exit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // The ring is made on the thread that submits to it (SINGLE_ISSUER).
                    match Worker::new(spec) {
                        Ok(w) => {
                            let _ = ready_tx.send(Ok(()));
                            Some(w.run())
                        }
                        Err(e) => {
                            let why = version::unavailable_reason(&e);
                            let _ = ready_tx.send(Err(format!("worker {id}: {why}")));
                            None
                        }
                    }
                }));
                let exit = match exit {
                    Ok(Some(exit)) => exit,
                    Ok(None) => return,
                    Err(panic) => {
                        WorkerExit::Failed(format!("panicked: {}", fault::message(&*panic)))
                    }
                };
                let _ = exit_tx.send((id, exit));
            })
            .map_err(|e| format!("cannot start worker {id}: {e}"))?;
    }
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err("a worker failed during start-up".into()),
        }
    }
    for f in &config.frontends {
        for addr in &f.bind {
            event!(
                "listening on {addr} (frontend {}, {workers} workers)",
                f.name
            );
        }
    }

    // VRRP starts once the workers listen, so a new master can serve at once.
    let vrrp = ha::start(&config.vrrp, shared.clone())?;
    // So do the announced VIPs: the router sends flows here from the first announcement.
    let announce = config
        .announce
        .as_ref()
        .map(|a| announce::start(a, shared.clone(), registry.clone()))
        .transpose()?;
    let reload_status = Arc::new(Mutex::new(control::ReloadStatus::default()));
    let sources = Arc::new(stats::Sources {
        registry: registry.clone(),
        shared: shared.clone(),
        reloads: reload_status.clone(),
        vrrp: vrrp.as_ref().map(ha::Vrrp::status_reader),
        announce: announce.as_ref().map(announce::Announcer::status_reader),
        workers,
        fd_limit: nofile,
        started: shared.epoch,
    });
    if let Some(listener) = stats_listener {
        let addr = listener.addr();
        listener.serve(sources.clone())?;
        event!("stats on http://{addr}/");
    }
    let (jobs_tx, jobs) = crossbeam_channel::unbounded();
    let socket = config
        .control_socket
        .clone()
        .unwrap_or_else(|| config::DEFAULT_CONTROL_SOCKET.into());
    let socket_file = match ctl::serve(&socket, sources, jobs_tx) {
        Ok(file) => {
            event!("control socket {}", socket.display());
            Some(file)
        }
        // Only a socket the config names must work; the default one is a convenience
        // (a second instance, or no /run/ringlb, must not stop forwarding).
        Err(e) if config.control_socket.is_some() => {
            return Err(format!("cannot open the control socket: {e}").into())
        }
        Err(e) => {
            event!(warning: "no control socket ({e}): ringlb ctl will not reach this instance");
            None
        }
    };
    let sig_rx = spawn_signal_thread(signals)?;
    let evictor = (workers > 1).then(|| control::Evictor::new(&shared));
    let control = Control {
        config_path,
        registry,
        checker,
        workers: handles,
        shared,
        fd_conns,
        reloads: 0,
        failed_reloads: 0,
        vrrp,
        announce,
        reload_status,
        jobs,
        notifier: notify::Notifier::from_env(),
        evictor,
    };
    control.notifier.ready(&control.status_line());
    let code = control.run(&sig_rx, &exit_rx);
    drop(socket_file);
    Ok(code)
}

fn spawn_signal_thread(signals: SigSet) -> Result<Receiver<Signal>, String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("ringlb-signals".into())
        .spawn(move || {
            fault::supervise(
                fault::Helper::Signals,
                (signals, tx),
                |(signals, tx)| loop {
                    match signals.wait() {
                        Ok(sig) => {
                            if tx.send(sig).is_err() {
                                return;
                            }
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                },
            )
        })
        .map_err(|e| format!("cannot start signal thread: {e}"))?;
    Ok(rx)
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
