//! The connection log line, written once per connection when it ends, formatted straight
//! into the worker's log batch in the log's style (no temporary strings for text). Its
//! fields map to HAProxy's `option tcplog` as the README shows.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::conn::End;
use crate::logging::{Level, Line, Millis, Value};

/// Everything one `conn ...` line says.
pub struct ConnLine<'a> {
    pub worker: usize,
    pub client: Option<SocketAddr>,
    /// The peer that sent a PROXY header naming another client.
    pub via: Option<SocketAddr>,
    pub frontend: &'a str,
    /// The address the client connected to (the listener's bind).
    pub bind: SocketAddr,
    /// `None` until routed.
    pub backend: Option<&'a str>,
    /// `None` unless connected.
    pub server: Option<&'a str>,
    /// The server's address, when one was tried.
    pub server_addr: Option<SocketAddr>,
    pub connect: Option<Duration>,
    /// Time spent waiting in the queue.
    pub queue: Duration,
    pub duration: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Connect attempts after the first.
    pub retries: u32,
    pub end: End,
    /// HAProxy's two-character termination state (`--`, `CD`, `sQ` ...).
    pub term: [u8; 2],
    /// On frontends that route by server name: the name read (`Some(None)`: none).
    pub sni: Option<Option<&'a str>>,
    pub id: Option<&'a str>,
    /// Why inspection refused the client.
    pub reason: Option<&'a str>,
}

/// A value or `-`.
struct OrDash<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

impl ConnLine<'_> {
    fn term(&self) -> &str {
        std::str::from_utf8(&self.term).unwrap_or("--")
    }
}

impl fmt::Display for ConnLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conn worker={} client={} frontend={} server={}/{} connect_ms={} duration_ms={} \
             bytes_in={} bytes_out={} end={} bind={} server_addr={} queue_ms={} retries={} \
             term={}",
            self.worker,
            OrDash(self.client),
            self.frontend,
            OrDash(self.backend),
            OrDash(self.server),
            OrDash(self.connect.map(Millis)),
            Millis(self.duration),
            self.bytes_in,
            self.bytes_out,
            self.end.as_str(),
            self.bind,
            OrDash(self.server_addr),
            Millis(self.queue),
            self.retries,
            self.term(),
        )?;
        if let Some(via) = self.via {
            write!(f, " via={via}")?;
        }
        if let Some(sni) = self.sni {
            write!(f, " sni={}", OrDash(sni))?;
        }
        if let Some(id) = self.id {
            write!(f, " id={id}")?;
        }
        if let Some(reason) = self.reason {
            write!(f, " reason={reason:?}")?;
        }
        Ok(())
    }
}

impl Line for ConnLine<'_> {
    fn kind(&self) -> &'static str {
        "conn"
    }

    fn level(&self) -> Level {
        Level::Info
    }

    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }

    fn fields(&self, visit: &mut dyn FnMut(&'static str, Value<'_>)) {
        fn opt_addr(a: Option<SocketAddr>) -> Value<'static> {
            a.map_or(Value::Missing, Value::Addr)
        }
        fn opt_str(s: Option<&str>) -> Value<'_> {
            s.map_or(Value::Missing, Value::Str)
        }
        visit("worker", Value::Int(self.worker as u64));
        visit("client", opt_addr(self.client));
        visit("frontend", Value::Str(self.frontend));
        visit("bind", Value::Addr(self.bind));
        visit("backend", opt_str(self.backend));
        visit("server", opt_str(self.server));
        visit("server_addr", opt_addr(self.server_addr));
        visit("connect_ms", self.connect.map_or(Value::Missing, Value::Ms));
        visit("queue_ms", Value::Ms(self.queue));
        visit("duration_ms", Value::Ms(self.duration));
        visit("bytes_in", Value::Int(self.bytes_in));
        visit("bytes_out", Value::Int(self.bytes_out));
        visit("retries", Value::Int(u64::from(self.retries)));
        visit("end", Value::Str(self.end.as_str()));
        visit("term", Value::Str(self.term()));
        if let Some(via) = self.via {
            visit("via", Value::Addr(via));
        }
        if let Some(sni) = self.sni {
            visit("sni", opt_str(sni));
        }
        if let Some(id) = self.id {
            visit("id", Value::Str(id));
        }
        if let Some(reason) = self.reason {
            visit("reason", Value::Str(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::{self, Format, Framing, Rfc3339, Style};

    fn line() -> ConnLine<'static> {
        ConnLine {
            worker: 1,
            client: Some("127.0.0.1:40312".parse().unwrap()),
            via: None,
            frontend: "web",
            bind: "192.0.2.10:80".parse().unwrap(),
            backend: Some("webfarm"),
            server: Some("web1"),
            server_addr: Some("192.0.2.21:80".parse().unwrap()),
            connect: Some(Duration::from_micros(214)),
            queue: Duration::ZERO,
            duration: Duration::from_micros(12_480),
            bytes_in: 78,
            bytes_out: 201,
            retries: 0,
            end: End::ServerClose,
            term: *b"--",
            sni: None,
            id: None,
            reason: None,
        }
    }

    #[test]
    fn a_forwarded_connection() {
        assert_eq!(
            line().to_string(),
            "conn worker=1 client=127.0.0.1:40312 frontend=web server=webfarm/web1 \
             connect_ms=0.214 duration_ms=12.480 bytes_in=78 bytes_out=201 end=server_close \
             bind=192.0.2.10:80 server_addr=192.0.2.21:80 queue_ms=0.000 retries=0 term=--"
        );
    }

    #[test]
    fn a_refused_client_with_every_extra() {
        let l = ConnLine {
            client: None,
            via: Some("10.0.0.1:1234".parse().unwrap()),
            backend: None,
            server: None,
            server_addr: None,
            connect: None,
            end: End::BadProxy,
            term: *b"PR",
            sni: Some(None),
            id: Some("00ab"),
            reason: Some("bad \"signature\""),
            ..line()
        };
        assert_eq!(
            l.to_string(),
            "conn worker=1 client=- frontend=web server=-/- connect_ms=- duration_ms=12.480 \
             bytes_in=78 bytes_out=201 end=bad_proxy bind=192.0.2.10:80 server_addr=- \
             queue_ms=0.000 retries=0 term=PR via=10.0.0.1:1234 sni=- id=00ab \
             reason=\"bad \\\"signature\\\"\""
        );
    }

    #[test]
    fn as_json_every_field_is_typed() {
        let mut out = Vec::new();
        let style = Style {
            format: Format::Json,
            framing: Framing::Stream,
        };
        logging::encode(style, Rfc3339(Duration::ZERO), &line(), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kind"], "conn");
        assert_eq!(v["server"], "web1");
        assert_eq!(v["backend"], "webfarm");
        assert_eq!(v["connect_ms"], 0.214);
        assert_eq!(v["bytes_out"], 201);
        assert_eq!(v["term"], "--");
        assert!(v["via"].is_null());
    }
}
