//! Times every Tokio variant and peer and prints a table, the numbers behind
//! "v2 and v4 are slower than v3/v5" and "the best Tokio variant is within 10%
//! of rayon".
//!
//! ```text
//! cargo run --release -p taskline-mandelbrot --example compare -- [SIZE] [ROUNDS] [WORKERS]
//! ```
//! SIZE defaults to 1024 (a square image), ROUNDS to 5, WORKERS to the number of
//! CPUs. Rounds are interleaved round-robin (every renderer once per round) so
//! machine noise hits all of them alike. Tokio runtimes and the rayon pool are
//! built once, outside the timings; the thread-scope peer spawns its threads per
//! run by design.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use taskline_mandelbrot::{Image, RenderError, Renderer, Suite, Variant, default_workers};

struct Args {
    size: u32,
    rounds: usize,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut next = |name: &str, default: usize| -> Result<usize, String> {
        match args.next() {
            None => Ok(default),
            Some(s) => s.parse().map_err(|e| format!("{name} {s:?}: {e}")),
        }
    };
    let size = next("SIZE", 1024)?;
    let rounds = next("ROUNDS", 5)?.max(1);
    let workers = next("WORKERS", default_workers())?.max(1);
    let size = u32::try_from(size).map_err(|_| format!("SIZE {size} is too large"))?;
    Ok(Args {
        size,
        rounds,
        workers,
    })
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| compare(&a).map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            eprintln!("usage: compare [SIZE] [ROUNDS] [WORKERS]");
            ExitCode::FAILURE
        }
    }
}

fn compare(args: &Args) -> Result<(), RenderError> {
    let Args {
        size,
        rounds,
        workers,
    } = *args;
    let suite = Suite::new(size, workers)?;
    let renderers = Renderer::ALL;
    println!(
        "{size}x{size}, {workers} workers, {rounds} rounds (interleaved), {} CPUs",
        default_workers()
    );
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); renderers.len()];
    let mut reference: Option<Image> = None;
    for _ in 0..rounds {
        for (k, r) in renderers.iter().enumerate() {
            let start = Instant::now();
            let image = suite.run(*r)?;
            times[k].push(start.elapsed());
            match &reference {
                None => reference = Some(image),
                Some(expected) if *expected != image => {
                    return Err(RenderError::Task(format!("{r} rendered a different image")));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(image) = &reference {
        println!(
            "checksum {:#018x} (identical for every renderer)",
            image.checksum()
        );
    }

    let medians: Vec<f64> = times.iter_mut().map(|t| median_ms(t)).collect();
    let serial = medians[0];
    let rayon_k = Variant::ALL.len();
    let rayon = medians[rayon_k];
    println!(
        "{:<26} {:>10} {:>21} {:>9} {:>9}",
        "renderer", "median ms", "min..max ms", "/serial", "/rayon"
    );
    for (k, r) in renderers.iter().enumerate() {
        let t = &times[k];
        let (min, max) = (ms(t[0]), ms(t[t.len() - 1]));
        println!(
            "{:<26} {:>10.1} {:>21} {:>9.2} {:>9.2}",
            r.to_string(),
            medians[k],
            format!("{min:.1}..{max:.1}"),
            medians[k] / serial,
            medians[k] / rayon,
        );
    }
    let (best_k, best) = medians[..rayon_k]
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or((0, serial), |(k, m)| (k, *m));
    println!(
        "best tokio variant: {} at {:.2}x rayon ({:+.1}%)",
        renderers[best_k],
        best / rayon,
        (best / rayon - 1.0) * 100.0
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Sorts `t` and returns its median in milliseconds.
fn median_ms(t: &mut [Duration]) -> f64 {
    t.sort();
    let n = t.len();
    if n % 2 == 1 {
        ms(t[n / 2])
    } else {
        (ms(t[n / 2 - 1]) + ms(t[n / 2])) / 2.0
    }
}
