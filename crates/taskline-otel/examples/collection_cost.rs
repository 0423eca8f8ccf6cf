//! Cost of one collection of every runtime instrument.
//!
//! `cargo run --release -p taskline-otel --example collection_cost [workers] [iterations]`
//!
//! Collections go through the real SDK path (a `PeriodicReader` asked to
//! `force_flush`, exporting to a no-op exporter). The same loop on a provider
//! without instruments is the baseline (reader thread handoff); the
//! difference is what taskline's callbacks and the SDK's aggregation of their
//! data points cost per collection.

use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use taskline_otel::RuntimeMetricsExporter;

struct Discard;

impl PushMetricExporter for Discard {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        std::hint::black_box(metrics);
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn provider() -> SdkMeterProvider {
    let reader = PeriodicReader::builder(Discard)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder().with_reader(reader).build()
}

fn per_flush(p: &SdkMeterProvider, iterations: u32) -> Duration {
    for _ in 0..iterations / 10 + 1 {
        p.force_flush().unwrap();
    }
    let t = Instant::now();
    for _ in 0..iterations {
        p.force_flush().unwrap();
    }
    t.elapsed() / iterations
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let iterations: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);

    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers).enable_all();
    #[cfg(tokio_unstable)]
    b.enable_metrics_poll_time_histogram()
        .enable_metrics_schedule_latency_histogram();
    let rt = b.build().unwrap();
    rt.block_on(async {
        for _ in 0..1000 {
            tokio::spawn(async {}).await.unwrap();
        }
    });

    let empty = provider();
    let baseline = per_flush(&empty, iterations);

    let full = provider();
    let _reg =
        RuntimeMetricsExporter::register(&full.meter("taskline"), rt.handle().clone(), "main");
    let with = per_flush(&full, iterations);

    println!(
        "workers={workers} tokio_unstable={} iterations={iterations}\n\
         flush without instruments: {:>8} ns\n\
         flush with all runtime instruments: {:>8} ns\n\
         => one collection of all runtime instruments: {:>8} ns",
        cfg!(tokio_unstable),
        baseline.as_nanos(),
        with.as_nanos(),
        with.saturating_sub(baseline).as_nanos()
    );
}
