//! The PROXY protocol through the real binary with real peers:
//!
//! - `send_proxy` v1/v2: nginx (`listen ... proxy_protocol`) logs the test client's own
//!   address and port and ringlb's frontend as the destination, answers intact, whether the
//!   client speaks at once or after 200 ms; a server that speaks first gets the header before
//!   any client byte; a server's `send_proxy` overrides its backend's;
//! - health checks to a `proxy_protocol` nginx speak PROXY (LOCAL / UNKNOWN) first: the
//!   server is UP and nginx logs no broken header, while the same check without
//!   `send_proxy` marks it DOWN;
//! - ringlb behind HAProxy (`send-proxy-v2` and `send-proxy`) with `accept_proxy`: the log's
//!   `client=` is the original client, `via=` HAProxy's outgoing address, and the address
//!   travels on to nginx; `source` balancing hashes the carried address;
//! - `accept_proxy` with raw sockets: missing, malformed and stalled headers are closed
//!   (`bad_proxy` with a reason, `proxy_timeout` after `inspect_timeout`) and counted in
//!   `proxy_errors`; headers split over several writes, v2 with TLVs, LOCAL and UNKNOWN are
//!   accepted and stripped; `proxy_trusted` leaves other sources' bytes untouched.

pub mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use common::peers::*;
use common::*;
use serde_json::{json, Value};

/// Where the test clients connect from: not 127.0.0.1, so that an address in a header or
/// a log can only be the client's, never ringlb's own outgoing one.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const INSPECT: &str = "300ms";

fn client_ip() -> IpAddr {
    IpAddr::V4(CLIENT_IP)
}

/// A config document with two workers and the given frontends and backends.
fn lb_config(frontends: Value, backends: Value) -> String {
    json!({ "workers": 2, "frontends": frontends, "backends": backends }).to_string()
}

fn frontend_json(name: &str, port: u16, backend: &str, extra: Value) -> Value {
    let mut fe = json!({
        "name": name,
        "bind": [format!("127.0.0.1:{port}")],
        "backend": backend,
        "log": true,
    });
    merge(&mut fe, extra);
    fe
}

fn backend_json(name: &str, servers: &[SocketAddr], extra: Value) -> Value {
    let servers: Vec<Value> = servers
        .iter()
        .enumerate()
        .map(|(i, a)| json!({ "name": format!("s{}", i + 1), "addr": a.to_string() }))
        .collect();
    let mut be = json!({ "name": name, "servers": servers });
    merge(&mut be, extra);
    be
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(map), Value::Object(more)) = (into.as_object_mut(), extra) {
        map.extend(more);
    }
}

/// A `proxy_protocol` nginx answering `body`.
fn pp_nginx(body: &str, ports: usize) -> Nginx {
    Nginx::start(&NginxSpec {
        body,
        proxy_protocol: true,
        tls: None,
        ports,
    })
}

/// `GET /` over a fresh connection from `CLIENT_IP` to `addr`, the request written after
/// `delay`; returns the client's address and the answer.
fn http_get(addr: SocketAddr, delay: Duration) -> (SocketAddr, Result<HttpAnswer, String>) {
    let (local, connected) = connect_from(client_ip(), addr);
    let answer = connected.map_err(|e| e.to_string()).and_then(|mut s| {
        thread::sleep(delay);
        s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let raw = read_to_eof(&mut s, 1 << 20).map_err(|e| e.to_string())?;
        parse_http(&raw)
    });
    (local, answer)
}

fn must_get(lb: &Ringlb, addr: SocketAddr, delay: Duration) -> (SocketAddr, HttpAnswer) {
    let (local, answer) = http_get(addr, delay);
    let answer = answer.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()));
    (local, answer)
}

/// The access line nginx wrote for a connection whose PROXY source is `client`.
fn access_for(nginx: &Nginx, client: SocketAddr) -> Access {
    let want = client.to_string();
    nginx
        .wait_access(Duration::from_secs(5), |a| {
            a.proxy_src.as_deref() == Some(want.as_str())
        })
        .unwrap_or_else(|| {
            panic!(
                "nginx logged no request from {want}; access log: {:#?}\nerror log:\n{}",
                nginx.access(),
                nginx.error_log()
            )
        })
}

