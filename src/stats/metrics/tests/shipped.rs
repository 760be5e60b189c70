//! The alerting rules and the Grafana dashboard shipped in `conf/` name only metrics that
//! `/metrics` exports: every metric selected by a PromQL expression of either is a sample
//! name of a full exposition (every family, VRRP and process ones included). promtool
//! checks the rules' syntax (tests/metrics.rs); this checks what they refer to.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::{encode, report, Format};
use crate::stats::process;

const RULES: &str = include_str!("../../../../conf/prometheus-rules.yml");
const DASHBOARD: &str = include_str!("../../../../conf/grafana-dashboard.json");

/// PromQL words that are never metric names.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const OPERATORS: [&str; 6] = ["and", "or", "unless", "bool", "offset", "atan2"];
/// Words followed by a parenthesised list of labels.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Every sample name of an exposition with every family present.
fn exported() -> BTreeSet<String> {
    let mut r = report();
    r.process.resources = process::read();
    let text = encode(&r, Format::Text).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The metric names an expression selects: identifiers outside strings, label matchers,
/// ranges and label lists that are neither functions, aggregations nor operators.
/// Grafana's `$variables` are skipped.
fn metric_names(expr: &str) -> Vec<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut labels_next = false;
    let skip_past = |from: usize, close: char| {
        let mut j = from + 1;
        let mut quoted = None;
        while j < c.len() {
            match (quoted, c[j]) {
                (Some(_), '\\') => j += 1,
                (Some(q), ch) if ch == q => quoted = None,
                (None, '"' | '\'' | '`') => quoted = Some(c[j]),
                (None, ch) if ch == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    while i < c.len() {
        match c[i] {
            q @ ('"' | '\'' | '`') => i = skip_past(i, q),
            '{' => i = skip_past(i, '}'),
            '[' => i = skip_past(i, ']'),
            '(' if labels_next => {
                i = skip_past(i, ')');
                labels_next = false;
            }
            '$' => {
                i += 1;
                while i < c.len() && (ident(c[i]) || c[i] == '{' || c[i] == '}') {
                    i += 1;
                }
            }
            ch if ch.is_ascii_digit() || ch == '.' => {
                while i < c.len() && (ident(c[i]) || c[i] == '.') {
                    i += 1;
                }
            }
            ch if ident(ch) => {
                let start = i;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let next = c[i..].iter().find(|ch| !ch.is_whitespace());
                if LABEL_LISTS.contains(&word.as_str()) {
                    labels_next = true;
                } else if !(AGGREGATIONS.contains(&word.as_str())
                    || OPERATORS.contains(&word.as_str())
                    || next == Some(&'('))
                {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The `expr:` values of the rules file (single lines, or block scalars below them).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let body: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(body.join(" "));
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// Every PromQL text of the dashboard: target `expr`s, and the metric of each
/// `label_values(metric, label)` variable query.
fn dashboard_exprs(v: &Json, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        Json::Object(map) => {
            for (k, v) in map {
                dashboard_exprs(v, Some(k), out);
            }
        }
        Json::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, key, out)),
        Json::String(s) if key == Some("expr") => out.push(s.clone()),
        Json::String(s) if matches!(key, Some("query" | "definition")) => {
            if let Some(args) = s.strip_prefix("label_values(") {
                out.push(args.split(',').next().unwrap_or("").trim().to_string());
            }
        }
        _ => {}
    }
}

fn assert_all_exported(what: &str, exprs: &[String]) {
    let exported = exported();
    let mut seen = 0;
    for e in exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "{what}: no metric in {e}");
        for n in names {
            assert!(
                exported.contains(&n),
                "{what}: {n} is not exported (in {e})"
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "{what}: only {seen} metrics found");
}

#[test]
fn promql_names_are_found_past_functions_matchers_and_label_lists() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le, backend) (rate(a_bucket{x="}", y=~"$i"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        metric_names("count by (vrid) (s{state=\"MASTER\"} == 1) > 1 and on (instance, job) b"),
        ["s", "b"]
    );
    assert_eq!(
        metric_names("x / y > 0.9 unless z offset 5m"),
        ["x", "y", "z"]
    );
    assert_eq!(
        metric_names("sum without(job)(rate(c_total[1m]))"),
        ["c_total"]
    );
}

#[test]
fn rules_name_only_exported_metrics() {
    let exprs = rule_exprs(RULES);
    assert!(exprs.len() >= 7, "{exprs:?}");
    assert_all_exported("conf/prometheus-rules.yml", &exprs);
}

#[test]
fn dashboard_parses_and_names_only_exported_metrics() {
    let d: Json = serde_json::from_str(DASHBOARD).expect("conf/grafana-dashboard.json parses");
    assert!(d["panels"].as_array().is_some_and(|p| p.len() >= 9));
    let mut exprs = Vec::new();
    dashboard_exprs(&d, None, &mut exprs);
    assert_all_exported("conf/grafana-dashboard.json", &exprs);
}
