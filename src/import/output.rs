//! The ringlb configuration an import writes: the JSON file's shape with its fields in the
//! order the README's tables give them, so the output reads like a hand-written file and
//! is the same for the same input. Absent fields take ringlb's defaults.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<Vrrp>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Frontend {
    pub name: String,
    pub bind: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_proxy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_trusted: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspect_timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub sni: String,
    pub backend: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Backend {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(skip_serializing_if = "Timeouts::is_empty")]
    pub timeouts: Timeouts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl Timeouts {
    fn is_empty(&self) -> bool {
        *self == Timeouts::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Vec<Status>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fall: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive_errors: Option<u32>,
}

/// An HTTP status code, or a class such as `"2xx"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Status {
    Code(u16),
    Class(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Server {
    pub name: String,
    pub addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_proxy: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub bind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<StatsAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsAuth {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Vrrp {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<Script>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<TrackFile>,
    pub instances: Vec<Instance>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Script {
    pub name: String,
    pub script: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fall: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advert_interval: Option<String>,
    pub vips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicast_peers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt_delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garp_repeat: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garp_delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garp_refresh: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub track_scripts: Vec<Tracked>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<Tracked>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub track_files: Vec<Tracked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tracked {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_in_the_readme_s_order_and_defaults_are_left_out() {
        let c = Config {
            workers: Some(2),
            frontends: vec![Frontend {
                name: "web".into(),
                bind: vec!["192.0.2.10:80".into()],
                backend: Some("farm".into()),
                ..Frontend::default()
            }],
            backends: vec![Backend {
                name: "farm".into(),
                servers: vec![Server {
                    name: "a".into(),
                    addr: "192.0.2.21:80".into(),
                    ..Server::default()
                }],
                ..Backend::default()
            }],
            ..Config::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"workers":2,"frontends":[{"name":"web","bind":["192.0.2.10:80"],"backend":"farm"}],"backends":[{"name":"farm","servers":[{"name":"a","addr":"192.0.2.21:80"}]}]}"#
        );
    }
}