#[test]
fn send_proxy_gives_nginx_the_client_address_in_v1_and_v2() {
    let nginx = pp_nginx("behind-ringlb", 1);
    for version in ["v1", "v2"] {
        let port = free_port();
        let lb = Ringlb::start(&config(
            2,
            port,
            "",
            &format!(r#", "send_proxy": "{version}""#),
            &servers(&[nginx.addr()]),
        ));
        for delay in [Duration::ZERO, Duration::from_millis(200)] {
            let what = format!("{version}, request after {delay:?}");
            let (local, answer) = must_get(&lb, frontend(port), delay);
            assert_eq!(answer.status, 200, "{what}: {answer:?}");
            assert_eq!(answer.body, "behind-ringlb\n", "{what}");
            let access = access_for(&nginx, local);
            assert_eq!(
                access.proxy_dst,
                Some(frontend(port).to_string()),
                "{what}: the destination is the address the client connected to"
            );
            assert!(
                access.remote.starts_with("127.0.0.1:"),
                "{what}: the TCP peer is ringlb: {access:?}"
            );
            assert_eq!(access.request, "GET / HTTP/1.0", "{what}");
            let line = lb.conn_line(local);
            assert_eq!(line.field("server"), "be/s1", "{what}");
            assert!(line.end().ends_with("_close"), "{what}: {}", line.line);
        }
    }
    let broken = nginx.error_lines("broken header");
    assert!(broken.is_empty(), "nginx saw broken headers: {broken:#?}");
}

/// A server that speaks first (a greeting before reading anything) must find the header at
/// the start of the stream although the client sends nothing until it has the greeting.
#[test]
fn header_comes_first_for_a_server_that_speaks_first() {
    for (version, want) in [("v1", 1u8), ("v2", 2u8)] {
        let server = ProxyServer::start("220 ready\r\n");
        let port = free_port();
        let lb = Ringlb::start(&config(
            2,
            port,
            "",
            &format!(r#", "send_proxy": "{version}""#),
            &servers(&[server.addr()]),
        ));
        let (local, connected) = connect_from(client_ip(), frontend(port));
        let mut s = connected.unwrap_or_else(|e| panic!("connect: {e}"));
        let mut greeting = [0u8; 11];
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.read_exact(&mut greeting).unwrap_or_else(|e| {
            panic!(
                "{version}: no greeting while the client is silent: {e}; log:\n{}",
                lb.log()
            )
        });
        assert_eq!(&greeting, b"220 ready\r\n");
        s.write_all(b"QUIT\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut s, 1024).unwrap(), b"QUIT\r\n");

        let got = server
            .wait_received(1, Duration::from_secs(5))
            .expect("server finished the connection");
        let header = got
            .header
            .unwrap_or_else(|e| panic!("{version}: the server got no PROXY header: {e}"));
        assert_eq!(header.version, want);
        assert!(header.proxied, "{version}: {header:?}");
        assert_eq!(header.src, Some(local), "{version}: source");
        assert_eq!(header.dst, Some(frontend(port)), "{version}: destination");
        assert_eq!(got.rest, b"QUIT\r\n", "{version}: bytes after the header");
    }
}

#[test]
fn server_send_proxy_overrides_the_backend() {
    let (s1, s2) = (ProxyServer::start("s1\n"), ProxyServer::start("s2\n"));
    let port = free_port();
    let lb = Ringlb::start(&lb_config(
        json!([frontend_json("fe", port, "be", json!({}))]),
        json!([{
            "name": "be",
            "send_proxy": "v1",
            "servers": [
                { "name": "s1", "addr": s1.addr().to_string(), "send_proxy": "v2" },
                { "name": "s2", "addr": s2.addr().to_string() },
            ],
        }]),
    ));
    let mut seen = BTreeMap::new();
    for _ in 0..2 {
        let (local, connected) = connect_from(client_ip(), frontend(port));
        let mut s = connected.unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let answer = read_to_eof(&mut s, 1024).unwrap();
        let name = String::from_utf8_lossy(&answer).trim().to_owned();
        assert_eq!(lb.conn_line(local).field("server"), format!("be/{name}"));
        seen.insert(name, local);
    }
    assert_eq!(seen.len(), 2, "round robin reached both: {seen:?}");
    for (server, want, name) in [(&s1, 2u8, "s1"), (&s2, 1u8, "s2")] {
        let got = server.wait_received(1, Duration::from_secs(5)).unwrap();
        let h = got.header.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.version, want, "{name} got {h:?}");
        assert_eq!(h.src, Some(seen[name]), "{name}");
    }
}

#[test]
fn health_checks_speak_proxy_to_a_proxy_protocol_server() {
    // One nginx on two ports for the v1 and v2 checks, another for the check without PROXY.
    let with = pp_nginx("checked", 2);
    let without = pp_nginx("checked", 1);
    let check = json!({
        "health_check": {
            "type": "http", "interval": "200ms", "timeout": "500ms",
            "jitter": 0, "rise": 1, "fall": 1,
        }
    });
    let with_proxy = |v: &str| {
        let mut extra = check.clone();
        extra["send_proxy"] = json!(v);
        extra
    };
    let ports = [free_port(), free_port(), free_port()];
    let lb = Ringlb::start(&lb_config(
        json!([
            frontend_json("fe1", ports[0], "pp_v1", json!({})),
            frontend_json("fe2", ports[1], "pp_v2", json!({})),
            frontend_json("fe3", ports[2], "plain", json!({})),
        ]),
        json!([
            backend_json("pp_v1", &[with.addr_n(0)], with_proxy("v1")),
            backend_json("pp_v2", &[with.addr_n(1)], with_proxy("v2")),
            backend_json("plain", &[without.addr()], check.clone()),
        ]),
    ));
    let up_v1 = lb.wait_health("pp_v1/s1", "UP", 1, Duration::from_secs(5));
    let up_v2 = lb.wait_health("pp_v2/s1", "UP", 1, Duration::from_secs(5));
    assert!(up_v1.contains("HTTP 200"), "{up_v1}");
    assert!(up_v2.contains("HTTP 200"), "{up_v2}");
    lb.wait_health("plain/s1", "DOWN", 1, Duration::from_secs(5));

    // At least three checks on each port: the state held over several of them.
    let checks = |port: u16| -> Vec<Access> {
        with.access()
            .into_iter()
            .filter(|a| a.server_port == port && a.request.starts_with("HEAD / "))
            .collect()
    };
    let enough = wait_for(Duration::from_secs(5), || {
        (checks(with.addr_n(0).port()).len() >= 3 && checks(with.addr_n(1).port()).len() >= 3)
            .then_some(())
    });
    assert!(
        enough.is_some(),
        "fewer than 3 checks per port: {:#?}\nerror log:\n{}",
        with.access(),
        with.error_log()
    );
    for n in 0..2 {
        for a in checks(with.addr_n(n).port()) {
            assert_eq!(a.status, 200, "{a:?}");
            assert_eq!(
                a.proxy_src, None,
                "a check carries no client address (LOCAL / UNKNOWN): {a:?}"
            );
        }
    }
    assert_eq!(
        lb.health_count("pp_v1/s1", "DOWN"),
        0,
        "{:?}",
        lb.health_lines()
    );
    assert_eq!(
        lb.health_count("pp_v2/s1", "DOWN"),
        0,
        "{:?}",
        lb.health_lines()
    );
    let broken = with.error_lines("broken header");
    assert!(broken.is_empty(), "checks sent broken headers: {broken:#?}");
    // The control: nginx does complain about a check without the header.
    assert!(
        !without.error_lines("broken header").is_empty(),
        "nginx logged no broken header for the plain check:\n{}",
        without.error_log()
    );

    // Traffic through a checked backend still carries the client's address.
    let (local, answer) = must_get(&lb, frontend(ports[0]), Duration::ZERO);
    assert_eq!((answer.status, answer.body.as_str()), (200, "checked\n"));
    access_for(&with, local);
}

#[test]
fn behind_haproxy_the_original_client_is_logged_and_forwarded() {
    let nginx = pp_nginx("onward", 1);
    let port = free_port();
    let lb = Ringlb::start(&lb_config(
        json!([frontend_json(
            "fe",
            port,
            "be",
            json!({ "accept_proxy": true, "inspect_timeout": "2s" })
        )]),
        json!([backend_json(
            "be",
            &[nginx.addr()],
            json!({ "send_proxy": "v1" })
        )]),
    ));
    for option in ["send-proxy-v2", "send-proxy"] {
        // HAProxy connects from a source of its own, so `via=` can be checked exactly.
        let via = SocketAddr::from(([127, 0, 0, 2], free_port()));
        let haproxy = Haproxy::start(frontend(port), &format!("{option} source {via}"));
        let (local, answer) = http_get(haproxy.addr(), Duration::ZERO);
        let answer = answer.unwrap_or_else(|e| {
            panic!(
                "{option}: client {local}: {e}; ringlb log:\n{}\nhaproxy log:\n{}",
                lb.log(),
                haproxy.log()
            )
        });
        assert_eq!((answer.status, answer.body.as_str()), (200, "onward\n"));
        let line = lb.conn_line(local);
        assert_eq!(
            line.field("via"),
            via.to_string(),
            "{option}: {}",
            line.line
        );
        assert_eq!(line.field("server"), "be/s1", "{option}");
        assert!(line.end().ends_with("_close"), "{option}: {}", line.line);
        let access = access_for(&nginx, local);
        assert!(access.remote.starts_with("127.0.0.1:"), "{access:?}");
    }
    assert!(nginx.error_lines("broken header").is_empty());
}

/// With `accept_proxy`, `source` balancing hashes the carried address: connections that all
/// come from 127.0.0.1 but carry 24 different sources reach both servers, and each source
/// sticks to its server.
#[test]
fn source_balancing_uses_the_carried_address() {
    let (s1, s2) = (NamedServer::greeting("s1"), NamedServer::greeting("s2"));
    let port = free_port();
    let lb = Ringlb::start(&lb_config(
        json!([frontend_json(
            "fe",
            port,
            "be",
            json!({ "accept_proxy": true })
        )]),
        json!([backend_json(
            "be",
            &[s1.addr(), s2.addr()],
            json!({ "balance": "source" })
        )]),
    ));
    let dst = frontend(port);
    let name_for = |src: SocketAddr| -> String {
        let mut s = connect(dst);
        let mut first = proxy_v2(src, dst, &[]);
        first.extend_from_slice(b"x");
        s.write_all(&first).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let answer = read_to_eof(&mut s, 1024)
            .unwrap_or_else(|e| panic!("carried {src}: {e}; log:\n{}", lb.log()));
        let text = String::from_utf8_lossy(&answer).into_owned();
        let name = text
            .strip_suffix("\nx")
            .unwrap_or_else(|| panic!("carried {src}: answer {text:?}"));
        name.to_owned()
    };
    let mut first_pick = BTreeMap::new();
    for i in 0..24u8 {
        let src = SocketAddr::from(([198, 51, 100, i + 1], 40000 + u16::from(i)));
        first_pick.insert(src, name_for(src));
    }
    let used: BTreeSet<_> = first_pick.values().cloned().collect();
    assert_eq!(
        used.len(),
        2,
        "24 carried sources all on one server: {first_pick:?}"
    );
    for (src, name) in &first_pick {
        let again = SocketAddr::new(src.ip(), src.port() + 1000);
        assert_eq!(&name_for(again), name, "{} moved", src.ip());
    }
}

/// A frontend with `accept_proxy`, `inspect_timeout` 300 ms, a greeting `NamedServer` and a
/// stats listener.
fn accept_proxy_lb(extra: Value) -> (Ringlb, u16, SocketAddr, NamedServer) {
    let server = NamedServer::greeting("srv");
    let port = free_port();
    let st = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut fe_extra = json!({ "accept_proxy": true, "inspect_timeout": INSPECT });
    merge(&mut fe_extra, extra);
    let cfg = lb_config(
        json!([frontend_json("fe", port, "be", fe_extra)]),
        json!([backend_json("be", &[server.addr()], json!({}))]),
    );
    let lb = Ringlb::start(&with_stats(&cfg, st));
    (lb, port, st, server)
}

/// Sends `bytes` (in one write) from a known port and expects ringlb to close the
/// connection; returns the client address and how long the close took after the write.
fn rejected(lb: &Ringlb, port: u16, bytes: &[u8]) -> (SocketAddr, Duration) {
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap_or_else(|e| panic!("connect: {e}"));
    let sent = Instant::now();
    s.write_all(bytes).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!(
            "{:?}: expected a close, read gave {other:?}; log:\n{}",
            String::from_utf8_lossy(bytes),
            lb.log()
        ),
    }
    (local, sent.elapsed())
}

#[test]
fn accept_proxy_closes_missing_malformed_and_late_headers() {
    let (lb, port, st, _server) = accept_proxy_lb(json!({}));
    let dst = frontend(port);
    let mut bad_v2 = proxy_v2(SocketAddr::from(([192, 0, 2, 1], 1)), dst, &[]);
    bad_v2[12] = 0x31; // version 3
    let bad = [
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        b"PROXY TCP4 999.0.2.1 127.0.0.1 4242 80\r\nGET /".to_vec(),
        b"PROXY TCP4 192.0.2.1 127.0.0.1 4242\r\n".to_vec(),
        bad_v2,
    ];
    for bytes in &bad {
        let (local, _) = rejected(&lb, port, bytes);
        let line = lb.conn_line(local);
        assert_eq!(
            line.end(),
            "bad_proxy",
            "{:?}: {}",
            String::from_utf8_lossy(bytes),
            line.line
        );
        let reason = quoted_field(&line.line, "reason")
            .unwrap_or_else(|| panic!("no reason= in {}", line.line));
        assert!(!reason.is_empty(), "{}", line.line);
        assert!(
            line.field("server").ends_with("/-"),
            "no server for a rejected client: {}",
            line.line
        );
    }

    // Incomplete headers, then silence: closed at inspect_timeout (300 ms).
    let v2 = proxy_v2(SocketAddr::from(([192, 0, 2, 1], 1)), dst, &[]);
    let late = [b"PROXY TCP4 198.51.100.7 ".to_vec(), v2[..14].to_vec()];
    for bytes in &late {
        let (local, took) = rejected(&lb, port, bytes);
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "proxy_timeout", "{}", line.line);
        assert_between(
            "closing a stalled header",
            took,
            Duration::from_millis(250),
            Duration::from_millis(1500),
        );
    }

    let want = (bad.len() + late.len()) as u64;
    let counted = wait_for(Duration::from_secs(3), || {
        let n = frontend_counter(&stats_json(st), "fe", "proxy_errors");
        (n == want).then_some(n)
    });
    assert_eq!(
        counted,
        Some(want),
        "proxy_errors: {}",
        stats_json(st)["frontends"]
    );
}

