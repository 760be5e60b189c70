//! Fuzzes `ringlb import`'s haproxy.cfg side: the lexer and section parser, the meaning
//! of every section, the routes of every frontend and the conversion. Never panics; an
//! error names a line of the input; parsed directives keep their lines in order; every
//! finding names a line of the input. (That a converted file passes the check is tested
//! in ringlb's own tests, on seeded mutations: the check is slower than a fuzz run wants.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlb::import::{convert, haproxy, proxy, report, routes};

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let cfg = match haproxy::parse(data) {
        Ok(cfg) => cfg,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "error line {} of {lines}", e.line);
            assert!(!e.message.is_empty());
            return;
        }
    };
    let mut last = 0;
    for s in &cfg.sections {
        assert!(s.line > last);
        last = s.line;
        for d in &s.directives {
            assert!(!d.words.is_empty());
            assert!(d.line > last && d.line <= lines);
            last = d.line;
        }
    }
    let mut r = report::Report::default();
    let model = proxy::interpret(&cfg, &mut r);
    for p in &model.proxies {
        let rules = routes::rules(p, &mut r);
        for route in &rules.routes {
            let name = route.sni.strip_prefix("*.").unwrap_or(&route.sni);
            assert!(!name.is_empty() && !name.starts_with('.'), "{:?}", route.sni);
        }
    }
    let out = convert::convert(&model, &mut r);
    for f in &out.frontends {
        assert!(!f.bind.is_empty());
        assert!(f.backend.is_some() || f.routes.is_some());
    }
    for b in &out.backends {
        assert!(!b.servers.is_empty());
    }
    for f in r.sorted() {
        assert!(f.line >= 1 && f.line <= lines);
    }
});
