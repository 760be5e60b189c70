//! TLS routing by SNI through the real binary, without decrypting, with real TLS peers:
//!
//! - curl reaches the nginx of its name: an exact name, a one-label and a two-label match of
//!   `*.example.org`, the longest of two matching wildcards, and the default backend for
//!   other names (`example.org` and `badexample.org` included); the handshake completes end
//!   to end with the name intact; names match in any case; without a default backend an
//!   unknown name is closed (`no_route`, counted);
//! - a ClientHello split into 32-byte segments (a relay in front) is still routed, by curl
//!   and by `openssl s_client`;
//! - a post-quantum sized ClientHello (Chromium's X25519MLKEM768 key share, over 1500 bytes)
//!   is routed, and a synthetic one in small writes too;
//! - inspect limits: non-TLS bytes, a stalled record (after `inspect_timeout`) and a
//!   ClientHello over `inspect_max` go to the default backend with every byte intact, or
//!   are closed without one;
//! - SNI behind a PROXY header, and the v2 TLVs sent onward (authority, unique_id, crc32c).

pub mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::peers::*;
use common::*;
use serde_json::{json, Value};

const INSPECT: &str = "300ms";
const NAMES: [&str; 5] = [
    "app1.example.org",
    "*.example.org",
    "example.org",
    "other.test",
    "localhost",
];

/// Three TLS nginx servers answering "app1", "wild" and "default", one certificate for all.
struct TlsFarm {
    app1: Nginx,
    wild: Nginx,
    default: Nginx,
    _dir: TempDir,
}

/// Removes a directory on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TlsFarm {
    fn start() -> TlsFarm {
        let dir = TempDir(temp_dir("certs"));
        let cert = Cert::self_signed(&dir.0, &NAMES);
        let tls = |body| {
            Nginx::start(&NginxSpec {
                body,
                proxy_protocol: false,
                tls: Some(&cert),
                ports: 1,
            })
        };
        TlsFarm {
            app1: tls("app1"),
            wild: tls("wild"),
            default: tls("default"),
            _dir: dir,
        }
    }
}

fn routes() -> Value {
    json!([
        { "sni": "app1.example.org", "backend": "app1" },
        { "sni": "*.example.org", "backend": "wild" },
        { "sni": "*.app1.example.org", "backend": "app1" },
    ])
}

fn backend(name: &str, addr: SocketAddr, extra: Value) -> Value {
    let mut be = json!({ "name": name, "servers": [{ "name": "s1", "addr": addr.to_string() }] });
    if let (Some(map), Value::Object(more)) = (be.as_object_mut(), extra) {
        map.extend(more);
    }
    be
}

/// A config with frontend `tls` on `port` routing by `routes()`, `default` as its default
/// backend when given, `fe_extra` merged into the frontend, and a stats listener on `stats`.
fn sni_config(
    port: u16,
    stats: SocketAddr,
    default: Option<&str>,
    fe_extra: Value,
    backends: Value,
) -> String {
    let mut fe = json!({
        "name": "tls",
        "bind": [format!("127.0.0.1:{port}")],
        "log": true,
        "routes": routes(),
        "inspect_timeout": INSPECT,
    });
    if let Some(d) = default {
        fe["backend"] = json!(d);
    }
    if let (Some(map), Value::Object(more)) = (fe.as_object_mut(), fe_extra) {
        map.extend(more);
    }
    let cfg = json!({ "workers": 2, "frontends": [fe], "backends": backends }).to_string();
    with_stats(&cfg, stats)
}

fn farm_backends(farm: &TlsFarm) -> Value {
    json!([
        backend("app1", farm.app1.addr(), json!({})),
        backend("wild", farm.wild.addr(), json!({})),
        backend("default", farm.default.addr(), json!({})),
    ])
}

fn stats_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The log line of a curl connection: by its local address, or else by its SNI.
fn curl_line(lb: &Ringlb, curl: &CurlResult, sni: &str) -> ConnLine {
    if let Some(local) = curl.local.filter(|l| l.port() != 0) {
        return lb.conn_line(local);
    }
    lb.wait_for_line(LOG_TIMEOUT, |l| {
        ConnLine::parse(l).is_some_and(|c| c.get("sni") == Some(sni))
    })
    .and_then(|l| ConnLine::parse(&l))
    .unwrap_or_else(|| panic!("no conn line with sni={sni}; log:\n{}", lb.log()))
}

