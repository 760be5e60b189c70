#!/usr/bin/env python3
"""bench.py: ringlb against HAProxy and nginx stream (`run`), and failed connections per reload
(`reload`). Python 3.11, standard library only.

bench/run and bench/reload are two-line wrappers: `bench/run ARGS` is `bench/bench.py run ARGS`
(the report's command line names the wrapper, which is the same command).

Only loopback traffic (or, in run's lab mode, 192.0.2.0/24 inside namespaces a lab created).
Every wrk run is bounded by its duration (and a timeout as a guard against a hang); every
process this tool starts is stopped on exit, Ctrl-C, SIGTERM and errors included; the temp dir
is removed unless KEEP=1. See bench/README.md.

--- run ---
usage: bench/run [-o FILE] [-h]

wrk through ringlb, HAProxy (mode tcp) and nginx stream in one run: two nginx backends, every
balancer with an equivalent config and the same number of threads, the loads run alternately
across balancers for ROUNDS rounds, medians reported with the balancer's own CPU time per
request and per GB (a markdown report, rendered by bench/report.py).

  -o FILE   also write the markdown report to FILE (it always goes to stdout)
  -h        this help

Environment, shown with its defaults:
  DURATION=10            seconds per wrk run
  ROUNDS=3               rounds; every round runs every balancer once per load, medians reported
  THREADS="1 2"          balancer threads/workers T (each value is a full pass of the matrix)
  LOADS="keepalive close bulk"
                         keepalive: 612 B page, keep-alive, wrk -c50
                         close:     612 B page, 'Connection: close', wrk -c50
                         bulk:      100 MiB downloads, wrk -c4
                         tlsclose:  612 B page over HTTPS, 'Connection: close' (a full TLS
                                    handshake per request), wrk -c50; opt-in, loopback only
  BALANCERS="haproxy nginx ringlb-splice ringlb-copy ringlb-auto"
                         opt-in as well:
                         ringlb-proxy:  ringlb forward=auto, "send_proxy": "v2" to the backends'
                                        proxy_protocol ports (keepalive close bulk)
                         haproxy-proxy: HAProxy with send-proxy-v2 to the same ports (idem)
                         ringlb-sni:    ringlb forward=auto with "routes": [{"sni": "localhost"}]
                                        and no default backend (tlsclose only)
                         ringlb-base:   see RINGLB_BASE (added by it)
                         The others run every load; on tlsclose they forward TLS untouched.
  LOG=off                the balancers' connection log: off, on, or "off on" (both: every
                         balancer runs twice, a row per balancer and log setting, e.g.
                         "ringlb forward=auto log=on"). on: ringlb "log": true (one line per
                         connection on stderr), HAProxy "log stderr format raw local0" with
                         "option tcplog" (stderr), nginx stream access_log; each into a file in
                         the temp dir. The log=on instances listen 40 ports above the log=off ones.
  LEVELS=full            full:  wrk -t$WRK_THREADS -c50 (bulk: -c4), saturating
                         light: wrk -t1 -c10 (bulk: -t1 -c1), so the balancer is not saturated
                         "full light": both, a table per load and level
  WRK_THREADS=2          wrk -t (full level)
  RINGLB=PATH            use this ringlb binary instead of 'cargo build --release' in the repo
  RINGLB_BASE=PATH       another ringlb binary (e.g. built from an older commit), run as the extra
                         balancer ringlb-base: forward=auto, the same config as ringlb-auto, its
                         own port; the report gives ringlb-auto ÷ ringlb-base CPU per request for
                         every load, level and log setting
  INSTALL=1              apt-get install missing packages (0: fail instead)
  PORT_BASE=18280        backends on PORT_BASE+1 and +2 (18281, 18282), balancers on
                         PORT_BASE+20 ... +24 (18300 haproxy, 18301 nginx, 18302-18304 ringlb),
                         +25 ringlb-proxy, +26 haproxy-proxy, +28 ringlb-base (18305, 18306,
                         18308). Only when used: backends' proxy_protocol ports +3 +4 (18283,
                         18284), TLS ports +5 +6 (18285, 18286); a balancer's TLS frontend is 20
                         above its port (18320-18324; ringlb-sni 18327, ringlb-base 18328); with
                         log=on, those frontends 40 above again (18340-18348, 18360-18368)
  SETTLE=1               seconds of pause between two wrk runs
  WARMUP=1               seconds of keep-alive warm-up per balancer after it starts (0: none)
  KEEP=0                 1: keep the temp dir (configs, logs, wrk output) and print its path

Lab mode (experimental; the namespaces and addresses come from a lab that created them):
  TARGET_NETNS=NAME VIP=192.0.2.X [LB_NETNS=NAME]
                         wrk and the sanity checks run inside TARGET_NETNS against VIP; the
                         balancers bind VIP (which must be an address in LB_NETNS, or in the
                         current namespace without LB_NETNS); backends and balancers run in LB_NETNS.
  WEB_NETNS="NS1 NS2" WEB_ADDRS="192.0.2.A 192.0.2.B"
                         with lab mode: the two nginx backends run in these namespaces on these
                         addresses instead of on loopback in LB_NETNS (scripts/lab: lab-web1
                         lab-web2, 192.0.2.21 192.0.2.22).

Quick smoke run:  DURATION=2 ROUNDS=1 bench/run
Subset:           LOADS=close THREADS=1 BALANCERS="haproxy ringlb-auto" bench/run
PROXY and SNI:    LOADS="close tlsclose" BALANCERS="haproxy haproxy-proxy nginx ringlb-auto
                  ringlb-proxy ringlb-sni" bench/run
Logging, levels:  LOADS=close LOG="off on" LEVELS="full light" BALANCERS="haproxy ringlb-auto" bench/run
Two builds:       RINGLB_BASE=/tmp/ringlb-main LOADS=close LOG=on BALANCERS=ringlb-auto bench/run
--- reload ---
usage: bench/reload [-o FILE] [-h]

Failed connections per reload at a high connection rate: two nginx backends on loopback, ringlb
in front of them, wrk with 'Connection: close' (every request a new connection). One wrk run
without reloads (the baseline for errors), then the same run while a loop rewrites the config
file (alternating between two valid configs) and sends SIGHUP every INTERVAL_MS. Prints a
markdown table and the exact command. HAProxy documents about one failed connection per reload
for every 10k new connections/s without fd passing; the last column gives that figure at the
measured rate for comparison.

  -o FILE   also write the markdown report to FILE (it always goes to stdout)
  -h        this help

Environment, shown with its defaults:
  DURATION=20        seconds per wrk run (one baseline run, one run with reloads, per round)
  ROUNDS=1           rounds of (baseline, reloads); totals are summed over rounds
  INTERVAL_MS=100    time between two SIGHUPs during the reload run
  CONNECTIONS=50     wrk -c: concurrent connections (each request is a new connection)
  WRK_THREADS=2      wrk -t
  WORKERS=2          ringlb workers
  FORWARD=auto       ringlb's forward mode (auto, copy, splice)
  RINGLB=PATH        use this ringlb binary instead of 'cargo build --release' in the repo
  INSTALL=1          apt-get install missing packages (nginx-light, wrk); 0: fail instead
  PORT_BASE=18380    backends on PORT_BASE+1 and +2, ringlb on PORT_BASE+20, the frontend
                     that every other config adds on PORT_BASE+21
  SETTLE=2           seconds of pause between runs
  KEEP=0             1: keep the temp dir (configs, logs, wrk output) and print its path

The two configs differ in a server's weight, one server (added, then removed again) and one
frontend (opened on every worker, then closed), so every reload changes the server table
and the listeners; the frontend wrk uses is in both and must never be closed.

Quick run:  DURATION=5 bench/reload
"""

import contextlib
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
REPORT_PY = BENCH_DIR / "report.py"
sys.path.insert(0, str(BENCH_DIR))
sys.dont_write_bytecode = True  # no bench/__pycache__ in the tree
import report  # noqa: E402  (bench/report.py: the markdown report and the sanity checks)


# ---------------------------------------------------------------------------------------------
# Messages and errors.

class Tool:
    """The subcommand running: its name in progress lines and in error messages."""

    tag = "bench"
    prog = "bench/run"


