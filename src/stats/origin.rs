//! Which host a request was meant for, and where a browser sent it from. A page on an
//! attacker's name that resolves to the stats address (DNS rebinding) reaches the listener
//! with its own name in `Host`, and with `Origin` equal to it; only the `Host` check stops
//! it. An IP literal cannot be rebound, and a listed name is the operator's.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HOST, ORIGIN};
use hyper::Request;

use crate::config::{Host, HostPort};

/// The host a request names: the authority of an absolute request target, else `Host`;
/// `None` when there is none or it is not a host.
pub fn requested_host<B>(request: &Request<B>) -> Option<HostPort> {
    let text = match request.uri().authority() {
        Some(authority) => authority.as_str(),
        None => request.headers().get(HOST)?.to_str().ok()?,
    };
    text.parse().ok()
}

/// Whether `host` names the listener on `bind`: its IP literal (any literal on a wildcard
/// bind), `localhost` on a loopback bind, or an entry of `stats.hosts`. Only a listed entry
/// with a port restricts the port: the others are reached through port forwards too.
pub fn names_listener(host: &HostPort, bind: SocketAddr, listed: &[HostPort]) -> bool {
    let automatic = match &host.host {
        Host::Ip(ip) => bind.ip().is_unspecified() || same_ip(*ip, bind.ip()),
        Host::Name(name) => name == "localhost" && bind.ip().is_loopback(),
    };
    automatic
        || listed.iter().any(|entry| {
            entry.host == host.host && entry.port.is_none_or(|p| p == host.port.unwrap_or(80))
        })
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Browsers send `Origin` with a cross-site POST: it must name the same host as `Host`
/// (already known to be this listener), so a page elsewhere cannot drive admin actions
/// with credentials the browser remembers.
pub fn cross_origin<B>(request: &Request<B>, host: &HostPort) -> Option<String> {
    let origin = request.headers().get(ORIGIN)?;
    let text = String::from_utf8_lossy(origin.as_bytes());
    let same = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .and_then(|rest| rest.parse::<HostPort>().ok())
        .is_some_and(|o| o == *host);
    (!same).then(|| format!("cross-origin request from {text} refused"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(s: &str) -> HostPort {
        s.parse().unwrap()
    }

    fn names(host: &str, bind: &str, listed: &[&str]) -> bool {
        let listed: Vec<HostPort> = listed.iter().map(|s| hp(s)).collect();
        names_listener(&hp(host), bind.parse().unwrap(), &listed)
    }

    #[test]
    fn ip_literals_and_localhost() {
        assert!(names("127.0.0.1:8404", "127.0.0.1:8404", &[]));
        assert!(
            names("127.0.0.1:9000", "127.0.0.1:8404", &[]),
            "a port forward"
        );
        assert!(names("127.0.0.1", "127.0.0.1:8404", &[]));
        assert!(!names("127.0.0.2:8404", "127.0.0.1:8404", &[]));
        assert!(names("[::1]:8404", "[::1]:8404", &[]));
        assert!(names("192.0.2.7:8404", "0.0.0.0:8404", &[]));
        assert!(names("[2001:db8::7]:8404", "[::]:8404", &[]));
        assert!(names("localhost:8404", "127.0.0.1:8404", &[]));
        assert!(names("LocalHost.:8404", "[::1]:8404", &[]));
        assert!(!names("localhost:8404", "192.0.2.1:8404", &[]));
        assert!(!names("localhost:8404", "0.0.0.0:8404", &[]));
    }

    #[test]
    fn names_must_be_listed() {
        assert!(!names("evil.example:8404", "127.0.0.1:8404", &[]));
        assert!(!names("evil.example:8404", "0.0.0.0:8404", &[]));
        assert!(names("lb1.example:8404", "0.0.0.0:8404", &["lb1.example"]));
        assert!(names("LB1.example", "0.0.0.0:8404", &["lb1.example"]));
        assert!(names(
            "lb1.example:8404",
            "0.0.0.0:8404",
            &["lb1.example:8404"]
        ));
        assert!(!names(
            "lb1.example:9999",
            "0.0.0.0:8404",
            &["lb1.example:8404"]
        ));
        assert!(!names("lb1.example", "0.0.0.0:8404", &["lb1.example:8404"]));
        assert!(names("lb1.example", "0.0.0.0:80", &["lb1.example:80"]));
        assert!(!names("lb2.example:8404", "0.0.0.0:8404", &["lb1.example"]));
    }

    fn request(host: Option<&str>, origin: Option<&str>, uri: &str) -> Request<()> {
        let mut b = Request::post(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_requested_host_and_its_origin() {
        let r = request(Some("127.0.0.1:8404"), None, "/admin/server");
        assert_eq!(requested_host(&r), Some(hp("127.0.0.1:8404")));
        let r = request(
            Some("a.example"),
            None,
            "http://127.0.0.1:8404/admin/server",
        );
        assert_eq!(requested_host(&r), Some(hp("127.0.0.1:8404")));
        let r = request(None, None, "/");
        assert_eq!(requested_host(&r), None);
        let r = request(Some("a b"), None, "/");
        assert_eq!(requested_host(&r), None);

        let host = hp("127.0.0.1:8404");
        let r = request(Some("127.0.0.1:8404"), Some("http://127.0.0.1:8404"), "/");
        assert_eq!(cross_origin(&r, &host), None);
        let r = request(Some("127.0.0.1:8404"), None, "/");
        assert_eq!(cross_origin(&r, &host), None, "curl sends no Origin");
        for bad in ["http://evil.example", "null", "http://127.0.0.1:8405"] {
            let r = request(Some("127.0.0.1:8404"), Some(bad), "/");
            assert!(cross_origin(&r, &host).is_some(), "{bad}");
        }
    }
}