#[test]
fn curl_reaches_the_backend_of_its_server_name() {
    let farm = TlsFarm::start();
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({}),
        farm_backends(&farm),
    ));
    let cases = [
        ("app1.example.org", "app1", &farm.app1),
        ("x.example.org", "wild", &farm.wild),
        ("a.b.example.org", "wild", &farm.wild),
        // The longest matching suffix wins.
        ("x.app1.example.org", "app1", &farm.app1),
        ("other.test", "default", &farm.default),
        // A wildcard needs a label of its own before the suffix.
        ("example.org", "default", &farm.default),
        ("badexample.org", "default", &farm.default),
    ];
    for (name, body, nginx) in cases {
        let curl = curl_https(name, port);
        assert!(
            curl.ok,
            "curl {name}: exit {:?}: {}; log:\n{}",
            curl.exit,
            curl.stderr,
            lb.log()
        );
        assert_eq!(curl.body, format!("{body}\n"), "curl {name}");
        let line = curl_line(&lb, &curl, name);
        assert_eq!(line.field("sni"), name, "{}", line.line);
        assert_eq!(line.field("server"), format!("{body}/s1"), "{}", line.line);
        // nginx may end a TLS connection with a reset (curl's close_notify arriving after
        // its close): how it ends is the peers' business, that it was forwarded is ringlb's.
        assert!(
            line.field("bytes_out").parse::<u64>().unwrap() > 1000,
            "certificate and answer came back: {}",
            line.line
        );
        // nginx completed the handshake with the name the client sent.
        let access = nginx
            .wait_access(LOG_TIMEOUT, |a| a.sni.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{body} nginx logged no {name}: {:#?}", nginx.access()));
        assert_eq!(access.status, 200);
    }
    for nginx in [&farm.app1, &farm.wild, &farm.default] {
        assert!(
            nginx.error_lines("[crit]").is_empty(),
            "{}",
            nginx.error_log()
        );
    }

    // Names match without regard to case (a hand-built hello: curl lowercases names).
    let hello = client_hello("App1.Example.ORG", 0, 0);
    let line = send_hello(&lb, port, &hello, 1024, Duration::ZERO);
    assert_eq!(line.field("server"), "app1/s1", "{}", line.line);
    assert!(
        line.field("sni").eq_ignore_ascii_case("app1.example.org"),
        "{}",
        line.line
    );
}

#[test]
fn without_a_default_backend_unknown_names_are_closed() {
    let farm = TlsFarm::start();
    let port = free_port();
    let st = stats_addr();
    let lb = Ringlb::start(&sni_config(port, st, None, json!({}), farm_backends(&farm)));
    let curl = curl_https("app1.example.org", port);
    assert_eq!(curl.body, "app1\n", "{}; log:\n{}", curl.stderr, lb.log());

    let curl = curl_https("other.test", port);
    assert!(!curl.ok, "curl other.test succeeded: {curl:?}");
    let line = curl_line(&lb, &curl, "other.test");
    assert_eq!(line.end(), "no_route", "{}", line.line);
    assert_eq!(line.field("sni"), "other.test", "{}", line.line);

    // Bytes that are not TLS have no name either.
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    closed_by_peer(Ok(s)).unwrap_or_else(|e| panic!("plain client: {e}"));
    assert_eq!(lb.conn_line(local).end(), "no_route");

    let counted = wait_for(Duration::from_secs(3), || {
        let n = frontend_counter(&stats_json(st), "tls", "no_route");
        (n == 2).then_some(n)
    });
    assert_eq!(
        counted,
        Some(2),
        "no_route: {}",
        stats_json(st)["frontends"]
    );
    assert!(farm.default.access().is_empty());
}

#[test]
fn client_hello_split_into_small_segments_is_routed() {
    let farm = TlsFarm::start();
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({}),
        farm_backends(&farm),
    ));
    let relay = SplitRelay::start(frontend(port), 32, Duration::from_millis(5), 2048);

    let curl = curl_https("app1.example.org", relay.port());
    assert!(curl.ok, "curl: {}; log:\n{}", curl.stderr, lb.log());
    assert_eq!(curl.body, "app1\n");

    let (ok, out) = s_client_get(relay.addr(), "x.example.org");
    assert!(ok, "s_client: {out}; log:\n{}", lb.log());
    assert!(out.contains("\r\n\r\nwild\n"), "s_client got: {out}");

    let conns = relay.conns();
    assert_eq!(conns.len(), 2, "{conns:?}");
    for (conn, (sni, server)) in conns.iter().zip([
        ("app1.example.org", "app1/s1"),
        ("x.example.org", "wild/s1"),
    ]) {
        assert!(
            conn.writes_before_answer > 5,
            "{sni}: the hello went in {} writes",
            conn.writes_before_answer
        );
        assert!(
            conn.client_hello_len().is_some(),
            "{sni}: not TLS: {conn:?}"
        );
        let line = lb.conn_line(conn.upstream_local.expect("relay connected"));
        assert_eq!(line.field("sni"), sni, "{}", line.line);
        assert_eq!(line.field("server"), server, "{}", line.line);
    }
}

