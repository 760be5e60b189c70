//! Whether an instance's tracking can move the VIP at all: a failing check lowers the
//! master's priority, and the VIP moves only if that takes it under the peer's. keepalived
//! takes any weight silently (the common `weight 2` at priorities 150 and 100 can never move
//! the VIP: 150 stays above 102); `--check` says so when the peer's priority is known
//! (`peer_priority`).
//!
//! The peer is assumed to track the same checks (a pair's configs are usually twins), so a
//! positive weight counts as what the master loses when its check fails, and a negative one
//! as what it subtracts; either way the master drops by the weight's size.

use super::{TrackAction, VrrpInstance};

/// One piece of advice: the JSON path it is about and what to tell the operator.
pub(in crate::config) type Advice = (String, String);

/// The advice for instance `i` (at `vrrp.instances[i]`) of `scripts` names.
pub(in crate::config) fn advice(i: usize, inst: &VrrpInstance, scripts: &[&str]) -> Vec<Advice> {
    let Some(peer) = inst.peer_priority else {
        return Vec::new();
    };
    let at = format!("vrrp.instances[{i}]");
    let own = inst.priority;
    if own < peer || own == 255 {
        // The backup by design, or the address owner (which never yields, RFC 9568).
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut check = |path: String, what: &str, drop: u16| {
        let left = i32::from(own) - i32::from(drop);
        if left >= i32::from(peer) {
            let outcome = if left == i32::from(peer) {
                format!(
                    "equal to peer_priority {peer}: the VIP moves only if this node's primary \
                     address is the lower one"
                )
            } else {
                format!("still above peer_priority {peer}: the VIP never moves on it")
            };
            out.push((
                path,
                format!(
                    "{what} lowers priority {own} by {drop} to {left}, {outcome} (lower the \
                     priority or use a larger weight)"
                ),
            ));
        }
    };
    if let Some(t) = &inst.track {
        if let TrackAction::Penalty(n) = t.action {
            check(
                format!("{at}.track.penalty"),
                "a worker stall",
                u16::from(n),
            );
        }
    }
    for (k, s) in inst.hooks.track_scripts.iter().enumerate() {
        if s.weight != 0 {
            let name = scripts.get(s.index).copied().unwrap_or("?");
            check(
                format!("{at}.track_scripts[{k}]"),
                &format!("script {name:?} failing"),
                s.weight.unsigned_abs(),
            );
        }
    }
    for (k, t) in inst.hooks.track_interfaces.iter().enumerate() {
        if let Some(w) = t.weight.filter(|&w| w != 0) {
            check(
                format!("{at}.track_interfaces[{k}]"),
                &format!("interface {:?} going down", t.name),
                w.unsigned_abs(),
            );
        }
    }
    out
}
