#!/usr/bin/env python3
"""The report of bench/run (bench.py run) and its sanity checks.

  report.py check [--tls SNI] HOST PORT PATH SIZE SHA256 [PATH SIZE SHA256 ...]
      fetch each PATH over a new connection (with --tls: HTTPS to HOST with SNI as the server
      name, certificate not verified); exit 1 unless status 200 and the body is byte-exact
  report.py refused HOST PORT SNI
      exit 0 if a TLS handshake to HOST:PORT with server name SNI fails (the balancer closed it)
  report.py report META_TSV RAW_TSV
      print the markdown report (medians over rounds, ratios to HAProxy, cost of PROXY and SNI,
      of the connection log, and this build ÷ RINGLB_BASE); bench.py calls render() directly
"""

import csv
import hashlib
import http.client
import socket
import ssl
import statistics
import sys

LOADS = {
    "keepalive": "612 B page, keep-alive",
    "close": "612 B page, `Connection: close`",
    "bulk": "100 MiB downloads",
    "tlsclose": "612 B page over HTTPS, `Connection: close` (a full TLS handshake per request)",
}
ORDER = ["haproxy", "haproxy-proxy", "nginx", "ringlb-splice", "ringlb-copy", "ringlb-auto",
         "ringlb-base", "ringlb-proxy", "ringlb-sni"]