/// Sends `hello` from a known port in writes of `chunk` bytes `gap` apart, half-closes and
/// reads to EOF (whatever the server answers); returns the connection's log line.
fn send_hello(lb: &Ringlb, port: u16, hello: &[u8], chunk: usize, gap: Duration) -> ConnLine {
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    write_split(&mut s, hello, chunk, gap).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let _ = read_to_eof(&mut s, 1 << 20);
    lb.conn_line(local)
}

/// A ClientHello with a 1216-byte X25519MLKEM768 key share, in 64-byte writes 5 ms apart,
/// is routed by its name (the handshake itself cannot complete: the shares are made up).
fn synthetic_large_hello_is_routed(lb: &Ringlb, port: u16) {
    let hello = client_hello("app1.example.org", 1216, 0);
    assert!(hello.len() > 1300, "{} bytes", hello.len());
    let line = send_hello(lb, port, &hello, 64, Duration::from_millis(5));
    assert_eq!(line.field("sni"), "app1.example.org", "{}", line.line);
    assert_eq!(line.field("server"), "app1/s1", "{}", line.line);
}

#[test]
fn chromium_post_quantum_client_hello_is_routed() {
    let Some(bin) = chromium() else { return };
    let farm = TlsFarm::start();
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({}),
        farm_backends(&farm),
    ));
    // Measures the hello; splits it too (Chromium's arrives in one segment otherwise).
    let relay = SplitRelay::start(frontend(port), 256, Duration::from_millis(2), 4096);
    let profile = temp_dir("chromium");
    let dom = chromium_dump(
        bin,
        &profile.join("profile"),
        "app1.example.org",
        relay.port(),
    );
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        dom.contains("app1"),
        "Chromium did not get app1's page: {dom:?}; log:\n{}",
        lb.log()
    );
    let conns = relay.conns();
    let sizes: Vec<_> = conns.iter().map(RelayedConn::client_hello_len).collect();
    let large: Vec<_> = conns
        .iter()
        .filter(|c| c.client_hello_len().is_some_and(|n| n > 1500))
        .collect();
    if large.is_empty() {
        eprintln!(
            "sni: this Chromium sent ClientHellos of {sizes:?} bytes (no post-quantum \
             share); checking a synthetic one instead"
        );
    }
    for conn in large {
        let line = lb.conn_line(conn.upstream_local.expect("relay connected"));
        assert_eq!(line.field("sni"), "app1.example.org", "{}", line.line);
        assert_eq!(line.field("server"), "app1/s1", "{}", line.line);
    }
    // Either way (and as the fallback when this Chromium's hello is small).
    synthetic_large_hello_is_routed(&lb, port);
}

#[test]
fn synthetic_post_quantum_client_hello_in_small_writes_is_routed() {
    let farm = TlsFarm::start();
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({}),
        farm_backends(&farm),
    ));
    synthetic_large_hello_is_routed(&lb, port);
}

/// Greeting named servers behind the SNI frontend, with `inspect_max` 1024.
fn echo_routes(default: bool) -> (Ringlb, u16, [NamedServer; 3]) {
    let servers = [
        NamedServer::greeting("app1"),
        NamedServer::greeting("wild"),
        NamedServer::greeting("default"),
    ];
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        default.then_some("default"),
        json!({ "inspect_max": 1024 }),
        json!([
            backend("app1", servers[0].addr(), json!({})),
            backend("wild", servers[1].addr(), json!({})),
            backend("default", servers[2].addr(), json!({})),
        ]),
    ));
    (lb, port, servers)
}

