//! `ringlb -c FILE --check`: exit 0 with a confirmation on a good file, exit 1 with every
//! problem, one exact message per line (`FILE: JSON.path: message (line L, column C)`).
//!
//! Positions are computed here from the text of each config: syntax and type errors point at
//! the last character of the offending token (where serde_json stops), semantic errors at the
//! first character of the offending value.

pub mod common;

use std::path::Path;

use common::run_check;

const GOOD: &str = r#"{
  "workers": 2,
  "grace": "3s",
  "frontends": [
    { "name": "web", "bind": ["127.0.0.1:8000", "[::1]:8000"], "backend": "webfarm",
      "forward": "splice", "log": true, "maxconn": 100 }
  ],
  "backends": [
    { "name": "webfarm", "balance": "roundrobin", "retries": 2,
      "timeouts": { "connect": "250ms", "client": "1m", "server": "50s" },
      "servers": [
        { "name": "web1", "addr": "127.0.0.1:8081", "weight": 1 },
        { "name": "web2", "addr": "127.0.0.1:8082", "weight": 2 }
      ] }
  ]
}
"#;

/// `(line L, column C)` of the `nth` (from 0) occurrence of `needle` in `text`; `at_end`
/// selects its last character instead of its first. Columns count characters from 1.
fn position(text: &str, needle: &str, nth: usize, at_end: bool) -> String {
    let (offset, _) = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} occurs fewer than {} times", nth + 1));
    let offset = if at_end {
        offset + needle.len() - 1
    } else {
        offset
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    format!("(line {line}, column {column})")
}

fn start(text: &str, needle: &str) -> String {
    position(text, needle, 0, false)
}

fn end(text: &str, needle: &str) -> String {
    position(text, needle, 0, true)
}

/// Replaces exactly one occurrence of `from` in the good config.
fn good_with(from: &str, to: &str) -> String {
    assert_eq!(
        GOOD.matches(from).count(),
        1,
        "{from:?} must occur once in GOOD"
    );
    GOOD.replace(from, to)
}

