//! HAProxy's `bind`, `server` and `default-server` lines: addresses turned into socket
//! addresses (or reported), and the per-server parameters ringlb has a place for.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::haproxy::Directive;
use super::report::{Report, Source};
use super::values::{self, Endpoint, Host, Port};

const H: Source = Source::Haproxy;

/// One `bind` line (or a section's old-style address), reduced to what ringlb binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub line: usize,
    pub addrs: Vec<SocketAddr>,
    pub accept_proxy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub line: usize,
    pub name: String,
    pub written: String,
    pub endpoint: Endpoint,
    pub params: ServerParams,
}

/// A server's parameters; `None` is "not said here", so a server's own value can be laid
/// over its `default-server`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerParams {
    pub weight: Option<u32>,
    pub check: Option<bool>,
    pub inter: Option<Duration>,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub backup: Option<bool>,
    pub maxconn: Option<u32>,
    /// `Some(None)`: `no-send-proxy` cancels a default.
    pub send_proxy: Option<Option<&'static str>>,
    pub disabled: Option<bool>,
    pub check_port: Option<u16>,
    pub check_addr: Option<IpAddr>,
    pub error_limit: Option<u32>,
    pub observe_layer4: Option<bool>,
    /// A `cookie` value was given (reported with the backend's persistence).
    pub cookie: bool,
}

impl ServerParams {
    /// `over` laid on `self`.
    pub fn merged(&self, over: &ServerParams) -> ServerParams {
        ServerParams {
            weight: over.weight.or(self.weight),
            check: over.check.or(self.check),
            inter: over.inter.or(self.inter),
            fastinter: over.fastinter.or(self.fastinter),
            downinter: over.downinter.or(self.downinter),
            rise: over.rise.or(self.rise),
            fall: over.fall.or(self.fall),
            backup: over.backup.or(self.backup),
            maxconn: over.maxconn.or(self.maxconn),
            send_proxy: over.send_proxy.or(self.send_proxy),
            disabled: over.disabled.or(self.disabled),
            check_port: over.check_port.or(self.check_port),
            check_addr: over.check_addr.or(self.check_addr),
            error_limit: over.error_limit.or(self.error_limit),
            observe_layer4: over.observe_layer4.or(self.observe_layer4),
            cookie: over.cookie || self.cookie,
        }
    }
}

/// Bind options that take a value; only their presence matters here.
const BIND_VALUED: &[&str] = &[
    "crt",
    "crt-list",
    "ca-file",
    "alpn",
    "npn",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "ssl-min-ver",
    "ssl-max-ver",
    "verify",
    "crl-file",
    "name",
    "id",
    "process",
    "thread",
    "interface",
    "maxconn",
    "backlog",
    "mss",
    "namespace",
    "nice",
    "level",
    "mode",
    "user",
    "group",
    "uid",
    "gid",
    "tcp-ut",
    "proto",
    "label",
    "severity-output",
    "sigalgs",
    "client-sigalgs",
    "ca-verify-file",
    "ca-ignore-err",
    "crt-ignore-err",
    "quic-cc-algo",
    "accept-netscaler-cip",
    "idle-ping",
    "guid-prefix",
    "expose-fd",
];
/// Bind options without an L4 effect that ringlb needs.
const BIND_SILENT: &[&str] = &[
    "name",
    "id",
    "process",
    "thread",
    "v4v6",
    "v6only",
    "accept-proxy",
];
/// TLS termination options.
const BIND_TLS: &[&str] = &[
    "ssl",
    "crt",
    "crt-list",
    "ca-file",
    "alpn",
    "npn",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "ssl-min-ver",
    "ssl-max-ver",
    "verify",
    "crl-file",
    "strict-sni",
    "prefer-client-ciphers",
    "no-tls-tickets",
    "generate-certificates",
    "allow-0rtt",
    "sigalgs",
    "client-sigalgs",
];

