//! Tokio's poll-time and schedule-latency histograms as Prometheus-style
//! cumulative bucket counters.
//!
//! OpenTelemetry 0.33 has no observable histogram. The two alternatives:
//! - a synchronous histogram fed with per-collection deltas: it needs one
//!   `record()` per poll (millions) or invented values, and its `sum` would
//!   be made up (Tokio keeps no sum);
//! - an observable counter per bucket with the bucket's upper bound as an
//!   attribute: exact counts, Tokio's real boundaries, cheap (one atomic load
//!   per worker and bucket), and `histogram_quantile()` works on it directly.
//!
//! We take the second: `tokio.worker.poll.time.bucket` /
//! `tokio.worker.schedule.latency.bucket` are monotonic counters whose data
//! point with `le = B` counts the polls (tasks) of that worker that fell in a
//! bucket ending at or below `B` seconds (cumulative, like Prometheus'
//! `_bucket` series); the last bucket is `le = "+Inf"` and equals the total.
//! Tokio's buckets are half-open `[start, end)`, so `le` is exclusive by one
//! nanosecond, which no quantile estimate can see.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use tokio::runtime::RuntimeMetrics;

use super::{BUCKET_LE, Shared};

/// Registers the histograms that are enabled on the runtime.
pub(super) fn register(meter: &Meter, rt: &Arc<Shared>) {
    let mut poll = None;
    let mut sched = None;
    rt.with(|m| {
        if m.poll_time_histogram_enabled() {
            let n = m.poll_time_histogram_num_buckets();
            poll = Some(attrs(
                rt,
                (0..n).map(|b| m.poll_time_histogram_bucket_range(b).end),
                n,
            ));
        }
        if m.schedule_latency_histogram_enabled() {
            let n = m.schedule_latency_histogram_num_buckets();
            sched = Some(attrs(
                rt,
                (0..n).map(|b| m.schedule_latency_histogram_bucket_range(b).end),
                n,
            ));
        }
    });
    if let Some(attrs) = poll {
        histogram(
            meter,
            rt,
            "tokio.worker.poll.time.bucket",
            "{poll}",
            "Polls by the worker that took at most `le` seconds (cumulative buckets of Tokio's poll-time histogram).",
            attrs,
            |m, w, b| m.poll_time_histogram_bucket_count(w, b),
        );
    }
    if let Some(attrs) = sched {
        histogram(
            meter,
            rt,
            "tokio.worker.schedule.latency.bucket",
            "{task}",
            "Tasks polled by the worker at most `le` seconds after being scheduled (cumulative buckets of Tokio's schedule-latency histogram).",
            attrs,
            |m, w, b| m.schedule_latency_histogram_bucket_count(w, b),
        );
    }
}

/// `le` label value of a bucket ending at `end` (Tokio's last bucket ends at `u64::MAX` ns).
pub(crate) fn le_label(end: Duration, last: bool) -> String {
    if last || end.as_nanos() >= u128::from(u64::MAX) {
        "+Inf".to_string()
    } else {
        format!("{}", end.as_secs_f64())
    }
}

/// Per worker, per bucket: `[runtime, worker, le]`.
fn attrs(rt: &Shared, ends: impl Iterator<Item = Duration>, n: usize) -> Vec<Vec<[KeyValue; 3]>> {
    let les: Vec<String> = ends
        .enumerate()
        .map(|(b, end)| le_label(end, b + 1 == n))
        .collect();
    rt.worker_attrs()
        .iter()
        .map(|[name, worker]| {
            les.iter()
                .map(|le| {
                    [
                        name.clone(),
                        worker.clone(),
                        KeyValue::new(BUCKET_LE, le.clone()),
                    ]
                })
                .collect()
        })
        .collect()
}

fn histogram(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    attrs: Vec<Vec<[KeyValue; 3]>>,
    count: fn(&RuntimeMetrics, usize, usize) -> u64,
) {
    let r = rt.clone();
    meter
        .u64_observable_counter(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| {
            r.with(|m| {
                for (w, buckets) in attrs.iter().enumerate() {
                    let mut cumulative = 0u64;
                    for (b, a) in buckets.iter().enumerate() {
                        cumulative = cumulative.saturating_add(count(m, w, b));
                        o.observe(cumulative, a);
                    }
                }
            })
        })
        .build();
}
