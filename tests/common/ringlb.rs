//! One `ringlb` process under test: started on a config in a temp dir, ready once every
//! frontend listens, killed on drop; its log, its connection lines, its reloads, its
//! threads and descriptors; and `ringlb --check`.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::net::listening_ports;
use super::{temp_dir, untimed, wait_for, ConnLine, LogCursor};

/// How long `Ringlb::start` waits for every frontend to accept a connection.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a test waits for the log line of a connection that has closed.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// One `ringlb` process. Killed (SIGKILL) on drop unless it has already exited; its temp dir
/// is removed unless the test is failing, so the config and log can be inspected.
pub struct Ringlb {
    child: Child,
    exited: Option<ExitStatus>,
    dir: PathBuf,
    log_path: PathBuf,
    config_path: PathBuf,
    binds: Vec<SocketAddr>,
    /// The pipe stderr goes to, when launched so.
    stderr: Option<ChildStderr>,
}

/// How to start ringlb, beyond its config.
#[derive(Default)]
pub struct Launch<'a> {
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// Soft and hard RLIMIT_NOFILE of the process.
    pub nofile: Option<u64>,
    /// stderr to a pipe that nobody reads (see `take_stderr`), instead of the log file.
    pub stderr_pipe: bool,
    /// The network namespace to run in (`ip netns exec`, see `Netns`).
    pub netns: Option<&'a str>,
}

impl Ringlb {
    /// Writes `config` (JSON), runs `ringlb -c FILE` and waits until every `bind` address of
    /// every frontend accepts TCP connections.
    pub fn start(config: &str) -> Ringlb {
        Ringlb::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, extra_args: &[&str]) -> Ringlb {
        Ringlb::launch(
            config,
            &Launch {
                args: extra_args,
                ..Launch::default()
            },
        )
    }

    /// Starts ringlb as `opts` says (arguments, an fd limit, stderr a pipe nobody reads).
    pub fn launch(config: &str, opts: &Launch<'_>) -> Ringlb {
        let binds = bind_addrs(config);
        let dir = temp_dir("run");
        let config_path = dir.join("ringlb.json");
        let log_path = dir.join("stderr.log");
        fs::write(&config_path, config).expect("write config");
        let bin = env!("CARGO_BIN_EXE_ringlb");
        let mut cmd = match opts.netns {
            // `ip netns exec` execs in place: the child's pid is ringlb's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("-c")
            .arg(&config_path)
            .args(opts.args)
            .envs(opts.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if opts.stderr_pipe {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(fs::File::create(&log_path).expect("create log file"));
        }
        if let Some(limit) = opts.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn ringlb");
        let stderr = child.stderr.take();
        let mut lb = Ringlb {
            child,
            exited: None,
            dir,
            log_path,
            config_path,
            binds,
            stderr,
        };
        lb.wait_ready();
        lb
    }

    /// The read end of stderr when launched with `stderr_pipe` (nobody reads it until then).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// Waits until the kernel has a listening socket on every frontend port, i.e. until a
    /// TCP connect to each would succeed. Checked in /proc/PID/net/tcp{,6} (the process's
    /// network namespace, which may be a test's own) rather than by connecting, so that no
    /// test sees a stray probe connection in its backends, its round-robin order, its log
    /// or its descriptor count.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                panic!(
                    "ringlb exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            let listening = listening_ports(self.pid());
            let pending: Vec<_> = self
                .binds
                .iter()
                .filter(|a| !listening.contains(&a.port()))
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ringlb not ready after {READY_TIMEOUT:?}: nothing listens on {pending:?} \
                 (listening now: {listening:?}); log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the process wrote to stderr so far, each line without its timestamp
    /// and event lines without their level (`ringlb: ...`, `conn ...`): what the tests
    /// look for. `raw_log` has the lines as written.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for line in self.raw_log().lines() {
            out.push_str(untimed(line));
            out.push('\n');
        }
        out
    }

