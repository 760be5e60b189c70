//! The connection log line, written once per connection when it ends, formatted straight
//! into the worker's log batch (no temporary strings).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::conn::End;

/// Everything one `conn ...` line says.
pub struct ConnLine<'a> {
    pub worker: usize,
    pub client: Option<SocketAddr>,
    /// The peer that sent a PROXY header naming another client.
    pub via: Option<SocketAddr>,
    pub frontend: &'a str,
    /// `None` until routed.
    pub backend: Option<&'a str>,
    /// `None` unless connected.
    pub server: Option<&'a str>,
    pub connect: Option<Duration>,
    pub duration: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub end: End,
    /// On frontends that route by server name: the name read (`Some(None)`: none).
    pub sni: Option<Option<&'a str>>,
    pub id: Option<&'a str>,
    /// Why inspection refused the client.
    pub reason: Option<&'a str>,
}

/// Milliseconds with three decimals.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0.as_secs_f64() * 1000.0)
    }
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

impl fmt::Display for ConnLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conn worker={} client={} frontend={} server={}/{} connect_ms={} duration_ms={} \
             bytes_in={} bytes_out={} end={}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> ConnLine<'static> {
        ConnLine {
            worker: 1,
            client: Some("127.0.0.1:40312".parse().unwrap()),
            via: None,
            frontend: "web",
            backend: Some("webfarm"),
            server: Some("web1"),
            connect: Some(Duration::from_micros(214)),
            duration: Duration::from_micros(12_480),
            bytes_in: 78,
            bytes_out: 201,
            end: End::ServerClose,
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
             connect_ms=0.214 duration_ms=12.480 bytes_in=78 bytes_out=201 end=server_close"
        );
    }

    #[test]
    fn a_refused_client_with_every_extra() {
        let l = ConnLine {
            client: None,
            via: Some("10.0.0.1:1234".parse().unwrap()),
            backend: None,
            server: None,
            connect: None,
            end: End::BadProxy,
            sni: Some(None),
            id: Some("00ab"),
            reason: Some("bad \"signature\""),
            ..line()
        };
        assert_eq!(
            l.to_string(),
            "conn worker=1 client=- frontend=web server=-/- connect_ms=- duration_ms=12.480 \
             bytes_in=78 bytes_out=201 end=bad_proxy via=10.0.0.1:1234 sni=- id=00ab \
             reason=\"bad \\\"signature\\\"\""
        );
    }
}