#[test]
fn accept_proxy_takes_split_binary_local_and_unknown_headers() {
    let (lb, port, st, _server) = accept_proxy_lb(json!({}));
    let dst = frontend(port);
    // Sends `parts` with 50 ms between them, then EOF; returns the answer and the real
    // client address.
    let exchange = |parts: &[Vec<u8>]| -> (SocketAddr, Vec<u8>) {
        let (local, connected) = connect_from_known_port(dst);
        let mut s = connected.unwrap();
        s.set_nodelay(true).unwrap();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                thread::sleep(Duration::from_millis(50));
            }
            s.write_all(p).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
        let answer = read_to_eof(&mut s, 4096)
            .unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()));
        (local, answer)
    };

    // v1 in three writes, 50 ms apart (100 ms in all, within the 300 ms timeout).
    let carried: SocketAddr = "198.51.100.7:4242".parse().unwrap();
    let (real, answer) = exchange(&[
        b"PROXY TCP4 198.51.100.7 ".to_vec(),
        format!("127.0.0.1 4242 {}", port).into_bytes(),
        b"\r\nhello".to_vec(),
    ]);
    assert_eq!(
        answer,
        b"srv\nhello",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let line = lb.conn_line(carried);
    assert_eq!(line.field("via"), real.to_string(), "{}", line.line);
    assert!(line.end().ends_with("_close"), "{}", line.line);
    assert_eq!(
        line.field("bytes_in"),
        "5",
        "only the payload counts: {}",
        line.line
    );

    // v2 over IPv6 with TLVs (authority, NOOP), header and payload in one write.
    let carried6: SocketAddr = "[2001:db8::7]:4243".parse().unwrap();
    let mut first = proxy_v2(
        carried6,
        "[2001:db8::1]:443".parse().unwrap(),
        &[(0x02, b"example.org".to_vec()), (0x04, vec![0; 5])],
    );
    first.extend_from_slice(b"payload");
    let (real, answer) = exchange(&[first]);
    assert_eq!(answer, b"srv\npayload");
    let line = lb.conn_line(carried6);
    assert_eq!(line.field("via"), real.to_string(), "{}", line.line);

    // LOCAL and UNKNOWN keep the real peer as the client.
    for header in [proxy_v2_local(), b"PROXY UNKNOWN\r\n".to_vec()] {
        let mut first = header.clone();
        first.extend_from_slice(b"local");
        let (real, answer) = exchange(&[first]);
        assert_eq!(answer, b"srv\nlocal");
        let line = lb.conn_line(real);
        assert!(line.end().ends_with("_close"), "{}", line.line);
    }
    assert_eq!(frontend_counter(&stats_json(st), "fe", "proxy_errors"), 0);
}

