//! Tests of `Selector` as a whole, the same for every algorithm (backups, exclusion,
//! weight 0, no usable server, the address hash), and helpers the algorithm files'
//! tests share.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;

use super::*;

const ALL: [Algorithm; 4] = [
    Algorithm::RoundRobin,
    Algorithm::LeastConn,
    Algorithm::Source,
    Algorithm::Random,
];

pub(super) fn spec(name: &str, weight: u32) -> ServerSpec<'_> {
    ServerSpec {
        name,
        weight,
        usable: true,
        backup: false,
    }
}

pub(super) fn loads(n: usize) -> Vec<AtomicU32> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

/// Picks `n` times with varying keys and flat load; returns the picks per server.
fn counts(alg: Algorithm, servers: &[ServerSpec<'_>], n: usize, ex: Option<usize>) -> Vec<u32> {
    let sel = Selector::build(alg, servers);
    let load = loads(servers.len());
    let mut st = PickState::new(7);
    let mut out = vec![0; servers.len()];
    for k in 0..n as u64 {
        let s = sel.pick(&mut st, splitmix64(k), &load, ex).unwrap();
        out[s] += 1;
    }
    out
}

/// Runs `picks` picks under churn: `live` connections are held; once full, each new
/// pick first ends one live connection chosen uniformly at random. Returns picks per
/// server.
///
/// Why this measures the weighting: a uniformly chosen connection ends on server i with
/// probability load_i / live. Least connections keeps load_i / weight_i level, so
/// load_i ∝ weight_i, so departures ∝ weight_i; in steady state each server's picks
/// equal its departures, so its share of picks is its share of the weight.
pub(super) fn churn(
    alg: Algorithm,
    servers: &[ServerSpec<'_>],
    live: usize,
    picks: usize,
) -> Vec<u64> {
    let sel = Selector::build(alg, servers);
    let load = loads(servers.len());
    let mut st = PickState::new(11);
    let mut rng = PickState::new(99);
    let mut conns: Vec<usize> = Vec::with_capacity(live);
    let mut count = vec![0u64; servers.len()];
    for _ in 0..picks {
        if conns.len() == live {
            let k = (rng.next_u64() % live as u64) as usize;
            let gone = conns.swap_remove(k);
            load[gone].fetch_sub(1, Ordering::Relaxed);
        }
        let s = sel.pick(&mut st, 0, &load, None).unwrap();
        load[s].fetch_add(1, Ordering::Relaxed);
        conns.push(s);
        count[s] += 1;
    }
    count
}

pub(super) fn assert_shares(count: &[u64], weights: &[u32], tolerance: f64) {
    let picks: u64 = count.iter().sum();
    let total: u32 = weights.iter().sum();
    for (i, &w) in weights.iter().enumerate() {
        let expected = picks as f64 * f64::from(w) / f64::from(total);
        if w == 0 {
            assert_eq!(count[i], 0, "server {i}");
            continue;
        }
        let err = (count[i] as f64 - expected).abs() / expected;
        assert!(
            err < tolerance,
            "server {i}: {} picks, expected {expected:.0} ({:.2}% off)",
            count[i],
            err * 100.0
        );
    }
}

#[test]
fn hash_addr_is_fixed() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    // Golden values: changing them remaps every client of every `Source` backend.
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(hash_addr(v4), fmix64(fnv1a64(&[192, 0, 2, 1])));
    assert_eq!(hash_addr(v4), 0x8039_3182_6a22_88ea);
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(hash_addr(mapped), hash_addr(v4));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    assert_ne!(hash_addr(v6), hash_addr(v4));
    assert_ne!(
        hash_addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
        hash_addr(v4)
    );
}

#[test]
fn no_usable_server_gives_none() {
    let down = |name| ServerSpec {
        usable: false,
        ..spec(name, 5)
    };
    let cases: [Vec<ServerSpec<'_>>; 4] = [
        vec![],
        vec![down("a"), down("b")],
        vec![spec("a", 0), spec("b", 0)],
        vec![
            down("a"),
            ServerSpec {
                backup: true,
                ..down("b")
            },
            ServerSpec {
                backup: true,
                ..spec("c", 0)
            },
        ],
    ];
    for alg in ALL {
        for servers in &cases {
            let sel = Selector::build(alg, servers);
            let mut st = PickState::new(1);
            let load = loads(servers.len());
            assert_eq!(sel.candidates(), 0);
            for k in 0..100 {
                assert_eq!(sel.pick(&mut st, k, &load, None), None, "{alg:?}");
                assert_eq!(sel.pick(&mut st, k, &load, Some(0)), None, "{alg:?}");
            }
        }
    }
}

#[test]
fn weight_zero_server_never_picked() {
    let servers = [spec("a", 3), spec("zero", 0), spec("b", 1), spec("nil", 0)];
    for alg in ALL {
        let c = counts(alg, &servers, 20_000, None);
        assert_eq!((c[1], c[3]), (0, 0), "{alg:?}: {c:?}");
        assert!(c[0] > 0 && c[2] > 0, "{alg:?}: {c:?}");
    }
}

#[test]
fn backups_idle_while_a_primary_is_usable() {
    let backup = |name| ServerSpec {
        backup: true,
        ..spec(name, 10)
    };
    let down = ServerSpec {
        usable: false,
        ..spec("p1", 1)
    };
    let servers = [down, backup("b1"), spec("p2", 1), backup("b2")];
    for alg in ALL {
        let c = counts(alg, &servers, 20_000, None);
        assert_eq!(c, vec![0, 0, 20_000, 0], "{alg:?}");
        // Excluding the last primary still does not wake the backups.
        let c = counts(alg, &servers, 1_000, Some(2));
        assert_eq!(c, vec![0, 0, 1_000, 0], "{alg:?}");
    }
}

#[test]
fn backups_take_everything_when_no_primary_is_usable() {
    let backup = |name, weight| ServerSpec {
        backup: true,
        ..spec(name, weight)
    };
    let down = |name| ServerSpec {
        usable: false,
        ..spec(name, 1)
    };
    // A usable primary of weight 0 takes no traffic, so it does not hold the backups off.
    let servers = [down("p1"), backup("b1", 1), spec("p2", 0), backup("b2", 1)];
    for alg in ALL {
        let c = counts(alg, &servers, 20_000, None);
        assert_eq!(c[0] + c[2], 0, "{alg:?}: {c:?}");
        assert_eq!(c[1] + c[3], 20_000, "{alg:?}: {c:?}");
        assert!(c[1] > 5_000 && c[3] > 5_000, "{alg:?}: {c:?}");
    }
}

#[test]
fn exclude_avoided_when_another_server_exists() {
    let servers = [spec("a", 200), spec("b", 1), spec("c", 1), spec("d", 50)];
    for alg in ALL {
        for ex in 0..servers.len() {
            let c = counts(alg, &servers, 20_000, Some(ex));
            assert_eq!(c[ex], 0, "{alg:?} excluding {ex}: {c:?}");
        }
    }
    // Two servers, the heavy one excluded: every pick goes to the light one.
    let servers = [spec("heavy", 256), spec("light", 1)];
    for alg in ALL {
        assert_eq!(
            counts(alg, &servers, 5_000, Some(0)),
            vec![0, 5_000],
            "{alg:?}"
        );
    }
}

#[test]
fn exclude_returned_when_it_is_the_only_server() {
    let down = ServerSpec {
        usable: false,
        ..spec("a", 1)
    };
    let servers = [down, spec("b", 1), spec("c", 0)];
    for alg in ALL {
        assert_eq!(
            counts(alg, &servers, 100, Some(1)),
            vec![0, 100, 0],
            "{alg:?}"
        );
        // Excluding a server that takes no traffic changes nothing.
        assert_eq!(
            counts(alg, &servers, 100, Some(0)),
            vec![0, 100, 0],
            "{alg:?}"
        );
        assert_eq!(
            counts(alg, &servers, 100, Some(9)),
            vec![0, 100, 0],
            "{alg:?}"
        );
    }
}

#[test]
fn short_load_slice_counts_as_idle() {
    let servers = [spec("a", 1), spec("b", 1), spec("c", 1)];
    for alg in ALL {
        let sel = Selector::build(alg, &servers);
        let mut st = PickState::new(3);
        for k in 0..1_000 {
            assert!(sel.pick(&mut st, k, &[] as &[AtomicU32], None).is_some());
        }
    }
}

#[test]
fn stagger_spreads_workers_over_the_rotation() {
    let servers = [spec("a", 1), spec("b", 1), spec("c", 1), spec("d", 1)];
    let sel = Selector::build(Algorithm::RoundRobin, &servers);
    let load = loads(4);
    let firsts: Vec<usize> = (0..4)
        .map(|w| {
            let mut st = PickState::new(w as u64);
            sel.stagger(&mut st, w, 4);
            sel.pick(&mut st, 0, &load, None).unwrap()
        })
        .collect();
    assert_eq!(firsts, vec![0, 1, 2, 3]);
}

#[test]
fn weights_above_max_are_clamped() {
    let servers = [spec("a", 1_000), spec("b", MAX_WEIGHT)];
    let c = counts(Algorithm::RoundRobin, &servers, 1_000, None);
    assert_eq!(c, vec![500, 500]);
}

#[test]
fn helpers() {
    assert_eq!(gcd(12, 18), 6);
    assert_eq!(gcd(0, 7), 7);
    assert_eq!(gcd(7, 0), 7);
    assert!(lighter(1, 2, 1, 1));
    assert!(!lighter(2, 2, 1, 1));
    assert!(lighter(0, 1, 1, 256));
    let mut st = PickState::new(0);
    assert_ne!(st.next_u64(), st.next_u64());
}
