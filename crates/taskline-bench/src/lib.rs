//! The overhead benchmark: the workloads, the spawn indirection
//! that lets a tool wrap every spawned future, and peak-memory measurement.
//!
//! The table itself is printed by `examples/overhead.rs` (one fresh child
//! process per (workload, configuration) run, interleaved round-robin); the
//! criterion bench `benches/overhead.rs` measures the per-poll cost of the
//! yield-heavy micro workload.
//!
//! The five Mandelbrot workloads are `taskline_mandelbrot`'s own variants
//! (the ones the demo runs), rendered through
//! [`taskline_mandelbrot::render_with`] with a [`Spawner`], so every
//! configuration runs exactly the same code; only `tokio-metrics` needs to
//! wrap each future (its `TaskMonitor` instruments futures, not the runtime).
//! The yield micro workload is the only one written here.

use std::future::Future;

use taskline_mandelbrot::{Spawn, Variant, render_with};
use tokio::task::JoinHandle;

/// How a workload spawns its tasks.
///
/// Every variant ends in `tokio::spawn`; `Monitor` first wraps the future in
/// a tokio-metrics `TaskMonitor` (the only tool here that instruments
/// futures instead of the runtime).
#[derive(Clone, Debug, Default)]
pub enum Spawner {
    /// Plain `tokio::spawn`.
    #[default]
    Tokio,
    /// `recorder.spawn(future)`: taskline's wrapper source.
    Taskline(taskline_core::Recorder),
    /// `tokio::spawn(monitor.instrument(future))`.
    #[cfg(feature = "peers")]
    Monitor(tokio_metrics::TaskMonitor),
}

impl Spawn for Spawner {
    /// Spawn `future` on the current runtime, wrapped as this spawner says.
    #[inline]
    #[track_caller]
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Spawner::Tokio => tokio::spawn(future),
            Spawner::Taskline(r) => r.spawn(future),
            #[cfg(feature = "peers")]
            Spawner::Monitor(m) => tokio::spawn(m.instrument(future)),
        }
    }
}

/// A benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// v1: one task renders every pixel (leaves the other workers idle).
    Serial,
    /// v2: one task per pixel (1M tasks at 1024x1024).
    TaskPerPixel,
    /// v3: one task per column.
    TaskPerColumn,
    /// v4: `workers` pool tasks fed single pixels over a capacity-1 channel.
    WorkerPoolPixels,
    /// v5: `workers` pool tasks fed columns over a channel buffered to the width.
    WorkerPoolColumns,
    /// Micro: `2 x workers` tasks each doing `yields` `yield_now().await`.
    Yield,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 6] = [
        Workload::Serial,
        Workload::TaskPerPixel,
        Workload::TaskPerColumn,
        Workload::WorkerPoolPixels,
        Workload::WorkerPoolColumns,
        Workload::Yield,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Serial => "serial",
            Workload::TaskPerPixel => "task-per-pixel",
            Workload::TaskPerColumn => "task-per-column",
            Workload::WorkerPoolPixels => "pool-pixels",
            Workload::WorkerPoolColumns => "pool-columns",
            Workload::Yield => "yield",
        }
    }

    /// The Mandelbrot variant this workload renders (`None` for yield).
    pub fn variant(self) -> Option<Variant> {
        match self {
            Workload::Serial => Some(Variant::Serial),
            Workload::TaskPerPixel => Some(Variant::TaskPerPixel),
            Workload::TaskPerColumn => Some(Variant::TaskPerColumn),
            Workload::WorkerPoolPixels => Some(Variant::WorkerPoolPixels),
            Workload::WorkerPoolColumns => Some(Variant::WorkerPoolColumns),
            Workload::Yield => None,
        }
    }

    /// Parse a command-line name (see [`Workload::name`]).
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

/// Parameters of one workload run.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Image width and height (Mandelbrot workloads).
    pub size: usize,
    /// Runtime worker threads (pool size of the worker-pool variants).
    pub workers: usize,
    /// `yield_now` calls per task (yield workload).
    pub yields: usize,
}

impl Params {
    /// Tasks spawned by the yield workload.
    pub fn yield_tasks(&self) -> usize {
        2 * self.workers
    }

    /// Polls of spawned tasks the yield workload makes: each task is polled
    /// once per `yield_now` plus once to complete.
    pub fn yield_polls(&self) -> u64 {
        (self.yield_tasks() * (self.yields + 1)) as u64
    }
}

/// What a workload returns: a checksum, so the work cannot be optimized away
/// and every configuration can be checked to compute the same result.
pub type Checksum = u64;

