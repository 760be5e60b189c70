//! The `stats` section: where the stats page listens, its basic-auth credentials (a
//! password inline or in a file), the host names it answers to besides its address, and
//! the page's auto-refresh. A listener off loopback without credentials is refused, so the
//! page is never open to the network.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::host::HostPort;
use super::{Addr, HumanDuration, Problems};

/// The validated `stats` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub bind: SocketAddr,
    /// `None` only on a loopback bind.
    pub auth: Option<StatsAuth>,
    /// Names a `Host` header may give besides the bind's own IP literal (and `localhost` on
    /// a loopback bind): anything else is refused, so a DNS-rebound name cannot reach it.
    pub hosts: Vec<HostPort>,
    /// How often the HTML page reloads itself; zero turns that off.
    pub refresh: Duration,
}

/// Basic-auth credentials of the stats listener.
#[derive(Clone, PartialEq, Eq)]
pub struct StatsAuth {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for StatsAuth {
    // Config values end up in debug output; the password must not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsAuth")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStats {
    bind: Addr,
    auth: Option<RawAuth>,
    hosts: Option<Vec<String>>,
    refresh: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    user: String,
    password: Option<String>,
    password_file: Option<String>,
}

pub(super) fn validate(raw: &RawStats, p: &mut Problems<'_>) -> Stats {
    let bind = raw.bind.0;
    if bind.port() == 0 {
        p.add("stats.bind".into(), "port 0 is not allowed".into());
    }
    let auth = raw.auth.as_ref().and_then(|a| validate_auth(a, p));
    if raw.auth.is_none() && !bind.ip().is_loopback() {
        p.add(
            "stats.bind".into(),
            format!("{bind} is not a loopback address: stats.auth (user and password) is required"),
        );
    }
    let hosts = validate_hosts(raw.hosts.as_deref().unwrap_or_default(), p);
    let refresh = raw.refresh.map_or(DEFAULT_REFRESH, |d| d.0);
    if !refresh.is_zero() && refresh < Duration::from_secs(1) {
        p.add(
            "stats.refresh".into(),
            "must be at least 1s (or \"0s\" for no auto-refresh)".into(),
        );
    }
    Stats {
        bind,
        auth,
        hosts,
        refresh,
    }
}

fn validate_hosts(raw: &[String], p: &mut Problems<'_>) -> Vec<HostPort> {
    let mut hosts = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        match entry.parse::<HostPort>() {
            Ok(h) => hosts.push(h),
            Err(e) => p.add(format!("stats.hosts[{i}]"), format!("{entry:?}: {e}")),
        }
    }
    hosts
}

