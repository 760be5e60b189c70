//! A small HTTP/1.0 client for the stats listener and the config that starts one, shared
//! by the stats tests.

use std::io::Write;
use std::net::SocketAddr;

use base64::Engine as _;

use crate::common::{connect, free_port, read_to_eof};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "s3cret pass";
pub const CHECK: &str = r#", "health_check": { "type": "http", "interval": "100ms", "timeout": "500ms", "jitter": 0, "rise": 1, "fall": 1 }"#;

/// A config with frontend `fe`, backend `be` of `servers` (with `backend_extra`), and a
/// stats listener on `stats` (with auth when `auth`).
pub fn stats_config(
    port: u16,
    stats: SocketAddr,
    auth: bool,
    backend_extra: &str,
    servers: &str,
) -> String {
    let auth = if auth {
        format!(r#", "auth": {{ "user": "{USER}", "password": "{PASSWORD}" }}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{
  "workers": 2,
  "stats": {{ "bind": "{stats}", "refresh": "5s"{auth} }},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be" }} ],
  "backends": [ {{ "name": "be"{backend_extra}, "servers": {servers} }} ]
}}"#
    )
}

pub fn stats_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// One HTTP exchange with the stats listener.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// HTTP/1.0, so the answer is never chunked and ends at EOF.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> Answer {
    let mut s = connect(addr);
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).expect("send request");
    let raw = read_to_eof(&mut s, 8 << 20).expect("read answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, Some((USER, PASSWORD)), None)
}

pub fn json(addr: SocketAddr, auth: Option<(&str, &str)>) -> serde_json::Value {
    let a = request(addr, "GET", "/stats.json", auth, None);
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str(&a.body).expect("stats.json parses")
}

pub fn admin(
    addr: SocketAddr,
    auth: Option<(&str, &str)>,
    server: &str,
    state: &str,
) -> serde_json::Value {
    let body = format!(r#"{{"backend":"be","server":"{server}","state":"{state}"}}"#);
    let a = request(addr, "POST", "/admin/server", auth, Some(&body));
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str(&a.body).expect("admin answer parses")
}

pub fn server_json<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stats["backends"][0]["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no server {name} in {stats}"))
}
