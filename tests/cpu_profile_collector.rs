//! `Taskline::builder().cpu_profile_collector(..)`: periodic CPU profiles of
//! the runtime the front door builds, in a bounded directory, each counted
//! in the OTLP export's `taskline.profiles.collected{profile.type=cpu}`.
//! A file of its own: a process has one CPU profiler.
#![cfg(all(feature = "profile", feature = "otel", target_os = "linux"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use taskline::profile::{CollectorConfig, ProfileError, ProfilerConfig};
use taskline::{SetupError, Taskline};

#[test]
fn the_collector_writes_bounded_profiles_and_counts_them_in_otlp() {
    let dir = common::temp_dir("cpu-collector");
    // One CPU profiler per process: asking for both is a clear error.
    let err = Taskline::builder()
        .cpu_profile(ProfilerConfig::default())
        .cpu_profile_collector(CollectorConfig::new(&dir))
        .start()
        .unwrap_err();
    assert!(
        matches!(err, SetupError::Profile(ProfileError::AlreadyRunning)),
        "{err:?}"
    );

    let (url, bodies) = common::otlp_endpoint();
    let seen = Arc::new(AtomicU64::new(0));
    let seen_in_callback = Arc::clone(&seen);
    let taskline = Taskline::builder()
        .cpu_profile_collector(
            CollectorConfig::new(&dir)
                .interval(Duration::from_millis(250))
                .duration(Duration::from_millis(150))
                .max_files(2)
                .profiler(ProfilerConfig::default().frequency_hz(499))
                .on_profile(move |_| {
                    seen_in_callback.fetch_add(1, Ordering::Relaxed);
                }),
        )
        .otlp(
            taskline::otel::OtlpConfig::new()
                .with_endpoint(url)
                .with_interval(Duration::from_millis(200))
                .with_timeout(Duration::from_secs(2))
                .with_service_name("taskline-collector"),
        )
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .expect("start");
    let rt = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread().worker_threads(2),
            "collected",
        )
        .expect("runtime");
    let collector = taskline.cpu_profile_collector().expect("collector on");
    let collected = collector.collected();
    let started = Instant::now();
    while collected.load(Ordering::Relaxed) < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} profiles in 30 s",
            collected.load(Ordering::Relaxed)
        );
        let task = rt.spawn(async { common::spin_in_known_function(Duration::from_millis(50)) });
        rt.block_on(task).expect("task");
    }
    drop(rt);
    taskline.shutdown().expect("shutdown");
    let written = collected.load(Ordering::Relaxed);
    // The user's callback still runs, once per profile, beside the counter.
    assert_eq!(seen.load(Ordering::Relaxed), written);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cpu-"))
        .collect();
    assert!(
        (1..=2).contains(&files.len()),
        "max_files 2 keeps the newest: {} files after {written} profiles",
        files.len()
    );
    let bodies = bodies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let with_counter: Vec<_> = bodies
        .iter()
        .filter(|b| common::contains(b, b"taskline.profiles.collected"))
        .collect();
    assert!(!with_counter.is_empty(), "the counter was exported");
    assert!(
        with_counter
            .iter()
            .any(|b| common::contains(b, b"profile.type") && common::contains(b, b"cpu")),
        "with profile.type=cpu"
    );
}