/// Run `workload` on the current runtime, spawning through `spawner`.
///
/// Like `taskline_mandelbrot::render`, everything (including the loop that
/// spawns tasks or feeds the channel, Go's main goroutine) runs inside one
/// spawned driver task, so all the work happens on runtime workers. The
/// Mandelbrot workloads return their image's checksum, the yield workload
/// the number of yields.
pub async fn run(workload: Workload, spawner: &Spawner, p: Params) -> Checksum {
    let size = u32::try_from(p.size).expect("image size fits in u32");
    match workload.variant() {
        Some(variant) => render_with(spawner, variant, size, size, p.workers.max(1))
            .await
            .expect("render")
            .checksum(),
        None => {
            let s = spawner.clone();
            spawner
                .spawn(async move { yields(&s, p).await })
                .await
                .expect("driver task panicked")
        }
    }
}

/// The yield workload: `2 x workers` tasks each doing `yields` `yield_now().await`.
async fn yields(spawner: &Spawner, p: Params) -> Checksum {
    let handles: Vec<_> = (0..p.yield_tasks())
        .map(|_| {
            let n = p.yields;
            spawner.spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                n as u64
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await.expect("yield task panicked");
    }
    total
}

/// Peak resident set size of this process in KiB (`VmHWM` of
/// `/proc/self/status`), or `None` where that file does not exist.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("/proc/self/status", "VmHWM:")
}

/// A `kB` field (e.g. `VmRSS:`) of a `/proc/<pid>/status` file.
pub fn proc_status_kib(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The median of `v` (sorted in place; NaN when empty): what the examples
/// report for repeated rounds on a noisy machine.
///
/// ```
/// assert_eq!(taskline_bench::median(&mut [3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(taskline_bench::median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
/// assert!(taskline_bench::median(&mut []).is_nan());
/// ```
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// xorshift64*: a deterministic generator for synthetic streams and
/// resampling (no dependency, same sequence on every machine).
///
/// ```
/// let mut a = taskline_bench::Rng(7);
/// let mut b = taskline_bench::Rng(7);
/// assert_eq!(a.next(), b.next());
/// assert!((10..20).contains(&a.range(10, 20)));
/// ```
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits. The state must not be 0.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` (`lo < hi`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// A 95% confidence interval of the median of `v`: the percentile
/// bootstrap over 2000 resamples, with a fixed seed so that a table is
/// reproducible from its runs. `None` for fewer than 5 values, where
/// resampling tells nothing.
///
/// ```
/// let v = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98];
/// let (lo, hi) = taskline_bench::median_ci95(&v).unwrap();
/// assert!(lo <= 1.0 && 1.0 <= hi && hi <= 1.1);
/// assert!(taskline_bench::median_ci95(&[1.0, 2.0]).is_none());
/// ```
pub fn median_ci95(v: &[f64]) -> Option<(f64, f64)> {
    const RESAMPLES: usize = 2000;
    if v.len() < 5 {
        return None;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut sample = vec![0.0; v.len()];
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for s in sample.iter_mut() {
                *s = v[rng.range(0, v.len() as u64) as usize];
            }
            median(&mut sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Some((
        medians[RESAMPLES / 40],
        medians[RESAMPLES - 1 - RESAMPLES / 40],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_narrows_with_more_rounds_and_holds_the_truth() {
        // Ratios scattered around 1.08 the way this machine scatters them.
        let mut rng = Rng(42);
        let mut draw = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| 1.08 + (rng.range(0, 2001) as f64 - 1000.0) / 1000.0 * 0.15)
                .collect()
        };
        let (lo10, hi10) = median_ci95(&draw(10)).expect("10 values");
        let (lo200, hi200) = median_ci95(&draw(200)).expect("200 values");
        assert!(lo10 < hi10 && lo200 < hi200);
        assert!(
            hi200 - lo200 < hi10 - lo10,
            "more rounds, narrower interval"
        );
        assert!(lo200 <= 1.08 && 1.08 <= hi200, "{lo200}..{hi200}");
        let same = [1.25; 9];
        assert_eq!(median_ci95(&same), Some((1.25, 1.25)));
    }

    fn params() -> Params {
        Params {
            size: 48,
            workers: 2,
            yields: 10,
        }
    }

    #[test]
    fn every_mandelbrot_variant_computes_the_same_image() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let sums: Vec<_> = Workload::ALL[..5]
            .iter()
            .map(|&w| rt.block_on(run(w, &Spawner::Tokio, params())))
            .collect();
        assert!(sums.windows(2).all(|s| s[0] == s[1]), "{sums:?}");
        // ... and the image of taskline-mandelbrot's own renderer with plain tokio::spawn.
        let p = params();
        let image = rt
            .block_on(taskline_mandelbrot::render(
                taskline_mandelbrot::Variant::TaskPerColumn,
                p.size as u32,
                p.size as u32,
                2,
            ))
            .unwrap();
        assert_eq!(image.checksum(), sums[0]);
    }

    #[test]
    fn yield_workload_counts_its_yields() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let p = params();
        assert_eq!(
            rt.block_on(run(Workload::Yield, &Spawner::Tokio, p)),
            (p.yield_tasks() * p.yields) as u64
        );
    }

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
    }

    #[test]
    fn peak_rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
