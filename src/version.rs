//! What this binary is: its version and the commit it was built from (`build.rs`; `unknown`
//! in a build without git), for the metrics, the stats page and `--version`.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Short hash of the commit built, or `unknown`.
pub const COMMIT: &str = env!("RINGLB_COMMIT");
