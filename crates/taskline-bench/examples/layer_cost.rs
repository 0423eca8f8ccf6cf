//! What `TasklineLayer` itself costs on a wake-heavy workload, separated from
//! the floor of `tracing_subscriber::registry()` with Tokio's instrumentation.
//!
//! ```text
//! cargo run --release -p taskline-bench \
//!     --example layer_cost -- [--rounds 5] [--pairs 64] [--trips 20000] \
//!     [--yielders 64] [--yields 40000] [--configs none,registry,...]
//! ```
//!
//! Configurations (each run is a fresh child process of this binary, so each
//! can install its own global dispatcher):
//!
//! | name | runtime hooks | `registry()` | `TasklineLayer` | floor |
//! |---|---|---|---|---|
//! | `none` | | | | - |
//! | `registry` | | yes | | `none` |
//! | `layer` | | yes | yes | `registry` |
//! | `hooks` | yes | | | `none` |
//! | `hooks+registry` | yes | yes | | `hooks` |
//! | `hooks+layer` | yes | yes | yes | `hooks+registry` |
//!
//! The workload runs on a 2-worker multi-thread runtime (`--workers`) in
//! three timed phases: `mpsc` (pairs of tasks ping-ponging over unbounded
//! mpsc channels; a round trip is two polls and two wakes), `notify` (the
//! same over `Notify`) and `yield` (tasks looping on `yield_now`; one poll
//! and one `wake_by_ref` per yield). Each phase reports wall-clock ns per
//! operation (one round trip, or one yield), plus the CPU time per
//! operation of the runtime's worker threads (the producer side, where the
//! layer runs; Linux per-thread CPU clocks) and of taskline's consumer
//! thread. On a noisy machine the worker CPU column is the steadier one:
//! other processes stretch wall time but not the workers' own CPU time.
//! Rounds are
//! interleaved and the configuration order rotates every round; ratios are
//! medians of per-round ratios, so machine noise hits every configuration
//! alike.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use taskline_bench::median;
use tokio::sync::{Notify, mpsc};

/// The result line a child prints and the parent parses.
const RESULT_TAG: &str = "LAYER-COST-RESULT";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Config {
    None,
    Registry,
    Layer,
    Hooks,
    HooksRegistry,
    HooksLayer,
}

impl Config {
    const ALL: [Config; 6] = [
        Config::None,
        Config::Registry,
        Config::Layer,
        Config::Hooks,
        Config::HooksRegistry,
        Config::HooksLayer,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::None => "none",
            Config::Registry => "registry",
            Config::Layer => "layer",
            Config::Hooks => "hooks",
            Config::HooksRegistry => "hooks+registry",
            Config::HooksLayer => "hooks+layer",
        }
    }

    fn parse(s: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The configuration this one adds exactly one thing to.
    fn floor(self) -> Option<Config> {
        match self {
            Config::None => None,
            Config::Registry | Config::Hooks => Some(Config::None),
            Config::Layer => Some(Config::Registry),
            Config::HooksRegistry => Some(Config::Hooks),
            Config::HooksLayer => Some(Config::HooksRegistry),
        }
    }

    fn hooks(self) -> bool {
        matches!(
            self,
            Config::Hooks | Config::HooksRegistry | Config::HooksLayer
        )
    }

    fn registry(self) -> bool {
        matches!(
            self,
            Config::Registry | Config::Layer | Config::HooksRegistry | Config::HooksLayer
        )
    }

    fn layer(self) -> bool {
        matches!(self, Config::Layer | Config::HooksLayer)
    }
}

const PHASES: [&str; 3] = ["mpsc", "notify", "yield"];

#[derive(Clone, Debug)]
struct Args {
    rounds: usize,
    workers: usize,
    pairs: usize,
    trips: usize,
    yielders: usize,
    yields: usize,
    configs: Vec<Config>,
    child: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: layer_cost [--rounds R] [--workers W] [--pairs P] [--trips T] \
         [--yielders Y] [--yields N] [--configs a,b]\nconfigs: {}",
        Config::ALL.map(Config::name).join(",")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        rounds: 5,
        workers: 2,
        pairs: 64,
        trips: 20_000,
        yielders: 64,
        yields: 40_000,
        configs: Config::ALL.to_vec(),
        child: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        let num = |v: String| v.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--rounds" => a.rounds = num(value()).max(1),
            "--workers" => a.workers = num(value()).max(1),
            "--pairs" => a.pairs = num(value()).max(1),
            "--trips" => a.trips = num(value()).max(1),
            "--yielders" => a.yielders = num(value()).max(1),
            "--yields" => a.yields = num(value()).max(1),
            "--configs" => {
                a.configs = value()
                    .split(',')
                    .map(|s| Config::parse(s).unwrap_or_else(|| usage()))
                    .collect();
            }
            "--child" => a.child = true,
            "--bench" => {} // passed by `cargo bench`-style runners
            _ => usage(),
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

/// Pairs of tasks ping-ponging a counter over unbounded mpsc channels.
async fn mpsc_phase(pairs: usize, trips: usize) -> u64 {
    let mut handles = Vec::with_capacity(pairs * 2);
    for _ in 0..pairs {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
        handles.push(tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v + 1).is_err() {
                    break;
                }
            }
            0
        }));
        handles.push(tokio::spawn(async move {
            let mut v = 0;
            for _ in 0..trips {
                let _ = ping_tx.send(v);
                v = pong_rx.recv().await.unwrap_or(v);
            }
            v
        }));
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap_or(0);
    }
    sum
}

