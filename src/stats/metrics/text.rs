//! The families in the classic Prometheus text format (version 0.0.4), for scrapers that
//! ask for it: a counter's family is named with its `_total`, an info metric becomes a
//! `_info` gauge of 1, histograms have cumulative `_bucket` lines, and there is no `# UNIT`
//! and no `# EOF`.

use std::fmt::Write as _;

use prometheus_client::metrics::MetricType;

use super::{Family, Value};

pub fn encode(families: &[Family]) -> String {
    let mut o = String::with_capacity(16 * 1024);
    for f in families {
        let base = match &f.unit {
            Some(unit) => format!("{}_{}", f.name, unit.as_str()),
            None => f.name.to_string(),
        };
        let (name, kind) = match f.kind {
            MetricType::Counter => (format!("{base}_total"), "counter"),
            MetricType::Info => (format!("{base}_info"), "gauge"),
            MetricType::Gauge => (base, "gauge"),
            MetricType::Histogram => (base, "histogram"),
            MetricType::Unknown => (base, "untyped"),
        };
        let _ = writeln!(o, "# HELP {name} {}", escape(f.help, false));
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, value) in &f.samples {
            let mut line = |suffix: &str, le: Option<f64>, v: &str| {
                o.push_str(&name);
                o.push_str(suffix);
                let le = le.map(|b| ("le", number(b)));
                let all: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .chain(le.as_ref().map(|(k, v)| (*k, v.as_str())))
                    .collect();
                if !all.is_empty() {
                    o.push('{');
                    for (i, (k, v)) in all.iter().enumerate() {
                        let comma = if i == 0 { "" } else { "," };
                        let _ = write!(o, "{comma}{k}=\"{}\"", escape(v, true));
                    }
                    o.push('}');
                }
                let _ = writeln!(o, " {v}");
            };
            match value {
                Value::Counter(v) => line("", None, &v.to_string()),
                Value::FloatCounter(v) | Value::Gauge(v) => line("", None, &number(*v)),
                Value::Info => line("", None, "1"),
                Value::Histogram(sum, count, buckets) => {
                    let mut below = 0u64;
                    for &(le, n) in buckets {
                        below = below.saturating_add(n);
                        line("_bucket", Some(le), &below.to_string());
                    }
                    line("_sum", None, &number(*sum));
                    line("_count", None, &count.to_string());
                }
            }
        }
    }
    o
}

/// A sample value or bucket bound as the format spells it (`+Inf`, `NaN`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        v.to_string()
    }
}

/// Backslash and newline escaped, and in a label value the double quote too.
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}
