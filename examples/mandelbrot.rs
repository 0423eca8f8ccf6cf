//! The main job: the Go execution-tracer tutorial's Mandelbrot, on Tokio, told
//! by taskline.
//!
//! ```text
//! cargo run --release --example mandelbrot                # 1024x1024, every variant
//! cargo run --release --example mandelbrot -- --size 2048 # the tutorial's size
//! cargo run --release --example mandelbrot -- --otlp      # also export metrics over OTLP
//! cargo run --release --example mandelbrot -- --profile   # also write CPU profiles (pprof)
//! ```
//!
//! Every variant runs in a fresh child process (so each gets its own recorder,
//! `tracing` subscriber and an honest peak-memory figure) under taskline's
//! runtime hooks and subscriber (wakes, names, blocking sections), and once
//! more without taskline, so the table says what observing cost. The parent
//! prints one table and, under it, one line per variant that says in words
//! what the numbers show. It writes the PNG once and one Perfetto trace per
//! variant (open them in ui.perfetto.dev, or run `taskline report FILE`).
//! With `--profile` (Linux), each variant under taskline also writes a CPU
//! profile, `mandelbrot-<variant>.cpu.pb.gz` (pprof, labelled by spawn site),
//! its Perfetto trace carries the same samples on the workers' tracks
//! ("Perf Callstacks" under each worker in the UI), and the summary says
//! which spawn site took the CPU, in which function.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use taskline::otel::OtlpConfig;
use taskline::{Recorder, RecorderConfig, Snapshot, Taskline};
use taskline_mandelbrot::{Spawn, Variant, default_workers, render, render_with};

const USAGE: &str = "usage: mandelbrot [--size N] [--workers N] [--out DIR] [--variants a,b,..] [--no-trace] [--otlp] [--wrap] [--profile] [--compress-trace]

  --size N        image is N x N pixels (default 1024; the Go tutorial uses 2048)
  --workers N     Tokio worker threads and pool size (default: available cores)
  --out DIR       where the PNG and the Perfetto traces go (default: out)
  --variants LIST comma-separated subset of: serial, task-per-pixel, task-per-column,
                  pool-pixels, pool-columns (default: all)
  --no-trace      do not write Perfetto traces
  --otlp          also export runtime and task metrics over OTLP while running
                  (endpoint from OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318)
  --wrap          spawn every task through taskline's wrapper (Recorder::spawn), the
                  source on stable Tokio (always on in a build without tokio_unstable)
  --profile       also write a CPU profile per variant, <out>/mandelbrot-<variant>.cpu.pb.gz
                  (pprof, samples labelled by spawn site; Linux); the traces then hold
                  the samples on the workers' tracks too
  --compress-trace deflate the traces' packets (Perfetto compressed_packets: about five
                  times smaller, and the encoding takes more CPU from the workers)";

/// Command-line options shared by parent and child.
#[derive(Clone, Debug)]
struct Options {
    size: u32,
    workers: usize,
    out: PathBuf,
    variants: Vec<Variant>,
    trace: bool,
    otlp: bool,
    /// Child only: run the variant without taskline (the baseline).
    bare: bool,
    /// Spawn through taskline's wrapper (`Recorder::spawn`), the source on
    /// stable Tokio; always on in a build without `tokio_unstable`.
    wrap: bool,
    /// Write a CPU profile per variant.
    profile: bool,
    /// Deflate the traces (`TraceOptions::compress`).
    compress_trace: bool,
}

