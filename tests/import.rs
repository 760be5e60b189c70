//! `ringlb import` run as users run it: the seed tutorials' configs (fixtures under
//! `tests/import/`, with the expected JSON and report), Debian's shipped haproxy.cfg and
//! keepalived's sample configs when installed, malformed files, and the files of
//! `../shared/import-cases/` when that folder exists. Every output must pass `--check`.

pub mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{run_check, temp_dir};

const FIXTURES: &str = "tests/import";
/// The smallest haproxy.cfg, to import a keepalived.conf beside.
const MINIMAL_HAPROXY: &str = "frontend web\n  bind 192.0.2.10:80\n  default_backend webfarm\n\
    backend webfarm\n  timeout connect 5s\n  timeout client 50s\n  timeout server 50s\n  \
    server web1 192.0.2.21:80 check\n";

fn import(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringlb"));
    cmd.arg("import").arg("--haproxy").arg(args[0]);
    if let Some(k) = args.get(1) {
        cmd.arg("--keepalived").arg(k);
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run ringlb import")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An import that produced a configuration: exit 0 or 2, and the output passes --check.
fn assert_converted(out: &Output, what: &str) -> String {
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(2),
        "{what}: exit {code:?}\n{}",
        text(&out.stderr)
    );
    let (check, _) = run_check("imported.json", &text(&out.stdout));
    assert!(
        check.status.success(),
        "{what}: the output fails --check:\n{}\n{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    text(&out.stderr)
}

#[test]
fn the_seed_tutorials_convert_to_the_expected_json() {
    let h = Path::new(FIXTURES).join("seeds-haproxy.cfg");
    let k = Path::new(FIXTURES).join("seeds-keepalived.conf");
    let out = import(&[&h, &k]);
    let report = assert_converted(&out, "seeds");
    assert_eq!(out.status.code(), Some(2), "something is left out: partial");
    let want_json = fs::read_to_string(Path::new(FIXTURES).join("seeds.json")).unwrap();
    let want_report = fs::read_to_string(Path::new(FIXTURES).join("seeds.report")).unwrap();
    assert_eq!(text(&out.stdout), want_json);
    assert_eq!(report, want_report);
}

#[test]
fn output_file_and_a_complete_import() {
    let dir = temp_dir("import");
    let h = dir.join("haproxy.cfg");
    fs::write(&h, MINIMAL_HAPROXY).unwrap();
    let o = dir.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["import", "--haproxy"])
        .arg(&h)
        .arg("-o")
        .arg(&o)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let (check, _) = run_check("out.json", &fs::read_to_string(&o).unwrap());
    assert!(check.status.success());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn malformed_files_are_clear_errors_with_their_line() {
    let dir = temp_dir("import");
    let cases: &[(&str, &str, &str)] = &[
        ("h", "global\n  maxconn 10\n  log 'x\n", "3: a single quote is not closed"),
        ("h", "  maxconn 10\n", "1: `maxconn` is outside any section (one starts with global, defaults, frontend, backend or listen)"),
        ("h", "global\nlisten\n", "2: `listen` needs a name"),
        ("h", "global\n  x \\xZ1\n", "2: \\xZ1 is not a \\xHH escape"),
        ("k", "vrrp_instance VI_1 {\n  state MASTER\n", "1: the block of `vrrp_instance` is not closed (a `}` is missing)"),
        ("k", "vrrp_instance VI_1 {\n}\n}\n", "3: `}` closes no block"),
        ("k", "vrrp_script x {\n  script \"killall\n}\n", "2: a double quote is not closed"),
    ];
    let h_ok = dir.join("ok.cfg");
    fs::write(&h_ok, MINIMAL_HAPROXY).unwrap();
    for (i, (which, content, want)) in cases.iter().enumerate() {
        let bad = dir.join(format!("bad-{i}"));
        fs::write(&bad, content).unwrap();
        let out = if *which == "h" {
            import(&[&bad])
        } else {
            import(&[&h_ok, &bad])
        };
        assert_eq!(out.status.code(), Some(1), "{content:?}");
        assert_eq!(
            text(&out.stderr),
            format!("{}:{want}\n", bad.display()),
            "{content:?}"
        );
        assert!(out.stdout.is_empty());
    }
    let missing = dir.join("missing.cfg");
    let out = import(&[&missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("ringlb import: cannot read "));
    // A usage error is an error (1), not a partial import (2).
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["import", "--keepalived", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let _ = fs::remove_dir_all(&dir);
}

/// A backend whose servers are all host names (ringlb takes addresses) is kept without
/// servers, as HAProxy keeps one it cannot resolve: the frontend converts, every left-out
/// server is named, the import is partial and passes --check.
#[test]
fn a_backend_of_host_names_is_kept_without_servers() {
    let dir = temp_dir("import");
    let h = dir.join("haproxy.cfg");
    fs::write(
        &h,
        "defaults\n  mode tcp\nlisten db\n  bind *:3306\n  server db1 db1.lan:3306 check\n",
    )
    .unwrap();
    let out = import(&[&h]);
    let report = assert_converted(&out, "host names");
    assert_eq!(out.status.code(), Some(2), "partial: {report}");
    let h = h.display();
    for want in [
        format!("{h}:3: db has no usable server left: kept without servers, its clients are closed until you add them\n"),
        format!("{h}:5: server db1: \"db1.lan\" is a host name; ringlb takes IP addresses only: left out (resolve it and put the address)\n"),
    ] {
        assert!(report.contains(&want), "no {want:?} in\n{report}");
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["frontends"][0]["backend"], "db");
    assert_eq!(json["backends"][0]["servers"], serde_json::json!([]));
    let _ = fs::remove_dir_all(&dir);
}

/// Debian's haproxy.cfg has global and defaults only: alone there is nothing to forward;
/// with a proxy after it, as users write theirs, it converts.
#[test]
fn debian_haproxy_cfg_when_installed() {
    let debian = Path::new("/etc/haproxy/haproxy.cfg");
    let Ok(shipped) = fs::read_to_string(debian) else {
        eprintln!("skipped: {} is not installed", debian.display());
        return;
    };
    let out = import(&[debian]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).ends_with(
        "ringlb import: nothing to forward: no frontend could be converted (see above)\n"
    ));
    let dir = temp_dir("import");
    let h = dir.join("haproxy.cfg");
    fs::write(
        &h,
        format!("{shipped}\nlisten web\n  bind 127.0.0.1:8080\n  server a 127.0.0.1:8081 check\n"),
    )
    .unwrap();
    let out = import(&[&h]);
    let report = assert_converted(&out, "Debian's haproxy.cfg");
    assert!(
        report.contains("mode http (web): forwarded as TCP"),
        "{report}"
    );
    assert!(
        report.contains("errorfile: HTTP only, left out"),
        "{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// keepalived's own samples, each beside the smallest haproxy.cfg.
#[test]
fn keepalived_samples_when_installed() {
    let samples = Path::new("/usr/share/doc/keepalived/samples");
    let Ok(entries) = fs::read_dir(samples) else {
        eprintln!("skipped: {} is not installed", samples.display());
        return;
    };
    let dir = temp_dir("import");
    let h = dir.join("haproxy.cfg");
    fs::write(&h, MINIMAL_HAPROXY).unwrap();
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("keepalived.conf"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for k in &files {
        let out = import(&[&h, k]);
        assert_converted(&out, &k.display().to_string());
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The files of `../shared/import-cases/` (public projects' configs, never copied here):
/// each converts to a config that passes --check (a backend whose servers are all host
/// names is kept without servers); the oddities SOURCES.md lists are reported with their
/// lines.
#[test]
fn import_cases_when_present() {
    let cases = Path::new("../shared/import-cases");
    if !cases.is_dir() {
        eprintln!("skipped: {} is not here", cases.display());
        return;
    }
    let case = |name: &str| cases.join(name);
    let dir = temp_dir("import");
    let minimal = dir.join("haproxy.cfg");
    fs::write(&minimal, MINIMAL_HAPROXY).unwrap();

    // file, lines the report must name.
    let haproxy: &[(&str, &[&str])] = &[
        ("haproxy-01.cfg", &[":20: note: sni_proxy: no default_backend", ":30: \"zv.xx.yy\" looks like a placeholder", ":31:", ":32:"]),
        ("haproxy-02.cfg", &[":16: stats without auth", ":23: on-marked-down shutdown-sessions"]),
        ("haproxy-03.cfg", &[":36: server bootstrap: \"bootstrap.kube1.okd412.piensoluegoinstalo.com\" is a host name"]),
        ("haproxy-04.cfg", &[":116: server vultr-trojan-us: \"xx.xx.xx.xx\" is a placeholder, not an address: left out (put the real address)", ":36: nbproc"]),
        ("haproxy-05.cfg", &[":40: server mysql2: \"mysql2\" is a host name"]),
        ("haproxy-06.cfg", &[":32: server redis1: \"redis1\" is a host name"]),
        ("haproxy-07.cfg", &[":46: log-format", ":65: bind \"/tmp/haproxy-tls-termination.sock\" is not a TCP address", ":65: bind ... ssl", ":90: server pages_server: \"pages\" is a host name"]),
        ("haproxy-08.cfg", &[":14: listen http_health_check has no server: left out", ":53: cookie persistence", ":55: option forwardfor"]),
    ];
    for (name, lines) in haproxy {
        let path = case(name);
        let out = import(&[&path]);
        let report = assert_converted(&out, name);
        for line in *lines {
            let want = format!("{}{line}", path.display());
            assert!(report.contains(&want), "{name}: no {want:?} in\n{report}");
        }
    }
    let keepalived: &[(&str, &[&str])] = &[
        ("keepalived-01.conf", &[":44: note: state MASTER"]),
        (
            "keepalived-02.conf",
            &[":53: note: auth_pass: keepalived sends its first 8 bytes"],
        ),
        ("keepalived-03.conf", &[":6: note: state BACKUP"]),
        ("keepalived-04.conf", &[":6: note: state MASTER"]),
    ];
    for (name, lines) in keepalived {
        let path = case(name);
        let out = import(&[&minimal, &path]);
        let report = assert_converted(&out, name);
        assert!(text(&out.stdout).contains("\"instances\""), "{name}");
        for line in *lines {
            let want = format!("{}{line}", path.display());
            assert!(report.contains(&want), "{name}: no {want:?} in\n{report}");
        }
    }
    // The pairs that belong together: their servers are host names, kept out of backends
    // that still convert with their VRRP instances.
    for (h, k) in [
        ("haproxy-05.cfg", "keepalived-02.conf"),
        ("haproxy-06.cfg", "keepalived-04.conf"),
    ] {
        let out = import(&[&case(h), &case(k)]);
        let report = assert_converted(&out, h);
        assert!(text(&out.stdout).contains("\"instances\""), "{h}");
        assert!(report.contains(&case(k).display().to_string()), "{report}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The subcommand leaves the main command line as it was.
#[test]
fn ringlb_c_file_works_as_before() {
    let dir = temp_dir("import");
    let h = dir.join("haproxy.cfg");
    fs::write(&h, MINIMAL_HAPROXY).unwrap();
    let out = import(&[&h]);
    let conf = dir.join("ringlb.json");
    fs::write(&conf, &out.stdout).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ringlb"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let path = conf.to_str().unwrap();
    let out = run(&["-c", path, "--check", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{path}: configuration is valid\n")
    );
    let out = run(&["--check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--config <FILE>"));
    let out = run(&["-c", path, "import", "--haproxy", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = fs::remove_dir_all(&dir);
}
