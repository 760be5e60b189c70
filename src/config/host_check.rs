//! What a valid configuration needs of the host it runs on (today: that each VRRP interface
//! exists), checked apart from validation: `--check` may run on another machine, where these
//! are only warnings, while start and reload refuse a file this host cannot serve.

use super::span::SpanIndex;
use super::{Config, ConfigError, ConfigErrors, Vrrp};

/// One need of the host, with where the file states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Need {
    path: String,
    line: usize,
    column: usize,
    interface: String,
}

/// The needs of a validated file: one per VRRP instance.
pub(super) fn needs(vrrp: &Vrrp, spans: &SpanIndex) -> Vec<Need> {
    vrrp.instances
        .iter()
        .enumerate()
        .map(|(i, instance)| {
            let path = format!("vrrp.instances[{i}].interface");
            let (line, column) = spans.locate(&path).unwrap_or((0, 0));
            Need {
                path,
                line,
                column,
                interface: instance.interface.clone(),
            }
        })
        .collect()
}

/// What this host lacks for `config`, as errors of `file` (the label of `load`). Start and
/// reload treat them as errors; `--check` prints them as warnings (`ConfigErrors::warnings`).
pub fn host_problems(file: &str, config: &Config) -> Result<(), ConfigErrors> {
    let errors: Vec<ConfigError> = config
        .host_needs
        .iter()
        .filter(|n| nix::net::if_::if_nametoindex(n.interface.as_str()).is_err())
        .map(|n| ConfigError {
            path: n.path.clone(),
            message: format!("no interface {:?} on this host", n.interface),
            line: n.line,
            column: n.column,
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
    fn a_missing_interface_names_its_path_and_line() {
        let c = parse("x.json", &with_interfaces(&["lo", "rlb-missing0"])).unwrap();
        let e = host_problems("x.json", &c).unwrap_err();
        let want = "vrrp.instances[1].interface: no interface \"rlb-missing0\" on this host \
                    (line 7, column 36)";
        assert_eq!(e.to_string(), format!("x.json: {want}"));
        assert_eq!(e.warnings().to_string(), format!("x.json: warning: {want}"));
    }
}