/// Sends `bytes`, half-closes, and returns the answer and the log line.
fn exchange(lb: &Ringlb, port: u16, bytes: &[u8]) -> (Vec<u8>, ConnLine) {
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let answer = read_to_eof(&mut s, 1 << 20).unwrap_or_else(|e| panic!("{e}; log:\n{}", lb.log()));
    (answer, lb.conn_line(local))
}

fn named(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut v = format!("{name}\n").into_bytes();
    v.extend_from_slice(bytes);
    v
}

#[test]
fn inspect_limits_send_what_cannot_be_routed_to_the_default() {
    let (lb, port, _servers) = echo_routes(true);

    // Not TLS: the default backend gets the bytes as they were.
    let plain = b"GET / HTTP/1.0\r\n\r\n";
    let (answer, line) = exchange(&lb, port, plain);
    assert_eq!(answer, named("default", plain), "{}", line.line);
    assert_eq!(line.field("sni"), "-", "{}", line.line);
    assert_eq!(line.field("server"), "default/s1");

    // A hello within inspect_max is routed, and forwarded intact.
    let hello = client_hello("app1.example.org", 0, 0);
    assert!(hello.len() < 1024);
    let (answer, line) = exchange(&lb, port, &hello);
    assert_eq!(answer, named("app1", &hello), "{}", line.line);
    assert_eq!(line.field("sni"), "app1.example.org");

    // Over inspect_max (1024): the default, intact.
    let big = client_hello("app1.example.org", 0, 1200);
    let (answer, line) = exchange(&lb, port, &big);
    assert_eq!(answer.len(), big.len() + "default\n".len(), "{}", line.line);
    assert_eq!(answer, named("default", &big), "{}", line.line);
    assert_eq!(line.field("server"), "default/s1", "{}", line.line);

    // Three bytes of a record, then nothing: the default after inspect_timeout (300 ms).
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    let start = Instant::now();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut got = [0u8; 11];
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("stalled client: {e}; log:\n{}", lb.log()));
    assert_between(
        "routing a stalled hello",
        start.elapsed(),
        Duration::from_millis(250),
        Duration::from_millis(1500),
    );
    assert_eq!(&got, b"default\n\x16\x03\x01");
    s.shutdown(Shutdown::Write).unwrap();
    let _ = read_to_eof(&mut s, 1024);
    let line = lb.conn_line(local);
    assert_eq!(line.field("server"), "default/s1", "{}", line.line);
    assert_eq!(line.field("sni"), "-", "{}", line.line);
}

#[test]
fn inspect_limits_close_without_a_default() {
    let (lb, port, servers) = echo_routes(false);
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    let start = Instant::now();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    closed_by_peer(Ok(s)).unwrap_or_else(|e| panic!("stalled client: {e}; log:\n{}", lb.log()));
    assert_between(
        "closing a stalled hello",
        start.elapsed(),
        Duration::from_millis(250),
        Duration::from_millis(1500),
    );
    assert_eq!(lb.conn_line(local).end(), "no_route");
    // A routable hello on the same frontend still works.
    let hello = client_hello("z.example.org", 0, 0);
    let (answer, line) = exchange(&lb, port, &hello);
    assert_eq!(answer, named("wild", &hello), "{}", line.line);
    drop(servers);
}

/// `accept_proxy` and routes together: the PROXY header is read, then the ClientHello.
#[test]
fn sni_is_read_after_a_proxy_header() {
    let (app1, default) = (
        NamedServer::greeting("app1"),
        NamedServer::greeting("default"),
    );
    let port = free_port();
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({ "accept_proxy": true }),
        json!([
            backend("app1", app1.addr(), json!({})),
            backend("wild", default.addr(), json!({})),
            backend("default", default.addr(), json!({})),
        ]),
    ));
    let carried: SocketAddr = "203.0.113.5:51000".parse().unwrap();
    let hello = client_hello("app1.example.org", 0, 0);
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&proxy_v2(carried, frontend(port), &[]))
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    write_split(&mut s, &hello, 100, Duration::from_millis(5)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let answer = read_to_eof(&mut s, 1 << 20).unwrap();
    assert_eq!(answer, named("app1", &hello));
    let line = lb.conn_line(carried);
    assert_eq!(line.field("via"), local.to_string(), "{}", line.line);
    assert_eq!(line.field("sni"), "app1.example.org", "{}", line.line);
    assert_eq!(line.field("server"), "app1/s1", "{}", line.line);
}

