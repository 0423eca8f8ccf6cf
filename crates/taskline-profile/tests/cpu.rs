//! The CPU profiler on real Tokio runtimes: labels, stacks, stress under
//! heavy recording, "off means off", periodic collection and bad
//! configuration. One profiler runs per process, so the tests take a lock.
#![cfg(target_os = "linux")]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use taskline_core::{Recorder, RuntimeBuilderExt};
use taskline_profile::pprof::{self, PprofProfile, PprofSample};
use taskline_profile::{
    CollectorConfig, ProfileCollector, ProfileError, ProfileRuntimeExt, Profiler, ProfilerConfig,
    sigprof_handler_installed,
};

static ONE_PROFILER: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_PROFILER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Burns `wall` of CPU in this very function (the leaf of most samples).
#[inline(never)]
fn spin_in_known_function(wall: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < wall {
        // Plain operators, no calls (a debug build calls even `black_box`
        // and `wrapping_mul`): the samples' leaf is this function.
        let mut i = 0u32;
        while i < 200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i += 1;
        }
    }
    black_box(x)
}

/// Another site's CPU, in another function.
#[inline(never)]
fn spin_elsewhere(wall: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 3u64;
    while start.elapsed() < wall {
        let mut i = 0u32;
        while i < 200_000 {
            x ^= x >> 11;
            x ^= x << 5;
            x ^= x >> 3;
            i += 1;
        }
    }
    black_box(x)
}

/// Samples labelled with a spawn site on `line` of this file.
fn at_line(p: &PprofProfile, line: u32) -> Vec<&PprofSample> {
    let prefix = format!("{}:{line}:", file!());
    p.samples
        .iter()
        .filter(|s| {
            s.label("spawn_site")
                .is_some_and(|v| v.starts_with(&prefix))
        })
        .collect()
}

fn count(samples: &[&PprofSample], mut f: impl FnMut(&PprofSample) -> bool) -> i64 {
    samples.iter().filter(|s| f(s)).map(|s| s.values[0]).sum()
}

/// Checks a profile of the two spinning tasks: the site on `hot_line`
/// spent its CPU in `spin_in_known_function`, the other one's CPU is
/// never attributed to it, and the samples carry task and worker labels.
fn check_two_sites(p: &PprofProfile, hot_line: u32, other_line: u32) {
    let hot = at_line(p, hot_line);
    let other = at_line(p, other_line);
    let total = count(&hot, |_| true);
    assert!(
        total >= 20,
        "too few samples at the hot site: {total} of {p:#?}"
    );
    let names = |s: &PprofSample| p.function_names(s);
    let leaf_hot = count(&hot, |s| {
        names(s)
            .first()
            .is_some_and(|f| f.contains("spin_in_known_function"))
    });
    let anywhere_hot = count(&hot, |s| {
        names(s)
            .iter()
            .any(|f| f.contains("spin_in_known_function"))
    });
    assert!(
        leaf_hot * 10 >= total * 7,
        "spin_in_known_function is the leaf of only {leaf_hot} of {total} samples"
    );
    assert!(
        anywhere_hot * 20 >= total * 19,
        "spin_in_known_function is on only {anywhere_hot} of {total} stacks"
    );
    assert_eq!(
        count(&hot, |s| names(s)
            .iter()
            .any(|f| f.contains("spin_elsewhere"))),
        0,
        "the other site's function under the hot site"
    );
    let other_total = count(&other, |_| true);
    assert!(
        other_total >= 5,
        "too few samples at the other site: {other_total}"
    );
    assert_eq!(
        count(&other, |s| names(s)
            .iter()
            .any(|f| f.contains("spin_in_known_function"))),
        0,
        "the hot function under the other site"
    );
    for s in hot.iter().chain(&other) {
        let task: u64 = s
            .label("task")
            .expect("task label")
            .parse()
            .expect("number");
        assert_ne!(task, 0);
        assert!(s.label("worker").is_some(), "worker label on {s:?}");
        assert!(
            s.label("thread").is_some_and(|t| t.starts_with("tokio-")),
            "thread label on {s:?}"
        );
    }
    let tasks = |v: &[&PprofSample]| -> std::collections::BTreeSet<String> {
        v.iter()
            .filter_map(|s| s.label("task").map(str::to_owned))
            .collect()
    };
    assert!(
        tasks(&hot).is_disjoint(&tasks(&other)),
        "one task under two sites"
    );
    assert_eq!(p.sample_types[1], ("cpu".into(), "nanoseconds".into()));
    assert!(p.period > 0);
}