    pub fn raw_log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for a log line satisfying `pred`.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_for(timeout, || {
            self.log().lines().find(|l| pred(l)).map(str::to_owned)
        })
    }

    /// The `conn ...` log line of the connection whose client side is `client`, as key=value
    /// fields; panics with the whole log if it does not appear within `LOG_TIMEOUT`.
    pub fn conn_line(&self, client: SocketAddr) -> ConnLine {
        let want = client.to_string();
        let found = wait_for(LOG_TIMEOUT, || {
            self.log()
                .lines()
                .filter_map(ConnLine::parse)
                .find(|c| c.get("client") == Some(want.as_str()))
        });
        found.unwrap_or_else(|| {
            panic!(
                "no conn log line for client={want} within {LOG_TIMEOUT:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// All `conn ...` lines logged so far.
    pub fn conn_lines(&self) -> Vec<ConnLine> {
        self.log().lines().filter_map(ConnLine::parse).collect()
    }

    pub fn send_signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("kill");
    }

    /// Waits (bounded) for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let child = &mut self.child;
        self.exited = wait_for(timeout, || child.try_wait().expect("try_wait"));
        self.exited
    }

    /// Sets the running process's RLIMIT_NOFILE (soft and hard) to `limit`, as
    /// `prlimit --nofile` does. ringlb sizes its connection budget from the limit at start,
    /// so lowering it afterwards is how a test runs it out of descriptors.
    pub fn set_fd_limit(&self, limit: u64) {
        let new = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: `new` is a valid rlimit for the call's duration; the old value is not
        // asked for (null).
        let rc = unsafe {
            libc::prlimit(
                self.pid() as libc::pid_t,
                libc::RLIMIT_NOFILE,
                &new,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit: {}", io::Error::last_os_error());
    }

    /// Number of open file descriptors of the process (entries of /proc/PID/fd).
    pub fn fd_count(&self) -> usize {
        self.fds().len()
    }

    /// The targets of the process's open descriptors ("socket:[123]", "pipe:[456]" ...).
    pub fn fds(&self) -> Vec<String> {
        let dir = format!("/proc/{}/fd", self.pid());
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
            let Ok(entry) = entry else { continue };
            // An fd closed between readdir and readlink is simply gone.
            if let Ok(target) = fs::read_link(entry.path()) {
                out.push(target.to_string_lossy().into_owned());
            }
        }
        out
    }

    /// Replaces the config file with `config` in one rename, so that a reload never reads a
    /// half-written file (the way an editor or a deploy tool should do it too).
    pub fn write_config(&self, config: &str) {
        let tmp = self.dir.join("ringlb.json.new");
        fs::write(&tmp, config).expect("write new config");
        fs::rename(&tmp, &self.config_path).expect("rename new config into place");
    }

    /// Writes `config`, sends SIGHUP and waits (bounded) for the `ringlb: reload #n ...`
    /// line, ok or failed, which it returns. `n` counts every SIGHUP since the start, from 1.
    pub fn reload(&self, n: u64, config: &str) -> String {
        self.write_config(config);
        self.send_signal(nix::sys::signal::Signal::SIGHUP);
        self.wait_reload(n)
    }

    /// Waits for the `ringlb: reload #n ok|failed` line; panics with the log after 10 s.
    pub fn wait_reload(&self, n: u64) -> String {
        let ok = format!("ringlb: reload #{n} ok: ");
        let failed = format!("ringlb: reload #{n} failed: ");
        self.wait_for_line(Duration::from_secs(10), |l| {
            l.starts_with(&ok) || l.starts_with(&failed)
        })
        .unwrap_or_else(|| panic!("no \"reload #{n}\" line within 10 s; log:\n{}", self.log()))
    }

    /// A reader of this process's log that returns only what was written since its last
    /// call: for tests that wait for many lines in a log with thousands of them.
    pub fn log_cursor(&self) -> LogCursor {
        LogCursor::new(self.log_path.clone())
    }

    /// Names of the process's threads (`ringlb-w0`, `ringlb-w1`, ...), from /proc.
    pub fn thread_names(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
            let Ok(entry) = entry else { continue };
            // A thread that exited between readdir and read is simply gone.
            if let Ok(name) = fs::read_to_string(entry.path().join("comm")) {
                names.push(name.trim_end().to_owned());
            }
        }
        names.sort();
        names
    }

    /// Health transition lines (`ringlb: server BACKEND/SERVER is UP|DOWN: ...`) so far.
    pub fn health_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with("ringlb: server "))
            .map(str::to_owned)
            .collect()
    }

    /// Waits for the `n`th (from 1) line announcing that `server` (`be/s1`) is `state`
    /// (`"UP"`/`"DOWN"`); panics with the log if it does not come within `timeout`.
    pub fn wait_health(&self, server: &str, state: &str, n: usize, timeout: Duration) -> String {
        let prefix = format!("ringlb: server {server} is {state}: ");
        let found = wait_for(timeout, || {
            self.log()
                .lines()
                .filter(|l| l.starts_with(&prefix))
                .nth(n - 1)
                .map(str::to_owned)
        });
        found.unwrap_or_else(|| {
            panic!(
                "no {n}th \"{server} is {state}\" line within {timeout:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// How many lines announce that `server` is `state`.
    pub fn health_count(&self, server: &str, state: &str) -> usize {
        let prefix = format!("ringlb: server {server} is {state}: ");
        self.log()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }
}

impl Drop for Ringlb {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("ringlb test files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Every `bind` address of every frontend in a config.
fn bind_addrs(config: &str) -> Vec<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(config).expect("test config is JSON");
    let mut out = Vec::new();
    for frontend in value["frontends"].as_array().expect("frontends array") {
        for bind in frontend["bind"].as_array().expect("bind array") {
            let bind = bind.as_str().expect("bind string");
            out.push(bind.parse().expect("bind is ip:port"));
        }
    }
    out
}

/// Runs `ringlb -c FILE --check` on `config` written to a temp file named `file_name`.
/// Returns the output and the path passed on the command line (removed by then).
/// `ringlb ctl --socket SOCKET WORDS...`.
pub fn ctl(socket: &Path, words: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(words.split_whitespace())
        .output()
        .expect("run ringlb ctl")
}

pub fn run_check(file_name: &str, config: &str) -> (Output, PathBuf) {
    let dir = temp_dir("check");
    let path = dir.join(file_name);
    fs::write(&path, config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("-c")
        .arg(&path)
        .arg("--check")
        .stdin(Stdio::null())
        .output()
        .expect("run ringlb --check");
    // The path only labels the messages from here on.
    let _ = fs::remove_dir_all(&dir);
    (output, path)
}
