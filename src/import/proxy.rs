//! haproxy.cfg's sections interpreted: each `frontend`, `backend` and `listen` with the
//! `defaults` it inherits (the last one above it, or the one named with `from`), into a
//! model of what ringlb can use. What one directive means is `directives.rs`'s business,
//! `global` is `global.rs`'s.

use std::collections::HashMap;
use std::time::Duration;

use super::directives;
use super::global::{self, Global};
use super::haproxy::{Directive, Haproxy, Section, SectionKind};
use super::report::{Report, Source};
use super::server::{self, Bind, Server, ServerParams};

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
            SectionKind::Global => global::global(s, &mut model.global, r),
            SectionKind::Defaults => {
                let mut d = Settings::default();
                let mut scratch = scratch_proxy(s);
                for directive in &s.directives {
                    directives::proxy_directive(directive, &mut d, &mut scratch, true, r);
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
        directives::proxy_directive(d, &mut settings, &mut p, false, r);
    }
    if p.default_backend.is_none() && p.kind != Kind::Backend {
        p.default_backend = settings.default_backend.clone();
    }
    p.settings = settings;
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy;

    fn model(cfg: &str) -> (Model, Vec<String>) {
        let mut r = Report::default();
        let m = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
        let found = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        (m, found)
    }

    #[test]
    fn proxies_take_the_last_defaults_or_the_named_one() {
        let (m, found) = model(
            "defaults base\n  mode http\n  timeout connect 1s\ndefaults\n  mode tcp\n  retries 5\n\
             listen a 192.0.2.1:80\n  server s 192.0.2.2:80\nbackend b from base\n  server s 192.0.2.3:80\n\
             backend c from nope\n  server s 192.0.2.4:80\n",
        );
        let a = &m.proxies[0];
        assert_eq!(
            (a.kind, a.mode(), a.settings.retries),
            (Kind::Listen, Mode::Tcp, Some(5))
        );
        assert_eq!(a.binds[0].addrs[0].to_string(), "192.0.2.1:80");
        let b = &m.proxies[1];
        assert_eq!(b.mode(), Mode::Http);
        assert_eq!(
            b.settings.connect.map(|t| t.value),
            Some(Duration::from_secs(1))
        );
        assert_eq!(b.settings.retries, None);
        assert_eq!(
            found,
            ["11: defaults \"nope\" not found: HAProxy's defaults apply"]
        );
    }

    #[test]
    fn a_proxy_s_check_rules_replace_those_of_its_defaults() {
        let (m, _) = model(
            "defaults\n  tcp-check send a\n  tcp-check expect string b\nbackend x\n  tcp-check send c\n\
             server s 192.0.2.1:80\nbackend y\n  server s 192.0.2.1:80\n",
        );
        assert_eq!(m.proxies[0].settings.tcp_check.len(), 1);
        assert_eq!(m.proxies[1].settings.tcp_check.len(), 2);
    }

    #[test]
    fn other_sections_and_conditionals_are_reported() {
        let (m, found) = model(
            "peers mypeers\n  peer lb1 192.0.2.1:1024\n.if defined(X)\nlisten a\n  bind :80\n  server s 192.0.2.1:80\n.endif\n",
        );
        assert_eq!(m.proxies.len(), 1);
        assert_eq!(
            found,
            [
                "1: section `peers`: nothing of it is converted",
                "3: conditional block (.if/.else): conditions are not evaluated, every line is converted",
                "7: conditional block (.if/.else): conditions are not evaluated, every line is converted",
            ]
        );
    }
}