class Fatal(Exception):
    """An error that ends the tool (after cleanup) with status 1."""


class Terminated(Exception):
    """SIGTERM: ends the tool (after cleanup) with status 143."""


def log(msg):
    print(f"[{Tool.tag} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    raise Fatal(msg)


def tail(path, lines=20):
    """The last lines of a log file, to stderr."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in text[-lines:]:
        print(line, file=sys.stderr)
    sys.stderr.flush()


def help_text(sub):
    """The `--- sub ---` section of the module docstring."""
    return __doc__.split(f"--- {sub} ---\n", 1)[1].split("\n--- ", 1)[0].rstrip("\n")


# ---------------------------------------------------------------------------------------------
# Command line and knobs.

def shell_quote(word):
    """A word as a person would type it: bare when safe, else in single quotes."""
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+,-]+", word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def invoked_as(sub):
    """The wrapper as the caller typed it: bench/run execs `python3 <its dir>/bench.py run`."""
    return os.path.join(os.path.dirname(sys.argv[0]), sub)


def command_line(knobs, sub, args):
    """The exact command, for the report: the knobs the caller set, then the arguments."""
    words = [f"{k}={shell_quote(os.environ[k])}" for k in knobs if k in os.environ]
    words.append(shell_quote(invoked_as(sub)))
    words += [shell_quote(a) for a in args]
    return " ".join(words)


def parse_args(sub, args):
    """-o FILE and -h; returns the output file or None."""
    out = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o":
            if i + 1 >= len(args):
                print(f"{Tool.prog}: -o needs a file", file=sys.stderr)
                sys.exit(2)
            out = args[i + 1]
            i += 2
        elif a.startswith("-o"):
            out = a[2:]
            i += 1
        elif a in ("-h", "--help"):
            print(help_text(sub))
            sys.exit(0)
        else:
            print(f"{Tool.prog}: unknown argument: {a} (see -h)", file=sys.stderr)
            sys.exit(2)
    return out


def knob(name, default):
    """An environment knob; unset or empty means the default."""
    return os.environ.get(name) or default


def check_int(what, value, lo, hi):
    if not re.fullmatch(r"[1-9][0-9]{0,5}|0", value) or not lo <= int(value) <= hi:
        die(f"{what} must be an integer in {lo}..{hi}, not '{value}'")
    return int(value)


def int_knob(name, default, lo, hi):
    return check_int(name, knob(name, str(default)), lo, hi)


def word_list(name, default, allowed):
    """A knob holding words: each one known, none twice, at least one."""
    words = knob(name, default).split()
    if not words:
        die(f"{name} is empty")
    for w in words:
        if w not in allowed:
            die(f"{name}: unknown value '{w}' ({' '.join(allowed)})")
        if words.count(w) > 1:
            die(f"{name}: '{w}' listed twice")
    return words


# ---------------------------------------------------------------------------------------------
# Processes, from /proc.

def proc_stat(pid):
    """Fields 3 on of /proc/PID/stat (comm, field 2, may hold spaces), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            line = f.read()
    except OSError:
        return None
    return line[line.rindex(")") + 2:].split()


def parent_map():
    """pid -> ppid of every process."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(entry)
            if fields:
                parents[int(entry)] = int(fields[1])
    return parents


def tree_pids(roots):
    """These pids and all their descendants (nginx: master -> workers)."""
    children = {}
    for pid, ppid in parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found = set()
    todo = [r for r in roots if os.path.exists(f"/proc/{r}")]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def cpu_ticks(pids):
    """utime+stime (fields 14 and 15 of /proc/PID/stat, clock ticks) summed over the pids; a
    process's own line counts all its threads, io-wq workers included."""
    total = 0
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total


def alive(pid):
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def send_signal(pids, sig):
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def stop_trees(popens):
    """TERM the process trees, wait up to 5 s, then KILL what is left; reap our children."""
    pids = tree_pids([p.pid for p in popens])
    send_signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for p in popens:
            p.poll()
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.1)
    left = sorted(pid for pid in pids if alive(pid))
    if left:
        log(f"killing leftover processes: {' '.join(map(str, left))}")
        send_signal(left, signal.SIGKILL)
    for p in popens:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def shield_signals():
    """Cleanup runs to its end: a second Ctrl-C or TERM does not cut it short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Processes:
    """Every server this tool started, by name; all stopped when the `with` block ends."""

    def __init__(self):
        self.procs = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shield_signals()
        self.stop(*self.procs)

    def start(self, name, logpath, cmd):
        """Run a server in the background, stdout and stderr into logpath. A session of its own:
        a Ctrl-C on the terminal reaches this tool, which stops it."""
        with open(logpath, "wb") as out:
            self.procs[name] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def pid(self, name):
        return self.procs[name].pid

    def running(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def stop(self, *names):
        popens = [self.procs.pop(n) for n in list(names) if n in self.procs]
        if popens:
            stop_trees(popens)


@contextlib.contextmanager
def workdir(prefix, keep):
    """A fresh temp dir, removed at the end unless keep."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR") or "/tmp"))
    path.chmod(0o755)  # nginx workers run as an unprivileged user and read the docroot
    try:
        yield path
    finally:
        shield_signals()
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Sockets, namespaces, packages, binaries.

def netns(name):
    """The command prefix that runs something in network namespace name ('' : here)."""
    return ["ip", "netns", "exec", name] if name else []


