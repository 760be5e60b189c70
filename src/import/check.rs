//! A backend's health check from HAProxy's pieces: the `option` that picks the kind
//! (`httpchk`, `tcp-check`, `mysql-check`, `redis-check`), the `http-check` / `tcp-check`
//! rules, the servers' `check inter fastinter downinter rise fall port addr`, and
//! `timeout check`. ringlb has one check per backend; differences between servers are
//! reported.

use std::collections::BTreeMap;
use std::time::Duration;

use super::output::{HealthCheck, Status};
use super::proxy::{Proxy, Settings};
use super::report::{Report, Source};
use super::server::ServerParams;
use super::values::format_duration;

const H: Source = Source::Haproxy;
/// HAProxy's `inter` when a server does not set one.
const HAPROXY_INTER: Duration = Duration::from_secs(2);

/// The check of a backend whose checked servers have `params` (first server's line first).
pub fn health_check(
    p: &Proxy,
    params: &[(usize, ServerParams)],
    spread_checks: Option<u32>,
    r: &mut Report,
) -> Option<HealthCheck> {
    let checked: Vec<&(usize, ServerParams)> = params
        .iter()
        .filter(|(_, s)| s.check == Some(true))
        .collect();
    let (first_line, first) = checked.first().copied()?;
    if let Some((line, _)) = params.iter().find(|(_, s)| s.check != Some(true)) {
        r.warn(
            H,
            *line,
            "server without `check` in a backend with checks: ringlb checks every server of a backend",
        );
    }
    for (line, s) in &checked[1..] {
        let timing = |s: &ServerParams| {
            (
                s.inter,
                s.fastinter,
                s.downinter,
                s.rise,
                s.fall,
                s.error_limit,
            )
        };
        if timing(s) != timing(first) {
            r.warn(
                H,
                *line,
                format!(
                    "check timing differs from the first checked server (line {first_line}): \
                     ringlb has one per backend, the first one's is used"
                ),
            );
        }
    }
    let mut hc = kind(&p.settings, r);
    let inter = first.inter.unwrap_or(HAPROXY_INTER);
    hc.interval = first.inter.map(format_duration);
    hc.fast_interval = first.fastinter.map(format_duration);
    hc.down_interval = first.downinter.map(format_duration);
    hc.rise = first.rise;
    hc.fall = first.fall;
    // HAProxy: without `timeout check` a whole check may take `inter`; with it, the
    // connect may take min(connect, inter) and the answer `timeout check` more.
    let timeout = match p.settings.check_timeout {
        Some(t) => p.settings.connect.map_or(inter, |c| c.value.min(inter)) + t.value,
        None => inter,
    };
    hc.timeout = Some(format_duration(timeout));
    hc.jitter = spread_checks;
    if first.observe_layer4 == Some(true) {
        // HAProxy's default error-limit is 10.
        hc.passive_errors = Some(first.error_limit.unwrap_or(10));
    }
    Some(hc)
}

/// The check's kind and what it sends and expects.
fn kind(s: &Settings, r: &mut Report) -> HealthCheck {
    let tcp = HealthCheck {
        kind: "tcp",
        ..HealthCheck::default()
    };
    let Some(option) = &s.check else {
        return tcp;
    };
    match option.word(1) {
        "httpchk" => http(&option.words[2..], option.line, s, r),
        "tcp-check" => tcp_check(s, r),
        "redis-check" => HealthCheck {
            kind: "send_expect",
            send: Some("PING\r\n".into()),
            expect: Some("+PONG".into()),
            ..HealthCheck::default()
        },
        "mysql-check" => {
            if option.words.len() > 2 {
                r.warn(
                    H,
                    option.line,
                    "mysql-check with a user: ringlb checks the server's greeting only (no login)",
                );
            }
            // A MySQL server speaks first: a packet of sequence 0 starting with protocol
            // version 10. An error packet (0xff) fails the check, as in HAProxy.
            HealthCheck {
                kind: "send_expect",
                send: Some(String::new()),
                expect_regex: Some(r"(?s-u)\A.{3}\x00\x0a".into()),
                ..HealthCheck::default()
            }
        }
        other => {
            r.warn_hint(
                H,
                option.line,
                format!("option {other}: not available, a TCP connect check instead"),
                "a send_expect check can send bytes and match the answer",
            );
            tcp
        }
    }
}

