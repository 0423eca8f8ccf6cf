//! Flattens what the SDK's in-memory exporter captured into simple points.
#![allow(dead_code)]

use std::collections::BTreeMap;

use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{
    InMemoryMetricExporter, PeriodicReader, SdkMeterProvider, Temporality,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    UpDownCounter,
    Histogram,
}

#[derive(Clone, Debug)]
pub struct Point {
    pub name: String,
    pub unit: String,
    pub kind: Kind,
    pub attrs: BTreeMap<String, String>,
    /// Gauge/sum value, or histogram count.
    pub value: f64,
    /// Histogram only: bounds, bucket counts, sum.
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
    pub sum: f64,
}

impl Point {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.get(k).map(String::as_str)
    }
}

/// A provider whose only reader is a periodic reader (1 h interval) over an
/// in-memory exporter: `force_flush` collects once.
pub fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporterBuilder::new()
        .with_temporality(Temporality::Cumulative)
        .build();
    let reader = PeriodicReader::builder(exporter.clone())
        .with_interval(std::time::Duration::from_secs(3600))
        .build();
    (
        SdkMeterProvider::builder().with_reader(reader).build(),
        exporter,
    )
}

/// Flushes and returns the points of the latest export.
pub fn collect(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Vec<Point> {
    exporter.reset();
    provider.force_flush().expect("flush");
    let exported = exporter.get_finished_metrics().expect("metrics");
    let last = exported.last().expect("one export");
    flatten(last)
}

fn attrs<'a>(it: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> BTreeMap<String, String> {
    it.map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

pub fn flatten(rm: &ResourceMetrics) -> Vec<Point> {
    let mut out = Vec::new();
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            let base = |kind, attrs, value| Point {
                name: m.name().to_string(),
                unit: m.unit().to_string(),
                kind,
                attrs,
                value,
                bounds: vec![],
                buckets: vec![],
                sum: 0.0,
            };
            macro_rules! data {
                ($d:expr, $conv:expr) => {
                    match $d {
                        MetricData::Gauge(g) => {
                            for p in g.data_points() {
                                out.push(base(
                                    Kind::Gauge,
                                    attrs(p.attributes()),
                                    $conv(p.value()),
                                ));
                            }
                        }
                        MetricData::Sum(s) => {
                            assert_eq!(s.temporality(), Temporality::Cumulative, "{}", m.name());
                            let kind = if s.is_monotonic() {
                                Kind::Counter
                            } else {
                                Kind::UpDownCounter
                            };
                            for p in s.data_points() {
                                out.push(base(kind, attrs(p.attributes()), $conv(p.value())));
                            }
                        }
                        MetricData::Histogram(h) => {
                            for p in h.data_points() {
                                let mut pt =
                                    base(Kind::Histogram, attrs(p.attributes()), p.count() as f64);
                                pt.bounds = p.bounds().collect();
                                pt.buckets = p.bucket_counts().collect();
                                pt.sum = $conv(p.sum());
                                out.push(pt);
                            }
                        }
                        MetricData::ExponentialHistogram(_) => {
                            panic!("unexpected exponential histogram {}", m.name())
                        }
                    }
                };
            }
            match m.data() {
                AggregatedMetrics::F64(d) => data!(d, |v: f64| v),
                AggregatedMetrics::U64(d) => data!(d, |v: u64| v as f64),
                AggregatedMetrics::I64(d) => data!(d, |v: i64| v as f64),
            }
        }
    }
    out
}

/// Points of one instrument (optionally of one runtime).
pub fn points<'a>(all: &'a [Point], name: &str, runtime: Option<&str>) -> Vec<&'a Point> {
    all.iter()
        .filter(|p| {
            p.name == name && runtime.is_none_or(|r| p.attr("tokio.runtime.name") == Some(r))
        })
        .collect()
}
