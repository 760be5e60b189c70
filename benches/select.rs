//! Server selection cost: one `Selector::pick` per iteration over a backend of 100 servers
//! with mixed weights, for each algorithm, plus `hash_addr`. The goal is under 100 ns per
//! pick. Also the cost of building a selector at the config's limits (256 servers, the
//! largest Maglev table), paid for every new snapshot. Run with `cargo bench --bench select`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU32;

use criterion::{criterion_group, criterion_main, Criterion};

use ringlb::balance::{hash_addr, Algorithm, PickState, Selector, ServerSpec, MAX_TABLE_SIZE};
use ringlb::config::MAX_SERVERS;

const SERVERS: usize = 100;

fn select(c: &mut Criterion) {
    let names: Vec<String> = (0..SERVERS).map(|i| format!("web{i:03}")).collect();
    // Mixed weights, a few servers down, loads spread as if connections were running.
    let servers: Vec<ServerSpec<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| ServerSpec {
            name,
            weight: [1, 10, 50, 100, 256][i % 5],
            usable: i % 17 != 0,
            backup: false,
        })
        .collect();
    let load: Vec<AtomicU32> = (0..SERVERS)
        .map(|i| AtomicU32::new((i as u32 * 7919) % 500))
        .collect();
    let mut group = c.benchmark_group("pick_100_servers");
    for (label, algorithm) in [
        ("roundrobin", Algorithm::RoundRobin),
        ("leastconn", Algorithm::LeastConn),
        ("source", Algorithm::Source),
        ("random", Algorithm::Random),
    ] {
        let selector = Selector::build(algorithm, &servers);
        let mut state = PickState::new(1);
        // A different client per pick, so `Source` reads scattered slots as in service.
        let mut key: u64 = 0;
        group.bench_function(label, |b| {
            b.iter(|| {
                key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                selector.pick(&mut state, black_box(key), &load, None)
            })
        });
    }
    group.finish();

    let mut ip: u32 = 0xc000_0200;
    c.bench_function("hash_addr_v4", |b| {
        b.iter(|| {
            ip = ip.wrapping_add(1);
            hash_addr(black_box(IpAddr::V4(Ipv4Addr::from(ip))))
        })
    });
}

/// Builds at the limits: every server up (one Maglev table), and one server down (a second,
/// fallback table). Weights mixed, or one heavy server among light ones: the Maglev fill
/// loop then visits every server for each slot the heavy one takes, its slowest case.
fn build(c: &mut Criterion) {
    let names: Vec<String> = (0..MAX_SERVERS).map(|i| format!("web{i:03}")).collect();
    let servers = |weight: &dyn Fn(usize) -> u32, down: Option<usize>| -> Vec<ServerSpec<'_>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| ServerSpec {
                name,
                weight: weight(i),
                usable: Some(i) != down,
                backup: false,
            })
            .collect()
    };
    let mixed = |i: usize| [1, 10, 50, 100, 256][i % 5];
    let one_heavy = |i: usize| if i == 0 { 256 } else { 1 };
    // Coprime neighbours: the rotation cannot be shortened by a common divisor.
    let coprime = |i: usize| 255 + (i % 2) as u32;
    let mut group = c.benchmark_group("build_256_servers");
    group.sample_size(10);
    for (label, algorithm, weights, down, size) in [
        (
            "source_max_table_mixed",
            Algorithm::Source,
            &mixed as &dyn Fn(usize) -> u32,
            None,
            MAX_TABLE_SIZE,
        ),
        (
            "source_max_table_mixed_one_down",
            Algorithm::Source,
            &mixed,
            Some(7),
            MAX_TABLE_SIZE,
        ),
        (
            "source_max_table_one_heavy",
            Algorithm::Source,
            &one_heavy,
            None,
            MAX_TABLE_SIZE,
        ),
        (
            "source_max_table_one_heavy_one_down",
            Algorithm::Source,
            &one_heavy,
            Some(7),
            MAX_TABLE_SIZE,
        ),
        (
            "roundrobin_coprime_weights",
            Algorithm::RoundRobin,
            &coprime,
            None,
            MAX_TABLE_SIZE,
        ),
        (
            "leastconn_coprime_weights",
            Algorithm::LeastConn,
            &coprime,
            None,
            MAX_TABLE_SIZE,
        ),
    ] {
        let specs = servers(weights, down);
        group.bench_function(label, |b| {
            b.iter(|| Selector::build_sized(algorithm, black_box(&specs), size))
        });
    }
    group.finish();
}

criterion_group!(benches, select, build);
criterion_main!(benches);
