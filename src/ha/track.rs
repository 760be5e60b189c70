//! keepalived's tracking, run by the VRRP thread: scripts (`vrrp_script`: a command every
//! `interval`, a pass or a failure by its exit status, `rise`/`fall` before the state
//! flips, killed after `timeout`), files (`track_file`: a number read from a file) and
//! interfaces (`track_interface`: link up or down). Each instance turns what it tracks
//! into a priority offset and, for what has no weight, a fault (`verdict`).
//!
//! The decisions (`ScriptHealth`, `verdict`) are pure and tested here; the checks (spawning
//! commands, reading files and link states) are thin.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::notify::kill_group;
use crate::config::{InstanceHooks, TrackFile, TrackScript};
use crate::logging::event;

/// How often tracked files and links are looked at.
pub const POLL: Duration = Duration::from_millis(100);

/// A script's pass/fail history: `rise` passes in a row make it pass, `fall` failures in a
/// row make it fail. It starts passing (keepalived's default without `init_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptHealth {
    pub passing: bool,
    streak: u32,
}

impl ScriptHealth {
    pub fn new() -> ScriptHealth {
        ScriptHealth {
            passing: true,
            streak: 0,
        }
    }

    /// Records one run; true when the state flipped.
    pub fn record(&mut self, passed: bool, rise: u32, fall: u32) -> bool {
        if passed == self.passing {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if passed { rise } else { fall };
        if self.streak >= needed.max(1) {
            self.passing = passed;
            self.streak = 0;
            return true;
        }
        false
    }
}

struct Script {
    def: TrackScript,
    health: ScriptHealth,
    next_run: Instant,
    running: Option<(Child, Instant)>,
}

/// Every script and file defined under `vrrp`, and the links instances track.
pub struct Trackers {
    scripts: Vec<Script>,
    files: Vec<(TrackFile, i64)>,
    links: Vec<TrackedLink>,
    next_poll: Instant,
}

impl Trackers {
    pub fn new(
        scripts: &[TrackScript],
        files: &[TrackFile],
        hooks: &[&InstanceHooks],
        now: Instant,
    ) -> Trackers {
        let mut links: Vec<TrackedLink> = Vec::new();
        for h in hooks {
            for i in &h.track_interfaces {
                if !links.iter().any(|l| l.name == i.name) {
                    links.push(TrackedLink::new(&i.name));
                }
            }
        }
        Trackers {
            scripts: scripts
                .iter()
                .map(|def| Script {
                    def: def.clone(),
                    health: ScriptHealth::new(),
                    next_run: now,
                    running: None,
                })
                .collect(),
            files: files
                .iter()
                .map(|f| (f.clone(), read_number(&f.path)))
                .collect(),
            links,
            next_poll: now,
        }
    }

    /// Runs what is due; true when anything an instance tracks changed.
    pub fn poll(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for s in &mut self.scripts {
            changed |= s.poll(now);
        }
        if now >= self.next_poll {
            self.next_poll = now + POLL;
            for (f, value) in &mut self.files {
                let v = read_number(&f.path);
                if v != *value {
                    event!(
                        "vrrp: track file {} ({}): {} -> {v}",
                        f.name,
                        f.path,
                        *value
                    );
                    *value = v;
                    changed = true;
                }
            }
            for link in &mut self.links {
                changed |= link.poll();
            }
        }
        changed
    }

    /// When the next script or poll is due.
    pub fn next_due(&self) -> Option<Instant> {
        let scripts = self.scripts.iter().map(|s| match &s.running {
            // A running script is looked at again soon: its exit is not signalled here.
            Some(_) => Instant::now() + POLL,
            None => s.next_run,
        });
        let polls = (!self.files.is_empty() || !self.links.is_empty()).then_some(self.next_poll);
        scripts.chain(polls).min()
    }

    /// What an instance's tracking says: the priority offset, and why it is in FAULT.
    pub fn verdict(&self, hooks: &InstanceHooks) -> (i32, Option<String>) {
        let scripts: Vec<(&str, bool, i16)> = hooks
            .track_scripts
            .iter()
            .filter_map(|t| {
                let s = self.scripts.get(t.index)?;
                Some((s.def.name.as_str(), s.health.passing, t.weight))
            })
            .collect();
        let files: Vec<(i64, i16)> = hooks
            .track_files
            .iter()
            .filter_map(|t| Some((self.files.get(t.index)?.1, t.weight)))
            .collect();
        let links: Vec<(&str, bool, Option<i16>)> = hooks
            .track_interfaces
            .iter()
            .map(|i| {
                let up = self
                    .links
                    .iter()
                    .find(|l| l.name == i.name)
                    .is_none_or(|l| l.up);
                (i.name.as_str(), up, i.weight)
            })
            .collect();
        verdict(&scripts, &files, &links)
    }

