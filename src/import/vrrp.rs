//! keepalived.conf's VRRP side as ringlb's `vrrp` section: `vrrp_instance` blocks with
//! their addresses, peers, password and hooks, `vrrp_script` and `track_file`
//! definitions, `vrrp_version` from `global_defs`. IPVS (`virtual_server`), sync groups
//! and routes have no place in ringlb and are reported.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use super::keepalived::Node;
use super::output::{Instance, Script, TrackFile, Tracked, Vrrp};
use super::report::{Report, Source};
use super::values::{format_duration, keepalived_seconds};

const K: Source = Source::Keepalived;
const MAX_SCRIPT_WEIGHT: i32 = 253;
const MAX_FILE_WEIGHT: i32 = 254;
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
            "vrrp_script" => out.scripts.extend(script(n, &out.scripts, r)),
            "vrrp_track_file" | "track_file" if n.block.is_some() => out.files.extend(file(n, &out.files, r)),
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

fn script(n: &Node, defined: &[Script], r: &mut Report) -> Option<Script> {
    let name = n.word(1).to_string();
    if name.is_empty() || defined.iter().any(|s| s.name == name) {
        r.warn(
            K,
            n.line,
            format!("vrrp_script {name:?}: empty or defined twice, left out"),
        );
        return None;
    }
    let mut s = Script {
        name,
        ..Script::default()
    };
    for c in n.children() {
        match c.key() {
            key if key.starts_with('@') => conditional(c, r),
            "script" => {
                s.script = c.words[1..]
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "interval" | "timeout" => {
                match keepalived_seconds(c.word(1)).filter(|d| !d.is_zero()) {
                    Some(d) if c.key() == "interval" => s.interval = Some(format_duration(d)),
                    Some(d) => s.timeout = Some(format_duration(d)),
                    None => r.warn(
                        K,
                        c.line,
                        format!("{} {:?}: not a duration, left out", c.key(), c.word(1)),
                    ),
                }
            }
            "weight" => s.weight = weight(c, MAX_SCRIPT_WEIGHT, r),
            "rise" | "fall" => match c.word(1).parse::<u32>().ok().filter(|&v| v > 0) {
                Some(v) if c.key() == "rise" => s.rise = Some(v),
                Some(v) => s.fall = Some(v),
                None => r.warn(
                    K,
                    c.line,
                    format!("{} {:?}: not a count, left out", c.key(), c.word(1)),
                ),
            },
            "user" => r.note(K, c.line, "user: ringlb runs scripts as its own user"),
            "init_fail" => r.note(
                K,
                c.line,
                "init_fail: ringlb counts a script as failing until it has passed `rise` times",
            ),
            key => r.warn(
                K,
                c.line,
                format!("vrrp_script `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    if s.script.trim().is_empty() {
        r.warn(
            K,
            n.line,
            format!("vrrp_script {}: no script, left out", s.name),
        );
        return None;
    }
    Some(s)
}

fn file(n: &Node, defined: &[TrackFile], r: &mut Report) -> Option<TrackFile> {
    let name = n.word(1).to_string();
    if name.is_empty() || defined.iter().any(|f| f.name == name) {
        r.warn(
            K,
            n.line,
            format!("track_file {name:?}: empty or defined twice, left out"),
        );
        return None;
    }
    let mut f = TrackFile {
        name,
        ..TrackFile::default()
    };
    for c in n.children() {
        match c.key() {
            "file" => f.path = c.word(1).to_string(),
            "weight" => f.weight = weight(c, MAX_FILE_WEIGHT, r),
            "init_file" => r.note(K, c.line, "init_file: ringlb does not create the file"),
            key => r.warn(
                K,
                c.line,
                format!("track_file `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    if f.path.trim().is_empty() {
        r.warn(
            K,
            n.line,
            format!("track_file {}: no file, left out", f.name),
        );
        return None;
    }
    Some(f)
}

/// `weight N [reverse]` of a definition or a tracked item (the number is word `at`).
fn weight(c: &Node, max: i32, r: &mut Report) -> Option<i32> {
    weight_at(c, 1, max, r)
}

fn weight_at(c: &Node, at: usize, max: i32, r: &mut Report) -> Option<i32> {
    match c.word(at + 1) {
        "" | "noreverse" => {}
        "reverse" => {
            r.warn(
                K,
                c.line,
                "weight ... reverse: not available in ringlb, the weight is left out",
            );
            return None;
        }
        other => r.warn(K, c.line, format!("`{other}` after the weight: left out")),
    }
    match c.word(at).parse::<i32>() {
        Ok(w) if (-max..=max).contains(&w) => Some(w),
        _ => {
            r.warn(
                K,
                c.line,
                format!(
                    "weight {:?}: not from -{max} to {max}, left out",
                    c.word(at)
                ),
            );
            None
        }
    }
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
                let peers: Vec<String> = c.children().iter().filter_map(|p| peer(p, r)).collect();
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
                i.track_scripts = tracked(
                    c,
                    |name| defs.scripts.iter().any(|s| s.name == name),
                    MAX_SCRIPT_WEIGHT,
                    "vrrp_script",
                    r,
                )
            }
            "track_file" => {
                i.track_files = tracked(
                    c,
                    |name| defs.files.iter().any(|f| f.name == name),
                    MAX_FILE_WEIGHT,
                    "track_file",
                    r,
                )
            }
            "track_interface" => {
                i.track_interfaces =
                    tracked(c, is_interface_name, MAX_SCRIPT_WEIGHT, "interface", r)
            }
            "notify" => i.notify = command(c, r),
            "notify_master" => i.notify_master = command(c, r),
            "notify_backup" => i.notify_backup = command(c, r),
            "notify_fault" => i.notify_fault = command(c, r),
            "notify_stop" => i.notify_stop = command(c, r),
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
    i.vips = vips(&vip_nodes, &i.interface, &mut version, r);
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
        i.advert_interval = Some(format_duration(advert_interval(d, version, line, r)));
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

/// A VRRPv2 interval is whole seconds (1 to 255), a VRRPv3 one centiseconds (10ms to
/// 40.95s): keepalived rounds others, so does the import.
fn advert_interval(d: Duration, version: u8, line: usize, r: &mut Report) -> Duration {
    let ms = d.as_millis() as u64;
    let fixed = if version == 2 {
        ms.div_ceil(1000).clamp(1, 255) * 1000
    } else {
        (ms.div_ceil(10) * 10).clamp(10, 40_950)
    };
    if fixed != ms {
        r.note(
            K,
            line,
            format!(
                "advert_int: {} for VRRPv{version}",
                format_duration(Duration::from_millis(fixed))
            ),
        );
    }
    Duration::from_millis(fixed)
}

fn vips(nodes: &[&Node], interface: &str, version: &mut u8, r: &mut Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<IpAddr> = HashSet::new();
    let mut family_v6 = None;
    for n in nodes {
        let written = n.key();
        let (addr, len) = written.split_once('/').unwrap_or((written, ""));
        let Ok(ip) = addr.parse::<IpAddr>() else {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written:?}: not an address, left out"),
            );
            continue;
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = if len.is_empty() {
            Some(max)
        } else {
            len.parse::<u8>().ok()
        };
        if prefix.is_none_or(|p| p == 0 || p > max) {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written:?}: not a prefix length, left out"),
            );
            continue;
        }
        let unusable = match ip {
            IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
        };
        if unusable {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written}: cannot be a virtual address, left out"),
            );
            continue;
        }
        if *family_v6.get_or_insert(ip.is_ipv6()) != ip.is_ipv6() {
            r.warn_hint(
                K,
                n.line,
                format!("virtual_ipaddress {written}: not of the family of the first, left out"),
                "one instance per family",
            );
            continue;
        }
        if !seen.insert(ip) {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {ip} is listed twice: the second is left out"),
            );
            continue;
        }
        let mut i = 1;
        while i < n.words.len() {
            let (opt, value) = (n.word(i), n.word(i + 1));
            match opt {
                "dev" if value != interface => r.warn(
                    K,
                    n.line,
                    format!("dev {value}: ringlb adds every address on the instance's interface, {interface}"),
                ),
                "label" => r.note(K, n.line, format!("label {value}: ringlb sets no address labels")),
                "dev" | "brd" | "broadcast" | "scope" | "preferred_lft" | "metric" | "table" => {}
                "no_track" | "home" | "-" | "nodad" => {
                    i += 1;
                    continue;
                }
                other => r.warn(K, n.line, format!("virtual_ipaddress option `{other}`: left out")),
            }
            i += 2;
        }
        out.push(format!("{ip}/{}", prefix.unwrap_or(max)));
    }
    if family_v6 == Some(true) && *version == 2 {
        if let Some(n) = nodes.first() {
            r.note(K, n.line, "IPv6 addresses: VRRPv3, as keepalived does");
        }
        *version = 3;
    }
    if out.len() > 255 {
        if let Some(n) = nodes.get(255) {
            r.warn(
                K,
                n.line,
                "more than 255 virtual addresses: the rest are left out",
            );
        }
        out.truncate(255);
    }
    out
}

fn peer(n: &Node, r: &mut Report) -> Option<String> {
    match n.key().parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => {
            if n.words.len() > 1 {
                r.note(
                    K,
                    n.line,
                    "unicast_peer options (min_ttl, max_ttl): left out",
                );
            }
            Some(ip.to_string())
        }
        _ => {
            r.warn(
                K,
                n.line,
                format!(
                    "unicast_peer {:?}: not a unicast address, left out",
                    n.key()
                ),
            );
            None
        }
    }
}