/// `send_proxy` v2 with every TLV: authority is the SNI, unique_id the logged id=, and the
/// CRC32C checks out.
#[test]
fn proxy_v2_tlvs_carry_the_name_and_the_connection_id() {
    let server = ProxyServer::start("hi\n");
    let other = NamedServer::greeting("other");
    let port = free_port();
    let tlvs = json!({ "send_proxy": "v2", "proxy_tlvs": ["authority", "unique_id", "crc32c"] });
    let lb = Ringlb::start(&sni_config(
        port,
        stats_addr(),
        Some("default"),
        json!({}),
        json!([
            backend("app1", server.addr(), tlvs),
            backend("wild", other.addr(), json!({})),
            backend("default", other.addr(), json!({})),
        ]),
    ));
    let hello = client_hello("app1.example.org", 0, 0);
    let (local, connected) = connect_from_known_port(frontend(port));
    let mut s = connected.unwrap();
    s.write_all(&hello).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let answer = read_to_eof(&mut s, 1 << 20).unwrap();
    assert_eq!(answer, named("hi", &hello), "log:\n{}", lb.log());
    let got = server.wait_received(1, Duration::from_secs(5)).unwrap();
    let header = got
        .header
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", lb.log()));
    assert_eq!(got.rest, hello, "the hello after the header");
    assert_eq!((header.version, header.src), (2, Some(local)));
    assert_eq!(
        header.tlv(PP2_TYPE_AUTHORITY),
        Some(&b"app1.example.org"[..]),
        "{header:?}"
    );
    let line = lb.conn_line(local);
    let id = line.field("id");
    let unique = header
        .tlv(PP2_TYPE_UNIQUE_ID)
        .unwrap_or_else(|| panic!("no unique_id TLV: {header:?}"));
    let hex: String = unique.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        id.eq_ignore_ascii_case(&hex) || id.as_bytes() == unique,
        "id={id} but the TLV holds {unique:?}"
    );
    assert!(!unique.is_empty() && unique.len() <= 128);
    assert_eq!(header.crc32c_ok(), Some(true), "{header:?}");
}

/// The TLS peers themselves, without ringlb: curl and s_client get each nginx's body and
/// nginx logs the name; the relay splits; Chromium's hello is measured.
#[test]
fn tls_peers_work_directly() {
    let farm = TlsFarm::start();
    let curl = curl_https("app1.example.org", farm.app1.addr().port());
    assert_eq!(curl.body, "app1\n", "{curl:?}");
    assert!(farm
        .app1
        .wait_access(LOG_TIMEOUT, |a| a.sni.as_deref()
            == Some("app1.example.org"))
        .is_some());
    let relay = SplitRelay::start(farm.wild.addr(), 32, Duration::from_millis(5), 2048);
    let (ok, out) = s_client_get(relay.addr(), "q.example.org");
    assert!(ok && out.contains("\r\n\r\nwild\n"), "{out}");
    assert!(
        relay.conns()[0].writes_before_answer > 5,
        "{:?}",
        relay.conns()
    );
    assert!(Path::new(&farm._dir.0).join("cert.pem").exists());

    let Some(bin) = chromium() else { return };
    let relay = SplitRelay::start(farm.app1.addr(), 256, Duration::from_millis(2), 4096);
    let profile = temp_dir("chromium");
    let dom = chromium_dump(
        bin,
        &profile.join("profile"),
        "app1.example.org",
        relay.port(),
    );
    let _ = std::fs::remove_dir_all(&profile);
    assert!(dom.contains("app1"), "{dom:?}");
    let sizes: Vec<_> = relay
        .conns()
        .iter()
        .filter_map(RelayedConn::client_hello_len)
        .collect();
    eprintln!("sni: Chromium's ClientHello sizes: {sizes:?}");
    assert!(!sizes.is_empty());
}