fn http(args: &[String], line: usize, s: &Settings, r: &mut Report) -> HealthCheck {
    // `option httpchk [[METHOD] URI [VERSION]]`; old files put headers after the version.
    let (mut method, mut uri, mut version) = match args {
        [] => ("OPTIONS", "/", "HTTP/1.0"),
        [uri] => ("OPTIONS", uri.as_str(), "HTTP/1.0"),
        [m, uri] => (m.as_str(), uri.as_str(), "HTTP/1.0"),
        [m, uri, v, ..] => (m.as_str(), uri.as_str(), v.as_str()),
    };
    let mut headers = BTreeMap::new();
    let mut header_lines: Vec<&str> = Vec::new();
    if let Some((v, rest)) = version.split_once("\r\n") {
        version = v;
        header_lines.extend(rest.split("\r\n").filter(|h| !h.is_empty()));
    }
    let mut expect_status = None;
    for d in &s.http_check {
        let w: Vec<&str> = d.words.iter().skip(1).map(String::as_str).collect();
        match w.as_slice() {
            ["expect", "status", codes] => match statuses(codes) {
                Some(st) => expect_status = Some(st),
                None => r.warn(
                    H,
                    d.line,
                    format!("http-check expect status {codes:?}: not a status list, left out"),
                ),
            },
            ["send", rest @ ..] => {
                let mut i = 0;
                while i + 1 < rest.len() {
                    match rest[i] {
                        "meth" => method = rest[i + 1],
                        "uri" => uri = rest[i + 1],
                        "ver" => version = rest[i + 1],
                        "hdr" if i + 2 < rest.len() => {
                            headers.insert(rest[i + 1].to_string(), rest[i + 2].to_string());
                            i += 1;
                        }
                        other => {
                            r.warn(H, d.line, format!("http-check send {other}: not converted"))
                        }
                    }
                    i += 2;
                }
            }
            ["comment", ..] | ["send-state"] | ["connect"] => {}
            _ => r.warn(
                H,
                d.line,
                format!(
                    "http-check {}: ringlb checks the status code only, left out",
                    w.join(" ")
                ),
            ),
        }
    }
    for h in header_lines {
        match h.split_once(':') {
            Some((n, v)) => {
                headers.insert(n.trim().to_string(), v.trim().to_string());
            }
            None => r.warn(
                H,
                line,
                format!("httpchk header {h:?} is not `Name: value`, left out"),
            ),
        }
    }
    headers.retain(|name, value| {
        let ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
            && !value.contains(['\r', '\n']);
        if !ok {
            r.warn(
                H,
                line,
                format!("check header {name:?}: not a valid header, left out"),
            );
        }
        ok
    });
    let request = format!("{method} {uri} {version}");
    let valid = !method.is_empty()
        && !method.contains(char::is_whitespace)
        && uri.starts_with('/')
        && !uri.contains(char::is_whitespace)
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    if !valid {
        r.warn(
            H,
            line,
            format!("check request {request:?} is not METHOD /path HTTP/1.x: ringlb's default request instead"),
        );
    }
    HealthCheck {
        kind: "http",
        request: valid.then_some(request),
        headers,
        expect_status,
        ..HealthCheck::default()
    }
}

