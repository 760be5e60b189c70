//! `show ...` answers: a table with a header row and aligned columns, or the same data as
//! JSON (the rows of `/stats.json`).

use std::fmt::Write as _;

use crate::stats::report::Report;

/// Rows of cells as an aligned table.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn json(value: serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

pub fn info(r: &Report, as_json: bool) -> String {
    let p = &r.process;
    if as_json {
        return json(serde_json::to_value(p).unwrap_or_default());
    }
    let faults: u64 = p.thread_faults.iter().map(|(_, n)| n).sum();
    let rows = [
        ("version", p.version.to_string()),
        ("pid", p.pid.to_string()),
        ("uptime", format!("{:.0}s", p.uptime_seconds)),
        ("workers", p.workers.to_string()),
        (
            "connections",
            format!("{} (maxconn {})", p.conns, p.maxconn),
        ),
        (
            "fds",
            format!(
                "{} open of {}; connections hold {} of {}",
                opt(p.fds_open),
                p.fd_limit,
                p.conn_fds,
                p.conn_fds_limit
            ),
        ),
        (
            "reloads",
            format!("{} ({} failed)", p.reloads, p.failed_reloads),
        ),
        (
            "last reload",
            p.last_reload.as_ref().map_or_else(
                || "-".into(),
                |l| {
                    format!(
                        "#{} {} {:.0}s ago: {}",
                        l.number,
                        if l.ok { "ok" } else { "failed" },
                        l.seconds_ago,
                        l.summary
                    )
                },
            ),
        ),
        ("log lines dropped", p.log_dropped.to_string()),
        ("thread faults", faults.to_string()),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<18} {v}");
    }
    out
}

pub fn frontends(r: &Report, as_json: bool) -> String {
    if as_json {
        return json(serde_json::to_value(&r.frontends).unwrap_or_default());
    }
    let rows = r
        .frontends
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.bind.join(","),
                f.backend.clone(),
                f.conns.to_string(),
                opt(f.maxconn),
                f.conns_total.to_string(),
                f.bytes_in.to_string(),
                f.bytes_out.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "frontend",
            "bind",
            "backend",
            "conns",
            "maxconn",
            "total",
            "bytes_in",
            "bytes_out",
        ],
        rows,
    )
}

pub fn servers(r: &Report, as_json: bool) -> String {
    if as_json {
        let v: Vec<serde_json::Value> = r
            .backends
            .iter()
            .flat_map(|b| {
                b.servers.iter().map(move |s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["backend"] = b.name.clone().into();
                    v
                })
            })
            .collect();
        return json(v.into());
    }
    let rows = r
        .backends
        .iter()
        .flat_map(|b| {
            b.servers.iter().map(move |s| {
                vec![
                    format!("{}/{}", b.name, s.name),
                    s.addr.clone(),
                    s.state.to_string(),
                    s.admin.to_string(),
                    s.weight.to_string(),
                    s.conns.to_string(),
                    s.conns_total.to_string(),
                    s.reason.clone(),
                ]
            })
        })
        .collect();
    table(
        &[
            "server", "addr", "state", "admin", "weight", "conns", "total", "reason",
        ],
        rows,
    )
}

pub fn vrrp(r: &Report, as_json: bool) -> String {
    if as_json {
        return json(serde_json::to_value(&r.vrrp).unwrap_or_default());
    }
    if r.vrrp.is_empty() {
        return "no VRRP instance\n".into();
    }
    let rows = r
        .vrrp
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.state.to_string(),
                format!("{} (configured {})", v.priority, v.configured_priority),
                opt(v.fault.clone().or_else(|| v.master.clone())),
                v.transitions.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "instance",
            "state",
            "priority",
            "master (or fault)",
            "transitions",
        ],
        rows,
    )
}

pub fn announce(r: &Report, as_json: bool) -> String {
    if as_json {
        return json(serde_json::to_value(&r.announce).unwrap_or_default());
    }
    let Some(a) = &r.announce else {
        return "no announce section\n".into();
    };
    let rows = a
        .vips
        .iter()
        .map(|v| {
            vec![
                v.vip.clone(),
                if v.announced {
                    "announced"
                } else {
                    "withdrawn"
                }
                .to_string(),
                opt(v.reason.clone()),
            ]
        })
        .collect();
    let mut out = format!("interface {}\n", a.interface);
    out += &table(&["vip", "state", "reason"], rows);
    if let Some(h) = &a.handoff {
        out += &format!(
            "handoff: peers {}; window {}; {} windows opened; notices {} sent, {} received, \
             {} dropped\n",
            h.peers.join(", "),
            if h.window_seconds_left > 0.0 {
                format!("open, {:.1}s left", h.window_seconds_left)
            } else {
                "closed".into()
            },
            h.windows_opened,
            h.notices_sent,
            h.notices_received,
            h.notices_dropped
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let t = table(
            &["server", "state", "reason"],
            vec![
                vec!["be/web1".into(), "UP".into(), "HTTP 200".into()],
                vec!["be/w2".into(), "DOWN".into(), "refused".into()],
            ],
        );
        assert_eq!(
            t,
            "server   state  reason\nbe/web1  UP     HTTP 200\nbe/w2    DOWN   refused\n"
        );
    }
}
