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
use taskline_mandelbrot::{Renderer, Suite, default_workers};
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
    let suite = Suite::new(size, workers).expect("a valid size and worker count");

    let mut group = c.benchmark_group(format!("mandelbrot/{size}x{size}/w{workers}"));
    group.throughput(Throughput::Elements(u64::from(size) * u64::from(size)));
    // Few, long samples: a 256x256 render takes milliseconds, 2048x2048 about a second.
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(if size > 1024 { 20 } else { 3 }));

    for renderer in Renderer::ALL {
        let id = match renderer {
            Renderer::Tokio(v) => BenchmarkId::new("tokio", v),
            Renderer::Peer(p) => BenchmarkId::new("peer", p),
        };
        group.bench_function(id, |b| {
            b.iter(|| suite.run(black_box(renderer)).expect("render"))
        });
    }
    group.finish();
}

criterion_group!(benches, mandelbrot);
criterion_main!(benches);
