//! `POST /admin/server`: set a server READY, DRAIN or MAINT and optionally its weight,
//! from a JSON or form body. The registry publishes a new snapshot at once, so workers
//! pick by the new state from their next connection; the action is logged with who did it.

use serde::Deserialize;

use super::http::Reply;
use super::Sources;
use crate::control;
use crate::logging::event;
use crate::registry::AdminError;
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

pub fn handle(content_type: &str, body: &[u8], who: &str, sources: &Sources) -> Reply {
    let action = match parse(content_type, body) {
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
    let result = control::lock(&sources.registry).set_admin(
        &action.backend,
        &action.server,
        state,
        action.weight,
        who,
    );
    match result {
        Ok((effective, weight)) => {
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

fn parse(content_type: &str, body: &[u8]) -> Result<Action, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || (media.is_empty() && text.trim_start().starts_with('{')) {
        return serde_json::from_str(text).map_err(|e| format!("bad JSON body: {e}"));
    }
    if media != "application/x-www-form-urlencoded" && !media.is_empty() {
        return Err(format!(
            "content type {media:?}: send application/json or application/x-www-form-urlencoded"
        ));
    }
    let mut fields = std::collections::HashMap::new();
    for pair in text.trim().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_form(k)?;
        let v = decode_form(v)?;
        if !matches!(k.as_str(), "backend" | "server" | "state" | "weight") {
            return Err(format!("unknown field {k:?}"));
        }
        fields.insert(k, v);
    }
    let mut take = |k: &str| {
        fields
            .remove(k)
            .ok_or_else(|| format!("missing field {k:?}"))
    };
    let (backend, server, state) = (take("backend")?, take("server")?, take("state")?);
    let weight = match fields.remove("weight") {
        Some(w) => Some(
            w.parse()
                .map_err(|_| format!("weight {w:?} is not a number"))?,
        ),
        None => None,
    };
    Ok(Action {
        backend,
        server,
        state,
        weight,
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode_form(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8"))
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
    fn json_and_form_bodies() {
        let json = br#"{"backend":"webfarm","server":"web1","state":"drain"}"#;
        assert_eq!(
            parse("application/json", json),
            Ok(action("webfarm", "web1", "drain", None))
        );
        assert_eq!(
            parse("", json),
            Ok(action("webfarm", "web1", "drain", None))
        );
        assert_eq!(
            parse(
                "application/x-www-form-urlencoded",
                b"backend=web+farm&server=w%C3%A9b1&state=MAINT&weight=3"
            ),
            Ok(action("web farm", "wéb1", "MAINT", Some(3)))
        );
        assert!(
            parse("application/x-www-form-urlencoded", b"backend=a&server=b")
                .unwrap_err()
                .contains("missing field \"state\"")
        );
        assert!(parse("text/plain", b"x")
            .unwrap_err()
            .contains("content type"));
        assert!(parse("application/json", br#"{"backend":"a"}"#)
            .unwrap_err()
            .starts_with("bad JSON body"));
        assert!(decode_form("%G1").is_err());
        assert!(decode_form("%4").is_err());
    }
}
