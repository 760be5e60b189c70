//! The stats listener through the real binary: `/`, `/stats.json` and `/metrics` answer
//! while clients load the balancer, basic auth guards all of them, admin DRAIN / MAINT /
//! READY steer new connections and leave established ones alone, the metrics parse and
//! count what the clients did, and headless Chromium renders the page with a stopped
//! server shown DOWN and why.
//!
//! Health checks run every 100 ms, so every wait below is bounded by a few intervals.

pub mod common;
mod stats {
    pub mod client;
    pub mod openmetrics;
}

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use stats::client::*;
use stats::openmetrics;

#[test]
fn endpoints_answer_under_load_and_need_credentials() {
    let (s1, s2) = (NamedServer::start("s1"), NamedServer::start("s2"));
    let port = free_port();
    let st = stats_addr();
    let lb = Ringlb::start(&stats_config(
        port,
        st,
        true,
        CHECK,
        &servers(&[s1.addr(), s2.addr()]),
    ));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(5));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if fetch_name(frontend(port)).1.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    assert!(
        wait_for(Duration::from_secs(5), || (done.load(Ordering::Relaxed)
            > 50)
            .then_some(()))
        .is_some()
    );

    for round in 0..3 {
        let before = done.load(Ordering::Relaxed);
        let page = get(st, "/");
        assert_eq!(page.status, 200);
        assert!(page
            .header("Content-Type")
            .unwrap()
            .starts_with("text/html"));
        for needle in [
            "data-server=\"be/s1\"",
            "data-server=\"be/s2\"",
            "<meta http-equiv=\"refresh\" content=\"5\">",
            "Frontends",
        ] {
            assert!(
                page.body.contains(needle),
                "round {round}: no {needle:?} in the page"
            );
        }
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "external asset"
        );
        let stats = json(st, Some((USER, PASSWORD)));
        assert_eq!(stats["process"]["workers"], 2);
        assert!(stats["frontends"][0]["conns_total"].as_u64().unwrap() >= before);
        assert_eq!(server_json(&stats, "s1")["state"], "UP");
        let metrics = get(st, "/metrics");
        assert_eq!(metrics.status, 200);
        assert!(metrics
            .header("Content-Type")
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let m =
            openmetrics::parse(&metrics.body).unwrap_or_else(|e| panic!("{e}\n{}", metrics.body));
        assert!(
            m.value("ringlb_frontend_connections_total", &[("frontend", "fe")]) >= before as f64
        );
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(done.load(Ordering::Relaxed) > 50);

    // One wrong login per path: five failures from one address within a minute lock it
    // out (tests/abuse/stats.rs), and this test makes four.
    let wrong = [
        (USER, "wrong"),
        ("root", PASSWORD),
        (USER, "s3cret pas"),
        (USER, ""),
    ];
    for (path, wrong) in ["/", "/stats.json", "/metrics"].into_iter().zip(wrong) {
        let none = request(st, "GET", path, None, None);
        assert_eq!(none.status, 401, "{path} without credentials");
        assert!(none
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic realm="));
        let a = request(st, "GET", path, Some(wrong), None);
        assert_eq!(a.status, 401, "{path} with {wrong:?}");
        assert!(a.header("WWW-Authenticate").is_some());
        assert_eq!(
            get(st, path).status,
            200,
            "{path} with the right credentials"
        );
    }
    let body = r#"{"backend":"be","server":"s1","state":"drain"}"#;
    let a = request(st, "POST", "/admin/server", None, Some(body));
    assert_eq!(a.status, 401);
    let a = request(st, "POST", "/admin/server", Some(wrong[3]), Some(body));
    assert_eq!(a.status, 401);
    assert_eq!(
        json(st, Some((USER, PASSWORD)))["backends"][0]["servers"][0]["state"],
        "UP"
    );
    assert_eq!(get(st, "/nope").status, 404);
    assert_eq!(
        request(st, "POST", "/metrics", Some((USER, PASSWORD)), Some("{}")).status,
        405
    );
}

/// Opens connections until one is served by `want`; the others are closed.
fn held_on(lb: &Ringlb, addr: SocketAddr, want: &str) -> HeldConn {
    for _ in 0..10 {
        let (conn, name) = HeldConn::served(lb, addr);
        if name == want {
            return conn;
        }
    }
    panic!(
        "no connection served by {want} in 10 tries; log:\n{}",
        lb.log()
    );
}

/// Names of the servers that answered `n` new connections.
fn spread(lb: &Ringlb, addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        *counts.entry(must_fetch_name(lb, addr)).or_insert(0) += 1;
    }
    counts
}

