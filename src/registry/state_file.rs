//! The server-state file (HAProxy's `server-state-file`): admin states and weights set at
//! run time, written atomically (a temporary file renamed over the old one) on every
//! change and at stop, read at start, so that a drained server stays drained across a
//! restart. A server is known by its identity (backend, name, address); entries for
//! servers no longer in the config are skipped with a warning, and a file that cannot be
//! read or parsed is ignored with one.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ServerRegistry;
use crate::logging::event;
use crate::table::AdminState;

const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    servers: Vec<Saved>,
}

/// One server's admin setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Saved {
    backend: String,
    server: String,
    addr: SocketAddr,
    admin: String,
    weight: Option<u32>,
    by: String,
}

fn admin_of(name: &str) -> Option<AdminState> {
    match name {
        "READY" => Some(AdminState::Ready),
        "DRAIN" => Some(AdminState::Drain),
        "MAINT" => Some(AdminState::Maint),
        _ => None,
    }
}

impl ServerRegistry {
    /// Writes every admin setting to `path` (only servers with one).
    pub fn save_state(&self, path: &Path) -> std::io::Result<()> {
        let mut servers = Vec::new();
        for (b, backend) in self.config.backends.iter().enumerate() {
            for (s, server) in backend.servers.iter().enumerate() {
                let rt = &self.servers[b][s];
                if rt.admin == AdminState::Ready && rt.admin_weight.is_none() {
                    continue;
                }
                servers.push(Saved {
                    backend: backend.name.clone(),
                    server: server.name.clone(),
                    addr: server.addr,
                    admin: rt.admin.as_str().to_string(),
                    weight: rt.admin_weight,
                    by: rt.admin_by.clone(),
                });
            }
        }
        let text = serde_json::to_string_pretty(&StateFile {
            version: VERSION,
            servers,
        })
        .map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Applies the settings saved in `path` (at start, before the first snapshot is
    /// used). Returns how many were applied; everything skipped is logged.
    pub fn load_state(&mut self, path: &Path) -> usize {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
            Err(e) => {
                event!(warning: "state file {}: {e}; ignored", path.display());
                return 0;
            }
        };
        let file: StateFile = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                event!(warning: "state file {}: {e}; ignored", path.display());
                return 0;
            }
        };
        if file.version != VERSION {
            event!(
                warning: "state file {}: version {} is not {VERSION}; ignored",
                path.display(),
                file.version
            );
            return 0;
        }
        let mut applied = 0;
        for saved in file.servers {
            let found = self
                .config
                .backends
                .iter()
                .enumerate()
                .find_map(|(b, backend)| {
                    (backend.name == saved.backend).then(|| {
                        backend
                            .servers
                            .iter()
                            .position(|s| s.name == saved.server && s.addr == saved.addr)
                            .map(|s| (b, s))
                    })?
                });
            let (Some((b, s)), Some(admin)) = (found, admin_of(&saved.admin)) else {
                event!(
                    warning: "state file {}: no server {}/{} at {} in the config (or a bad state {:?}); skipped",
                    path.display(),
                    saved.backend,
                    saved.server,
                    saved.addr,
                    saved.admin
                );
                continue;
            };
            let rt = &mut self.servers[b][s];
            rt.admin = admin;
            rt.admin_weight = saved.weight.filter(|&w| w <= crate::config::MAX_WEIGHT);
            rt.admin_by = format!("{} (state file)", saved.by);
            applied += 1;
        }
        if applied > 0 {
            event!(
                notice: "state file {}: {applied} admin settings restored",
                path.display()
            );
            self.publish();
        }
        applied
    }

    /// Saves the admin settings if the config names a state file; a failure is logged.
    pub fn persist(&self) {
        if let Some(path) = &self.config.state_file {
            if let Err(e) = self.save_state(path) {
                event!(error: "state file {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn registry() -> ServerRegistry {
        let c = parse(
            "x.json",
            r#"{ "frontends": [ { "name": "f", "bind": ["127.0.0.1:1"], "backend": "b" } ],
  "backends": [ { "name": "b", "servers": [ { "name": "s1", "addr": "127.0.0.1:2" },
                                            { "name": "s2", "addr": "127.0.0.1:3" } ] } ] }"#,
        )
        .unwrap();
        ServerRegistry::new(c, 1)
    }

    #[test]
    fn settings_survive_a_save_and_load() {
        let dir = std::env::temp_dir().join(format!("ringlb-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let mut r = registry();
        r.set_admin("b", "s1", Some(AdminState::Drain), Some(7), "ops")
            .unwrap();
        r.save_state(&path).unwrap();
        let mut fresh = registry();
        assert_eq!(fresh.load_state(&path), 1);
        let v = fresh.view();
        let s1 = &v.backends[0].servers[0];
        assert_eq!(s1.admin, AdminState::Drain);
        assert_eq!(s1.weight, 7);
        assert_eq!(v.backends[0].servers[1].admin, AdminState::Ready);

        // Unknown servers are skipped; a corrupt file is ignored.
        std::fs::write(
            &path,
            r#"{"version":1,"servers":[{"backend":"b","server":"gone","addr":"127.0.0.1:9",
                "admin":"MAINT","weight":null,"by":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(registry().load_state(&path), 0);
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(registry().load_state(&path), 0);
        assert_eq!(registry().load_state(&dir.join("missing.json")), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
