//! `ringlb ctl`: sends one command to the control socket and prints the answer; exits 0
//! when it says `OK`, 1 otherwise (so `ExecReload=ringlb ctl reload` makes `systemctl
//! reload` fail when the reload failed).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Longer than any reload takes, so a slow reload is waited for, not abandoned.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

pub fn run(socket: &Path, words: &[String], json: bool) -> ExitCode {
    let mut line = words.join(" ");
    if json {
        line.push_str(" --json");
    }
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "ringlb ctl: cannot reach {}: {e} (is ringlb running? is this its control socket?)",
                socket.display()
            );
            return ExitCode::from(1);
        }
    };
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    if let Err(e) = writeln!(stream, "{line}") {
        eprintln!("ringlb ctl: sending the command: {e}");
        return ExitCode::from(1);
    }
    let mut answer = String::new();
    if let Err(e) = stream.read_to_string(&mut answer) {
        eprintln!("ringlb ctl: reading the answer: {e}");
        return ExitCode::from(1);
    }
    match answer.split_once('\n') {
        Some(("OK", body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        _ => {
            let why = answer.trim_end();
            eprintln!("ringlb ctl: {}", why.strip_prefix("ERROR ").unwrap_or(why));
            ExitCode::from(1)
        }
    }
}