/// The held connection still moves bytes (the server drains them) and ends cleanly.
fn finish_cleanly(lb: &Ringlb, mut conn: HeldConn) {
    conn.stream
        .write_all(&[7u8; 4096])
        .expect("write on the established connection");
    conn.stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    conn.stream
        .read_to_end(&mut rest)
        .expect("clean close, no reset");
    let line = lb.conn_line(conn.local);
    assert!(line.end().ends_with("_close"), "ended with {}", line.end());
    assert_eq!(
        line.field("bytes_in"),
        (TRAFFIC_LINE.len() + 4096).to_string()
    );
}

#[test]
fn drain_and_maint_stop_new_connections_and_keep_established_ones() {
    let (s1, s2) = (NamedServer::start("s1"), NamedServer::start("s2"));
    let port = free_port();
    let st = stats_addr();
    let lb = Ringlb::start(&stats_config(
        port,
        st,
        true,
        CHECK,
        &servers(&[s1.addr(), s2.addr()]),
    ));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(5));
    let fe = frontend(port);
    let auth = Some((USER, PASSWORD));

    for state in ["drain", "maint"] {
        let held = held_on(&lb, fe, "s1");
        let answer = admin(st, auth, "s1", state);
        let upper = state.to_uppercase();
        assert_eq!(answer["state"], upper.as_str());
        assert!(
            lb.wait_for_line(Duration::from_secs(2), |l| l
                == format!("ringlb: admin {USER}: be/s1 set to {upper}"))
                .is_some(),
            "no admin log line; log:\n{}",
            lb.log()
        );
        // Effective at once: the snapshot is published before the answer.
        let before = s1.traffic();
        assert_eq!(spread(&lb, fe, 6), BTreeMap::from([("s2".to_string(), 6)]));
        assert_eq!(s1.traffic(), before, "{upper} server got a new connection");
        let stats = json(st, auth);
        let s = server_json(&stats, "s1");
        assert_eq!(s["state"], upper.as_str());
        assert_eq!(
            s["health"], "UP",
            "health checks keep running under {upper}"
        );
        assert!(
            s["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("set to {upper} by {USER}")),
            "{s}"
        );
        assert_eq!(s["conns"], 1, "the established connection is still counted");
        finish_cleanly(&lb, held);

        let answer = admin(st, auth, "s1", "ready");
        assert_eq!(answer["state"], "UP");
        let counts = spread(&lb, fe, 4);
        assert_eq!(
            counts.get("s1"),
            Some(&2),
            "READY restores round robin: {counts:?}"
        );
    }
}

