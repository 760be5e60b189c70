//! The interpreted haproxy.cfg as a ringlb configuration: a `listen` becomes a frontend
//! and a backend of its name, frontends find their backends and routes, servers their
//! addresses, and the stats proxy becomes the `stats` section. Whatever ringlb would
//! refuse is left out here and reported, so the result always passes `--check`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::check;
use super::output::{self, Backend, Frontend, Route, Server, Timeouts};
use super::proxy::{Kind, Mode, Model, Proxy};
use super::report::{Report, Severity, Source};
use super::routes;
use super::server::ServerParams;
use super::stats;
use super::values::format_duration;
use crate::config::MAX_WEIGHT;

const H: Source = Source::Haproxy;

pub fn convert(model: &Model, r: &mut Report) -> output::Config {
    // Proxies that only serve HAProxy's stats page, and the frontends that lead to one:
    // they become the `stats` section.
    let mut stats_only: HashSet<&str> = model
        .proxies
        .iter()
        .filter(|p| {
            p.stats.is_some()
                && p.servers.is_empty()
                && (p.kind != Kind::Frontend
                    || p.default_backend.is_none() && p.use_backends.is_empty())
        })
        .map(|p| p.name.as_str())
        .collect();
    let stats_fronts: Vec<&str> = model
        .proxies
        .iter()
        .filter(|p| {
            p.kind == Kind::Frontend
                && p.use_backends.is_empty()
                && p.default_backend
                    .as_ref()
                    .is_some_and(|d| stats_only.contains(d.value.as_str()))
        })
        .map(|p| p.name.as_str())
        .collect();
    stats_only.extend(stats_fronts);
    let live: Vec<&Proxy> = model
        .proxies
        .iter()
        .filter(|p| match p.disabled {
            Some(line) => {
                r.warn(H, line, format!("{} is disabled: left out", p.name));
                false
            }
            None => true,
        })
        .collect();

    let mut out = output::Config::default();
    let g = &model.global;
    out.workers = g.nbthread.map(|n| n.value);
    out.maxconn = g.maxconn.map(|m| m.value);
    out.grace = g.hard_stop_after.map(format_duration);

    // Frontends and the backends they name, so a backend knows its client timeout and
    // the port of servers written without one.
    let users = backend_users(&live, &stats_only);
    let mut converted: HashSet<String> = HashSet::new();
    let mut http_only = HttpOnly::new();
    for p in live
        .iter()
        .filter(|p| p.kind != Kind::Frontend && !stats_only.contains(p.name.as_str()))
    {
        let empty = Vec::new();
        let used_by = users.get(p.name.as_str()).unwrap_or(&empty);
        if let Some(b) = backend(p, used_by, model, &mut http_only, r) {
            if converted.insert(b.name.clone()) {
                out.backends.push(b);
            } else {
                r.warn(
                    H,
                    p.line,
                    format!("a second backend named {:?}: left out", p.name),
                );
            }
        }
    }

    let mut bound: HashMap<SocketAddr, String> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    for p in live
        .iter()
        .filter(|p| p.kind != Kind::Backend && !stats_only.contains(p.name.as_str()))
    {
        if let Some(f) = frontend(p, &converted, &mut bound, &mut http_only, r) {
            if names.insert(f.name.clone()) {
                out.frontends.push(f);
            } else {
                r.warn(
                    H,
                    p.line,
                    format!("a second frontend named {:?}: left out", p.name),
                );
            }
        }
    }

    // A `defaults` line shared by proxies of both modes is lost for the HTTP ones.
    for ((line, what), (suggestion, lost)) in http_only {
        if lost {
            r.add(
                H,
                line,
                Severity::Warning,
                what,
                suggestion.map(str::to_string),
            );
        } else {
            let what = format!(
                "{} (ignored in mode tcp, as by HAProxy)",
                what.trim_end_matches(", left out")
            );
            r.add(
                H,
                line,
                Severity::Note,
                what,
                suggestion.map(str::to_string),
            );
        }
    }
    out.stats = stats::stats(&live, &stats_only, &bound, r);
    out
}

