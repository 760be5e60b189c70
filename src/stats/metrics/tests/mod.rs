//! Both encodings of a report made by hand: VRRP labels, build info, the new counters, and
//! a text exposition whose counters are named with `_total` and whose buckets add up.

mod shipped;

use super::*;
use crate::counters::{EndCounts, EndTotals};
use crate::stats::report::{
    AnnounceRow, AnnouncedVipRow, BackendRow, FrontendRow, HandoffRow, Process, ServerRow, VrrpRow,
};

fn report() -> Report {
    let ends = EndCounts::default();
    ends.add(2); // client_reset
    ends.add(6); // no_server
    ends.add(6);
    let ends = EndTotals::sum(std::iter::once(&ends));
    let mut server = ServerRow {
        name: "web1".into(),
        state: "DOWN",
        check_failures: 4,
        state_changes: 3,
        downtime_seconds: 12.5,
        ends,
        ..Default::default()
    };
    server.timings.connect.record(300).unwrap();
    server.timings.connect.record(20_000).unwrap();
    server.timings.connect_sum_us = 20_300;
    Report {
        process: Process {
            version: "0.1.0",
            commit: "abc1234",
            thread_faults: vec![("stats", 0)],
            ..Default::default()
        },
        vrrp: vec![VrrpRow {
            name: "vi_1".into(),
            vrid: 51,
            state: "MASTER",
            adverts_sent: 9,
            adverts_received: 2,
            drops: vec![("bad_ttl", 1), ("auth_mismatch", 0)],
            ..Default::default()
        }],
        announce: Some(AnnounceRow {
            interface: "ringlb-vip".into(),
            vips: vec![
                AnnouncedVipRow {
                    vip: "192.0.2.240".into(),
                    announced: true,
                    reason: None,
                },
                AnnouncedVipRow {
                    vip: "2001:db8::80".into(),
                    announced: false,
                    reason: Some("stopping".into()),
                },
            ],
            handoff: Some(HandoffRow {
                peers: vec!["192.0.2.195".into()],
                window_seconds_left: 4.5,
                windows_opened: 3,
                notices_sent: 2,
                notices_received: 5,
                notices_dropped: 1,
            }),
        }),
        frontends: vec![FrontendRow {
            name: "web".into(),
            ends,
            ..Default::default()
        }],
        backends: vec![BackendRow {
            name: "farm".into(),
            servers: vec![server],
            ..Default::default()
        }],
    }
}

#[test]
fn openmetrics_has_the_new_families_and_no_instance_label() {
    let out = encode(&report(), Format::OpenMetrics).unwrap();
    for line in [
        r#"ringlb_build_info{version="0.1.0",commit="abc1234"} 1"#,
        r#"ringlb_vrrp_state{vrrp_instance="vi_1",vrid="51",state="MASTER"} 1.0"#,
        r#"ringlb_vrrp_adverts_sent_total{vrrp_instance="vi_1",vrid="51"} 9"#,
        r#"ringlb_vrrp_adverts_received_total{vrrp_instance="vi_1",vrid="51"} 2"#,
        r#"ringlb_vrrp_drops_total{vrrp_instance="vi_1",vrid="51",reason="bad_ttl"} 1"#,
        r#"ringlb_frontend_connections_ended_total{frontend="web",end="no_server"} 2"#,
        r#"ringlb_server_connections_ended_total{backend="farm",server="web1",end="client_reset"} 1"#,
        r#"ringlb_server_check_failures_total{backend="farm",server="web1"} 4"#,
        r#"ringlb_server_state_changes_total{backend="farm",server="web1"} 3"#,
        r#"ringlb_server_downtime_seconds_total{backend="farm",server="web1"} 12.5"#,
        r#"ringlb_announce_vip{vip="192.0.2.240"} 1.0"#,
        r#"ringlb_announce_vip{vip="2001:db8::80"} 0.0"#,
        r#"ringlb_handoff_window_open 1.0"#,
        r#"ringlb_handoff_windows_opened_total 3"#,
        r#"ringlb_handoff_notices_total{event="received"} 5"#,
        r#"ringlb_handoff_notices_total{event="dropped"} 1"#,
    ] {
        assert!(out.lines().any(|l| l == line), "no {line} in\n{out}");
    }
    assert!(!out.contains(",instance=") && !out.contains("{instance="));
    assert!(out.ends_with("# EOF\n"));
}

#[test]
fn text_format_names_counters_with_total_and_accumulates_buckets() {
    let out = encode(&report(), Format::Text).unwrap();
    assert!(!out.contains("# EOF") && !out.contains("# UNIT"));
    for line in [
        "# TYPE ringlb_build_info gauge",
        r#"ringlb_build_info{version="0.1.0",commit="abc1234"} 1"#,
        "# TYPE ringlb_server_downtime_seconds_total counter",
        "# TYPE ringlb_server_connect_seconds histogram",
        r#"ringlb_server_connect_seconds_bucket{backend="farm",server="web1",le="0.0005"} 1"#,
        r#"ringlb_server_connect_seconds_bucket{backend="farm",server="web1",le="0.025"} 2"#,
        r#"ringlb_server_connect_seconds_bucket{backend="farm",server="web1",le="+Inf"} 2"#,
        r#"ringlb_server_connect_seconds_sum{backend="farm",server="web1"} 0.0203"#,
        r#"ringlb_server_connect_seconds_count{backend="farm",server="web1"} 2"#,
        r#"ringlb_vrrp_drops_total{vrrp_instance="vi_1",vrid="51",reason="bad_ttl"} 1"#,
    ] {
        assert!(out.lines().any(|l| l == line), "no {line} in\n{out}");
    }
    // Every sample belongs to the family its TYPE line named just before.
    let mut family = String::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            family = name.to_string();
        } else if !line.starts_with('#') {
            assert!(line.starts_with(&family), "{line} outside {family}");
        }
    }
}

#[test]
fn label_values_and_help_are_escaped_in_text() {
    let mut r = report();
    r.frontends[0].name = "a\"b\\c\nd".into();
    let out = encode(&r, Format::Text).unwrap();
    assert!(out.contains(r#"{frontend="a\"b\\c\nd"}"#), "{out}");
}

#[test]
fn accept_picks_text_only_when_it_ranks_first() {
    use Format::*;
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for (accept, want) in [
        (None, OpenMetrics),
        (Some("*/*"), OpenMetrics),
        (Some(prometheus), OpenMetrics),
        (Some("text/plain"), Text),
        (Some("text/plain; version=0.0.4; charset=utf-8"), Text),
        (
            Some("Text/Plain;q=0.9, application/openmetrics-text;q=0.5"),
            Text,
        ),
        (Some("text/plain;q=0"), OpenMetrics),
        (
            Some("text/plain;q=0.5, application/openmetrics-text"),
            OpenMetrics,
        ),
        (Some("text/html"), OpenMetrics),
    ] {
        assert_eq!(Format::negotiate(accept), want, "{accept:?}");
    }
}