#[test]
fn metrics_parse_and_count_what_clients_did() {
    let echo = Backend::echo();
    let port = free_port();
    let st = stats_addr();
    let lb = Ringlb::start(&stats_config(port, st, false, "", &servers(&[echo.addr()])));
    const CONNS: usize = 7;
    const SIZE: usize = 10_000;
    for i in 0..CONNS {
        let mut s = connect(frontend(port));
        let data = seeded_bytes(i as u64, SIZE);
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut s, SIZE * 2).unwrap(), data);
    }
    // Counters land when the connections end on ringlb's side.
    let ended = wait_for(Duration::from_secs(5), || {
        (lb.conn_lines().len() == CONNS).then_some(())
    });
    assert!(ended.is_some(), "log:\n{}", lb.log());

    let a = request(st, "GET", "/metrics", None, None);
    assert_eq!(a.status, 200);
    let m = openmetrics::parse(&a.body).unwrap_or_else(|e| panic!("{e}\n{}", a.body));
    for f in &m.families {
        assert!(
            f.name.starts_with("ringlb_") || f.name.starts_with("process_"),
            "{}",
            f.name
        );
        if f.kind == "counter" {
            assert!(
                f.samples.iter().all(|s| s.name.ends_with("_total")),
                "{}",
                f.name
            );
        }
    }
    let fe = [("frontend", "fe")];
    let sv = [("backend", "be"), ("server", "s1")];
    let bytes = (CONNS * SIZE) as f64;
    assert_eq!(
        m.value("ringlb_frontend_connections_total", &fe),
        CONNS as f64
    );
    assert_eq!(m.value("ringlb_frontend_received_bytes_total", &fe), bytes);
    assert_eq!(m.value("ringlb_frontend_sent_bytes_total", &fe), bytes);
    assert_eq!(m.value("ringlb_frontend_current_connections", &fe), 0.0);
    assert_eq!(
        m.value("ringlb_server_connections_total", &sv),
        CONNS as f64
    );
    assert_eq!(m.value("ringlb_server_sent_bytes_total", &sv), bytes);
    assert_eq!(m.value("ringlb_server_received_bytes_total", &sv), bytes);
    assert_eq!(m.value("ringlb_server_connect_errors_total", &sv), 0.0);
    assert_eq!(
        m.value("ringlb_server_state", &[("server", "s1"), ("state", "UP")]),
        1.0
    );
    assert_eq!(m.value("ringlb_workers", &[]), 2.0);
    assert_eq!(
        m.family("ringlb_uptime_seconds").unwrap().unit.as_deref(),
        Some("seconds")
    );
    for h in [
        "ringlb_server_connect_seconds",
        "ringlb_server_connection_duration_seconds",
    ] {
        let fam = m.family(h).unwrap_or_else(|| panic!("no {h}"));
        assert_eq!(fam.kind, "histogram");
        assert_eq!(m.value(&format!("{h}_count"), &sv), CONNS as f64);
        let buckets: Vec<f64> = fam
            .samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .map(|s| s.value)
            .collect();
        assert!(
            buckets.windows(2).all(|w| w[0] <= w[1]),
            "{h} buckets not cumulative"
        );
        assert_eq!(
            m.value(&format!("{h}_bucket"), &[("server", "s1"), ("le", "+Inf")]),
            CONNS as f64
        );
        assert!(m.value(&format!("{h}_sum"), &sv) > 0.0);
    }
    let stats = json(st, None);
    assert_eq!(stats["frontends"][0]["bytes_in"], (CONNS * SIZE) as u64);
    assert_eq!(
        server_json(&stats, "s1")["duration_ms"]["count"],
        CONNS as u64
    );
}

/// Debian's chromium, when installed (scripts/test installs it; CI must have it).
fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed: scripts/test installs it"
        );
        eprintln!(
            "stats: chromium test skipped: chromium is not installed (apt-get install chromium)"
        );
    }
    found
}

