//! The `announce` section's families: whether each VIP is announced, and what the handoff
//! did. Absent without an `announce` section (and the handoff's without a handoff).

use prometheus_client::metrics::MetricType;

use super::{Family, Value};
use crate::stats::report::Report;

pub fn families(r: &Report) -> Vec<Family> {
    let Some(a) = &r.announce else {
        return Vec::new();
    };
    let mut out = vec![Family::new(
        "ringlb_announce_vip",
        "1 while the VIP is announced to the router (on the announce interface), 0 while withdrawn",
        None,
        MetricType::Gauge,
        a.vips
            .iter()
            .map(|v| {
                (
                    vec![("vip", v.vip.clone())],
                    Value::Gauge(if v.announced { 1.0 } else { 0.0 }),
                )
            })
            .collect(),
    )];
    if let Some(h) = &a.handoff {
        out.push(Family::single(
            "ringlb_handoff_window_open",
            "1 while packets of flows this box does not know are handed to the peers",
            None,
            MetricType::Gauge,
            Value::Gauge(if h.window_seconds_left > 0.0 {
                1.0
            } else {
                0.0
            }),
        ));
        out.push(Family::single(
            "ringlb_handoff_windows_opened",
            "Handoff windows opened (this box joining, or a peer's notice)",
            None,
            MetricType::Counter,
            Value::Counter(h.windows_opened),
        ));
        out.push(Family::new(
            "ringlb_handoff_notices",
            "Handoff notices sent to peers, received from them, and dropped (not from a peer, or malformed)",
            None,
            MetricType::Counter,
            [
                ("sent", h.notices_sent),
                ("received", h.notices_received),
                ("dropped", h.notices_dropped),
            ]
            .into_iter()
            .map(|(k, n)| (vec![("event", k.to_string())], Value::Counter(n)))
            .collect(),
        ));
    }
    out
}
