//! Cost of the recorder's consumer side per event, on a synthetic
//! service-like event stream held in memory (no runtime, no threads racing
//! the measurement).
//!
//! The stream models an HTTP service on 2 workers: 64 long-lived connection
//! tasks from one spawn site, an accept loop from a second one and short-lived
//! per-request helper tasks from a third. Per request: a wake from the I/O
//! driver, a poll that wakes itself (`yield_now`/budget), a second poll; the
//! workers park and unpark now and then. Timestamps advance by microseconds.
//!
//! Each stage is fed the same stream in batches of 4096 events (as the
//! consumer thread delivers them) after a warm-up pass (so maps, histograms
//! and the flight recorder's ring are in their steady state), and the stages
//! are interleaved round-robin over the repetitions so machine noise hits
//! them alike. Prints ns/event as median and min..max.
//!
//! ```text
//! cargo run --release -p taskline-bench --example consumer_cost
//! ```
//! `--task-per-pixel` replaces that stream with the task-per-pixel
//! Mandelbrot's (one short task per pixel, far more live tasks than are
//! tracked), the stream of the overhead benchmark's costliest workload.
//!
//! Options: `--reps N` (default 11), `--events N` (default 400000),
//! `--stage NAME` (only the stages whose name contains NAME, e.g. to profile one).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::{
    PeriodicReader, SdkMeterProvider, Temporality, exporter::PushMetricExporter,
};
use taskline_bench::Rng;
use taskline_core::Aggregator;
use taskline_core::RecorderConfig;
use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{Event, EventKind, NO_VALUE, TaskKind, WakeOp, flags};
use taskline_otel::task::{TaskMetricsConfig, TaskMetricsSink};
use taskline_trace::flight::{FlightConfig, FlightRecorder};

const BATCH: usize = 4096;
const CONNECTIONS: u64 = 64;
const WORKERS: u16 = 2;

fn ev(kind: EventKind, ts: u64, task: u64, thread: u16) -> Event {
    let mut e = Event::new(kind, ts, task);
    e.thread = thread;
    e
}

fn poll_start(ts: u64, task: u64, w: u16) -> Event {
    let mut e = ev(EventKind::PollStart, ts, task, w);
    e.arg = NO_VALUE;
    e.aux = u32::from(w);
    e
}

fn poll_end(ts: u64, task: u64, w: u16) -> Event {
    let mut e = ev(EventKind::PollEnd, ts, task, w);
    e.aux = u32::from(w);
    e
}

fn spawn(ts: u64, task: u64, w: u16, site: u32) -> Event {
    let mut e = ev(EventKind::Spawn, ts, task, w);
    e.aux = site;
    e.flags = TaskKind::Task as u8;
    e
}

/// The synthetic stream, sorted by timestamp, starting at `t0`.
fn stream(registry: &Registry, n: usize) -> Vec<Event> {
    let conn_site = registry.intern_site("src/server.rs", 120, 13, TaskKind::Task);
    let accept_site = registry.intern_site("src/main.rs", 40, 5, TaskKind::Task);
    let helper_site = registry.intern_site("src/handler.rs", 77, 9, TaskKind::Task);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(n + 64);
    let t0 = 1_000_000_000u64;
    // Accept loop and connections, spawned up front.
    let accept = 1u64;
    out.push(spawn(t0, accept, 0, accept_site));
    for c in 0..CONNECTIONS {
        out.push(spawn(t0 + 10 + c, 2 + c, (c % 2) as u16, conn_site));
    }
    let mut next_task = 2 + CONNECTIONS;
    // Each worker generates its own timeline; merged by timestamp at the end.
    let mut per_worker: Vec<Vec<Event>> = vec![Vec::new(); WORKERS as usize];
    let per_worker_n = n / WORKERS as usize;
    for w in 0..WORKERS {
        let mut t = t0 + 1_000 + u64::from(w) * 700;
        let evs = &mut per_worker[w as usize];
        let mut requests = 0u64;
        while evs.len() < per_worker_n {
            requests += 1;
            // A connection owned (mostly) by this worker.
            let conn = 2 + (rng.range(0, CONNECTIONS / 2) * 2 + u64::from(w)) % CONNECTIONS;
            // Woken by the I/O driver (from outside any task).
            let mut wake = ev(EventKind::Wake, t, conn, w);
            wake.flags = WakeOp::WakeByRef as u8;
            evs.push(wake);
            t += rng.range(200, 2_000);
            evs.push(poll_start(t, conn, w));
            t += rng.range(2_000, 15_000);
            // Budget / yield_now: wakes itself inside the poll.
            let mut selfwake = ev(EventKind::Wake, t, conn, w);
            selfwake.arg = conn;
            selfwake.flags = WakeOp::WakeByRef as u8 | flags::SELF_WAKE;
            evs.push(selfwake);
            t += rng.range(50, 300);
            evs.push(poll_end(t, conn, w));
            t += rng.range(100, 1_500);
            evs.push(poll_start(t, conn, w));
            t += rng.range(1_000, 8_000);
            evs.push(poll_end(t, conn, w));
            t += rng.range(100, 1_000);
            if requests.is_multiple_of(16) {
                // A short-lived helper task: spawn, one poll that completes.
                let task = next_task + u64::from(w);
                next_task += 2;
                evs.push(spawn(t, task, w, helper_site));
                t += rng.range(500, 3_000);
                evs.push(poll_start(t, task, w));
                t += rng.range(1_000, 5_000);
                // Tokio reports the termination inside the last poll.
                evs.push(ev(EventKind::Terminate, t, task, w));
                t += 50;
                evs.push(poll_end(t, task, w));
                t += rng.range(100, 1_000);
            }
            if requests.is_multiple_of(8) {
                let mut park = ev(EventKind::Park, t, 0, w);
                park.aux = u32::from(w);
                evs.push(park);
                t += rng.range(5_000, 50_000);
                let mut unpark = ev(EventKind::Unpark, t, 0, w);
                unpark.aux = u32::from(w);
                evs.push(unpark);
                t += rng.range(200, 2_000);
            }
            if requests.is_multiple_of(64) {
                // The accept loop runs on worker 0 now and then.
                let w0 = 0;
                let mut wake = ev(EventKind::Wake, t, accept, w0);
                wake.flags = WakeOp::WakeByRef as u8;
                evs.push(wake);
                t += 500;
                evs.push(poll_start(t, accept, w0));
                t += 3_000;
                evs.push(poll_end(t, accept, w0));
                t += 500;
            }
        }
    }
    // The accept loop's events written "by" worker 1 would break per-thread
    // poll nesting; they are all on worker 0 above, whose timeline they share.
    for evs in per_worker {
        out.extend(evs);
    }
    out.sort_by_key(|e| e.ts_ns);
    out
}