/// `200`, `200,301`, `200-399` as codes and classes.
fn statuses(s: &str) -> Option<Vec<Status>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi): (u16, u16) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let c = part.parse().ok()?;
                (c, c)
            }
        };
        if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) || hi - lo > 499 {
            return None;
        }
        let mut c = lo;
        while c <= hi {
            if c % 100 == 0 && c + 99 <= hi {
                out.push(Status::Class(format!("{}xx", c / 100)));
                c += 100;
            } else {
                out.push(Status::Code(c));
                c += 1;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A `tcp-check` sequence as one send and one expectation: sends are concatenated (the
/// server receives them pipelined) and expectations must match in order.
fn tcp_check(s: &Settings, r: &mut Report) -> HealthCheck {
    let mut send = String::new();
    let mut expects: Vec<String> = Vec::new();
    let mut steps = 0;
    let mut port = None;
    let mut first_line = None;
    for d in &s.tcp_check {
        first_line.get_or_insert(d.line);
        let w: Vec<&str> = d.words.iter().skip(1).map(String::as_str).collect();
        let unusable = |r: &mut Report, why: &str| {
            r.warn_hint(
                H,
                d.line,
                format!(
                    "tcp-check {}: {why}, a TCP connect check instead",
                    w.join(" ")
                ),
                "a send_expect check can send bytes and match the answer",
            );
        };
        match w.as_slice() {
            ["connect", rest @ ..] => {
                let mut i = 0;
                while i < rest.len() {
                    match (rest[i], rest.get(i + 1)) {
                        ("port", Some(p)) => {
                            port = p.parse::<u16>().ok().filter(|&p| p > 0);
                            i += 1;
                        }
                        ("comment", Some(_)) => i += 1,
                        _ => {
                            unusable(r, "only `connect [port N]` is converted");
                            return tcp();
                        }
                    }
                    i += 1;
                }
            }
            ["send" | "send-lf", data, ..] => {
                send.push_str(data);
                steps += 1;
            }
            ["send-binary", hex, ..] => match unhex(hex).and_then(|b| String::from_utf8(b).ok()) {
                Some(text) => {
                    send.push_str(&text);
                    steps += 1;
                }
                None => {
                    unusable(r, "ringlb sends text only");
                    return tcp();
                }
            },
            ["expect", kind, pattern] => {
                let fragment = match *kind {
                    "string" => regex_escape(pattern),
                    "rstring" => format!("(?:{pattern})"),
                    "binary" => match unhex(pattern) {
                        Some(bytes) => bytes.iter().map(|b| format!("\\x{b:02x}")).collect(),
                        None => {
                            unusable(r, "not hex");
                            return tcp();
                        }
                    },
                    _ => {
                        unusable(r, "not converted");
                        return tcp();
                    }
                };
                expects.push(fragment);
                steps += 1;
            }
            ["comment", ..] => {}
            _ => {
                unusable(r, "not converted");
                return tcp();
            }
        }
    }
    let mut hc = tcp();
    hc.port = port;
    if expects.is_empty() {
        if !send.is_empty() {
            if let Some(line) = first_line {
                r.warn(
                    H,
                    line,
                    "tcp-check sends without an expect: a TCP connect check",
                );
            }
        }
        return hc;
    }
    if steps > 2 {
        if let Some(line) = first_line {
            r.warn(
                H,
                line,
                format!(
                    "tcp-check sequence of {steps} steps: ringlb sends everything at once and \
                     expects the answers in order"
                ),
            );
        }
    }
    let regex = if expects.len() == 1 {
        expects.remove(0)
    } else {
        format!("(?s){}", expects.join(".*"))
    };
    hc.kind = "send_expect";
    hc.send = Some(send);
    hc.expect_regex = Some(if regex.contains("\\x") {
        format!("(?-u){regex}")
    } else {
        regex
    });
    hc
}

fn tcp() -> HealthCheck {
    HealthCheck {
        kind: "tcp",
        ..HealthCheck::default()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// `s` as a regex matching itself anywhere in the answer (HAProxy's `expect string`).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy;
    use crate::import::proxy::interpret;

    fn check(cfg: &str) -> (Option<HealthCheck>, Vec<String>) {
        let mut r = Report::default();
        let model = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
        let p = &model.proxies[0];
        let params: Vec<(usize, ServerParams)> = p
            .servers
            .iter()
            .map(|s| (s.line, p.settings.default_server.merged(&s.params)))
            .collect();
        let hc = health_check(p, &params, None, &mut r);
        let found = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        (hc, found)
    }

    #[test]
    fn httpchk_with_old_style_headers_and_server_timing() {
        let (hc, found) = check(
            "backend app1\n  option httpchk GET / HTTP/1.0\\r\\nUser-Agent:\\ HAProxy\n  \
             http-check expect status 200-399\n  timeout check 5s\n  timeout connect 1s\n  \
             server a 192.0.2.1:80 check inter 10s rise 2 fall 2\n  server b 192.0.2.2:80 check inter 10s rise 2 fall 2\n",
        );
        let hc = hc.unwrap();
        assert_eq!(hc.request.as_deref(), Some("GET / HTTP/1.0"));
        assert_eq!(
            hc.headers.get("User-Agent").map(String::as_str),
            Some("HAProxy")
        );
        assert_eq!(
            hc.expect_status,
            Some(vec![
                Status::Class("2xx".into()),
                Status::Class("3xx".into())
            ])
        );
        assert_eq!(hc.interval.as_deref(), Some("10s"));
        assert_eq!((hc.rise, hc.fall), (Some(2), Some(2)));
        assert_eq!(hc.timeout.as_deref(), Some("6s"));
        assert!(found.is_empty(), "{found:?}");
        let (hc, _) = check("backend b\n  option httpchk\n  server a 192.0.2.1:80 check\n");
        let hc = hc.unwrap();
        assert_eq!(hc.request.as_deref(), Some("OPTIONS / HTTP/1.0"));
        assert_eq!(hc.timeout.as_deref(), Some("2s"));
        assert_eq!(hc.interval, None);
    }

    #[test]
    fn tcp_check_sequences() {
        let (hc, found) = check(
            "listen rw-redis\n  option tcp-check\n  tcp-check connect\n  tcp-check send PING\\r\\n\n  \
             tcp-check expect string +PONG\n  tcp-check send info\\ replication\\r\\n\n  \
             tcp-check expect string role:master\n  server r1 192.0.2.1:6379 check inter 2000\n",
        );
        let hc = hc.unwrap();
        assert_eq!(hc.kind, "send_expect");
        assert_eq!(hc.send.as_deref(), Some("PING\r\ninfo replication\r\n"));
        assert_eq!(hc.expect_regex.as_deref(), Some("(?s)\\+PONG.*role:master"));
        assert_eq!(
            found,
            ["3: tcp-check sequence of 4 steps: ringlb sends everything at once and expects the answers in order"]
        );
        let (hc, found) = check("backend b\n  option tcp-check\n  server a 192.0.2.1:80 check\n  server b 192.0.2.2:80\n");
        assert_eq!(hc.unwrap().kind, "tcp");
        assert_eq!(
            found,
            ["4: server without `check` in a backend with checks: ringlb checks every server of a backend"]
        );
        let (hc, _) = check("backend b\n  server a 192.0.2.1:80\n");
        assert_eq!(hc, None);
    }

    #[test]
    fn mysql_and_redis() {
        let (hc, found) = check(
            "backend m\n  option mysql-check user haproxyuser\n  server m 192.0.2.1:3306 check port 3306 inter 12000 rise 3 fall 3\n",
        );
        let hc = hc.unwrap();
        assert_eq!(hc.expect_regex.as_deref(), Some(r"(?s-u)\A.{3}\x00\x0a"));
        assert_eq!(hc.interval.as_deref(), Some("12s"));
        assert_eq!(
            found,
            ["2: mysql-check with a user: ringlb checks the server's greeting only (no login)"]
        );
        let (hc, _) = check("backend r\n  option redis-check\n  server r 192.0.2.1:6379 check\n");
        assert_eq!(hc.unwrap().expect.as_deref(), Some("+PONG"));
    }

    #[test]
    fn status_lists() {
        assert_eq!(statuses("200"), Some(vec![Status::Code(200)]));
        assert_eq!(
            statuses("200,301-302"),
            Some(vec![
                Status::Code(200),
                Status::Code(301),
                Status::Code(302)
            ])
        );
        assert_eq!(statuses("600"), None);
        assert_eq!(statuses("x"), None);
        assert_eq!(statuses("300-200"), None);
    }
}