/// Reads a `bind` line's addresses and options. Unusable addresses are reported and left
/// out; the line keeps the rest.
pub fn bind(d: &Directive, r: &mut Report) -> Bind {
    let list = d.word(1);
    let opts: Vec<&str> = d.words.iter().skip(2).map(String::as_str).collect();
    let v6only = opts.contains(&"v6only");
    let mut tls = false;
    let mut i = 0;
    while let Some(&o) = opts.get(i) {
        i += 1;
        if BIND_TLS.contains(&o)
            || o.starts_with("no-ssl")
            || o.starts_with("no-tls")
            || o.starts_with("force-")
        {
            tls = true;
        } else if !BIND_SILENT.contains(&o) {
            r.warn(
                H,
                d.line,
                format!("bind option `{o}`: no equivalent in ringlb, left out"),
            );
        }
        if BIND_VALUED.contains(&o) {
            i += 1;
        }
    }
    if tls {
        r.warn_hint(
            H,
            d.line,
            "bind ... ssl: ringlb does not terminate TLS; connections are forwarded still \
             encrypted",
            "terminate TLS on the servers, or route by name with \"routes\"",
        );
    }
    Bind {
        line: d.line,
        addrs: bind_addrs(list, d.line, v6only, r),
        accept_proxy: opts.contains(&"accept-proxy"),
    }
}

/// The socket addresses of a comma-separated bind list. HAProxy's `::` listens for IPv4
/// too (Linux's default), ringlb's IPv6 listeners do not: it becomes two binds.
pub fn bind_addrs(list: &str, line: usize, v6only: bool, r: &mut Report) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if list.is_empty() {
        r.warn(H, line, "bind without an address: left out");
    }
    for written in list.split(',').filter(|s| !s.is_empty()) {
        let e = values::endpoint(written);
        match e.socket_addr() {
            Some(a) if a.port() != 0 => {
                out.push(a);
                if e.host == Host::Any6 && !v6only {
                    out.push(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), a.port()));
                }
            }
            _ => {
                let (what, hint) = values::unusable(&e, written);
                r.warn_hint(H, line, format!("bind {what}: left out"), hint);
            }
        }
    }
    out
}

/// Server parameters that take a value.
const SERVER_VALUED: &[&str] = &[
    "weight",
    "inter",
    "fastinter",
    "downinter",
    "rise",
    "fall",
    "maxconn",
    "port",
    "addr",
    "cookie",
    "id",
    "slowstart",
    "minconn",
    "maxqueue",
    "error-limit",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "agent-port",
    "agent-inter",
    "agent-addr",
    "agent-send",
    "source",
    "sni",
    "ca-file",
    "crt",
    "ciphers",
    "ciphersuites",
    "verify",
    "verifyhost",
    "alpn",
    "npn",
    "resolvers",
    "resolve-prefer",
    "resolve-net",
    "resolve-opts",
    "init-addr",
    "track",
    "pool-max-conn",
    "pool-purge-delay",
    "pool-low-conn",
    "max-reuse",
    "namespace",
    "proto",
    "check-proto",
    "check-sni",
    "check-alpn",
    "redir",
    "ws",
    "tcp-ut",
    "socks4",
    "proxy-v2-options",
    "set-proxy-v2-tlv-fmt",
    "log-proto",
    "shard",
    "hash-key",
    "guid",
    "crl-file",
    "curves",
    "sigalgs",
    "client-sigalgs",
    "ssl-min-ver",
    "ssl-max-ver",
    "check-via-socks4",
    "usesrc",
    "interface",
    "tfo",
];

