//! The log as operators receive it: every line stamped (RFC 3339, UTC, milliseconds),
//! events with a level, connection lines with the fields HAProxy's tcplog has; JSON lines
//! that parse; syslog to a real rsyslogd (its unix socket in syslog(3)'s format, UDP in
//! RFC 5424); journald's native protocol on a socket the test owns; a reload that moves
//! the log.

pub mod common;

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use common::*;

fn config_with_log(port: u16, backend: SocketAddr, log: &str) -> String {
    format!(
        r#"{{ "workers": 1{log},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be" }} ],
  "backends": [ {{ "name": "be", "servers": [ {{ "name": "s1", "addr": "{backend}" }} ] }} ] }}"#
    )
}

fn one_connection(port: u16) {
    let mut c = connect(frontend(port));
    assert!(echoes(&mut c, b"hello\n", Duration::from_secs(2)));
}

fn is_rfc3339_ms(ts: &str) -> bool {
    let b = ts.as_bytes();
    ts.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && ts.chars().filter(|c| c.is_ascii_digit()).count() == 17
}

#[test]
fn text_lines_are_stamped_and_events_have_a_level() {
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::start(&config_with_log(port, echo.addr(), ""));
    one_connection(port);
    lb.send_signal(Signal::SIGHUP);
    lb.wait_for_line(Duration::from_secs(5), |l| l.contains("reload #1 ok"))
        .expect("reload line");
    wait_for(Duration::from_secs(5), || {
        lb.conn_lines().into_iter().next()
    })
    .expect("a conn line");
    let raw = lb.raw_log();
    for line in raw.lines() {
        let (ts, rest) = line.split_once(' ').expect("a timestamp and a line");
        assert!(is_rfc3339_ms(ts), "not stamped: {line:?}");
        assert!(
            rest.starts_with("conn ")
                || ["info", "notice", "warning", "error"]
                    .iter()
                    .any(|lvl| rest.starts_with(&format!("{lvl} ringlb: "))),
            "neither a conn line nor an event with a level: {line:?}"
        );
    }
    assert!(raw.contains(" notice ringlb: reload #1 ok"), "{raw}");
    let conn = &lb.conn_lines()[0];
    assert_eq!(conn.field("bind"), format!("127.0.0.1:{port}"));
    assert_eq!(conn.field("server_addr"), echo.addr().to_string());
    assert_eq!(conn.field("retries"), "0");
    assert_eq!(conn.field("queue_ms"), "0.000");
    assert_eq!(conn.field("term"), "--");
}

#[test]
fn json_lines_each_parse_with_their_kind() {
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::start(&config_with_log(
        port,
        echo.addr(),
        r#", "log": { "format": "json" }"#,
    ));
    one_connection(port);
    let conn = wait_for(Duration::from_secs(5), || {
        lb.raw_log()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
            .find(|v| v["kind"] == "conn")
    })
    .expect("a conn line");
    assert_eq!(conn["frontend"], "fe");
    assert_eq!(conn["backend"], "be");
    assert_eq!(conn["server"], "s1");
    assert_eq!(conn["bytes_in"], 6);
    assert_eq!(conn["end"], "client_close");
    assert!(is_rfc3339_ms(conn["ts"].as_str().unwrap()));
    let events: Vec<serde_json::Value> = lb
        .raw_log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["kind"] == "event")
        .collect();
    assert!(events
        .iter()
        .any(|e| e["msg"].as_str().unwrap().starts_with("listening on")));
}

/// A real rsyslogd with a unix socket and a UDP port, writing what it receives with its
/// facility, severity, tag, pid and msgid to a file.
struct Rsyslogd {
    child: Child,
    dir: std::path::PathBuf,
    udp: u16,
}