fn parse(args: &[String]) -> Result<(Options, Option<Variant>), String> {
    let mut o = Options {
        size: 1024,
        workers: default_workers(),
        out: PathBuf::from("out"),
        variants: Variant::ALL.to_vec(),
        trace: true,
        otlp: false,
        bare: false,
        wrap: !taskline::capabilities().task_events,
        profile: false,
        compress_trace: false,
    };
    let mut child = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--size" => {
                o.size = value("--size")?
                    .parse()
                    .map_err(|_| "--size takes a whole number")?;
                if !(1..=8192).contains(&o.size) {
                    return Err("--size must be between 1 and 8192".into());
                }
            }
            "--workers" => {
                o.workers = value("--workers")?
                    .parse()
                    .map_err(|_| "--workers takes a whole number")?;
                if !(1..=256).contains(&o.workers) {
                    return Err("--workers must be between 1 and 256".into());
                }
            }
            "--out" => o.out = PathBuf::from(value("--out")?),
            "--variants" => {
                o.variants = value("--variants")?
                    .split(',')
                    .map(|s| s.trim().parse::<Variant>().map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?;
            }
            "--no-trace" => o.trace = false,
            "--otlp" => o.otlp = true,
            "--bare" => o.bare = true,
            "--wrap" => o.wrap = true,
            "--profile" => o.profile = true,
            "--compress-trace" => o.compress_trace = true,
            "--child" => {
                child = Some(
                    value("--child")?
                        .parse::<Variant>()
                        .map_err(|e| e.to_string())?,
                )
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok((o, child))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, child) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match child {
        Some(variant) => run_child(&options, variant),
        None => run_parent(&options, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mandelbrot: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- child ----

/// What one child run measured, sent to the parent as one `key=value` line.
#[derive(Clone, Debug, Default)]
struct Row {
    variant: String,
    wall_ns: u64,
    checksum: u64,
    spawned: u64,
    polls: u64,
    wakes: u64,
    max_runnable: u64,
    sched_p50_ns: u64,
    sched_p99_ns: u64,
    busy_ns: u64,
    parked_ns: u64,
    task_idle_ns: u64,
    workers: u64,
    peak_rss_kib: u64,
    dropped: u64,
    trace_bytes: u64,
    trace_events: u64,
    /// CPU samples in the variant's trace (with `--profile`).
    trace_cpu_samples: u64,
    /// CPU samples in the variant's profile (0: no profile).
    cpu_samples: u64,
    /// The spawn site with the most CPU samples.
    cpu_site: String,
    /// Its share of the samples, per mille.
    cpu_site_permille: u64,
    /// The function most of that site's samples were in (the innermost
    /// frame outside the standard library).
    cpu_function: String,
    /// Its share of the site's samples, per mille.
    cpu_function_permille: u64,
    /// The same variant's wall time without taskline (filled by the parent).
    bare_wall_ns: u64,
}

const FIELDS: [&str; 23] = [
    "variant",
    "wall_ns",
    "checksum",
    "spawned",
    "polls",
    "wakes",
    "max_runnable",
    "sched_p50_ns",
    "sched_p99_ns",
    "busy_ns",
    "parked_ns",
    "task_idle_ns",
    "workers",
    "peak_rss_kib",
    "dropped",
    "trace_bytes",
    "trace_events",
    "trace_cpu_samples",
    "cpu_samples",
    "cpu_site",
    "cpu_site_permille",
    "cpu_function",
    "cpu_function_permille",
];

/// A string field on the result line: no spaces.
fn escape_field(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20")
}

fn unescape_field(s: &str) -> String {
    s.replace("%20", " ").replace("%25", "%")
}

impl Row {
    fn values(&self) -> [String; 23] {
        [
            self.variant.clone(),
            self.wall_ns.to_string(),
            self.checksum.to_string(),
            self.spawned.to_string(),
            self.polls.to_string(),
            self.wakes.to_string(),
            self.max_runnable.to_string(),
            self.sched_p50_ns.to_string(),
            self.sched_p99_ns.to_string(),
            self.busy_ns.to_string(),
            self.parked_ns.to_string(),
            self.task_idle_ns.to_string(),
            self.workers.to_string(),
            self.peak_rss_kib.to_string(),
            self.dropped.to_string(),
            self.trace_bytes.to_string(),
            self.trace_events.to_string(),
            self.trace_cpu_samples.to_string(),
            self.cpu_samples.to_string(),
            escape_field(&self.cpu_site),
            self.cpu_site_permille.to_string(),
            escape_field(&self.cpu_function),
            self.cpu_function_permille.to_string(),
        ]
    }

    fn encode(&self) -> String {
        let v = self.values();
        let pairs: Vec<String> = FIELDS
            .iter()
            .zip(v.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("TASKLINE_ROW {}", pairs.join(" "))
    }

    fn decode(line: &str) -> Option<Row> {
        let rest = line.strip_prefix("TASKLINE_ROW ")?;
        let mut r = Row::default();
        for pair in rest.split(' ') {
            let (k, v) = pair.split_once('=')?;
            let n = || v.parse::<u64>().ok();
            match k {
                "variant" => r.variant = v.to_string(),
                "wall_ns" => r.wall_ns = n()?,
                "checksum" => r.checksum = n()?,
                "spawned" => r.spawned = n()?,
                "polls" => r.polls = n()?,
                "wakes" => r.wakes = n()?,
                "max_runnable" => r.max_runnable = n()?,
                "sched_p50_ns" => r.sched_p50_ns = n()?,
                "sched_p99_ns" => r.sched_p99_ns = n()?,
                "busy_ns" => r.busy_ns = n()?,
                "parked_ns" => r.parked_ns = n()?,
                "task_idle_ns" => r.task_idle_ns = n()?,
                "workers" => r.workers = n()?,
                "peak_rss_kib" => r.peak_rss_kib = n()?,
                "dropped" => r.dropped = n()?,
                "trace_bytes" => r.trace_bytes = n()?,
                "trace_events" => r.trace_events = n()?,
                "trace_cpu_samples" => r.trace_cpu_samples = n()?,
                "cpu_samples" => r.cpu_samples = n()?,
                "cpu_site" => r.cpu_site = unescape_field(v),
                "cpu_site_permille" => r.cpu_site_permille = n()?,
                "cpu_function" => r.cpu_function = unescape_field(v),
                "cpu_function_permille" => r.cpu_function_permille = n()?,
                _ => {}
            }
        }
        Some(r)
    }
}

/// Spawns the variants' tasks through taskline's wrapper source.
#[derive(Clone)]
struct Wrapped(taskline::Recorder);

impl Spawn for Wrapped {
    #[track_caller]
    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(future)
    }
}

fn trace_path(out: &Path, variant: Variant) -> PathBuf {
    out.join(format!("mandelbrot-{}.perfetto-trace", variant.name()))
}

fn profile_path(out: &Path, variant: Variant) -> PathBuf {
    out.join(format!("mandelbrot-{}.cpu.pb.gz", variant.name()))
}

/// Writes the CPU profile and fills the row's CPU fields: the spawn site
/// with the most samples and, within it, the function most samples were
/// in (read back from the symbolized pprof file, as a viewer would).
fn write_cpu_profile(
    profile: &taskline::profile::Profile,
    path: &Path,
    row: &mut Row,
) -> Result<(), String> {
    let bytes = profile
        .to_pprof()
        .map_err(|e| format!("CPU profile: {}", chain(&e)))?;
    std::fs::write(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let pprof = taskline::profile::pprof::decode(&bytes).map_err(|e| e.to_string())?;
    let cpu = pprof.value_index("samples").unwrap_or(0);
    let mut by_site: std::collections::BTreeMap<&str, i64> = Default::default();
    for s in &pprof.samples {
        *by_site
            .entry(s.label("spawn_site").unwrap_or(""))
            .or_default() += s.values[cpu];
    }
    let total: i64 = by_site.values().sum();
    row.cpu_samples = total as u64;
    let Some((site, n)) = by_site
        .iter()
        .filter(|(site, _)| !site.is_empty())
        .max_by_key(|(_, n)| **n)
    else {
        return Ok(());
    };
    row.cpu_site = site.to_string();
    row.cpu_site_permille = (n * 1000 / total.max(1)) as u64;
    let mut by_function: std::collections::BTreeMap<String, i64> = Default::default();
    for s in pprof
        .samples
        .iter()
        .filter(|s| s.label("spawn_site") == Some(site))
    {
        let names = pprof.function_names(s);
        let own = names
            .iter()
            .find(|f| {
                ![
                    "core::", "std::", "alloc::", "<core::", "<std::", "<alloc::",
                ]
                .iter()
                .any(|p| f.starts_with(p))
            })
            .or(names.first());
        if let Some(f) = own {
            *by_function.entry(f.clone()).or_default() += s.values[cpu];
        }
    }
    if let Some((f, fnn)) = by_function.into_iter().max_by_key(|(_, n)| *n) {
        row.cpu_function = f;
        row.cpu_function_permille = (fnn * 1000 / n.max(&1)) as u64;
    }
    Ok(())
}

/// The variant on a plain runtime, no taskline at all: the baseline the
/// table compares against.
fn run_bare(o: &Options, variant: Variant) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.workers)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let image = runtime
        .block_on(render(variant, o.size, o.size, o.workers))
        .map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    let row = Row {
        variant: variant.name().to_string(),
        wall_ns: wall.as_nanos() as u64,
        checksum: image.checksum(),
        ..Row::default()
    };
    println!("{}", row.encode());
    Ok(())
}

fn run_child(o: &Options, variant: Variant) -> Result<(), String> {
    if o.bare {
        return run_bare(o, variant);
    }
    let config = RecorderConfig {
        // Task per pixel spawns ~1M tasks in a burst: rings big enough that the
        // consumer keeps up even on a busy machine (32 MiB per thread; drops
        // would still be counted and shown in the table).
        ring_capacity: 1 << 20,
        max_tracked_tasks: 1 << 21,
        ..RecorderConfig::default()
    };
    // Wakes, task names and blocking sections from Tokio's instrumentation,
    // without the tracing registry's per-span cost.
    let mut setup = Taskline::builder()
        .recorder_config(config)
        .tracing(tracing_subscriber::registry());
    if o.trace {
        setup = setup.trace_file(trace_path(&o.out, variant));
        if o.compress_trace {
            setup = setup.trace_options(taskline::trace::TraceOptions {
                compress: true,
                ..Default::default()
            });
        }
    }
    if o.profile {
        setup = setup.cpu_profile(taskline::profile::ProfilerConfig::default());
    }
    if o.otlp {
        setup = setup.otlp(
            OtlpConfig::new()
                // One service per variant: each runs in its own process, and
                // cumulative series from two processes must not share labels.
                .with_service_name(format!("taskline-mandelbrot-{}", variant.name()))
                .with_interval(Duration::from_secs(1)),
        );
    }
    let taskline = setup.start().map_err(|e| chain(&e))?;
    let recorder = taskline.recorder().clone();
    let runtime = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(o.workers)
                .enable_all(),
            "mandelbrot",
        )
        .map_err(|e| chain(&e))?;

    let started = Instant::now();
    let image = if o.wrap {
        let spawner = Wrapped(recorder.clone());
        runtime.block_on(render_with(&spawner, variant, o.size, o.size, o.workers))
    } else {
        runtime.block_on(render(variant, o.size, o.size, o.workers))
    }
    .map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    if variant == Variant::Serial {
        let png = o.out.join("mandelbrot.png");
        image
            .save_png(&png)
            .map_err(|e| format!("cannot write {}: {e}", png.display()))?;
    }
    drop(runtime);
    let cpu_profile = taskline.cpu_profiler().map(|p| p.profile());
    let snapshot = recorder.snapshot();
    let mut row = row_from(
        variant,
        wall,
        image.checksum(),
        &snapshot,
        &recorder,
        o.workers,
    );
    if let Some(profile) = cpu_profile {
        write_cpu_profile(&profile, &profile_path(&o.out, variant), &mut row)?;
    }
    let trace = taskline.trace_file().cloned();
    // Flushes the recorder (so the OTel task sink has every event), then the
    // last OTLP export, then finishes the trace with the drop count.
    taskline.shutdown().map_err(|e| chain(&e))?;
    // With `--profile` the front door also put the CPU samples in the trace.
    let (trace_bytes, trace_events, trace_cpu_samples) = trace.map_or((0, 0, 0), |h| {
        (
            h.bytes_written(),
            h.events_written(),
            h.cpu_samples_written(),
        )
    });
    println!(
        "{}",
        Row {
            trace_bytes,
            trace_events,
            trace_cpu_samples,
            ..row
        }
        .encode()
    );
    Ok(())
}

/// An error and its causes, one after the other.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn row_from(
    variant: Variant,
    wall: Duration,
    checksum: u64,
    s: &Snapshot,
    recorder: &Recorder,
    workers: usize,
) -> Row {
    Row {
        variant: variant.name().to_string(),
        wall_ns: wall.as_nanos() as u64,
        checksum,
        spawned: s.spawned,
        polls: s.polls,
        wakes: s.wakes,
        max_runnable: s.max_runnable,
        sched_p50_ns: s.schedule_delay.p50,
        sched_p99_ns: s.schedule_delay.p99,
        busy_ns: s.workers.iter().map(|w| w.busy_ns).sum(),
        parked_ns: s.workers.iter().map(|w| w.parked_ns).sum(),
        task_idle_ns: work_idle_ns(s),
        workers: workers as u64,
        peak_rss_kib: peak_rss_kib(),
        dropped: recorder.stats().dropped,
        trace_bytes: 0,
        trace_events: 0,
        bare_wall_ns: 0,
        ..Row::default()
    }
}

