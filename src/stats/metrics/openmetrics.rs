//! The families in the OpenMetrics text format, written by prometheus-client through a
//! collector that holds one scrape's families.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::registry::Registry;

use super::{Family, Value};

pub fn encode(families: Vec<Family>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(families)));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Scrape(Vec<Family>);

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut m = enc.encode_descriptor(f.name, f.help, f.unit.as_ref(), f.kind)?;
            for (labels, value) in &f.samples {
                if let Value::Info = value {
                    m.encode_info(labels)?;
                } else if labels.is_empty() {
                    // Without a label set, so the sample reads `name value`, not `name{} value`.
                    sample(&mut m, value)?;
                } else {
                    sample(&mut m.encode_family(labels)?, value)?;
                }
            }
        }
        Ok(())
    }
}

fn sample(m: &mut MetricEncoder, value: &Value) -> Result<(), std::fmt::Error> {
    match value {
        Value::Counter(v) => m.encode_counter::<NoLabelSet, _, u64>(v, None),
        Value::FloatCounter(v) => m.encode_counter::<NoLabelSet, _, f64>(v, None),
        Value::Gauge(v) => m.encode_gauge(v),
        Value::Histogram(sum, count, buckets) => {
            m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)
        }
        Value::Info => Ok(()),
    }
}
