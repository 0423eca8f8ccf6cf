//! Measures the trace size per event on a spawn-heavy workload shaped like the
//! Mandelbrot tutorial's task-per-pixel variant: one task per "pixel" (a small
//! computation), the runtime instrumented with taskline's hooks and
//! optionally the tracing layer (which adds wakes and task names).
//!
//! Then it re-encodes the events it read back on one core, raw and
//! deflated, and prints the encoder's throughput (events/s) and sizes, and
//! what the flight recorder's window takes for them (bytes per event, and
//! seconds of this workload per MiB of window).
//!
//! ```sh
//! cargo run --release -p taskline-trace --example trace_size -- [TASKS] [--layer] [--out FILE]
//! ```

use std::cell::RefCell;
use std::time::Instant;

use taskline_core::RecorderConfig;
use taskline_core::TasklineLayer;
use taskline_core::{Recorder, RuntimeBuilderExt};
use taskline_trace::{PerfettoWriter, TraceOptions, encode_trace_with, read_trace};
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::prelude::*;

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

fn pixel(i: u64) -> u8 {
    let (xi, yi) = (
        (i % 1024) as f64 / 341.0 - 2.0,
        (i / 1024) as f64 / 512.0 - 1.0,
    );
    let (mut x, mut y, mut n) = (0.0f64, 0.0f64, 0);
    while x * x + y * y < 4.0 && n < 200 {
        (x, y) = (x * x - y * y + xi, 2.0 * x * y + yi);
        n += 1;
    }
    n as u8
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tasks: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let layer = args.iter().any(|a| a == "--layer");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| {
            std::env::temp_dir()
                .join("taskline-trace-size.pftrace")
                .display()
                .to_string()
        });

    let config = RecorderConfig {
        ring_capacity: 1 << 18,
        ..RecorderConfig::default()
    };
    let rec = Recorder::new(config).expect("recorder config");
    let (sink, handle) = PerfettoWriter::create(&out).expect("create trace file");
    rec.add_sink(sink);

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all().taskline(&rec);
    let dispatch =
        layer.then(|| Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(&rec))));
    let _main_guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
    if let Some(d) = dispatch.clone() {
        builder
            .on_thread_start(move || {
                let g = tracing::dispatcher::set_default(&d);
                GUARD.with(|slot| *slot.borrow_mut() = Some(g));
            })
            .on_thread_stop(|| GUARD.with(|slot| drop(slot.borrow_mut().take())));
    }
    let rt = builder.build().expect("runtime");
    let start = Instant::now();
    let sum: u64 = rt.block_on(async move {
        let handles: Vec<_> = (0..tasks)
            .map(|i| tokio::spawn(async move { pixel(i) }))
            .collect();
        let mut sum = 0u64;
        for h in handles {
            sum += u64::from(h.await.expect("pixel task"));
        }
        sum
    });
    let elapsed = start.elapsed();
    drop(rt);
    handle.finish_recorder(&rec).expect("finish trace");
    let stats = rec.stats();

    let bytes = std::fs::metadata(&out).expect("trace written").len();
    let events = handle.events_written();
    let read_start = Instant::now();
    let back = read_trace(&std::fs::read(&out).expect("read trace")).expect("trace reads back");
    assert_eq!(back.events.len() as u64, events);
    println!(
        "tasks={tasks} layer={layer} checksum={sum} run={elapsed:.2?} events={events} dropped={} bytes={bytes} \
         bytes/event={:.1} read_back={:.2?} file={out}",
        stats.dropped,
        bytes as f64 / events.max(1) as f64,
        read_start.elapsed(),
    );
    // Encoder throughput on this thread (one core), best of 3.
    for compress in [false, true] {
        let options = TraceOptions {
            compress,
            ..TraceOptions::default()
        };
        let mut best = f64::INFINITY;
        let mut size = 0;
        for _ in 0..3 {
            let mut buf = Vec::with_capacity(back.events.len() * 16);
            let t = Instant::now();
            encode_trace_with(&back.events, &back.registry, 0, options, &mut buf).expect("encode");
            best = best.min(t.elapsed().as_secs_f64());
            size = buf.len();
        }
        println!(
            "encode compress={compress}: {:.1}M events/s on one core, {:.2} bytes/event",
            back.events.len() as f64 / best / 1e6,
            size as f64 / back.events.len().max(1) as f64
        );
    }
    // The flight recorder's window over the same events.
    let dir = std::env::temp_dir().join(format!("taskline-trace-size-{}", std::process::id()));
    let (mut flight, window) =
        taskline_trace::flight::FlightRecorder::new(taskline_trace::flight::FlightConfig {
            max_bytes: usize::MAX / 2,
            max_age: std::time::Duration::from_secs(3600),
            dump_dir: dir,
            dump_on_slow_poll: false,
            ..Default::default()
        })
        .expect("flight config");
    for batch in back.events.chunks(4096) {
        flight.record(batch, &back.registry);
    }
    let w = window.stats();
    let span_ns = match (back.events.first(), back.events.last()) {
        (Some(a), Some(b)) => b.ts_ns.saturating_sub(a.ts_ns).max(1),
        _ => 1,
    };
    let per_event = w.retained_bytes as f64 / w.retained_events.max(1) as f64;
    println!(
        "flight window: {} events in {} bytes, {per_event:.2} bytes/event (32 as plain events), {:.2} s of this run per MiB",
        w.retained_events,
        w.retained_bytes,
        span_ns as f64 / 1e9 * (1 << 20) as f64 / w.retained_bytes.max(1) as f64
    );
}
