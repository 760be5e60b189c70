//! Fuzzes `ringlb import`'s keepalived.conf side: the lexer, the block tree and the
//! conversion of the VRRP instances. Never panics; an error names a line of the input;
//! the tree keeps lines in order and its depth within `MAX_DEPTH`; every finding names a
//! line of the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlb::import::keepalived::{self, Node, MAX_DEPTH};
use ringlb::import::{report, vrrp};

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let nodes = match keepalived::parse(data) {
        Ok(nodes) => nodes,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "error line {} of {lines}", e.line);
            assert!(!e.message.is_empty());
            return;
        }
    };
    let mut last = 0;
    walk(&nodes, 1, &mut last, lines);
    let mut r = report::Report::default();
    if let Some(v) = vrrp::convert(&nodes, &mut r) {
        for i in &v.instances {
            assert!(i.vrid > 0 && !i.vips.is_empty() && i.vips.len() <= 255);
        }
    }
    for f in r.sorted() {
        assert!(f.line >= 1 && f.line <= lines);
    }
});

fn walk(nodes: &[Node], depth: usize, last: &mut usize, lines: usize) {
    assert!(nodes.is_empty() || depth <= MAX_DEPTH + 1);
    for n in nodes {
        assert!(n.line >= *last && n.line <= lines);
        *last = n.line;
        assert!(!n.words.is_empty() || n.block.is_some());
        walk(n.children(), depth + 1, last, lines);
    }
}