def listening(prefix):
    """host:port of every listening TCP socket (in the namespace of prefix)."""
    out = subprocess.run(prefix + ["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    return {cols[3] for cols in (line.split() for line in out.splitlines()) if len(cols) >= 4}


def busy_ports(ports, prefix):
    taken = {a.rsplit(":", 1)[1] for a in listening(prefix)}
    return [p for p in ports if str(p) in taken]


def die_if_busy(ports, prefix):
    for p in busy_ports(ports, prefix):
        die(f"port {p} is already in use (ss -ltnp 'sport = :{p}'); stop that or set PORT_BASE")


def wait_listen(procs, name, host, port, logpath, prefix):
    """Bounded wait (10 s) for name to listen on host:port; False if it died or never listened."""
    for _ in range(100):
        if not procs.running(name):
            log(f"{name} exited at start; the end of {logpath}:")
            tail(logpath)
            return False
        if f"{host}:{port}" in listening(prefix):
            return True
        time.sleep(0.1)
    log(f"{name} is not listening on {host}:{port} after 10 s; the end of {logpath}:")
    tail(logpath)
    return False


def install_missing(missing, install):
    """apt-get install the missing Debian packages, if allowed."""
    if not missing:
        return
    names = " ".join(missing)
    if not install:
        die(f"missing packages: {names} (INSTALL=0 forbids installing them)")
    if os.geteuid() != 0:
        die(f"missing packages: {names}; run as root to install them")
    log(f"installing {names}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]):
        if subprocess.run(cmd, stdout=sys.stderr, env=env, check=False).returncode:
            die(f"{' '.join(cmd[:2])} failed")


def ringlb_binary(given):
    """The given binary, or a release build of this repo."""
    if given:
        path = Path(given)
    else:
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
        if not os.access(cargo, os.X_OK):
            die("cargo not found; install Rust or set RINGLB=/path/to/ringlb")
        log(f"building ringlb: cargo build --release in {REPO}")
        if subprocess.run([cargo, "build", "--release"], cwd=REPO, stdout=sys.stderr,
                          check=False).returncode:
            die("cargo build --release failed")
        path = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "release/ringlb"
    if not (path.is_file() and os.access(path, os.X_OK)):
        die(f"ringlb binary '{path}' is not executable")
    return str(path)


def first_line(cmd):
    """The first line a command prints (stdout and stderr), '' if it cannot run."""
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0] if out else ""


def word(text, n):
    """The nth whitespace-separated word (1-based) of text, '' if there is none."""
    words = text.split()
    return words[n - 1] if len(words) >= n else ""


def git_describe():
    out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def ringlb_source(given, binary):
    return f"binary {binary}" if given else f"git {git_describe()}"


def raise_fd_limit():
    """The balancers may need many fds: soft limit up to the hard one (20000 here)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_random(path, size):
    with open(path, "wb") as f:
        for off in range(0, size, 1 << 20):
            f.write(os.urandom(min(1 << 20, size - off)))


def replace_file(src, dst):
    """dst gets src's content in one rename, so a reader never sees half a file."""
    tmp = Path(str(dst) + ".new")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def sleep(seconds):
    if seconds > 0:
        time.sleep(seconds)


# ---------------------------------------------------------------------------------------------
# wrk. A Lua done() prints the exact summary, so nothing is parsed from rounded text.

RESULT_LUA = """done = function(summary, latency, requests)
  local e = summary.errors
  local p99 = 0
  if summary.requests > 0 then p99 = latency:percentile(99) end
  io.write(string.format(
    "RESULT requests=%d bytes=%d duration_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.bytes, summary.duration, p99,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(prefix, args, outpath, guard):
    """One wrk run, its output into outpath; the exit status (None when the guard timeout,
    a bound against a hang, had to kill it: wrk stops itself after its -d)."""
    with open(outpath, "wb") as out:
        try:
            return subprocess.run(prefix + ["wrk", *args], stdout=out, stderr=subprocess.STDOUT,
                                  timeout=guard, check=False).returncode
        except subprocess.TimeoutExpired:
            return None


def wrk_result(outpath):
    """The RESULT line of a wrk run as a dict of ints, or None."""
    try:
        text = Path(outpath).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return {k: int(v) for k, v in (kv.split("=", 1) for kv in line.split()[1:])}
    return None


def squeeze(text):
    return re.sub(" +", " ", text)


# ---------------------------------------------------------------------------------------------
# run: what is measured.

ALL_LOADS = ("keepalive", "close", "bulk", "tlsclose")
PLAIN_LOADS = ("keepalive", "close", "bulk")
LOAD_FRONT = {"keepalive": "http", "close": "http", "bulk": "http", "tlsclose": "tls"}
DEFAULT_BALANCERS = "haproxy nginx ringlb-splice ringlb-copy ringlb-auto"
TLS_OFFSET = 20  # a balancer's TLS frontend listens this far above its http one
LOG_OFFSET = 40  # a log=on instance listens this far above the log=off one
# level -> (wrk -t, None: WRK_THREADS; wrk -c; wrk -c for bulk)
LEVEL_WRK = {"full": (None, 50, 4), "light": (1, 10, 1)}


@dataclass(frozen=True)
class Balancer:
    offset: int                   # port offset from PORT_BASE (fixed: a port always means one balancer)
    kind: str                     # haproxy, nginx or ringlb
    loads: tuple = ALL_LOADS      # the loads it applies to
    upstream: str = "plain"       # the http frontend's backend ports: plain or proxy (PROXY v2 first)
    forward: str = "auto"         # ringlb's forward mode
    sni: bool = False             # ringlb: routes by the TLS server name, no default backend
    base: bool = False            # ringlb: runs RINGLB_BASE


# The PROXY balancers' backends are proxy_protocol ports, which speak plain HTTP after the header;
# ringlb-sni routes by the TLS server name and has no default backend, so plain HTTP finds no route.
BALANCERS = {
    "haproxy": Balancer(20, "haproxy"),
    "nginx": Balancer(21, "nginx"),
    "ringlb-splice": Balancer(22, "ringlb", forward="splice"),
    "ringlb-copy": Balancer(23, "ringlb", forward="copy"),
    "ringlb-auto": Balancer(24, "ringlb"),
    "ringlb-proxy": Balancer(25, "ringlb", PLAIN_LOADS, upstream="proxy"),
    "haproxy-proxy": Balancer(26, "haproxy", PLAIN_LOADS, upstream="proxy"),
    "ringlb-sni": Balancer(27, "ringlb", ("tlsclose",), sni=True),
    "ringlb-base": Balancer(28, "ringlb", base=True),
}


@dataclass(frozen=True)
class Variant:
    """One running instance: a balancer with its connection log off or on."""

    name: str
    log: str

    @property
    def bal(self):
        return BALANCERS[self.name]

    @property
    def stem(self):
        """Its files in the temp dir, and its name in the process table."""
        base = "nginx-stream" if self.name == "nginx" else self.name
        return base if self.log == "off" else f"{base}-logon"

    @property
    def label(self):
        return self.name if self.log == "off" else f"{self.name} log=on"


RUN_KNOBS = ("DURATION", "ROUNDS", "THREADS", "LOADS", "BALANCERS", "LOG", "LEVELS", "WRK_THREADS",
             "RINGLB", "RINGLB_BASE", "INSTALL", "PORT_BASE", "SETTLE", "WARMUP", "TARGET_NETNS",
             "VIP", "LB_NETNS", "WEB_NETNS", "WEB_ADDRS")


@dataclass
class RunSettings:
    duration: int
    rounds: int
    threads: list
    loads: list
    balancers: list
    logs: list
    levels: list
    wrk_threads: int
    ringlb: str
    ringlb_base: str
    install: bool
    port_base: int
    settle: int
    warmup: int
    keep: bool


def run_settings():
    s = RunSettings(
        duration=int_knob("DURATION", 10, 1, 3600),
        rounds=int_knob("ROUNDS", 3, 1, 50),
        threads=knob("THREADS", "1 2").split(),
        loads=word_list("LOADS", "keepalive close bulk", ALL_LOADS),
        balancers=word_list("BALANCERS", DEFAULT_BALANCERS, list(BALANCERS)),
        logs=word_list("LOG", "off", ("off", "on")),
        levels=word_list("LEVELS", "full", list(LEVEL_WRK)),
        wrk_threads=int_knob("WRK_THREADS", 2, 1, 64),
        ringlb=os.environ.get("RINGLB", ""),
        ringlb_base=os.environ.get("RINGLB_BASE", ""),
        install=knob("INSTALL", "1") == "1",
        port_base=int_knob("PORT_BASE", 18280, 1024, 65000),
        settle=int_knob("SETTLE", 1, 0, 60),
        warmup=int_knob("WARMUP", 1, 0, 60),
        keep=knob("KEEP", "0") == "1",
    )
    if not s.threads:
        die("THREADS is empty")
    s.threads = [check_int("a THREADS value", t, 1, 64) for t in s.threads]
    if s.ringlb_base and "ringlb-base" not in s.balancers:
        s.balancers.append("ringlb-base")
    if "ringlb-base" in s.balancers and not s.ringlb_base:
        die("ringlb-base runs the binary RINGLB_BASE=PATH, which is not set")
    return s


def applies(name, load):
    return load in BALANCERS[name].loads


def balancer_fronts(s):
    """balancer -> its frontends for the chosen loads: http, tls or both; dies on a balancer
    with no load to run or a load with no balancer."""
    fronts = {}
    for b in s.balancers:
        fronts[b] = [f for f in ("http", "tls")
                     if any(LOAD_FRONT[l] == f and applies(b, l) for l in s.loads)]
        if not fronts[b]:
            die(f"BALANCERS: '{b}' runs only on: {' '.join(BALANCERS[b].loads)}; none of them is in LOADS")
    for l in s.loads:
        if not any(applies(b, l) for b in s.balancers):
            die(f"LOADS: no balancer in BALANCERS runs '{l}' (see -h for which balancers run which loads)")
    return fronts


@dataclass
class Network:
    """Where the traffic goes: loopback unless lab mode, and then only 192.0.2.0/24."""

    bind_host: str = "127.0.0.1"
    target_host: str = "127.0.0.1"
    target_netns: str = ""
    client: list = field(default_factory=list)     # prefix for wrk and the sanity checks
    server: list = field(default_factory=list)     # prefix for backends and balancers
    web_netns: list = field(default_factory=lambda: ["", ""])
    web_hosts: list = field(default_factory=lambda: ["127.0.0.1", "127.0.0.1"])

    def web_prefix(self, i):
        return netns(self.web_netns[i]) if self.web_netns[i] else self.server


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.split()}


def has_address(prefix, addr):
    out = subprocess.run(prefix + ["ip", "-o", "-4", "addr", "show"], capture_output=True,
                         text=True, check=False).stdout
    return f" inet {addr}/" in out


def lab_network(need_tls):
    env = {k: os.environ.get(k, "") for k in ("TARGET_NETNS", "VIP", "LB_NETNS", "WEB_NETNS", "WEB_ADDRS")}
    net = Network()
    if env["TARGET_NETNS"] or env["VIP"] or env["LB_NETNS"]:
        lab_target(net, env, need_tls)
    if env["WEB_NETNS"] or env["WEB_ADDRS"]:
        lab_backends(net, env)
    return net


def lab_target(net, env, need_tls):
    target, vip, lb = env["TARGET_NETNS"], env["VIP"], env["LB_NETNS"]
    if not (target and vip):
        die("lab mode needs both TARGET_NETNS and VIP")
    if need_tls:  # wrk sends the URL's host as SNI, and the VIP has no name to route by
        die("the tlsclose load runs only on loopback (wrk connects to https://localhost for the SNI); drop it from LOADS in lab mode")
    m = re.fullmatch(r"192\.0\.2\.([0-9]{1,3})", vip)
    if not m or not 1 <= int(m.group(1)) <= 254:
        die(f"VIP must be a host address in 192.0.2.0/24 (TEST-NET-1), not '{vip}'")
    names = netns_names()
    if target not in names:
        die(f"TARGET_NETNS '{target}' is not a network namespace (ip netns list)")
    if lb:
        if lb not in names:
            die(f"LB_NETNS '{lb}' is not a network namespace (ip netns list)")
        if lb == target:
            die("LB_NETNS and TARGET_NETNS must differ")
        net.server = netns(lb)
    if not has_address(net.server, vip):
        die(f"VIP {vip} is not an address in {lb or 'the current namespace'}; the lab must add it first")
    net.client = netns(target)
    net.bind_host = net.target_host = vip
    net.target_netns = target
    log(f"lab mode: wrk in netns {target} -> {vip}; balancers in {lb or 'the current namespace'}")


def lab_backends(net, env):
    if not env["TARGET_NETNS"]:
        die("WEB_NETNS and WEB_ADDRS need lab mode (TARGET_NETNS and VIP)")
    names, hosts = env["WEB_NETNS"].split(), env["WEB_ADDRS"].split()
    if len(names) != 2 or len(hosts) != 2:
        die("WEB_NETNS and WEB_ADDRS need two values each")
    known = netns_names()
    for ns, host in zip(names, hosts):
        if ns not in known:
            die(f"WEB_NETNS: '{ns}' is not a network namespace")
        if not re.fullmatch(r"192\.0\.2\.[0-9]{1,3}", host):
            die(f"WEB_ADDRS: '{host}' is not in 192.0.2.0/24")
        if not has_address(netns(ns), host):
            die(f"{host} is not an address in netns {ns}")
    net.web_netns, net.web_hosts = names, hosts
    log(f"lab mode: backends in netns {' '.join(names)} on {' '.join(hosts)}")


# ---------------------------------------------------------------------------------------------
# run: content and backends.

PAGE_HEAD = ("<!DOCTYPE html>\n<html>\n<head>\n<title>ringlb bench</title>\n</head>\n<body>\n"
             "<h1>ringlb benchmark page</h1>\n<p>")
PAGE_TAIL = "</p>\n</body>\n</html>\n"
PAGE_SIZE = 612
MIB = 1 << 20

BACKEND_CONF = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    types {{ text/html html; }}
    default_type application/octet-stream;
    server {{
        {listens}
        root {www};
        index index.html;
    }}
}}
"""


def write_content(work):
    """The docroot: the 612-byte page, /1m and /100m of random bytes; their sha256."""
    www = work / "www"
    www.mkdir()
    page = PAGE_HEAD + "x" * (PAGE_SIZE - len(PAGE_HEAD) - len(PAGE_TAIL)) + PAGE_TAIL
    (www / "index.html").write_text(page)
    if (www / "index.html").stat().st_size != PAGE_SIZE:
        die("index.html is not 612 bytes")
    write_random(www / "1m", MIB)
    write_random(www / "100m", 100 * MIB)
    www.chmod(0o755)
    for f in www.iterdir():
        f.chmod(0o644)
    return sha256_file(www / "index.html"), sha256_file(www / "1m")


def make_certificate(work):
    """For tlsclose: an ECDSA P-256 certificate for the name wrk sends as SNI."""
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "2",
           "-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt")]
    with open(work / "openssl.log", "wb") as out:
        if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            tail(work / "openssl.log", 1000)
            die("openssl could not make the test certificate")


