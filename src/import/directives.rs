//! What one directive of a `defaults`, `frontend`, `backend` or `listen` section means:
//! it sets a field of the proxy's model, or it is reported, at once or (HTTP-only ones)
//! once the proxy's mode is known.

use super::haproxy::Directive;
use super::proxy::{At, Deferred, Mode, Proxy, Settings, StatsSpec, UseBackend};
use super::report::{Report, Source};
use super::server;
use super::values;

const H: Source = Source::Haproxy;

pub fn proxy_directive(
    d: &Directive,
    s: &mut Settings,
    p: &mut Proxy,
    in_defaults: bool,
    r: &mut Report,
) {
    let line = d.line;
    let http_only = |s: &mut Settings, what: String, suggestion: Option<&'static str>| {
        s.http_only.push(Deferred {
            line,
            what,
            suggestion,
        })
    };
    let only_in_proxies = |r: &mut Report| {
        r.warn(
            H,
            line,
            format!("`{}` in defaults has no effect: left out", d.word(0)),
        );
    };
    match d.word(0) {
        "mode" => match d.word(1) {
            "tcp" => s.mode = at(line, Mode::Tcp),
            "http" => s.mode = at(line, Mode::Http),
            other => r.warn(
                H,
                line,
                format!("mode {other:?}: not converted, taken as tcp"),
            ),
        },
        "balance" => s.balance = balance(d, r).and_then(|b| at(line, b)),
        "timeout" => timeout(d, d.word(1), d.word(2), s, r),
        "contimeout" => timeout(d, "connect", d.word(1), s, r),
        "clitimeout" => timeout(d, "client", d.word(1), s, r),
        "srvtimeout" => timeout(d, "server", d.word(1), s, r),
        "retries" => match d.word(1).parse() {
            Ok(n) => s.retries = Some(n),
            Err(_) => r.warn(
                H,
                line,
                format!("retries {:?} is not a count: left out", d.word(1)),
            ),
        },
        "maxconn" => match d.word(1).parse::<u32>() {
            Ok(0) => {}
            Ok(n) => s.maxconn = at(line, n),
            Err(_) => r.warn(
                H,
                line,
                format!("maxconn {:?} is not a count: left out", d.word(1)),
            ),
        },
        "option" => option(d, d.word(1), s, r),
        "no" if d.word(1) == "option" => match d.word(2) {
            "httpchk" | "tcp-check" | "mysql-check" | "redis-check" => s.check = None,
            "redispatch" | "dontlognull" | "tcplog" | "httplog" => {}
            other => r.warn(H, line, format!("no option {other}: not converted")),
        },
        "http-check" => s.http_check.push(d.clone()),
        "tcp-check" => s.tcp_check.push(d.clone()),
        "default-server" => {
            let new = server::server_params(d, 1, r);
            s.default_server = s.default_server.merged(&new);
        }
        "cookie" => {
            s.cookie = Some(line);
            http_only(
                s,
                "cookie persistence: HTTP only, left out".into(),
                Some("for stickiness use \"balance\": \"source\""),
            );
        }
        "tcp-request" => tcp_request(d, s, p, r),
        "log-format" | "log-format-sd" | "error-log-format" => r.warn(
            H,
            line,
            format!(
                "{}: ringlb logs one line of its own format per connection, left out",
                d.word(0)
            ),
        ),
        "capture"
        | "http-request"
        | "http-response"
        | "http-after-response"
        | "redirect"
        | "errorfile"
        | "errorfiles"
        | "errorloc"
        | "errorloc302"
        | "errorloc303"
        | "http-error"
        | "compression"
        | "monitor-uri"
        | "monitor"
        | "unique-id-format"
        | "unique-id-header"
        | "http-reuse"
        | "http-send-name-header"
        | "filter"
        | "appsession"
        | "block"
        | "force-persist"
        | "ignore-persist"
        | "persist"
        | "reqadd"
        | "reqallow"
        | "reqdel"
        | "reqdeny"
        | "reqiallow"
        | "reqidel"
        | "reqideny"
        | "reqipass"
        | "reqirep"
        | "reqisetbe"
        | "reqitarpit"
        | "reqpass"
        | "reqrep"
        | "reqsetbe"
        | "reqtarpit"
        | "rspadd"
        | "rspdel"
        | "rspdeny"
        | "rspidel"
        | "rspideny"
        | "rspirep"
        | "rsprep"
        | "use-fcgi-app" => http_only(
            s,
            format!("{}: HTTP only, left out", d.word(0)),
            match d.word(0) {
                "redirect" => Some("keep a web server for redirects"),
                w if w.starts_with("req") || w.starts_with("rsp") || w.starts_with("http-") => {
                    Some("rewrite on the servers")
                }
                _ => None,
            },
        ),
        "stick-table" | "stick" | "stick-store-request" | "stick-store-response" => r.warn_hint(
            H,
            line,
            format!("{}: no stick tables in ringlb, left out", d.word(0)),
            "for stickiness by client address use \"balance\": \"source\"",
        ),
        "hash-type" => r.note(
            H,
            line,
            "hash-type: ringlb's source balancing is always a consistent (Maglev) hash",
        ),
        "log" | "log-tag" | "description" | "id" | "enabled" | "bind-process" | "process" => {}
        "disabled" if !in_defaults => p.disabled = Some(line),
        "bind" if !in_defaults => p.binds.push(server::bind(d, r)),
        "server" if !in_defaults => {
            if let Some(srv) = server::server(d, r) {
                p.servers.push(srv);
            }
        }
        "default_backend" => match d.words.get(1) {
            Some(b) if in_defaults => {
                s.default_backend = Some(At {
                    line,
                    value: b.clone(),
                })
            }
            Some(b) => {
                p.default_backend = Some(At {
                    line,
                    value: b.clone(),
                })
            }
            None => r.warn(H, line, "default_backend without a name: left out"),
        },
        "use_backend" if !in_defaults => use_backend(d, p, r),
        "acl" if !in_defaults => {
            if d.words.len() < 3 {
                r.warn(H, line, "acl without a name and a criterion: left out");
            } else {
                p.acls
                    .push((line, d.word(1).to_string(), d.words[2..].to_vec()));
            }
        }
        "stats"
            if in_defaults
                && !matches!(d.word(1), "socket" | "timeout" | "maxconn" | "bind-process") =>
        {
            r.warn_hint(
                H,
                line,
                "stats in defaults: left out",
                "put the stats page in one proxy",
            )
        }
        "stats" => stats(d, p, s, r),
        "bind" | "server" | "disabled" | "use_backend" | "acl" => only_in_proxies(r),
        "server-template" => r.warn_hint(
            H,
            line,
            "server-template: ringlb does not resolve names, left out",
            "list each server with its address",
        ),
        other => r.warn(
            H,
            line,
            format!("`{other}`: no equivalent in ringlb, left out"),
        ),
    }
}