#[test]
fn proxy_trusted_limits_who_must_and_may_send_a_header() {
    let server = NamedServer::greeting("srv");
    let (untrusting, trusting) = (free_port(), free_port());
    let lb = Ringlb::start(&lb_config(
        json!([
            frontend_json(
                "untrusting",
                untrusting,
                "be",
                json!({ "accept_proxy": true, "proxy_trusted": ["192.0.2.0/24"], "inspect_timeout": INSPECT })
            ),
            frontend_json(
                "trusting",
                trusting,
                "be",
                json!({ "accept_proxy": true, "proxy_trusted": ["127.0.0.0/8"], "inspect_timeout": INSPECT })
            ),
        ]),
        json!([backend_json("be", &[server.addr()], json!({}))]),
    ));
    let plain = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let spoof = b"PROXY TCP4 198.51.100.9 127.0.0.1 5555 80\r\nhi".to_vec();
    // From 127.0.0.1, outside 192.0.2.0/24: bytes go through as they are, a header too.
    for bytes in [&plain, &spoof] {
        let (local, connected) = connect_from_known_port(frontend(untrusting));
        let mut s = connected.unwrap();
        s.write_all(bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let answer = read_to_eof(&mut s, 4096).unwrap();
        let mut want = b"srv\n".to_vec();
        want.extend_from_slice(bytes);
        assert_eq!(
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&want)
        );
        let line = lb.conn_line(local);
        assert!(line.end().ends_with("_close"), "{}", line.line);
    }
    assert!(
        !lb.conn_lines()
            .iter()
            .any(|c| c.get("client") == Some("198.51.100.9:5555")),
        "an untrusted source set its address:\n{}",
        lb.log()
    );
    // From inside 127.0.0.0/8 the header is required.
    let (local, _) = rejected(&lb, trusting, &plain);
    assert_eq!(lb.conn_line(local).end(), "bad_proxy");
}