class RunBench:
    """One `bench/run`: backends, then for each T the balancers and the matrix of wrk runs."""

    def __init__(self, s, net, fronts, work, procs):
        self.s, self.net, self.fronts, self.work, self.procs = s, net, fronts, work, procs
        self.need_proxy = any("http" in fronts[b] and BALANCERS[b].upstream == "proxy" for b in s.balancers)
        self.need_tls = any("tls" in fronts[b] for b in s.balancers)
        pb = s.port_base
        self.web_ports = [pb + 1, pb + 2]
        self.web_proxy_ports = [pb + 3, pb + 4]   # listen ... proxy_protocol
        self.web_tls_ports = [pb + 5, pb + 6]     # listen ... ssl
        self.variants = [Variant(b, lg) for b in s.balancers for lg in s.logs]
        self.ringlb_bin = ""
        self.broken = {}        # variant stem -> reason, for the current T
        self.notes = []
        self.raw = work / "raw.tsv"
        self.sums = ("", "")

    # Ports.

    def port(self, v, front):
        """The port of a variant's http or tls frontend."""
        return (self.s.port_base + v.bal.offset + (TLS_OFFSET if front == "tls" else 0)
                + (LOG_OFFSET if v.log == "on" else 0))

    def used_ports(self):
        """Backend ports (the extra ones only when a chosen balancer uses them, so the default run
        needs and measures exactly what it did before) and every frontend's port."""
        ports = list(self.web_ports)
        if self.need_proxy:
            ports += self.web_proxy_ports
        if self.need_tls:
            ports += self.web_tls_ports
        return ports + [self.port(v, f) for v in self.variants for f in self.fronts[v.name]]

    def upstream_ports(self, name, front):
        """The two backend ports that frontend forwards to."""
        if front == "tls":
            return self.web_tls_ports
        return self.web_proxy_ports if BALANCERS[name].upstream == "proxy" else self.web_ports

    def url(self, front, port):
        """A frontend's URL prefix. For tls the host is a name, because wrk sends the URL's host
        as SNI (localhost resolves to 127.0.0.1; tls runs only on loopback)."""
        return f"https://localhost:{port}" if front == "tls" else f"http://{self.net.target_host}:{port}"

    # Packages and binaries.

    def prepare_tools(self):
        kinds = {BALANCERS[b].kind for b in self.s.balancers}
        missing = []
        if not shutil.which("nginx"):
            missing.append("nginx-light")
        if "nginx" in kinds and not os.path.exists(STREAM_MODULE):
            missing.append("libnginx-mod-stream")
        if "haproxy" in kinds and not shutil.which("haproxy"):
            missing.append("haproxy")
        if not shutil.which("wrk"):
            missing.append("wrk")
        if self.need_tls and not shutil.which("openssl"):
            missing.append("openssl")
        install_missing(missing, self.s.install)
        for tool in ("nginx", "wrk"):
            if not shutil.which(tool):
                die(f"{tool} not found after install")
        if any(BALANCERS[b].kind == "ringlb" and not BALANCERS[b].base for b in self.s.balancers):
            self.ringlb_bin = ringlb_binary(self.s.ringlb)
        if self.s.ringlb_base and not os.access(self.s.ringlb_base, os.X_OK):
            die(f"RINGLB_BASE '{self.s.ringlb_base}' is not executable")

    # Backends.

    def start_backends(self):
        """Two nginx, one worker each, keep-alive, no access log, on the plain port and, when
        used, a proxy_protocol port and a TLS port (no session cache and no tickets, so every
        connection is a full handshake as with a new client)."""
        self.sums = write_content(self.work)
        if self.need_tls:
            make_certificate(self.work)
        listen_ports = []
        for i in (0, 1):
            listen_ports.append(self.start_backend(i))
        for i in (0, 1):
            for p in listen_ports[i]:
                if not wait_listen(self.procs, f"web{i + 1}", self.net.web_hosts[i], p,
                                   self.work / f"web{i + 1}/error.log", self.net.web_prefix(i)):
                    die(f"backend web{i + 1} did not start")
        h = self.net.web_hosts
        log(f"backends: nginx on {h[0]} ports {' '.join(map(str, listen_ports[0]))} and "
            f"{h[1]} ports {' '.join(map(str, listen_ports[1]))}")

    def start_backend(self, i):
        d = self.work / f"web{i + 1}"
        (d / "tmp").mkdir(parents=True)
        host = self.net.web_hosts[i]
        ports = [self.web_ports[i]]
        listens = [f"listen {host}:{self.web_ports[i]};"]
        if self.need_proxy:
            ports.append(self.web_proxy_ports[i])
            listens.append(f"listen {host}:{self.web_proxy_ports[i]} proxy_protocol;")
        if self.need_tls:
            ports.append(self.web_tls_ports[i])
            w = self.work
            listens.append(f"listen {host}:{self.web_tls_ports[i]} ssl;\n"
                           f"        ssl_certificate {w}/tls.crt;\n"
                           f"        ssl_certificate_key {w}/tls.key;\n"
                           "        ssl_session_cache off;\n"
                           "        ssl_session_tickets off;")
        conf = d / "nginx.conf"
        conf.write_text(BACKEND_CONF.format(d=d, www=self.work / "www", listens="\n        ".join(listens)))
        prefix = self.net.web_prefix(i)
        if subprocess.run(prefix + ["nginx", "-t", "-q", "-c", str(conf), "-e", str(d / "error.log")],
                          check=False).returncode:
            die(f"nginx backend config web{i + 1} is invalid")
        self.procs.start(f"web{i + 1}", d / "stdout.log",
                         prefix + ["nginx", "-c", str(conf), "-e", str(d / "error.log")])
        return ports

    # Balancer configs: same backends, round robin, same timeouts (connect 5 s, idle 50 s), T
    # threads each; the connection log off or on. Each balancer has one frontend per kind of load
    # it runs: "http" to the plain (or, for the *-proxy balancers, proxy_protocol) backend ports,
    # "tls" to the TLS ports.

    def haproxy_config(self, t, v):
        on = v.log == "on"
        lines = ["global", f"    nbthread {t}", "    maxconn 4000"]
        lines += ["    log stderr format raw local0"] if on else []
        lines += ["", "defaults", "    mode tcp"]
        lines += ["    log global", "    option tcplog"] if on else []
        lines += ["    option splice-auto", "    timeout connect 5s", "    timeout client 50s",
                  "    timeout server 50s"]
        for f in self.fronts[v.name]:
            sfx = "-tls" if f == "tls" else ""
            opt = " send-proxy-v2" if v.bal.upstream == "proxy" and f == "http" else ""
            p1, p2 = self.upstream_ports(v.name, f)
            h = self.net.web_hosts
            lines += ["", f"frontend bench{sfx}", f"    bind {self.net.bind_host}:{self.port(v, f)}",
                      f"    default_backend web{sfx}", "", f"backend web{sfx}", "    balance roundrobin",
                      f"    server web1 {h[0]}:{p1}{opt}", f"    server web2 {h[1]}:{p2}{opt}"]
        return "\n".join(lines) + "\n"

    def nginx_config(self, t, v, d):
        lines = [f"load_module {STREAM_MODULE};", f"worker_processes {t};", "daemon off;",
                 f"pid {d}/{v.stem}.pid;", f"error_log {d}/{v.stem}.error.log warn;",
                 "events { worker_connections 8000; }", "stream {"]
        if v.log == "on":
            lines += ["    log_format bench '$remote_addr [$time_local] $protocol $status $bytes_sent "
                      "$bytes_received $session_time \"$upstream_addr\"';",
                      f"    access_log {d}/{v.stem}.access.log bench;"]
        for f in self.fronts[v.name]:
            sfx = "_tls" if f == "tls" else ""
            p1, p2 = self.upstream_ports(v.name, f)
            h = self.net.web_hosts
            lines += [f"    upstream web{sfx} {{", f"        server {h[0]}:{p1};", f"        server {h[1]}:{p2};",
                      "    }", "    server {", f"        listen {self.net.bind_host}:{self.port(v, f)} reuseport;",
                      f"        proxy_pass web{sfx};", "        proxy_connect_timeout 5s;",
                      "        proxy_timeout 50s;", "    }"]
        return "\n".join(lines + ["}"]) + "\n"

    def ringlb_config(self, t, v):
        frontends, backends = [], []
        for f in self.fronts[v.name]:
            sfx = "-tls" if f == "tls" else ""
            fe = {"name": f"bench{sfx}", "bind": [f"{self.net.bind_host}:{self.port(v, f)}"]}
            if v.bal.sni:  # a route for the name wrk sends and no default backend
                fe["routes"] = [{"sni": "localhost", "backend": f"web{sfx}"}]
            else:
                fe["backend"] = f"web{sfx}"
            fe["forward"] = v.bal.forward
            fe["log"] = v.log == "on"
            frontends.append(fe)
            be = {"name": f"web{sfx}", "balance": "roundrobin"}
            if v.bal.upstream == "proxy" and f == "http":
                be["send_proxy"] = "v2"
            be["timeouts"] = {"connect": "5s", "client": "50s", "server": "50s"}
            p1, p2 = self.upstream_ports(v.name, f)
            h = self.net.web_hosts
            be["servers"] = [{"name": "web1", "addr": f"{h[0]}:{p1}"}, {"name": "web2", "addr": f"{h[1]}:{p2}"}]
            backends.append(be)
        conf = {"workers": t, "maxconn": 4000, "grace": "2s", "frontends": frontends, "backends": backends}
        return json.dumps(conf, indent=2) + "\n"

    def commands(self, t, v):
        """(config check, run, the log to show when it fails, its connection log) of a variant."""
        d = self.work / f"t{t}"
        kind = v.bal.kind
        if kind == "haproxy":
            cfg = d / f"{v.stem}.cfg"
            cfg.write_text(self.haproxy_config(t, v))
            return (["haproxy", "-c", "-q", "-f", str(cfg)], ["haproxy", "-db", "-f", str(cfg)],
                    d / f"{v.stem}.log", d / f"{v.stem}.log")
        if kind == "nginx":
            cfg, err = d / f"{v.stem}.conf", d / f"{v.stem}.error.log"
            cfg.write_text(self.nginx_config(t, v, d))
            return (["nginx", "-t", "-q", "-c", str(cfg), "-e", str(err)],
                    ["nginx", "-c", str(cfg), "-e", str(err)], err, d / f"{v.stem}.access.log")
        cfg = d / f"{v.stem}.json"
        cfg.write_text(self.ringlb_config(t, v))
        binary = self.s.ringlb_base if v.bal.base else self.ringlb_bin
        return ([binary, "-c", str(cfg), "--check"], [binary, "-c", str(cfg)],
                d / f"{v.stem}.log", d / f"{v.stem}.log")

    # Starting, checking, breaking.

    def mark_broken(self, v, t, reason):
        """A balancer that fails is stopped and left out (its runs are reported as failed), so
        one broken balancer does not cost the numbers of the others."""
        log(f"WARNING: {v.label} (T={t}) {reason}; it is left out of the remaining T={t} runs")
        self.broken[v.stem] = reason
        self.notes.append(f"{v.label}, T={t}: {reason}")
        self.procs.stop(v.stem)

    def start_balancers(self, t):
        (self.work / f"t{t}").mkdir()
        self.broken = {}
        conn_logs = {}
        for v in self.variants:
            conn_logs[v.stem] = self.start_balancer(t, v)
        for v in self.variants:
            self.check_balancer(t, v, conn_logs[v.stem])
        ok = " ".join(v.label for v in self.variants if v.stem not in self.broken)
        log(f"T={t}: balancers listening and forwarding: {ok} ")

    def start_balancer(self, t, v):
        """Check the config, start, wait for every frontend; returns its connection log file."""
        d = self.work / f"t{t}"
        check, run, shown_log, conn_log = self.commands(t, v)
        check_log = d / f"{v.stem}.check.log"
        with open(check_log, "wb") as out:
            rc = subprocess.run(self.net.server + check, stdout=out, stderr=subprocess.STDOUT,
                                check=False).returncode
        if rc:
            tail(check_log, 1000)
            self.mark_broken(v, t, f"config rejected by: {' '.join(check)}")
            return conn_log
        self.procs.start(v.stem, d / f"{v.stem}.log", self.net.server + run)
        for f in self.fronts[v.name]:
            if not wait_listen(self.procs, v.stem, self.net.bind_host, self.port(v, f), shown_log,
                               self.net.server):
                self.mark_broken(v, t, f"did not start listening on port {self.port(v, f)}")
                break
        return conn_log

    def check_balancer(self, t, v, conn_log):
        """The balancer really forwards: the page and the 1 MiB file, byte-exact, through every
        frontend (four fetches on new connections, so both backends serve some); over TLS with
        the SNI wrk sends. Through a *-proxy balancer the proxy_protocol backends answer only
        when the header came first; ringlb-sni must also close a ClientHello for another name.
        With log=on, the fetches must show up in its connection log."""
        before = count_conn_lines(v, conn_log)
        for f in self.fronts[v.name]:
            if v.stem in self.broken:
                return
            if not self.check_front(v, f):
                self.mark_broken(v, t, f"does not forward the test files byte-exact ({f} frontend)")
        if v.stem not in self.broken and v.log == "on" and not wait_logged(v, conn_log, before + 4):
            self.mark_broken(v, t, f"logged no connection lines in {conn_log.name} with log=on")

    def check_front(self, v, f):
        port = str(self.port(v, f))
        tls = ["--tls", "localhost"] if f == "tls" else []
        page, one_m = self.sums
        files = ["/", str(PAGE_SIZE), page, "/1m", str(MIB), one_m]
        check = [sys.executable, str(REPORT_PY), "check", *tls, self.net.target_host, port, *files, *files]
        if subprocess.run(self.net.client + check, check=False).returncode:
            return False
        if v.bal.sni:
            refused = [sys.executable, str(REPORT_PY), "refused", self.net.target_host, port, "other.invalid"]
            return subprocess.run(self.net.client + refused, check=False).returncode == 0
        return True

    def warm_up(self):
        if self.s.warmup <= 0:
            return
        for v in self.variants:
            for f in self.fronts[v.name]:
                if v.stem in self.broken:
                    continue
                args = ["-t1", "-c10", f"-d{self.s.warmup}s", self.url(f, self.port(v, f)) + "/"]
                if run_wrk(self.net.client, args, os.devnull, self.s.warmup + 30) != 0:
                    log(f"warm-up of {v.label} ({f}) failed")

    # wrk runs.

    def wrk_args(self, load, level, port):
        """The wrk arguments of one load at one level."""
        threads, conns, bulk_conns = LEVEL_WRK[level]
        t = f"-t{threads or self.s.wrk_threads}"
        d = f"-d{self.s.duration}s"
        url = self.url(LOAD_FRONT[load], port)
        if load == "keepalive":
            return [t, f"-c{conns}", d, "--latency", url + "/"]
        if load in ("close", "tlsclose"):
            return [t, f"-c{conns}", d, "--latency", "-H", "Connection: close", url + "/"]
        return [t, f"-c{bulk_conns}", d, "--timeout", "30s", "--latency", url + "/100m"]

    def raw_row(self, key, result, ticks):
        """One line of raw.tsv: the run's key, wrk's exact counts (NA without a result), CPU ticks."""
        fields = ("requests", "bytes", "duration_us", "p99_us", "connect", "read", "write", "status", "timeout")
        values = [str(result[k]) for k in fields] if result else ["NA"] * len(fields)
        with open(self.raw, "a", encoding="utf-8") as f:
            f.write("\t".join([*map(str, key), *values, str(ticks)]) + "\n")

    def measure(self, t, load, level, v, rnd):
        key = (t, load, level, v.name, v.log, rnd)
        d = self.work / f"t{t}"
        if v.stem not in self.broken and not self.procs.running(v.stem):
            tail(d / f"{v.stem}.log")
            self.mark_broken(v, t, f"died before the {load} run of round {rnd}")
        if v.stem in self.broken:
            self.raw_row(key, None, 0)
            return
        out = d / f"wrk-{load}-{level}-{v.stem}-{rnd}.txt"
        pids = tree_pids([self.procs.pid(v.stem)])
        args = self.wrk_args(load, level, self.port(v, LOAD_FRONT[load]))
        before = cpu_ticks(pids)
        rc = run_wrk(self.net.client, ["-s", str(self.work / "result.lua"), *args], out,
                     self.s.duration + 60)
        after = cpu_ticks(pids)
        if rc != 0:
            log(f"wrk exited with status {rc if rc is not None else 'timeout'} for {v.label}/{load} (see {out})")
        result = wrk_result(out)
        if not self.procs.running(v.stem):
            tail(d / f"{v.stem}.log")
            self.mark_broken(v, t, f"died during the {load} run of round {rnd}")
            result = None
        if result is None:
            log(f"no result from wrk for {v.label}/{load} round {rnd}")
        else:
            summary = squeeze(" ".join(l for l in out.read_text(errors="replace").splitlines()
                                       if re.match(r"(Requests|Transfer)/sec", l)))
            lvl = f" {level}" if len(self.s.levels) > 1 else ""
            log(f"T={t} {load}{lvl} round {rnd}/{self.s.rounds} {v.label}: {summary} cpu={after - before} ticks")
        self.raw_row(key, result, after - before)

    def matrix(self):
        """For each T, start all balancers, then for each load, level and round run the variants
        that apply to that load in turn (the starting one rotates each round, so none always runs
        first)."""
        s = self.s
        (self.work / "result.lua").write_text(RESULT_LUA)
        self.raw.write_text("threads\tload\tlevel\tbalancer\tlog\tround\trequests\tbytes\tduration_us\t"
                            "p99_us\terr_connect\terr_read\terr_write\terr_status\terr_timeout\tcpu_ticks\n")
        per_load = {l: [v for v in self.variants if applies(v.name, l)] for l in s.loads}
        runs = sum(len(vs) for vs in per_load.values()) * len(s.threads) * s.rounds * len(s.levels)
        log(f"{runs} wrk runs of {s.duration}s: about {(runs * (s.duration + s.settle + 1) + 59) // 60} min")
        (self.work / "www/100m").read_bytes()  # into the page cache before anything is timed
        for t in s.threads:
            self.start_balancers(t)
            self.warm_up()
            for load in s.loads:
                vs = per_load[load]
                for level in s.levels:
                    for rnd in range(1, s.rounds + 1):
                        for k in range(len(vs)):
                            self.measure(t, load, level, vs[(k + rnd - 1) % len(vs)], rnd)
                            sleep(s.settle)
            self.procs.stop(*(v.stem for v in self.variants))
            time.sleep(1)

    # Report.

    def meta(self, command, loadavg_start):
        """meta.tsv for report.py: the machine, versions, the command and how the runs were made."""
        s, net = self.s, self.net
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), "")
        m = [("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
             ("nproc", str(len(os.sched_getaffinity(0)))), ("kernel", os.uname().release), ("cpu", cpu),
             ("clk_tck", str(os.sysconf("SC_CLK_TCK"))),
             ("haproxy", word(first_line(["haproxy", "-v"]), 3)),
             ("nginx", first_line(["nginx", "-v"]).split("nginx/", 1)[-1]),
             ("wrk", word(first_line(["wrk", "-v"]), 2))]
        if self.ringlb_bin:
            m += [("ringlb", first_line([self.ringlb_bin, "--version"])),
                  ("ringlb_src", ringlb_source(s.ringlb, self.ringlb_bin))]
        if s.ringlb_base:
            m += [("ringlb_base", f"{first_line([s.ringlb_base, '--version'])} (binary {s.ringlb_base})")]
        m += [("command", command), ("loadavg", f"{loadavg_start} at the start, {loadavg()} at the end")]
        m += [("note", n) for n in self.notes]
        m += [("duration", str(s.duration)), ("rounds", str(s.rounds)), ("wrk_threads", str(s.wrk_threads)),
              ("target", net.target_host), ("netns", net.target_netns),
              ("web_ports", " ".join(map(str, self.web_ports)))]
        if self.need_proxy:
            m.append(("web_proxy_ports", " ".join(map(str, self.web_proxy_ports))))
        if self.need_tls:
            m.append(("web_tls_ports", " ".join(map(str, self.web_tls_ports))))
        m += [("web_hosts", " ".join(net.web_hosts)), ("web_netns", " ".join(n for n in net.web_netns if n)),
              ("balancers", " ".join(s.balancers)), ("logs", " ".join(s.logs)), ("levels", " ".join(s.levels))]
        for level in s.levels:
            for load in ALL_LOADS:
                key = f"wrk_{load}" if level == "full" else f"wrk_{load}_{level}"
                m.append((key, "wrk " + " ".join(shell_quote(a) for a in self.wrk_args(load, level, "PORT"))))
        path = self.work / "meta.tsv"
        path.write_text("".join(f"{k}\t{v}\n" for k, v in m), encoding="utf-8")
        return path


STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def count_conn_lines(v, path):
    """Connection lines in a variant's log so far: ringlb's `conn ... frontend=bench...`, HAProxy's
    tcplog lines (they name the frontend and backend), every line of nginx's access log."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return 0
    kind = v.bal.kind
    if kind == "ringlb":
        return sum(1 for l in lines if " frontend=bench" in l)
    if kind == "haproxy":
        return sum(1 for l in lines if re.search(r" bench(-tls)? web(-tls)?/", l))
    return len(lines)


def wait_logged(v, path, want):
    """Bounded wait (3 s; ringlb flushes its batches at least every 100 ms) for want lines."""
    for _ in range(30):
        if count_conn_lines(v, path) >= want:
            return True
        time.sleep(0.1)
    return False


def emit(text, out):
    """The report to stdout, and to out when given."""
    print(text)
    sys.stdout.flush()
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        log(f"report written to {out}")


def cmd_run(args):
    command = command_line(RUN_KNOBS, "run", args)
    out = parse_args("run", args)
    s = run_settings()
    fronts = balancer_fronts(s)
    need_tls = any("tls" in f for f in fronts.values())
    net = lab_network(need_tls)
    with workdir("ringlb-bench.", s.keep) as work, Processes() as procs:
        bench = RunBench(s, net, fronts, work, procs)
        die_if_busy(bench.used_ports(), net.server)  # before any install or build
        bench.prepare_tools()
        raise_fd_limit()
        bench.start_backends()
        loadavg_start = loadavg()
        bench.matrix()
        meta = bench.meta(command, loadavg_start)
        text = report.render(str(meta), str(bench.raw))
    emit(text, out)


# ---------------------------------------------------------------------------------------------
# reload

RELOAD_KNOBS = ("DURATION", "ROUNDS", "INTERVAL_MS", "CONNECTIONS", "WRK_THREADS", "WORKERS", "FORWARD",
                "RINGLB", "INSTALL", "PORT_BASE", "SETTLE")

RELOAD_BACKEND_CONF = """worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    types {{ text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        index index.html;
    }}
}}
"""

RELOAD_LUA = """done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

