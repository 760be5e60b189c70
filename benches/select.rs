//! Server selection cost: one `Selector::pick` per iteration over a backend of 100 servers
//! with mixed weights, for each algorithm, plus `hash_addr`. The goal is under 100 ns per
//! pick. Run with `cargo bench --bench select`.

// `clippy --all-targets` checks this bench with cfg(test) but without the test harness, so
// the module's `mod tests` blocks compile with their #[test] functions stripped, leaving
// their imports unused. The `balance` test target still checks those imports.
#[allow(dead_code, unused_imports)] // the bench uses only part of the module
#[path = "../src/balance/mod.rs"]
mod balance;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU32;

use criterion::{criterion_group, criterion_main, Criterion};

use balance::{hash_addr, Algorithm, PickState, Selector, ServerSpec};

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

criterion_group!(benches, select);
criterion_main!(benches);