LEVELS = ["full", "light"]
LOGS = ["off", "on"]
LABEL = {
    "haproxy": "HAProxy (mode tcp, splice-auto)",
    "haproxy-proxy": "HAProxy + send-proxy-v2",
    "nginx": "nginx stream",
    "ringlb-splice": "ringlb forward=splice",
    "ringlb-copy": "ringlb forward=copy",
    "ringlb-auto": "ringlb forward=auto",
    "ringlb-base": "ringlb-base forward=auto (RINGLB_BASE)",
    "ringlb-proxy": "ringlb auto + send_proxy v2",
    "ringlb-sni": "ringlb auto + SNI routes",
}
# The forward modes compared with each other (ringlb-proxy and ringlb-sni are auto plus a feature).
MODES = ["ringlb-splice", "ringlb-copy", "ringlb-auto"]
# (measured, baseline): the cost of a feature is measured ÷ baseline, on every load both ran
# (ringlb-sni runs only tlsclose); the connection loads, which the budget is about, first.
COSTS = [("ringlb-proxy", "ringlb-auto"), ("haproxy-proxy", "haproxy"), ("ringlb-sni", "ringlb-auto")]
COST_LOADS = ["close", "tlsclose", "keepalive", "bulk"]
BUDGET = 0.95  # "cost no more than 5% of connection rate"
# This build ÷ another (RINGLB_BASE): "costs at most 5% CPU per request".
BASE_PAIR = ("ringlb-auto", "ringlb-base")
BASE_BUDGET = 1.05
ERRS = ["err_connect", "err_read", "err_write", "err_status", "err_timeout"]


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address with a given server name (SNI), like curl --resolve NAME:PORT:HOST -k."""

    def __init__(self, host, port, sni, timeout):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(host, port, timeout=timeout, context=ctx)
        self.sni = sni

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.sni)


def check(args):
    sni = None
    if args[:1] == ["--tls"]:
        sni, args = args[1], args[2:]
    host, port, rest = args[0], int(args[1]), args[2:]
    if len(rest) % 3:
        sys.exit("check: PATH SIZE SHA256 triples expected")
    scheme = "https" if sni else "http"
    for i in range(0, len(rest), 3):
        path, size, want = rest[i], int(rest[i + 1]), rest[i + 2]
        if sni:
            conn = SNIConnection(host, port, sni, timeout=10)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            sys.exit(f"check {scheme}://{host}:{port}{path}{f' (SNI {sni})' if sni else ''}: {e!r}")
        finally:
            conn.close()
        got = hashlib.sha256(body).hexdigest()
        if resp.status != 200 or len(body) != size or got != want:
            sys.exit(
                f"check {scheme}://{host}:{port}{path}: status {resp.status}, {len(body)} bytes "
                f"(want 200, {size} bytes), sha256 {'ok' if got == want else 'differs'}"
            )


def refused(args):
    host, port, sni = args[0], int(args[1]), args[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        sys.exit(f"refused {host}:{port}: cannot connect: {e!r}")
    try:
        with ctx.wrap_socket(sock, server_hostname=sni):
            pass
    except (ssl.SSLError, ConnectionError):
        return  # closed during the handshake: no route for that name
    except OSError as e:
        sys.exit(f"refused {host}:{port} (SNI {sni}): {e!r}, not a closed handshake")
    finally:
        sock.close()
    sys.exit(f"refused {host}:{port}: a TLS handshake with SNI {sni} succeeded; it should have no route")


def num(x):
    return None if x in ("", "NA") else int(x)


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def fmt_latency(us):
    if us is None:
        return "n/a"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1e6:.2f} s"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    """(max - min) / median over the rounds: how far apart the rounds were."""
    values = [v for v in values if v is not None]
    if len(values) < 2 or not statistics.median(values):
        return 0.0
    return (max(values) - min(values)) / statistics.median(values)


def winner(cs, key, spread_key, best):
    """The best mode by key; marked '(tie)' when its lead over the runner-up is within the
    rounds' own spread (half the larger max-min range of the two)."""
    ranked = sorted((m for m in cs if cs[m][key] is not None), key=lambda m: cs[m][key], reverse=best == max)
    if not ranked:
        return "n/a"
    name = ranked[0][7:]
    if len(ranked) > 1:
        a, b = cs[ranked[0]], cs[ranked[1]]
        lead = abs(a[key] - b[key]) / b[key] if b[key] else 0
        if lead <= max(a[spread_key], b[spread_key]) / 2:
            return f"{name} (tie with {ranked[1][7:]})"
    return name


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_range(values, spec):
    """median (min–max) of the rounds."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    m = format(statistics.median(values), spec)
    if len(values) < 2:
        return m
    return f"{m} ({format(min(values), spec)}–{format(max(values), spec)})"


def read_meta(meta_path):
    meta, notes = {}, []
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            if k == "note":
                notes.append(v)
            else:
                meta[k] = v
    return meta, notes


def read_rows(raw_path, clk):
    """raw.tsv with the numbers of each run derived; a file without level or log columns (from
    before those axes) reads as level full, log off."""
    with open(raw_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["level"] = r.get("level") or "full"
        r["log"] = r.get("log") or "off"
        req, byt, dur = num(r["requests"]), num(r["bytes"]), num(r["duration_us"])
        cpu_s = int(r["cpu_ticks"]) / clk
        ok = req is not None and dur
        r["rps"] = req / (dur / 1e6) if ok else None
        r["gbps"] = byt / 1e9 / (dur / 1e6) if ok else None
        r["p99"] = num(r["p99_us"]) if ok and req > 0 else None
        r["cpu_req"] = cpu_s * 1e6 / req if ok and req > 0 else None
        r["cpu_gb"] = cpu_s / (byt / 1e9) if ok and byt > 0 else None
        r["errors"] = sum(num(r[e]) or 0 for e in ERRS) if ok else None
        bulk = r["load"] == "bulk"
        r["rate"] = r["gbps"] if bulk else r["rps"]
        r["cpu"] = r["cpu_gb"] if bulk else r["cpu_req"]
    return rows


def key_of(r):
    """(T, load, level, balancer, log): the runs of one cell, one per round."""
    return int(r["threads"]), r["load"], r["level"], r["balancer"], r["log"]


def cell_of(rs, bulk):
    """The medians of one cell's rounds."""
    c = {
        "rounds": len(rs),
        "failed": sum(1 for r in rs if r["rps"] is None),
        "rps": med(r["rps"] for r in rs),
        "gbps": med(r["gbps"] for r in rs),
        "p99": med(r["p99"] for r in rs),
        "cpu_req": med(r["cpu_req"] for r in rs),
        "cpu_gb": med(r["cpu_gb"] for r in rs),
        "errors": sum(r["errors"] or 0 for r in rs),
    }
    c["rate"] = c["gbps"] if bulk else c["rps"]
    c["cpu"] = c["cpu_gb"] if bulk else c["cpu_req"]
    c["rate_spread"] = spread(r["rate"] for r in rs)
    c["cpu_spread"] = spread(r["cpu"] for r in rs)
    return c


class Axes:
    """The level and log columns, shown only when a run had more than the defaults (full, off),
    so a default run's report reads as it always did."""

    def __init__(self, levels, logs):
        self.level = levels != ["full"]
        self.log = logs != ["off"]

    def heads(self, log=True):
        return [h for h, on in (("level", self.level), ("log", self.log and log)) if on]

    def cells(self, lv, lg=None):
        return [c for c, on in ((lv, self.level), (lg, self.log and lg is not None)) if on]


