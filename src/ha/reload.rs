//! What a configuration reload may change in a running instance: priority, unicast peers
//! (while unicast), tracking and the notify command apply at once; anything that names the
//! virtual router or its timers on the wire needs a restart and is reported as such.

use crate::config::VrrpInstance;

/// The fields of `new` that differ from `old` and cannot change while the instance runs.
pub fn needs_restart(old: &VrrpInstance, new: &VrrpInstance) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            fields.push(name);
        }
    };
    check("interface", old.interface != new.interface);
    check("vrid", old.vrid != new.vrid);
    check("version", old.version != new.version);
    check(
        "advert_interval",
        old.advert_interval != new.advert_interval,
    );
    check("vips", old.vips != new.vips);
    check(
        "unicast_peers (multicast <-> unicast)",
        old.unicast_peers.is_empty() != new.unicast_peers.is_empty(),
    );
    check("preempt", old.preempt != new.preempt);
    check("preempt_delay", old.preempt_delay != new.preempt_delay);
    check("accept_mode", old.accept_mode != new.accept_mode);
    check("auth_pass", old.auth != new.auth);
    check("checksum_compat", old.checksum != new.checksum);
    check(
        "garp_*",
        (
            old.garp_repeat,
            old.garp_interval,
            old.garp_delay,
            old.garp_refresh,
        ) != (
            new.garp_repeat,
            new.garp_interval,
            new.garp_delay,
            new.garp_refresh,
        ),
    );
    fields
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{TrackAction, Vip};

    fn instance(extra: &str) -> VrrpInstance {
        let text = format!(
            r#"{{ "frontends": [ {{ "name": "f", "bind": ["192.0.2.10:80"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "192.0.2.21:80" }} ] }} ],
  "vrrp": {{ "instances": [ {{ "name": "VI_1", "interface": "eth0", "vrid": 51,
    "vips": ["192.0.2.10/24"], "unicast_peers": ["192.0.2.3"] {extra} }} ] }} }}"#
        );
        let mut c = crate::config::parse("x.json", &text).unwrap();
        c.vrrp.instances.remove(0)
    }

    #[test]
    fn priority_peers_track_and_notify_apply_in_place() {
        let old = instance("");
        let mut new = instance(r#", "track": { "worker_stall": "250ms", "stop_adverts": true }"#);
        new.priority = 200;
        new.unicast_peers = vec!["192.0.2.4".parse().unwrap()];
        new.notify = Some("/bin/true".into());
        assert!(needs_restart(&old, &new).is_empty());
        let track = new.track.unwrap();
        assert_eq!(track.worker_stall, Duration::from_millis(250));
        assert_eq!(track.action, TrackAction::StopAdverts);
    }

    #[test]
    fn identity_and_timers_need_a_restart() {
        let old = instance("");
        let mut new = old.clone();
        new.vrid = 52;
        new.vips.push(Vip {
            addr: "192.0.2.11".parse().unwrap(),
            prefix_len: 24,
        });
        new.unicast_peers.clear();
        new.garp_repeat = 1;
        assert_eq!(
            needs_restart(&old, &new),
            vec![
                "vrid",
                "vips",
                "unicast_peers (multicast <-> unicast)",
                "garp_*"
            ]
        );
    }
}
