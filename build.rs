//! Build facts the binary reports: `RINGLB_COMMIT`, the short hash of the commit being
//! built (`git rev-parse --short HEAD`), or `unknown` where there is no git or no
//! repository (a build from a source tarball).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A tarball unpacked inside some other repository must not take that one's commit.
    let ours = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        Path::new(&top).canonicalize().ok() == Path::new(&here).canonicalize().ok()
    });
    let commit = ours
        .then(|| git(&["rev-parse", "--short", "HEAD"]))
        .flatten()
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RINGLB_COMMIT={commit}");
    if !ours {
        return;
    }
    // Build again when HEAD moves: the HEAD file (a checkout), the branch it names (a
    // commit) and packed-refs (a gc). Paths come from git, so a worktree works too.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

/// The trimmed output of a git command that succeeded with some output.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}