/// HTTP-only directives by line, and whether a proxy in `mode http` loses them.
type HttpOnly = BTreeMap<(usize, String), (Option<&'static str>, bool)>;

/// The frontends (and listens) that send connections to each backend.
fn backend_users<'a>(
    live: &[&'a Proxy],
    stats_only: &HashSet<&str>,
) -> HashMap<&'a str, Vec<&'a Proxy>> {
    let mut users: HashMap<&str, Vec<&Proxy>> = HashMap::new();
    for &p in live {
        match p.kind {
            Kind::Backend => {}
            Kind::Listen => users.entry(p.name.as_str()).or_default().push(p),
            Kind::Frontend => {
                let mut named: Vec<&str> =
                    p.use_backends.iter().map(|u| u.backend.as_str()).collect();
                named.extend(p.default_backend.as_ref().map(|d| d.value.as_str()));
                for b in named {
                    if !stats_only.contains(b) {
                        let list = users.entry(live_name(live, b)).or_default();
                        if !list.iter().any(|x| std::ptr::eq(*x, p)) {
                            list.push(p);
                        }
                    }
                }
            }
        }
    }
    users
}

fn live_name<'a>(live: &[&'a Proxy], name: &str) -> &'a str {
    live.iter()
        .find(|p| p.name == name && p.kind != Kind::Frontend)
        .map_or("", |p| p.name.as_str())
}

/// Reports a proxy's mode: `mode http` is forwarded as TCP, and what only HTTP has is
/// lost (in `mode tcp` HAProxy ignores it too: a note, written at the end).
fn report_mode(p: &Proxy, http_only: &mut HttpOnly, r: &mut Report) {
    let http = p.mode() == Mode::Http;
    if http {
        let line = p.settings.mode.map_or(p.line, |m| m.line);
        r.warn_hint(
            H,
            line,
            format!(
                "mode http ({}): forwarded as TCP, HTTP features are lost",
                p.name
            ),
            "requests reach the servers unchanged",
        );
    }
    for d in &p.settings.http_only {
        let entry = http_only
            .entry((d.line, d.what.clone()))
            .or_insert((d.suggestion, false));
        entry.1 |= http;
    }
}

fn backend(
    p: &Proxy,
    used_by: &[&Proxy],
    model: &Model,
    http_only: &mut HttpOnly,
    r: &mut Report,
) -> Option<Backend> {
    if p.servers.is_empty() {
        if p.kind == Kind::Listen {
            r.warn(
                H,
                p.line,
                format!("listen {} has no server: left out", p.name),
            );
        } else {
            r.warn(
                H,
                p.line,
                format!("backend {} has no server: left out", p.name),
            );
        }
        return None;
    }
    // Servers without a port take the client's: known when every bind of every frontend
    // using this backend has the same port.
    let ports: HashSet<u16> = used_by
        .iter()
        .flat_map(|f| {
            f.binds
                .iter()
                .flat_map(|b| b.addrs.iter().map(|a| a.port()))
        })
        .collect();
    let client_port = (ports.len() == 1)
        .then(|| ports.iter().copied().next())
        .flatten();

    let mut servers: Vec<Server> = Vec::new();
    let mut params: Vec<(usize, ServerParams, SocketAddr)> = Vec::new();
    for s in &p.servers {
        let sp = p.settings.default_server.merged(&s.params);
        let addr = match s.addr(client_port) {
            Ok(a) => a,
            Err((what, hint)) => {
                r.warn_hint(
                    H,
                    s.line,
                    format!("server {}: {what}: left out", s.name),
                    hint,
                );
                continue;
            }
        };
        if servers.iter().any(|x| x.name == s.name) {
            r.warn(
                H,
                s.line,
                format!("a second server named {:?}: left out", s.name),
            );
            continue;
        }
        if sp.cookie && p.settings.cookie.is_none() {
            r.warn_hint(
                H,
                s.line,
                "server cookie: HTTP cookie persistence, left out",
                "for stickiness use \"balance\": \"source\"",
            );
        }
        let mut weight = sp.weight;
        if let Some(w) = weight.filter(|&w| w > MAX_WEIGHT) {
            r.warn(
                H,
                s.line,
                format!("weight {w}: ringlb's most is {MAX_WEIGHT}, {MAX_WEIGHT} instead"),
            );
            weight = Some(MAX_WEIGHT);
        }
        if sp.disabled == Some(true) {
            r.note(
                H,
                s.line,
                format!(
                    "server {} is disabled: weight 0 (POST /admin/server gives it a weight)",
                    s.name
                ),
            );
            weight = Some(0);
        }
        servers.push(Server {
            name: s.name.clone(),
            addr: addr.to_string(),
            weight: weight.filter(|&w| w != 1),
            backup: sp.backup.filter(|&b| b),
            maxconn: sp.maxconn,
            check_addr: None,
            send_proxy: sp.send_proxy.flatten(),
        });
        params.push((s.line, sp, addr));
    }
    if servers.is_empty() {
        // Kept, as HAProxy keeps a backend whose servers it cannot use: its frontends still
        // convert, and their clients are closed at once until servers are added.
        r.warn(
            H,
            p.line,
            format!(
                "{} has no usable server left: kept without servers, its clients are closed \
                 until you add them",
                p.name
            ),
        );
    }
    if !servers.is_empty() && servers.iter().all(|s| s.weight == Some(0)) {
        r.warn(
            H,
            p.line,
            format!(
                "every server of {} has weight 0 (or is disabled): left out",
                p.name
            ),
        );
        return None;
    }

    let checked: Vec<(usize, ServerParams)> =
        params.iter().map(|(l, s, _)| (*l, s.clone())).collect();
    let mut health_check = check::health_check(p, &checked, model.global.spread_checks, r);
    if let Some(hc) = &mut health_check {
        check_targets(hc, &params, &mut servers, p.line, r);
    }

    let mut timeouts = Timeouts {
        connect: p.settings.connect.map(|t| format_duration(t.value)),
        server: p
            .settings
            .tunnel
            .or(p.settings.server)
            .map(|t| format_duration(t.value)),
        queue: p.settings.queue.map(|t| format_duration(t.value)),
        client: None,
    };
    timeouts.client = client_timeout(p, used_by, r).map(format_duration);
    let missing: Vec<&str> = [
        ("connect", &timeouts.connect),
        ("client", &timeouts.client),
        ("server", &timeouts.server),
    ]
    .iter()
    .filter(|(_, t)| t.is_none())
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        r.note(
            H,
            p.line,
            format!(
                "{}: no timeout {} (HAProxy waits forever): ringlb's defaults apply",
                p.name,
                missing.join(", ")
            ),
        );
    }
    report_mode(p, http_only, r);
    Some(Backend {
        name: p.name.clone(),
        balance: p.settings.balance.map(|b| b.value),
        retries: p.settings.retries,
        timeouts,
        health_check,
        servers,
    })
}

