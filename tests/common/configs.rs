//! Config documents for the common case: one frontend `fe`, one backend `be`.

use std::net::SocketAddr;

/// A config with one frontend `fe` on `127.0.0.1:port` (connection log on) and one backend
/// `be`. `frontend_extra` and `backend_extra` are further JSON members, each starting with a
/// comma (`, "forward": "copy"`), or empty; `servers` is a JSON array (see `servers`).
pub fn config(
    workers: u32,
    port: u16,
    frontend_extra: &str,
    backend_extra: &str,
    servers: &str,
) -> String {
    format!(
        r#"{{
  "workers": {workers},
  "frontends": [
    {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true{frontend_extra} }}
  ],
  "backends": [
    {{ "name": "be"{backend_extra}, "servers": {servers} }}
  ]
}}"#
    )
}

/// A JSON array of servers named s1, s2 ... with weight 1.
pub fn servers(addrs: &[SocketAddr]) -> String {
    let weighted: Vec<_> = addrs.iter().map(|&a| (a, 1)).collect();
    weighted_servers(&weighted)
}

/// A JSON array of servers named s1, s2 ... with the given weights.
pub fn weighted_servers(servers: &[(SocketAddr, u32)]) -> String {
    let items: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, (addr, weight))| {
            format!(
                r#"{{ "name": "s{}", "addr": "{addr}", "weight": {weight} }}"#,
                i + 1
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// The address of the single frontend made by `config`.
pub fn frontend(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
