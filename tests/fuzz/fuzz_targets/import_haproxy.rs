//! Fuzzes `ringlb import`'s haproxy.cfg side: the lexer and section parser, the meaning
//! of every section, the routes of every frontend and the conversion. Never panics; an
//! error names a line of the input; parsed directives keep their lines in order; every
//! finding names a line of the input. (That a converted file passes the check is tested
//! in ringlb's own tests, which have the config module.)

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../../src/import/check.rs"]
mod check;
#[allow(dead_code)]
#[path = "../../../src/import/convert.rs"]
mod convert;
#[allow(dead_code)]
#[path = "../../../src/import/directives.rs"]
mod directives;
#[allow(dead_code)]
#[path = "../../../src/import/global.rs"]
mod global;
#[allow(dead_code)]
#[path = "../../../src/import/haproxy.rs"]
mod haproxy;
#[allow(dead_code)]
#[path = "../../../src/import/output.rs"]
mod output;
#[allow(dead_code)]
#[path = "../../../src/import/proxy.rs"]
mod proxy;
#[allow(dead_code)]
#[path = "../../../src/import/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../../../src/import/routes.rs"]
mod routes;
#[allow(dead_code)]
#[path = "../../../src/import/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../../../src/import/stats.rs"]
mod stats;
#[allow(dead_code)]
#[path = "../../../src/import/text.rs"]
mod text;
#[allow(dead_code)]
#[path = "../../../src/import/values.rs"]
mod values;

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
