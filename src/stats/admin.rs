//! `POST /admin/server`: set a server READY, DRAIN or MAINT and optionally its weight,
//! from a JSON body. The registry publishes a new snapshot at once, so workers
//! pick by the new state from their next connection; the action is logged with who did it.

use serde::Deserialize;

use super::http::Reply;
use super::Sources;
use crate::logging::event;
use crate::registry::{self, AdminError};
use crate::table::AdminState;

/// `{"backend":"webfarm","server":"web1","state":"drain","weight":3}`; `weight` optional.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Action {
    backend: String,
    server: String,
    state: String,
    weight: Option<u32>,
}

pub fn handle(body: &[u8], who: &str, sources: &Sources) -> Reply {
    let action = match parse(body) {
        Ok(a) => a,
        Err(e) => return Reply::text(400, e),
    };
    let state = match action.state.to_ascii_lowercase().as_str() {
        "ready" => AdminState::Ready,
        "drain" => AdminState::Drain,
        "maint" => AdminState::Maint,
        other => {
            return Reply::text(
                400,
                format!("state {other:?} is not one of ready, drain, maint"),
            )
        }
    };
    let result = registry::lock(&sources.registry).set_admin(
        &action.backend,
        &action.server,
        Some(state),
        action.weight,
        who,
    );
    match result {
        Ok((effective, _, weight)) => {
            let weight_note = action
                .weight
                .map_or_else(String::new, |w| format!(", weight {w}"));
            event!(
                notice: "admin {who}: {}/{} set to {}{weight_note}",
                action.backend,
                action.server,
                state.as_str()
            );
            let body = serde_json::json!({
                "backend": action.backend,
                "server": action.server,
                "admin": state.as_str(),
                "state": effective.as_str(),
                "weight": weight,
            });
            Reply::new(200, "application/json", format!("{body}\n"))
        }
        Err(e @ AdminError::Weight(_)) => Reply::text(400, e.to_string()),
        Err(e) => Reply::text(404, e.to_string()),
    }
}

fn parse(body: &[u8]) -> Result<Action, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    serde_json::from_str(text).map_err(|e| format!("bad JSON body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(backend: &str, server: &str, state: &str, weight: Option<u32>) -> Action {
        Action {
            backend: backend.into(),
            server: server.into(),
            state: state.into(),
            weight,
        }
    }

    #[test]
    fn json_bodies() {
        let json = br#"{"backend":"webfarm","server":"web1","state":"drain"}"#;
        assert_eq!(parse(json), Ok(action("webfarm", "web1", "drain", None)));
        assert_eq!(
            parse(br#"{"backend":"b","server":"s","state":"MAINT","weight":3}"#),
            Ok(action("b", "s", "MAINT", Some(3)))
        );
        assert!(parse(br#"{"backend":"a"}"#)
            .unwrap_err()
            .starts_with("bad JSON body"));
        assert!(
            parse(br#"{"backend":"a","server":"s","state":"drain","x":1}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        assert_eq!(parse(b"\xff").unwrap_err(), "body is not UTF-8");
    }
}
