//! keepalived's tracking and notify hooks in the `vrrp` section: scripts and files defined
//! once under `vrrp` and tracked by name from instances, interfaces tracked per instance,
//! and the notify command lines with their common timeout.
//!
//! Names are resolved here, and each tracked item carries the weight that applies to it
//! (its own override or its definition's), so the VRRP thread never looks anything up.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::super::{HumanDuration, Problems};

/// A command run every `interval`; its exit status counts as a pass (0) or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// A command line, run by `/bin/sh -c`.
    pub script: String,
    pub interval: Duration,
    /// A run still going after this long counts as a failure.
    pub timeout: Duration,
    /// 0: a failed script puts the instances tracking it in FAULT. Otherwise added to
    /// the priority while passing (positive) or while failing (negative).
    pub weight: i16,
    /// Consecutive passes to count as passing, failures to count as failing.
    pub rise: u32,
    pub fall: u32,
}

/// A file holding a number, which, times the weight, is added to the priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub name: String,
    pub path: String,
    pub weight: i16,
}

/// What one instance tracks and whom it tells about its transitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceHooks {
    pub track_scripts: Vec<Tracked>,
    pub track_interfaces: Vec<TrackedInterface>,
    pub track_files: Vec<Tracked>,
    /// Command lines run by `/bin/sh -c` on entering each state.
    pub notify_master: Option<String>,
    pub notify_backup: Option<String>,
    pub notify_fault: Option<String>,
    pub notify_stop: Option<String>,
}

/// A script or file tracked by an instance, with the weight that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// Index into `Vrrp::scripts` or `Vrrp::files`.
    pub index: usize,
    pub weight: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedInterface {
    pub name: String,
    /// `None`: a link that is down puts the instance in FAULT. Otherwise added to the
    /// priority while up (positive) or while down (negative).
    pub weight: Option<i16>,
}

pub const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// keepalived's bounds: a script or interface can move the priority by at most this much.
pub const MAX_SCRIPT_WEIGHT: i32 = 253;
/// A file's value may be negative, so its weight reaches one further (keepalived's bound).
pub const MAX_FILE_WEIGHT: i32 = 254;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawScript {
    name: String,
    script: String,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    weight: Option<i32>,
    rise: Option<u32>,
    fall: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawFile {
    name: String,
    path: String,
    weight: Option<i32>,
}

/// An entry of `track_scripts`, `track_interfaces` or `track_files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawTracked {
    name: String,
    weight: Option<i32>,
}

/// The hook fields of one raw instance.
pub(in crate::config) struct RawInstanceHooks<'a> {
    pub track_scripts: &'a Option<Vec<RawTracked>>,
    pub track_interfaces: &'a Option<Vec<RawTracked>>,
    pub track_files: &'a Option<Vec<RawTracked>>,
    pub notify_master: &'a Option<String>,
    pub notify_backup: &'a Option<String>,
    pub notify_fault: &'a Option<String>,
    pub notify_stop: &'a Option<String>,
}

pub(in crate::config) fn validate_scripts(
    raw: &Option<Vec<RawScript>>,
    p: &mut Problems<'_>,
) -> Vec<TrackScript> {
    let raw = raw.as_deref().unwrap_or_default();
    unique_names(
        raw.iter().map(|s| s.name.as_str()),
        "vrrp.scripts",
        "script",
        p,
    );
    let mut scripts = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let at = format!("vrrp.scripts[{i}]");
        if s.script.trim().is_empty() {
            p.add(format!("{at}.script"), "must not be empty".into());
        }
        let interval = positive(&at, "interval", s.interval, DEFAULT_SCRIPT_INTERVAL, p);
        // Without its own timeout a script gets its interval, already checked.
        let timeout = match s.timeout {
            Some(_) => positive(&at, "timeout", s.timeout, interval, p),
            None => interval,
        };
        let weight = weight_in(&at, s.weight.unwrap_or(0), MAX_SCRIPT_WEIGHT, p);
        for (field, v) in [("rise", s.rise), ("fall", s.fall)] {
            if v == Some(0) {
                p.add(format!("{at}.{field}"), "must be at least 1".into());
            }
        }
        scripts.push(TrackScript {
            name: s.name.clone(),
            script: s.script.clone(),
            interval,
            timeout,
            weight,
            rise: s.rise.unwrap_or(1).max(1),
            fall: s.fall.unwrap_or(1).max(1),
        });
    }
    scripts
}

