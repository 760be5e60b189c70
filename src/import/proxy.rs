//! haproxy.cfg's sections interpreted: `global`, and each `frontend`, `backend` and
//! `listen` with the `defaults` it inherits (the last one above it, or the one named with
//! `from`). Directives without a layer-4 meaning are reported here, or kept to be
//! reported once the proxy's mode is known (`http_only`).

use std::collections::HashMap;
use std::time::Duration;

use super::haproxy::{Directive, Haproxy, Section, SectionKind};
use super::report::{Report, Source};
use super::server::{self, Bind, Server, ServerParams};
use super::values;

const H: Source = Source::Haproxy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At<T> {
    pub line: usize,
    pub value: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Http,
}

/// What a proxy may take from `defaults`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub mode: Option<At<Mode>>,
    pub balance: Option<At<&'static str>>,
    pub connect: Option<At<Duration>>,
    pub client: Option<At<Duration>>,
    pub server: Option<At<Duration>>,
    pub queue: Option<At<Duration>>,
    pub check_timeout: Option<At<Duration>>,
    pub tunnel: Option<At<Duration>>,
    pub retries: Option<u32>,
    pub maxconn: Option<At<u32>>,
    /// The `option httpchk | tcp-check | mysql-check | ...` line.
    pub check: Option<Directive>,
    pub http_check: Vec<Directive>,
    pub tcp_check: Vec<Directive>,
    pub default_server: ServerParams,
    pub inspect_delay: Option<At<Duration>>,
    /// HTTP-only directives: lost in a proxy converted from `mode http`, ignored (as
    /// HAProxy ignores them) in `mode tcp`.
    pub http_only: Vec<Deferred>,
    /// Cookie persistence, reported with the servers' `cookie` values.
    pub cookie: Option<usize>,
    /// `default_backend` written in `defaults`.
    pub default_backend: Option<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub line: usize,
    pub what: String,
    pub suggestion: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Listen,
}

#[derive(Debug, Clone)]
pub struct Proxy {
    pub kind: Kind,
    pub name: String,
    pub line: usize,
    pub settings: Settings,
    pub binds: Vec<Bind>,
    pub servers: Vec<Server>,
    pub default_backend: Option<At<String>>,
    pub use_backends: Vec<UseBackend>,
    /// `acl NAME criterion...` lines, in order.
    pub acls: Vec<(usize, String, Vec<String>)>,
    pub stats: Option<StatsSpec>,
    /// `disabled`: HAProxy does not start it.
    pub disabled: Option<usize>,
    /// `tcp-request connection expect-proxy layer4`, with the `src` networks of its
    /// condition (empty: every source).
    pub expect_proxy: Option<At<Vec<String>>>,
}

