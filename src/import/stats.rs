//! HAProxy's stats page as ringlb's `stats` section: where it listens, its one user, its
//! refresh. ringlb's page has a listener of its own and is never open off loopback.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::output::{Stats, StatsAuth};
use super::proxy::{Kind, Proxy};
use super::report::{Report, Source};
use super::values::format_duration;

const H: Source = Source::Haproxy;
/// HAProxy's conventional stats port, for a stats page that shared a traffic port.
const STATS_PORT: u16 = 8404;

/// The first stats page: a stats-only proxy's bind (a `listen`, or the frontends of a
/// stats `backend`), or port 8404 beside a proxy that also forwards traffic.
pub fn stats(
    live: &[&Proxy],
    stats_only: &HashSet<&str>,
    bound: &HashMap<SocketAddr, String>,
    r: &mut Report,
) -> Option<Stats> {
    let mut found: Option<Stats> = None;
    // A proxy that serves only the stats page says where it belongs; a page inside a
    // proxy that also forwards traffic comes after.
    let mut candidates: Vec<&&Proxy> = live.iter().filter(|p| p.stats.is_some()).collect();
    candidates.sort_by_key(|p| !stats_only.contains(p.name.as_str()));
    for p in candidates {
        let Some(spec) = &p.stats else { continue };
        if found.is_some() {
            r.warn(
                H,
                spec.line,
                format!("another stats page ({}): ringlb has one, left out", p.name),
            );
            continue;
        }
        let own = stats_only.contains(p.name.as_str());
        let binds: Vec<SocketAddr> = if own && !p.binds.is_empty() {
            p.binds
                .iter()
                .flat_map(|b| b.addrs.iter().copied())
                .collect()
        } else if own {
            live.iter()
                .filter(|f| {
                    f.kind == Kind::Frontend
                        && f.default_backend
                            .as_ref()
                            .is_some_and(|d| d.value == p.name)
                })
                .flat_map(|f| f.binds.iter().flat_map(|b| b.addrs.iter().copied()))
                .collect()
        } else {
            Vec::new()
        };
        let mut bind = match binds.first() {
            Some(&b) => b,
            None => {
                let ip = p
                    .binds
                    .first()
                    .and_then(|b| b.addrs.first())
                    .map_or(Ipv4Addr::LOCALHOST.into(), |a| a.ip());
                let mut port = STATS_PORT;
                while bound.contains_key(&SocketAddr::new(ip, port)) && port < u16::MAX {
                    port += 1;
                }
                let bind = SocketAddr::new(ip, port);
                r.warn_hint(
                    H,
                    spec.line,
                    format!(
                        "stats in {}: ringlb's stats page has its own listener, put on {bind}",
                        p.name
                    ),
                    "change stats.bind to taste",
                );
                bind
            }
        };
        if binds.len() > 1 {
            r.note(
                H,
                spec.line,
                format!("stats: ringlb's page listens on one address, {bind}"),
            );
        }
        let mut auth = None;
        for a in &spec.auth {
            let (user, password) = &a.value;
            let valid =
                !user.is_empty() && !password.is_empty() && !user.chars().any(char::is_control);
            if auth.is_some() {
                r.warn(H, a.line, "stats auth: ringlb has one stats user, left out");
            } else if !valid {
                r.warn(H, a.line, "stats auth: an empty user or password, left out");
            } else {
                auth = Some(StatsAuth {
                    user: user.clone(),
                    password: password.clone(),
                });
            }
        }
        if auth.is_none() && !bind.ip().is_loopback() {
            let local = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bind.port());
            r.warn_hint(
                H,
                spec.line,
                format!("stats without auth on {bind}: ringlb serves an open page on loopback only, {local}"),
                "add stats.auth to listen further",
            );
            bind = local;
        }
        if let Some(u) = spec.uri.as_ref().filter(|u| u.value != "/") {
            r.note(
                H,
                u.line,
                format!(
                    "stats uri {}: ringlb serves its page at / (JSON at /stats.json)",
                    u.value
                ),
            );
        }
        let refresh = spec.refresh.map(|t| {
            let d = t.value;
            if !d.is_zero() && d < Duration::from_secs(1) {
                r.note(H, t.line, "stats refresh under 1s: 1s");
                Duration::from_secs(1)
            } else {
                d
            }
        });
        found = Some(Stats {
            bind: bind.to_string(),
            auth,
            refresh: refresh.map(format_duration),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy;
    use crate::import::proxy::interpret;

    fn page(cfg: &str) -> (Option<Stats>, Vec<String>) {
        let mut r = Report::default();
        let m = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
        let live: Vec<&Proxy> = m.proxies.iter().collect();
        let only: HashSet<&str> = m
            .proxies
            .iter()
            .filter(|p| p.servers.is_empty())
            .map(|p| p.name.as_str())
            .collect();
        let mut bound = HashMap::new();
        bound.insert("0.0.0.0:8404".parse().unwrap(), "web".to_string());
        let s = stats(&live, &only, &bound, &mut r);
        let found = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        (s, found)
    }

    #[test]
    fn a_page_beside_traffic_gets_its_own_port() {
        let (s, found) = page("listen web\n  bind *:80\n  stats enable\n  stats auth a:b\n  stats auth c:d\n  server s 192.0.2.1:80\n");
        let s = s.unwrap();
        assert_eq!(s.bind, "0.0.0.0:8405");
        assert_eq!(s.auth.map(|a| a.user).as_deref(), Some("a"));
        assert_eq!(
            found,
            [
                "3: stats in web: ringlb's stats page has its own listener, put on 0.0.0.0:8405",
                "5: stats auth: ringlb has one stats user, left out",
            ]
        );
    }

    #[test]
    fn an_open_page_stays_on_loopback() {
        let (s, found) =
            page("listen stats\n  bind 192.0.2.10:1936\n  stats enable\n  stats auth :x\n");
        assert_eq!(s.unwrap().bind, "127.0.0.1:1936");
        assert_eq!(
            found,
            [
                "3: stats without auth on 192.0.2.10:1936: ringlb serves an open page on loopback only, 127.0.0.1:1936",
                "4: stats auth: an empty user or password, left out",
            ]
        );
    }
}