impl Rsyslogd {
    fn start() -> Rsyslogd {
        assert!(
            Path::new("/usr/sbin/rsyslogd").exists(),
            "rsyslogd is missing: scripts/test installs Debian's rsyslog"
        );
        let dir = temp_dir("rsyslog");
        let udp = free_udp_port();
        let conf = format!(
            r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
template(name="t" type="string" string="%syslogfacility-text% %syslogseverity-text% tag=%programname% pid=%procid% msgid=%msgid% msg=%msg%\n")
*.* action(type="omfile" file="{d}/out.log" template="t")
"#,
            d = dir.display()
        );
        fs::write(dir.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        let sock = dir.join("log.sock");
        wait_for(Duration::from_secs(5), || sock.exists().then_some(()))
            .expect("rsyslogd's socket");
        Rsyslogd { child, dir, udp }
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

#[test]
fn syslog_reaches_rsyslogd_on_its_socket_and_over_udp() {
    let rsyslog = Rsyslogd::start();
    let echo = Backend::echo();
    for (address, protocol) in [
        (
            format!("{}", rsyslog.dir.join("log.sock").display()),
            "rfc3164",
        ),
        (format!("127.0.0.1:{}", rsyslog.udp), "rfc5424"),
    ] {
        let port = free_port();
        let lb = Ringlb::start(&config_with_log(
            port,
            echo.addr(),
            &format!(
                r#", "log": {{ "target": "syslog", "address": "{address}", "facility": "local3" }}"#
            ),
        ));
        one_connection(port);
        let pid = lb.pid().to_string();
        let conn = wait_for(Duration::from_secs(5), || {
            rsyslog
                .lines()
                .into_iter()
                .find(|l| l.contains(&format!("pid={pid}")) && l.contains("tag=ringlb-conn"))
        })
        .unwrap_or_else(|| panic!("no conn line from {address}; got {:?}", rsyslog.lines()));
        assert!(conn.starts_with("local3 info "), "{protocol}: {conn}");
        assert!(conn.contains(" frontend=fe "), "{protocol}: {conn}");
        let event = rsyslog
            .lines()
            .into_iter()
            .find(|l| {
                l.contains(&format!("pid={pid}"))
                    && l.contains("tag=ringlb ")
                    && l.contains("ringlb: listening on")
            })
            .unwrap_or_else(|| panic!("no event line from {address}: {:?}", rsyslog.lines()));
        assert!(event.starts_with("local3 info "), "{protocol}: {event}");
        if protocol == "rfc5424" {
            assert!(conn.contains(" msgid=conn "), "{conn}");
            assert!(event.contains(" msgid=event "), "{event}");
        }
        // The message keeps ringlb's own millisecond timestamp either way.
        let msg = conn.split(" msg=").nth(1).unwrap_or("").trim_start();
        assert!(
            msg.starts_with("conn ") || is_rfc3339_ms(msg.split(' ').next().unwrap_or("")),
            "{msg}"
        );
    }
}

/// Fields of one journald native-protocol datagram.
fn journald_fields(datagram: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("field end");
        let head = &rest[..nl];
        if let Some(eq) = head.iter().position(|&b| b == b'=') {
            fields.insert(
                String::from_utf8_lossy(&head[..eq]).into_owned(),
                String::from_utf8_lossy(&head[eq + 1..]).into_owned(),
            );
            rest = &rest[nl + 1..];
        } else {
            // NAME\n<u64 little-endian length><value>\n
            let name = String::from_utf8_lossy(head).into_owned();
            let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &rest[nl + 9..nl + 9 + len];
            fields.insert(name, String::from_utf8_lossy(value).into_owned());
            rest = &rest[nl + 9 + len + 1..];
        }
    }
    fields
}

#[test]
fn journald_entries_carry_structured_fields() {
    let dir = temp_dir("journald");
    let sock_path = dir.join("journal.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the test's journal socket");
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let echo = Backend::echo();
    let port = free_port();
    let _lb = Ringlb::start(&config_with_log(
        port,
        echo.addr(),
        &format!(
            r#", "log": {{ "target": "journald", "address": "{}" }}"#,
            sock_path.display()
        ),
    ));
    one_connection(port);
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    let conn = loop {
        let n = sock.recv(&mut buf).expect("a journal entry within 5 s");
        let fields = journald_fields(&buf[..n]);
        if fields.get("RINGLB_KIND").map(String::as_str) == Some("conn") {
            break fields;
        }
        seen.push(fields);
    };
    assert_eq!(conn["SYSLOG_IDENTIFIER"], "ringlb");
    assert_eq!(conn["PRIORITY"], "6");
    assert_eq!(conn["RINGLB_FRONTEND"], "fe");
    assert_eq!(conn["RINGLB_BACKEND"], "be");
    assert_eq!(conn["RINGLB_SERVER"], "s1");
    assert_eq!(conn["RINGLB_END"], "client_close");
    assert!(conn["MESSAGE"].starts_with("conn worker=0 "), "{conn:?}");
    assert!(seen
        .iter()
        .any(|e| e["RINGLB_KIND"] == "event" && e["MESSAGE"].contains("ringlb: listening on")));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_moves_the_log_and_a_bad_target_keeps_the_old_one() {
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::start(&config_with_log(port, echo.addr(), ""));
    let to_udp = config_with_log(
        port,
        echo.addr(),
        &format!(
            r#", "log": {{ "target": "syslog", "address": "{}" }}"#,
            udp.local_addr().unwrap()
        ),
    );
    fs::write(lb.config_path(), &to_udp).unwrap();
    lb.send_signal(Signal::SIGHUP);
    let mut buf = [0u8; 4096];
    // The reload's own line is the first to come over UDP; a connection after it is
    // logged there too.
    loop {
        let n = udp.recv(&mut buf).expect("the reload, logged over UDP");
        if String::from_utf8_lossy(&buf[..n]).contains("reload #1 ok") {
            break;
        }
    }
    one_connection(port);
    let got = loop {
        let n = udp
            .recv(&mut buf)
            .expect("syslog over UDP after the reload");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains(" conn ") {
            break text;
        }
    };
    assert!(got.starts_with("<134>1 "), "{got}");

    // A journald socket that does not exist: the reload fails, the log stays on UDP.
    let bad = config_with_log(
        port,
        echo.addr(),
        r#", "log": { "target": "journald", "address": "/nonexistent/journal.sock" }"#,
    );
    fs::write(lb.config_path(), &bad).unwrap();
    lb.send_signal(Signal::SIGHUP);
    let failed = loop {
        let n = udp
            .recv(&mut buf)
            .expect("the failed reload, logged over UDP");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains("reload #2") {
            break text;
        }
    };
    assert!(failed.contains("cannot open the log"), "{failed}");
}
