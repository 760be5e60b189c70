//! A frontend's `use_backend` rules as ringlb routes: conditions that match the TLS
//! server name (`req_ssl_sni` / `req.ssl_sni`, inline in `{ }` or through named acls,
//! joined with `or`) become `routes`; an unconditional rule becomes the default backend;
//! anything else is reported.

use super::proxy::{At, Proxy};
use super::report::{Report, Source};
use super::values;

const H: Source = Source::Haproxy;

/// One route, in rule order: an exact name or `*.suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniRoute {
    pub line: usize,
    pub sni: String,
    pub backend: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub routes: Vec<SniRoute>,
    /// An unconditional `use_backend`: it wins over `default_backend`.
    pub fallback: Option<At<String>>,
}

pub fn rules(p: &Proxy, r: &mut Report) -> Rules {
    let mut out = Rules::default();
    for rule in &p.use_backends {
        if let Some(f) = &out.fallback {
            r.warn(
                H,
                rule.line,
                format!(
                    "use_backend {}: never reached after the unconditional rule on line {}",
                    rule.backend, f.line
                ),
            );
            continue;
        }
        if rule.condition.is_empty() {
            out.fallback = Some(At {
                line: rule.line,
                value: rule.backend.clone(),
            });
            continue;
        }
        let shown = format!(
            "use_backend {} {} {}",
            rule.backend,
            if rule.unless { "unless" } else { "if" },
            rule.condition.join(" ")
        );
        let names = if rule.unless {
            Err("`unless`".to_string())
        } else {
            condition_names(&rule.condition, p)
        };
        match names {
            Ok(names) => {
                for (sni, note) in names {
                    if let Some(n) = note {
                        r.note(H, rule.line, n);
                    }
                    if out.routes.iter().any(|x| x.sni == sni) {
                        r.warn(
                            H,
                            rule.line,
                            format!(
                                "{sni:?} is routed by an earlier rule: this one is never reached"
                            ),
                        );
                        continue;
                    }
                    let bare = sni.trim_start_matches("*.");
                    if values::is_placeholder(bare) {
                        r.warn(
                            H,
                            rule.line,
                            format!("{sni:?} looks like a placeholder: check the name"),
                        );
                    }
                    out.routes.push(SniRoute {
                        line: rule.line,
                        sni,
                        backend: rule.backend.clone(),
                    });
                }
            }
            Err(why) => r.warn_hint(
                H,
                rule.line,
                format!("{shown}: {why} cannot be converted, left out"),
                "ringlb routes by TLS server name (req.ssl_sni) only",
            ),
        }
    }
    out
}

/// The names a condition matches, each with a note when ringlb matches a little less.
fn condition_names(words: &[String], p: &Proxy) -> Result<Vec<(String, Option<String>)>, String> {
    let mut names = Vec::new();
    // `a or b`, `a || b`: each alternative must be one plain SNI match.
    let mut alternatives: Vec<Vec<&[String]>> = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "or" || w == "||" {
            alternatives.push(Vec::new());
            i += 1;
        } else if w == "{" {
            let end = words[i..]
                .iter()
                .position(|x| x == "}")
                .map(|e| i + e)
                .ok_or("an unclosed `{`")?;
            if let Some(a) = alternatives.last_mut() {
                a.push(&words[i + 1..end]);
            }
            i = end + 1;
        } else {
            if let Some(a) = alternatives.last_mut() {
                a.push(&words[i..=i]);
            }
            i += 1;
        }
    }
    for terms in alternatives {
        let [term] = terms.as_slice() else {
            return Err("a condition with `and`".into());
        };
        match term {
            [name] if !name.starts_with('!') && !name.starts_with('{') => {
                let lines: Vec<&Vec<String>> = p
                    .acls
                    .iter()
                    .filter(|(_, n, _)| n == name)
                    .map(|(_, _, c)| c)
                    .collect();
                if lines.is_empty() {
                    return Err(format!("acl {name:?} (not defined here)"));
                }
                for criterion in lines {
                    names.extend(sni_match(criterion).map_err(|e| format!("acl {name:?}: {e}"))?);
                }
            }
            inline => names.extend(sni_match(inline)?),
        }
    }
    Ok(names)
}