fn at<T>(line: usize, value: T) -> Option<At<T>> {
    Some(At { line, value })
}

fn balance(d: &Directive, r: &mut Report) -> Option<&'static str> {
    let algo = d.word(1);
    match algo {
        "roundrobin" => Some("roundrobin"),
        "static-rr" => {
            r.note(
                H,
                d.line,
                "balance static-rr: ringlb's roundrobin (weights may change at run time)",
            );
            Some("roundrobin")
        }
        "leastconn" => Some("leastconn"),
        "source" => Some("source"),
        // HAProxy's default random draws two servers and keeps the better one, as ringlb.
        "random" | "random(2)" => Some("random"),
        _ => {
            let hint = if algo.starts_with("hdr")
                || algo.starts_with("uri")
                || algo.starts_with("url_param")
                || algo.starts_with("rdp-cookie")
            {
                "ringlb balances at layer 4: \"source\" keeps a client on one server"
            } else {
                "ringlb has roundrobin, leastconn, source and random"
            };
            r.warn_hint(
                H,
                d.line,
                format!("balance {algo}: not available, roundrobin instead"),
                hint,
            );
            None
        }
    }
}

fn timeout(d: &Directive, which: &str, value: &str, s: &mut Settings, r: &mut Report) {
    let slot = match which {
        "connect" => &mut s.connect,
        "client" => &mut s.client,
        "server" => &mut s.server,
        "queue" => &mut s.queue,
        "check" => &mut s.check_timeout,
        "tunnel" => &mut s.tunnel,
        "http-request" | "http-keep-alive" | "tarpit" => {
            s.http_only.push(Deferred {
                line: d.line,
                what: format!("timeout {which}: HTTP only, left out"),
                suggestion: None,
            });
            return;
        }
        "client-fin" | "server-fin" => {
            r.warn(H, d.line, format!("timeout {which}: ringlb applies client and server after a half-close too, left out"));
            return;
        }
        other => {
            r.warn(
                H,
                d.line,
                format!("timeout {other}: no equivalent in ringlb, left out"),
            );
            return;
        }
    };
    match values::haproxy_duration(value) {
        // HAProxy's 0 is "no timeout"; ringlb always has one.
        Some(t) if t.is_zero() => r.warn(
            H,
            d.line,
            format!("timeout {which} 0 (none): ringlb's default applies"),
        ),
        Some(t) => {
            *slot = Some(At {
                line: d.line,
                value: t,
            })
        }
        None => r.warn(
            H,
            d.line,
            format!("timeout {which} {value:?} is not a duration of at most 24h: left out"),
        ),
    }
}

