//! Basic auth of the stats listener: the credentials of a request compared in constant
//! time, and the table of recent failed logins by source address that turns a password
//! guesser away (429) after a few tries. The table is bounded; time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::header::{HeaderMap, AUTHORIZATION};
use subtle::ConstantTimeEq;

use crate::config::StatsAuth;

/// Failed logins an address may have within `FAILED_LOGIN_WINDOW` before it is refused
/// (429) until the window ends.
pub const MAX_FAILED_LOGINS: u32 = 5;
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; past it, the one whose last failure is oldest is
/// forgotten.
pub const FAILED_LOGIN_ADDRESSES: usize = 1024;

/// What a request's `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// No credentials: a browser's first request, not a failed login.
    Missing,
    Wrong,
    User(String),
}

pub fn check(headers: &HeaderMap, auth: &StatsAuth) -> Login {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Login::Missing;
    };
    match credentials(value.as_bytes()) {
        Some((user, password)) => {
            // Both compared, neither short-circuits the other; only a length difference
            // returns early, and lengths are no secret worth the complexity.
            let same = user.as_bytes().ct_eq(auth.user.as_bytes())
                & password.as_bytes().ct_eq(auth.password.as_bytes());
            if bool::from(same) {
                Login::User(user)
            } else {
                Login::Wrong
            }
        }
        None => Login::Wrong,
    }
}

/// `Basic base64(user:password)`.
fn credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Recent failed logins by source (an IPv6 client by its /64, which one host can fill).
#[derive(Debug, Default)]
pub struct FailedLogins {
    by_source: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// The window's start: the first failure counted in it.
    since: Instant,
    last: Instant,
}

impl FailedLogins {
    /// How long `addr` must wait before it may try again; `None` when it may now.
    pub fn retry_after(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let f = self.by_source.get(&source(addr))?;
        let end = f.since + FAILED_LOGIN_WINDOW;
        (f.count >= MAX_FAILED_LOGINS && now < end).then(|| end - now)
    }

    pub fn record(&mut self, addr: IpAddr, now: Instant) {
        let key = source(addr);
        if !self.by_source.contains_key(&key) && self.by_source.len() >= FAILED_LOGIN_ADDRESSES {
            self.by_source
                .retain(|_, f| now.saturating_duration_since(f.since) < FAILED_LOGIN_WINDOW);
            if self.by_source.len() >= FAILED_LOGIN_ADDRESSES {
                let oldest = self.by_source.iter().min_by_key(|(_, f)| f.last);
                if let Some((&k, _)) = oldest {
                    self.by_source.remove(&k);
                }
            }
        }
        let f = self.by_source.entry(key).or_insert(Failures {
            count: 0,
            since: now,
            last: now,
        });
        if now.saturating_duration_since(f.since) >= FAILED_LOGIN_WINDOW {
            *f = Failures {
                count: 0,
                since: now,
                last: now,
            };
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_source.len()
    }
}

fn source(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn auth() -> StatsAuth {
        StatsAuth {
            user: "admin".into(),
            password: "s3cret".into(),
        }
    }

    fn login(value: Option<&str>) -> Login {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        check(&headers, &auth())
    }

    fn basic(user_password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    }

    #[test]
    fn credentials_must_match_in_full() {
        assert_eq!(login(None), Login::Missing);
        assert_eq!(
            login(Some(&basic("admin:s3cret"))),
            Login::User("admin".into())
        );
        assert_eq!(
            login(Some(&basic("admin:s3cret").replace("Basic", "bAsIc"))),
            Login::User("admin".into())
        );
        for wrong in [
            "admin:s3cre",
            "admin:s3cret2",
            "admin:S3cret",
            "Admin:s3cret",
            ":",
            "",
        ] {
            assert_eq!(login(Some(&basic(wrong))), Login::Wrong, "{wrong:?}");
        }
        for bad in ["Basic", "Basic !!!", "Bearer abc", "admin:s3cret"] {
            assert_eq!(login(Some(bad)), Login::Wrong, "{bad:?}");
        }
    }

    #[test]
    fn five_failures_block_an_address_for_the_rest_of_the_window() {
        let mut t = FailedLogins::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        for i in 0..MAX_FAILED_LOGINS {
            assert_eq!(t.retry_after(a, t0), None, "after {i} failures");
            t.record(a, t0 + Duration::from_secs(u64::from(i)));
        }
        let now = t0 + Duration::from_secs(10);
        assert_eq!(t.retry_after(a, now), Some(Duration::from_secs(50)));
        assert_eq!(
            t.retry_after(b, now),
            None,
            "another address is not affected"
        );
        let end = t0 + FAILED_LOGIN_WINDOW;
        assert_eq!(t.retry_after(a, end), None);
        // A failure after the window starts a new one.
        t.record(a, end);
        assert_eq!(t.retry_after(a, end + Duration::from_secs(1)), None);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let mut t = FailedLogins::default();
        let now = Instant::now();
        for i in 0..MAX_FAILED_LOGINS {
            let addr: IpAddr = format!("2001:db8:0:1::{}", i + 1).parse().unwrap();
            t.record(addr, now);
        }
        let other: IpAddr = "2001:db8:0:1:ffff::9".parse().unwrap();
        assert!(t.retry_after(other, now).is_some());
        let elsewhere: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(t.retry_after(elsewhere, now).is_none());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source(mapped), IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest() {
        let mut t = FailedLogins::default();
        let t0 = Instant::now();
        let first: IpAddr = [10, 0, 0, 0].into();
        for _ in 0..MAX_FAILED_LOGINS {
            t.record(first, t0);
        }
        for i in 1..=FAILED_LOGIN_ADDRESSES as u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.record(addr, t0 + Duration::from_millis(u64::from(i)));
            assert!(t.len() <= FAILED_LOGIN_ADDRESSES);
        }
        assert_eq!(t.len(), FAILED_LOGIN_ADDRESSES);
        assert_eq!(t.retry_after(first, t0 + Duration::from_secs(2)), None);
    }
}
