//! The overhead table: the same workloads under no instrumentation,
//! taskline (hooks, layer, both; hooks + taskline's subscriber, with and
//! without resource waits; the hooks without aggregation, delivering to no
//! sink or to a Perfetto file; the hooks plus the CPU profiler at 99 Hz),
//! the tracing floor, tokio-metrics,
//! console-subscriber and dial9.
//!
//! ```text
//! cargo run --release -p taskline-bench --example overhead --features peers -- \
//!     [--size 1024] [--reps 5] [--workers N] [--yields 200000] \
//!     [--configs none,taskline-hooks,...] [--workloads task-per-pixel,...] \
//!     [--markdown] [--max-rss-mib 8192] [--timeout-s 600] [--ring-capacity 65536] [--strict]
//! ```
//!
//! Every (workload, configuration) run is a fresh child process (this binary
//! re-executed with the hidden `--child` flag), so global tracing subscribers
//! can be installed per run and the peak RSS (`VmHWM`) is that run's own.
//! Runs are interleaved round-robin over rounds (the configuration order is
//! rotated every round) so machine noise hits every configuration alike; the
//! ratio column is the median of per-round ratios to `none`.
//! Without `--features peers`, only the taskline configurations and the
//! baselines are available.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskline_bench::{Params, Spawner, Workload, peak_rss_kib, proc_status_kib, run};
use taskline_bench::{median, median_ci95};

/// The result line a child prints and the parent parses.
const RESULT_TAG: &str = "TASKLINE-BENCH-RESULT";

/// An instrumentation configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Config {
    None,
    TasklineHooks,
    TasklineProfile,
    TasklineLayer,
    TasklineBoth,
    TasklineRecordOnly,
    TasklineTrace,
    TasklineFull,
    TasklineFullResources,
    TokioFloor,
    TasklineWrap,
    RegistryEmpty,
    TokioMetrics,
    Console,
    Dial9,
    Dial9Tasks,
}

impl Config {
    const ALL: [Config; 16] = [
        Config::None,
        Config::TasklineHooks,
        Config::TasklineProfile,
        Config::TasklineLayer,
        Config::TasklineBoth,
        Config::TasklineRecordOnly,
        Config::TasklineTrace,
        Config::TasklineFull,
        Config::TasklineFullResources,
        Config::TokioFloor,
        Config::TasklineWrap,
        Config::RegistryEmpty,
        Config::TokioMetrics,
        Config::Console,
        Config::Dial9,
        Config::Dial9Tasks,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::None => "none",
            Config::TasklineHooks => "taskline-hooks",
            Config::TasklineProfile => "taskline-profile",
            Config::TasklineLayer => "taskline-layer",
            Config::TasklineBoth => "taskline-both",
            Config::TasklineRecordOnly => "taskline-record-only",
            Config::TasklineTrace => "taskline-trace",
            Config::TasklineFull => "taskline-full",
            Config::TasklineFullResources => "taskline-full-resources",
            Config::TokioFloor => "tokio-floor",
            Config::TasklineWrap => "taskline-wrap",
            Config::RegistryEmpty => "registry-empty",
            Config::TokioMetrics => "tokio-metrics",
            Config::Console => "console",
            Config::Dial9 => "dial9",
            Config::Dial9Tasks => "dial9-tasks",
        }
    }

    fn parse(s: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.name() == s)
    }

    fn is_peer(self) -> bool {
        matches!(
            self,
            Config::TokioMetrics | Config::Console | Config::Dial9 | Config::Dial9Tasks
        )
    }

    fn available(self) -> bool {
        !self.is_peer() || cfg!(feature = "peers")
    }
}