/// Runs headless Chromium with `args` on `url`, bounded in time; returns its stdout.
fn run_chromium(bin: &str, profile: &Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let status = wait_for(Duration::from_secs(40), || {
        child.try_wait().expect("try_wait")
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium did not finish within 40 s");
    }
    reader.join().expect("stdout reader")
}

#[test]
fn chromium_renders_both_servers_and_a_stopped_one_down_with_its_reason() {
    let Some(bin) = chromium() else { return };
    let (s1, mut s2) = (NamedServer::start("s1"), NamedServer::start("s2"));
    let port = free_port();
    let st = stats_addr();
    let lb = Ringlb::start(&stats_config(
        port,
        st,
        false,
        CHECK,
        &servers(&[s1.addr(), s2.addr()]),
    ));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(5));
    for _ in 0..6 {
        must_fetch_name(&lb, frontend(port));
    }
    s2.stop();
    lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(5));

    let dir = temp_dir("chromium");
    let url = format!("http://{st}/");
    let dom = run_chromium(bin, &dir.join("profile"), &["--dump-dom"], &url);
    let row = |server: &str| {
        let at = dom
            .find(&format!("data-server=\"be/{server}\""))
            .unwrap_or_else(|| panic!("no row for {server} in:\n{dom}"));
        let end = dom[at..].find("</tr>").map_or(dom.len(), |e| at + e);
        dom[at..end].to_string()
    };
    let (r1, r2) = (row("s1"), row("s2"));
    assert!(
        r1.contains("data-state=\"UP\"") && r1.contains(">UP<"),
        "{r1}"
    );
    assert!(
        r2.contains("data-state=\"DOWN\"") && r2.contains(">DOWN<"),
        "{r2}"
    );
    assert!(
        r2.contains("connection refused"),
        "the reason is shown: {r2}"
    );
    assert!(r1.contains(">s1<") && r2.contains(">s2<"));

    let shot = dir.join("stats.png");
    run_chromium(
        bin,
        &dir.join("profile"),
        &[
            "--window-size=1440,600",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a PNG of a page"
    );
    // `RINGLB_STATS_SCREENSHOT=docs/stats.png cargo test --test stats chromium` refreshes
    // the README's picture.
    if let Some(keep) = std::env::var_os("RINGLB_STATS_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("copy screenshot");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn admin_settings_survive_reloads_until_the_file_changes_the_server() {
    let (s1, s2) = (NamedServer::start("s1"), NamedServer::start("s2"));
    let (port, st) = (free_port(), stats_addr());
    let auth = Some((USER, PASSWORD));
    let text = |w1: u32| {
        let servers = weighted_servers(&[(s1.addr(), w1), (s2.addr(), 1)]);
        stats_config(port, st, true, CHECK, &servers)
    };
    let lb = Ringlb::start(&text(1));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(5));
    let reloaded = |n: usize, word: &str| {
        lb.send_signal(nix::sys::signal::Signal::SIGHUP);
        let prefix = format!("ringlb: reload #{n} {word}");
        let line = lb.wait_for_line(Duration::from_secs(5), |l| l.starts_with(&prefix));
        assert!(line.is_some(), "no {prefix:?}; log:\n{}", lb.log());
        json(st, auth)
    };
    assert_eq!(admin(st, auth, "s1", "drain")["state"], "DRAIN");

    // The file did not change s1: its DRAIN stays.
    let stats = reloaded(1, "ok");
    assert_eq!(server_json(&stats, "s1")["state"], "DRAIN");
    assert_eq!(stats["process"]["last_reload"]["number"], 1);
    assert_eq!(stats["process"]["last_reload"]["ok"], true);
    assert_eq!(
        spread(&lb, frontend(port), 4),
        BTreeMap::from([("s2".into(), 4)])
    );

    // The file changes s1's weight: the admin setting gives way to the file.
    std::fs::write(lb.config_path(), text(2)).unwrap();
    let stats = reloaded(2, "ok");
    let s = server_json(&stats, "s1");
    assert_eq!(
        (&s["state"], &s["admin"], &s["weight"]),
        (&"UP".into(), &"READY".into(), &2.into())
    );
    assert!(lb.log().contains("ringlb: admin setting of be/s1 dropped"));

    std::fs::write(lb.config_path(), "{ not json").unwrap();
    let stats = reloaded(3, "failed");
    let last = &stats["process"]["last_reload"];
    assert_eq!((&last["number"], &last["ok"]), (&3.into(), &false.into()));
    assert!(last["summary"]
        .as_str()
        .unwrap()
        .contains("configuration invalid"));
    let m = openmetrics::parse(&get(st, "/metrics").body).unwrap();
    assert_eq!(m.value("ringlb_reloads_total", &[]), 3.0);
    assert_eq!(m.value("ringlb_reload_failures_total", &[]), 1.0);
    assert_eq!(m.value("ringlb_last_reload_success", &[]), 0.0);
}
