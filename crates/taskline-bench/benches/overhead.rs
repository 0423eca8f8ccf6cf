//! Per-poll recording cost of taskline's runtime hooks: the yield-heavy micro
//! workload (`2 x workers` tasks each doing `yield_now().await` in a loop) on
//! a plain runtime vs one instrumented with `taskline_core::hooks`.
//!
//! Quick by default (small sample, short measurement):
//! `cargo bench -p taskline-bench --bench overhead`. Criterion reports time
//! per iteration; one iteration is [`YIELDS`] x tasks polls, so the per-poll
//! cost is `(hooks - none) / polls`, printed at the end as well.
//! The `clock` group compares the per-event clock read with the raw TSC.
//! The full comparison with the peers is `examples/overhead.rs`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use taskline_bench::{Params, Spawner, Workload, run};
use taskline_core::Recorder;

/// `yield_now` calls per task and iteration.
const YIELDS: usize = 2_000;

fn params() -> Params {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Params {
        size: 0,
        workers,
        yields: YIELDS,
    }
}

fn runtime(recorder: Option<&Recorder>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(params().workers);
    if let Some(r) = recorder {
        taskline_core::instrument(&mut builder, r);
    }
    builder.build().expect("runtime")
}

fn bench(c: &mut Criterion) {
    let p = params();
    let mut group = c.benchmark_group("yield-micro");
    group.throughput(Throughput::Elements(p.yield_polls()));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let plain = runtime(None);
    let mut none_ns = 0.0;
    group.bench_function("none", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                plain.block_on(run(Workload::Yield, &Spawner::Tokio, p));
            }
            let t = start.elapsed();
            none_ns = t.as_nanos() as f64 / iters as f64;
            t
        })
    });

    let recorder = Recorder::with_defaults();
    let hooked = runtime(Some(&recorder));
    let mut hooks_ns = 0.0;
    group.bench_function("taskline-hooks", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                hooked.block_on(run(Workload::Yield, &Spawner::Tokio, p));
            }
            let t = start.elapsed();
            hooks_ns = t.as_nanos() as f64 / iters as f64;
            t
        })
    });
    group.finish();

    let stats = recorder.stats();
    println!(
        "taskline-hooks: ~{:.1} ns/poll over none (last sample; {} polls/iter), recorder recorded {} events, dropped {}",
        (hooks_ns - none_ns) / p.yield_polls() as f64,
        p.yield_polls(),
        stats.recorded,
        stats.dropped,
    );
}

/// The per-event clock read: `taskline_core::now_ns()` (an `Instant`
/// since a process epoch, i.e. `clock_gettime(CLOCK_MONOTONIC)` via the vDSO)
/// vs the raw TSC, which a recorder could convert to ns on the consumer side.
fn clock(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("taskline now_ns", |b| b.iter(taskline_core::now_ns));
    group.bench_function("Instant::now", |b| b.iter(Instant::now));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions on x86_64.
    group.bench_function("rdtsc", |b| {
        b.iter(|| unsafe { std::arch::x86_64::_rdtsc() })
    });
    group.finish();
}

criterion_group!(benches, bench, clock);
criterion_main!(benches);
