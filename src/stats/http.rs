//! One request to the stats listener, in the order it is judged: the host it names (421
//! unless this listener), the failed-login limit (429), basic auth (401), then routing by
//! method and path; and the headers every answer carries (no caching, no sniffing, no
//! framing). `/metrics` speaks the format the `Accept` header prefers.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::auth::{self, Login};
use super::origin;
use super::server::{StatsState, BODY_TIMEOUT};
use super::timed_io::{Cycle, ReplyBody};
use super::{admin, html, metrics};
use crate::config::HostPort;

/// The largest admin request body (413 past it).
pub const MAX_ADMIN_BODY: usize = 4096;

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

    pub fn into_response(self, cycle: Rc<Cycle>) -> Response<ReplyBody> {
        let mut response = Response::new(ReplyBody::new(self.body, cycle));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = [
            ("Content-Type", self.content_type.to_string()),
            ("Cache-Control", "no-store".to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("X-Frame-Options", "DENY".to_string()),
        ];
        for (name, value) in headers.into_iter().chain(self.extra) {
            // Every name is ours, and values are made by us; one that is somehow not
            // valid header text is left out rather than sent.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().append(n, v);
            }
        }
        response
    }
}

pub async fn answer(request: Request<Incoming>, peer: SocketAddr, state: &StatsState) -> Reply {
    let settings = state.settings();
    let host = match origin::requested_host(&request) {
        Some(host) if origin::names_listener(&host, settings.bind, &settings.hosts) => host,
        Some(host) => {
            return Reply::text(
                421,
                format!(
                    "this is the stats listener on {}, not {host}; list the name in \
                     stats.hosts to use it",
                    settings.bind
                ),
            )
        }
        None => return Reply::text(400, "a valid Host header is required"),
    };
    let user = match &settings.auth {
        Some(credentials) => {
            let now = Instant::now();
            if let Some(wait) = state.failed_logins().retry_after(peer.ip(), now) {
                return Reply::text(429, "too many failed logins from this address")
                    .with("Retry-After", wait.as_secs().max(1).to_string());
            }
            match auth::check(request.headers(), credentials) {
                Login::User(user) => Some(user),
                login => {
                    if login == Login::Wrong {
                        state.failed_logins_mut().record(peer.ip(), now);
                    }
                    return Reply::text(401, "authentication required").with(
                        "WWW-Authenticate",
                        "Basic realm=\"ringlb stats\", charset=\"UTF-8\"",
                    );
                }
            }
        }
        None => None,
    };
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    match request.uri().path() {
        "/" | "/stats.json" | "/metrics" if !read => {
            Reply::text(405, "method not allowed").with("Allow", "GET, HEAD")
        }
        "/" => {
            let report = state.report();
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
        "/stats.json" => match serde_json::to_string_pretty(&state.report()) {
            Ok(mut body) => {
                body.push('\n');
                Reply::new(200, "application/json", body)
            }
            Err(e) => Reply::text(500, format!("cannot encode: {e}")),
        },
        "/metrics" => {
            let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = metrics::Format::negotiate(accept);
            match metrics::encode(&state.report(), format) {
                Ok(body) => Reply::new(200, format.content_type(), body).with("Vary", "Accept"),
                Err(_) => Reply::text(500, "cannot encode metrics"),
            }
        }
        "/admin/server" if request.method() != Method::POST => {
            Reply::text(405, "method not allowed").with("Allow", "POST")
        }
        "/admin/server" => match user {
            Some(user) => admin_action(request, &host, &user, state).await,
            None => Reply::text(
                403,
                "admin actions need stats.auth (user and password) in the config; \
                 without it the stats listener is read-only",
            ),
        },
        _ => Reply::text(404, "not found"),
    }
}

async fn admin_action(
    request: Request<Incoming>,
    host: &HostPort,
    user: &str,
    state: &StatsState,
) -> Reply {
    if let Some(why) = origin::cross_origin(&request, host) {
        return Reply::text(403, why);
    }
    if !is_json(&request) {
        return Reply::text(
            415,
            format!(
                "admin actions take a JSON body sent as Content-Type: application/json, e.g.\n\
                 curl -u {user} -H 'Content-Type: application/json' \
                 -d '{{\"backend\":\"webfarm\",\"server\":\"web1\",\"state\":\"drain\"}}' \
                 http://{host}/admin/server"
            ),
        );
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ADMIN_BODY as u64) {
        return too_large();
    }
    let body = Limited::new(request.into_body(), MAX_ADMIN_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(),
        Ok(Err(_)) => return Reply::text(400, "the body could not be read"),
        Err(_) => {
            return Reply::text(
                408,
                format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs()),
            )
            .with("Connection", "close")
        }
    };
    admin::handle(&body, user, &state.sources)
}

fn too_large() -> Reply {
    Reply::text(413, format!("the body is over {MAX_ADMIN_BODY} bytes")).with("Connection", "close")
}

/// `application/json`, with or without parameters such as a charset.
fn is_json<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let with = |ct: Option<&str>| {
            let mut b = Request::post("/admin/server");
            if let Some(ct) = ct {
                b = b.header(CONTENT_TYPE, ct);
            }
            is_json(&b.body(()).unwrap())
        };
        assert!(with(Some("application/json")));
        assert!(with(Some("Application/JSON; charset=utf-8")));
        assert!(!with(Some("application/x-www-form-urlencoded")));
        assert!(!with(Some("text/plain")));
        assert!(!with(None));
    }
}
