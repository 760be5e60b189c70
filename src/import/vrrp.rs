//! keepalived.conf's VRRP side as ringlb's `vrrp` section: `vrrp_instance` blocks with
//! their settings and password, `vrrp_version` from `global_defs`; addresses are
//! `vip.rs`'s, scripts, files and notify commands `track.rs`'s. IPVS (`virtual_server`),
//! sync groups and routes have no place in ringlb and are reported.

use std::collections::HashSet;

use super::keepalived::Node;
use super::output::{Instance, Script, TrackFile, Tracked, Vrrp};
use super::report::{Report, Source};
use super::track::{self, MAX_FILE_WEIGHT, MAX_SCRIPT_WEIGHT};
use super::values::{format_duration, keepalived_seconds};
use super::vip;

const K: Source = Source::Keepalived;
/// keepalived sends at most the first 8 bytes of a password.
const AUTH_PASS_LEN: usize = 8;

pub fn convert(nodes: &[Node], r: &mut Report) -> Option<Vrrp> {
    let mut version = 2;
    for n in nodes.iter().filter(|n| n.key() == "global_defs") {
        version = global_defs(n, r).unwrap_or(version);
    }
    let mut out = Vrrp::default();
    for n in nodes {
        match n.key() {
            "global_defs" => {}
            "vrrp_script" => out.scripts.extend(track::script(n, &out.scripts, r)),
            "vrrp_track_file" | "track_file" if n.block.is_some() => out.files.extend(track::file(n, &out.files, r)),
            "vrrp_instance" => {}
            "vrrp_sync_group" => r.warn(
                K,
                n.line,
                format!("vrrp_sync_group {}: ringlb's instances change state on their own, left out", n.word(1)),
            ),
            "virtual_server" | "virtual_server_group" => r.warn_hint(
                K,
                n.line,
                format!("{} {}: IPVS is not converted", n.key(), n.word(1)),
                "ringlb balances as a proxy: describe the service in haproxy.cfg terms or as a ringlb frontend",
            ),
            "include" => r.warn(K, n.line, format!("include {}: not followed, import that file on its own", n.word(1))),
            key if key.starts_with('@') => conditional(n, r),
            key if key.starts_with('$') => r.warn(K, n.line, format!("{key}: definitions are not expanded, left out")),
            key => r.warn(K, n.line, format!("`{key}`: no equivalent in ringlb, left out")),
        }
    }
    let mut names: HashSet<String> = HashSet::new();
    let mut vrids: HashSet<(String, u8)> = HashSet::new();
    for n in nodes.iter().filter(|n| n.key() == "vrrp_instance") {
        let Some(i) = instance(n, version, &out, r) else {
            continue;
        };
        if !names.insert(i.name.clone()) {
            r.warn(
                K,
                n.line,
                format!("a second instance named {:?}: left out", i.name),
            );
        } else if !vrids.insert((i.interface.clone(), i.vrid)) {
            r.warn(
                K,
                n.line,
                format!(
                    "virtual_router_id {} is already used on {}: left out",
                    i.vrid, i.interface
                ),
            );
        } else {
            out.instances.push(i);
        }
    }
    // Definitions nothing tracks are dropped, as keepalived never runs them either.
    let used = |name: &str, pick: fn(&Instance) -> &Vec<Tracked>| {
        out.instances
            .iter()
            .any(|i| pick(i).iter().any(|t| t.name == name))
    };
    let scripts: Vec<Script> = out
        .scripts
        .iter()
        .filter(|s| used(&s.name, |i| &i.track_scripts))
        .cloned()
        .collect();
    let files: Vec<TrackFile> = out
        .files
        .iter()
        .filter(|f| used(&f.name, |i| &i.track_files))
        .cloned()
        .collect();
    out.scripts = scripts;
    out.files = files;
    (!out.instances.is_empty()).then_some(out)
}