/// The peers themselves, without ringlb: nginx logs the addresses of hand-written v1 and v2
/// headers and rejects a missing one, and HAProxy's v2 and v1 headers parse here with the
/// client's address. Failures elsewhere in this file are then ringlb's.
#[test]
fn peers_speak_the_proxy_protocol() {
    let nginx = pp_nginx("peer", 1);
    let dst = nginx.addr();
    for (i, v2) in [false, true].into_iter().enumerate() {
        let src = SocketAddr::from(([198, 51, 100, 20 + i as u8], 5000 + i as u16));
        let mut s = connect(dst);
        let mut bytes = if v2 {
            proxy_v2(src, dst, &[])
        } else {
            proxy_v1(src, dst)
        };
        bytes.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        s.write_all(&bytes).unwrap();
        let answer = parse_http(&read_to_eof(&mut s, 4096).unwrap()).unwrap();
        assert_eq!((answer.status, answer.body.as_str()), (200, "peer\n"));
        let access = access_for(&nginx, src);
        assert_eq!(access.proxy_dst, Some(dst.to_string()));
    }
    let mut s = connect(dst);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = read_to_eof(&mut s, 4096);
    assert!(
        wait_for(Duration::from_secs(3), || (!nginx
            .error_lines("broken header")
            .is_empty())
        .then_some(()))
        .is_some(),
        "nginx accepted a request without a header:\n{}",
        nginx.error_log()
    );

    for (option, version) in [("send-proxy-v2", 2u8), ("send-proxy", 1u8)] {
        let server = ProxyServer::start("hi\n");
        let haproxy = Haproxy::start(server.addr(), option);
        let (local, connected) = connect_from(client_ip(), haproxy.addr());
        let mut s = connected.unwrap();
        s.write_all(b"data").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut s, 1024).unwrap(), b"hi\ndata");
        let got = server.wait_received(1, Duration::from_secs(5)).unwrap();
        let h = got.header.unwrap_or_else(|e| panic!("{option}: {e}"));
        assert_eq!(
            (h.version, h.src, h.dst),
            (version, Some(local), Some(haproxy.addr()))
        );
    }
}
