//! What a valid configuration needs of the host it runs on (that each VRRP interface
//! exists, and with `announce.handoff` the `nft` command), checked apart from validation: `--check` may run on another machine, where these
//! are only warnings, while start and reload refuse a file this host cannot serve.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::span::SpanIndex;
use super::{Announce, Config, ConfigError, ConfigErrors, Vrrp};

/// One need of the host, with where the file states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Need {
    path: String,
    line: usize,
    column: usize,
    what: Needed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Needed {
    Interface(String),
    /// A command on `PATH`, and the Debian package that has it.
    Program(&'static str, &'static str),
}

/// The needs of a validated file: one per VRRP instance, and `nft` for a handoff.
pub(super) fn needs(vrrp: &Vrrp, announce: Option<&Announce>, spans: &SpanIndex) -> Vec<Need> {
    let at = |path: String, what: Needed| {
        let (line, column) = spans.locate(&path).unwrap_or((0, 0));
        Need {
            path,
            line,
            column,
            what,
        }
    };
    let mut out: Vec<Need> = vrrp
        .instances
        .iter()
        .enumerate()
        .map(|(i, instance)| {
            at(
                format!("vrrp.instances[{i}].interface"),
                Needed::Interface(instance.interface.clone()),
            )
        })
        .collect();
    if announce.is_some_and(|a| a.handoff.is_some()) {
        out.push(at(
            "announce.handoff".into(),
            Needed::Program("nft", "nftables"),
        ));
    }
    out
}

/// Whether `name` is an executable file in a directory of `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|dirs| {
        std::env::split_paths(&dirs).any(|d| {
            let f = d.join(name);
            Path::new(&f)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// What this host lacks for `config`, as errors of `file` (the label of `load`). Start and
/// reload treat them as errors; `--check` prints them as warnings (`ConfigErrors::warnings`).
pub fn host_problems(file: &str, config: &Config) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> = config
        .host_needs
        .iter()
        .filter_map(|n| {
            let message = match &n.what {
                Needed::Interface(name) => nix::net::if_::if_nametoindex(name.as_str())
                    .is_err()
                    .then(|| format!("no interface {name:?} on this host")),
                Needed::Program(name, package) => (!on_path(name)).then(|| {
                    format!("needs the {name} command, not on this host's PATH (package {package})")
                }),
            }?;
            Some(ConfigError {
                path: n.path.clone(),
                message,
                line: n.line,
                column: n.column,
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors {
            file: file.to_string(),
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn with_interfaces(names: &[&str]) -> String {
        let instances: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                format!(
                    "    {{ \"name\": \"VI_{i}\", \"interface\": \"{name}\", \"vrid\": {},\n      \
                     \"vips\": [\"192.0.2.10/24\"] }}",
                    i + 1
                )
            })
            .collect();
        format!(
            r#"{{
  "frontends": [ {{ "name": "f", "bind": ["127.0.0.1:1"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "127.0.0.1:2" }} ] }} ],
  "vrrp": {{ "instances": [
{}
  ] }}
}}"#,
            instances.join(",\n")
        )
    }

    #[test]
    fn loopback_exists_everywhere() {
        let c = parse("x.json", &with_interfaces(&["lo"])).unwrap();
        assert_eq!(host_problems("x.json", &c), Ok(()));
        let c = parse("x.json", &with_interfaces(&[])).unwrap();
        assert_eq!(host_problems("x.json", &c), Ok(()));
    }

    #[test]
    fn a_handoff_needs_nft_on_the_path() {
        let text = r#"{
  "frontends": [ { "name": "f", "bind": ["192.0.2.9:1"], "backend": "b" } ],
  "backends": [ { "name": "b", "servers": [ { "name": "s", "addr": "127.0.0.1:2" } ] } ],
  "announce": { "vips": ["192.0.2.9"],
                "handoff": { "peers": ["192.0.2.10"] } } }"#;
        let c = parse("x.json", text).unwrap();
        let needs: Vec<&Needed> = c.host_needs.iter().map(|n| &n.what).collect();
        assert_eq!(needs, vec![&Needed::Program("nft", "nftables")]);
        // `scripts/test` installs nftables; `sh` is everywhere; this name nowhere.
        assert!(on_path("nft") && on_path("sh"));
        assert!(!on_path("rlb-no-such-command"));
    }

    #[test]
    fn a_missing_interface_names_its_path_and_line() {
        let c = parse("x.json", &with_interfaces(&["lo", "rlb-missing0"])).unwrap();
        let e = host_problems("x.json", &c).unwrap_err();
        let want = "vrrp.instances[1].interface: no interface \"rlb-missing0\" on this host \
                    (line 7, column 36)";
        assert_eq!(e.to_string(), format!("x.json: {want}"));
        assert_eq!(e.warnings().to_string(), format!("x.json: warning: {want}"));
    }
}