/// Pairs of tasks ping-ponging over two `Notify`s.
async fn notify_phase(pairs: usize, trips: usize) -> u64 {
    let mut handles = Vec::with_capacity(pairs * 2);
    for _ in 0..pairs {
        let ping = Arc::new(Notify::new());
        let pong = Arc::new(Notify::new());
        let (ping2, pong2) = (ping.clone(), pong.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..trips {
                ping2.notified().await;
                pong2.notify_one();
            }
            0
        }));
        handles.push(tokio::spawn(async move {
            for _ in 0..trips {
                ping.notify_one();
                pong.notified().await;
            }
            trips as u64
        }));
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap_or(0);
    }
    sum
}

/// Tasks looping on `yield_now`.
async fn yield_phase(tasks: usize, yields: usize) -> u64 {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                yields as u64
            })
        })
        .collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap_or(0);
    }
    sum
}

/// Thread name of the runtime's threads.
const WORKER_NAME: &str = "lc-worker";
/// `comm` of the recorder's consumer thread (`taskline-consumer`, cut to 15 bytes).
const CONSUMER_NAME: &str = "taskline-consum";

/// CPU time (ns) of this process's threads whose name is `name`, from the
/// per-thread CPU clocks (Linux; 0 elsewhere).
fn cpu_ns(name: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total = 0;
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        // The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
        let clock = ((!(tid as u32)) << 3) as i32 | 6;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out pointer; an invalid clock (the thread
        // exited) only makes the call fail.
        if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
            total += ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        }
    }
    total
}

/// A layer with no behaviour: the registry alone.
struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

fn child(args: &Args) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let config = args.configs[0];
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(args.workers)
        .thread_name(WORKER_NAME)
        .enable_all();
    let recorder = (config.hooks() || config.layer()).then(taskline_core::Recorder::with_defaults);
    if let Some(rec) = &recorder
        && config.hooks()
    {
        taskline_core::instrument(&mut builder, rec);
    }
    if config.registry() {
        match &recorder {
            Some(rec) if config.layer() => tracing_subscriber::registry()
                .with(taskline_core::TasklineLayer::new(rec))
                .init(),
            _ => tracing_subscriber::registry().with(NoopLayer).init(),
        }
    }
    let rt = builder.build().expect("build runtime");

    // Warm-up: threads started, callsites registered, caches filled.
    rt.block_on(async {
        mpsc_phase(args.pairs, args.trips / 20 + 1).await;
        notify_phase(args.pairs, args.trips / 20 + 1).await;
        yield_phase(args.yielders, args.yields / 20 + 1).await;
    });

    let mut line = String::from(RESULT_TAG);
    for phase in PHASES {
        let (ops, work): (u64, Box<dyn Fn() -> _>) = match phase {
            "mpsc" => (
                (args.pairs * args.trips) as u64,
                Box::new(|| rt.block_on(mpsc_phase(args.pairs, args.trips))),
            ),
            "notify" => (
                (args.pairs * args.trips) as u64,
                Box::new(|| rt.block_on(notify_phase(args.pairs, args.trips))),
            ),
            _ => (
                (args.yielders * args.yields) as u64,
                Box::new(|| rt.block_on(yield_phase(args.yielders, args.yields))),
            ),
        };
        let (w0, c0) = (cpu_ns(WORKER_NAME), cpu_ns(CONSUMER_NAME));
        let start = Instant::now();
        let checksum = work();
        let ns = start.elapsed().as_nanos() as u64;
        let (w1, c1) = (cpu_ns(WORKER_NAME), cpu_ns(CONSUMER_NAME));
        std::hint::black_box(checksum);
        line.push_str(&format!(
            " {phase}.ns={ns} {phase}.ops={ops} {phase}.worker_cpu={} {phase}.consumer_cpu={}",
            w1.saturating_sub(w0),
            c1.saturating_sub(c0)
        ));
    }
    drop(rt);
    if let Some(rec) = recorder {
        let stats = rec.stats();
        rec.shutdown();
        line.push_str(&format!(" dropped={}", stats.dropped));
    }
    println!("{line}");
    std::process::exit(0);
}

// --------------------------------------------------------------- parent ---

/// One child's numbers per phase, each per op.
#[derive(Clone, Copy, Debug, Default)]
struct PhaseResult {
    wall: f64,
    worker_cpu: f64,
    consumer_cpu: f64,
}

/// One child's numbers: phase -> result, and drops.
#[derive(Clone, Debug, Default)]
struct Run {
    phases: BTreeMap<String, PhaseResult>,
    dropped: Option<u64>,
}

