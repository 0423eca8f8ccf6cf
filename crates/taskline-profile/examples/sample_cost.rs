//! What one CPU sample costs the thread it interrupts.
//!
//! A thread walks down a 24-frame call chain (a stack as deep as a Tokio
//! worker's inside a poll) and spins on a fixed amount of register-only
//! work, alternately with no profiler and with the profiler sampling it at
//! `--hz` (default 1000, the maximum). The difference in the thread's own
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`, which charges signal delivery and
//! the handler to the thread), divided by the samples taken, is the cost of
//! one sample: the `SIGPROF` delivery, the handler's frame-pointer walk and
//! its ring write. Multiplied by the frequency it is the fraction of a busy
//! thread's CPU that profiling takes, a figure that a shared machine's
//! wall-clock noise cannot blur. The same difference in process CPU time
//! adds the collector thread's draining and the profiler's start and stop.
//!
//! ```text
//! cargo run --release -p taskline-profile --example sample_cost -- [--rounds 9] [--secs 2] [--hz 1000]
//! ```

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::hint::black_box;
    use taskline_profile::{Profiler, ProfilerConfig};

    fn cpu_ns(clock: libc::clockid_t) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-pointer to a timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
    let thread_cpu_ns = || cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    let process_cpu_ns = || cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID);

    /// Register-only work: a xorshift chain, `iters` steps.
    #[inline(never)]
    fn spin(iters: u64) -> u64 {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..iters {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x
    }

    /// Recurses `depth` frames, then spins: samples walk the whole chain.
    #[inline(never)]
    fn deep(depth: u32, iters: u64) -> u64 {
        if depth == 0 {
            return spin(black_box(iters));
        }
        black_box(deep(black_box(depth - 1), iters)).wrapping_add(1)
    }

    let mut rounds = 9usize;
    let mut secs = 2.0f64;
    let mut hz = 1000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => rounds = value()?.parse()?,
            "--secs" => secs = value()?.parse()?,
            "--hz" => hz = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }

    // Calibrate the work to about `secs` of CPU.
    let t0 = thread_cpu_ns();
    black_box(deep(24, 10_000_000));
    let per_iter = (thread_cpu_ns() - t0) as f64 / 1e7;
    let iters = (secs * 1e9 / per_iter) as u64;

    let mut off = Vec::new();
    let mut on = Vec::new();
    let mut per_sample = Vec::new();
    let mut per_sample_process = Vec::new();
    for round in 0..rounds {
        // Alternate the order so drift does not favour one side.
        let measure = |profiled: bool| -> Result<(u64, u64, u64), Box<dyn std::error::Error>> {
            let guard = if profiled {
                let g = Profiler::start(ProfilerConfig::default().frequency_hz(hz))?;
                g.register_current_thread()?;
                Some(g)
            } else {
                None
            };
            let (t, p) = (thread_cpu_ns(), process_cpu_ns());
            black_box(deep(24, iters));
            let cpu = thread_cpu_ns() - t;
            let samples = match guard {
                Some(g) => g.stop()?.stats.samples,
                None => 0,
            };
            // The whole process, collector thread and stop included.
            Ok((cpu, samples, process_cpu_ns() - p))
        };
        let (a, b) = if round % 2 == 0 {
            let a = measure(false)?;
            (a, measure(true)?)
        } else {
            let b = measure(true)?;
            (measure(false)?, b)
        };
        off.push(a.0);
        on.push(b.0);
        if b.1 > 0 {
            per_sample.push((b.0 as f64 - a.0 as f64) / b.1 as f64);
            per_sample_process.push((b.2 as f64 - a.2 as f64) / b.1 as f64);
        }
        println!(
            "round {round}: off {:.1} ms, on {:.1} ms, {} samples, {:.2} us/sample ({:.2} with the collector)",
            a.0 as f64 / 1e6,
            b.0 as f64 / 1e6,
            b.1,
            per_sample.last().copied().unwrap_or(f64::NAN) / 1e3,
            per_sample_process.last().copied().unwrap_or(f64::NAN) / 1e3
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ps = per_sample.clone();
    let cost_ns = median(&mut ps);
    println!(
        "median cost per sample: {:.2} us (min {:.2}, max {:.2}); at 99 Hz that is {:.3}% of a busy thread's CPU, at {hz} Hz {:.3}%",
        cost_ns / 1e3,
        ps[0] / 1e3,
        ps[ps.len() - 1] / 1e3,
        cost_ns * 99.0 / 1e9 * 100.0,
        cost_ns * f64::from(hz) / 1e9 * 100.0
    );
    let with_collector = median(&mut per_sample_process);
    println!(
        "median with the collector thread and stop (process CPU): {:.2} us per sample; at 99 Hz {:.3}%",
        with_collector / 1e3,
        with_collector * 99.0 / 1e9 * 100.0
    );
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the CPU profiler samples on Linux only");
}
