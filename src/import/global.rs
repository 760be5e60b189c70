//! haproxy.cfg's `global` section: the few process settings ringlb has (`maxconn`,
//! `nbthread`, `hard-stop-after`, `spread-checks`); process plumbing it does its own way is
//! skipped, anything else reported.

use std::time::Duration;

use super::haproxy::Section;
use super::proxy::At;
use super::report::{Report, Source};
use super::values;

const H: Source = Source::Haproxy;

#[derive(Debug, Clone, Default)]
pub struct Global {
    pub maxconn: Option<At<u32>>,
    pub nbthread: Option<At<u32>>,
    /// `spread-checks`: percent, ringlb's `jitter`.
    pub spread_checks: Option<u32>,
    /// `hard-stop-after`: ringlb's `grace`.
    pub hard_stop_after: Option<Duration>,
}

pub fn global(s: &Section, g: &mut Global, r: &mut Report) {
    for d in &s.directives {
        let line = d.line;
        let number = || d.word(1).parse::<u32>().ok().filter(|&n| n > 0);
        let key = d.word(0);
        match key {
            "maxconn" => match number() {
                Some(n) => g.maxconn = Some(At { line, value: n }),
                None => r.warn(
                    H,
                    line,
                    format!("maxconn {:?} is not a count: left out", d.word(1)),
                ),
            },
            "nbthread" => match number() {
                Some(n) => g.nbthread = Some(At { line, value: n }),
                None => r.warn(
                    H,
                    line,
                    format!("nbthread {:?} is not a count: left out", d.word(1)),
                ),
            },
            "nbproc" => r.warn_hint(
                H,
                line,
                "nbproc: ringlb is one process with worker threads, left out",
                "\"workers\" sets the threads",
            ),
            "cpu-map" => r.note(
                H,
                line,
                "cpu-map: ringlb pins one worker per CPU itself (\"pin_workers\")",
            ),
            "spread-checks" => match number().filter(|&n| n <= 50) {
                Some(n) => g.spread_checks = Some(n),
                None => r.warn(
                    H,
                    line,
                    "spread-checks: not a percentage from 0 to 50, left out",
                ),
            },
            "hard-stop-after" => match values::haproxy_duration(d.word(1)) {
                Some(t) if !t.is_zero() => g.hard_stop_after = Some(t),
                _ => r.warn(H, line, "hard-stop-after: not a duration, left out"),
            },
            "lua-load" | "lua-load-per-thread" | "lua-prepend-path" => {
                r.warn(H, line, format!("{key}: no Lua in ringlb, left out"))
            }
            "setenv" | "presetenv" | "resetenv" | "unsetenv" => r.warn(
                H,
                line,
                format!("{key}: environment variables are not expanded by the import, left out"),
            ),
            "server-state-file"
            | "server-state-base"
            | "external-check"
            | "h1-case-adjust"
            | "h1-case-adjust-file" => {
                r.warn(H, line, format!("{key}: no equivalent in ringlb, left out"))
            }
            // Process plumbing ringlb does its own way (logs on stderr, systemd runs it).
            k if k.starts_with("ssl-")
                || k.starts_with("tune.")
                || k.starts_with("log")
                || k.starts_with("profiling.")
                || k.starts_with("harden.") => {}
            "chroot"
            | "user"
            | "group"
            | "uid"
            | "gid"
            | "daemon"
            | "master-worker"
            | "pidfile"
            | "stats"
            | "ca-base"
            | "crt-base"
            | "ulimit-n"
            | "node"
            | "description"
            | "quiet"
            | "debug"
            | "set-dumpable"
            | "insecure-fork-wanted"
            | "expose-experimental-directives"
            | "maxsslconn"
            | "maxsslrate"
            | "maxcompcpuusage"
            | "maxcomprate"
            | "maxpipes"
            | "maxzlibmem"
            | "noepoll"
            | "nopoll"
            | "nosplice"
            | "nogetaddrinfo"
            | "noreuseport"
            | "busy-polling"
            | "max-spread-checks"
            | "localpeer"
            | "mworker-max-reloads"
            | "thread-groups"
            | "numa-cpu-mapping"
            | "cpu-policy"
            | "zero-warning"
            | "strict-limits"
            | "nbcores"
            | "default-path"
            | "httpclient.resolvers.prefer"
            | "pp2-never-send-local" => {}
            other => r.warn(
                H,
                line,
                format!("global `{other}`: no equivalent in ringlb, left out"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy;

    #[test]
    fn what_ringlb_takes_from_global() {
        let cfg = haproxy::parse(
            b"global\n  maxconn 4096\n  nbthread 4\n  nbproc 2\n  spread-checks 5\n  hard-stop-after 1m\n  \
              daemon\n  ssl-default-bind-ciphers X\n  lua-load x.lua\n  mystery 1\n  maxconn x\n",
        )
        .unwrap();
        let mut g = Global::default();
        let mut r = Report::default();
        global(&cfg.sections[0], &mut g, &mut r);
        assert_eq!(g.maxconn.map(|m| m.value), Some(4096));
        assert_eq!(g.nbthread.map(|m| m.value), Some(4));
        assert_eq!(g.spread_checks, Some(5));
        assert_eq!(g.hard_stop_after, Some(Duration::from_secs(60)));
        let found: Vec<String> = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        assert_eq!(
            found,
            [
                "4: nbproc: ringlb is one process with worker threads, left out",
                "9: lua-load: no Lua in ringlb, left out",
                "10: global `mystery`: no equivalent in ringlb, left out",
                "11: maxconn \"x\" is not a count: left out",
            ]
        );
    }
}