ERROR_KINDS = ("connect", "read", "write", "timeout", "status")


@dataclass
class ReloadSettings:
    duration: int
    rounds: int
    interval_ms: int
    connections: int
    wrk_threads: int
    workers: int
    forward: str
    ringlb: str
    install: bool
    port_base: int
    settle: int
    keep: bool


def reload_settings():
    s = ReloadSettings(
        duration=int_knob("DURATION", 20, 1, 3600),
        rounds=int_knob("ROUNDS", 1, 1, 20),
        interval_ms=int_knob("INTERVAL_MS", 100, 10, 60000),
        connections=int_knob("CONNECTIONS", 50, 1, 10000),
        wrk_threads=int_knob("WRK_THREADS", 2, 1, 64),
        workers=int_knob("WORKERS", 2, 1, 64),
        forward=knob("FORWARD", "auto"),
        ringlb=os.environ.get("RINGLB", ""),
        install=knob("INSTALL", "1") == "1",
        port_base=int_knob("PORT_BASE", 18380, 1024, 65000),
        settle=int_knob("SETTLE", 2, 0, 60),
        keep=knob("KEEP", "0") == "1",
    )
    if s.forward not in ("auto", "copy", "splice"):
        die(f"FORWARD must be auto, copy or splice, not '{s.forward}'")
    if s.connections < s.wrk_threads:
        die("CONNECTIONS must be at least WRK_THREADS")
    return s