def line(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def paired(a, b):
    """Each round's ratio a ÷ b ({round: value} each): both ran in that round, minutes apart."""
    return [a[k] / b[k] for k in a if a[k] is not None and b.get(k)]


def verdict(pairs, medians_ratio, within, failed):
    """'yes' when every round is within the budget, '**no**' when none is, else 'within noise'."""
    if medians_ratio is None or not pairs:
        v = "n/a"
    elif all(within(p) for p in pairs):
        v = "yes"
    elif not any(within(p) for p in pairs):
        v = "**no**"
    else:
        v = "within noise"
    if v in ("yes", "**no**") and len(pairs) == 1:
        v += " (1 round: noise unknown)"
    if failed:
        v += f" ({failed} failed runs left out)"
    return v


def render(meta_path, raw_path):
    """The markdown report of a run."""
    meta, notes = read_meta(meta_path)
    clk = int(meta["clk_tck"])
    rows = read_rows(raw_path, clk)
    runs = {}
    for r in rows:
        runs.setdefault(key_of(r), []).append(r)
    d = {
        "meta": meta, "clk": clk, "rows": rows,
        "cell": {k: cell_of(rs, k[1] == "bulk") for k, rs in runs.items()},
        # per-round rate and CPU of each cell, to pair rounds in the comparison tables
        "rates": {k: {r["round"]: r["rate"] for r in rs} for k, rs in runs.items()},
        "cpus": {k: {r["round"]: r["cpu"] for r in rs} for k, rs in runs.items()},
        "threads": sorted({k[0] for k in runs}),
        "loads": [l for l in LOADS if any(k[1] == l for k in runs)],
        "levels": [v for v in LEVELS if any(k[2] == v for k in runs)],
        "bals": [b for b in ORDER if any(k[3] == b for k in runs)],
        "logs": [v for v in LOGS if any(k[4] == v for k in runs)],
    }
    d["ax"] = Axes(d["levels"], d["logs"])
    out = []
    header(out.append, d, notes)
    for l in d["loads"]:
        for lv in d["levels"]:
            load_table(out.append, d, l, lv)
    modes_table(out.append, d)
    cost_table(out.append, d)
    base_table(out.append, d)
    log_table(out.append, d)
    details(out.append, d)
    return "\n".join(out)


def report(meta_path, raw_path):
    print(render(meta_path, raw_path))


def header(w, d, notes):
    meta, clk, ax = d["meta"], d["clk"], d["ax"]
    w(f"## ringlb benchmark, {meta['date']}")
    w("")
    w(f"- machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}")
    vers = [f"HAProxy {meta['haproxy']}", f"nginx {meta['nginx']}", f"wrk {meta['wrk']}"]
    if "ringlb" in meta:
        vers.append(f"{meta['ringlb']} ({meta['ringlb_src']})")
    if "ringlb_base" in meta:
        vers.append(f"ringlb-base: {meta['ringlb_base']}")
    w(f"- versions: {', '.join(vers)}")
    w(f"- command: `{meta['command']}`")
    if "loadavg" in meta:
        w(f"- load average (1, 5, 15 min): {meta['loadavg']}")
    target = meta["target"] + (f" from netns {meta['netns']}" if meta.get("netns") else "")
    hosts = meta.get("web_hosts", "127.0.0.1 127.0.0.1").split()
    ports = meta["web_ports"].split()
    backends = ", ".join(f"{h}:{p}" for h, p in zip(hosts, ports))
    if meta.get("web_netns"):
        backends += f" (netns {', '.join(meta['web_netns'].split())})"
    if meta.get("web_proxy_ports"):
        backends += f", `listen ... proxy_protocol` on ports {', '.join(meta['web_proxy_ports'].split())}"
    if meta.get("web_tls_ports"):
        backends += (f", `listen ... ssl` (ECDSA P-256, no session cache or tickets) on ports "
                     f"{', '.join(meta['web_tls_ports'].split())}")
    w(
        f"- {meta['rounds']} round(s) of {meta['duration']} s per balancer and load, balancers run "
        f"alternately (the first one rotates each round); every number is the median over the "
        f"rounds. Target {target}; backends: 2 nginx (1 worker each, keep-alive, sendfile) on "
        f"{backends}; T = threads of every balancer "
        f"(HAProxy `nbthread`, nginx `worker_processes`, ringlb `workers`)."
    )
    w(
        "- CPU: utime+stime of all the balancer's processes and threads (/proc/PID/stat fields "
        f"14+15, {clk} ticks/s) over the wrk run, per completed request (µs) and per 10^9 bytes "
        "received by wrk (s). The client and backends share the same cores. "
        "Ratios are balancer ÷ HAProxy at the same T: rate is req/s (GB/s for 100 MiB), "
        "CPU is µs/req (s/GB for 100 MiB); rate > 1 and CPU < 1 are better than HAProxy."
    )
    if ax.log:
        w("- log: `log=on` writes each balancer's connection log into a file in the temp dir: "
          "ringlb `\"log\": true` (one line per connection on stderr), HAProxy `log stderr format "
          "raw local0` with `option tcplog`, nginx stream `access_log`; `log=off` logs no "
          "connections. Each setting is an instance of its own on its own port, run in the same "
          "rounds; ratios are to HAProxy with the same log setting.")
    if ax.level:
        w("- levels: `full` is the saturating load; `light` is one wrk thread and fewer "
          "connections, so the balancer is not saturated (each table shows its wrk command); "
          "ratios are to HAProxy at the same level.")
    for n in notes:
        w(f"- **left out:** {n} (its runs count as failed)")


def load_table(w, d, l, lv):
    cell, ax = d["cell"], d["ax"]
    if not any(k[1] == l and k[2] == lv for k in cell):
        return
    w("")
    w(f"### {l}: {LOADS[l]}" if lv == "full" else f"### {l}, {lv} load: {LOADS[l]}")
    w("")
    w(f"`{d['meta'].get('wrk_' + l if lv == 'full' else f'wrk_{l}_{lv}', '')}`")
    w("")
    w("| T | balancer | req/s | GB/s | p99 | CPU µs/req | CPU s/GB | rate ÷ HAProxy | CPU ÷ HAProxy | errors |")
    w("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in d["threads"]:
        for b in d["bals"]:
            for lg in d["logs"]:
                c = cell.get((t, l, lv, b, lg))
                if c is None:
                    continue
                base = cell.get((t, l, lv, "haproxy", lg))
                rr = ratio(c["rate"], base and base["rate"])
                cr = ratio(c["cpu"], base and base["cpu"])
                errs = str(c["errors"])
                if c["failed"]:
                    errs = f"{c['failed']}/{c['rounds']} runs failed" + (f", {errs}" if c["errors"] else "")
                label = LABEL[b] + (f" log={lg}" if ax.log else "")
                w(
                    f"| {t} | {label} | {fmt(c['rps'], ',.0f')} | {fmt(c['gbps'], '.3g')} | "
                    f"{fmt_latency(c['p99'])} | {fmt(c['cpu_req'], ',.1f')} | {fmt(c['cpu_gb'], '.3g')} | "
                    f"{fmt(rr, '.2f')} | {fmt(cr, '.2f')} | {errs} |"
                )


def modes_table(w, d):
    cell, ax = d["cell"], d["ax"]
    modes = [b for b in d["bals"] if b in MODES]
    table = []
    wins = {m: [0, 0] for m in modes}
    for l in d["loads"]:
        for lv in d["levels"]:
            for t in d["threads"]:
                for lg in d["logs"]:
                    cs = {m: cell[t, l, lv, m, lg] for m in modes
                          if (t, l, lv, m, lg) in cell and cell[t, l, lv, m, lg]["rate"] is not None}
                    if not cs:
                        continue
                    fast = winner(cs, "rate", "rate_spread", max)
                    lean = winner(cs, "cpu", "cpu_spread", min)
                    wins.get("ringlb-" + fast.split()[0], [0, 0])[0] += 1
                    wins.get("ringlb-" + lean.split()[0], [0, 0])[1] += 1
                    unit = ".3g" if l == "bulk" else ",.0f"
                    rates = [fmt(cs[m]["rate"], unit) if m in cs else "n/a" for m in modes]
                    cpus = [fmt(cs[m]["cpu"], ".3g" if l == "bulk" else ".1f") if m in cs else "n/a" for m in modes]
                    table.append(line([l, *ax.cells(lv, lg), t, *rates, *cpus, fast, lean]))
    if len(modes) <= 1 or not table:
        return
    w("")
    w("### ringlb forward modes")
    w("")
    w("Rate is req/s (GB/s for bulk), CPU is µs/req (s/GB for bulk). A winner is marked as a tie "
      "when its lead is within the spread of the rounds.")
    w("")
    w(line(["load", *ax.heads(), "T", *(f"{m[7:]} rate" for m in modes), *(f"{m[7:]} CPU" for m in modes),
            "fastest", "least CPU"]))
    w("|---|" + "---|" * len(ax.heads()) + "--:|" + "--:|" * (2 * len(modes)) + "---|---|")
    for row in table:
        w(row)
    w("")
    w("Rows won, ties included (fastest / least CPU): "
      + ", ".join(f"{m[7:]} {a}/{b}" for m, (a, b) in wins.items()) + ".")


def cost_table(w, d):
    cell, ax, rates = d["cell"], d["ax"], d["rates"]
    rows = []
    for t in d["threads"]:
        for l in COST_LOADS:
            for lv in d["levels"]:
                for lg in d["logs"]:
                    for feat, base in COSTS:
                        a, b = rates.get((t, l, lv, feat, lg)), rates.get((t, l, lv, base, lg))
                        if not a or not b:
                            continue
                        unit = ".3g" if l == "bulk" else ",.0f"
                        pairs = paired(a, b)
                        ca, cb = cell[t, l, lv, feat, lg], cell[t, l, lv, base, lg]
                        rr = ratio(ca["rate"], cb["rate"])
                        v = verdict(pairs, rr, lambda p: p >= BUDGET, ca["failed"] + cb["failed"])
                        rng = f" ({min(pairs):.3f}–{max(pairs):.3f})" if len(pairs) > 1 else ""
                        rows.append(line([t, l, *ax.cells(lv, lg), f"{feat} ÷ {base}", fmt_range(a.values(), unit),
                                          fmt_range(b.values(), unit), f"{fmt(rr, '.3f')}{rng}", v,
                                          fmt(ratio(ca["cpu"], cb["cpu"]), ".2f")]))
    if not rows:
        return
    w("")
    w("### cost of PROXY and SNI")
    w("")
    w("The feature's rate ÷ the same balancer without it, at the same T: median (min–max over the "
      "rounds) of each, the ratio of the medians and, in brackets, the range of the per-round "
      "ratios (both ran in the same round). The budget is a cost of at most 5% "
      f"(ratio ≥ {BUDGET}) on the `close` row (`tlsclose` for SNI, which needs TLS): "
      "\"yes\" when every round's ratio is ≥ 0.95, \"no\" when none is, \"within noise\" "
      "otherwise (run more rounds). Rate is req/s (GB/s for bulk); the last column is CPU per "
      "request (per GB for bulk) ÷ the baseline's.")
    w("")
    w(line(["T", "load", *ax.heads(), "compared", "rate", "baseline rate", "ratio (per round)", "cost ≤ 5%?",
            "CPU ratio"]))
    w("|--:|---|" + "---|" * len(ax.heads()) + "---|--:|--:|--:|---|--:|")
    for row in rows:
        w(row)


def base_table(w, d):
    """ringlb-auto (this build) ÷ ringlb-base (RINGLB_BASE): CPU per request, per load, level, log."""
    cell, ax, cpus = d["cell"], d["ax"], d["cpus"]
    this, base = BASE_PAIR
    rows = []
    for t in d["threads"]:
        for l in COST_LOADS:
            for lv in d["levels"]:
                for lg in d["logs"]:
                    a, b = cpus.get((t, l, lv, this, lg)), cpus.get((t, l, lv, base, lg))
                    if not a or not b:
                        continue
                    unit = ".3g" if l == "bulk" else ".1f"
                    pairs = paired(a, b)
                    ca, cb = cell[t, l, lv, this, lg], cell[t, l, lv, base, lg]
                    cr = ratio(ca["cpu"], cb["cpu"])
                    v = verdict(pairs, cr, lambda p: p <= BASE_BUDGET, ca["failed"] + cb["failed"])
                    rng = f" ({min(pairs):.3f}–{max(pairs):.3f})" if len(pairs) > 1 else ""
                    rows.append(line([t, l, *ax.cells(lv, lg), fmt_range(a.values(), unit),
                                      fmt_range(b.values(), unit), f"{fmt(cr, '.3f')}{rng}", v,
                                      fmt(ratio(ca["rate"], cb["rate"]), ".2f")]))
    if not rows:
        return
    w("")
    w("### this build ÷ RINGLB_BASE")
    w("")
    w(f"CPU per request (per GB for bulk) of {this} (this build) ÷ {base} (the RINGLB_BASE binary), "
      "both `forward` auto with the same config, at the same T, level and log setting: median "
      "(min–max over the rounds) of each, the ratio of the medians and, in brackets, the range of the "
      "per-round ratios (both ran in the same round). The budget is at most 5% more CPU "
      f"(ratio ≤ {BASE_BUDGET}): \"yes\" when every round's ratio is ≤ {BASE_BUDGET}, \"no\" when none "
      "is, \"within noise\" otherwise (run more rounds). The last column is the rate ratio.")
    w("")
    w(line(["T", "load", *ax.heads(), f"CPU {this}", f"CPU {base}", "CPU ratio (per round)",
            "CPU ≤ +5%?", "rate ratio"]))
    w("|--:|---|" + "---|" * len(ax.heads()) + "--:|--:|--:|---|--:|")
    for row in rows:
        w(row)


def log_table(w, d):
    """Each balancer with its connection log on ÷ the same balancer with it off."""
    cell, ax, cpus = d["cell"], d["ax"], d["cpus"]
    if d["logs"] != LOGS:
        return
    rows = []
    for t in d["threads"]:
        for l in COST_LOADS:
            for lv in d["levels"]:
                for b in d["bals"]:
                    on, off = cpus.get((t, l, lv, b, "on")), cpus.get((t, l, lv, b, "off"))
                    if not on or not off:
                        continue
                    unit = ".3g" if l == "bulk" else ".1f"
                    pairs = paired(on, off)
                    con, coff = cell[t, l, lv, b, "on"], cell[t, l, lv, b, "off"]
                    rng = f" ({min(pairs):.3f}–{max(pairs):.3f})" if len(pairs) > 1 else ""
                    rows.append(line([t, l, *ax.cells(lv), LABEL[b], fmt_range(on.values(), unit),
                                      fmt_range(off.values(), unit),
                                      f"{fmt(ratio(con['cpu'], coff['cpu']), '.3f')}{rng}",
                                      fmt(ratio(con["rate"], coff["rate"]), ".2f")]))
    if not rows:
        return
    w("")
    w("### cost of the connection log")
    w("")
    w("CPU per request (per GB for bulk) of each balancer with `log=on` ÷ the same balancer with "
      "`log=off`, at the same T and level: median (min–max over the rounds) of each, the ratio of "
      "the medians and, in brackets, the range of the per-round ratios (both ran in the same "
      "round). The last column is the rate ratio.")
    w("")
    w(line(["T", "load", *ax.heads(log=False), "balancer", "CPU log=on", "CPU log=off",
            "CPU ratio (per round)", "rate ratio"]))
    w("|--:|---|" + "---|" * len(ax.heads(log=False)) + "---|--:|--:|--:|--:|")
    for row in rows:
        w(row)


def details(w, d):
    ax = d["ax"]
    w("")
    w("<details><summary>every run</summary>")
    w("")
    lv_head = ["level"] if ax.level else []
    lg_head = ["log"] if ax.log else []
    w(line(["T", "load", *lv_head, "balancer", *lg_head, "round", "requests", "bytes", "seconds", "req/s",
            "GB/s", "p99", "CPU ticks", "errors c/r/w/status/timeout"]))
    w("|--:|---|" + "---|" * len(lv_head) + "---|" + "---|" * len(lg_head)
      + "--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in d["rows"]:
        dur = num(r["duration_us"])
        errs = "/".join(r[e] for e in ERRS)
        lv = [r["level"]] if ax.level else []
        lg = [r["log"]] if ax.log else []
        w(line([r["threads"], r["load"], *lv, r["balancer"], *lg, r["round"], r["requests"], r["bytes"],
                fmt(dur and dur / 1e6, ".2f"), fmt(r["rps"], ",.0f"), fmt(r["gbps"], ".3g"),
                fmt_latency(r["p99"]), r["cpu_ticks"], errs]))
    w("")
    w("</details>")


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "check":
        check(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "refused":
        refused(sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