/// ringlb's client timeout is the backend's; HAProxy's is the frontend's.
fn client_timeout(p: &Proxy, used_by: &[&Proxy], r: &mut Report) -> Option<Duration> {
    // A backend's `timeout tunnel` covers both sides once connected.
    if let Some(t) = p.settings.tunnel {
        return Some(t.value);
    }
    let of = |x: &Proxy| x.settings.tunnel.or(x.settings.client).map(|t| t.value);
    let mut values: Vec<Option<Duration>> = used_by.iter().map(|f| of(f)).collect();
    values.dedup();
    if values.len() > 1 {
        r.warn(
            H,
            p.line,
            format!(
                "frontends using {} have different client timeouts: the first one's is used",
                p.name
            ),
        );
    }
    values.first().copied().flatten().or_else(|| of(p))
}

/// Where checks go: one `port` for the backend when every server checks the same one on
/// its own address, else a `check_addr` per server.
fn check_targets(
    hc: &mut output::HealthCheck,
    params: &[(usize, ServerParams, SocketAddr)],
    servers: &mut [Server],
    line: usize,
    r: &mut Report,
) {
    let ports: HashSet<Option<u16>> = params.iter().map(|(_, s, _)| s.check_port).collect();
    let addrs = params.iter().any(|(_, s, _)| s.check_addr.is_some());
    if hc.port.is_some() && (addrs || ports.iter().any(Option::is_some)) {
        r.note(
            H,
            line,
            "tcp-check connect port and server check ports: the servers' are used",
        );
    }
    if !addrs && ports.len() == 1 {
        if let Some(Some(port)) = ports.into_iter().next() {
            hc.port = Some(port);
        }
        return;
    }
    let tcp_port = hc.port.take();
    for ((_, s, addr), out) in params.iter().zip(servers.iter_mut()) {
        let ip: IpAddr = s.check_addr.unwrap_or(addr.ip());
        let port = s.check_port.or(tcp_port).unwrap_or(addr.port());
        if ip.is_unspecified() {
            continue;
        }
        out.check_addr = Some(SocketAddr::new(ip, port).to_string());
    }
}