fn option(d: &Directive, name: &str, s: &mut Settings, r: &mut Report) {
    let http = |s: &mut Settings, suggestion: Option<&'static str>| {
        s.http_only.push(Deferred {
            line: d.line,
            what: format!("option {name}: HTTP only, left out"),
            suggestion,
        })
    };
    match name {
        "httpchk" | "tcp-check" | "mysql-check" | "redis-check" | "pgsql-check" | "ldap-check"
        | "smtpchk" | "ssl-hello-chk" | "spop-check" | "external-check" => s.check = Some(d.clone()),
        // ringlb always retries on another server.
        "redispatch" | "tcplog" | "dontlognull" | "dontlog-normal" | "log-health-checks"
        | "log-separate-errors" | "logasap" | "socket-stats" | "contstats" | "splice-auto"
        | "splice-request" | "splice-response" | "tcp-smart-accept" | "tcp-smart-connect"
        | "independent-streams" => {}
        "forwardfor" => http(
            s,
            Some("send the client address with the PROXY protocol: \"send_proxy\": \"v2\" on the backend, and servers that read it"),
        ),
        "httplog" | "httpslog" | "httpclose" | "http-server-close" | "http-keep-alive" | "forceclose"
        | "http-pretend-keepalive" | "http-buffer-request" | "originalto" | "http-use-proxy-header"
        | "http-ignore-probes" | "http-no-delay" | "accept-invalid-http-request"
        | "accept-invalid-http-response" | "checkcache" | "http_proxy" | "http-use-htx"
        | "http-restrict-req-hdr-names" | "h1-case-adjust-bogus-client"
        | "h1-case-adjust-bogus-server" | "disable-h2-upgrade" | "abortonclose" => http(s, None),
        "" => r.warn(H, d.line, "option without a name: left out"),
        other => r.warn(H, d.line, format!("option {other}: no equivalent in ringlb, left out")),
    }
}

fn tcp_request(d: &Directive, s: &mut Settings, p: &mut Proxy, r: &mut Report) {
    let rest: Vec<&str> = d.words.iter().skip(1).map(String::as_str).collect();
    match rest.as_slice() {
        ["inspect-delay", t] => match values::haproxy_duration(t).filter(|t| !t.is_zero()) {
            Some(t) => {
                s.inspect_delay = Some(At {
                    line: d.line,
                    value: t,
                })
            }
            None => r.warn(
                H,
                d.line,
                format!("inspect-delay {t:?} is not a duration: left out"),
            ),
        },
        // ringlb reads the ClientHello whenever it routes by name: non-TLS bytes go to
        // the default backend, as they do here once the delay is over.
        ["content", "accept", "if", "{", "req.ssl_hello_type" | "req_ssl_hello_type", "1", "}"] => {
        }
        ["connection", "expect-proxy", "layer4"] => {
            p.expect_proxy = Some(At {
                line: d.line,
                value: Vec::new(),
            })
        }
        ["connection", "expect-proxy", "layer4", "if", "{", "src", nets @ .., "}"]
            if !nets.is_empty() && nets.iter().all(|n| !n.starts_with('-')) =>
        {
            p.expect_proxy = Some(At {
                line: d.line,
                value: nets.iter().map(|n| n.to_string()).collect(),
            })
        }
        _ => r.warn(
            H,
            d.line,
            format!("tcp-request {}: not converted", rest.join(" ")),
        ),
    }
}

fn use_backend(d: &Directive, p: &mut Proxy, r: &mut Report) {
    let Some(backend) = d.words.get(1) else {
        r.warn(H, d.line, "use_backend without a name: left out");
        return;
    };
    let (condition, unless) = match d.word(2) {
        "" => (Vec::new(), false),
        "if" => (d.words[3..].to_vec(), false),
        "unless" => (d.words[3..].to_vec(), true),
        _ => {
            r.warn(
                H,
                d.line,
                "use_backend: expected `if` or `unless` after the name, left out",
            );
            return;
        }
    };
    p.use_backends.push(UseBackend {
        line: d.line,
        backend: backend.clone(),
        condition,
        unless,
    });
}

