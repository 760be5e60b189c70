//! Server selection through the real binary: weighted round robin gives each server its
//! exact share.

pub mod common;

use std::collections::BTreeMap;

use common::*;

/// Weights 1 and 2, 300 sequential connections on one worker: exactly 100 and 200.
#[test]
fn weighted_round_robin_splits_exactly() {
    let light = NamedServer::start("light");
    let heavy = NamedServer::start("heavy");
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
    for _ in 0..300 {
        *counts
            .entry(must_fetch_name(&lb, frontend(port)))
            .or_insert(0) += 1;
    }
    let expected = BTreeMap::from([("heavy".to_owned(), 200), ("light".to_owned(), 100)]);
    assert_eq!(counts, expected, "connections per server");
}