/// Reads the parameters after a server's address (or after `default-server`).
pub fn server_params(d: &Directive, from: usize, r: &mut Report) -> ServerParams {
    let mut p = ServerParams::default();
    let words: Vec<&str> = d.words.iter().skip(from).map(String::as_str).collect();
    let mut i = 0;
    while let Some(&k) = words.get(i) {
        i += 1;
        let value = if SERVER_VALUED.contains(&k) {
            i += 1;
            match words.get(i - 1) {
                Some(v) => *v,
                None => {
                    r.warn(H, d.line, format!("`{k}` without a value: left out"));
                    break;
                }
            }
        } else {
            ""
        };
        let mut bad = |what: &str| {
            r.warn(H, d.line, format!("{k} {value:?} is not {what}: left out"));
        };
        let number = |v: &str| v.parse::<u32>().ok();
        let duration = values::haproxy_duration;
        match k {
            "weight" => match number(value) {
                Some(w) => p.weight = Some(w),
                None => bad("a weight"),
            },
            "inter" | "fastinter" | "downinter" => match duration(value).filter(|d| !d.is_zero()) {
                Some(t) => match k {
                    "inter" => p.inter = Some(t),
                    "fastinter" => p.fastinter = Some(t),
                    _ => p.downinter = Some(t),
                },
                None => bad("a duration"),
            },
            "rise" | "fall" => match number(value).filter(|&n| n > 0) {
                Some(n) if k == "rise" => p.rise = Some(n),
                Some(n) => p.fall = Some(n),
                None => bad("a count"),
            },
            "maxconn" => match number(value) {
                // HAProxy's 0 is "no limit".
                Some(0) => {}
                Some(n) => p.maxconn = Some(n),
                None => bad("a count"),
            },
            "port" => match value.parse::<u16>().ok().filter(|&n| n > 0) {
                Some(n) => p.check_port = Some(n),
                None => bad("a port"),
            },
            "addr" => match value.parse::<IpAddr>() {
                Ok(a) => p.check_addr = Some(a),
                Err(_) => r.warn_hint(
                    H,
                    d.line,
                    format!("addr {value:?} is not an IP address: left out"),
                    "resolve it and put the address",
                ),
            },
            "error-limit" => match number(value).filter(|&n| n > 0) {
                Some(n) => p.error_limit = Some(n),
                None => bad("a count"),
            },
            "observe" => match value {
                "layer4" => p.observe_layer4 = Some(true),
                _ => r.warn(
                    H,
                    d.line,
                    format!("observe {value}: ringlb observes connects only (layer4): left out"),
                ),
            },
            // Marking down is what ringlb does with passive errors.
            "on-error" if value == "mark-down" || value == "fail-check" => {}
            "check" => p.check = Some(true),
            "no-check" => p.check = Some(false),
            "backup" => p.backup = Some(true),
            "no-backup" => p.backup = Some(false),
            "disabled" => p.disabled = Some(true),
            "enabled" => p.disabled = Some(false),
            "send-proxy" => p.send_proxy = Some(Some("v1")),
            "send-proxy-v2" => p.send_proxy = Some(Some("v2")),
            "send-proxy-v2-ssl" | "send-proxy-v2-ssl-cn" => {
                p.send_proxy = Some(Some("v2"));
                r.warn(
                    H,
                    d.line,
                    format!("{k}: sent as send_proxy v2 without the TLS details (ringlb does not terminate TLS)"),
                );
            }
            "no-send-proxy" | "no-send-proxy-v2" => p.send_proxy = Some(None),
            "cookie" => p.cookie = true,
            // ringlb sends its checks with the PROXY header its servers expect anyway.
            "check-send-proxy" | "id" => {}
            "ssl" | "check-ssl" | "sni" | "ca-file" | "crt" | "verify" | "verifyhost" | "alpn"
            | "ciphers" | "ciphersuites" | "check-sni" | "check-alpn" => r.warn_hint(
                H,
                d.line,
                format!("{k}: ringlb does not open TLS to servers, left out"),
                "forward TLS from the clients untouched, or let the servers speak plain TCP",
            ),
            "resolvers" | "resolve-prefer" | "resolve-net" | "resolve-opts" | "init-addr" => {
                r.warn_hint(
                    H,
                    d.line,
                    format!("{k}: ringlb does not resolve names, left out"),
                    "put addresses",
                )
            }
            "slowstart" => r.warn(H, d.line, "slowstart: ringlb gives a server its full weight at once, left out"),
            "on-marked-down" => r.warn(
                H,
                d.line,
                format!("on-marked-down {value}: ringlb lets established connections to a DOWN server finish, left out"),
            ),
            "source" => r.warn(H, d.line, "source: ringlb connects from the address the kernel picks, left out"),
            "track" => r.warn(H, d.line, "track: each ringlb server is checked on its own, left out"),
            "agent-check" => r.warn(H, d.line, "agent-check: no agent checks in ringlb, left out"),
            _ => {
                let what = if value.is_empty() {
                    format!("server parameter `{k}`")
                } else {
                    format!("server parameter `{k} {value}`")
                };
                r.warn(H, d.line, format!("{what}: no equivalent in ringlb, left out"));
            }
        }
    }
    p
}

/// A `server NAME ADDRESS [params]` line.
pub fn server(d: &Directive, r: &mut Report) -> Option<Server> {
    if d.words.len() < 3 {
        r.warn(H, d.line, "server without a name and an address: left out");
        return None;
    }
    let written = d.word(2).to_string();
    Some(Server {
        line: d.line,
        name: d.word(1).to_string(),
        endpoint: values::endpoint(&written),
        written,
        params: server_params(d, 3, r),
    })
}