fn stats(d: &Directive, p: &mut Proxy, s: &mut Settings, r: &mut Report) {
    let line = d.line;
    let spec = p.stats.get_or_insert(StatsSpec {
        line,
        ..StatsSpec::default()
    });
    match d.word(1) {
        "enable" => {}
        "uri" => {
            spec.uri = Some(At {
                line,
                value: d.word(2).to_string(),
            })
        }
        "auth" => match d.word(2).split_once(':') {
            Some((user, pw)) => spec.auth.push(At {
                line,
                value: (user.to_string(), pw.to_string()),
            }),
            None => r.warn(H, line, "stats auth without user:password: left out"),
        },
        "refresh" => match values::haproxy_duration(d.word(2)) {
            Some(t) => spec.refresh = Some(At { line, value: t }),
            None => r.warn(
                H,
                line,
                format!("stats refresh {:?} is not a duration: left out", d.word(2)),
            ),
        },
        "realm" | "hide-version" | "show-node" | "show-desc" | "show-legends" | "show-modules" => r
            .note(
                H,
                line,
                format!("stats {}: ringlb's page has a fixed layout", d.word(1)),
            ),
        "admin" => r.note(
            H,
            line,
            "stats admin: ringlb's admin actions (POST /admin/server) are open to the stats user",
        ),
        // Process-wide settings of HAProxy's own socket.
        "socket" | "timeout" | "maxconn" | "bind-process" => {}
        other => {
            s.http_only.push(Deferred {
                line,
                what: format!("stats {other}: not converted"),
                suggestion: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::import::haproxy;
    use crate::import::proxy::{interpret, Kind};

    fn proxy(body: &str) -> (Proxy, Vec<String>) {
        let mut r = Report::default();
        let cfg = format!("listen p\n{body}");
        let mut m = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
        let found = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        (m.proxies.remove(0), found)
    }

    #[test]
    fn timeouts_in_haproxy_units() {
        let (p, found) = proxy(
            "  timeout connect 5000\n  clitimeout 50000\n  timeout server 1m\n  timeout queue 0\n  \
             timeout check 2s\n  timeout tunnel 1h\n  timeout client-fin 1s\n  timeout server x\n",
        );
        let s = &p.settings;
        let ms = |t: Option<At<Duration>>| t.map(|t| t.value.as_millis());
        assert_eq!(ms(s.connect), Some(5000));
        assert_eq!(ms(s.client), Some(50_000));
        assert_eq!(ms(s.server), Some(60_000));
        assert_eq!(ms(s.queue), None);
        assert_eq!(ms(s.check_timeout), Some(2000));
        assert_eq!(ms(s.tunnel), Some(3_600_000));
        assert_eq!(
            found,
            [
                "5: timeout queue 0 (none): ringlb's default applies",
                "8: timeout client-fin: ringlb applies client and server after a half-close too, left out",
                "9: timeout server \"x\" is not a duration of at most 24h: left out",
            ]
        );
    }

    #[test]
    fn balance_options_and_http_only_directives() {
        let (p, found) = proxy(
            "  balance uri\n  option redispatch\n  option forwardfor\n  option tcpka\n  http-request deny\n  \
             stick-table type ip size 1m\n  no option httpchk\n  disabled\n  frobnicate 1\n",
        );
        assert_eq!(p.kind, Kind::Listen);
        assert_eq!(p.settings.balance, None);
        assert_eq!(p.disabled, Some(9));
        let http: Vec<&str> = p
            .settings
            .http_only
            .iter()
            .map(|d| d.what.as_str())
            .collect();
        assert_eq!(
            http,
            [
                "option forwardfor: HTTP only, left out",
                "http-request: HTTP only, left out"
            ]
        );
        assert_eq!(
            found,
            [
                "2: balance uri: not available, roundrobin instead",
                "5: option tcpka: no equivalent in ringlb, left out",
                "7: stick-table: no stick tables in ringlb, left out",
                "10: `frobnicate`: no equivalent in ringlb, left out",
            ]
        );
    }

    #[test]
    fn tcp_request_rules() {
        let (p, found) = proxy(
            "  tcp-request inspect-delay 3s\n  tcp-request content accept if { req_ssl_hello_type 1 }\n  \
             tcp-request connection expect-proxy layer4\n  tcp-request content reject if { src 10.0.0.1 }\n",
        );
        assert_eq!(
            p.settings.inspect_delay.map(|t| t.value),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.expect_proxy.map(|e| e.value), Some(Vec::new()));
        assert_eq!(
            found,
            ["5: tcp-request content reject if { src 10.0.0.1 }: not converted"]
        );
    }
}