/// `recorder.spawn(f)`, and the line it was called from (the task's site).
#[track_caller]
fn spawn_wrapped<F>(recorder: &Recorder, f: F) -> (u32, tokio::task::JoinHandle<F::Output>)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    (std::panic::Location::caller().line(), recorder.spawn(f))
}

/// `tokio::spawn(f)`, and the line it was called from (the task's site).
#[cfg(tokio_unstable)]
#[track_caller]
fn spawn_hooked<F>(f: F) -> (u32, tokio::task::JoinHandle<F::Output>)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    (std::panic::Location::caller().line(), tokio::spawn(f))
}

fn runtime(
    recorder: &Recorder,
    profiler: &taskline_profile::ProfilerHandle,
) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .taskline(recorder)
        .profile_threads(profiler)
        .build()
        .expect("runtime")
}

/// The wrapper source (`Recorder::spawn`) names the site: works on stable Tokio too.
#[test]
fn wrapper_spawned_task_in_a_known_function_dominates_its_site() {
    let _one = exclusive();
    let recorder = Recorder::with_defaults();
    let profiler = Profiler::start(
        ProfilerConfig::default()
            .frequency_hz(499)
            .recorder(&recorder),
    )
    .expect("start");
    let rt = runtime(&recorder, &profiler.handle());
    let (hot_line, other_line) = rt.block_on(async {
        let (hot_line, hot) = spawn_wrapped(&recorder, async {
            spin_in_known_function(Duration::from_millis(600))
        });
        let (other_line, other) = spawn_wrapped(&recorder, async {
            spin_elsewhere(Duration::from_millis(300))
        });
        hot.await.expect("hot");
        other.await.expect("other");
        (hot_line, other_line)
    });
    drop(rt);
    let profile = profiler.stop().expect("stop");
    let bytes = profile.to_pprof().expect("encode");
    let p = pprof::decode(&bytes).expect("decode");
    check_two_sites(&p, hot_line, other_line);
    assert!(profile.stats.threads_registered >= 2);
}

/// Tokio's runtime hooks name the site (`tokio::spawn`'s caller).
#[cfg(tokio_unstable)]
#[test]
fn hooked_task_in_a_known_function_dominates_its_site() {
    let _one = exclusive();
    let recorder = Recorder::with_defaults();
    let profiler = Profiler::start(ProfilerConfig::default().frequency_hz(499)).expect("start");
    let rt = runtime(&recorder, &profiler.handle());
    let (hot_line, other_line) = rt.block_on(async {
        let (hot_line, hot) =
            spawn_hooked(async { spin_in_known_function(Duration::from_millis(600)) });
        let (other_line, other) =
            spawn_hooked(async { spin_elsewhere(Duration::from_millis(300)) });
        hot.await.expect("hot");
        other.await.expect("other");
        (hot_line, other_line)
    });
    drop(rt);
    let profile = profiler.stop().expect("stop");
    let by_site = profile.samples_by_site();
    let hot_name = by_site
        .iter()
        .max_by_key(|(_, n)| **n)
        .and_then(|(s, _)| s.clone())
        .expect("a site took the CPU");
    assert!(hot_name.contains(&format!(":{hot_line}:")), "{by_site:?}");
    let p = pprof::decode(&profile.to_pprof().expect("encode")).expect("decode");
    check_two_sites(&p, hot_line, other_line);
}

/// Counts the process's POSIX timers that send `SIGPROF` (`/proc/self/timers`).
fn sigprof_timers() -> usize {
    let timers = std::fs::read_to_string("/proc/self/timers").expect("/proc/self/timers");
    let prefix = format!("signal: {}/", libc_sigprof());
    timers.lines().filter(|l| l.starts_with(&prefix)).count()
}

fn libc_sigprof() -> i32 {
    27 // SIGPROF on x86_64 and aarch64 Linux
}

