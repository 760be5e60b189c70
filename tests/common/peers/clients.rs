//! Clients: HTTP answers parsed, the stats JSON, curl, `openssl s_client` and headless
//! Chromium.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::{collect_bounded, require, run_bounded};

/// What one HTTP exchange gave.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// Parses a complete HTTP/1.x answer (read to EOF).
pub fn parse_http(raw: &[u8]) -> Result<HttpAnswer, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of header in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

/// GET `/stats.json` from a stats listener without auth.
pub fn stats_json(addr: SocketAddr) -> serde_json::Value {
    let mut s = crate::common::connect(addr);
    s.write_all(format!("GET /stats.json HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send stats request");
    let raw = crate::common::read_to_eof(&mut s, 8 << 20).expect("read stats answer");
    let answer = parse_http(&raw).expect("stats answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("stats.json parses")
}

/// A frontend's counter `field` in a stats.json document.
pub fn frontend_counter(stats: &serde_json::Value, frontend: &str, field: &str) -> u64 {
    let fe = stats["frontends"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == frontend))
        .unwrap_or_else(|| panic!("no frontend {frontend} in {stats}"));
    fe[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {field} in {fe}"))
}

/// Adds a `"stats": { "bind": ... }` section (loopback, no auth) to a config document.
pub fn with_stats(config: &str, stats: SocketAddr) -> String {
    let mut value: serde_json::Value = serde_json::from_str(config).expect("config is JSON");
    value["stats"] = serde_json::json!({ "bind": stats.to_string() });
    value.to_string()
}

/// What curl did.
#[derive(Debug)]
pub struct CurlResult {
    pub ok: bool,
    pub exit: Option<i32>,
    pub body: String,
    /// curl's `%{local_ip}:%{local_port}`: the connection's client address.
    pub local: Option<SocketAddr>,
    pub stderr: String,
}

const CURL_MARK: &str = "\n--curl-local--";

/// `curl -sk https://HOST:PORT/` with HOST resolved to 127.0.0.1, bounded at 10 s.
pub fn curl_https(host: &str, port: u16) -> CurlResult {
    require("curl", "curl");
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "-k", "--max-time", "8", "--http1.1"])
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg("-w")
            .arg(format!("{CURL_MARK}%{{local_ip}}:%{{local_port}}"))
            .arg(format!("https://{host}:{port}/")),
        Duration::from_secs(10),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, local) = match stdout.rsplit_once(CURL_MARK) {
        Some((b, l)) => (b.to_owned(), l.trim().parse().ok()),
        None => (stdout, None),
    };
    CurlResult {
        ok: out.status.success(),
        exit: out.status.code(),
        body,
        local,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `openssl s_client -connect addr -servername name`, sending one HTTP/1.0 request; returns
/// stdout (session details and the answer) and whether it exited successfully.
pub fn s_client_get(addr: SocketAddr, name: &str) -> (bool, String) {
    require("openssl", "openssl");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-verify_quiet"])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-servername")
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let request = format!("GET / HTTP/1.0\r\nHost: {name}\r\n\r\n");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(request.as_bytes());
        // stdin closes here; -ign_eof keeps the session until the server closes.
    });
    let out = collect_bounded(&mut child, Duration::from_secs(10), "openssl s_client");
    let _ = writer.join();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Debian's chromium, when installed (scripts/test installs it; CI must have it).
pub fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed: scripts/test installs it"
        );
        eprintln!("chromium test skipped: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// Headless Chromium's `--dump-dom` of `https://HOST:PORT/`, HOST mapped to 127.0.0.1 and
/// certificate errors ignored; bounded at 40 s.
pub fn chromium_dump(bin: &str, profile: &Path, host: &str, port: u16) -> String {
    let out = run_bounded(
        Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--host-resolver-rules=MAP {host} 127.0.0.1"))
            .arg("--dump-dom")
            .arg(format!("https://{host}:{port}/")),
        Duration::from_secs(40),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