/// `req_ssl_sni [-i] [-m str|end|dom] NAME...` as route names.
fn sni_match(words: &[String]) -> Result<Vec<(String, Option<String>)>, String> {
    let fetch = words.first().map_or("", String::as_str);
    if fetch != "req_ssl_sni" && fetch != "req.ssl_sni" {
        return Err(format!("`{fetch}`"));
    }
    let mut method = "str";
    let mut i = 1;
    while let Some(flag) = words.get(i).filter(|w| w.starts_with('-')) {
        match flag.as_str() {
            "-i" => {}
            "--" => {
                i += 1;
                break;
            }
            "-m" => {
                method = words.get(i + 1).map_or("", String::as_str);
                i += 1;
            }
            other => return Err(format!("the flag `{other}`")),
        }
        i += 1;
    }
    let values = &words[i.min(words.len())..];
    if values.is_empty() {
        return Err("a match without names".into());
    }
    let mut out = Vec::new();
    for v in values {
        let v = v.to_ascii_lowercase();
        // Only a suffix (`-m end`) may start with a dot.
        let bare = match v.strip_prefix('.') {
            Some(rest) if method == "end" => rest,
            _ => v.as_str(),
        };
        if !is_sni(bare) {
            return Err(format!("{v:?} (not a host name)"));
        }
        match method {
            "str" => out.push((v.clone(), None)),
            "dom" => {
                out.push((bare.to_string(), None));
                out.push((format!("*.{bare}"), None));
            }
            "end" if v.starts_with('.') => out.push((format!("*{v}"), None)),
            "end" => {
                out.push((bare.to_string(), None));
                out.push((
                    format!("*.{bare}"),
                    Some(format!(
                        "-m end {bare}: routed as {bare} and *.{bare}; names such as x{bare} no longer match"
                    )),
                ));
            }
            other => return Err(format!("`-m {other}`")),
        }
    }
    Ok(out)
}

/// A name ringlb's `routes` take: labels of letters, digits, `-`, `_`.
fn is_sni(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::haproxy;
    use crate::import::proxy::interpret;

    fn run(cfg: &str) -> (Rules, Vec<String>) {
        let mut r = Report::default();
        let model = interpret(&haproxy::parse(cfg.as_bytes()).unwrap(), &mut r);
        let rules = rules(&model.proxies[0], &mut r);
        let found = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        (rules, found)
    }

    fn snis(rules: &Rules) -> Vec<(String, String)> {
        rules
            .routes
            .iter()
            .map(|r| (r.sni.clone(), r.backend.clone()))
            .collect()
    }

    #[test]
    fn named_and_inline_sni_conditions() {
        let (rules, found) = run(
            "frontend f\n  acl a req_ssl_sni -i App1.example.org\n  acl a req_ssl_sni -i app2.example.org\n  \
             acl w req.ssl_sni -m end .example.net\n  use_backend one if a\n  \
             use_backend two if { req.ssl_sni -i \"codeberg.org\" } || w\n  \
             use_backend three if { req.ssl_sni -m dom example.com }\n  use_backend four\n  use_backend five if a\n",
        );
        let want: Vec<(String, String)> = [
            ("app1.example.org", "one"),
            ("app2.example.org", "one"),
            ("codeberg.org", "two"),
            ("*.example.net", "two"),
            ("example.com", "three"),
            ("*.example.com", "three"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(snis(&rules), want);
        assert_eq!(rules.fallback.map(|f| f.value), Some("four".into()));
        assert_eq!(
            found,
            ["9: use_backend five: never reached after the unconditional rule on line 8"]
        );
    }

    #[test]
    fn what_cannot_be_routed() {
        let (rules, found) = run(
            "frontend f\n  acl want_app1 path_dir app1\n  acl up nbsrv(app1) ge 1\n  \
             use_backend app1 if want_app1 up\n  use_backend app2 if { hdr(host) -i x.org }\n  \
             use_backend app3 unless { req.ssl_sni x.org }\n  use_backend app4 if { req.ssl_sni -m beg x }\n  \
             use_backend app5 if nope\n  use_backend vless if { req_ssl_sni -i zv.xx.yy }\n  \
             use_backend e if { req.ssl_sni -m end example.org }\n",
        );
        assert_eq!(
            found,
            [
                "4: use_backend app1 if want_app1 up: a condition with `and` cannot be converted, left out",
                "5: use_backend app2 if { hdr(host) -i x.org }: `hdr(host)` cannot be converted, left out",
                "6: use_backend app3 unless { req.ssl_sni x.org }: `unless` cannot be converted, left out",
                "7: use_backend app4 if { req.ssl_sni -m beg x }: `-m beg` cannot be converted, left out",
                "8: use_backend app5 if nope: acl \"nope\" (not defined here) cannot be converted, left out",
                "9: \"zv.xx.yy\" looks like a placeholder: check the name",
                "10: -m end example.org: routed as example.org and *.example.org; names such as xexample.org no longer match",
            ]
        );
        assert_eq!(rules.routes.len(), 3);
    }
}