fn frontend(
    p: &Proxy,
    backends: &HashSet<String>,
    bound: &mut HashMap<SocketAddr, String>,
    http_only: &mut HttpOnly,
    r: &mut Report,
) -> Option<Frontend> {
    let mut bind = Vec::new();
    let mut accept = Vec::new();
    for b in &p.binds {
        for a in &b.addrs {
            match bound.get(a) {
                Some(other) => r.warn(
                    H,
                    b.line,
                    format!("{a} is already bound by {other}: left out"),
                ),
                None => {
                    bound.insert(*a, p.name.clone());
                    bind.push(a.to_string());
                    accept.push(b.accept_proxy);
                }
            }
        }
    }
    if bind.is_empty() {
        r.warn(
            H,
            p.line,
            format!("{} has no usable bind: left out", p.name),
        );
        return None;
    }
    let rules = if p.kind == Kind::Frontend {
        routes::rules(p, r)
    } else {
        routes::Rules::default()
    };
    let usable = |name: &str, line: usize, r: &mut Report| {
        if backends.contains(name) {
            true
        } else {
            r.warn(
                H,
                line,
                format!("backend {name:?} was not converted: left out"),
            );
            false
        }
    };
    let backend = match p.kind {
        Kind::Listen => backends.contains(&p.name).then(|| p.name.clone()),
        _ => {
            let fallback = rules.fallback.as_ref().or(p.default_backend.as_ref());
            if let (Some(f), Some(d)) = (&rules.fallback, &p.default_backend) {
                r.note(
                    H,
                    d.line,
                    format!(
                        "default_backend {}: the unconditional use_backend on line {} comes first",
                        d.value, f.line
                    ),
                );
            }
            fallback
                .filter(|b| usable(&b.value, b.line, r))
                .map(|b| b.value.clone())
        }
    };
    let routes: Vec<Route> = rules
        .routes
        .iter()
        .filter(|x| usable(&x.backend, x.line, r))
        .map(|x| Route {
            sni: x.sni.clone(),
            backend: x.backend.clone(),
        })
        .collect();
    if backend.is_none() && routes.is_empty() {
        if p.kind == Kind::Frontend {
            r.warn(
                H,
                p.line,
                format!("frontend {} forwards to no backend: left out", p.name),
            );
        }
        return None;
    }
    if backend.is_none() {
        r.note(
            H,
            p.line,
            format!("{}: no default_backend, connections whose name no route has are closed (as in HAProxy)", p.name),
        );
    }
    let all_accept = accept.iter().all(|&a| a);
    if !all_accept && accept.iter().any(|&a| a) {
        r.warn(
            H,
            p.line,
            format!(
                "{}: accept-proxy on some binds only: ringlb's is per frontend, set for all",
                p.name
            ),
        );
    }
    let (mut accept_proxy, mut proxy_trusted) = (accept.iter().any(|&a| a), None);
    if let Some(e) = &p.expect_proxy {
        accept_proxy = true;
        let nets: Vec<String> = e.value.iter().filter(|n| is_net(n)).cloned().collect();
        if nets.len() != e.value.len() {
            r.warn(
                H,
                e.line,
                "expect-proxy: a source that is not an address or network, left out",
            );
        }
        proxy_trusted = (!nets.is_empty()).then_some(nets);
    }
    if p.kind == Kind::Frontend {
        report_mode(p, http_only, r);
    }
    let inspect = accept_proxy || !routes.is_empty();
    if let (Some(d), false) = (p.settings.inspect_delay, inspect) {
        r.note(
            H,
            d.line,
            "tcp-request inspect-delay: nothing is inspected here without name routes",
        );
    }
    Some(Frontend {
        name: p.name.clone(),
        bind,
        backend,
        maxconn: p.settings.maxconn.map(|m| m.value),
        accept_proxy: accept_proxy.then_some(true),
        proxy_trusted,
        routes: (!routes.is_empty()).then_some(routes),
        inspect_timeout: p
            .settings
            .inspect_delay
            .filter(|_| inspect)
            .map(|d| format_duration(d.value)),
    })
}

fn is_net(s: &str) -> bool {
    let (a, len) = s.split_once('/').unwrap_or((s, ""));
    let Ok(ip) = a.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.is_empty() || len.parse::<u8>().is_ok_and(|l| l <= max)
}

#[cfg(test)]
mod tests;