#[test]
fn off_means_no_handler_and_no_timer() {
    let _one = exclusive();
    assert!(!sigprof_handler_installed().unwrap(), "before any profiler");
    assert_eq!(sigprof_timers(), 0);
    // The recorder's hooks alone install nothing.
    let recorder = Recorder::with_defaults();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .build()
        .unwrap();
    rt.block_on(async {
        let t = tokio::spawn(async { spin_elsewhere(Duration::from_millis(50)) });
        t.await.unwrap();
    });
    assert!(
        !sigprof_handler_installed().unwrap(),
        "hooks without profiler"
    );
    assert_eq!(sigprof_timers(), 0);
    drop(rt);

    let profiler = Profiler::start(ProfilerConfig::default()).expect("start");
    assert!(sigprof_handler_installed().unwrap(), "while running");
    assert!(matches!(
        Profiler::start(ProfilerConfig::default()),
        Err(ProfileError::AlreadyRunning)
    ));
    profiler.register_current_thread().expect("register");
    profiler
        .register_current_thread()
        .expect("twice is a no-op");
    assert_eq!(sigprof_timers(), 1, "one timer for this thread");
    let t = std::thread::spawn({
        let h = profiler.handle();
        move || {
            h.register_current_thread().expect("register");
            spin_elsewhere(Duration::from_millis(20))
        }
    });
    t.join().unwrap();
    assert_eq!(sigprof_timers(), 1, "the exited thread's timer is deleted");
    profiler.pause().expect("pause");
    assert_eq!(sigprof_timers(), 1, "paused: disarmed, not deleted");
    profiler.resume().expect("resume");
    spin_elsewhere(Duration::from_millis(100));
    let profile = profiler.stop().expect("stop");
    assert!(profile.total() > 0, "this thread was sampled");
    assert!(!sigprof_handler_installed().unwrap(), "after stop");
    assert_eq!(sigprof_timers(), 0, "after stop");
    // A later profiler starts cleanly.
    drop(Profiler::start(ProfilerConfig::default()).expect("restart"));
    assert!(!sigprof_handler_installed().unwrap(), "after drop");
}

#[test]
fn paused_profiler_takes_no_samples() {
    let _one = exclusive();
    let profiler = Profiler::start(ProfilerConfig::default().frequency_hz(999)).expect("start");
    profiler.register_current_thread().unwrap();
    profiler.pause().unwrap();
    let _ = profiler.take_profile();
    spin_elsewhere(Duration::from_millis(200));
    assert_eq!(profiler.take_profile().total(), 0, "paused");
    profiler.resume().unwrap();
    spin_elsewhere(Duration::from_millis(200));
    // Paused again before the takes: a timer firing between the two takes
    // would otherwise put a fresh sample in the second window.
    profiler.pause().unwrap();
    let window = profiler.take_profile();
    assert!(window.total() >= 20, "resumed: {}", window.total());
    assert_eq!(
        profiler.take_profile().total(),
        0,
        "a new window starts empty"
    );
    drop(profiler);
}

/// Samples at 1000 Hz land inside the recorder's `record` (the ring push
/// the hooks do on every poll): the recorder must still account for every
/// task, and nothing may deadlock.
#[cfg(tokio_unstable)]
#[test]
fn sampling_inside_record_neither_corrupts_nor_deadlocks() {
    let _one = exclusive();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let recorder = Recorder::with_defaults();
        let profiler = Profiler::start(
            ProfilerConfig::default()
                .frequency_hz(1000)
                .recorder(&recorder),
        )
        .expect("start");
        let rt = runtime(&recorder, &profiler.handle());
        const TASKS: u64 = 20_000;
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut spawned = 0u64;
        rt.block_on(async {
            while Instant::now() < deadline && spawned < TASKS * 20 {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..TASKS / 10 {
                    set.spawn(async {
                        for _ in 0..3 {
                            tokio::task::yield_now().await;
                        }
                    });
                }
                spawned += TASKS / 10;
                while set.join_next().await.is_some() {}
                // Keep the recorder's rings from overflowing (a dropped
                // event would hide a corrupted count).
                recorder.flush();
            }
        });
        drop(rt);
        let profile = profiler.stop().expect("stop");
        recorder.flush();
        let snapshot = recorder.snapshot();
        let stats = recorder.stats();
        done_tx.send((profile, snapshot, stats, spawned)).unwrap();
    });
    let (profile, snapshot, stats, spawned) = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("deadlock: the stress run did not finish in 120 s");
    worker.join().unwrap();
    assert_eq!(stats.dropped, 0, "the recorder dropped events: {stats:?}");
    assert_eq!(snapshot.spawned, spawned, "{snapshot}");
    assert_eq!(snapshot.terminated, spawned, "{snapshot}");
    assert_eq!(snapshot.alive, 0, "{snapshot}");
    assert!(profile.total() >= 200, "samples: {:?}", profile.stats);
    let p = pprof::decode(&profile.to_pprof().unwrap()).unwrap();
    let in_record: i64 = p
        .samples
        .iter()
        .filter(|s| {
            p.function_names(s)
                .iter()
                .any(|f| f.contains("Recorder>::record") || f.contains("Recorder::record"))
        })
        .map(|s| s.values[0])
        .sum();
    assert!(in_record > 0, "no sample interrupted Recorder::record");
}

