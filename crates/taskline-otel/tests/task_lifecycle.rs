//! The task sink applies the core's task lifecycle: a synthetic event
//! stream, as the recorder's merge delivers it, read back through the SDK's
//! in-memory exporter and compared with the core aggregator's snapshot.

mod common;

use std::time::Duration;

use common::{collect, points, provider};
use opentelemetry::metrics::MeterProvider as _;
use taskline_core::{
    Aggregator, Event, EventKind, NO_VALUE, RecorderConfig, Registry, Sink, TaskKind,
};
use taskline_otel::task::{OTHER_SITE, SPAWN_SITE, TaskMetricsConfig, TaskMetricsSink};

fn ev(kind: EventKind, ts: u64, task: u64, aux: u32) -> Event {
    let mut e = Event::new(kind, ts, task);
    e.thread = 1;
    e.aux = aux;
    if kind == EventKind::PollStart {
        e.arg = NO_VALUE;
    }
    e
}

/// Task 1 (site a) is polled once for `poll_ns` and terminates inside that
/// poll (Tokio's terminate hook runs inside the last poll, so `Terminate`
/// comes before `PollEnd`); task 2 (site b) is polled twice for 10 ns.
fn stream(registry: &Registry, poll_ns: u64) -> Vec<Event> {
    let a = registry.intern_site("src/handler.rs", 10, 5, TaskKind::Task);
    let b = registry.intern_site("src/conn.rs", 20, 5, TaskKind::Task);
    vec![
        ev(EventKind::Spawn, 100, 1, a),
        ev(EventKind::Spawn, 110, 2, b),
        ev(EventKind::PollStart, 200, 1, 0),
        ev(EventKind::Terminate, 200 + poll_ns, 1, 0),
        ev(EventKind::PollEnd, 200 + poll_ns, 1, 0),
        ev(EventKind::PollStart, 300 + poll_ns, 2, 0),
        ev(EventKind::PollEnd, 310 + poll_ns, 2, 0),
        ev(EventKind::Wake, 320 + poll_ns, 2, 0),
        ev(EventKind::PollStart, 330 + poll_ns, 2, 0),
        ev(EventKind::Terminate, 340 + poll_ns, 2, 0),
        ev(EventKind::PollEnd, 340 + poll_ns, 2, 0),
    ]
}

/// (site label, polls, slow polls, terminated) per series with by_spawn_site.
fn per_site(
    recorder: &RecorderConfig,
    events: &[Event],
    registry: &Registry,
) -> Vec<(String, f64, f64, f64)> {
    let (provider, exporter) = provider();
    let mut sink = TaskMetricsSink::for_recorder(
        &provider.meter("test"),
        recorder,
        TaskMetricsConfig {
            by_spawn_site: true,
            ..TaskMetricsConfig::default()
        },
    );
    sink.on_events(events, registry);
    let all = collect(&provider, &exporter);
    let of = |name: &str, site: &str| -> f64 {
        points(&all, name, None)
            .iter()
            .filter(|p| p.attr(SPAWN_SITE) == Some(site))
            .map(|p| p.value)
            .sum()
    };
    let mut sites: Vec<String> = points(&all, "tokio.task.spawned", None)
        .iter()
        .filter_map(|p| p.attr(SPAWN_SITE).map(str::to_owned))
        .collect();
    sites.push(OTHER_SITE.to_owned());
    sites.sort();
    sites.dedup();
    sites
        .into_iter()
        .map(|s| {
            let row = (
                of("tokio.task.poll.duration", &s),
                of("tokio.task.slow_polls", &s),
                of("tokio.task.terminated", &s),
            );
            (s, row.0, row.1, row.2)
        })
        .collect()
}

#[test]
fn every_poll_counts_at_its_spawn_site_the_last_one_too() {
    let registry = Registry::new();
    let recorder = RecorderConfig {
        slow_poll_threshold: Duration::from_millis(1),
        ..RecorderConfig::default()
    };
    // Task 1's only poll is slow (a blocking request handler).
    let rows = per_site(&recorder, &stream(&registry, 5_000_000), &registry);
    assert_eq!(
        rows,
        vec![
            ("other".to_owned(), 0.0, 0.0, 0.0),
            ("src/conn.rs:20:5".to_owned(), 2.0, 0.0, 1.0),
            ("src/handler.rs:10:5".to_owned(), 1.0, 1.0, 1.0),
        ]
    );
}

#[test]
fn a_poll_exactly_at_the_threshold_is_classified_as_the_aggregator_does() {
    let threshold = Duration::from_micros(50);
    let recorder = RecorderConfig {
        slow_poll_threshold: threshold,
        ..RecorderConfig::default()
    };
    let at = threshold.as_nanos() as u64;
    for poll_ns in [at - 1, at, at + 1] {
        let registry = Registry::new();
        let events = stream(&registry, poll_ns);
        let mut agg = Aggregator::new(&recorder);
        agg.feed(&events);
        let snap = agg.snapshot(&registry);
        let rows = per_site(&recorder, &events, &registry);
        let otel_slow: f64 = rows.iter().map(|r| r.2).sum();
        assert_eq!(otel_slow, snap.slow_polls as f64, "poll of {poll_ns} ns");
        assert_eq!(
            snap.slow_polls,
            u64::from(poll_ns > at),
            "poll of {poll_ns} ns"
        );
    }
}
