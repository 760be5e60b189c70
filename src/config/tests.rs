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
    assert_eq!(c.frontends[0].backend, Some(0));
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

const ROUTED: &str = r#"{
  "frontends": [ { "name": "tls", "bind": ["127.0.0.1:8443"], "backend": "other",
                   "accept_proxy": true, "proxy_trusted": ["10.0.0.0/8", "::1"],
                   "routes": [ { "sni": "App1.Example.org", "backend": "app1" },
                               { "sni": "*.example.org", "backend": "wild" } ],
                   "inspect_timeout": "2s", "inspect_max": 4096 } ],
  "backends": [
    { "name": "app1", "send_proxy": "v2", "proxy_tlvs": ["authority", "unique_id", "crc32c"],
      "servers": [ { "name": "a", "addr": "127.0.0.1:1" },
                   { "name": "b", "addr": "127.0.0.1:2", "send_proxy": "v1" } ] },
    { "name": "wild", "servers": [ { "name": "w", "addr": "127.0.0.1:3" } ] },
    { "name": "other", "servers": [ { "name": "o", "addr": "127.0.0.1:4" } ] } ] }"#;

#[test]
fn inspection_routes_and_send_proxy() {
    let c = parse("x.json", ROUTED).unwrap();
    let i = &c.frontends[0].inspect;
    assert!(i.accept_proxy && i.active());
    assert_eq!(i.proxy_trusted.len(), 2);
    assert!(i.expects_proxy(Some("10.1.1.1".parse().unwrap())));
    assert!(!i.expects_proxy(Some("192.0.2.1".parse().unwrap())));
    assert_eq!(i.timeout, Duration::from_secs(2));
    assert_eq!(i.max, 4096);
    assert_eq!(i.routes[0].name, "app1.example.org");
    assert!(!i.routes[0].wildcard);
    assert_eq!(i.routes[1].name, ".example.org");
    assert!(i.routes[1].wildcard);
    assert_eq!((i.routes[0].backend, i.routes[1].backend), (0, 1));
    assert_eq!(c.frontends[0].backend, Some(2));
    let b = &c.backends[0];
    assert_eq!(b.servers[0].send_proxy, Some(SendProxy::V2));
    assert_eq!(b.servers[1].send_proxy, Some(SendProxy::V1));
    assert!(b.proxy_tlvs.authority && b.proxy_tlvs.unique_id && b.proxy_tlvs.crc32c);
    assert_eq!(c.backends[1].servers[0].send_proxy, None);
    // Without a default backend, routes alone are enough.
    let text = ROUTED.replace(r#""backend": "other","#, "");
    assert_eq!(parse("x.json", &text).unwrap().frontends[0].backend, None);
}

#[test]
fn inspection_errors_name_the_field() {
    let text = ROUTED
        .replace("*.example.org", "*example.org")
        .replace(r#""backend": "wild""#, r#""backend": "wilde""#)
        .replace("4096", "100")
        .replace("10.0.0.0/8", "10.0.0.0/40");
    let e = errors(&text);
    assert!(
        e.contains("frontends[0].proxy_trusted[0]: \"10.0.0.0/40\" is not ip/prefix"),
        "{e}"
    );
    // The type error stops parsing; fix it to see the semantic ones, all at once.
    let e = errors(&text.replace("10.0.0.0/40", "10.0.0.0/8"));
    for want in [
        "frontends[0].routes[1].sni: \"*example.org\" is not a host name",
        "frontends[0].routes[1].backend: unknown backend \"wilde\"",
        "frontends[0].inspect_max: 100 is out of range (1024 to 65536 bytes)",
    ] {
        assert!(e.contains(want), "missing {want:?} in\n{e}");
    }
    let e = errors(&MINIMAL.replace(r#", "backend": "webfarm""#, ""));
    assert!(
        e.contains("frontends[0]: needs a \"backend\" (or \"routes\" by TLS server name)"),
        "{e}"
    );
    let e = errors(&ROUTED.replace(r#""send_proxy": "v2", "#, ""));
    assert!(
        e.contains("backends[0].proxy_tlvs: needs \"send_proxy\": \"v2\""),
        "{e}"
    );
    let e = errors(&MINIMAL.replace(
        r#""backend": "webfarm""#,
        r#""backend": "webfarm", "proxy_trusted": ["10.0.0.0/8"]"#,
    ));
    assert!(
        e.contains("proxy_trusted: needs \"accept_proxy\": true"),
        "{e}"
    );
}

/// Sizes that would take gigabytes or seconds to build (or, before, to test for primality)
/// are refused before any table is made, with their place.
#[test]
fn hash_table_size_is_a_bounded_prime() {
    let backend = |name: &str, size: u64| {
        format!(
            r#"{{ "name": "{name}", "balance": "source", "hash_table_size": {size},
      "servers": [ {{ "name": "s", "addr": "127.0.0.1:81" }} ] }}"#
        )
    };
    let file = |backends: &[String]| {
        format!(
            r#"{{
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:80"], "backend": "a" }} ],
  "backends": [
    {}
  ] }}"#,
            backends.join(",\n    ")
        )
    };
    let text = file(&[
        backend("a", 2_147_483_647),
        backend("b", 100_000_007),
        backend("c", 4_294_967_291),
        backend("d", 655_371),
        backend("e", 100),
    ]);
    let want = [
        "x.json: backends[0].hash_table_size: 2147483647 is out of range (a prime from 101 to 655373) (line 4, column 60)",
        "x.json: backends[1].hash_table_size: 100000007 is out of range (a prime from 101 to 655373) (line 6, column 60)",
        "x.json: backends[2].hash_table_size: 4294967291 is out of range (a prime from 101 to 655373) (line 8, column 60)",
        "x.json: backends[3].hash_table_size: 655371 is not a prime (e.g. 65537) (line 10, column 60)",
        "x.json: backends[4].hash_table_size: 100 is out of range (a prime from 101 to 655373) (line 12, column 60)",
    ];
    assert_eq!(errors(&text).lines().collect::<Vec<_>>(), want);
    let largest: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|name| backend(name, 655_373))
        .collect();
    // Four tables of the largest size fit; a fifth is past the budget of all of them.
    let c = parse("x.json", &file(&largest[..4])).unwrap();
    assert_eq!(c.backends[3].hash_table_size, MAX_HASH_TABLE_SIZE);
    assert_eq!(
        errors(&file(&largest)),
        "x.json: backends[4].hash_table_size: the \"source\" backends' hash tables reach \
         3276865 slots here, over the limit of 2621492 for all of them together (line 12, column 60)"
    );
    // Other balancing builds no table, so its size does not count.
    let mixed = file(&largest).replacen(r#""balance": "source""#, r#""balance": "random""#, 1);
    assert!(parse("x.json", &mixed).is_ok(), "{}", errors(&mixed));
}

/// Every duration field goes through the same parser, so each gets the same bound.
#[test]
fn every_duration_stops_at_a_day() {
    let over = "\"18446744073709551615ms\"";
    let cases = [
        ("grace", r#""grace": "3s""#),
        ("drain_timeout", r#""drain_timeout": "3s""#),
        ("frontends[0].inspect_timeout", r#""inspect_timeout": "3s""#),
        ("backends[0].timeouts.connect", r#""connect": "3s""#),
        ("backends[0].timeouts.client", r#""client": "3s""#),
        ("backends[0].timeouts.server", r#""server": "3s""#),
        ("backends[0].timeouts.queue", r#""queue": "3s""#),
        ("backends[0].health_check.interval", r#""interval": "3s""#),
        (
            "backends[0].health_check.fast_interval",
            r#""fast_interval": "3s""#,
        ),
        (
            "backends[0].health_check.down_interval",
            r#""down_interval": "3s""#,
        ),
        ("stats.refresh", r#""refresh": "3s""#),
        (
            "vrrp.instances[0].preempt_delay",
            r#""preempt_delay": "3s""#,
        ),
        ("vrrp.instances[0].garp_delay", r#""garp_delay": "3s""#),
        (
            "vrrp.instances[0].track.worker_stall",
            r#""worker_stall": "3s""#,
        ),
    ];
    let text = r#"{ "grace": "3s", "drain_timeout": "3s",
  "frontends": [ { "name": "f", "bind": ["127.0.0.1:80"], "backend": "b", "inspect_timeout": "3s" } ],
  "backends": [ { "name": "b",
    "timeouts": { "connect": "3s", "client": "3s", "server": "3s", "queue": "3s" },
    "health_check": { "type": "tcp", "interval": "3s", "fast_interval": "3s", "down_interval": "3s" },
    "servers": [ { "name": "s", "addr": "127.0.0.1:81" } ] } ],
  "stats": { "bind": "127.0.0.1:8404", "refresh": "3s" },
  "vrrp": { "instances": [ { "name": "v", "interface": "lo", "vrid": 1, "vips": ["192.0.2.10"],
    "preempt_delay": "3s", "garp_delay": "3s", "track": { "worker_stall": "3s", "stop_adverts": true } } ] } }"#;
    assert!(parse("x.json", text).is_ok(), "{}", errors(text));
    for (path, field) in cases {
        assert_eq!(text.matches(field).count(), 1, "{field}");
        let (name, _) = field.split_once(':').unwrap();
        let bad = text.replace(field, &format!("{name}: {over}"));
        // serde_json points at the closing quote of the string.
        let end = bad.find(over).unwrap() + over.len();
        let line = bad[..end].matches('\n').count() + 1;
        let column = end - bad[..end].rfind('\n').map_or(0, |i| i + 1);
        assert_eq!(
            errors(&bad),
            format!(
                "x.json: {path}: \"18446744073709551615ms\" is longer than the maximum of 24h \
                 (line {line}, column {column})"
            )
        );
    }
    let e = errors(&text.replace(r#""grace": "3s""#, r#""grace": "25h""#));
    assert_eq!(
        e,
        "x.json: grace: \"25h\" is longer than the maximum of 24h (line 1, column 16)"
    );
    let day = text.replace(r#""grace": "3s""#, r#""grace": "24h""#);
    assert_eq!(parse("x.json", &day).unwrap().grace, values::MAX_DURATION);
}

/// Values that parse as JSON but would hurt at run time: each refused, with its place.
#[test]
fn extreme_numbers_are_refused() {
    let server = r#"{ "name": "s", "addr": "127.0.0.1:81" }"#;
    let many: Vec<String> = (0..=MAX_SERVERS)
        .map(|i| format!(r#"{{ "name": "s{i}", "addr": "127.0.0.1:81" }}"#))
        .collect();
    let many = many.join(", ");
    let text = format!(
        r#"{{ "workers": 100000,
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:80"], "backend": "a" }} ],
  "backends": [
    {{ "name": "a", "retries": 4294967295, "servers": [ {server} ] }},
    {{ "name": "b", "retries": 33, "servers": [ {server} ] }},
    {{ "name": "c", "health_check": {{ "type": "tcp", "rise": 101, "fall": 4294967295,
      "passive_errors": 1001, "timeout": "61s" }}, "servers": [ {server} ] }},
    {{ "name": "d", "servers": [ {many} ] }}
  ] }}"#
    );
    let want = [
        "x.json: workers: 100000 is out of range (1 to 64) (line 1, column 14)",
        "x.json: backends[0].retries: 4294967295 is out of range (0 to 32) (line 4, column 31)",
        "x.json: backends[1].retries: 33 is out of range (0 to 32) (line 5, column 31)",
        "x.json: backends[2].health_check.rise: 101 is out of range (1 to 100) (line 6, column 61)",
        "x.json: backends[2].health_check.fall: 4294967295 is out of range (1 to 100) (line 6, column 74)",
        "x.json: backends[2].health_check.passive_errors: 1001 is out of range (1 to 1000) (line 7, column 25)",
        "x.json: backends[2].health_check.timeout: 61000ms is longer than the maximum of 60s (line 7, column 42)",
        "x.json: backends[3].servers: 257 servers is over the maximum of 256 per backend (line 8, column 31)",
    ];
    assert_eq!(errors(&text).lines().collect::<Vec<_>>(), want);
}

#[test]
fn worker_stall_and_min_workers_are_bounded() {
    let with = |top: &str, track: &str| {
        format!(
            r#"{{ {top}
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:80"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "127.0.0.1:81" }} ] }} ],
  "vrrp": {{ "instances": [ {{ "name": "v", "interface": "lo", "vrid": 1, "vips": ["192.0.2.10"],
    "track": {{ "stop_adverts": true {track} }} }} ] }} }}"#
        )
    };
    // At the limits: accepted.
    let ok = parse(
        "x.json",
        &with(r#""worker_stall": "101ms","#, r#", "min_workers": 64"#),
    )
    .unwrap();
    assert_eq!(ok.worker_stall, Duration::from_millis(101));
    assert!(parse(
        "x.json",
        &with(r#""worker_stall": "24h","#, r#", "min_workers": 1"#)
    )
    .is_ok());
    // Past them: refused, by name.
    assert!(errors(&with(r#""worker_stall": "100ms","#, ""))
        .contains("worker_stall: must be longer than the workers' 100ms tick"));
    assert!(errors(&with(r#""worker_stall": "25h","#, ""))
        .contains("worker_stall: \"25h\" is longer than the maximum of 24h"));
    for n in ["0", "65"] {
        assert!(
            errors(&with("", &format!(r#", "min_workers": {n}"#))).contains(&format!(
                "vrrp.instances[0].track.min_workers: {n} is out of range (1 to 64)"
            )),
            "{n}"
        );
    }
}
