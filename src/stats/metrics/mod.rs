//! `/metrics`: a `Report` as metric families that Prometheus scrapes. The families are
//! built per scrape from the report (the numbers are summed from per-worker cells at read
//! time, so there is no long-lived metric object to update), then written in the format the
//! scraper asks for: OpenMetrics through the prometheus-client crate (what Prometheus
//! prefers, and the default), or the classic text format 0.0.4 (what `promtool check
//! metrics` and older tools read). Names are `ringlb_*` and the standard `process_*`, with
//! `_total`, `_bytes` and `_seconds` per Prometheus conventions.

mod announce;
mod catalogue;
mod openmetrics;
mod servers;
mod text;
mod vrrp;

use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::report::Report;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition format of one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// The format an `Accept` header prefers: text only when it ranks `text/plain` above
    /// OpenMetrics (Prometheus ranks OpenMetrics first; `curl -H 'Accept: text/plain'`
    /// asks for text). Without a preference, OpenMetrics.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let (mut openmetrics, mut text) = (None::<f32>, None::<f32>);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let best = match media.as_str() {
                "application/openmetrics-text" => &mut openmetrics,
                "text/plain" => &mut text,
                _ => continue,
            };
            *best = Some(best.map_or(q, |b| b.max(q)));
        }
        match (openmetrics, text) {
            (None, Some(t)) if t > 0.0 => Format::Text,
            (Some(o), Some(t)) if t > o => Format::Text,
            _ => Format::OpenMetrics,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::Text => TEXT,
        }
    }
}

pub fn encode(report: &Report, format: Format) -> Result<String, std::fmt::Error> {
    let families = catalogue::families(report);
    match format {
        Format::OpenMetrics => openmetrics::encode(families),
        Format::Text => Ok(text::encode(&families)),
    }
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: its samples, one per label set.
#[derive(Debug)]
struct Family {
    /// Without the unit and `_total` suffixes, which the encoders add.
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

impl Family {
    fn new(
        name: &'static str,
        help: &'static str,
        unit: Option<Unit>,
        kind: MetricType,
        samples: Vec<(Labels, Value)>,
    ) -> Family {
        Family {
            name,
            help,
            unit,
            kind,
            samples,
        }
    }

    /// A family of one sample without labels.
    fn single(
        name: &'static str,
        help: &'static str,
        unit: Option<Unit>,
        kind: MetricType,
        value: Value,
    ) -> Family {
        Family::new(name, help, unit, kind, vec![(Labels::new(), value)])
    }
}

#[derive(Debug)]
enum Value {
    Counter(u64),
    /// A counter of a continuous quantity (seconds).
    FloatCounter(f64),
    Gauge(f64),
    /// Sum (seconds), count, and per-bucket (not cumulative) counts ending with +Inf.
    Histogram(f64, u64, Vec<(f64, u64)>),
    /// An info metric: the labels are the information, the value is always 1.
    Info,
}

#[cfg(test)]
mod tests;