/// The stream of the task-per-pixel Mandelbrot on 2 workers: a driver task
/// on worker 0 spawns one short task per pixel faster than the workers
/// finish them, so the live tasks pile up well past `max_tracked_tasks`
/// (65536 by default) and most tasks are untracked; each task is polled
/// once, terminates inside that poll, and the polls alternate between the
/// workers in spawn order (a worker's polls do not overlap).
fn pixel_stream(registry: &Registry, n: usize) -> Vec<Event> {
    let site = registry.intern_site("src/render.rs", 88, 17, TaskKind::Task);
    let tasks = (n / 4) as u64;
    let t0 = 1_000_000_000u64;
    let mut out = Vec::with_capacity(n + 8);
    for i in 0..tasks {
        let task = 100 + i;
        out.push(spawn(t0 + i * 150, task, 0, site));
        let w = 1 + (i % 2) as u16;
        let start = t0 + 20_000 + i * 300;
        out.push(poll_start(start, task, w));
        // Each worker starts a poll every 600 ns: one ends before the next.
        out.push(ev(EventKind::Terminate, start + 400, task, w));
        out.push(poll_end(start + 450, task, w));
    }
    out.sort_by_key(|e| e.ts_ns);
    out
}

/// Shift the stream forward by its own span, so a repeated feed continues time.
fn advance(events: &mut [Event], span: u64) {
    for e in events {
        e.ts_ns += span;
    }
}

/// Discards every export (the SDK still aggregates as with an OTLP exporter).
struct NullExporter;

impl PushMetricExporter for NullExporter {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn provider() -> SdkMeterProvider {
    let reader = PeriodicReader::builder(NullExporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder().with_reader(reader).build()
}

/// The OTel sink configurations measured.
#[derive(Clone, Copy)]
enum OtelCfg {
    /// `TaskMetricsConfig::default()`: no attributes.
    Default,
    /// A runtime name attribute and per-spawn-site series.
    Attrs,
}

fn otel_sink(provider: &SdkMeterProvider, cfg: OtelCfg) -> TaskMetricsSink {
    let config = match cfg {
        OtelCfg::Default => TaskMetricsConfig::default(),
        OtelCfg::Attrs => TaskMetricsConfig {
            attributes: vec![KeyValue::new("tokio.runtime.name", "main")],
            by_spawn_site: true,
            ..TaskMetricsConfig::default()
        },
    };
    TaskMetricsSink::new(&provider.meter("taskline"), config)
}

fn flight() -> FlightRecorder {
    let config = FlightConfig {
        dump_dir: std::env::temp_dir().join("taskline-consumer-cost"),
        ..FlightConfig::default()
    };
    FlightRecorder::new(config).expect("flight recorder").0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Aggregator,
    OtelDefault,
    OtelAttrs,
    Flight,
    All,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Aggregator,
        Stage::OtelDefault,
        Stage::OtelAttrs,
        Stage::Flight,
        Stage::All,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Aggregator => "aggregator",
            Stage::OtelDefault => "otel task sink (default config)",
            Stage::OtelAttrs => "otel task sink (runtime name + by site)",
            Stage::Flight => "flight recorder",
            Stage::All => "all (aggregator + otel attrs + flight)",
        }
    }
}