pub(in crate::config) fn validate_files(
    raw: &Option<Vec<RawFile>>,
    p: &mut Problems<'_>,
) -> Vec<TrackFile> {
    let raw = raw.as_deref().unwrap_or_default();
    unique_names(raw.iter().map(|f| f.name.as_str()), "vrrp.files", "file", p);
    let mut files = Vec::with_capacity(raw.len());
    for (i, f) in raw.iter().enumerate() {
        let at = format!("vrrp.files[{i}]");
        if f.path.trim().is_empty() {
            p.add(format!("{at}.path"), "must not be empty".into());
        }
        let weight = weight_in(&at, f.weight.unwrap_or(1), MAX_FILE_WEIGHT, p);
        files.push(TrackFile {
            name: f.name.clone(),
            path: f.path.clone(),
            weight,
        });
    }
    files
}

pub(in crate::config) fn validate_notify_timeout(
    raw: Option<HumanDuration>,
    p: &mut Problems<'_>,
) -> Duration {
    positive("vrrp", "notify_timeout", raw, DEFAULT_NOTIFY_TIMEOUT, p)
}

pub(in crate::config) fn validate_instance(
    raw: RawInstanceHooks<'_>,
    at: &str,
    scripts: &[TrackScript],
    files: &[TrackFile],
    p: &mut Problems<'_>,
) -> InstanceHooks {
    let track_scripts = tracked(
        raw.track_scripts,
        &format!("{at}.track_scripts"),
        |name| {
            let i = scripts.iter().position(|s| s.name == name)?;
            Some((i, scripts[i].weight))
        },
        ("script", "vrrp.scripts", MAX_SCRIPT_WEIGHT),
        p,
    );
    let track_files = tracked(
        raw.track_files,
        &format!("{at}.track_files"),
        |name| {
            let i = files.iter().position(|f| f.name == name)?;
            Some((i, files[i].weight))
        },
        ("file", "vrrp.files", MAX_FILE_WEIGHT),
        p,
    );
    let mut track_interfaces = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, t) in raw.track_interfaces.iter().flatten().enumerate() {
        let tat = format!("{at}.track_interfaces[{i}]");
        if !is_interface_name(&t.name) {
            p.add(
                format!("{tat}.name"),
                format!("{:?} is not an interface name", t.name),
            );
        } else if let Some(first) = seen.get(t.name.as_str()) {
            p.add(
                format!("{tat}.name"),
                format!(
                    "{:?} is already tracked at track_interfaces[{first}]",
                    t.name
                ),
            );
        } else {
            seen.insert(&t.name, i);
        }
        let weight = t.weight.map(|w| weight_in(&tat, w, MAX_SCRIPT_WEIGHT, p));
        track_interfaces.push(TrackedInterface {
            name: t.name.clone(),
            weight,
        });
    }
    let mut command = |field: &str, value: &Option<String>| {
        if value.as_ref().is_some_and(|c| c.trim().is_empty()) {
            p.add(format!("{at}.{field}"), "must not be empty".into());
        }
        value.clone()
    };
    InstanceHooks {
        track_scripts,
        track_interfaces,
        track_files,
        notify_master: command("notify_master", raw.notify_master),
        notify_backup: command("notify_backup", raw.notify_backup),
        notify_fault: command("notify_fault", raw.notify_fault),
        notify_stop: command("notify_stop", raw.notify_stop),
    }
}

/// Resolves tracked names with `find` (index and default weight of a definition).
fn tracked(
    raw: &Option<Vec<RawTracked>>,
    at: &str,
    find: impl Fn(&str) -> Option<(usize, i16)>,
    (what, section, max): (&str, &str, i32),
    p: &mut Problems<'_>,
) -> Vec<Tracked> {
    let mut out = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let field = at.rsplit('.').next().unwrap_or(at);
    for (i, t) in raw.iter().flatten().enumerate() {
        let tat = format!("{at}[{i}]");
        let Some((index, default_weight)) = find(&t.name) else {
            p.add(
                format!("{tat}.name"),
                format!("unknown {what} {:?} (not in {section})", t.name),
            );
            continue;
        };
        if let Some(first) = seen.get(&index) {
            p.add(
                format!("{tat}.name"),
                format!("{:?} is already tracked at {field}[{first}]", t.name),
            );
            continue;
        }
        seen.insert(index, i);
        let weight = t
            .weight
            .map_or(default_weight, |w| weight_in(&tat, w, max, p));
        out.push(Tracked { index, weight });
    }
    out
}

