//! `/`: the stats page as one self-contained HTML document (inline CSS, no script, no
//! external asset), laid out as HAProxy's: process facts, VRRP, frontends, then one table
//! per backend with a row per server. Tables scroll sideways on a phone.

use std::fmt::Write as _;
use std::time::Duration;

use super::report::{BackendRow, Latency, Report, ServerRow};
use crate::counters::WINDOW_MINUTES;

const STYLE: &str = "
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:8px 12px;
 color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:18px 0 6px}
.meta{color:#4a5366;margin:2px 0}.meta b{color:#1d2330}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;background:#fff;
 border:1px solid #d8dce4;border-radius:6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;text-align:right;white-space:nowrap;border-bottom:1px solid #eceef2}
th:first-child,td:first-child{text-align:left;position:sticky;left:0;background:inherit}
th,th:first-child{background:#eef1f6;font-weight:600;font-size:12px;color:#3b4457}
tr{background:#fff}tr.total{background:#f3f5f9;font-weight:600}
td.why{text-align:left;white-space:normal;min-width:14em;max-width:28em;color:#3b4457}
td.l,th.l{text-align:left}
.state{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:700;
 color:#fff}
.UP,.MASTER{background:#1f8a4c}.DOWN{background:#c62828}.DRAIN{background:#d97706}
.MAINT{background:#5b6474}.BACKUP{background:#2563eb}.INIT{background:#5b6474}
.ok{color:#1f8a4c}.bad{color:#c62828}
footer{color:#6b7385;font-size:12px;margin:14px 0 4px}
";

pub fn render(r: &Report, refresh: Duration) -> String {
    let mut o = String::with_capacity(32 * 1024);
    o.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if !refresh.is_zero() {
        let _ = writeln!(
            o,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            refresh.as_secs().max(1)
        );
    }
    let _ = writeln!(
        o,
        "<title>ringlb stats</title>\n<style>{STYLE}</style></head><body>"
    );
    process(&mut o, r);
    vrrp(&mut o, r);
    announce(&mut o, r);
    frontends(&mut o, r);
    for b in &r.backends {
        backend(&mut o, b);
    }
    let every = if refresh.is_zero() {
        "no auto-refresh".to_string()
    } else {
        format!("refreshes every {}", human_duration(refresh.as_secs_f64()))
    };
    let _ = writeln!(
        o,
        "<footer>Bytes in: from clients; out: to clients. Times in ms; \
         last {WINDOW_MINUTES} min: the current minute and the {} before it. {every}. \
         Also as <a href=\"stats.json\">JSON</a> and <a href=\"metrics\">metrics</a>.\
         </footer></body></html>",
        WINDOW_MINUTES - 1
    );
    o
}

fn process(o: &mut String, r: &Report) {
    let p = &r.process;
    let _ = writeln!(o, "<h1>ringlb</h1>");
    let fds = p
        .fds_open
        .map_or_else(|| "?".to_string(), |n| n.to_string());
    let _ = writeln!(
        o,
        "<p class=\"meta\">version <b>{}</b> ({}) · pid <b>{}</b> · up <b>{}</b> · <b>{}</b> \
         workers · connections <b>{}</b> / maxconn {} · fds <b>{fds}</b> / {}</p>",
        esc(p.version),
        esc(p.commit),
        p.pid,
        human_duration(p.uptime_seconds),
        p.workers,
        p.conns,
        p.maxconn,
        p.fd_limit,
    );
    match &p.last_reload {
        None => {
            let _ = writeln!(o, "<p class=\"meta\">no reload since start</p>");
        }
        Some(last) => {
            let (class, word) = if last.ok {
                ("ok", "applied")
            } else {
                ("bad", "FAILED")
            };
            let _ = writeln!(
                o,
                "<p class=\"meta\">reload #{} <b class=\"{class}\">{word}</b> {} ago: {} \
                 ({} of {} reloads failed)</p>",
                last.number,
                human_duration(last.seconds_ago),
                esc(&last.summary),
                p.failed_reloads,
                p.reloads,
            );
        }
    }
}

fn vrrp(o: &mut String, r: &Report) {
    if r.vrrp.is_empty() {
        return;
    }
    o.push_str("<h2>VRRP</h2><div class=\"scroll\"><table>\n");
    o.push_str(
        "<tr><th>Instance</th><th>State</th><th>Priority</th><th>Configured</th>\
         <th class=\"l\">Master or fault</th><th>Transitions</th></tr>\n",
    );
    for v in &r.vrrp {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            esc(&v.name),
            badge(v.state),
            v.priority,
            v.configured_priority,
            esc(v.fault.as_deref().or(v.master.as_deref()).unwrap_or("-")),
            v.transitions,
        );
    }
    o.push_str("</table></div>\n");
}

fn announce(o: &mut String, r: &Report) {
    let Some(a) = &r.announce else {
        return;
    };
    o.push_str("<h2>Announced VIPs</h2><div class=\"scroll\"><table>\n");
    o.push_str("<tr><th class=\"l\">VIP</th><th>State</th><th class=\"l\">Reason</th></tr>\n");
    for v in &a.vips {
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&v.vip),
            if v.announced {
                "<span class=\"state UP\">announced</span>"
            } else {
                "<span class=\"state DOWN\">withdrawn</span>"
            },
            esc(v.reason.as_deref().unwrap_or("-")),
        );
    }
    o.push_str("</table></div>\n");
    if let Some(h) = &a.handoff {
        let _ = writeln!(
            o,
            "<p class=\"meta\">handoff to {}: window {}; {} windows opened; notices {} sent, \
             {} received, {} dropped</p>",
            esc(&h.peers.join(", ")),
            if h.window_seconds_left > 0.0 {
                format!("open, {} left", human_duration(h.window_seconds_left))
            } else {
                "closed".into()
            },
            h.windows_opened,
            h.notices_sent,
            h.notices_received,
            h.notices_dropped,
        );
    }
}

fn frontends(o: &mut String, r: &Report) {
    o.push_str("<h2>Frontends</h2><div class=\"scroll\"><table>\n");
    o.push_str(
        "<tr><th>Frontend</th><th class=\"l\">Bind</th><th class=\"l\">Backend</th><th>Cur</th><th>Max</th>\
         <th>Limit</th><th>Total</th><th>Rate/s</th><th>Bytes in</th><th>Bytes out</th>\
         <th>Waited maxconn</th><th>No server</th><th>PROXY errors</th>\
         <th>No route</th></tr>\n",
    );
    for f in &r.frontends {
        let _ = writeln!(
            o,
            "<tr data-frontend=\"{}\"><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(&f.name),
            esc(&f.bind.join(" ")),
            esc(&f.backend),
            f.conns,
            f.peak,
            limit(f.maxconn),
            f.conns_total,
            f.rate,
            bytes(f.bytes_in),
            bytes(f.bytes_out),
            f.held,
            f.no_server,
            f.proxy_errors,
            f.no_route,
        );
    }
    o.push_str("</table></div>\n");
}

fn backend(o: &mut String, b: &BackendRow) {
    let _ = writeln!(
        o,
        "<h2 data-backend=\"{}\">Backend {} {} <span class=\"meta\">{}, {} of {} servers up, \
         queue {} ({} in total)</span></h2>",
        esc(&b.name),
        esc(&b.name),
        badge(b.state),
        esc(&b.balance),
        b.servers_up,
        b.servers.len(),
        b.queue,
        b.queue_total,
    );
    o.push_str("<div class=\"scroll\"><table>\n");
    let _ = writeln!(
        o,
        "<tr><th>Server</th><th>State</th><th class=\"l\">Why</th><th>Since</th><th>Weight</th>\
         <th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>Queue</th><th>Bytes in</th>\
         <th>Bytes out</th><th>Conn errors</th><th>Retries</th><th>Checks failed</th>\
         <th>Downtime</th>\
         <th>Connect p50 / p99 / max<br>last {WINDOW_MINUTES} min</th>\
         <th>Duration p50 / p99 / max<br>last {WINDOW_MINUTES} min</th>\
         <th>Connect p50 / p99 / max<br>since start</th>\
         <th>Duration p50 / p99 / max<br>since start</th></tr>"
    );
    for s in &b.servers {
        server(o, &b.name, s);
    }
    let _ = writeln!(
        o,
        "<tr class=\"total\"><td>Total</td><td>{}</td><td class=\"why\"></td><td></td><td></td>\
         <td>{}</td><td></td><td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td></td><td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        badge(b.state),
        b.conns,
        b.conns_total,
        b.queue,
        bytes(b.bytes_in),
        bytes(b.bytes_out),
        b.connect_errors,
        b.retries,
        latency(b.connect_ms_window.as_ref()),
        latency(b.duration_ms_window.as_ref()),
        latency(b.connect_ms.as_ref()),
        latency(b.duration_ms.as_ref()),
    );
    o.push_str("</table></div>\n");
}

fn server(o: &mut String, backend: &str, s: &ServerRow) {
    let backup = if s.backup { " (backup)" } else { "" };
    let _ = writeln!(
        o,
        "<tr data-server=\"{}/{}\" data-state=\"{}\"><td title=\"{}\">{}{backup}</td>\
         <td>{}</td><td class=\"why\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(backend),
        esc(&s.name),
        s.state,
        esc(&s.addr),
        esc(&s.name),
        badge(s.state),
        esc(&s.reason),
        human_duration(s.since_seconds),
        s.weight,
        s.conns,
        s.peak,
        limit(s.maxconn),
        s.conns_total,
        bytes(s.bytes_in),
        bytes(s.bytes_out),
        s.connect_errors,
        s.retries,
        s.check_failures,
        human_duration(s.downtime_seconds),
        latency(s.connect_ms_window.as_ref()),
        latency(s.duration_ms_window.as_ref()),
        latency(s.connect_ms.as_ref()),
        latency(s.duration_ms.as_ref()),
    );
}

fn badge(state: &str) -> String {
    format!("<span class=\"state {state}\">{state}</span>")
}

fn limit(l: Option<u32>) -> String {
    l.map_or_else(|| "-".to_string(), |n| n.to_string())
}

fn latency(l: Option<&Latency>) -> String {
    l.map_or_else(
        || "-".to_string(),
        |l| format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max)),
    )
}

/// Milliseconds with about three significant digits.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `42s`, `5m 3s`, `2h 10m`, `3d 4h`.
fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(human_duration(59.9), "59s");
        assert_eq!(human_duration(3725.0), "1h 2m");
        assert_eq!(human_duration(90000.0), "1d 1h");
        assert_eq!(ms(0.2149), "0.21");
        assert_eq!(ms(123.4), "123");
        assert_eq!(latency(None), "-");
    }
}