fn global_defs(n: &Node, r: &mut Report) -> Option<u8> {
    let mut version = None;
    for c in n.children() {
        match c.key() {
            "vrrp_version" => match c.word(1) {
                "2" => version = Some(2),
                "3" => version = Some(3),
                v => r.warn(
                    K,
                    c.line,
                    format!("vrrp_version {v:?}: not 2 or 3, left out"),
                ),
            },
            "script_user" => r.note(
                K,
                c.line,
                "script_user: scripts and notify commands run as ringlb's user",
            ),
            "router_id"
            | "enable_script_security"
            | "notification_email"
            | "notification_email_from"
            | "smtp_server"
            | "smtp_connect_timeout"
            | "smtp_helo_name"
            | "lvs_id"
            | "max_auto_priority"
            | "vrrp_skip_check_adv_addr"
            | "vrrp_check_unicast_src"
            | "dynamic_interfaces" => {}
            key => r.warn(
                K,
                c.line,
                format!("global_defs `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    version
}

fn instance(n: &Node, default_version: u8, defs: &Vrrp, r: &mut Report) -> Option<Instance> {
    let mut i = Instance {
        name: n.word(1).to_string(),
        ..Instance::default()
    };
    let mut version = default_version;
    let mut vrid = None;
    let mut advert = None;
    let mut vip_nodes: Vec<&Node> = Vec::new();
    let mut auth: Option<(usize, usize, String, String)> = None;
    for c in n.children() {
        let line = c.line;
        match c.key() {
            key if key.starts_with('@') => conditional(c, r),
            "state" => r.note(
                K,
                line,
                format!(
                    "state {}: ringlb has no initial state, the highest priority becomes master",
                    c.word(1)
                ),
            ),
            "interface" => i.interface = c.word(1).to_string(),
            "virtual_router_id" => match c.word(1).parse::<u8>().ok().filter(|&v| v > 0) {
                Some(v) => vrid = Some(v),
                None => r.warn(
                    K,
                    line,
                    format!("virtual_router_id {:?}: not 1 to 255", c.word(1)),
                ),
            },
            "priority" => match c.word(1).parse::<u8>().ok().filter(|&v| v > 0) {
                Some(v) => i.priority = Some(v),
                None => r.warn(
                    K,
                    line,
                    format!("priority {:?}: not 1 to 255, left out", c.word(1)),
                ),
            },
            "advert_int" => match keepalived_seconds(c.word(1)).filter(|d| !d.is_zero()) {
                Some(d) => advert = Some((line, d)),
                None => r.warn(
                    K,
                    line,
                    format!("advert_int {:?}: not a duration, left out", c.word(1)),
                ),
            },
            "version" => match c.word(1) {
                "2" => version = 2,
                "3" => version = 3,
                v => r.warn(K, line, format!("version {v:?}: not 2 or 3, left out")),
            },
            "virtual_ipaddress" => vip_nodes.extend(c.children()),
            "unicast_peer" => {
                let peers: Vec<String> = c
                    .children()
                    .iter()
                    .filter_map(|p| vip::peer(p, r))
                    .collect();
                i.unicast_peers = (!peers.is_empty()).then_some(peers);
            }
            "unicast_src_ip" | "mcast_src_ip" => r.note(
                K,
                line,
                format!(
                    "{} {}: ringlb sends from the interface's own address",
                    c.key(),
                    c.word(1)
                ),
            ),
            "nopreempt" => i.preempt = Some(false),
            "preempt" => i.preempt = Some(true),
            "preempt_delay" => match keepalived_seconds(c.word(1)) {
                Some(d) => i.preempt_delay = Some(format_duration(d)),
                None => r.warn(
                    K,
                    line,
                    format!("preempt_delay {:?}: not a duration, left out", c.word(1)),
                ),
            },
            "authentication" => {
                let mut kind = String::new();
                let (mut pass, mut pass_line) = (String::new(), line);
                for a in c.children() {
                    match a.key() {
                        "auth_type" => kind = a.word(1).to_string(),
                        "auth_pass" => (pass, pass_line) = (a.word(1).to_string(), a.line),
                        key => r.warn(K, a.line, format!("authentication `{key}`: left out")),
                    }
                }
                auth = Some((line, pass_line, kind, pass));
            }
            "accept" => i.accept_mode = Some(true),
            "no_accept" => i.accept_mode = Some(false),
            "garp_master_delay" => match keepalived_seconds(c.word(1)) {
                Some(d) => i.garp_delay = Some(format_duration(d)),
                None => r.warn(
                    K,
                    line,
                    format!(
                        "garp_master_delay {:?}: not a duration, left out",
                        c.word(1)
                    ),
                ),
            },
            "garp_master_repeat" => match c.word(1).parse::<u32>() {
                Ok(v) if v <= 255 => i.garp_repeat = Some(v),
                _ => r.warn(
                    K,
                    line,
                    format!("garp_master_repeat {:?}: not a count, left out", c.word(1)),
                ),
            },
            "garp_master_refresh" => match keepalived_seconds(c.word(1)) {
                Some(d) if !d.is_zero() => i.garp_refresh = Some(format_duration(d)),
                Some(_) => {}
                None => r.warn(
                    K,
                    line,
                    format!(
                        "garp_master_refresh {:?}: not a duration, left out",
                        c.word(1)
                    ),
                ),
            },
            "track_script" => {
                i.track_scripts = track::tracked(
                    c,
                    |name| defs.scripts.iter().any(|s| s.name == name),
                    MAX_SCRIPT_WEIGHT,
                    "vrrp_script",
                    r,
                )
            }
            "track_file" => {
                i.track_files = track::tracked(
                    c,
                    |name| defs.files.iter().any(|f| f.name == name),
                    MAX_FILE_WEIGHT,
                    "track_file",
                    r,
                )
            }
            "track_interface" => {
                i.track_interfaces =
                    track::tracked(c, is_interface_name, MAX_SCRIPT_WEIGHT, "interface", r)
            }
            "notify" => i.notify = track::command(c, r),
            "notify_master" => i.notify_master = track::command(c, r),
            "notify_backup" => i.notify_backup = track::command(c, r),
            "notify_fault" => i.notify_fault = track::command(c, r),
            "notify_stop" => i.notify_stop = track::command(c, r),
            "smtp_alert" => r.warn_hint(
                K,
                line,
                "smtp_alert: ringlb sends no mail, left out",
                "a notify command can",
            ),
            "dont_track_primary" => r.note(
                K,
                line,
                "dont_track_primary: ringlb does not track the instance's interface unless told to",
            ),
            "debug"
            | "strict_mode"
            | "check_unicast_src"
            | "skip_check_adv_addr"
            | "linkbeat_use_polling" => {}
            key => r.warn(
                K,
                line,
                format!("vrrp_instance `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    let left_out = |r: &mut Report, why: &str| {
        r.warn(
            K,
            n.line,
            format!("vrrp_instance {}: {why}, left out", i.name),
        );
        None
    };
    if i.name.is_empty() {
        return left_out(r, "no name");
    }
    if !is_interface_name(&i.interface) {
        return left_out(r, "no usable interface");
    }
    let Some(vrid) = vrid else {
        return left_out(r, "no virtual_router_id");
    };
    i.vrid = vrid;
    i.vips = vip::vips(&vip_nodes, &i.interface, &mut version, r);
    if i.vips.is_empty() {
        return left_out(r, "no usable virtual_ipaddress");
    }
    let v6 = i.vips[0].contains(':');
    if let Some(peers) = &mut i.unicast_peers {
        peers.retain(|p| {
            let same = p.contains(':') == v6;
            if !same {
                r.warn(
                    K,
                    n.line,
                    format!("unicast_peer {p}: not of the family of the addresses, left out"),
                );
            }
            same
        });
        if peers.is_empty() {
            i.unicast_peers = None;
        }
    }
    if let Some((line, d)) = advert {
        i.advert_interval = Some(format_duration(vip::advert_interval(d, version, line, r)));
    }
    if let Some((line, pass_line, kind, pass)) = auth {
        match (kind.as_str(), version) {
            ("PASS", 2) if !pass.is_empty() => {
                let mut p = pass.clone();
                if p.len() > AUTH_PASS_LEN {
                    let mut end = AUTH_PASS_LEN;
                    while !p.is_char_boundary(end) {
                        end -= 1;
                    }
                    p.truncate(end);
                    r.note(
                        K,
                        pass_line,
                        format!("auth_pass: keepalived sends its first {AUTH_PASS_LEN} bytes, so does ringlb"),
                    );
                }
                i.auth_pass = Some(p);
            }
            ("PASS", 2) => r.warn(K, line, "authentication without auth_pass: left out"),
            ("PASS", _) => r.warn(K, line, "authentication: VRRPv3 has none, left out"),
            (other, _) => r.warn(
                K,
                line,
                format!("auth_type {other}: ringlb has PASS only, left out"),
            ),
        }
    }
    i.version = (version == 2).then_some(2);
    Some(i)
}

/// `@ID ...`: a line keepalived reads only when started with `-i ID`.
pub fn conditional(n: &Node, r: &mut Report) {
    r.warn_hint(
        K,
        n.line,
        format!(
            "{}: a line for keepalived's -i config id, left out",
            n.key()
        ),
        "remove the prefix to keep it",
    );
}

/// The rule of ringlb's `interface`: at most 15 bytes, no `/` or whitespace.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 15 && !name.contains(|c: char| c == '/' || c.is_whitespace())
}

#[cfg(test)]
mod tests;
