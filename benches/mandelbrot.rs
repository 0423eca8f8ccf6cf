//! The Mandelbrot variants of the Go tracer tutorial on Tokio, against rayon and
//! scoped threads.
//!
//! ```text
//! cargo bench --bench mandelbrot                                  # 256x256, quick
//! TASKLINE_BENCH_SIZE=2048 TASKLINE_BENCH_WORKERS=2 cargo bench --bench mandelbrot
//! ```
//! `TASKLINE_BENCH_SIZE` is the side of the square image (default 256),
//! `TASKLINE_BENCH_WORKERS` the Tokio worker threads / pool size / rayon
//! threads (default: the number of CPUs). The Tokio runtime and the rayon pool
//! are built once, outside the measured loop.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use taskline_mandelbrot::{
    Peer, Variant, default_workers, render, render_rayon, render_thread_scope,
};

/// Reads a positive integer from `name`, or `default` if unset; exits with a
/// clear message on a malformed value rather than benchmarking the wrong thing.
fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(s) => match s.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("{name}={s:?} is not a positive integer");
                std::process::exit(2);
            }
        },
    }
}

fn mandelbrot(c: &mut Criterion) {
    let size = u32::try_from(env_usize("TASKLINE_BENCH_SIZE", 256)).unwrap_or(u32::MAX);
    let workers = env_usize("TASKLINE_BENCH_WORKERS", default_workers());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("build the Tokio runtime");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("build the rayon pool");

    let mut group = c.benchmark_group(format!("mandelbrot/{size}x{size}/w{workers}"));
    group.throughput(Throughput::Elements(u64::from(size) * u64::from(size)));
    // Few, long samples: a 256x256 render takes milliseconds, 2048x2048 about a second.
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(if size > 1024 { 20 } else { 3 }));

    for variant in Variant::ALL {
        group.bench_function(BenchmarkId::new("tokio", variant), |b| {
            b.iter(|| {
                runtime
                    .block_on(render(variant, black_box(size), size, workers))
                    .expect("render")
            })
        });
    }
    group.bench_function(BenchmarkId::new("peer", Peer::Rayon), |b| {
        b.iter(|| {
            pool.install(|| render_rayon(black_box(size), size))
                .expect("render")
        })
    });
    group.bench_function(BenchmarkId::new("peer", Peer::ThreadScope), |b| {
        b.iter(|| render_thread_scope(black_box(size), size, workers).expect("render"))
    });
    group.finish();
}

criterion_group!(benches, mandelbrot);
criterion_main!(benches);
