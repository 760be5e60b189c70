//! The `log` section: where connection and event lines go (stderr, syslog, journald) and
//! in which format (text, json).

use serde::Deserialize;

use super::Problems;
use crate::logging::{Address, Format, Framing, Style, Target};

/// journald's native-protocol socket.
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// syslog's facilities, by name, in number order (`kern` = 0 ... `local7` = 23).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    target: Option<RawTarget>,
    format: Option<RawFormat>,
    /// syslog: `/dev/log` (default), another unix socket path, or `ip:port` (UDP).
    /// journald: its socket path (default `/run/systemd/journal/socket`).
    address: Option<String>,
    /// syslog: the facility of every line (default `local0`).
    facility: Option<String>,
    /// syslog: `rfc5424`, or `rfc3164` (syslog(3)'s local format); default: RFC 3164 on a
    /// unix socket (what local daemons' socket parsers expect), RFC 5424 over UDP.
    protocol: Option<RawProtocol>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawProtocol {
    Rfc5424,
    Rfc3164,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawTarget {
    Stderr,
    Syslog,
    Journald,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawFormat {
    Text,
    Json,
}

pub(super) fn validate(raw: &RawLog, p: &mut Problems<'_>) -> Target {
    let format = match raw.format {
        Some(RawFormat::Json) => Format::Json,
        _ => Format::Text,
    };
    let target = raw.target.unwrap_or(RawTarget::Stderr);
    let facility = match (&raw.facility, target) {
        (None, _) => 16,
        (Some(name), RawTarget::Syslog) => match FACILITIES.iter().position(|f| f == name) {
            Some(n) => n as u8,
            None => {
                p.add(
                    "log.facility".into(),
                    format!("{name:?} is not a syslog facility (e.g. \"local0\", \"daemon\")"),
                );
                16
            }
        },
        (Some(_), _) => {
            p.add(
                "log.facility".into(),
                "only applies to \"target\": \"syslog\"".into(),
            );
            16
        }
    };
    let default_address = match target {
        RawTarget::Stderr => {
            if raw.address.is_some() {
                p.add(
                    "log.address".into(),
                    "stderr has no address; give \"target\": \"syslog\" or \"journald\"".into(),
                );
            }
            return Target {
                style: Style {
                    format,
                    framing: Framing::Stream,
                },
                address: None,
            };
        }
        RawTarget::Syslog => SYSLOG_SOCKET,
        RawTarget::Journald => JOURNALD_SOCKET,
    };
    let text = raw.address.as_deref().unwrap_or(default_address);
    let address = match (Address::parse(text), target) {
        (Some(Address::Udp(_)), RawTarget::Journald) => {
            p.add(
                "log.address".into(),
                "journald listens on a unix socket: give its path".into(),
            );
            Address::Unix(JOURNALD_SOCKET.into())
        }
        (Some(a), _) => a,
        (None, _) => {
            p.add(
                "log.address".into(),
                format!("{text:?} is neither a socket path (\"/dev/log\") nor ip:port"),
            );
            Address::Unix(default_address.into())
        }
    };
    if raw.protocol.is_some() && !matches!(target, RawTarget::Syslog) {
        p.add(
            "log.protocol".into(),
            "only applies to \"target\": \"syslog\"".into(),
        );
    }
    let rfc5424 = match raw.protocol {
        Some(protocol) => protocol == RawProtocol::Rfc5424,
        None => matches!(address, Address::Udp(_)),
    };
    let framing = match target {
        RawTarget::Journald => Framing::Journald,
        _ => Framing::Syslog { facility, rfc5424 },
    };
    Target {
        style: Style { format, framing },
        address: Some(address),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::logging::{Address, Format, Framing};

    fn with_log(log: &str) -> String {
        format!(
            r#"{{ "log": {log},
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:1"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "127.0.0.1:2" }} ] }} ] }}"#
        )
    }

    #[test]
    fn defaults_and_targets() {
        let c = parse("x.json", &with_log("{}")).unwrap();
        assert_eq!(c.log.style.framing, Framing::Stream);
        assert_eq!(c.log.address, None);
        let c = parse(
            "x.json",
            &with_log(r#"{ "target": "syslog", "format": "json" }"#),
        )
        .unwrap();
        assert_eq!(c.log.style.format, Format::Json);
        assert_eq!(
            c.log.style.framing,
            Framing::Syslog {
                facility: 16,
                rfc5424: false
            }
        );
        assert_eq!(c.log.address, Some(Address::Unix("/dev/log".into())));
        let c = parse(
            "x.json",
            &with_log(
                r#"{ "target": "syslog", "address": "127.0.0.1:514", "facility": "daemon" }"#,
            ),
        )
        .unwrap();
        assert_eq!(
            c.log.style.framing,
            Framing::Syslog {
                facility: 3,
                rfc5424: true
            }
        );
        assert_eq!(
            c.log.address,
            Some(Address::Udp("127.0.0.1:514".parse().unwrap()))
        );
        let c = parse("x.json", &with_log(r#"{ "target": "journald" }"#)).unwrap();
        assert_eq!(c.log.style.framing, Framing::Journald);
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = |log: &str| parse("x.json", &with_log(log)).unwrap_err().to_string();
        assert!(e(r#"{ "target": "syslog", "facility": "local9" }"#)
            .contains("log.facility: \"local9\" is not a syslog facility"));
        assert!(e(r#"{ "target": "syslog", "address": "example.org:514" }"#)
            .contains("log.address: \"example.org:514\" is neither"));
        assert!(e(r#"{ "address": "/dev/log" }"#).contains("log.address: stderr has no address"));
        assert!(e(r#"{ "target": "journald", "address": "127.0.0.1:1" }"#)
            .contains("journald listens on a unix socket"));
        assert!(e(r#"{ "target": "file" }"#).contains("log.target"));
    }
}
