//! Parsing and validation of whole documents, with the exact messages users see.

use super::*;

const MINIMAL: &str = r#"{ "workers": 2,
  "frontends": [ { "name": "web", "bind": ["127.0.0.1:8000"], "backend": "webfarm" } ],
  "backends":  [ { "name": "webfarm", "balance": "roundrobin",
                   "servers": [ { "name": "web1", "addr": "127.0.0.1:8081" },
                                { "name": "web2", "addr": "127.0.0.1:8082", "weight": 2 } ] } ] }"#;

fn errors(text: &str) -> String {
    parse("x.json", text).unwrap_err().to_string()
}

#[test]
fn minimal_file_from_the_issue() {
    let c = parse("x.json", MINIMAL).unwrap();
    assert_eq!(c.workers, Some(2));
    assert_eq!(c.frontends[0].backend, 0);
    assert_eq!(c.frontends[0].forward, Forward::Auto);
    assert!(c.frontends[0].log);
    let b = &c.backends[0];
    assert_eq!(b.retries, 3);
    assert_eq!(b.timeouts, DEFAULT_TIMEOUTS);
    assert_eq!(b.servers[1].weight, 2);
    assert_eq!(b.servers[0].weight, 1);
    assert_eq!(c.grace, DEFAULT_GRACE);
}

#[test]
fn ipv6_and_optional_fields() {
    let c = parse(
        "x.json",
        r#"{ "maxconn": 100, "grace": "3s",
  "frontends": [ { "name": "f", "bind": ["[::1]:80", "127.0.0.1:80"], "backend": "b",
                   "maxconn": 10, "forward": "splice", "log": false } ],
  "backends": [ { "name": "b", "retries": 0,
                  "timeouts": { "connect": "250ms", "client": "1m", "server": "2h" },
                  "servers": [ { "name": "s", "addr": "[::1]:81" } ] } ] }"#,
    )
    .unwrap();
    assert_eq!(c.frontends[0].bind[0], "[::1]:80".parse().unwrap());
    assert_eq!(c.frontends[0].forward, Forward::Splice);
    assert_eq!(c.backends[0].timeouts.connect, Duration::from_millis(250));
    assert_eq!(c.backends[0].timeouts.server, Duration::from_secs(7200));
    assert_eq!(c.backends[0].retries, 0);
    assert_eq!(c.grace, Duration::from_secs(3));
}

#[test]
fn bad_address_names_path_line_and_column() {
    let text = MINIMAL.replace("127.0.0.1:8082", "127.0.0.1");
    assert_eq!(
        errors(&text),
        "x.json: backends[0].servers[1].addr: \"127.0.0.1\" is not ip:port (line 5, column 69)"
    );
}

#[test]
fn unknown_field_and_type_errors() {
    let text = MINIMAL.replace("\"balance\"", "\"balanse\"");
    assert!(
        errors(&text)
            .starts_with("x.json: backends[0].balanse: unknown field `balanse`, expected one of"),
        "{}",
        errors(&text)
    );
    let text = MINIMAL.replace("\"workers\": 2", "\"workers\": \"two\"");
    assert_eq!(
        errors(&text),
        "x.json: workers: invalid type: string \"two\", expected usize (line 1, column 18)"
    );
}

#[test]
fn syntax_error_has_position() {
    let text = MINIMAL.replace("\"web\",", "\"web\"");
    assert_eq!(
        errors(&text),
        "x.json: frontends[0]: expected `,` or `}` (line 2, column 34)"
    );
    assert_eq!(
        errors(""),
        "x.json: EOF while parsing a value (line 1, column 0)"
    );
    assert!(errors(&format!("{MINIMAL} x")).contains("trailing characters"));
}

#[test]
fn every_semantic_problem_is_reported() {
    let text = r#"{
  "frontends": [
    { "name": "web", "bind": ["127.0.0.1:0"], "backend": "nope" },
    { "name": "web", "bind": [], "backend": "empty" }
  ],
  "backends": [
    { "name": "empty", "servers": [] },
    { "name": "zero", "timeouts": { "connect": "0s" },
      "servers": [ { "name": "a", "addr": "127.0.0.1:1", "weight": 0 },
                   { "name": "a", "addr": "127.0.0.1:0", "weight": 0 } ] },
    { "name": "zero", "servers": [ { "name": "a", "addr": "127.0.0.1:1", "weight": 300 } ] }
  ]
}"#;
    let got = errors(text);
    let want = [
        "x.json: frontends[0].bind[0]: port 0 is not allowed (line 3, column 31)",
        "x.json: frontends[0].backend: unknown backend \"nope\" (line 3, column 58)",
        "x.json: frontends[1].name: duplicate frontend name \"web\" (first at frontends[0]) (line 4, column 15)",
        "x.json: frontends[1].bind: at least one address is required (line 4, column 30)",
        "x.json: backends[0].servers: backend \"empty\" has no servers (line 7, column 35)",
        "x.json: backends[1].timeouts.connect: must be greater than zero (line 8, column 48)",
        "x.json: backends[1].servers: every server of backend \"zero\" has weight 0 (line 9, column 18)",
        "x.json: backends[1].servers[1].name: duplicate server name \"a\" (first at servers[0]) (line 10, column 30)",
        "x.json: backends[1].servers[1].addr: port 0 is not allowed (line 10, column 43)",
        "x.json: backends[2].name: duplicate backend name \"zero\" (first at backends[1]) (line 11, column 15)",
        "x.json: backends[2].servers[0].weight: 300 is out of range (0 to 256) (line 11, column 84)",
    ];
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}

#[test]
fn duplicate_bind_and_zero_limits() {
    let text = r#"{ "workers": 0, "maxconn": 0,
  "frontends": [ { "name": "a", "bind": ["127.0.0.1:80"], "backend": "b", "maxconn": 0 },
                 { "name": "c", "bind": ["127.0.0.1:80"], "backend": "b" } ],
  "backends": [ { "name": "b", "servers": [ { "name": "s", "addr": "127.0.0.1:81" } ] } ] }"#;
    let got = errors(text);
    let want = [
        "x.json: workers: must be at least 1 (line 1, column 14)",
        "x.json: maxconn: must be at least 1 (line 1, column 28)",
        "x.json: frontends[0].maxconn: must be at least 1 (line 2, column 86)",
        "x.json: frontends[1].bind[0]: 127.0.0.1:80 is already bound at frontends[0].bind[0] (line 3, column 42)",
    ];
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}
