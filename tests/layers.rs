//! The module graph stays in layers: a top-level module of `src/` may use only modules of
//! the layers below its own, never one beside it or above it, so no import cycle can come
//! back. Read from the source text: every `crate::NAME` (and `$crate::NAME`, and each name of
//! a `use crate::{…}` group) in a file under `src/NAME…` is an edge. Comments count too (a
//! doc link to a module above is a smell as well); `super::` paths are not followed, as
//! they stay inside a module by this crate's habit. `main.rs` and `lib.rs`, the crate
//! roots, may use anything; nothing may use an item of a root. A `#[macro_export]` macro
//! lives at the root but belongs to the module that defines it (`crate::event` is
//! `logging`'s).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// From the top: each module may use the modules of the layers after its own.
const LAYERS: &[&[&str]] = &[
    // The control socket: answers from the stats report, hands reloads to control.
    &["ctl"],
    // The stats page, JSON and metrics: read everything below.
    &["stats"],
    // The control thread: owns the workers, the VRRP thread, the checker, reloads. The
    // supervising parent: releases the VIPs when the serving process dies.
    &["control", "supervise"],
    // The data path, the VRRP thread and the announcer, each on its own thread(s).
    &["announce", "ha", "worker"],
    // Server states by identity, and what the workers share.
    &["registry", "shared"],
    // The snapshot workers read, health checks, `ringlb import`.
    &["table", "health", "import"],
    &["config"],
    // Process plumbing: logs through `logging` at most.
    &[
        "beat",
        "counters",
        "fault",
        "limits",
        "listener",
        "notify",
        "sys",
        "test_hooks",
        "version",
        "watchdog",
    ],
    &["logging"],
    // Pure algorithms and codecs.
    &["balance", "proxy", "tls"],
];

const ROOTS: [&str; 2] = ["main", "lib"];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The names that follow `crate::` in `text`, with their line numbers.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `my_crate::x` is another crate's path; `$crate::x` and ` crate::x` are ours.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    out.extend(name(item.trim_start()).map(|n| (i + 1, n)));
                }
            } else {
                out.extend(name(rest).map(|n| (i + 1, n)));
            }
        }
    }
    out
}

fn name(s: &str) -> Option<String> {
    let n: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!n.is_empty()).then_some(n)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `#[macro_export]` macros defined in `text`.
fn exported_macros(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut exported = false;
    for line in text.lines().map(str::trim) {
        if line == "#[macro_export]" {
            exported = true;
        } else if let Some(rest) = line.strip_prefix("macro_rules!") {
            if exported {
                out.extend(name(rest.trim_start()));
            }
            exported = false;
        } else if !line.starts_with("#[") {
            exported = false;
        }
    }
    out
}

/// `src/a/b.rs` and `src/a.rs` belong to `a`.
fn top_module(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let first = first.as_os_str().to_str().unwrap();
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (top_module(&src, f), fs::read_to_string(f).unwrap()))
        .collect();
    let macros: HashMap<String, String> = texts
        .iter()
        .flat_map(|(m, text)| exported_macros(text).into_iter().map(|n| (n, m.clone())))
        .collect();
    let mut modules = BTreeSet::new();
    let mut wrong = Vec::new();
    for (file, (from, text)) in files.iter().zip(&texts) {
        modules.insert(from.clone());
        if ROOTS.contains(&from.as_str()) {
            continue;
        }
        let Some(from_layer) = layer(from) else {
            wrong.push(format!("src/{from}: not in LAYERS; give it a layer"));
            continue;
        };
        let shown = file.strip_prefix(src.parent().unwrap()).unwrap().display();
        for (line, to) in crate_paths(text) {
            let to = macros.get(&to).unwrap_or(&to);
            if to == from {
                continue;
            }
            match layer(to) {
                Some(l) if l > from_layer => {}
                Some(_) => wrong.push(format!("{shown}:{line}: {from} uses {to}, not below it")),
                None => wrong.push(format!(
                    "{shown}:{line}: {from} uses crate::{to}, which is no module in LAYERS \
                     (an item of the crate root?)"
                )),
            }
        }
    }
    for stale in LAYERS.iter().flat_map(|l| l.iter()) {
        if !modules.contains(*stale) {
            wrong.push(format!("LAYERS names {stale}, which src/ does not have"));
        }
    }
    assert!(wrong.is_empty(), "\n{}\n", wrong.join("\n"));
}

#[test]
fn paths_are_read_as_the_compiler_reads_them() {
    let text = "use crate::config::{self, Config};\n\
                use crate::{balance, table::Tables};\n\
                $crate::logging::write_event(x)\n\
                let x = vrrp_crate::thing; pub(in crate::config) fn f() {}\n";
    let got: Vec<_> = crate_paths(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(got, ["config", "balance", "table", "logging", "config"]);
    let text = "#[macro_export]\nmacro_rules! event {\n}\nmacro_rules! local {}\n";
    assert_eq!(exported_macros(text), ["event"]);
}