impl Proxy {
    pub fn mode(&self) -> Mode {
        self.settings.mode.map_or(Mode::Tcp, |m| m.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseBackend {
    pub line: usize,
    pub backend: String,
    /// The words after `if`/`unless`; empty for an unconditional rule.
    pub condition: Vec<String>,
    pub unless: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSpec {
    pub line: usize,
    pub uri: Option<At<String>>,
    pub auth: Vec<At<(String, String)>>,
    pub refresh: Option<At<Duration>>,
}

#[derive(Debug, Clone, Default)]
pub struct Global {
    pub maxconn: Option<At<u32>>,
    pub nbthread: Option<At<u32>>,
    /// `spread-checks`: percent, ringlb's `jitter`.
    pub spread_checks: Option<u32>,
    /// `hard-stop-after`: ringlb's `grace`.
    pub hard_stop_after: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub global: Global,
    pub proxies: Vec<Proxy>,
}

pub fn interpret(cfg: &Haproxy, r: &mut Report) -> Model {
    for &line in &cfg.conditionals {
        r.warn(
            H,
            line,
            "conditional block (.if/.else): conditions are not evaluated, every line is converted",
        );
    }
    let mut model = Model::default();
    let mut last_defaults = Settings::default();
    let mut named: HashMap<String, Settings> = HashMap::new();
    for s in &cfg.sections {
        match &s.kind {
            SectionKind::Global => global(s, &mut model.global, r),
            SectionKind::Defaults => {
                let mut d = Settings::default();
                let mut scratch = scratch_proxy(s);
                for directive in &s.directives {
                    proxy_directive(directive, &mut d, &mut scratch, true, r);
                }
                if let Some(name) = s.name() {
                    named.insert(name.to_string(), d.clone());
                }
                last_defaults = d;
            }
            SectionKind::Frontend | SectionKind::Backend | SectionKind::Listen => {
                let base = match s.args.iter().position(|a| a == "from") {
                    Some(i) => {
                        let name = s.args.get(i + 1).map_or("", String::as_str);
                        named.get(name).cloned().unwrap_or_else(|| {
                            r.warn(
                                H,
                                s.line,
                                format!("defaults {name:?} not found: HAProxy's defaults apply"),
                            );
                            Settings::default()
                        })
                    }
                    None => last_defaults.clone(),
                };
                model.proxies.push(proxy(s, base, r));
            }
            SectionKind::Other(kind) => r.warn(
                H,
                s.line,
                format!("section `{kind}`: nothing of it is converted"),
            ),
        }
    }
    model
}

fn scratch_proxy(s: &Section) -> Proxy {
    Proxy {
        kind: Kind::Listen,
        name: s.name().unwrap_or_default().to_string(),
        line: s.line,
        settings: Settings::default(),
        binds: Vec::new(),
        servers: Vec::new(),
        default_backend: None,
        use_backends: Vec::new(),
        acls: Vec::new(),
        stats: None,
        disabled: None,
        expect_proxy: None,
    }
}

fn proxy(s: &Section, base: Settings, r: &mut Report) -> Proxy {
    let mut p = scratch_proxy(s);
    p.kind = match s.kind {
        SectionKind::Frontend => Kind::Frontend,
        SectionKind::Backend => Kind::Backend,
        _ => Kind::Listen,
    };
    // `listen NAME ADDRESS`: the old way to give a bind.
    if let Some(addr) = s.args.get(1).filter(|a| *a != "from") {
        p.binds.push(Bind {
            line: s.line,
            addrs: server::bind_addrs(addr, s.line, false, r),
            accept_proxy: false,
        });
    }
    let mut settings = base;
    // Rules of a proxy replace those of its defaults, as in HAProxy.
    let (mut own_http, mut own_tcp) = (false, false);
    for d in &s.directives {
        match d.word(0) {
            "http-check" if !own_http => {
                own_http = true;
                settings.http_check.clear();
            }
            "tcp-check" if !own_tcp => {
                own_tcp = true;
                settings.tcp_check.clear();
            }
            _ => {}
        }
        proxy_directive(d, &mut settings, &mut p, false, r);
    }
    if p.default_backend.is_none() && p.kind != Kind::Backend {
        p.default_backend = settings.default_backend.clone();
    }
    p.settings = settings;
    p
}

fn proxy_directive(
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
            format!("timeout {which} {value:?} is not a duration: left out"),
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

fn global(s: &Section, g: &mut Global, r: &mut Report) {
    for d in &s.directives {
        let line = d.line;
        let number = || d.word(1).parse::<u32>().ok().filter(|&n| n > 0);
        let key = d.word(0);
        match key {
            "maxconn" => match number() {
                Some(n) => g.maxconn = Some(At { line, value: n }),
                None => r.warn(
                    H,
                    line,
                    format!("maxconn {:?} is not a count: left out", d.word(1)),
                ),
            },
            "nbthread" => match number() {
                Some(n) => g.nbthread = Some(At { line, value: n }),
                None => r.warn(
                    H,
                    line,
                    format!("nbthread {:?} is not a count: left out", d.word(1)),
                ),
            },
            "nbproc" => r.warn_hint(
                H,
                line,
                "nbproc: ringlb is one process with worker threads, left out",
                "\"workers\" sets the threads",
            ),
            "cpu-map" => r.note(
                H,
                line,
                "cpu-map: ringlb pins one worker per CPU itself (\"pin_workers\")",
            ),
            "spread-checks" => match number().filter(|&n| n <= 50) {
                Some(n) => g.spread_checks = Some(n),
                None => r.warn(
                    H,
                    line,
                    "spread-checks: not a percentage from 0 to 50, left out",
                ),
            },
            "hard-stop-after" => match values::haproxy_duration(d.word(1)) {
                Some(t) if !t.is_zero() => g.hard_stop_after = Some(t),
                _ => r.warn(H, line, "hard-stop-after: not a duration, left out"),
            },
            "lua-load" | "lua-load-per-thread" | "lua-prepend-path" => {
                r.warn(H, line, format!("{key}: no Lua in ringlb, left out"))
            }
            "setenv" | "presetenv" | "resetenv" | "unsetenv" => r.warn(
                H,
                line,
                format!("{key}: environment variables are not expanded by the import, left out"),
            ),
            "server-state-file"
            | "server-state-base"
            | "external-check"
            | "h1-case-adjust"
            | "h1-case-adjust-file" => {
                r.warn(H, line, format!("{key}: no equivalent in ringlb, left out"))
            }
            // Process plumbing ringlb does its own way (logs on stderr, systemd runs it).
            k if k.starts_with("ssl-")
                || k.starts_with("tune.")
                || k.starts_with("log")
                || k.starts_with("profiling.")
                || k.starts_with("harden.") => {}
            "chroot"
            | "user"
            | "group"
            | "uid"
            | "gid"
            | "daemon"
            | "master-worker"
            | "pidfile"
            | "stats"
            | "ca-base"
            | "crt-base"
            | "ulimit-n"
            | "node"
            | "description"
            | "quiet"
            | "debug"
            | "set-dumpable"
            | "insecure-fork-wanted"
            | "expose-experimental-directives"
            | "maxsslconn"
            | "maxsslrate"
            | "maxcompcpuusage"
            | "maxcomprate"
            | "maxpipes"
            | "maxzlibmem"
            | "noepoll"
            | "nopoll"
            | "nosplice"
            | "nogetaddrinfo"
            | "noreuseport"
            | "busy-polling"
            | "max-spread-checks"
            | "localpeer"
            | "mworker-max-reloads"
            | "thread-groups"
            | "numa-cpu-mapping"
            | "cpu-policy"
            | "zero-warning"
            | "strict-limits"
            | "nbcores"
            | "default-path"
            | "httpclient.resolvers.prefer"
            | "pp2-never-send-local" => {}
            other => r.warn(
                H,
                line,
                format!("global `{other}`: no equivalent in ringlb, left out"),
            ),
        }
    }
}