fn validate_auth(raw: &RawAuth, p: &mut Problems<'_>) -> Option<StatsAuth> {
    let mut ok = true;
    if raw.user.is_empty() || raw.user.contains(':') || raw.user.chars().any(char::is_control) {
        p.add(
            "stats.auth.user".into(),
            "must be non-empty, without ':' or control characters".into(),
        );
        ok = false;
    }
    let password = match (&raw.password, &raw.password_file) {
        (Some(pw), None) => pw.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            // A file written by `echo` ends in a newline that is not part of the password.
            Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
            Err(e) => {
                p.add(
                    "stats.auth.password_file".into(),
                    format!("cannot read {path:?}: {e}"),
                );
                return None;
            }
        },
        (Some(_), Some(_)) => {
            p.add(
                "stats.auth.password_file".into(),
                "give either password or password_file, not both".into(),
            );
            return None;
        }
        (None, None) => {
            p.add(
                "stats.auth".into(),
                "password or password_file is required".into(),
            );
            return None;
        }
    };
    if password.is_empty() {
        let field = if raw.password.is_some() {
            "password"
        } else {
            "password_file"
        };
        p.add(
            format!("stats.auth.{field}"),
            "the password is empty".into(),
        );
        ok = false;
    }
    ok.then(|| StatsAuth {
        user: raw.user.clone(),
        password,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn with_stats(stats: &str) -> String {
        format!(
            r#"{{ "stats": {stats},
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:1"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "127.0.0.1:2" }} ] }} ] }}"#
        )
    }

    fn error(stats: &str) -> String {
        parse("x.json", &with_stats(stats)).unwrap_err().to_string()
    }

    #[test]
    fn loopback_without_auth_and_defaults() {
        let c = parse("x.json", &with_stats(r#"{ "bind": "127.0.0.1:8404" }"#)).unwrap();
        let s = c.stats.unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8404");
        assert!(s.auth.is_none());
        assert_eq!(s.refresh, super::DEFAULT_REFRESH);
        let c = parse("x.json", &with_stats(r#"{ "bind": "[::1]:8404" }"#)).unwrap();
        assert!(c.stats.is_some());
    }

    #[test]
    fn public_bind_needs_auth() {
        assert_eq!(
            error(r#"{ "bind": "0.0.0.0:8404" }"#),
            "x.json: stats.bind: 0.0.0.0:8404 is not a loopback address: stats.auth (user and \
             password) is required (line 1, column 22)"
        );
        let c = parse(
            "x.json",
            &with_stats(
                r#"{ "bind": "0.0.0.0:8404", "refresh": "0s",
                     "auth": { "user": "admin", "password": "pw" } }"#,
            ),
        )
        .unwrap();
        let s = c.stats.unwrap();
        assert_eq!(s.auth.as_ref().unwrap().password, "pw");
        assert!(s.refresh.is_zero());
        assert!(!format!("{s:?}").contains("pw\""));
    }

    #[test]
    fn password_file_is_read_without_its_newline() {
        let path = std::env::temp_dir().join(format!("ringlb-stats-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let text = with_stats(&format!(
            r#"{{ "bind": "127.0.0.1:8404", "auth": {{ "user": "ops", "password_file": {:?} }} }}"#,
            path.display().to_string()
        ));
        let c = parse("x.json", &text).unwrap();
        assert_eq!(c.stats.unwrap().auth.unwrap().password, "s3cret");
        std::fs::remove_file(&path).unwrap();
        assert!(parse("x.json", &text)
            .unwrap_err()
            .to_string()
            .contains("stats.auth.password_file: cannot read"));
    }

    #[test]
    fn bad_auth_and_refresh() {
        let e = error(r#"{ "bind": "127.0.0.1:8404", "auth": { "user": "a:b", "password": "" } }"#);
        assert!(e.contains("stats.auth.user: must be non-empty"), "{e}");
        assert!(
            e.contains("stats.auth.password: the password is empty"),
            "{e}"
        );
        let e = error(r#"{ "bind": "127.0.0.1:8404", "auth": { "user": "a" } }"#);
        assert!(
            e.contains("stats.auth: password or password_file is required"),
            "{e}"
        );
        let e = error(
            r#"{ "bind": "127.0.0.1:8404", "auth": { "user": "a", "password": "x", "password_file": "/y" } }"#,
        );
        assert!(e.contains("not both"), "{e}");
        let e = error(r#"{ "bind": "127.0.0.1:8404", "refresh": "500ms" }"#);
        assert!(e.contains("stats.refresh: must be at least 1s"), "{e}");
        let e = error(r#"{ "bind": "127.0.0.1:8404", "color": "red" }"#);
        assert!(e.contains("unknown field `color`"), "{e}");
    }

    #[test]
    fn hosts_are_names_with_optional_ports() {
        use crate::config::host::{Host, HostPort};
        let c = parse(
            "x.json",
            &with_stats(
                r#"{ "bind": "127.0.0.1:8404", "hosts": ["LB1.example.org", "lb1:8404", "[::1]"] }"#,
            ),
        )
        .unwrap();
        let hosts = c.stats.unwrap().hosts;
        assert_eq!(
            hosts[0],
            HostPort {
                host: Host::Name("lb1.example.org".into()),
                port: None
            }
        );
        assert_eq!(hosts[1].port, Some(8404));
        assert_eq!(
            hosts[2].host,
            Host::Ip(std::net::Ipv6Addr::LOCALHOST.into())
        );
        let c = parse("x.json", &with_stats(r#"{ "bind": "127.0.0.1:8404" }"#)).unwrap();
        assert!(c.stats.unwrap().hosts.is_empty());

        let e = error(
            r#"{ "bind": "127.0.0.1:8404",
                 "hosts": ["ok.example", "evil example", "lb:0", "::1", ""] }"#,
        );
        assert!(
            e.contains(
                "stats.hosts[1]: \"evil example\": not a host name (letters, digits and '-' in \
                 dot-separated labels) (line 2"
            ),
            "{e}"
        );
        assert!(
            e.contains("stats.hosts[2]: \"lb:0\": port \"0\" is not a number from 1 to 65535"),
            "{e}"
        );
        assert!(
            e.contains("stats.hosts[3]: \"::1\": an IPv6 address is written in brackets"),
            "{e}"
        );
        assert!(e.contains("stats.hosts[4]: \"\": no host name"), "{e}");
        assert!(!e.contains("stats.hosts[0]"), "{e}");
        let e = error(r#"{ "bind": "127.0.0.1:8404", "hosts": "lb1" }"#);
        assert!(e.contains("stats.hosts"), "{e}");
    }
}