#[derive(Clone, Debug)]
struct Args {
    params: Params,
    reps: usize,
    configs: Vec<Config>,
    workloads: Vec<Workload>,
    markdown: bool,
    max_rss_mib: u64,
    timeout: Duration,
    /// `RecorderConfig::ring_capacity` of the taskline configurations
    /// (`None` = the default).
    ring_capacity: Option<usize>,
    /// Exit 1 if any run failed or changed the checksum (for CI smoke runs;
    /// without it a peer blowing the memory cap is a table entry, not an error).
    strict: bool,
    child: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: overhead [--size N] [--reps R] [--workers W] [--yields Y] [--configs a,b] \
         [--workloads a,b] [--markdown] [--max-rss-mib M] [--timeout-s S] \
         [--ring-capacity N] [--strict]\n\
         configs: {}\nworkloads: {}",
        Config::ALL.map(Config::name).join(","),
        Workload::ALL.map(Workload::name).join(",")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut a = Args {
        params: Params {
            size: 1024,
            workers,
            yields: 200_000,
        },
        reps: 5,
        configs: Config::ALL.into_iter().filter(|c| c.available()).collect(),
        workloads: Workload::ALL.to_vec(),
        markdown: false,
        max_rss_mib: 8192,
        timeout: Duration::from_secs(600),
        ring_capacity: None,
        strict: false,
        child: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        let num = |v: String| v.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--size" => a.params.size = num(value()),
            "--reps" => a.reps = num(value()).max(1),
            "--workers" => a.params.workers = num(value()).max(1),
            "--yields" => a.params.yields = num(value()),
            "--max-rss-mib" => a.max_rss_mib = num(value()) as u64,
            "--timeout-s" => a.timeout = Duration::from_secs(num(value()) as u64),
            "--ring-capacity" => a.ring_capacity = Some(num(value())),
            "--markdown" => a.markdown = true,
            "--strict" => a.strict = true,
            "--child" => a.child = true,
            "--configs" => {
                a.configs = value()
                    .split(',')
                    .map(|s| Config::parse(s).unwrap_or_else(|| usage()))
                    .collect();
            }
            "--workloads" => {
                a.workloads = value()
                    .split(',')
                    .map(|s| Workload::parse(s).unwrap_or_else(|| usage()))
                    .collect();
            }
            "--bench" => {} // passed by `cargo bench`-style runners; ignore
            _ => usage(),
        }
    }
    for c in &a.configs {
        if !c.available() {
            eprintln!("config `{}` needs `--features peers`", c.name());
            std::process::exit(2);
        }
    }
    a
}

fn main() {
    let args = parse_args();
    if args.child {
        child(&args);
    } else {
        parent(&args);
    }
}

// ---------------------------------------------------------------- child ---

/// What a child measured.
#[derive(Clone, Debug, Default)]
struct RunResult {
    wall_ns: u64,
    rss_kib: u64,
    checksum: u64,
    /// Polls the tool says it recorded (`None` = the tool does not say).
    polls: Option<u64>,
    /// Events the tool dropped (`None` = the tool does not say).
    dropped: Option<u64>,
}

/// Tool state kept alive for the run, finished after the timed region.
#[derive(Default)]
struct Installed {
    spawner: Spawner,
    taskline: Option<taskline_core::Recorder>,
    /// `taskline-trace`: the trace file and the writer's handle.
    trace: Option<(
        std::path::PathBuf,
        taskline_trace::TraceHandle<std::fs::File>,
    )>,
    /// `taskline-profile`: the CPU profiler.
    profiler: Option<taskline_profile::ProfilerGuard>,
    #[cfg(feature = "peers")]
    dial9: Option<dial9::Recorder>,
    #[cfg(feature = "peers")]
    tmp: Option<std::path::PathBuf>,
}

/// The recorder of a taskline configuration: the defaults, with or without
/// aggregation, and `--ring-capacity` if given (a bad value exits with the
/// recorder's own message).
fn taskline_recorder(args: &Args, aggregate: bool) -> taskline_core::Recorder {
    let defaults = taskline_core::RecorderConfig::default();
    let config = taskline_core::RecorderConfig {
        aggregate,
        ring_capacity: args.ring_capacity.unwrap_or(defaults.ring_capacity),
        ..defaults
    };
    taskline_core::Recorder::new(config).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    })
}

/// A subscriber that takes exactly the Tokio callsites taskline's subscriber
/// records (task spans, waker events) and does nothing with them: the floor
/// of Tokio's own `tracing` instrumentation (span construction, `Instrumented`
/// enter/exit, waker event dispatch), which any `tracing`-based wake source
/// pays before recording anything.
struct TokioFloor;