impl Server {
    /// The address to connect to: a server without a port takes the port the client
    /// connected to, which is known when every bind of its frontends has one port.
    pub fn addr(&self, client_port: Option<u16>) -> Result<SocketAddr, (String, &'static str)> {
        let ip = match self.endpoint.host {
            Host::Ip(ip) => ip,
            Host::Any4 | Host::Any6 => {
                return Err((
                    format!("{:?} is not a server address", self.written),
                    "write the server's ip:port",
                ))
            }
            _ => return Err(values::unusable(&self.endpoint, &self.written)),
        };
        match (&self.endpoint.port, client_port) {
            (Port::Number(p), _) if *p > 0 => Ok(SocketAddr::new(ip, *p)),
            (Port::None, Some(p)) => Ok(SocketAddr::new(ip, p)),
            (Port::None, None) => Err((
                format!(
                    "{:?} has no port and its frontends listen on several",
                    self.written
                ),
                "write the server's ip:port",
            )),
            _ => Err(values::unusable(&self.endpoint, &self.written)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy::split_words;

    fn directive(line: &str) -> Directive {
        Directive {
            line: 7,
            words: split_words(line).unwrap(),
        }
    }

    fn findings(r: &Report) -> Vec<String> {
        r.sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect()
    }

    #[test]
    fn binds() {
        let mut r = Report::default();
        let b = bind(&directive("bind :::443 v4v6 accept-proxy name x"), &mut r);
        assert_eq!(
            b.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["[::]:443", "0.0.0.0:443"]
        );
        assert!(b.accept_proxy);
        let b = bind(&directive("bind [::]:443 v6only"), &mut r);
        assert_eq!(b.addrs.len(), 1);
        let b = bind(
            &directive("bind 192.0.2.1:80,*:81,host.lan:82,:8000-8010,/tmp/s"),
            &mut r,
        );
        assert_eq!(
            b.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["192.0.2.1:80", "0.0.0.0:81"]
        );
        assert_eq!(
            findings(&r),
            [
                "7: bind \"host.lan\" is a host name; ringlb takes IP addresses only: left out",
                "7: bind \":8000-8010\" is a port range (8000-8010): left out",
                "7: bind \"/tmp/s\" is not a TCP address (UNIX socket or other family): left out",
            ]
        );
        let mut r = Report::default();
        bind(
            &directive("bind *:443 ssl crt /etc/ssl/x.pem alpn h2 tfo"),
            &mut r,
        );
        assert_eq!(
            findings(&r),
            [
                "7: bind option `tfo`: no equivalent in ringlb, left out",
                "7: bind ... ssl: ringlb does not terminate TLS; connections are forwarded still encrypted",
            ]
        );
    }

    #[test]
    fn server_lines_and_defaults() {
        let mut r = Report::default();
        let defaults = server_params(
            &directive(
                "default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions send-proxy",
            ),
            1,
            &mut r,
        );
        let s = server(
            &directive("server pg1 192.0.2.5:5432 maxconn 100 check port 8008 no-send-proxy weight 7 backup inter 2000"),
            &mut r,
        )
        .unwrap();
        let p = defaults.merged(&s.params);
        assert_eq!(p.inter, Some(Duration::from_secs(2)));
        assert_eq!(
            (p.rise, p.fall, p.weight, p.maxconn),
            (Some(2), Some(3), Some(7), Some(100))
        );
        assert_eq!(
            (p.check, p.backup, p.check_port),
            (Some(true), Some(true), Some(8008))
        );
        assert_eq!(p.send_proxy, Some(None));
        assert_eq!(
            findings(&r),
            ["7: on-marked-down shutdown-sessions: ringlb lets established connections to a DOWN server finish, left out"]
        );
        assert_eq!(s.addr(None).unwrap().to_string(), "192.0.2.5:5432");
        let s = server(&directive("server web 192.0.2.6 check"), &mut r).unwrap();
        assert_eq!(s.addr(Some(80)).unwrap().to_string(), "192.0.2.6:80");
        assert!(s.addr(None).is_err());
        let mut r = Report::default();
        server_params(
            &directive("server a b weight x inter -1 frobnicate maxconn"),
            3,
            &mut r,
        );
        assert_eq!(
            findings(&r),
            [
                "7: weight \"x\" is not a weight: left out",
                "7: inter \"-1\" is not a duration: left out",
                "7: server parameter `frobnicate`: no equivalent in ringlb, left out",
                "7: `maxconn` without a value: left out",
            ]
        );
    }
}
