//! The prose of a reload: one summary line of what was added (+), removed (-) and changed
//! (~) per backend and frontend, and the settings that only a restart applies.

use crate::config::Config;

/// Settings that differ between `old` and `new` and that only a restart applies.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if new.workers != old.workers {
        out.push(format!(
            "workers {} → {}",
            show(old.workers),
            show(new.workers)
        ));
    }
    if new.pin_workers != old.pin_workers {
        out.push("pin_workers".to_string());
    }
    if new.stats.as_ref().map(|s| s.bind) != old.stats.as_ref().map(|s| s.bind) {
        out.push("stats bind".to_string());
    }
    out
}

fn show(workers: Option<usize>) -> String {
    workers.map_or_else(|| "auto".to_string(), |w| w.to_string())
}

/// The reload summary: what was added (+), removed (-) and changed (~), per backend and
/// frontend, e.g. `backend webfarm +web3 -web1 ~web2(weight 1→3); frontend api added`.
pub fn describe_changes(old: &Config, new: &Config) -> String {
    let mut parts = Vec::new();
    for b in &new.backends {
        let Some(ob) = old.backends.iter().find(|o| o.name == b.name) else {
            parts.push(format!("backend {} added", b.name));
            continue;
        };
        let mut items = Vec::new();
        if ob.balance != b.balance {
            items.push(format!("balance {:?}→{:?}", ob.balance, b.balance).to_lowercase());
        }
        if ob.health_check != b.health_check {
            items.push("health_check changed".to_string());
        }
        if ob.timeouts != b.timeouts || ob.retries != b.retries || ob.no_server != b.no_server {
            items.push("settings changed".to_string());
        }
        for s in &b.servers {
            match ob.servers.iter().find(|o| o.name == s.name) {
                None => items.push(format!("+{}", s.name)),
                Some(os) => {
                    let mut what = Vec::new();
                    if os.addr != s.addr {
                        what.push(format!("addr {}→{}", os.addr, s.addr));
                    }
                    if os.weight != s.weight {
                        what.push(format!("weight {}→{}", os.weight, s.weight));
                    }
                    if os.backup != s.backup
                        || os.maxconn != s.maxconn
                        || os.check_addr != s.check_addr
                    {
                        what.push("settings".to_string());
                    }
                    if !what.is_empty() {
                        items.push(format!("~{}({})", s.name, what.join(", ")));
                    }
                }
            }
        }
        for os in &ob.servers {
            if !b.servers.iter().any(|s| s.name == os.name) {
                items.push(format!("-{}", os.name));
            }
        }
        if !items.is_empty() {
            parts.push(format!("backend {} {}", b.name, items.join(" ")));
        }
    }
    for ob in &old.backends {
        if !new.backends.iter().any(|b| b.name == ob.name) {
            parts.push(format!("backend {} removed", ob.name));
        }
    }
    for f in &new.frontends {
        let Some(of) = old.frontends.iter().find(|o| o.name == f.name) else {
            parts.push(format!("frontend {} added", f.name));
            continue;
        };
        let mut items = Vec::new();
        for a in f.bind.iter().filter(|a| !of.bind.contains(a)) {
            items.push(format!("+bind {a}"));
        }
        for a in of.bind.iter().filter(|a| !f.bind.contains(a)) {
            items.push(format!("-bind {a}"));
        }
        fn backend_name(c: &Config, b: Option<usize>) -> Option<&str> {
            b.and_then(|b| c.backends.get(b)).map(|b| b.name.as_str())
        }
        if backend_name(new, f.backend) != backend_name(old, of.backend) {
            items.push("backend changed".to_string());
        }
        if of.inspect != f.inspect {
            items.push("inspection changed".to_string());
        }
        if of.forward != f.forward || of.log != f.log || of.maxconn != f.maxconn {
            items.push("settings changed".to_string());
        }
        if !items.is_empty() {
            parts.push(format!("frontend {} {}", f.name, items.join(" ")));
        }
    }
    for of in &old.frontends {
        if !new.frontends.iter().any(|f| f.name == of.name) {
            parts.push(format!("frontend {} removed", of.name));
        }
    }
    if old.stats != new.stats
        && old.stats.as_ref().map(|s| s.bind) == new.stats.as_ref().map(|s| s.bind)
    {
        parts.push("stats settings changed".to_string());
    }
    if old.maxconn != new.maxconn
        || old.grace != new.grace
        || old.drain_timeout != new.drain_timeout
    {
        parts.push("global settings changed".to_string());
    }
    if old.vrrp != new.vrrp {
        parts.push("vrrp settings changed".to_string());
    }
    match (&old.announce, &new.announce) {
        (None, Some(_)) => parts.push("announce added".to_string()),
        (Some(_), None) => parts.push("announce removed".to_string()),
        (Some(o), Some(n)) if o != n => parts.push("announce settings changed".to_string()),
        _ => {}
    }
    if parts.is_empty() {
        "no change".to_string()
    } else {
        parts.join("; ")
    }
}
