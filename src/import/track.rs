//! keepalived's tracking and notify pieces as ringlb's: `vrrp_script` and `track_file`
//! definitions, the `track_script` / `track_interface` / `track_file` blocks of an
//! instance with their weights, and notify commands.

use super::keepalived::Node;
use super::output::{Script, TrackFile, Tracked};
use super::report::{Report, Source};
use super::values::{format_duration, keepalived_seconds};
use super::vrrp::conditional;

const K: Source = Source::Keepalived;
pub const MAX_SCRIPT_WEIGHT: i32 = 253;
pub const MAX_FILE_WEIGHT: i32 = 254;

pub fn script(n: &Node, defined: &[Script], r: &mut Report) -> Option<Script> {
    let name = n.word(1).to_string();
    if name.is_empty() || defined.iter().any(|s| s.name == name) {
        r.warn(
            K,
            n.line,
            format!("vrrp_script {name:?}: empty or defined twice, left out"),
        );
        return None;
    }
    let mut s = Script {
        name,
        ..Script::default()
    };
    for c in n.children() {
        match c.key() {
            key if key.starts_with('@') => conditional(c, r),
            "script" => {
                s.script = c.words[1..]
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            "interval" | "timeout" => {
                match keepalived_seconds(c.word(1)).filter(|d| !d.is_zero()) {
                    Some(d) if c.key() == "interval" => s.interval = Some(format_duration(d)),
                    Some(d) => s.timeout = Some(format_duration(d)),
                    None => r.warn(
                        K,
                        c.line,
                        format!("{} {:?}: not a duration, left out", c.key(), c.word(1)),
                    ),
                }
            }
            "weight" => s.weight = weight(c, MAX_SCRIPT_WEIGHT, r),
            "rise" | "fall" => match c.word(1).parse::<u32>().ok().filter(|&v| v > 0) {
                Some(v) if c.key() == "rise" => s.rise = Some(v),
                Some(v) => s.fall = Some(v),
                None => r.warn(
                    K,
                    c.line,
                    format!("{} {:?}: not a count, left out", c.key(), c.word(1)),
                ),
            },
            "user" => r.note(K, c.line, "user: ringlb runs scripts as its own user"),
            "init_fail" => r.note(
                K,
                c.line,
                "init_fail: ringlb counts a script as failing until it has passed `rise` times",
            ),
            key => r.warn(
                K,
                c.line,
                format!("vrrp_script `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    if s.script.trim().is_empty() {
        r.warn(
            K,
            n.line,
            format!("vrrp_script {}: no script, left out", s.name),
        );
        return None;
    }
    Some(s)
}

pub fn file(n: &Node, defined: &[TrackFile], r: &mut Report) -> Option<TrackFile> {
    let name = n.word(1).to_string();
    if name.is_empty() || defined.iter().any(|f| f.name == name) {
        r.warn(
            K,
            n.line,
            format!("track_file {name:?}: empty or defined twice, left out"),
        );
        return None;
    }
    let mut f = TrackFile {
        name,
        ..TrackFile::default()
    };
    for c in n.children() {
        match c.key() {
            "file" => f.path = c.word(1).to_string(),
            "weight" => f.weight = weight(c, MAX_FILE_WEIGHT, r),
            "init_file" => r.note(K, c.line, "init_file: ringlb does not create the file"),
            key => r.warn(
                K,
                c.line,
                format!("track_file `{key}`: no equivalent in ringlb, left out"),
            ),
        }
    }
    if f.path.trim().is_empty() {
        r.warn(
            K,
            n.line,
            format!("track_file {}: no file, left out", f.name),
        );
        return None;
    }
    Some(f)
}

/// `weight N [reverse]` of a definition or a tracked item (the number is word `at`).
fn weight(c: &Node, max: i32, r: &mut Report) -> Option<i32> {
    weight_at(c, 1, max, r)
}

fn weight_at(c: &Node, at: usize, max: i32, r: &mut Report) -> Option<i32> {
    match c.word(at + 1) {
        "" | "noreverse" => {}
        "reverse" => {
            r.warn(
                K,
                c.line,
                "weight ... reverse: not available in ringlb, the weight is left out",
            );
            return None;
        }
        other => r.warn(K, c.line, format!("`{other}` after the weight: left out")),
    }
    match c.word(at).parse::<i32>() {
        Ok(w) if (-max..=max).contains(&w) => Some(w),
        _ => {
            r.warn(
                K,
                c.line,
                format!(
                    "weight {:?}: not from -{max} to {max}, left out",
                    c.word(at)
                ),
            );
            None
        }
    }
}

pub fn tracked(
    block: &Node,
    known: impl Fn(&str) -> bool,
    max: i32,
    what: &str,
    r: &mut Report,
) -> Vec<Tracked> {
    let mut out: Vec<Tracked> = Vec::new();
    for c in block.children() {
        let name = c.key();
        if !known(name) {
            r.warn(
                K,
                c.line,
                format!(
                    "{} {name:?}: no usable {what} of that name, left out",
                    block.key()
                ),
            );
            continue;
        }
        if out.iter().any(|t| t.name == name) {
            r.warn(
                K,
                c.line,
                format!("{name} is tracked twice: the second is left out"),
            );
            continue;
        }
        let weight = match c.word(1) {
            "weight" => weight_at(c, 2, max, r),
            "" => None,
            other => {
                r.warn(K, c.line, format!("`{other}`: left out"));
                None
            }
        };
        out.push(Tracked {
            name: name.to_string(),
            weight,
        });
    }
    out
}

/// A notify command: a quoted command line, or a path followed by keepalived's user and
/// group (which ringlb has no use for).
pub fn command(c: &Node, r: &mut Report) -> Option<String> {
    let first = c.words.get(1)?;
    if first.text.trim().is_empty() {
        r.warn(
            K,
            c.line,
            format!("{}: an empty command, left out", c.key()),
        );
        return None;
    }
    if c.words.len() > 2 {
        r.note(K, c.line, format!("{}: the user and group after the command are left out; ringlb runs it as its own user", c.key()));
    }
    Some(first.text.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::keepalived;

    #[test]
    fn scripts_tracking_and_commands() {
        let tree = keepalived::parse(
            b"vrrp_script chk {\n  script /usr/bin/check --fast\n  interval 0.5\n  timeout 3\n  weight -20\n  \
              rise 2\n  fall 0\n  user nobody\n}\ntrack_script {\n  chk weight 10\n  chk\n  nope\n}\n\
              notify_master \"/bin/x MASTER\"\nnotify_backup /bin/y root\n",
        )
        .unwrap();
        let mut r = Report::default();
        let s = script(&tree[0], &[], &mut r).unwrap();
        assert_eq!(s.script, "/usr/bin/check --fast");
        assert_eq!(
            (s.interval.as_deref(), s.timeout.as_deref()),
            (Some("500ms"), Some("3s"))
        );
        assert_eq!((s.weight, s.rise, s.fall), (Some(-20), Some(2), None));
        assert!(script(&tree[0], std::slice::from_ref(&s), &mut r).is_none());
        let t = tracked(
            &tree[1],
            |n| n == "chk",
            MAX_SCRIPT_WEIGHT,
            "vrrp_script",
            &mut r,
        );
        assert_eq!(
            t,
            [Tracked {
                name: "chk".into(),
                weight: Some(10)
            }]
        );
        assert_eq!(command(&tree[2], &mut r).as_deref(), Some("/bin/x MASTER"));
        assert_eq!(command(&tree[3], &mut r).as_deref(), Some("/bin/y"));
        let found: Vec<String> = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        assert_eq!(
            found,
            [
                "1: vrrp_script \"chk\": empty or defined twice, left out",
                "7: fall \"0\": not a count, left out",
                "8: user: ringlb runs scripts as its own user",
                "12: chk is tracked twice: the second is left out",
                "13: track_script \"nope\": no usable vrrp_script of that name, left out",
                "16: notify_backup: the user and group after the command are left out; ringlb runs it as its own user",
            ]
        );
    }
}
