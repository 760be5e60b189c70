//! The control socket and `ringlb ctl`: a unix socket (mode 0600) that answers one
//! command per connection, as HAProxy's runtime API does: `show info|frontends|servers|
//! vrrp`, `set server B/S state ready|drain|maint`, `set server B/S weight N`, `shutdown
//! sessions server B/S`, `reload`. Human-readable tables, or JSON with `--json`.
//!
//! The answer's first line is `OK` or `ERROR <why>`; the rest is the body. `server.rs`
//! owns the socket and its thread, `client.rs` the subcommand, `show.rs` the tables.

mod client;
mod server;
mod show;

use crate::table::AdminState;

pub use client::run as run_client;
pub use server::serve;

/// One command, as parsed from its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ShowInfo,
    ShowFrontends,
    ShowServers,
    ShowVrrp,
    ShowAnnounce,
    SetState {
        backend: String,
        server: String,
        state: AdminState,
    },
    SetWeight {
        backend: String,
        server: String,
        weight: u32,
    },
    /// Close that server's established connections now.
    ShutdownSessions {
        backend: String,
        server: String,
    },
    /// Reload the config file and wait for the outcome.
    Reload,
}

/// A command and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub request: Request,
    pub json: bool,
}

/// The commands, for errors and `help`.
pub const USAGE: &str = "show info | show frontends | show servers | show vrrp | show announce | \
    set server BACKEND/SERVER state ready|drain|maint | set server BACKEND/SERVER weight N | \
    shutdown sessions server BACKEND/SERVER | reload   (add --json for JSON)";

/// Most bytes of one command line.
pub const MAX_LINE: usize = 4096;

/// Why a command line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no command; commands: {usage}", usage = USAGE)]
    Empty,
    #[error("unknown command {0:?}; commands: {usage}", usage = USAGE)]
    Unknown(String),
    #[error("{0:?} is not BACKEND/SERVER")]
    NotServer(String),
    #[error("state {0:?} is not ready, drain or maint")]
    State(String),
    #[error("weight {0:?} is not a number")]
    Weight(String),
}

/// Parses one command line (`--json` may stand anywhere).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let mut json = false;
    let words: Vec<&str> = line
        .split_whitespace()
        .filter(|w| {
            let flag = *w == "--json";
            json |= flag;
            !flag
        })
        .collect();
    let server = |w: &str| -> Result<(String, String), ParseError> {
        match w.split_once('/') {
            Some((b, s)) if !b.is_empty() && !s.is_empty() => Ok((b.into(), s.into())),
            _ => Err(ParseError::NotServer(w.to_string())),
        }
    };
    let request = match words.as_slice() {
        ["show", "info"] => Request::ShowInfo,
        ["show", "frontends"] => Request::ShowFrontends,
        ["show", "servers"] => Request::ShowServers,
        ["show", "vrrp"] => Request::ShowVrrp,
        ["show", "announce"] => Request::ShowAnnounce,
        ["set", "server", bs, "state", state] => {
            let (backend, server) = server(bs)?;
            let state = match state.to_ascii_lowercase().as_str() {
                "ready" => AdminState::Ready,
                "drain" => AdminState::Drain,
                "maint" => AdminState::Maint,
                other => return Err(ParseError::State(other.to_string())),
            };
            Request::SetState {
                backend,
                server,
                state,
            }
        }
        ["set", "server", bs, "weight", n] => {
            let (backend, server) = server(bs)?;
            let weight = n.parse().map_err(|_| ParseError::Weight(n.to_string()))?;
            Request::SetWeight {
                backend,
                server,
                weight,
            }
        }
        ["shutdown", "sessions", "server", bs] => {
            let (backend, server) = server(bs)?;
            Request::ShutdownSessions { backend, server }
        }
        ["reload"] => Request::Reload,
        [] => return Err(ParseError::Empty),
        _ => return Err(ParseError::Unknown(line.to_string())),
    };
    Ok(Command { request, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let c = parse("show servers --json").unwrap();
        assert_eq!(c.request, Request::ShowServers);
        assert!(c.json);
        assert_eq!(
            parse("set server webfarm/web1 state DRAIN")
                .unwrap()
                .request,
            Request::SetState {
                backend: "webfarm".into(),
                server: "web1".into(),
                state: AdminState::Drain
            }
        );
        assert_eq!(
            parse("  set  server b/s weight 3 ").unwrap().request,
            Request::SetWeight {
                backend: "b".into(),
                server: "s".into(),
                weight: 3
            }
        );
        assert_eq!(
            parse("shutdown sessions server b/s").unwrap().request,
            Request::ShutdownSessions {
                backend: "b".into(),
                server: "s".into()
            }
        );
        assert_eq!(parse("reload").unwrap().request, Request::Reload);
    }

    #[test]
    fn bad_commands_say_why() {
        let why = |line| parse(line).unwrap_err().to_string();
        assert!(why("").starts_with("no command"));
        assert!(why("show everything").starts_with("unknown command"));
        assert!(why("set server web1 state drain").contains("\"web1\" is not BACKEND/SERVER"));
        assert!(why("set server b/s state off").contains("not ready, drain or maint"));
        assert!(why("set server b/s weight -1").contains("not a number"));
    }
}
