//! The task-metrics sink on a real instrumented runtime, read back through
//! the SDK's in-memory exporter.
#![cfg(tokio_unstable)]

mod common;

use std::time::Duration;

use common::{Kind, Point, collect, points, provider};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use taskline_core::{Recorder, RuntimeBuilderExt};
use taskline_otel::task::{
    DEFAULT_BOUNDARIES, OTHER_SITE, REASON, SPAWN_SITE, TaskMetricsConfig, TaskMetricsSink,
};

const SLEEPERS: usize = 30;
const YIELDERS: usize = 50;

fn run(config: TaskMetricsConfig) -> Vec<Point> {
    let recorder = Recorder::with_defaults();
    let (provider, exporter) = provider();
    recorder.add_sink(TaskMetricsSink::new(&provider.meter("test"), config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&recorder)
        .build()
        .unwrap();
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..SLEEPERS {
            // Idle: waits on a timer between two polls.
            handles.push(tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(5)).await
            }));
        }
        for _ in 0..YIELDERS {
            handles.push(tokio::spawn(async {
                tokio::task::yield_now().await;
            }));
        }
        // One slow poll (blocks its worker for 30 ms).
        handles.push(tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(30))
        }));
        for h in handles {
            h.await.unwrap();
        }
    });
    drop(rt);
    recorder.flush();
    let all = collect(&provider, &exporter);
    recorder.shutdown();
    all
}

fn total(ps: &[&Point]) -> f64 {
    ps.iter().map(|p| p.value).sum()
}

#[test]
fn histograms_and_counters_follow_the_workload() {
    let all = run(TaskMetricsConfig {
        attributes: vec![KeyValue::new("tokio.runtime.name", "main")],
        ..TaskMetricsConfig::default()
    });
    let tasks = (SLEEPERS + YIELDERS + 1) as f64;
    for (name, kind, unit) in [
        ("tokio.task.poll.duration", Kind::Histogram, "s"),
        ("tokio.task.schedule.duration", Kind::Histogram, "s"),
        ("tokio.task.idle.duration", Kind::Histogram, "s"),
        ("tokio.task.spawned", Kind::Counter, "{task}"),
        ("tokio.task.terminated", Kind::Counter, "{task}"),
        ("tokio.task.slow_polls", Kind::Counter, "{poll}"),
    ] {
        let ps = points(&all, name, Some("main"));
        assert!(!ps.is_empty(), "{name} missing");
        for p in &ps {
            assert_eq!((p.kind, p.unit.as_str()), (kind, unit), "{name}");
            assert_eq!(
                p.attr(SPAWN_SITE),
                None,
                "{name}: no site attribute unless asked"
            );
            if kind == Kind::Histogram {
                assert_eq!(p.bounds, DEFAULT_BOUNDARIES, "{name}");
                assert_eq!(p.buckets.iter().sum::<u64>() as f64, p.value, "{name}");
                assert!(p.sum >= 0.0 && p.sum < 60.0, "{name}: sum {}", p.sum);
            }
        }
    }
    let one = |name| total(&points(&all, name, Some("main")));
    assert!(
        one("tokio.task.spawned") >= tasks,
        "spawned {}",
        one("tokio.task.spawned")
    );
    assert!(
        one("tokio.task.terminated") >= tasks,
        "terminated {}",
        one("tokio.task.terminated")
    );
    // Sleepers and yielders are polled twice, the rest at least once.
    assert!(one("tokio.task.poll.duration") >= tasks + (SLEEPERS + YIELDERS) as f64);
    assert!(one("tokio.task.schedule.duration") >= tasks);
    assert!(
        one("tokio.task.idle.duration") >= SLEEPERS as f64,
        "idle {}",
        one("tokio.task.idle.duration")
    );
    assert!(one("tokio.task.slow_polls") >= 1.0);
    // The 30 ms poll lands above the 25 ms bound, and a sleeper's idle time
    // (5 ms timer) is at least 5 ms.
    let poll = points(&all, "tokio.task.poll.duration", Some("main"))[0];
    let above_25ms: u64 = poll.buckets
        [DEFAULT_BOUNDARIES.iter().position(|&b| b == 0.025).unwrap() + 1..]
        .iter()
        .sum();
    assert!(above_25ms >= 1, "{:?}", poll.buckets);
    // The runtime hooks record no wakes: every idle period ends at the next
    // poll, for reason `unknown` (the subscriber's wakes give the others,
    // see task_wake_reasons.rs).
    let idle = points(&all, "tokio.task.idle.duration", Some("main"));
    let reasons: Vec<_> = idle.iter().map(|p| p.attr(REASON)).collect();
    assert_eq!(reasons, vec![Some("unknown")]);
    let at_least_5ms: u64 = idle[0].buckets[DEFAULT_BOUNDARIES
        .iter()
        .position(|&b| b == 0.0025)
        .unwrap()
        + 1..]
        .iter()
        .sum();
    assert!(at_least_5ms >= SLEEPERS as u64, "{:?}", idle[0].buckets);
}

#[test]
fn spawn_sites_are_bounded_with_an_other_series() {
    let all = run(TaskMetricsConfig {
        by_spawn_site: true,
        max_spawn_sites: 2,
        ..TaskMetricsConfig::default()
    });
    let spawned = points(&all, "tokio.task.spawned", None);
    let sites: Vec<&str> = spawned
        .iter()
        .map(|p| p.attr(SPAWN_SITE).unwrap())
        .collect();
    // Three spawn sites in the workload: two named, the third folded into `other`.
    assert_eq!(sites.len(), 3, "{sites:?}");
    assert!(sites.contains(&OTHER_SITE), "{sites:?}");
    assert_eq!(
        sites
            .iter()
            .filter(|s| s.contains("task_metrics.rs:"))
            .count(),
        2,
        "{sites:?}"
    );
    assert!(total(&spawned) >= (SLEEPERS + YIELDERS + 1) as f64);
}
