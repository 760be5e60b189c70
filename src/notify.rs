//! systemd's notify protocol (`Type=notify`): `READY=1` once the listeners are bound and
//! the first health round is done, `RELOADING=1` then `READY=1` around a reload, a one-line
//! `STATUS=`, `WATCHDOG=1` while every worker turns its loop, `STOPPING=1` when draining.
//! A datagram to `$NOTIFY_SOCKET`; without that variable (not under systemd) nothing is
//! sent. Written here rather than taken from a crate: it is one sendto.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::logging::event;

pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    /// `WatchdogSec=` of the unit, when set (`$WATCHDOG_USEC`).
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` asks for (a path, or `@name` in the abstract
    /// namespace), if any.
    pub fn from_env() -> Notifier {
        let path = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty());
        let socket = path.and_then(|p| match UnixDatagram::unbound() {
            Ok(s) => Some((s, p)),
            Err(e) => {
                event!(warning: "systemd notify socket: {e}");
                None
            }
        });
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&us| us > 0)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to ping the watchdog: half its timeout, as systemd recommends.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends `state` (newline-separated `KEY=value` lines).
    pub fn send(&self, state: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let result = if let Some(name) = path.strip_prefix('@') {
            send_abstract(socket, name, state.as_bytes())
        } else {
            socket.send_to(state.as_bytes(), path).map(drop)
        };
        if let Err(e) = result {
            event!(warning: "systemd notify ({path}): {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

/// sendto(2) to an abstract socket address (`@name`), which std's paths cannot name.
fn send_abstract(socket: &UnixDatagram, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(bytes, &addr).map(drop)
}

/// CLOCK_MONOTONIC in microseconds, which `RELOADING=1` must carry.
fn monotonic_usec() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}
