//! A strict parser of the OpenMetrics text format as `/metrics` serves it: every line is a
//! `# HELP`, `# TYPE` or `# UNIT` of the current family, a sample of that family (with the
//! suffixes its type allows), or the final `# EOF`. Anything else is an error, so the test
//! notices a malformed exposition rather than skipping over it.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub help: String,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include every pair of `labels`; panics
    /// when there is none or more than one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "want one sample {name}{labels:?}, found {found:?}"
        );
        found[0].value
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut lines = text.split('\n').enumerate().peekable();
    let mut saw_eof = false;
    while let Some((i, line)) = lines.next() {
        let at = |msg: String| format!("line {}: {msg}: {line:?}", i + 1);
        if saw_eof {
            // Only the newline after `# EOF` may follow it.
            if line.is_empty() && lines.peek().is_none() {
                break;
            }
            return Err(at("text after # EOF".into()));
        }
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let tail = parts.next();
            check_name(name).map_err(at)?;
            match keyword {
                "HELP" => {
                    if out.families.iter().any(|f| f.name == name) {
                        return Err(at("family described twice".into()));
                    }
                    out.families.push(Family {
                        name: name.to_string(),
                        kind: String::new(),
                        help: tail.unwrap_or("").to_string(),
                        unit: None,
                        samples: Vec::new(),
                    });
                }
                "TYPE" | "UNIT" => {
                    let family = out
                        .families
                        .last_mut()
                        .filter(|f| f.name == name)
                        .ok_or_else(|| at("metadata for a family not just described".into()))?;
                    let value = tail.ok_or_else(|| at("missing value".into()))?.to_string();
                    if keyword == "TYPE" {
                        let known = ["counter", "gauge", "histogram", "info", "summary"];
                        if !known.contains(&value.as_str()) {
                            return Err(at(format!("unknown type {value:?}")));
                        }
                        family.kind = value;
                    } else {
                        if !name.ends_with(&format!("_{value}")) {
                            return Err(at("family name does not end with its unit".into()));
                        }
                        family.unit = Some(value);
                    }
                }
                _ => return Err(at("unknown comment".into())),
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let family = out
            .families
            .last_mut()
            .ok_or_else(|| at("sample before any family".into()))?;
        let suffixes: &[&str] = match family.kind.as_str() {
            "counter" => &["_total", "_created"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            "summary" => &["", "_sum", "_count", "_created"],
            _ => return Err(at("sample of a family without a TYPE".into())),
        };
        let suffix = sample.name.strip_prefix(family.name.as_str());
        if !suffix.is_some_and(|s| suffixes.contains(&s)) {
            return Err(at(format!(
                "sample does not belong to {} family {}",
                family.kind, family.name
            )));
        }
        family.samples.push(sample);
    }
    if !saw_eof {
        return Err("no # EOF at the end".into());
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "sample without a value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (_, c) = chars.next().ok_or("unterminated label set")?;
            match c {
                '}' if key.is_empty() => break,
                '=' => {
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err("label value not quoted".into());
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next().ok_or("unterminated label value")?.1 {
                            '"' => break,
                            '\\' => match chars.next().ok_or("dangling escape")?.1 {
                                'n' => value.push('\n'),
                                '"' => value.push('"'),
                                '\\' => value.push('\\'),
                                c => return Err(format!("bad escape \\{c}")),
                            },
                            c => value.push(c),
                        }
                    }
                    check_name(&key)?;
                    if labels.insert(std::mem::take(&mut key), value).is_some() {
                        return Err("label given twice".into());
                    }
                    match chars.next().ok_or("unterminated label set")?.1 {
                        ',' => {}
                        '}' => break,
                        c => return Err(format!("unexpected {c:?} after a label")),
                    }
                }
                c => key.push(c),
            }
        }
        let consumed = chars.next().map_or(inner.len(), |(i, _)| i);
        rest = &inner[consumed..];
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_string())?;
    if value.contains(' ') {
        return Err("timestamps and exemplars are not expected".into());
    }
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[test]
fn parser_rejects_malformed_text() {
    let good = "# HELP a x\n# TYPE a counter\na_total{k=\"v\\\"\",j=\"\"} 3\n# EOF\n";
    let e = parse(good).unwrap();
    assert_eq!(e.value("a_total", &[("k", "v\"")]), 3.0);
    for bad in [
        "# HELP a x\n# TYPE a counter\na 3\n# EOF\n",
        "# HELP a x\n# TYPE a gauge\na 3\n",
        "# HELP a x\n# TYPE a gauge\na{k=v} 3\n# EOF\n",
        "# HELP a x\n# TYPE a gauge\na 3 4\n# EOF\n",
        "# HELP a x\n# TYPE a gauge\nb 3\n# EOF\n",
        "# HELP a x\n# TYPE a gauge\n# EOF\na 1\n",
        "# HELP a x\n# TYPE a gauge\n# UNIT a seconds\n# EOF\n",
        "a 1\n# EOF\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