/// Idle time (poll end -> wake) of the tasks that do the work: the spawn
/// sites holding at least 10% of all poll time. This leaves out the driver
/// task that merely awaits its children, and keeps the pool workers' waits
/// for the next channel item.
fn work_idle_ns(s: &Snapshot) -> u64 {
    let busy: u64 = s.sites.iter().map(|site| site.busy_ns).sum();
    s.sites
        .iter()
        .filter(|site| site.busy_ns.saturating_mul(10) >= busy)
        .map(|site| site.idle_ns)
        .sum()
}

/// Peak resident set size of this process (VmHWM), KiB; 0 where unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

// --------------------------------------------------------------- parent ----

fn run_parent(o: &Options, args: &[String]) -> Result<(), String> {
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    eprintln!(
        "Mandelbrot {0}x{0}, {1} workers, {2} variants, each in its own process without taskline and under it ({3})",
        o.size,
        o.workers,
        o.variants.len(),
        if !taskline::capabilities().task_events {
            "stable Tokio: tasks spawned through taskline's wrapper"
        } else if o.wrap {
            "hooks + subscriber + wrapper"
        } else {
            "hooks + subscriber"
        }
    );
    let mut rows = Vec::new();
    for (n, variant) in o.variants.iter().enumerate() {
        eprint!(
            "[{}/{}] {:<16} {} ... ",
            n + 1,
            o.variants.len(),
            variant.name(),
            variant.description()
        );
        let _ = std::io::stderr().flush();
        let bare = run_variant(&exe, args, *variant, true)?;
        let mut row = run_variant(&exe, args, *variant, false)?;
        row.bare_wall_ns = bare.wall_ns;
        if bare.checksum != row.checksum {
            return Err(format!(
                "{}: the image under taskline differs from the one without it",
                variant.name()
            ));
        }
        eprintln!(
            "{:.2}s without taskline, {:.2}s under it",
            bare.wall_ns as f64 / 1e9,
            row.wall_ns as f64 / 1e9
        );
        rows.push(row);
    }
    print_table(o, &rows);
    Ok(())
}