fn parse_result(line: &str) -> Option<Run> {
    let rest = line.strip_prefix(RESULT_TAG)?;
    let mut raw: BTreeMap<String, u64> = BTreeMap::new();
    let mut run = Run::default();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        let v = v.parse::<u64>().ok()?;
        if k == "dropped" {
            run.dropped = Some(v);
        } else {
            raw.insert(k.to_string(), v);
        }
    }
    for phase in PHASES {
        let ns = *raw.get(&format!("{phase}.ns"))? as f64;
        let ops = (*raw.get(&format!("{phase}.ops"))?).max(1) as f64;
        let worker = *raw.get(&format!("{phase}.worker_cpu"))? as f64;
        let consumer = *raw.get(&format!("{phase}.consumer_cpu"))? as f64;
        run.phases.insert(
            phase.to_string(),
            PhaseResult {
                wall: ns / ops,
                worker_cpu: worker / ops,
                consumer_cpu: consumer / ops,
            },
        );
    }
    Some(run)
}

fn run_child(args: &Args, config: Config) -> Option<Run> {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--child", "--configs", config.name()])
        .args(["--workers", &args.workers.to_string()])
        .args(["--pairs", &args.pairs.to_string()])
        .args(["--trips", &args.trips.to_string()])
        .args(["--yielders", &args.yielders.to_string()])
        .args(["--yields", &args.yields.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}: child failed: {}", config.name(), out.status);
        return None;
    }
    BufReader::new(&out.stdout[..])
        .lines()
        .map_while(Result::ok)
        .find_map(|l| parse_result(&l))
}

fn parent(args: &Args) {
    let configs = &args.configs;
    // runs[round][config]
    let mut runs: Vec<BTreeMap<Config, Run>> = Vec::new();
    for round in 0..args.rounds {
        let mut this = BTreeMap::new();
        for i in 0..configs.len() {
            let config = configs[(i + round) % configs.len()];
            if let Some(r) = run_child(args, config) {
                this.insert(config, r);
            }
        }
        eprintln!("round {}/{} done", round + 1, args.rounds);
        runs.push(this);
    }

    println!(
        "layer_cost: {} workers, {} rounds, mpsc/notify: {} pairs x {} round trips, \
         yield: {} tasks x {} yields",
        args.workers, args.rounds, args.pairs, args.trips, args.yielders, args.yields
    );
    println!(
        "wall = wall ns per op (round trip for mpsc/notify, yield for yield); \
         wcpu = CPU ns per op of the worker threads; ccpu = of taskline's consumer thread"
    );
    println!(
        "medians over rounds, [min..max] of wcpu; ratios = median of per-round ratios of wcpu \
         ('floor' = the same config without its last addition); x none (wall) likewise on wall"
    );
    for phase in PHASES {
        println!();
        println!(
            "{phase:<7} {:<15} {:>7} {:>7} {:>17} {:>6} {:>7} {:>7} {:>8} {:>15}",
            "config",
            "wall",
            "wcpu",
            "[min..max]",
            "ccpu",
            "x none",
            "x floor",
            "none/wall",
            "floor"
        );
        for &config in configs {
            let get = |f: fn(&PhaseResult) -> f64| -> Vec<f64> {
                runs.iter()
                    .filter_map(|r| r.get(&config).map(|r| f(&r.phases[phase])))
                    .collect()
            };
            let mut wall = get(|p| p.wall);
            let mut wcpu = get(|p| p.worker_cpu);
            let mut ccpu = get(|p| p.consumer_cpu);
            if wall.is_empty() {
                println!("{:<7} {:<15} failed", "", config.name());
                continue;
            }
            let ratio = |base: Config, f: fn(&PhaseResult) -> f64| -> Option<f64> {
                let mut v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| {
                        let a = f(&r.get(&config)?.phases[phase]);
                        let b = f(&r.get(&base)?.phases[phase]);
                        Some(a / b)
                    })
                    .collect();
                (!v.is_empty()).then(|| median(&mut v))
            };
            let fmt_ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.3}"));
            let min = wcpu.iter().copied().fold(f64::INFINITY, f64::min);
            let max = wcpu.iter().copied().fold(0.0, f64::max);
            let floor = config.floor();
            println!(
                "{:<7} {:<15} {:>7.1} {:>7.1} {:>17} {:>6.1} {:>7} {:>7} {:>8} {:>15}",
                "",
                config.name(),
                median(&mut wall),
                median(&mut wcpu),
                format!("[{min:.1}..{max:.1}]"),
                median(&mut ccpu),
                fmt_ratio(ratio(Config::None, |p| p.worker_cpu)),
                fmt_ratio(floor.and_then(|f| ratio(f, |p| p.worker_cpu))),
                fmt_ratio(ratio(Config::None, |p| p.wall)),
                floor.map_or("-", Config::name),
            );
        }
    }
    let drops: Vec<String> = configs
        .iter()
        .filter_map(|&c| {
            let total: u64 = runs.iter().filter_map(|r| r.get(&c)?.dropped).sum();
            (total > 0).then(|| format!("{}={total}", c.name()))
        })
        .collect();
    if !drops.is_empty() {
        println!(
            "\nevents dropped by the recorder (all rounds): {}",
            drops.join(" ")
        );
    }
}
