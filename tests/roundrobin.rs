//! Server selection through the real binary: weighted round robin gives each server its
//! exact share.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Weights 1 and 2, 300 sequential connections on one worker: exactly 100 and 200.
#[test]
fn weighted_round_robin_splits_exactly() {
    let light = Backend::named("light");
    let heavy = Backend::named("heavy");
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "balance": "roundrobin""#,
        &weighted_servers(&[(light.addr(), 1), (heavy.addr(), 2)]),
    );
    let lb = Ringlb::start(&cfg);

    let mut counts = BTreeMap::new();
    for i in 0..300 {
        let mut client = connect(frontend(port));
        let name = read_to_eof(&mut client, 64)
            .unwrap_or_else(|e| panic!("connection {i}: {e}; log:\n{}", lb.log()));
        let name = String::from_utf8(name).expect("backend name");
        *counts.entry(name).or_insert(0) += 1;
    }
    let expected = BTreeMap::from([("heavy".to_owned(), 200), ("light".to_owned(), 100)]);
    assert_eq!(counts, expected, "connections per server");
}
