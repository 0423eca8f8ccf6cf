//! Process metrics and the profiles counter, seen through the SDK's
//! in-memory exporter: names, kinds, units, attributes and values that
//! follow what the process does between two collections.

mod common;

use std::time::{Duration, Instant};

use common::{Kind, collect, points, provider};
use opentelemetry::metrics::MeterProvider as _;
use taskline_otel::{ProcessMetricsExporter, ProfileType, ProfilesCollected};

fn value(all: &[common::Point], name: &str) -> f64 {
    let p = points(all, name, None);
    assert_eq!(p.len(), 1, "{name}: {p:?}");
    p[0].value
}

fn cpu(all: &[common::Point], mode: &str) -> f64 {
    let p: Vec<_> = points(all, "process.cpu.time", None)
        .into_iter()
        .filter(|p| p.attr("cpu.mode") == Some(mode))
        .collect();
    assert_eq!(p.len(), 1, "{mode}: {p:?}");
    p[0].value
}

#[cfg(target_os = "linux")]
#[test]
fn process_instruments_follow_the_process() {
    let (provider, exporter) = provider();
    let meter = provider.meter("taskline");
    let process = ProcessMetricsExporter::register(&meter);
    assert!(process.is_registered());

    let first = collect(&provider, &exporter);
    for (name, kind, unit) in [
        ("process.cpu.time", Kind::Counter, "s"),
        ("process.memory.usage", Kind::UpDownCounter, "By"),
        ("process.memory.virtual", Kind::UpDownCounter, "By"),
        ("process.thread.count", Kind::UpDownCounter, "{thread}"),
        (
            "process.open_file_descriptor.count",
            Kind::UpDownCounter,
            "{file_descriptor}",
        ),
    ] {
        let p = points(&first, name, None);
        assert!(!p.is_empty(), "{name} missing");
        for p in p {
            assert_eq!((p.kind, p.unit.as_str()), (kind, unit), "{name}");
        }
    }
    let mut modes: Vec<_> = points(&first, "process.cpu.time", None)
        .iter()
        .map(|p| p.attr("cpu.mode").unwrap().to_string())
        .collect();
    modes.sort_unstable();
    assert_eq!(modes, ["system", "user"]);
    assert!(value(&first, "process.memory.usage") > 0.0);
    assert!(value(&first, "process.memory.virtual") >= value(&first, "process.memory.usage"));
    assert!(value(&first, "process.thread.count") >= 1.0);
    assert!(value(&first, "process.open_file_descriptor.count") >= 1.0);

    // Burn user CPU, start threads, open files, hold memory: each shows up.
    // (Other tests of this binary run in parallel and start and stop
    // threads of their own: thread and descriptor counts are checked
    // against what this test alone holds.)
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < Duration::from_millis(120) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let files: Vec<_> = (0..16)
        .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
        .collect();
    let block = std::hint::black_box(vec![7u8; 96 << 20]);

    let second = collect(&provider, &exporter);
    assert!(
        cpu(&second, "user") > cpu(&first, "user"),
        "user CPU did not grow: {} -> {}",
        cpu(&first, "user"),
        cpu(&second, "user")
    );
    assert!(cpu(&second, "system") >= cpu(&first, "system"));
    // This test's thread, the main thread and 4 workers at least.
    assert!(value(&second, "process.thread.count") >= 6.0);
    assert!(value(&second, "process.open_file_descriptor.count") >= 16.0);
    assert!(
        value(&second, "process.memory.usage")
            >= value(&first, "process.memory.usage") + (64 << 20) as f64
    );
    drop((rt, files, block));

    process.unregister();
    assert!(!process.is_registered());
    // Nothing observed: the export (if the SDK makes one) has no process point.
    exporter.reset();
    provider.force_flush().unwrap();
    for rm in exporter.get_finished_metrics().unwrap() {
        let third = common::flatten(&rm);
        assert!(
            third.iter().all(|p| !p.name.starts_with("process.")),
            "{third:?}"
        );
    }
}

#[cfg(not(target_os = "linux"))]
#[test]
fn process_instruments_are_not_registered_off_linux() {
    let (provider, exporter) = provider();
    let process = ProcessMetricsExporter::register(&provider.meter("taskline"));
    assert!(!process.is_registered());
    let all = collect(&provider, &exporter);
    assert!(all.iter().all(|p| !p.name.starts_with("process.")));
    assert!(taskline_otel::ProcessSample::read().is_err());
}

#[test]
fn profiles_collected_counts_by_type() {
    let (provider, exporter) = provider();
    let meter = provider.meter("taskline");
    let profiles = ProfilesCollected::new(&meter);
    let clone = profiles.clone();
    profiles.add(ProfileType::Cpu);
    clone.add(ProfileType::Cpu);
    profiles.add(ProfileType::Heap);
    // A second handle on the same meter feeds the same counter.
    ProfilesCollected::new(&meter).add(ProfileType::Cpu);

    let all = collect(&provider, &exporter);
    let p = points(&all, "taskline.profiles.collected", None);
    let by_type = |t: &str| {
        p.iter()
            .find(|p| p.attr("profile.type") == Some(t))
            .map(|p| (p.kind, p.unit.clone(), p.value))
    };
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        by_type("cpu"),
        Some((Kind::Counter, "{profile}".into(), 3.0))
    );
    assert_eq!(
        by_type("heap"),
        Some((Kind::Counter, "{profile}".into(), 1.0))
    );
}
