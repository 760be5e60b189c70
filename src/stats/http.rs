//! One request to the stats listener: basic auth, routing by method and path, and the
//! response headers every answer carries (no caching, no sniffing, no framing).

use std::io::Read;

use base64::Engine as _;
use tiny_http::{Header, Method, Request, Response};

use super::report::{self, Rates};
use super::{admin, html, metrics, Sources};
use crate::config::{Stats, StatsAuth};

/// The largest admin request body read.
const MAX_BODY: u64 = 4096;

/// An answer before it is sent.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub extra: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
            extra: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into();
        body.push('\n');
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.extra.push((name, value.into()));
        self
    }
}

/// Answers one request; a client that went away meanwhile is no error of ours.
pub fn handle(mut request: Request, settings: &Stats, sources: &Sources, rates: &Rates) {
    let reply = route(&mut request, settings, sources, rates);
    let mut response = Response::from_string(reply.body).with_status_code(reply.status);
    let headers = [
        ("Content-Type", reply.content_type.to_string()),
        ("Cache-Control", "no-store".to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("X-Frame-Options", "DENY".to_string()),
    ];
    for (name, value) in headers.into_iter().chain(reply.extra) {
        // Every name is ASCII, and values are made by us; a value that is somehow not
        // valid header text is left out rather than sent.
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn route(request: &mut Request, settings: &Stats, sources: &Sources, rates: &Rates) -> Reply {
    let user = match &settings.auth {
        Some(auth) => match authenticated(request, auth) {
            Some(user) => user,
            None => {
                return Reply::text(401, "authentication required").with(
                    "WWW-Authenticate",
                    "Basic realm=\"ringlb stats\", charset=\"UTF-8\"",
                )
            }
        },
        // No auth (loopback only): actions are logged with the client's address.
        None => request
            .remote_addr()
            .map_or_else(|| "-".to_string(), |a| a.to_string()),
    };
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    let read = matches!(method, Method::Get | Method::Head);
    match path.as_str() {
        "/" | "/stats.json" | "/metrics" if !read => {
            Reply::text(405, "method not allowed").with("Allow", "GET, HEAD")
        }
        "/" => {
            let report = report::collect(sources, rates);
            Reply::new(
                200,
                "text/html; charset=utf-8",
                html::render(&report, settings.refresh),
            )
            .with(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'",
            )
        }
        "/stats.json" => {
            let report = report::collect(sources, rates);
            match serde_json::to_string_pretty(&report) {
                Ok(mut body) => {
                    body.push('\n');
                    Reply::new(200, "application/json", body)
                }
                Err(e) => Reply::text(500, format!("cannot encode: {e}")),
            }
        }
        "/metrics" => {
            let report = report::collect(sources, rates);
            match metrics::encode(report) {
                Ok(body) => Reply::new(200, metrics::CONTENT_TYPE, body),
                Err(_) => Reply::text(500, "cannot encode metrics"),
            }
        }
        "/admin/server" if method != Method::Post => {
            Reply::text(405, "method not allowed").with("Allow", "POST")
        }
        "/admin/server" => {
            if let Some(why) = cross_origin(request) {
                return Reply::text(403, why);
            }
            let content_type = header(request, "Content-Type").unwrap_or_default();
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_BODY + 1)
                .read_to_end(&mut body);
            if read.is_err() || body.len() as u64 > MAX_BODY {
                return Reply::text(400, format!("body missing or over {MAX_BODY} bytes"));
            }
            admin::handle(&content_type, &body, &user, sources)
        }
        _ => Reply::text(404, "not found"),
    }
}

/// The user, when the request carries this listener's credentials.
fn authenticated(request: &Request, auth: &StatsAuth) -> Option<String> {
    let value = header(request, "Authorization")?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    // Both compared in full, so the time taken says nothing about where they differ.
    let user_ok = same(user.as_bytes(), auth.user.as_bytes());
    let password_ok = same(password.as_bytes(), auth.password.as_bytes());
    (user_ok & password_ok).then(|| user.to_string())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

/// Browsers send `Origin` with a cross-site POST; a page elsewhere must not be able to
/// drive admin actions with credentials the browser remembers.
fn cross_origin(request: &Request) -> Option<String> {
    let origin = header(request, "Origin")?;
    let host = header(request, "Host").unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(&origin);
    (origin_host != host).then(|| format!("cross-origin request from {origin} refused"))
}

fn header(request: &Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn comparison_needs_equal_length_and_bytes() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"secret2", b"secret"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }
}