#[test]
fn collector_directory_stays_bounded() {
    let _one = exclusive();
    let dir = std::env::temp_dir().join(format!("taskline-collect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seen = Arc::new(AtomicU64::new(0));
    let collector = ProfileCollector::start(
        CollectorConfig::new(&dir)
            .interval(Duration::from_millis(120))
            .duration(Duration::from_millis(80))
            .max_files(3)
            .profiler(ProfilerConfig::default().frequency_hz(499))
            .on_profile({
                let seen = Arc::clone(&seen);
                move |c| {
                    assert!(c.path.exists());
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }),
    )
    .expect("start");
    let counter = collector.collected();
    let h = collector.handle();
    // Spin until 8 profiles were written (bounded at 60 s): the first
    // symbolization (parsing a debug build's DWARF) takes about a second,
    // the cached ones a few milliseconds, all slower on a loaded machine.
    let written = Arc::clone(&counter);
    let spinner = std::thread::spawn(move || {
        h.register_current_thread().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while written.load(Ordering::Relaxed) < 8 && std::time::Instant::now() < deadline {
            spin_in_known_function(Duration::from_millis(200));
        }
    });
    spinner.join().unwrap();
    let n = collector.stop();
    assert!(n >= 8, "only {n} profiles in 60 s");
    assert_eq!(counter.load(Ordering::Relaxed), n);
    assert_eq!(seen.load(Ordering::Relaxed), n);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut with_samples = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("cpu-") && name.ends_with("Z.pb.gz"),
            "{name}"
        );
        let p = pprof::decode(&std::fs::read(f).unwrap()).expect("a valid profile");
        with_samples += usize::from(!p.samples.is_empty());
    }
    assert!(with_samples >= 1, "the spinning thread was sampled");
    assert!(
        !sigprof_handler_installed().unwrap(),
        "stopped collector leaves nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let _one = exclusive();
    let field = |r: Result<ProfileCollector, ProfileError>| match r {
        Err(e @ ProfileError::Config { .. }) => e.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    };
    let ok = || CollectorConfig::new(std::env::temp_dir().join("taskline-never-created"));
    let e = field(ProfileCollector::start(ok().interval(Duration::ZERO)));
    assert!(e.contains("interval"), "{e}");
    let e = field(ProfileCollector::start(
        ok().interval(Duration::from_secs(10))
            .duration(Duration::from_secs(11)),
    ));
    assert!(
        e.contains("duration") && e.contains("longer than the interval"),
        "{e}"
    );
    let e = field(ProfileCollector::start(ok().max_files(0)));
    assert!(e.contains("max_files"), "{e}");
    let e = field(ProfileCollector::start(
        ok().profiler(ProfilerConfig::default().frequency_hz(0)),
    ));
    assert!(
        e.contains("frequency_hz") && e.contains("at least 1"),
        "{e}"
    );
    let e = field(ProfileCollector::start(
        ok().profiler(ProfilerConfig::default().frequency_hz(5000)),
    ));
    assert!(
        e.contains("frequency_hz") && e.contains("limit of 1000"),
        "{e}"
    );
    assert!(!std::env::temp_dir().join("taskline-never-created").exists());
    // A directory under a regular file cannot be created (root or not).
    let file = std::env::temp_dir().join(format!("taskline-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"").unwrap();
    let e = ProfileCollector::start(CollectorConfig::new(file.join("profiles"))).unwrap_err();
    assert!(matches!(e, ProfileError::Io(_)), "{e:?}");
    assert!(
        e.to_string().contains("taskline-not-a-dir"),
        "names the directory: {e}"
    );
    std::fs::remove_file(&file).unwrap();
    assert!(
        !sigprof_handler_installed().unwrap(),
        "nothing installed on error"
    );
    for (config, field) in [
        (ProfilerConfig::default().frequency_hz(0), "frequency_hz"),
        (ProfilerConfig::default().frequency_hz(1001), "frequency_hz"),
        (ProfilerConfig::default().max_depth(0), "max_depth"),
        (
            ProfilerConfig::default().ring_capacity(100),
            "ring_capacity",
        ),
        (
            ProfilerConfig::default().collect_interval(Duration::ZERO),
            "collect_interval",
        ),
    ] {
        match Profiler::start(config) {
            Err(ProfileError::Config { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn timed_samples_carry_the_trace_clock_the_tid_and_the_stack_and_are_bounded() {
    let _one = exclusive();
    let guard = Profiler::start(ProfilerConfig::default().frequency_hz(499)).expect("start");
    let h = guard.handle();
    let before = taskline_core::now_ns();
    let spinner = std::thread::spawn(move || {
        h.register_current_thread().unwrap();
        spin_in_known_function(Duration::from_millis(300));
        taskline_core::os_thread_id().expect("a tid on Linux")
    });
    let tid = spinner.join().unwrap();
    let after = taskline_core::now_ns();
    let samples = guard.take_cpu_samples();
    // 300 ms of wall at 499 Hz: up to 150 samples, fewer on a loaded machine.
    assert!(samples.samples.len() >= 10, "{}", samples.samples.len());
    assert_eq!(samples.dropped, 0);
    let mut in_function = 0;
    for s in &samples.samples {
        assert_eq!(s.tid, tid, "the spinner's tid");
        assert!(
            before <= s.ts_ns && s.ts_ns <= after,
            "{} in [{before}, {after}]",
            s.ts_ns
        );
        let stack = &samples.stacks[s.stack as usize];
        let named = stack.iter().any(|a| {
            samples.symbols.get(a).is_some_and(|fs| {
                fs.iter()
                    .any(|f| f.function.ends_with("spin_in_known_function"))
            })
        });
        in_function += u64::from(named);
        assert!(
            samples.mapping_of(stack[0]).is_some(),
            "the leaf is in a mapping"
        );
    }
    assert!(
        in_function * 10 >= samples.samples.len() as u64 * 8,
        "{in_function} of {} in the spinning function",
        samples.samples.len()
    );
    // Per thread, in time order.
    assert!(samples.samples.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    // The log started over.
    assert!(guard.take_cpu_samples().is_empty());
    drop(guard);

    // Bounded: the first `trace_samples` are kept, the rest counted.
    let guard = Profiler::start(
        ProfilerConfig::default()
            .frequency_hz(499)
            .trace_samples(10),
    )
    .expect("start");
    let h = guard.handle();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            h.register_current_thread().unwrap();
            while !stop.load(Ordering::Relaxed) {
                spin_in_known_function(Duration::from_millis(20));
            }
        }
    });
    // Spin until well past the bound (CPU time, not wall: the machine may be busy).
    let deadline = Instant::now() + Duration::from_secs(20);
    while guard.profile().total() < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    let stats = guard.profile().stats;
    let samples = guard.take_cpu_samples();
    guard.stop().expect("stop");
    assert_eq!(samples.samples.len(), 10);
    assert!(samples.dropped > 0);
    assert_eq!(stats.trace_samples_dropped, samples.dropped);
    // Logged plus counted: one per signal, while the aggregate counts
    // timer periods (a signal after an overrun on a busy machine stands
    // for several).
    let timed = samples.samples.len() as u64 + samples.dropped;
    assert!(timed <= stats.samples, "{timed} vs {}", stats.samples);
}