def reload_config(s, web_ports, lb_port, extra_port, which):
    """Config A: web1, web2 (weights 1, 1). B: web1 weight 2, web2, a third server web2b (web2's
    address under another name: a new server identity), and a second frontend on extra_port."""
    frontends = [{"name": "bench", "bind": [f"127.0.0.1:{lb_port}"], "backend": "web",
                  "forward": s.forward, "log": False}]
    servers = [{"name": "web1", "addr": f"127.0.0.1:{web_ports[0]}", "weight": 2 if which == "B" else 1},
               {"name": "web2", "addr": f"127.0.0.1:{web_ports[1]}"}]
    if which == "B":
        servers.append({"name": "web2b", "addr": f"127.0.0.1:{web_ports[1]}"})
        frontends.append({"name": "extra", "bind": [f"127.0.0.1:{extra_port}"], "backend": "web", "log": False})
    conf = {"workers": s.workers, "grace": "2s", "frontends": frontends,
            "backends": [{"name": "web", "balance": "roundrobin",
                          "timeouts": {"connect": "5s", "client": "50s", "server": "50s"},
                          "servers": servers}]}
    return json.dumps(conf, indent=2) + "\n"


def fetch(port, path="/"):
    """One GET on a new connection: the body, or None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        return conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class ReloadBench:
    """One `bench/reload`: backends, ringlb, then rounds of (baseline, reloads)."""

    def __init__(self, s, work, procs):
        self.s, self.work, self.procs = s, work, procs
        pb = s.port_base
        self.web_ports = [pb + 1, pb + 2]
        self.lb_port, self.extra_port = pb + 20, pb + 21
        self.ringlb_bin = ""
        self.config = work / "ringlb.json"
        self.lb_log = work / "ringlb.log"
        self.sums = {m: dict.fromkeys(("requests", "duration_us", *ERROR_KINDS, "reloads", "hups"), 0)
                     for m in ("base", "reload")}
        self.wrk_args = [f"-t{s.wrk_threads}", f"-c{s.connections}", f"-d{s.duration}s", "-H",
                         "Connection: close", "-s", str(work / "result.lua"), f"http://127.0.0.1:{self.lb_port}/"]

    def prepare_tools(self):
        missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk")) if not shutil.which(tool)]
        install_missing(missing, self.s.install)
        for tool in ("nginx", "wrk"):
            if not shutil.which(tool):
                die(f"{tool} not found after install")
        self.ringlb_bin = ringlb_binary(self.s.ringlb)

    def start_backends(self):
        """Two nginx (nginx-light), one worker each, no access log, a 612-byte page."""
        www = self.work / "www"
        www.mkdir()
        (www / "index.html").write_bytes(b"x" * PAGE_SIZE)
        www.chmod(0o755)
        (www / "index.html").chmod(0o644)
        for i in (1, 2):
            d = self.work / f"web{i}"
            (d / "tmp").mkdir(parents=True)
            conf = d / "nginx.conf"
            conf.write_text(RELOAD_BACKEND_CONF.format(d=d, www=www, port=self.web_ports[i - 1]))
            if subprocess.run(["nginx", "-t", "-q", "-c", str(conf), "-e", str(d / "error.log")],
                              check=False).returncode:
                die(f"nginx backend config web{i} is invalid")
            self.procs.start(f"web{i}", d / "stdout.log", ["nginx", "-c", str(conf), "-e", str(d / "error.log")])
        for i in (1, 2):
            self.must_listen(f"web{i}", self.web_ports[i - 1], self.work / f"web{i}/error.log")

    def must_listen(self, name, port, logpath):
        if not wait_listen(self.procs, name, "127.0.0.1", port, logpath, []):
            die(f"{name} did not start listening on port {port} (log above)")

    def start_ringlb(self):
        for which in ("A", "B"):
            path = self.work / f"{which.lower()}.json"
            path.write_text(reload_config(self.s, self.web_ports, self.lb_port, self.extra_port, which))
            if subprocess.run([self.ringlb_bin, "-c", str(path), "--check"], stdout=sys.stderr,
                              check=False).returncode:
                die(f"config {path.name} is invalid")
        shutil.copyfile(self.work / "a.json", self.config)
        self.procs.start("ringlb", self.lb_log, [self.ringlb_bin, "-c", str(self.config)])
        self.must_listen("ringlb", self.lb_port, self.lb_log)
        want = hashlib.sha256(b"x" * PAGE_SIZE).digest()
        for _ in range(4):
            body = fetch(self.lb_port)
            if body is None or hashlib.sha256(body).digest() != want:
                die("ringlb does not forward the page byte-exact")
        log(f"ringlb {first_line([self.ringlb_bin, '--version'])} on 127.0.0.1:{self.lb_port}, "
            f"{self.s.workers} workers, backends on :{self.web_ports[0]} and :{self.web_ports[1]}")

    def reload_lines(self, word_):
        """How many `reload #N ok|failed` lines ringlb has logged so far."""
        # After the line's RFC 3339 timestamp and level, when it has them.
        pattern = re.compile(rf"^(?:\S+Z \w+ )?ringlb: reload #[0-9]* {word_}")
        text = self.lb_log.read_text(errors="replace").splitlines()
        return sum(1 for l in text if pattern.match(l))

    def hup_with(self, which):
        replace_file(self.work / f"{which}.json", self.config)
        os.kill(self.procs.pid("ringlb"), signal.SIGHUP)

    def reload_loop(self, wrk):
        """While wrk runs: rewrite the config and SIGHUP every INTERVAL_MS, at most
        DURATION*1000/INTERVAL_MS times; returns (SIGHUPs sent, the config due next)."""
        interval = self.s.interval_ms / 1000
        nxt, hups = "b", 0
        time.sleep(interval)
        for _ in range(self.s.duration * 1000 // self.s.interval_ms):
            if wrk.poll() is not None:
                break
            self.hup_with(nxt)
            hups += 1
            nxt = "a" if nxt == "b" else "b"
            time.sleep(interval)
        return hups, nxt

    def run(self, mode, rnd):
        """One wrk run; with mode reload, the reload loop runs alongside."""
        out = self.work / f"wrk-{mode}-{rnd}.txt"
        ok_before, failed_before = self.reload_lines("ok"), self.reload_lines("failed")
        hups, nxt = 0, "b"
        with open(out, "wb") as f:
            wrk = subprocess.Popen(["wrk", *self.wrk_args], stdout=f, stderr=subprocess.STDOUT)
            try:
                if mode == "reload":
                    hups, nxt = self.reload_loop(wrk)
                rc = wrk.wait(timeout=self.s.duration + 60)  # wrk stops itself; a guard only
            except subprocess.TimeoutExpired:
                rc = "timeout"
            finally:
                if wrk.poll() is None:
                    wrk.kill()
                    wrk.wait()
        if rc != 0:
            log(f"wrk exited with status {rc} ({out})")
        if not self.procs.running("ringlb"):
            tail(self.lb_log)
            die(f"ringlb died during the {mode} run")
        # Let the last reload finish before counting; then back to config A for the next run
        # (that reload, after wrk ended, is not counted).
        time.sleep(0.5)
        ok_after = self.reload_lines("ok")
        if nxt == "a":
            self.hup_with("a")
            time.sleep(0.5)
        if self.reload_lines("failed") != failed_before:
            die(f"a reload failed (see {self.lb_log} with KEEP=1)")
        self.add(mode, rnd, out, ok_after - ok_before, hups)

    def add(self, mode, rnd, out, reloads, hups):
        result = wrk_result(out)
        if result is None:
            tail(out, 1000)
            die(f"no result from wrk ({mode} run, round {rnd})")
        sums = self.sums[mode]
        for k, v in result.items():
            sums[k] += v
        sums["reloads"] += reloads
        sums["hups"] += hups
        summary = squeeze(" ".join(l for l in out.read_text(errors="replace").splitlines()
                                   if re.match(r"Requests/sec|  Socket errors|  Non-2xx", l)))
        log(f"round {rnd} {mode}: {summary} reloads={reloads}")

    def rounds(self):
        s = self.s
        (self.work / "result.lua").write_text(RELOAD_LUA)
        log(f"{s.rounds} round(s) of 2 wrk runs of {s.duration}s: about {s.rounds * 2 * (s.duration + s.settle + 2)} s")
        for rnd in range(1, s.rounds + 1):
            for mode in ("base", "reload"):
                self.run(mode, rnd)
                sleep(s.settle)

    def row(self, mode, label):
        m = self.sums[mode]
        failed = sum(m[k] for k in ERROR_KINDS)
        rate = f"{m['requests'] * 1e6 / m['duration_us'] if m['duration_us'] > 0 else 0:.0f}"
        per, haproxy = "–", "–"
        if m["reloads"] > 0:
            per, haproxy = f"{failed / m['reloads']:.3f}", f"{float(rate) / 10000:.2f}"
        cells = [label, m["requests"], rate, m["reloads"], m["connect"], m["read"], m["write"], m["timeout"],
                 m["status"], per, haproxy]
        return "| " + " | ".join(map(str, cells)) + " |"

    def report(self, command):
        s = self.s
        version = word(first_line([self.ringlb_bin, "--version"]), 2)
        wrk = ["wrk"]
        for a in self.wrk_args:
            if a.endswith("result.lua"):
                wrk.append("-s result.lua")
            elif a != "-s":
                wrk.append(shell_quote(a))
        return "\n".join([
            "## ringlb: failed connections per reload", "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {len(os.sched_getaffinity(0))} CPUs, kernel "
            f"{os.uname().release}; ringlb {version} ({ringlb_source(s.ringlb, self.ringlb_bin)}), {s.workers} workers, "
            f"forward {s.forward}; wrk -t{s.wrk_threads} -c{s.connections}, {s.duration} s per run, {s.rounds} "
            f"round(s); load average {loadavg()} at the end.", "",
            "| run | connections | conn/s | reloads | connect err | read err | write err | timeouts | non-2xx "
            "| failed per reload | HAProxy doc: failed per reload at this rate |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            self.row("base", "baseline, no reloads"),
            self.row("reload", f"SIGHUP every {s.interval_ms} ms"), "",
            f"Reloads: {self.sums['reload']['hups']} SIGHUPs sent, {self.sums['reload']['reloads']} `reload #N ok` "
            "lines, none failed. Each request is a new connection (`Connection: close`); a failed connection is "
            "any wrk socket error (connect, read, write, timeout) or a non-2xx answer. HAProxy documents about 1 "
            "failed connection per reload per 10k new connections/s (without fd passing).", "",
            f"Command: `{command}`", "",
            f"wrk: `{' '.join(wrk)}`"])


def cmd_reload(args):
    command = command_line(RELOAD_KNOBS, "reload", args)
    out = parse_args("reload", args)
    s = reload_settings()
    pb = s.port_base
    die_if_busy([pb + 1, pb + 2, pb + 20, pb + 21], [])
    with workdir("ringlb-reload.", s.keep) as work, Processes() as procs:
        bench = ReloadBench(s, work, procs)
        bench.prepare_tools()
        raise_fd_limit()
        bench.start_backends()
        bench.start_ringlb()
        bench.rounds()
        text = bench.report(command)
    emit(text, out)


# ---------------------------------------------------------------------------------------------

SUBCOMMANDS = {"run": ("bench", cmd_run), "reload": ("reload", cmd_reload)}


def on_sigterm(signum, frame):
    raise Terminated()


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in SUBCOMMANDS:
        print(__doc__.split("\n--- run ---", 1)[0], file=sys.stderr)
        sys.exit(2)
    sub = sys.argv[1]
    Tool.tag, run = SUBCOMMANDS[sub]
    Tool.prog = invoked_as(sub)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        run(sys.argv[2:])
    except Fatal as e:
        print(f"{Tool.prog}: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    except Terminated:
        log("terminated")
        sys.exit(143)
    except BrokenPipeError:  # e.g. `bench/run -h | head`
        sys.exit(0)


if __name__ == "__main__":
    main()