    /// Stops scripts still running (the VRRP thread is stopping).
    pub fn stop(&mut self) {
        for s in &mut self.scripts {
            if let Some((mut child, _)) = s.running.take() {
                kill_group(&mut child);
            }
        }
    }
}

impl Script {
    /// Reaps a finished run, kills one over its timeout, starts one that is due; true when
    /// the script's state flipped.
    fn poll(&mut self, now: Instant) -> bool {
        let d = &self.def;
        if let Some((child, started)) = &mut self.running {
            let passed = match child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if now.duration_since(*started) >= d.timeout => {
                    kill_group(child);
                    event!(warning: "vrrp: track script {} timed out after {:?}", d.name, d.timeout);
                    Some(false)
                }
                Ok(None) => None,
                Err(_) => Some(false),
            };
            let Some(passed) = passed else {
                return false;
            };
            self.running = None;
            if self.health.record(passed, d.rise, d.fall) {
                let state = if passed { "passing" } else { "failing" };
                event!(notice: "vrrp: track script {} is {state}", d.name);
                return true;
            }
            return false;
        }
        if now >= self.next_run {
            self.next_run = now + d.interval;
            let spawned = Command::new("/bin/sh")
                .arg("-c")
                .arg(&d.script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, so that a timeout also kills what the shell runs.
                .process_group(0)
                .spawn();
            match spawned {
                Ok(child) => self.running = Some((child, now)),
                Err(e) => {
                    event!(warning: "vrrp: track script {}: cannot run: {e}", d.name);
                    return self.health.record(false, d.rise, d.fall);
                }
            }
        }
        false
    }
}

/// The offset and the fault of one instance, from what it tracks: scripts (name, passing,
/// weight), files (value, weight), links (name, up, weight). keepalived's rules: a positive
/// weight is added while passing or up, a negative one while failing or down; weight 0 (a
/// script) or no weight (a link) means FAULT while failing or down; a file adds its value
/// times its weight.
pub fn verdict(
    scripts: &[(&str, bool, i16)],
    files: &[(i64, i16)],
    links: &[(&str, bool, Option<i16>)],
) -> (i32, Option<String>) {
    let mut offset = 0i64;
    let mut faults = Vec::new();
    for &(name, passing, weight) in scripts {
        match weight {
            0 if !passing => faults.push(format!("script {name} failing")),
            0 => {}
            w if w > 0 && passing => offset += i64::from(w),
            w if w < 0 && !passing => offset += i64::from(w),
            _ => {}
        }
    }
    for &(value, weight) in files {
        offset += value.saturating_mul(i64::from(weight));
    }
    for &(name, up, weight) in links {
        match weight {
            None if !up => faults.push(format!("interface {name} down")),
            Some(w) if w > 0 && up => offset += i64::from(w),
            Some(w) if w < 0 && !up => offset += i64::from(w),
            _ => {}
        }
    }
    let offset = offset.clamp(-254, 254) as i32;
    (offset, (!faults.is_empty()).then(|| faults.join(", ")))
}

/// A number from a file (keepalived's `track_file`): its first word; 0 when the file is
/// missing or does not start with a number.
fn read_number(path: &str) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|w| w.parse().ok()))
        .unwrap_or(0)
}

/// A tracked interface: up while its link is up and, if it had an address when tracking
/// began, while it still has one (keepalived: "link down or address gone").
struct TrackedLink {
    name: String,
    needs_address: bool,
    up: bool,
}

impl TrackedLink {
    fn new(name: &str) -> TrackedLink {
        let needs_address = has_address(name);
        TrackedLink {
            name: name.to_string(),
            needs_address,
            up: link_up(name),
        }
    }

    /// Looks again; true when it changed (and says so in the log).
    fn poll(&mut self) -> bool {
        let link = link_up(&self.name);
        let addressed = !self.needs_address || has_address(&self.name);
        let up = link && addressed;
        if up == self.up {
            return false;
        }
        let name = &self.name;
        let state = match (link, addressed) {
            (true, true) => "up",
            (false, _) => "down",
            (true, false) => "down (its addresses are gone)",
        };
        event!(notice: "vrrp: tracked interface {name} is {state}");
        self.up = up;
        true
    }
}