fn unique_names<'a>(
    names: impl Iterator<Item = &'a str>,
    section: &str,
    what: &str,
    p: &mut Problems<'_>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            p.add(format!("{section}[{i}].name"), "must not be empty".into());
        } else if let Some(first) = seen.get(name) {
            p.add(
                format!("{section}[{i}].name"),
                format!("duplicate {what} name {name:?} (first at {section}[{first}])"),
            );
        } else {
            seen.insert(name, i);
        }
    }
}

fn positive(
    at: &str,
    field: &str,
    d: Option<HumanDuration>,
    default: Duration,
    p: &mut Problems<'_>,
) -> Duration {
    let d = d.map_or(default, |d| d.0);
    if d.is_zero() {
        p.add(format!("{at}.{field}"), "must be greater than zero".into());
    }
    d
}

/// The rule an instance's own `interface` follows: at most IFNAMSIZ - 1 bytes, without
/// '/' or whitespace.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 15 && !name.contains(|c: char| c == '/' || c.is_whitespace())
}

fn weight_in(at: &str, w: i32, max: i32, p: &mut Problems<'_>) -> i16 {
    if !(-max..=max).contains(&w) {
        p.add(
            format!("{at}.weight"),
            format!("{w} is out of range (-{max} to {max})"),
        );
    }
    // In range it fits; out of range it was reported and any value will do.
    i16::try_from(w.clamp(-max, max)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::super::parse;
    use super::*;

    const FRONT: &str = r#""frontends": [ { "name": "web", "bind": ["192.0.2.10:80"], "backend": "b" } ],
  "backends": [ { "name": "b", "servers": [ { "name": "s", "addr": "192.0.2.21:80" } ] } ]"#;

    fn with_vrrp(vrrp: &str) -> String {
        format!("{{ {FRONT},\n  \"vrrp\": {vrrp} }}")
    }

    #[test]
    fn scripts_files_and_tracking_resolve_with_their_weights() {
        let c = parse(
            "x.json",
            &with_vrrp(
                r#"{ "notify_timeout": "3s",
  "scripts": [ { "name": "chk_haproxy", "script": "killall -0 haproxy", "interval": "2s", "weight": 2 },
               { "name": "chk_sshd", "script": "killall -0 sshd", "timeout": "500ms", "weight": -4, "rise": 2, "fall": 3 } ],
  "files": [ { "name": "prio", "path": "/run/prio" } ],
  "instances": [ { "name": "VI_1", "interface": "eth0", "vrid": 51, "vips": ["192.0.2.10/24"],
    "track_scripts": [ { "name": "chk_sshd" }, { "name": "chk_haproxy", "weight": -10 } ],
    "track_interfaces": [ { "name": "eth1", "weight": 2 }, { "name": "eth3" } ],
    "track_files": [ { "name": "prio", "weight": -254 } ],
    "notify": "/etc/keepalived/notify.sh --all",
    "notify_master": "/usr/local/bin/vrrp.sh MASTER VI_1", "notify_backup": "b", "notify_fault": "f",
    "notify_stop": "s" } ] }"#,
            ),
        )
        .unwrap();
        let v = &c.vrrp;
        assert_eq!(v.notify_timeout, Duration::from_secs(3));
        assert_eq!(
            v.scripts[0],
            TrackScript {
                name: "chk_haproxy".into(),
                script: "killall -0 haproxy".into(),
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(2),
                weight: 2,
                rise: 1,
                fall: 1,
            }
        );
        assert_eq!(v.scripts[1].interval, DEFAULT_SCRIPT_INTERVAL);
        assert_eq!(v.scripts[1].timeout, Duration::from_millis(500));
        assert_eq!((v.scripts[1].rise, v.scripts[1].fall), (2, 3));
        assert_eq!(v.files[0].weight, 1);
        let h = &v.instances[0].hooks;
        assert_eq!(
            h.track_scripts,
            vec![
                Tracked {
                    index: 1,
                    weight: -4
                },
                Tracked {
                    index: 0,
                    weight: -10
                }
            ]
        );
        assert_eq!(h.track_interfaces[0].weight, Some(2));
        assert_eq!(h.track_interfaces[1].weight, None);
        assert_eq!(
            h.track_files,
            vec![Tracked {
                index: 0,
                weight: -254
            }]
        );
        assert_eq!(
            h.notify_master.as_deref(),
            Some("/usr/local/bin/vrrp.sh MASTER VI_1")
        );
        assert_eq!(
            v.instances[0].notify.as_deref(),
            Some(std::path::Path::new("/etc/keepalived/notify.sh --all"))
        );
    }

    #[test]
    fn defaults_without_hooks() {
        let c = parse(
            "x.json",
            &with_vrrp(
                r#"{ "instances": [ { "name": "VI_1", "interface": "eth0", "vrid": 51, "vips": ["192.0.2.10"] } ] }"#,
            ),
        )
        .unwrap();
        assert_eq!(c.vrrp.notify_timeout, DEFAULT_NOTIFY_TIMEOUT);
        assert!(c.vrrp.scripts.is_empty() && c.vrrp.files.is_empty());
        assert_eq!(c.vrrp.instances[0].hooks, InstanceHooks::default());
    }

    #[test]
    fn problems_name_their_paths() {
        let e = parse(
            "x.json",
            &with_vrrp(
                r#"{ "notify_timeout": "0s",
  "scripts": [ { "name": "a", "script": " ", "interval": "0s", "weight": 254, "rise": 0, "fall": 0 },
               { "name": "a", "script": "true", "timeout": "0ms", "weight": -254 },
               { "name": "", "script": "true" } ],
  "files": [ { "name": "f", "path": "", "weight": 255 }, { "name": "f", "path": "/x" } ],
  "instances": [ { "name": "VI_1", "interface": "eth0", "vrid": 51, "vips": ["192.0.2.10"],
    "track_scripts": [ { "name": "nope" }, { "name": "a", "weight": 300 }, { "name": "a" } ],
    "track_interfaces": [ { "name": "eth 1" }, { "name": "eth2", "weight": -254 }, { "name": "eth2" } ],
    "track_files": [ { "name": "g" }, { "name": "f", "weight": -255 } ],
    "notify_master": "", "notify_stop": "  " } ] }"#,
            ),
        )
        .unwrap_err()
        .to_string();
        let want = [
            "x.json: vrrp.notify_timeout: must be greater than zero (line 3, column 31)",
            "x.json: vrrp.scripts[0].script: must not be empty (line 4, column 41)",
            "x.json: vrrp.scripts[0].interval: must be greater than zero (line 4, column 58)",
            "x.json: vrrp.scripts[0].weight: 254 is out of range (-253 to 253) (line 4, column 74)",
            "x.json: vrrp.scripts[0].rise: must be at least 1 (line 4, column 87)",
            "x.json: vrrp.scripts[0].fall: must be at least 1 (line 4, column 98)",
            "x.json: vrrp.scripts[1].name: duplicate script name \"a\" (first at vrrp.scripts[0]) (line 5, column 26)",
            "x.json: vrrp.scripts[1].timeout: must be greater than zero (line 5, column 60)",
            "x.json: vrrp.scripts[1].weight: -254 is out of range (-253 to 253) (line 5, column 77)",
            "x.json: vrrp.scripts[2].name: must not be empty (line 6, column 26)",
            "x.json: vrrp.files[0].path: must not be empty (line 7, column 37)",
            "x.json: vrrp.files[0].weight: 255 is out of range (-254 to 254) (line 7, column 51)",
            "x.json: vrrp.files[1].name: duplicate file name \"f\" (first at vrrp.files[0]) (line 7, column 68)",
            "x.json: vrrp.instances[0].track_scripts[0].name: unknown script \"nope\" (not in vrrp.scripts) (line 9, column 34)",
            "x.json: vrrp.instances[0].track_scripts[1].weight: 300 is out of range (-253 to 253) (line 9, column 69)",
            "x.json: vrrp.instances[0].track_scripts[2].name: \"a\" is already tracked at track_scripts[1] (line 9, column 86)",
            "x.json: vrrp.instances[0].track_interfaces[0].name: \"eth 1\" is not an interface name (line 10, column 37)",
            "x.json: vrrp.instances[0].track_interfaces[1].weight: -254 is out of range (-253 to 253) (line 10, column 76)",
            "x.json: vrrp.instances[0].track_interfaces[2].name: \"eth2\" is already tracked at track_interfaces[1] (line 10, column 94)",
            "x.json: vrrp.instances[0].track_files[0].name: unknown file \"g\" (not in vrrp.files) (line 11, column 32)",
            "x.json: vrrp.instances[0].track_files[1].weight: -255 is out of range (-254 to 254) (line 11, column 64)",
            "x.json: vrrp.instances[0].notify_master: must not be empty (line 12, column 22)",
            "x.json: vrrp.instances[0].notify_stop: must not be empty (line 12, column 41)",
        ];
        let mut got: Vec<&str> = e.lines().collect();
        let mut want = want.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "\n{e}");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = parse(
            "x.json",
            &with_vrrp(
                r#"{ "scripts": [ { "name": "a", "script": "true", "user": "nobody" } ], "instances": [] }"#,
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("x.json: vrrp.scripts[0].user: unknown field `user`"),
            "{e}"
        );
    }
}