/// Runs `variant` in a child process (`bare`: without taskline) and reads
/// its result line.
fn run_variant(exe: &Path, args: &[String], variant: Variant, bare: bool) -> Result<Row, String> {
    let mut cmd = Command::new(exe);
    cmd.args(args).args(["--child", variant.name()]);
    if bare {
        cmd.arg("--bare");
    }
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start child: {e}"))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", variant.name(), output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(Row::decode)
        .ok_or_else(|| format!("{}: child printed no result", variant.name()))
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.0}ms", ns as f64 / 1e6)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.0}µs", ns as f64 / 1e3)
    }
}

fn utilization(r: &Row) -> f64 {
    let capacity = r.wall_ns as f64 * r.workers as f64;
    if capacity == 0.0 {
        0.0
    } else {
        (r.busy_ns as f64 / capacity).min(1.0)
    }
}

fn print_table(o: &Options, rows: &[Row]) {
    let serial = rows.iter().find(|r| r.variant == Variant::Serial.name());
    println!();
    println!(
        "| variant | wall ms | without taskline ms | taskline cost | speedup vs serial | tasks spawned | polls | wakes | sched delay p50 | sched delay p99 | max runnable | worker utilization | workers parked | work tasks waiting | peak RSS MiB | dropped |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let speedup = serial
            .map(|s| format!("{:.2}x", s.wall_ns as f64 / r.wall_ns.max(1) as f64))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {} | {:.2}x | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {} ms | {} ms | {:.0} | {} |",
            r.variant,
            ms(r.wall_ns),
            ms(r.bare_wall_ns),
            r.wall_ns as f64 / r.bare_wall_ns.max(1) as f64,
            speedup,
            r.spawned,
            r.polls,
            r.wakes,
            us(r.sched_p50_ns),
            us(r.sched_p99_ns),
            r.max_runnable,
            utilization(r) * 100.0,
            ms(r.parked_ns),
            ms(r.task_idle_ns),
            r.peak_rss_kib as f64 / 1024.0,
            r.dropped,
        );
    }
    println!();
    println!(
        "taskline cost = wall time under taskline ({}{}) / the same variant without taskline, one run each in this invocation.",
        if !taskline::capabilities().task_events {
            "stable Tokio: every task spawned through taskline's wrapper"
        } else if o.wrap {
            "hooks + subscriber, tasks spawned through taskline's wrapper"
        } else {
            "hooks + subscriber"
        },
        if o.trace { " + trace file" } else { "" }
    );
    println!();
    println!("What the numbers say:");
    for r in rows {
        println!("  {:<16} {}", r.variant, verdict(r, rows));
    }
    let checksums: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.checksum).collect();
    println!();
    if checksums.len() == 1 {
        println!(
            "All variants rendered the same image (checksum {:016x}); PNG: {}",
            rows[0].checksum,
            o.out.join("mandelbrot.png").display()
        );
    } else {
        println!("WARNING: the variants rendered different images: {checksums:x?}");
    }
    if o.profile {
        println!();
        println!(
            "CPU profiles (`go tool pprof -top -tagfocus=spawn_site=SITE FILE`, or `cargo run -p taskline-cli -- flamegraph FILE`):"
        );
        for r in rows {
            let Ok(v) = r.variant.parse::<Variant>() else {
                continue;
            };
            let path = profile_path(&o.out, v);
            if r.cpu_site.is_empty() {
                println!(
                    "  {}  {} samples, none in a task with a known spawn site",
                    path.display(),
                    r.cpu_samples
                );
            } else {
                println!(
                    "  {}  {} samples: spawn site {} took {:.0}% of the CPU, {:.0}% of it in {}",
                    path.display(),
                    r.cpu_samples,
                    r.cpu_site,
                    r.cpu_site_permille as f64 / 10.0,
                    r.cpu_function_permille as f64 / 10.0,
                    r.cpu_function
                );
            }
        }
    }
    if o.trace {
        println!(
            "Perfetto traces (open in https://ui.perfetto.dev, or `cargo run -p taskline-cli -- report FILE`):"
        );
        for r in rows {
            if let Ok(v) = r.variant.parse::<Variant>() {
                let per_event = r.trace_bytes as f64 / r.trace_events.max(1) as f64;
                let samples = if r.trace_cpu_samples > 0 {
                    format!(
                        ", {} CPU samples on the workers' tracks (counted in the bytes)",
                        r.trace_cpu_samples
                    )
                } else {
                    String::new()
                };
                println!(
                    "  {}  ({:.1} MiB, {} events, {:.1} bytes/event{samples})",
                    trace_path(&o.out, v).display(),
                    r.trace_bytes as f64 / (1 << 20) as f64,
                    r.trace_events,
                    per_event
                );
            }
        }
    }
}