/// Runs `--check` on `text` and requires exit status 1, nothing on stdout and exactly
/// `expected` (one line per error, each prefixed with the file name) on stderr.
fn assert_rejected(text: &str, expected: &[String]) {
    let (out, path) = run_check("bad.json", text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want: String = expected
        .iter()
        .map(|e| format!("{}: {e}\n", path.display()))
        .collect();
    assert_eq!(stderr, want, "stderr of --check");
    assert_eq!(out.status.code(), Some(1), "exit status of --check");
    assert!(
        out.stdout.is_empty(),
        "stdout of a failed --check: {:?}",
        out.stdout
    );
}

#[test]
fn good_config_passes() {
    let (out, path) = run_check("good.json", GOOD);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: configuration is valid\n", path.display())
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn missing_file() {
    let path = Path::new("/nonexistent/ringlb-test.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["-c", "/nonexistent/ringlb-test.json", "--check"])
        .output()
        .expect("run ringlb");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: cannot read: No such file or directory (os error 2)\n",
            path.display()
        )
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn syntax_error() {
    // A missing comma between two members of the first frontend.
    let text = good_with(r#""web","#, r#""web""#);
    assert_rejected(
        &text,
        &[format!(
            "frontends[0]: expected `,` or `}}` {}",
            start(&text, r#""bind""#)
        )],
    );
}

#[test]
fn trailing_garbage() {
    let text = format!("{GOOD}}}");
    let last_line = GOOD.lines().count() + 1;
    assert_rejected(
        &text,
        &[format!("trailing characters (line {last_line}, column 1)")],
    );
}

/// Like `assert_rejected` for one unknown-field error at `json_path`. The list of expected
/// fields is serde's and grows with the schema, so it is checked to be a list of
/// backquoted names holding at least `known`, not compared whole.
fn assert_unknown_field(text: &str, json_path: &str, field: &str, known: &[&str], at: &str) {
    let (out, path) = run_check("bad.json", text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!(
        "{}: {json_path}: unknown field `{field}`, expected one of ",
        path.display()
    );
    let suffix = format!(" {at}\n");
    let list = stderr
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(&suffix))
        .unwrap_or_else(|| {
            panic!("stderr of --check: {stderr:?}, expected {prefix:?}...{suffix:?}")
        });
    let names: Vec<&str> = list
        .split(", ")
        .map(|n| {
            n.strip_prefix('`')
                .and_then(|n| n.strip_suffix('`'))
                .unwrap_or_else(|| panic!("{n:?} in {list:?} is not a backquoted field name"))
        })
        .collect();
    for k in known {
        assert!(
            names.contains(k),
            "`{k}` missing from the expected fields {list:?}"
        );
    }
    assert!(
        !names.contains(&field),
        "the unknown field is listed as expected: {list:?}"
    );
    assert_eq!(out.status.code(), Some(1), "exit status of --check");
    assert!(
        out.stdout.is_empty(),
        "stdout of a failed --check: {:?}",
        out.stdout
    );
}

#[test]
fn unknown_field() {
    let text = good_with(r#""weight": 2"#, r#""wieght": 2"#);
    assert_unknown_field(
        &text,
        "backends[0].servers[1].wieght",
        "wieght",
        &["name", "addr", "weight"],
        &end(&text, r#""wieght""#),
    );
}

#[test]
fn unknown_top_level_field() {
    let text = good_with(r#""grace": "3s","#, r#""grace": "3s", "graze": "1s","#);
    assert_unknown_field(
        &text,
        "graze",
        "graze",
        &["workers", "maxconn", "grace", "frontends", "backends"],
        &end(&text, r#""graze""#),
    );
}

#[test]
fn address_without_port() {
    let text = good_with(r#""127.0.0.1:8082""#, r#""127.0.0.1""#);
    assert_rejected(
        &text,
        &[format!(
            r#"backends[0].servers[1].addr: "127.0.0.1" is not ip:port {}"#,
            end(&text, r#""127.0.0.1""#)
        )],
    );
}

#[test]
fn wrong_type() {
    let text = good_with(r#""retries": 2"#, r#""retries": "2""#);
    assert_rejected(
        &text,
        &[format!(
            r#"backends[0].retries: invalid type: string "2", expected u32 {}"#,
            end(&text, r#""retries": "2""#)
        )],
    );
}

#[test]
fn bad_duration() {
    let text = good_with(r#""250ms""#, r#""5 seconds""#);
    assert_rejected(
        &text,
        &[format!(
            r#"backends[0].timeouts.connect: "5 seconds" is not a duration (expected e.g. "250ms", "5s", "1m") {}"#,
            end(&text, r#""5 seconds""#)
        )],
    );
}

#[test]
fn bad_forward_mode() {
    let text = good_with(r#""splice""#, r#""zerocopy""#);
    assert_rejected(
        &text,
        &[format!(
            "frontends[0].forward: unknown variant `zerocopy`, expected one of `splice`, `copy`, `auto` {}",
            end(&text, r#""zerocopy""#)
        )],
    );
}

#[test]
fn unknown_backend() {
    let text = good_with(r#""backend": "webfarm""#, r#""backend": "webfram""#);
    assert_rejected(
        &text,
        &[format!(
            r#"frontends[0].backend: unknown backend "webfram" {}"#,
            start(&text, r#""webfram""#)
        )],
    );
}

#[test]
fn duplicate_server_names() {
    let text = good_with(r#""name": "web2""#, r#""name": "web1""#);
    assert_rejected(
        &text,
        &[format!(
            r#"backends[0].servers[1].name: duplicate server name "web1" (first at servers[0]) {}"#,
            position(&text, r#""web1""#, 1, false)
        )],
    );
}

#[test]
fn duplicate_backend_names() {
    let text = good_with(
        "  ]\n}\n",
        "  , { \"name\": \"webfarm\", \"servers\": [ { \"name\": \"x\", \"addr\": \"127.0.0.1:9\" } ] }\n  ]\n}\n",
    );
    assert_rejected(
        &text,
        &[format!(
            r#"backends[1].name: duplicate backend name "webfarm" (first at backends[0]) {}"#,
            position(&text, r#""webfarm""#, 2, false)
        )],
    );
}

#[test]
fn backend_without_servers_is_valid_with_a_warning() {
    // HAProxy takes a backend with no server (its clients get "no server available"); so
    // does ringlb, and `--check` says what that means.
    let from = GOOD
        .split_once(r#""servers": ["#)
        .map(|(_, rest)| rest.split_once("] }").unwrap().0)
        .unwrap();
    let text = good_with(&format!(r#""servers": [{from}]"#), r#""servers": []"#);
    let (out, path) = run_check("empty.json", &text);
    assert_eq!(out.status.code(), Some(0), "exit status of --check");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: warning: backends[0].servers: backend \"webfarm\" has no servers: its \
             connections are closed at once, as HAProxy's \"no server available\" (add servers \
             and reload) {}\n",
            path.display(),
            start(&text, "[]")
        )
    );
}

#[test]
fn port_zero() {
    let text = good_with(r#""127.0.0.1:8000""#, r#""127.0.0.1:0""#);
    assert_rejected(
        &text,
        &[format!(
            "frontends[0].bind[0]: port 0 is not allowed {}",
            start(&text, r#""127.0.0.1:0""#)
        )],
    );
}

#[test]
fn weight_zero_on_every_server() {
    let text =
        good_with(r#""weight": 1"#, r#""weight": 0"#).replace(r#""weight": 2"#, r#""weight": 0"#);
    assert_rejected(
        &text,
        &[format!(
            r#"backends[0].servers: every server of backend "webfarm" has weight 0 {}"#,
            start(&text, "[\n        {")
        )],
    );
}

/// Several semantic problems in one file are all reported, in document order.
#[test]
fn every_problem_is_reported() {
    let text = r#"{
  "workers": 0,
  "frontends": [
    { "name": "web", "bind": ["127.0.0.1:0"], "backend": "nope" },
    { "name": "web", "bind": ["127.0.0.1:8001"], "backend": "pool" }
  ],
  "backends": [
    { "name": "pool", "timeouts": { "server": "0s" },
      "servers": [ { "name": "a", "addr": "127.0.0.1:9001", "weight": 300 } ] },
    { "name": "pool", "servers": [] }
  ]
}
"#;
    let expected = [
        format!("workers: must be at least 1 {}", start(text, "0,")),
        format!(
            "frontends[0].bind[0]: port 0 is not allowed {}",
            start(text, r#""127.0.0.1:0""#)
        ),
        format!(
            r#"frontends[0].backend: unknown backend "nope" {}"#,
            start(text, r#""nope""#)
        ),
        format!(
            r#"frontends[1].name: duplicate frontend name "web" (first at frontends[0]) {}"#,
            position(text, r#""web""#, 1, false)
        ),
        format!(
            "backends[0].timeouts.server: must be greater than zero {}",
            start(text, r#""0s""#)
        ),
        format!(
            "backends[0].servers[0].weight: 300 is out of range (0 to 256) {}",
            start(text, "300")
        ),
        format!(
            r#"backends[1].name: duplicate backend name "pool" (first at backends[0]) {}"#,
            position(text, r#""pool""#, 2, false)
        ),
    ];
    assert_rejected(text, &expected);
}

#[test]
fn a_handoff_without_nft_on_the_host_is_named() {
    // `--check` may run on another machine: what this host lacks is a warning there (start
    // and reload refuse it). A PATH without `nft` stands for a host without nftables.
    let text = GOOD
        .replace("127.0.0.1:8000\", \"[::1]:8000", "192.0.2.9:8000")
        .replacen(
            "\"frontends\"",
            "\"announce\": { \"vips\": [\"192.0.2.9\"], \"handoff\": { \"peers\": [\"192.0.2.10\"] } },\n  \"frontends\"",
            1,
        );
    let dir = std::env::temp_dir().join(format!("ringlb-check-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("handoff.json");
    std::fs::write(&path, &text).expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("-c")
        .arg(&path)
        .arg("--check")
        .env("PATH", &dir)
        .output()
        .expect("run ringlb --check");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0), "exit status of --check");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: warning: announce.handoff: needs the nft command, not on this host's PATH \
             (package nftables) {}\n",
            path.display(),
            start(&text, "{ \"peers\"")
        )
    );
}