/// Whether an interface has an address of its own: IPv4, or IPv6 other than link-local.
fn has_address(name: &str) -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        // Cannot tell: count it as addressed rather than fault the instance.
        return true;
    };
    addrs
        .filter(|a| a.interface_name == name)
        .filter_map(|a| a.address)
        .any(|s| {
            s.as_sockaddr_in().is_some()
                || s.as_sockaddr_in6()
                    .is_some_and(|a| (a.ip().segments()[0] & 0xffc0) != 0xfe80)
        })
}

/// Whether a link is up: its operstate is `up` (or `unknown`, as loopback and some virtual
/// links report) and it has a carrier. A missing interface is down.
pub fn link_up(name: &str) -> bool {
    let base = std::path::Path::new("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(base.join(f)).map(|s| s.trim().to_string());
    let oper = read("operstate").unwrap_or_default();
    let carrier = read("carrier").map_or(true, |c| c == "1");
    matches!(oper.as_str(), "up" | "unknown") && carrier
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_streaks() {
        let mut h = ScriptHealth::new();
        assert!(h.passing);
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(true, 2, 3), "a pass breaks the failing streak");
        assert!(!h.record(false, 2, 3));
        assert!(!h.record(false, 2, 3));
        assert!(h.record(false, 2, 3), "third failure in a row");
        assert!(!h.passing);
        assert!(!h.record(true, 2, 3));
        assert!(h.record(true, 2, 3));
        assert!(h.passing);
    }

    #[test]
    fn keepalived_weights_and_faults() {
        // The seeds: `chk_haproxy` weight 2, passing: +2.
        assert_eq!(verdict(&[("chk", true, 2)], &[], &[]), (2, None));
        assert_eq!(verdict(&[("chk", false, 2)], &[], &[]), (0, None));
        assert_eq!(verdict(&[("chk", false, -60)], &[], &[]), (-60, None));
        assert_eq!(verdict(&[("chk", true, -60)], &[], &[]), (0, None));
        assert_eq!(
            verdict(&[("chk", false, 0)], &[], &[]),
            (0, Some("script chk failing".into()))
        );
        assert_eq!(verdict(&[], &[(3, -10)], &[]), (-30, None));
        assert_eq!(
            verdict(&[], &[], &[("eth1", false, None), ("eth2", true, Some(5))]),
            (5, Some("interface eth1 down".into()))
        );
        assert_eq!(verdict(&[], &[(1000, 254)], &[]), (254, None));
    }

    #[test]
    fn numbers_from_files() {
        let dir = std::env::temp_dir().join(format!("ringlb-track-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("weight");
        std::fs::write(&f, "-7\n").unwrap();
        assert_eq!(read_number(f.to_str().unwrap()), -7);
        std::fs::write(&f, "x").unwrap();
        assert_eq!(read_number(f.to_str().unwrap()), 0);
        assert_eq!(read_number(dir.join("none").to_str().unwrap()), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_is_up_and_a_missing_link_is_down() {
        assert!(link_up("lo"));
        assert!(!link_up("ringlb-none0"));
    }

    #[test]
    fn a_script_past_its_timeout_is_killed_with_what_it_started() {
        let dir = std::env::temp_dir().join(format!("ringlb-track-timeout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("pid");
        let def = TrackScript {
            name: "hangs".into(),
            // The shell starts a child that would outlive it, then waits.
            script: format!("sleep 30 & echo $! > {}; wait", pid_file.display()),
            interval: Duration::from_secs(60),
            // Long enough for the shell to start its child on a loaded machine.
            timeout: Duration::from_secs(2),
            weight: -10,
            rise: 1,
            fall: 1,
        };
        let start = Instant::now();
        let mut t = Trackers::new(&[def], &[], &[], start);
        t.poll(start);
        let mut flipped = false;
        while start.elapsed() < Duration::from_secs(10) && !flipped {
            std::thread::sleep(Duration::from_millis(20));
            flipped = t.poll(Instant::now());
        }
        assert!(flipped, "the timed-out run counts as a failure");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("the script did not start its child within 2 s: {e}"));
        let stat = std::path::Path::new("/proc").join(pid.trim()).join("stat");
        // Gone, or a zombie waiting for init: not sleeping on.
        let mut alive = true;
        for _ in 0..50 {
            alive = std::fs::read_to_string(&stat)
                .is_ok_and(|s| s.split(") ").nth(1).is_some_and(|r| !r.starts_with('Z')));
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !alive,
            "the script's own child {} outlived the timeout",
            pid.trim()
        );
    }
}
