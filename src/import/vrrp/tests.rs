//! keepalived.conf's VRRP side as ringlb's `vrrp` section, with the exact findings.

use super::*;
use crate::import::keepalived;

fn run(conf: &str) -> (Option<Vrrp>, Vec<String>) {
    let mut r = Report::default();
    let v = convert(&keepalived::parse(conf.as_bytes()).unwrap(), &mut r);
    let found = r
        .sorted()
        .iter()
        .map(|f| {
            let sev = if f.severity == crate::import::report::Severity::Note {
                "note: "
            } else {
                ""
            };
            format!("{}: {sev}{}", f.line, f.what)
        })
        .collect();
    (v, found)
}

fn json(v: &Option<Vrrp>) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn the_seed_pair_instance() {
    let (v, found) = run(r#"vrrp_script chk_haproxy {
  script "killall -0 haproxy"   # cheaper than pidof
  interval 2
  weight 2
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  track_interface {
    eth1
  }
  track_script {
    chk_haproxy
  }
  garp_master_delay 1
  virtual_router_id 51
  priority 101
  advert_int 1
  virtual_ipaddress {
    192.0.2.10 dev eth0
  }
  nopreempt
}
"#);
    assert_eq!(
        json(&v),
        serde_json::json!({
            "scripts": [ { "name": "chk_haproxy", "script": "killall -0 haproxy", "interval": "2s", "weight": 2 } ],
            "instances": [ {
                "name": "VI_1", "interface": "eth0", "vrid": 51, "priority": 101, "version": 2,
                "advert_interval": "1s", "vips": ["192.0.2.10/32"], "preempt": false, "garp_delay": "1s",
                "track_scripts": [ { "name": "chk_haproxy" } ],
                "track_interfaces": [ { "name": "eth1" } ]
            } ]
        })
    );
    assert_eq!(
        found,
        ["7: note: state BACKUP: ringlb has no initial state, the highest priority becomes master"]
    );
}

#[test]
fn samples_oddities() {
    let (v, found) = run(r#"global_defs {
   notification_email {
     acassen
   }
   router_id LVS_DEVEL
   vrrp_version 3
}
vrrp_sync_group G1 {
  group {
    VI_1
  }
}
vrrp_script check_VI_0 {
@high	script /etc/keepalived/scripts/check_high_VI_0.sh
	interval 1
}
vrrp_instance VI_1 {
    interface eth0
    smtp_alert
    virtual_router_id 51
    @high priority 170
    advert_int 0.05
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.16
        192.0.2.17 dev eth1
        192.0.2.17 label eth0:1
        2001:db8::1
        224.0.0.1
        192.0.2.300
    }
    track_script {
        check_VI_0
    }
    track_interface {
        eth2 weight 300
        eth3 weight -2 reverse
    }
    use_vmac
}
vrrp_instance VI_1 {
    interface eth1
    virtual_router_id 52
    virtual_ipaddress {
        192.0.2.18
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.19
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    virtual_ipaddress {
        fe80::10
        2001:db8::10/64
    }
}
virtual_server 192.0.2.19 80 {
    lb_algo rr
}
include /etc/keepalived/conf.d/*.conf
"#);
    assert_eq!(
        found,
        [
            "8: vrrp_sync_group G1: ringlb's instances change state on their own, left out",
            "13: vrrp_script check_VI_0: no script, left out",
            "14: @high: a line for keepalived's -i config id, left out",
            "19: smtp_alert: ringlb sends no mail, left out",
            "21: @high: a line for keepalived's -i config id, left out",
            "23: authentication: VRRPv3 has none, left out",
            "29: dev eth1: ringlb adds every address on the instance's interface, eth0",
            "30: virtual_ipaddress 192.0.2.17 is listed twice: the second is left out",
            "31: virtual_ipaddress 2001:db8::1: not of the family of the first, left out",
            "32: virtual_ipaddress 224.0.0.1: cannot be a virtual address, left out",
            "33: virtual_ipaddress \"192.0.2.300\": not an address, left out",
            "36: track_script \"check_VI_0\": no usable vrrp_script of that name, left out",
            "39: weight \"300\": not from -253 to 253, left out",
            "40: weight ... reverse: not available in ringlb, the weight is left out",
            "42: vrrp_instance `use_vmac`: no equivalent in ringlb, left out",
            "44: a second instance named \"VI_1\": left out",
            "51: virtual_router_id 51 is already used on eth0: left out",
            "66: virtual_server 192.0.2.19: IPVS is not converted",
            "69: include /etc/keepalived/conf.d/*.conf: not followed, import that file on its own",
        ]
    );
    assert_eq!(
        json(&v),
        serde_json::json!({
            "instances": [ {
                "name": "VI_1", "interface": "eth0", "vrid": 51, "advert_interval": "50ms",
                "vips": ["192.0.2.16/32", "192.0.2.17/32"],
                "track_interfaces": [ { "name": "eth2" }, { "name": "eth3" } ]
            }, {
                "name": "VI_3", "interface": "eth0", "vrid": 53,
                "vips": ["fe80::10/128", "2001:db8::10/64"]
            } ]
        })
    );
}

#[test]
fn notify_commands_passwords_and_files() {
    let (v, found) = run(r#"track_file prio {
    file "/run/ringlb/prio"
    weight -2
    init_file
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    authentication {
        auth_type PASS
        auth_pass MySecret123
    }
    virtual_ipaddress {
        192.0.2.10/24
    }
    unicast_src_ip 192.0.2.2
    unicast_peer {
        192.0.2.3
        2001:db8::3
    }
    track_file {
        prio weight 3
    }
    notify /etc/keepalived/notify.py
    notify_master "/usr/local/bin/vrrp.sh MASTER VI_1"
    notify_backup /etc/keepalived/backup.sh root root
    notify_fault ""
}
"#);
    assert_eq!(
        json(&v),
        serde_json::json!({
            "files": [ { "name": "prio", "path": "/run/ringlb/prio", "weight": -2 } ],
            "instances": [ {
                "name": "VI_1", "interface": "eth0", "vrid": 51, "version": 2,
                "vips": ["192.0.2.10/24"], "unicast_peers": ["192.0.2.3"], "auth_pass": "MySecret",
                "track_files": [ { "name": "prio", "weight": 3 } ],
                "notify": "/etc/keepalived/notify.py",
                "notify_master": "/usr/local/bin/vrrp.sh MASTER VI_1",
                "notify_backup": "/etc/keepalived/backup.sh"
            } ]
        })
    );
    assert_eq!(
        found,
        [
            "4: note: init_file: ringlb does not create the file",
            "6: unicast_peer 2001:db8::3: not of the family of the addresses, left out",
            "11: note: auth_pass: keepalived sends its first 8 bytes, so does ringlb",
            "16: note: unicast_src_ip 192.0.2.2: ringlb sends from the interface's own address",
            "26: note: notify_backup: the user and group after the command are left out; ringlb runs it as its own user",
            "27: notify_fault: an empty command, left out",
        ]
    );
}

#[test]
fn instances_without_essentials_are_left_out() {
    let (v, found) = run(
        "vrrp_instance A {\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n\
         vrrp_instance B {\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n\
         vrrp_instance C {\n  interface eth0\n  virtual_router_id 0\n}\n",
    );
    assert!(v.is_none());
    assert_eq!(
        found,
        [
            "1: vrrp_instance A: no usable interface, left out",
            "7: vrrp_instance B: no virtual_router_id, left out",
            "13: vrrp_instance C: no virtual_router_id, left out",
            "15: virtual_router_id \"0\": not 1 to 255",
        ]
    );
}
