//! haproxy.cfg snippets converted whole: the JSON each gives and the exact findings.

use serde_json::json;

use super::*;
use crate::import::haproxy;
use crate::import::proxy::interpret;

fn run(cfg: &str) -> (serde_json::Value, Vec<String>) {
    let mut r = Report::default();
    let model = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
    let out = convert(&model, &mut r);
    let found = r
        .sorted()
        .iter()
        .map(|f| {
            let sev = if f.severity == Severity::Note {
                "note: "
            } else {
                ""
            };
            format!("{}: {sev}{}", f.line, f.what)
        })
        .collect();
    (serde_json::to_value(out).unwrap(), found)
}

#[test]
fn the_heartbeat_tutorials_listen() {
    let (out, found) = run("global
  maxconn 4096
defaults
  mode http
  retries 3
  contimeout 5000
  clitimeout 50000
  srvtimeout 50000
listen webfarm 192.0.2.10:80
  mode http
  stats enable
  stats auth someuser:somepassword
  balance roundrobin
  cookie JSESSIONID prefix
  option httpclose
  option forwardfor
  option httpchk HEAD /check.txt HTTP/1.0
  server webA 192.0.2.21:80 cookie A check
  server webB 192.0.2.22:80 cookie B check
");
    assert_eq!(
        out,
        json!({
            "maxconn": 4096,
            "frontends": [ { "name": "webfarm", "bind": ["192.0.2.10:80"], "backend": "webfarm" } ],
            "backends": [ {
                "name": "webfarm", "balance": "roundrobin", "retries": 3,
                "timeouts": { "connect": "5s", "client": "50s", "server": "50s" },
                "health_check": { "type": "http", "request": "HEAD /check.txt HTTP/1.0", "timeout": "2s" },
                "servers": [ { "name": "webA", "addr": "192.0.2.21:80" }, { "name": "webB", "addr": "192.0.2.22:80" } ]
            } ],
            "stats": { "bind": "192.0.2.10:8404", "auth": { "user": "someuser", "password": "somepassword" } }
        })
    );
    assert_eq!(
        found,
        [
            "10: mode http (webfarm): forwarded as TCP, HTTP features are lost",
            "11: stats in webfarm: ringlb's stats page has its own listener, put on 192.0.2.10:8404",
            "14: cookie persistence: HTTP only, left out",
            "15: option httpclose: HTTP only, left out",
            "16: option forwardfor: HTTP only, left out",
        ]
    );
}

#[test]
fn frontends_backends_and_what_is_left_out() {
    let (out, found) = run("defaults
  mode tcp
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend web
  bind *:80
  bind :::80 v4v6
  maxconn 2000
  default_backend farm
frontend other
  bind 192.0.2.10:8080
  default_backend gone
frontend dup
  bind 0.0.0.0:80
  default_backend farm
listen empty
  bind *:9000
backend farm
  balance leastconn
  timeout tunnel 1h
  default-server inter 3s fall 3 rise 2 send-proxy-v2
  server a 192.0.2.21 check weight 300
  server b db.lan:80 check
  server c xx.xx.xx.xx:443 check
  server d 192.0.2.24:8080 check disabled
  server a 192.0.2.25:80 check
backend gone
  server z xx.xx.xx.xx:80
");
    assert_eq!(
        out,
        json!({
            "frontends": [ {
                "name": "web", "bind": ["0.0.0.0:80", "[::]:80"], "backend": "farm", "maxconn": 2000
            }, {
                "name": "other", "bind": ["192.0.2.10:8080"], "backend": "gone"
            } ],
            "backends": [ {
                "name": "farm", "balance": "leastconn",
                "timeouts": { "connect": "5s", "client": "1h", "server": "1h" },
                "health_check": { "type": "tcp", "interval": "3s", "rise": 2, "fall": 3, "timeout": "3s" },
                "servers": [
                    { "name": "a", "addr": "192.0.2.21:80", "weight": 256, "send_proxy": "v2" },
                    { "name": "d", "addr": "192.0.2.24:8080", "weight": 0, "send_proxy": "v2" }
                ]
            }, {
                "name": "gone",
                "timeouts": { "connect": "5s", "client": "1m", "server": "1m" },
                "servers": []
            } ]
        })
    );
    assert_eq!(
        found,
        [
            "8: 0.0.0.0:80 is already bound by web: left out",
            "15: 0.0.0.0:80 is already bound by web: left out",
            "14: dup has no usable bind: left out",
            "17: listen empty has no server: left out",
            "23: weight 300: ringlb's most is 256, 256 instead",
            "24: server b: \"db.lan\" is a host name; ringlb takes IP addresses only: left out",
            "25: server c: \"xx.xx.xx.xx\" is a placeholder, not an address: left out",
            "26: note: server d is disabled: weight 0 (POST /admin/server gives it a weight)",
            "27: a second server named \"a\": left out",
            "28: gone has no usable server left: kept without servers, its clients are closed until you add them",
            "29: server z: \"xx.xx.xx.xx\" is a placeholder, not an address: left out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .tap_sorted()
    );
}

/// Findings come sorted by line; the expectation above reads better in the order of
/// the reasons, so both are compared sorted.
trait TapSorted {
    fn tap_sorted(self) -> Self;
}

impl TapSorted for Vec<String> {
    fn tap_sorted(mut self) -> Self {
        self.sort_by_key(|s| s.split(':').next().and_then(|n| n.parse::<usize>().ok()));
        self
    }
}

#[test]
fn stats_pages() {
    // A stats frontend and backend pair; without auth off loopback.
    let (out, found) = run("frontend stats-front
  bind *:80
  mode http
  default_backend stats-back
backend stats-back
  mode http
  stats uri /haproxy/stats
  stats refresh 500ms
listen stats2
  bind *:1936
  stats enable
  stats auth a:b
listen app
  bind 127.0.0.1:81
  server s 127.0.0.1:82
");
    assert_eq!(
        out["stats"],
        json!({ "bind": "127.0.0.1:80", "refresh": "1s" })
    );
    assert_eq!(out["frontends"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        found,
        [
            "7: stats without auth on 0.0.0.0:80: ringlb serves an open page on loopback only, 127.0.0.1:80",
            "7: note: stats uri /haproxy/stats: ringlb serves its page at / (JSON at /stats.json)",
            "8: note: stats refresh under 1s: 1s",
            "11: another stats page (stats2): ringlb has one, left out",
            "13: note: app: no timeout connect, client, server (HAProxy waits forever): ringlb's defaults apply",
        ]
    );
}

#[test]
fn sni_routing_and_proxy_protocol() {
    let (out, found) = run("defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend tls
  bind 192.0.2.10:443 accept-proxy
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 192.0.2.1 }
  acl app1 req_ssl_sni -i app1.example.org
  use_backend app1 if app1
  use_backend wild if { req.ssl_sni -m end .example.org }
  default_backend web
backend app1
  server a 192.0.2.21:443
backend wild
  server w 192.0.2.22:443 send-proxy
backend web
  server s 192.0.2.23:443
");
    assert_eq!(
        out["frontends"],
        json!([ {
            "name": "tls", "bind": ["192.0.2.10:443"], "backend": "web", "accept_proxy": true,
            "proxy_trusted": ["10.0.0.0/8", "192.0.2.1"],
            "routes": [ { "sni": "app1.example.org", "backend": "app1" }, { "sni": "*.example.org", "backend": "wild" } ],
            "inspect_timeout": "5s"
        } ])
    );
    assert_eq!(out["backends"][1]["servers"][0]["send_proxy"], json!("v1"));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn client_timeouts_come_from_the_frontends() {
    let (out, found) = run("frontend a
  bind 127.0.0.1:1
  timeout client 10s
  default_backend b
frontend c
  bind 127.0.0.1:2
  timeout client 20s
  default_backend b
backend b
  timeout connect 1s
  timeout server 30s
  server s 127.0.0.1:3
");
    assert_eq!(
        out["backends"][0]["timeouts"],
        json!({ "connect": "1s", "client": "10s", "server": "30s" })
    );
    assert_eq!(
        found,
        ["9: frontends using b have different client timeouts: the first one's is used"]
    );
}

#[test]
fn default_backend_from_defaults() {
    let (out, found) = run("defaults
  timeout connect 1s
  timeout client 1s
  timeout server 1s
  default_backend b
  stats enable
frontend f
  bind 127.0.0.1:1
backend b
  server s 127.0.0.1:2
");
    assert_eq!(out["frontends"][0]["backend"], "b");
    assert_eq!(found, ["6: stats in defaults: left out"]);
}

#[test]
fn a_defaults_line_lost_in_one_proxy_is_one_warning() {
    let (_, found) = run("defaults
  option forwardfor
  timeout connect 1s
  timeout client 1s
  timeout server 1s
listen web
  mode http
  bind 127.0.0.1:1
  server s 127.0.0.1:2
listen db
  mode tcp
  bind 127.0.0.1:3
  server s 127.0.0.1:4
");
    assert_eq!(
        found,
        [
            "2: option forwardfor: HTTP only, left out",
            "7: mode http (web): forwarded as TCP, HTTP features are lost",
        ]
    );
}
