//! The per-instance VRRP families. Instances are labelled `vrrp_instance` (not `instance`,
//! which Prometheus gives every scraped target) and `vrid`, so that the MASTERs of one VRID
//! can be counted across the boxes of a pair.

use prometheus_client::metrics::MetricType;

use super::{Family, Labels, Value};
use crate::stats::report::{Report, VrrpRow};

const VRRP_STATES: [&str; 4] = ["MASTER", "BACKUP", "INIT", "FAULT"];

pub fn families(r: &Report) -> Vec<Family> {
    let vrrp = &r.vrrp;
    if vrrp.is_empty() {
        return Vec::new();
    }
    let inst = |v: &VrrpRow| -> Labels {
        vec![
            ("vrrp_instance", v.name.clone()),
            ("vrid", v.vrid.to_string()),
        ]
    };
    let each = |f: fn(&VrrpRow) -> Value| vrrp.iter().map(|v| (inst(v), f(v))).collect();
    vec![
        Family::new(
            "ringlb_vrrp_state",
            "1 for the instance's current state (MASTER, BACKUP, INIT, FAULT), 0 for the others",
            None,
            MetricType::Gauge,
            vrrp.iter()
                .flat_map(|v| {
                    VRRP_STATES.iter().map(move |&st| {
                        let mut l = inst(v);
                        l.push(("state", st.to_string()));
                        (l, Value::Gauge(if v.state == st { 1.0 } else { 0.0 }))
                    })
                })
                .collect(),
        ),
        Family::new(
            "ringlb_vrrp_priority",
            "Effective priority (configured less penalty)",
            None,
            MetricType::Gauge,
            each(|v| Value::Gauge(f64::from(v.priority))),
        ),
        Family::new(
            "ringlb_vrrp_transitions",
            "State transitions since start",
            None,
            MetricType::Counter,
            each(|v| Value::Counter(v.transitions)),
        ),
        Family::new(
            "ringlb_vrrp_adverts_sent",
            "Adverts sent",
            None,
            MetricType::Counter,
            each(|v| Value::Counter(v.adverts_sent)),
        ),
        Family::new(
            "ringlb_vrrp_adverts_received",
            "Adverts received that passed every check",
            None,
            MetricType::Counter,
            each(|v| Value::Counter(v.adverts_received)),
        ),
        Family::new(
            "ringlb_vrrp_drops",
            "Received VRRP packets dropped, by the check they failed",
            None,
            MetricType::Counter,
            vrrp.iter()
                .flat_map(|v| {
                    v.drops.iter().map(move |&(reason, n)| {
                        let mut l = inst(v);
                        l.push(("reason", reason.to_string()));
                        (l, Value::Counter(n))
                    })
                })
                .collect(),
        ),
    ]
}