/// One sentence per variant, derived from its numbers (compared with the
/// other variants of the same run), never from its name.
fn verdict(r: &Row, rows: &[Row]) -> String {
    let util = utilization(r);
    let best_wall = rows.iter().map(|x| x.wall_ns).min().unwrap_or(r.wall_ns);
    let slower = r.wall_ns as f64 / best_wall.max(1) as f64;
    let worker_time = r.wall_ns as f64 * r.workers as f64;
    // Tasks' waiting time per unit of worker time: how much of the pool sat
    // blocked waiting for the next item (channel waits show up here).
    let waiting = r.task_idle_ns as f64 / worker_time.max(1.0);
    let many_tasks = r.spawned as f64 > 50.0 * r.workers as f64 * 64.0;
    let mut words = Vec::new();
    if r.workers > 1 && util < 0.65 && !many_tasks {
        words.push(format!(
            "idle workers: the {} workers were busy only {:.0}% of the wall time (parked {} ms in total), so most of the machine sat unused",
            r.workers,
            util * 100.0,
            ms(r.parked_ns)
        ));
    }
    if many_tasks && (r.max_runnable > 1000 || r.sched_p99_ns > 1_000_000) {
        words.push(format!(
            "flooded scheduler: {} tasks, up to {} runnable at once, p99 scheduling delay {}; each task does so little that spawning and scheduling dominate",
            r.spawned,
            r.max_runnable,
            us(r.sched_p99_ns)
        ));
    }
    if waiting > 0.25 && r.polls as f64 > 4.0 * r.spawned.max(1) as f64 {
        words.push(format!(
            "blocked on the channel: tasks spent {} ms waiting ({:.0}% of worker time) over {} polls, handing work over one item at a time",
            ms(r.task_idle_ns),
            waiting * 100.0,
            r.polls
        ));
    }
    if words.is_empty() {
        if util >= 0.8 {
            words.push(format!(
                "balanced: workers busy {:.0}% of the time, p99 scheduling delay {}, little waiting ({:.0}% of worker time)",
                util * 100.0,
                us(r.sched_p99_ns),
                waiting * 100.0
            ));
        } else {
            words.push(format!(
                "workers busy {:.0}% of the time, waiting {:.0}% of worker time, p99 scheduling delay {}",
                util * 100.0,
                waiting * 100.0,
                us(r.sched_p99_ns)
            ));
        }
    }
    let mut line = words.join("; ");
    if slower > 1.05 {
        line.push_str(&format!(" ({slower:.2}x the fastest variant's wall time)"));
    } else {
        line.push_str(" (fastest)");
    }
    line
}