/// One measured run of a stage: build, warm up, then time one pass.
fn run(stage: Stage, base: &[Event], span: u64, registry: &Registry) -> f64 {
    let mut events = base.to_vec();
    let provider = provider();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let config = RecorderConfig::default();
    let mut warm_passes = 1;
    match stage {
        Stage::Aggregator => sinks.push(Box::new(Aggregator::new(&config))),
        Stage::OtelDefault => sinks.push(Box::new(otel_sink(&provider, OtelCfg::Default))),
        Stage::OtelAttrs => sinks.push(Box::new(otel_sink(&provider, OtelCfg::Attrs))),
        Stage::Flight | Stage::All => {
            if stage == Stage::All {
                sinks.push(Box::new(Aggregator::new(&config)));
                sinks.push(Box::new(otel_sink(&provider, OtelCfg::Attrs)));
            }
            sinks.push(Box::new(flight()));
            // Fill the flight recorder's ring (64 MiB = 2M events) so every
            // timed push also evicts, as in a long-running service.
            warm_passes = (2 * (64 << 20) / 32) / events.len() + 1;
        }
    }
    for _ in 0..warm_passes {
        feed(&mut sinks, &events, registry);
        advance(&mut events, span);
    }
    let start = Instant::now();
    feed(&mut sinks, &events, registry);
    let elapsed = start.elapsed();
    drop(sinks);
    let _ = provider.shutdown();
    elapsed.as_nanos() as f64 / events.len() as f64
}

fn feed(sinks: &mut [Box<dyn Sink>], events: &[Event], registry: &Registry) {
    for batch in events.chunks(BATCH) {
        for s in sinks.iter_mut() {
            s.on_events(batch, registry);
        }
    }
}

/// A fingerprint of the aggregator's snapshot of the stream, to check that an
/// optimisation did not change what is reported.
fn fingerprint(events: &[Event], registry: &Registry) -> (u64, String) {
    let mut a = Aggregator::new(&RecorderConfig::default());
    a.feed(events);
    let snap = a.snapshot(registry);
    let mut h = DefaultHasher::new();
    format!("{snap:?}").hash(&mut h);
    let summary = format!(
        "polls {} wakes {} self-wakes {} spawned {} terminated {} poll p50/p99 {}/{} ns sched p50 {} ns idle p50 {} ns",
        snap.polls,
        snap.wakes,
        snap.self_wakes,
        snap.spawned,
        snap.terminated,
        snap.poll_duration.p50,
        snap.poll_duration.p99,
        snap.schedule_delay.p50,
        snap.idle_time.p50,
    );
    (h.finish(), summary)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let reps = arg("--reps", 11).max(1);
    let n = arg("--events", 400_000).max(BATCH);
    let registry = Registry::new();
    let pixels = std::env::args().any(|a| a == "--task-per-pixel");
    let base = if pixels {
        pixel_stream(&registry, n)
    } else {
        stream(&registry, n)
    };
    let first = base.first().map_or(0, |e| e.ts_ns);
    let last = base.last().map_or(0, |e| e.ts_ns);
    let span = last - first + 1_000;
    let mut kinds = [0usize; 15];
    for e in &base {
        kinds[e.kind as usize] += 1;
    }
    let (fp, summary) = fingerprint(&base, &registry);
    println!(
        "stream: {} events over {:.3} s of event time ({:.0} events/s), batches of {BATCH}",
        base.len(),
        span as f64 * 1e-9,
        base.len() as f64 / (span as f64 * 1e-9)
    );
    let mix: Vec<String> = EventKind::ALL
        .iter()
        .filter(|k| kinds[**k as usize] > 0)
        .map(|k| format!("{k:?} {}", kinds[*k as usize]))
        .collect();
    println!("mix: {}", mix.join(", "));
    println!("aggregator snapshot: {summary}; fingerprint {fp:016x}");

    let only: Option<String> = std::env::args().skip_while(|a| a != "--stage").nth(1);
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| {
            only.as_ref().is_none_or(|o| {
                // An exact name picks that stage alone, else every stage containing it.
                let exact = Stage::ALL.iter().any(|x| x.name() == o.as_str());
                if exact {
                    s.name() == o.as_str()
                } else {
                    s.name().contains(o.as_str())
                }
            })
        })
        .collect();
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
    for _ in 0..reps {
        for (i, stage) in stages.iter().enumerate() {
            results[i].push(run(*stage, &base, span, &registry));
        }
    }
    println!("\n{reps} repetitions, ns/event: median (min..max)");
    for (i, stage) in stages.iter().enumerate() {
        let r = &mut results[i];
        r.sort_by(f64::total_cmp);
        println!(
            "  {:<42} {:>7.1}  ({:.1}..{:.1})",
            stage.name(),
            r[r.len() / 2],
            r[0],
            r[r.len() - 1]
        );
    }
}