impl tracing::Subscriber for TokioFloor {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        let wanted = (meta.is_span() && meta.name() == "runtime.spawn")
            || meta.target() == "tokio::task::waker";
        if wanted {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A layer with no behaviour: what the tracing registry alone costs.
struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

fn child(args: &Args) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let (&workload, &config) = (&args.workloads[0], &args.configs[0]);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(args.params.workers).enable_all();
    #[allow(unused_mut)]
    let mut installed = Installed::default();
    #[allow(unused_mut)]
    let mut runtime: Option<tokio::runtime::Runtime> = None;

    match config {
        Config::None => {}
        Config::RegistryEmpty => tracing_subscriber::registry().with(NoopLayer).init(),
        Config::TokioFloor => {
            // The hooks too, so the difference to taskline-full is what the
            // subscriber itself does.
            let recorder = taskline_recorder(args, true);
            taskline_core::instrument(&mut builder, &recorder);
            tracing::subscriber::set_global_default(TokioFloor).expect("first subscriber");
            installed.taskline = Some(recorder);
        }
        Config::TasklineHooks | Config::TasklineLayer | Config::TasklineBoth => {
            let recorder = taskline_recorder(args, true);
            if config != Config::TasklineLayer {
                taskline_core::instrument(&mut builder, &recorder);
            }
            if config != Config::TasklineHooks {
                tracing_subscriber::registry()
                    .with(taskline_core::TasklineLayer::new(&recorder))
                    .init();
            }
            installed.taskline = Some(recorder);
        }
        // The hooks plus the CPU profiler at its default 99 Hz, sampling
        // every worker: what `.cpu_profile(..)` adds to `taskline-hooks`.
        Config::TasklineProfile => {
            use taskline_profile::ProfileRuntimeExt;
            let recorder = taskline_recorder(args, true);
            taskline_core::instrument(&mut builder, &recorder);
            let profiler = taskline_profile::Profiler::start(
                taskline_profile::ProfilerConfig::default().recorder(&recorder),
            )
            .expect("start the CPU profiler");
            builder.profile_threads(&profiler.handle());
            installed.profiler = Some(profiler);
            installed.taskline = Some(recorder);
        }
        // What the README recommends for full recording: the hooks plus
        // taskline's subscriber (wakes, names, blocking sections) in front
        // of a registry; `-resources` also records resource waits.
        Config::TasklineFull | Config::TasklineFullResources => {
            let recorder = taskline_recorder(args, true);
            taskline_core::instrument(&mut builder, &recorder);
            taskline_core::TasklineSubscriber::new(&recorder, tracing_subscriber::registry())
                .expect("registry-backed")
                .with_resource_waits(config == Config::TasklineFullResources)
                .try_init()
                .expect("first subscriber");
            installed.taskline = Some(recorder);
        }
        // The hooks without the in-process aggregates: `taskline-record-only`
        // delivers the events to no sink (what recording and the consumer's
        // merge cost alone), `taskline-trace` writes them to a Perfetto file
        // (dial9's deal: record now, analyse later).
        Config::TasklineRecordOnly | Config::TasklineTrace => {
            let recorder = taskline_recorder(args, false);
            taskline_core::instrument(&mut builder, &recorder);
            if config == Config::TasklineTrace {
                let path = std::env::temp_dir()
                    .join(format!("taskline-bench-{}.pftrace", std::process::id()));
                let (sink, handle) =
                    taskline_trace::PerfettoWriter::create(&path).expect("trace file");
                recorder.add_sink(sink);
                installed.trace = Some((path, handle));
            }
            installed.taskline = Some(recorder);
        }
        // The stable-Tokio source: no hooks, no tracing; every task is
        // spawned through `Recorder::spawn` (the wrapper sees its own wakes).
        Config::TasklineWrap => {
            let recorder = taskline_recorder(args, true);
            installed.spawner = Spawner::Taskline(recorder.clone());
            installed.taskline = Some(recorder);
        }
        #[cfg(feature = "peers")]
        Config::TokioMetrics => {
            installed.spawner = Spawner::Monitor(tokio_metrics::TaskMonitor::new())
        }
        #[cfg(feature = "peers")]
        Config::Console => {
            let layer = console_subscriber::ConsoleLayer::builder()
                .server_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .spawn();
            tracing_subscriber::registry().with(layer).init();
        }
        // `dial9` is dial9's default attachment: poll start/end, park/unpark
        // and worker metrics, but no task spawn/terminate events (its
        // `task_tracking_enabled` defaults to false). `dial9-tasks` turns
        // task tracking on, recording the same transitions as taskline's
        // hooks: the like-for-like comparison.
        #[cfg(feature = "peers")]
        Config::Dial9 | Config::Dial9Tasks => {
            use dial9::Dial9HandleTokioExt;
            let dir =
                std::env::temp_dir().join(format!("taskline-bench-dial9-{}", std::process::id()));
            let writer = dial9::DiskBuffer::builder()
                .base_path(&dir)
                .max_total_size(4 << 30)
                .build()
                .expect("dial9 trace writer");
            let recorder = dial9::recorder(writer).build();
            let rt = recorder
                .handle()
                .attach_tokio_runtime(
                    builder,
                    dial9::TokioAttachOptions::builder()
                        .task_tracking_enabled(config == Config::Dial9Tasks)
                        .build(),
                )
                .expect("attach dial9");
            runtime = Some(rt);
            installed.dial9 = Some(recorder);
            installed.tmp = Some(dir);
            // `builder` was moved into dial9; rebuild one for type symmetry
            builder = tokio::runtime::Builder::new_multi_thread();
        }
        #[cfg(not(feature = "peers"))]
        _ => unreachable!("checked in parse_args"),
    }
    let runtime = runtime.unwrap_or_else(|| builder.build().expect("build runtime"));

    let start = Instant::now();
    let checksum = runtime.block_on(run(workload, &installed.spawner, args.params));
    let wall_ns = start.elapsed().as_nanos() as u64;
    let rss_kib = peak_rss_kib().unwrap_or(0);

    // Outside the timed region: flush the tools and ask what they recorded.
    let mut result = RunResult {
        wall_ns,
        rss_kib,
        checksum,
        polls: None,
        dropped: None,
    };
    if let Some(recorder) = installed.taskline.take() {
        // Let the runtime's worker threads go first so their last events land.
        drop(runtime);
        if let Some(profiler) = installed.profiler.take() {
            let profile = profiler.stop().expect("stop the CPU profiler");
            if profile.total() == 0 {
                eprintln!(
                    "the CPU profiler took no sample: the configuration is broken ({:?})",
                    profile.stats
                );
                std::process::exit(4);
            }
        }
        let snapshot = recorder.snapshot();
        let stats = snapshot.recorder.unwrap_or_else(|| recorder.stats());
        result.dropped = Some(stats.dropped);
        // Without aggregation there is no poll count: check that events
        // flowed (and, with a trace, that they were written).
        let recorded = if stats.aggregating {
            result.polls = Some(snapshot.polls);
            snapshot.polls
        } else {
            stats.delivered
        };
        if let Some((path, handle)) = installed.trace.take() {
            let finished = handle.finish_recorder(&recorder);
            let written = handle.events_written();
            // The trace writer's own queue can overflow too: those events
            // are lost to the trace just like ring drops.
            result.dropped = result
                .dropped
                .map(|d| d + handle.events_dropped_by_writer());
            let _ = std::fs::remove_file(&path);
            if let Err(e) = finished {
                eprintln!("taskline trace failed: {e}");
                std::process::exit(4);
            }
            if written == 0 {
                eprintln!("taskline wrote an empty trace: the configuration is broken");
                std::process::exit(4);
            }
        }
        if recorded == 0 {
            eprintln!("taskline recorded nothing: the configuration is broken ({stats:?})");
            std::process::exit(4);
        }
        recorder.shutdown();
        print_result(&result);
    }
    #[cfg(feature = "peers")]
    {
        if let Spawner::Monitor(m) = &installed.spawner {
            result.polls = Some(m.cumulative().total_poll_count);
        }
        if let Some(recorder) = installed.dial9.take() {
            drop(runtime);
            recorder.graceful_shutdown(Duration::from_secs(30));
            if let Some(dir) = installed.tmp.take() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    print_result(&result);
}

fn print_result(result: &RunResult) -> ! {
    println!(
        "{RESULT_TAG} wall_ns={} rss_kib={} checksum={} polls={} dropped={}",
        result.wall_ns,
        result.rss_kib,
        result.checksum,
        result.polls.map_or("-".into(), |p| p.to_string()),
        result.dropped.map_or("-".into(), |d| d.to_string()),
    );
    // Do not wait for console's server thread or a runtime's blocking pool.
    std::process::exit(0);
}

// --------------------------------------------------------------- parent ---

/// Outcome of one child run.
#[derive(Clone, Debug)]
enum Outcome {
    Ok(RunResult),
    Failed(String),
}

fn parse_result(line: &str) -> Option<RunResult> {
    let rest = line.strip_prefix(RESULT_TAG)?;
    let mut r = RunResult::default();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        let opt = || v.parse::<u64>().ok();
        match k {
            "wall_ns" => r.wall_ns = opt()?,
            "rss_kib" => r.rss_kib = opt()?,
            "checksum" => r.checksum = opt()?,
            "polls" => r.polls = opt(),
            "dropped" => r.dropped = opt(),
            _ => {}
        }
    }
    Some(r)
}

fn run_child(args: &Args, workload: Workload, config: Config) -> Outcome {
    let exe = std::env::current_exe().expect("current_exe");
    let p = args.params;
    let mut child = match Command::new(exe)
        .args([
            "--child",
            "--workloads",
            workload.name(),
            "--configs",
            config.name(),
        ])
        .args([
            "--size",
            &p.size.to_string(),
            "--workers",
            &p.workers.to_string(),
        ])
        .args(["--yields", &p.yields.to_string()])
        .args(
            args.ring_capacity
                .map(|n| ["--ring-capacity".to_string(), n.to_string()])
                .into_iter()
                .flatten(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("spawn: {e}")),
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| parse_result(&l))
    });
    // Watchdog: a run that outgrows the memory cap or the timeout is killed.
    let start = Instant::now();
    let status_path = format!("/proc/{pid}/status");
    let mut killed = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Outcome::Failed(format!("wait: {e}")),
        }
        let rss_mib = proc_status_kib(&status_path, "VmRSS:").unwrap_or(0) / 1024;
        if killed.is_none() && rss_mib > args.max_rss_mib {
            killed = Some(format!(
                "killed at RSS {rss_mib} MiB > cap {}",
                args.max_rss_mib
            ));
        } else if killed.is_none() && start.elapsed() > args.timeout {
            killed = Some(format!("killed after {:?} timeout", args.timeout));
        }
        if killed.is_some() {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let result = reader.join().ok().flatten();
    match (killed, result) {
        (Some(why), _) => Outcome::Failed(why),
        (None, Some(r)) if status.success() => Outcome::Ok(r),
        (None, _) => Outcome::Failed(format!("child failed: {status}")),
    }
}