fn tracked(
    block: &Node,
    known: impl Fn(&str) -> bool,
    max: i32,
    what: &str,
    r: &mut Report,
) -> Vec<Tracked> {
    let mut out: Vec<Tracked> = Vec::new();
    for c in block.children() {
        let name = c.key();
        if !known(name) {
            r.warn(
                K,
                c.line,
                format!(
                    "{} {name:?}: no usable {what} of that name, left out",
                    block.key()
                ),
            );
            continue;
        }
        if out.iter().any(|t| t.name == name) {
            r.warn(
                K,
                c.line,
                format!("{name} is tracked twice: the second is left out"),
            );
            continue;
        }
        let weight = match c.word(1) {
            "weight" => weight_at(c, 2, max, r),
            "" => None,
            other => {
                r.warn(K, c.line, format!("`{other}`: left out"));
                None
            }
        };
        out.push(Tracked {
            name: name.to_string(),
            weight,
        });
    }
    out
}

/// A notify command: a quoted command line, or a path followed by keepalived's user and
/// group (which ringlb has no use for).
fn command(c: &Node, r: &mut Report) -> Option<String> {
    let first = c.words.get(1)?;
    if first.text.trim().is_empty() {
        r.warn(
            K,
            c.line,
            format!("{}: an empty command, left out", c.key()),
        );
        return None;
    }
    if c.words.len() > 2 {
        r.note(K, c.line, format!("{}: the user and group after the command are left out; ringlb runs it as its own user", c.key()));
    }
    Some(first.text.clone())
}

/// `@ID ...`: a line keepalived reads only when started with `-i ID`.
fn conditional(n: &Node, r: &mut Report) {
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
