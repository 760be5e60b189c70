//! The whole import on bytes: malformed files fail with their line, files with nothing
//! to forward fail with the reasons, and no mutation of real configs panics or yields a
//! configuration that fails the check.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::*;

const SEEDS_HAPROXY: &[u8] = include_bytes!("../../tests/import/seeds-haproxy.cfg");
const SEEDS_KEEPALIVED: &[u8] = include_bytes!("../../tests/import/seeds-keepalived.conf");
/// What the seeds lack: SNI routing, PROXY protocol, tcp-check, checks on other ports.
const L4_HAPROXY: &[u8] = b"global\n  nbthread 2\n  hard-stop-after 30s\ndefaults\n  mode tcp\n  \
    timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  default-server inter 3s fall 3 rise 2\n\
    frontend tls\n  bind :::443 v4v6 accept-proxy\n  tcp-request inspect-delay 5s\n  \
    tcp-request content accept if { req_ssl_hello_type 1 }\n  acl a req_ssl_sni -i a.example.org\n  \
    use_backend a if a\n  use_backend b if { req.ssl_sni -m end .example.net }\n  default_backend b\n\
    backend a\n  balance source\n  option tcp-check\n  tcp-check connect port 6379\n  tcp-check send PING\\r\\n\n  \
    tcp-check expect string +PONG\n  server a1 192.0.2.1:443 check send-proxy-v2 port 8443 addr 192.0.2.9\n\
    backend b\n  balance random\n  option mysql-check user x\n  server b1 [2001:db8::1]:443 check maxconn 10 backup observe layer4 error-limit 5\n  \
    server b2 192.0.2.2 check\n\
    listen stats\n  bind 127.0.0.1:8404\n  stats enable\n  stats auth admin:pw\n";

fn malformed(r: Result<Imported, Failure>) -> (Source, usize, String) {
    match r {
        Err(Failure::Malformed {
            source,
            line,
            message,
        }) => (source, line, message),
        other => panic!("not malformed: {other:?}"),
    }
}

#[test]
fn malformed_files_name_the_file_and_line() {
    assert_eq!(
        malformed(import(b"global\n  log \"x\n", None)),
        (Source::Haproxy, 2, "a double quote is not closed".into())
    );
    assert_eq!(
        malformed(import(L4_HAPROXY, Some(b"a {\n{\n}\n"))),
        (
            Source::Keepalived,
            1,
            "the block of `a` is not closed (a `}` is missing)".into()
        )
    );
}

#[test]
fn nothing_to_forward() {
    for input in [
        &b""[..],
        b"global\n  maxconn 10\n",
        b"backend b\n  server s 192.0.2.1:80\n",
    ] {
        assert!(
            matches!(import(input, None), Err(Failure::NothingToForward(_))),
            "{input:?}"
        );
    }
}

#[test]
fn l4_config_converts_whole() {
    let got = import(L4_HAPROXY, Some(SEEDS_KEEPALIVED)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&got.json).unwrap();
    assert_eq!(v["workers"], 2);
    assert_eq!(v["grace"], "30s");
    assert_eq!(
        v["frontends"][0]["bind"],
        serde_json::json!(["[::]:443", "0.0.0.0:443"])
    );
    assert_eq!(
        v["backends"][0]["health_check"],
        serde_json::json!({ "type": "send_expect", "send": "PING\r\n", "expect_regex": "\\+PONG",
            "interval": "3s", "rise": 2, "fall": 3, "timeout": "3s" })
    );
    assert_eq!(
        v["backends"][0]["servers"][0]["check_addr"],
        "192.0.2.9:8443"
    );
    assert_eq!(v["backends"][1]["servers"][1]["addr"], "192.0.2.2:443");
    assert_eq!(v["backends"][1]["health_check"]["passive_errors"], 5);
    assert_eq!(v["stats"]["bind"], "127.0.0.1:8404");
    let found: Vec<String> = got.report.sorted().iter().map(|f| f.what.clone()).collect();
    assert_eq!(
        found,
        [
            "tcp-check connect port and server check ports: the servers' are used",
            "mysql-check with a user: ringlb checks the server's greeting only (no login)",
            "check timing differs from the first checked server (line 28): ringlb has one per backend, the first one's is used",
            "state MASTER: ringlb has no initial state, the highest priority becomes master",
            "state BACKUP: ringlb has no initial state, the highest priority becomes master",
        ]
    );
}

/// Lines of a file, one of which is duplicated, dropped or swapped with another.
fn mutate_lines(input: &mut Vec<u8>, rng: &mut StdRng) {
    let mut lines: Vec<Vec<u8>> = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let i = rng.random_range(0..lines.len());
    let j = rng.random_range(0..lines.len());
    match rng.random_range(0..3) {
        0 => {
            let l = lines[i].clone();
            lines.insert(j, l);
        }
        1 => {
            lines.remove(i);
        }
        _ => lines.swap(i, j),
    }
    *input = lines.join(&b'\n');
}

fn mutate(input: &mut Vec<u8>, rng: &mut StdRng) {
    // Bytes that mean something to one of the two formats.
    const SPECIAL: &[u8] = b"{}\"'\\#!: \t\n/-.@$*,[]0123456789xX\xff";
    for _ in 0..1 + rng.random_range(0..4) {
        let at = rng.random_range(0..input.len().max(1));
        match rng.random_range(0..6) {
            0 if at < input.len() => input[at] ^= 1u8 << rng.random_range(0..8u32),
            1 if at < input.len() => input[at] = SPECIAL[rng.random_range(0..SPECIAL.len())],
            2 => input.truncate(at),
            3 if !input.is_empty() => mutate_lines(input, rng),
            4 => input.insert(at.min(input.len()), rng.next_u64() as u8),
            _ => input.insert(
                at.min(input.len()),
                SPECIAL[rng.random_range(0..SPECIAL.len())],
            ),
        }
    }
}

/// The no-panic guarantee of the parsers and the conversion, and the promise that a
/// converted file passes the check, over 20,000 seeded mutations of real configs.
#[test]
fn mutations_never_panic_and_always_pass_the_check() {
    let haproxy = [SEEDS_HAPROXY, L4_HAPROXY];
    let mut rng = StdRng::seed_from_u64(0x1A9_0C0F_2026_0015);
    for n in 0..20_000 {
        let mut h = haproxy[rng.random_range(0..haproxy.len())].to_vec();
        let mut k = SEEDS_KEEPALIVED.to_vec();
        match n % 3 {
            0 => mutate(&mut h, &mut rng),
            1 => mutate(&mut k, &mut rng),
            _ => {
                mutate(&mut h, &mut rng);
                mutate(&mut k, &mut rng);
            }
        }
        if let Err(Failure::Invalid { errors, .. }) = import(&h, Some(&k)) {
            panic!(
                "the import made a file that fails the check:\n{errors}\n--- haproxy.cfg\n{}\n--- keepalived.conf\n{}",
                String::from_utf8_lossy(&h),
                String::from_utf8_lossy(&k)
            );
        }
    }
}
