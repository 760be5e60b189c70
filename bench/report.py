#!/usr/bin/env python3
"""Helpers for bench/run.

  report.py check [--tls SNI] HOST PORT PATH SIZE SHA256 [PATH SIZE SHA256 ...]
      fetch each PATH over a new connection (with --tls: HTTPS to HOST with SNI as the server
      name, certificate not verified); exit 1 unless status 200 and the body is byte-exact
  report.py refused HOST PORT SNI
      exit 0 if a TLS handshake to HOST:PORT with server name SNI fails (the balancer closed it)
  report.py report META_TSV RAW_TSV
      print the markdown report (medians over rounds, ratios to HAProxy, cost of PROXY and SNI)
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
         "ringlb-proxy", "ringlb-sni"]
LABEL = {
    "haproxy": "HAProxy (mode tcp, splice-auto)",
    "haproxy-proxy": "HAProxy + send-proxy-v2",
    "nginx": "nginx stream",
    "ringlb-splice": "ringlb forward=splice",
    "ringlb-copy": "ringlb forward=copy",
    "ringlb-auto": "ringlb forward=auto",
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


def report(meta_path, raw_path):
    meta, notes = {}, []
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            if k == "note":
                notes.append(v)
            else:
                meta[k] = v
    clk = int(meta["clk_tck"])
    with open(raw_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))

    # Per-round derived numbers.
    for r in rows:
        req, byt, dur = num(r["requests"]), num(r["bytes"]), num(r["duration_us"])
        cpu_s = int(r["cpu_ticks"]) / clk
        ok = req is not None and dur
        r["rps"] = req / (dur / 1e6) if ok else None
        r["gbps"] = byt / 1e9 / (dur / 1e6) if ok else None
        r["p99"] = num(r["p99_us"]) if ok and req > 0 else None
        r["cpu_req"] = cpu_s * 1e6 / req if ok and req > 0 else None
        r["cpu_gb"] = cpu_s / (byt / 1e9) if ok and byt > 0 else None
        r["errors"] = sum(num(r[e]) or 0 for e in ERRS) if ok else None

    threads = sorted({int(r["threads"]) for r in rows})
    loads = [l for l in LOADS if any(r["load"] == l for r in rows)]
    bals = [b for b in ORDER if any(r["balancer"] == b for r in rows)]
    # rate of each run, by (T, load, balancer) -> {round: rate}, to pair rounds in the cost table
    by_round = {}
    for r in rows:
        rate = r["gbps"] if r["load"] == "bulk" else r["rps"]
        by_round.setdefault((int(r["threads"]), r["load"], r["balancer"]), {})[r["round"]] = rate

    cell = {}
    for t in threads:
        for l in loads:
            for b in bals:
                rs = [r for r in rows if int(r["threads"]) == t and r["load"] == l and r["balancer"] == b]
                if not rs:
                    continue
                bulk = l == "bulk"
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
                c["rate_spread"] = spread(r["gbps" if bulk else "rps"] for r in rs)
                c["cpu_spread"] = spread(r["cpu_gb" if bulk else "cpu_req"] for r in rs)
                cell[t, l, b] = c

    out = []
    w = out.append
    w(f"## ringlb benchmark, {meta['date']}")
    w("")
    w(f"- machine: {meta['nproc']} CPUs ({meta['cpu']}), Linux {meta['kernel']}")
    vers = [f"HAProxy {meta['haproxy']}", f"nginx {meta['nginx']}", f"wrk {meta['wrk']}"]
    if "ringlb" in meta:
        vers.append(f"{meta['ringlb']} ({meta['ringlb_src']})")
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

    for n in notes:
        w(f"- **left out:** {n} (its runs count as failed)")

    for l in loads:
        w("")
        w(f"### {l}: {LOADS[l]}")
        w("")
        w(f"`{meta['wrk_' + l]}`")
        w("")
        w("| T | balancer | req/s | GB/s | p99 | CPU µs/req | CPU s/GB | rate ÷ HAProxy | CPU ÷ HAProxy | errors |")
        w("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for t in threads:
            base = cell.get((t, l, "haproxy"))
            for b in bals:
                c = cell.get((t, l, b))
                if c is None:
                    continue
                rr = ratio(c["rate"], base and base["rate"])
                cr = ratio(c["cpu"], base and base["cpu"])
                errs = str(c["errors"])
                if c["failed"]:
                    errs = f"{c['failed']}/{c['rounds']} runs failed" + (f", {errs}" if c["errors"] else "")
                w(
                    f"| {t} | {LABEL[b]} | {fmt(c['rps'], ',.0f')} | {fmt(c['gbps'], '.3g')} | "
                    f"{fmt_latency(c['p99'])} | {fmt(c['cpu_req'], ',.1f')} | {fmt(c['cpu_gb'], '.3g')} | "
                    f"{fmt(rr, '.2f')} | {fmt(cr, '.2f')} | {errs} |"
                )

    modes = [b for b in bals if b in MODES]
    table = []
    wins = {m: [0, 0] for m in modes}
    for l in loads:
        for t in threads:
            cs = {m: cell[t, l, m] for m in modes if (t, l, m) in cell and cell[t, l, m]["rate"] is not None}
            if not cs:
                continue
            fast = winner(cs, "rate", "rate_spread", max)
            lean = winner(cs, "cpu", "cpu_spread", min)
            wins.get("ringlb-" + fast.split()[0], [0, 0])[0] += 1
            wins.get("ringlb-" + lean.split()[0], [0, 0])[1] += 1
            unit = ".3g" if l == "bulk" else ",.0f"
            rates = " | ".join(fmt(cs[m]["rate"], unit) if m in cs else "n/a" for m in modes)
            cpus = " | ".join(fmt(cs[m]["cpu"], ".3g" if l == "bulk" else ".1f") if m in cs else "n/a" for m in modes)
            table.append(f"| {l} | {t} | {rates} | {cpus} | {fast} | {lean} |")
    if len(modes) > 1 and table:
        w("")
        w("### ringlb forward modes")
        w("")
        w("Rate is req/s (GB/s for bulk), CPU is µs/req (s/GB for bulk). A winner is marked as a tie "
          "when its lead is within the spread of the rounds.")
        w("")
        w("| load | T | " + " | ".join(f"{m[7:]} rate" for m in modes) + " | "
          + " | ".join(f"{m[7:]} CPU" for m in modes) + " | fastest | least CPU |")
        w("|---|--:|" + "--:|" * (2 * len(modes)) + "---|---|")
        for line in table:
            w(line)
        w("")
        w("Rows won, ties included (fastest / least CPU): "
          + ", ".join(f"{m[7:]} {a}/{b}" for m, (a, b) in wins.items()) + ".")

    cost_rows = []
    for t in threads:
        for l in COST_LOADS:
            for feat, base in COSTS:
                a, b = by_round.get((t, l, feat)), by_round.get((t, l, base))
                if not a or not b:
                    continue
                unit = ".3g" if l == "bulk" else ",.0f"
                # each round's ratio: both ran in that round, minutes apart at most
                pairs = [a[k] / b[k] for k in a if a[k] is not None and b.get(k)]
                ca, cb = cell[t, l, feat], cell[t, l, base]
                rr = ratio(ca["rate"], cb["rate"])
                if rr is None or not pairs:
                    verdict = "n/a"
                elif min(pairs) >= BUDGET:
                    verdict = "yes"
                elif max(pairs) < BUDGET:
                    verdict = "**no**"
                else:
                    verdict = "within noise"
                if verdict in ("yes", "**no**") and len(pairs) == 1:
                    verdict += " (1 round: noise unknown)"
                if ca["failed"] or cb["failed"]:
                    verdict += f" ({ca['failed'] + cb['failed']} failed runs left out)"
                rng = f" ({min(pairs):.3f}–{max(pairs):.3f})" if len(pairs) > 1 else ""
                cost_rows.append(
                    f"| {t} | {l} | {feat} ÷ {base} | {fmt_range(a.values(), unit)} | "
                    f"{fmt_range(b.values(), unit)} | {fmt(rr, '.3f')}{rng} | {verdict} | "
                    f"{fmt(ratio(ca['cpu'], cb['cpu']), '.2f')} |"
                )
    if cost_rows:
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
        w("| T | load | compared | rate | baseline rate | ratio (per round) | cost ≤ 5%? | CPU ratio |")
        w("|--:|---|---|--:|--:|--:|---|--:|")
        for line in cost_rows:
            w(line)

    w("")
    w("<details><summary>every run</summary>")
    w("")
    w("| T | load | balancer | round | requests | bytes | seconds | req/s | GB/s | p99 | CPU ticks | errors c/r/w/status/timeout |")
    w("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in rows:
        dur = num(r["duration_us"])
        errs = "/".join(r[e] for e in ERRS)
        w(
            f"| {r['threads']} | {r['load']} | {r['balancer']} | {r['round']} | {r['requests']} | "
            f"{r['bytes']} | {fmt(dur and dur / 1e6, '.2f')} | {fmt(r['rps'], ',.0f')} | "
            f"{fmt(r['gbps'], '.3g')} | {fmt_latency(r['p99'])} | {r['cpu_ticks']} | {errs} |"
        )
    w("")
    w("</details>")
    print("\n".join(out))


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
