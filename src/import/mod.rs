//! `ringlb import`: haproxy.cfg (and keepalived.conf) in, a ringlb configuration out.
//! Everything with a meaning at layer 4 is converted; the rest is reported as
//! `file:line: what (suggestion)`. The output is checked as `ringlb --check` would before
//! it is written, so an import never hands over a file ringlb refuses.
//!
//! Exit status: 0 complete (notes may be printed), 2 partial (something was left out or
//! changed: see the report), 1 error (unreadable or malformed file, nothing to forward).

mod check;
pub mod convert;
mod directives;
mod global;
pub mod haproxy;
pub mod keepalived;
mod output;
pub mod proxy;
pub mod report;
pub mod routes;
mod server;
mod stats;
mod text;
mod track;
mod values;
mod vip;
pub mod vrrp;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use report::{Report, Shown, Source};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// haproxy.cfg to convert
    #[arg(long, value_name = "FILE")]
    haproxy: PathBuf,
    /// keepalived.conf whose VRRP instances to convert
    #[arg(long, value_name = "FILE")]
    keepalived: Option<PathBuf>,
    /// Write the configuration to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// A converted configuration and what was found on the way.
#[derive(Debug)]
pub struct Imported {
    /// Pretty JSON, ending in a newline; passes `ringlb --check`.
    pub json: String,
    pub report: Report,
}

#[derive(Debug)]
pub enum Failure {
    /// A file HAProxy or keepalived would refuse.
    Malformed {
        source: Source,
        line: usize,
        message: String,
    },
    /// Nothing could be converted into a frontend; the report says why.
    NothingToForward(Report),
    /// The converted file fails the check: a bug of the import.
    Invalid { errors: String, report: Report },
}

/// Converts file contents; pure, so tests and the command share it.
pub fn import(haproxy: &[u8], keepalived: Option<&[u8]>) -> Result<Imported, Failure> {
    let malformed = |source, line, message| Failure::Malformed {
        source,
        line,
        message,
    };
    let h = haproxy::parse(haproxy).map_err(|e| malformed(Source::Haproxy, e.line, e.message))?;
    let k = keepalived
        .map(keepalived::parse)
        .transpose()
        .map_err(|e| malformed(Source::Keepalived, e.line, e.message))?;
    let mut report = Report::default();
    let model = proxy::interpret(&h, &mut report);
    let mut config = convert::convert(&model, &mut report);
    config.vrrp = k.as_deref().and_then(|k| vrrp::convert(k, &mut report));
    if config.frontends.is_empty() {
        return Err(Failure::NothingToForward(report));
    }
    let mut json = match serde_json::to_string_pretty(&config) {
        Ok(j) => j,
        Err(e) => {
            return Err(Failure::Invalid {
                errors: e.to_string(),
                report,
            })
        }
    };
    json.push('\n');
    if let Err(e) = crate::config::parse("imported", &json) {
        return Err(Failure::Invalid {
            errors: e.to_string(),
            report,
        });
    }
    Ok(Imported { json, report })
}

pub fn run(args: &ImportArgs) -> ExitCode {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| eprintln!("ringlb import: cannot read {}: {e}", path.display()))
    };
    let Ok(haproxy) = read(&args.haproxy) else {
        return ExitCode::from(1);
    };
    let keepalived = match args.keepalived.as_ref().map(read).transpose() {
        Ok(k) => k,
        Err(()) => return ExitCode::from(1),
    };
    let h_name = args.haproxy.display().to_string();
    let k_name = args
        .keepalived
        .as_ref()
        .map_or(String::new(), |p| p.display().to_string());
    let file = |s: Source| match s {
        Source::Haproxy => h_name.as_str(),
        Source::Keepalived => k_name.as_str(),
    };
    let print = |report: &Report| {
        for finding in report.sorted() {
            eprintln!(
                "{}",
                Shown {
                    finding,
                    file: file(finding.source)
                }
            );
        }
    };
    let imported = match import(&haproxy, keepalived.as_deref()) {
        Ok(i) => i,
        Err(Failure::Malformed {
            source,
            line,
            message,
        }) => {
            eprintln!("{}:{line}: {message}", file(source));
            return ExitCode::from(1);
        }
        Err(Failure::NothingToForward(report)) => {
            print(&report);
            eprintln!(
                "ringlb import: nothing to forward: no frontend could be converted (see above)"
            );
            return ExitCode::from(1);
        }
        Err(Failure::Invalid { errors, report }) => {
            print(&report);
            eprintln!("ringlb import: the converted configuration fails the check, which is a bug of the import:\n{errors}");
            return ExitCode::from(1);
        }
    };
    print(&imported.report);
    let written = match &args.output {
        Some(path) => std::fs::write(path, &imported.json)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(imported.json.as_bytes())
            .map_err(|e| format!("cannot write the output: {e}")),
    };
    if let Err(e) = written {
        eprintln!("ringlb import: {e}");
        return ExitCode::from(1);
    }
    if imported.report.partial() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// clap exits 2 on a usage error, which `import` uses for "partial": there, a usage
/// error exits 1 like any other error. Help and version still exit 0.
pub fn usage_error(e: clap::Error) -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "import") && e.use_stderr() {
        let _ = e.print();
        return ExitCode::from(1);
    }
    e.exit()
}

#[cfg(test)]
mod tests;