fn parent(args: &Args) {
    let p = args.params;
    eprintln!(
        "overhead: size {0}x{0}, {1} workers, {2} yields/task, {3} reps, configs [{4}], workloads [{5}]",
        p.size,
        p.workers,
        p.yields,
        args.reps,
        args.configs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
        args.workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    // results[(workload, config)][round]
    let mut results: BTreeMap<(usize, Config), Vec<Option<RunResult>>> = BTreeMap::new();
    let mut failures: BTreeMap<(usize, Config), String> = BTreeMap::new();
    let total = args.reps * args.workloads.len() * args.configs.len();
    let mut done = 0;
    for round in 0..args.reps {
        for (wi, &workload) in args.workloads.iter().enumerate() {
            let n = args.configs.len();
            for k in 0..n {
                let config = args.configs[(k + round) % n];
                done += 1;
                let outcome = if failures.contains_key(&(wi, config)) {
                    // A run that blew the cap or timed out will again: skip it.
                    Outcome::Failed("skipped".into())
                } else {
                    run_child(args, workload, config)
                };
                let slot = results
                    .entry((wi, config))
                    .or_insert_with(|| vec![None; args.reps]);
                match outcome {
                    Outcome::Ok(r) => {
                        eprintln!(
                            "[{done}/{total}] round {round} {} {}: {:.1} ms, {} MiB",
                            workload.name(),
                            config.name(),
                            r.wall_ns as f64 / 1e6,
                            r.rss_kib / 1024
                        );
                        slot[round] = Some(r);
                    }
                    Outcome::Failed(why) => {
                        eprintln!(
                            "[{done}/{total}] round {round} {} {}: {why}",
                            workload.name(),
                            config.name()
                        );
                        failures.entry((wi, config)).or_insert(why);
                    }
                }
            }
        }
    }
    let mismatches = print_table(args, &results, &failures);
    if args.strict && (!failures.is_empty() || mismatches > 0) {
        eprintln!(
            "overhead --strict: {} failed (workload, config) pairs, {mismatches} checksum mismatches",
            failures.len()
        );
        std::process::exit(1);
    }
}

fn print_table(
    args: &Args,
    results: &BTreeMap<(usize, Config), Vec<Option<RunResult>>>,
    failures: &BTreeMap<(usize, Config), String>,
) -> usize {
    let p = args.params;
    let header = [
        "workload",
        "config",
        "median ms",
        "min..max ms",
        "ratio",
        "ratio 95% CI",
        "ratio min..max",
        "peak RSS MiB",
        "ΔRSS MiB",
        "polls",
        "dropped",
        "ns/poll",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut checksum_mismatch = Vec::new();
    for (wi, &workload) in args.workloads.iter().enumerate() {
        let base = results.get(&(wi, Config::None));
        for &config in &args.configs {
            let Some(runs) = results.get(&(wi, config)) else {
                continue;
            };
            let ok: Vec<&RunResult> = runs.iter().flatten().collect();
            if ok.is_empty() {
                let why = failures
                    .get(&(wi, config))
                    .map_or("no result", String::as_str);
                let mut row = vec![
                    workload.name().to_string(),
                    config.name().to_string(),
                    why.to_string(),
                ];
                row.resize(header.len(), String::new());
                rows.push(row);
                continue;
            }
            let mut walls: Vec<f64> = ok.iter().map(|r| r.wall_ns as f64 / 1e6).collect();
            let (min, max) = walls
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let med = median(&mut walls);
            let mut rss: Vec<f64> = ok.iter().map(|r| r.rss_kib as f64 / 1024.0).collect();
            let rss_med = median(&mut rss);
            // Per-round ratios and per-round differences to `none`.
            let mut ratios = Vec::new();
            let mut diffs_ns = Vec::new();
            let mut base_rss = Vec::new();
            if let Some(base) = base {
                for (r, b) in runs.iter().zip(base) {
                    if let (Some(r), Some(b)) = (r, b) {
                        ratios.push(r.wall_ns as f64 / b.wall_ns as f64);
                        diffs_ns.push(r.wall_ns as f64 - b.wall_ns as f64);
                        base_rss.push(b.rss_kib as f64 / 1024.0);
                        if r.checksum != b.checksum {
                            checksum_mismatch.push(format!(
                                "{} {}",
                                workload.name(),
                                config.name()
                            ));
                        }
                    }
                }
            }
            let (rmin, rmax) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let ratio_ci = median_ci95(&ratios);
            let ratio = median(&mut ratios);
            let drss = rss_med - median(&mut base_rss);
            let mut polls: Vec<f64> = ok
                .iter()
                .filter_map(|r| r.polls)
                .map(|x| x as f64)
                .collect();
            let mut dropped: Vec<f64> = ok
                .iter()
                .filter_map(|r| r.dropped)
                .map(|x| x as f64)
                .collect();
            let ns_per_poll =
                if workload == Workload::Yield && config != Config::None && !diffs_ns.is_empty() {
                    format!("{:.1}", median(&mut diffs_ns) / p.yield_polls() as f64)
                } else {
                    String::new()
                };
            let fmt_opt = |v: &mut Vec<f64>| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.0}", median(v))
                }
            };
            let partial = if ok.len() < runs.len() {
                format!(" ({}/{} ok)", ok.len(), runs.len())
            } else {
                String::new()
            };
            rows.push(vec![
                workload.name().to_string(),
                format!("{}{partial}", config.name()),
                format!("{med:.1}"),
                format!("{min:.1}..{max:.1}"),
                if ratio.is_nan() {
                    "-".into()
                } else {
                    format!("{ratio:.3}x")
                },
                ratio_ci.map_or("-".into(), |(lo, hi)| format!("{lo:.3}..{hi:.3}")),
                if ratio.is_nan() {
                    "-".into()
                } else {
                    format!("{rmin:.3}..{rmax:.3}")
                },
                format!("{rss_med:.1}"),
                if drss.is_nan() {
                    "-".into()
                } else {
                    format!("{drss:+.1}")
                },
                fmt_opt(&mut polls),
                fmt_opt(&mut dropped),
                ns_per_poll,
            ]);
        }
    }
    println!();
    println!(
        "size {0}x{0}, {1} workers, yield workload {2} tasks x {3} yields = {4} polls, {5} rounds (medians; ratio = median of per-round ratios to `none`, 95% CI of that median by bootstrap from 5 rounds)",
        p.size,
        p.workers,
        p.yield_tasks(),
        p.yields,
        p.yield_polls(),
        args.reps
    );
    if args.markdown {
        println!("| {} |", header.join(" | "));
        println!(
            "|{}|",
            header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
        );
        for row in &rows {
            println!("| {} |", row.join(" | "));
        }
    } else {
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(header.to_vec()));
        for row in &rows {
            println!("{}", line(row.iter().map(String::as_str).collect()));
        }
    }
    if !checksum_mismatch.is_empty() {
        println!(
            "CHECKSUM MISMATCH (a tool changed the result!): {}",
            checksum_mismatch.join(", ")
        );
    }
    checksum_mismatch.len()
}
