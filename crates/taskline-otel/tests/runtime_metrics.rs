//! Every runtime instrument, seen through the SDK's in-memory exporter, on a
//! live multi-thread runtime doing real work.

mod common;

use std::time::Duration;

use common::{Kind, Point, collect, points, provider};
use opentelemetry::metrics::MeterProvider as _;
use taskline_otel::RuntimeMetricsExporter;

/// (name, kind, unit, per worker)
const STABLE: &[(&str, Kind, &str, bool)] = &[
    ("tokio.worker.count", Kind::Gauge, "{worker}", false),
    ("tokio.task.alive.count", Kind::Gauge, "{task}", false),
    ("tokio.queue.global.depth", Kind::Gauge, "{task}", false),
    ("tokio.worker.busy.time", Kind::Counter, "s", true),
    ("tokio.worker.utilization", Kind::Gauge, "1", true),
    ("tokio.worker.parks", Kind::Counter, "{park}", true),
    (
        "tokio.worker.park_unparks",
        Kind::Counter,
        "{transition}",
        true,
    ),
];

#[cfg(tokio_unstable)]
const UNSTABLE: &[(&str, Kind, &str, bool)] = &[
    ("tokio.worker.queue.depth", Kind::Gauge, "{task}", true),
    ("tokio.worker.polls", Kind::Counter, "{poll}", true),
    ("tokio.worker.steals", Kind::Counter, "{task}", true),
    (
        "tokio.worker.steal_operations",
        Kind::Counter,
        "{operation}",
        true,
    ),
    ("tokio.worker.noops", Kind::Counter, "{unpark}", true),
    ("tokio.worker.overflows", Kind::Counter, "{overflow}", true),
    (
        "tokio.worker.local_schedules",
        Kind::Counter,
        "{task}",
        true,
    ),
    ("tokio.worker.mean_poll.duration", Kind::Gauge, "s", true),
    (
        "tokio.runtime.remote_schedules",
        Kind::Counter,
        "{task}",
        false,
    ),
    (
        "tokio.runtime.budget_forced_yields",
        Kind::Counter,
        "{yield}",
        false,
    ),
    (
        "tokio.runtime.tasks.spawned",
        Kind::Counter,
        "{task}",
        false,
    ),
    (
        "tokio.blocking.thread.count",
        Kind::Gauge,
        "{thread}",
        false,
    ),
    (
        "tokio.blocking.thread.idle.count",
        Kind::Gauge,
        "{thread}",
        false,
    ),
    ("tokio.blocking.queue.depth", Kind::Gauge, "{task}", false),
    ("tokio.io.fd.registered", Kind::Counter, "{fd}", false),
    ("tokio.io.fd.deregistered", Kind::Counter, "{fd}", false),
    ("tokio.io.ready_events", Kind::Counter, "{event}", false),
];

const WORKERS: usize = 2;
const PENDING: usize = 20;
const SPAWNED: usize = 500;

fn runtime() -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(WORKERS).enable_all();
    #[cfg(tokio_unstable)]
    b.enable_metrics_poll_time_histogram()
        .enable_metrics_schedule_latency_histogram();
    b.build().unwrap()
}

/// Runs a workload and leaves `PENDING` tasks alive, blocked on a channel.
fn workload(rt: &tokio::runtime::Runtime) -> tokio::sync::watch::Sender<bool> {
    let (release, rx) = tokio::sync::watch::channel(false);
    for _ in 0..PENDING {
        let mut rx = rx.clone();
        // Spawned from outside the runtime: remote schedules.
        rt.spawn(async move {
            let _ = rx.wait_for(|v| *v).await;
        });
    }
    rt.block_on(async {
        // Spawn-heavy work with some CPU per task, from inside the runtime.
        let tasks: Vec<_> = (0..SPAWNED)
            .map(|i| {
                tokio::spawn(async move {
                    let mut x = i as u64;
                    for _ in 0..2_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    tokio::task::yield_now().await;
                    x
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Exhausts the coop budget: a forced yield.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..2_000 {
            tx.send(i).unwrap();
        }
        drop(tx);
        while rx.recv().await.is_some() {}
        // Blocking pool.
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
            .await
            .unwrap();
        // I/O driver: register and deregister a socket, make it ready.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        drop((a.unwrap(), b.unwrap()));
        // Let the workers go idle (park) before collecting.
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    release
}

fn sum(ps: &[&Point]) -> f64 {
    ps.iter().map(|p| p.value).sum()
}

fn check_shape(all: &[Point], name: &str, kind: Kind, unit: &str, per_worker: bool, runtime: &str) {
    let ps = points(all, name, Some(runtime));
    let expected = if per_worker { WORKERS } else { 1 };
    assert_eq!(ps.len(), expected, "{name}: {ps:?}");
    for p in &ps {
        assert_eq!(p.kind, kind, "{name}");
        assert_eq!(p.unit, unit, "{name}");
        assert!(p.value.is_finite() && p.value >= 0.0, "{name}: {}", p.value);
        if per_worker {
            let w: usize = p
                .attr("tokio.worker.index")
                .expect("worker index")
                .parse()
                .unwrap();
            assert!(w < WORKERS, "{name}");
        } else {
            assert_eq!(p.attr("tokio.worker.index"), None, "{name}");
        }
    }
}

#[test]
fn every_runtime_instrument_is_exported_with_plausible_values() {
    let rt = runtime();
    let (provider, exporter) = provider();
    let meter = provider.meter("test");
    let _reg = RuntimeMetricsExporter::register(&meter, rt.handle().clone(), "main");
    let release = workload(&rt);

    let all = collect(&provider, &exporter);
    for &(name, kind, unit, per_worker) in STABLE {
        check_shape(&all, name, kind, unit, per_worker, "main");
    }
    let one = |name| points(&all, name, Some("main"))[0].value;
    assert_eq!(one("tokio.worker.count"), WORKERS as f64);
    assert!(one("tokio.task.alive.count") >= PENDING as f64);
    let busy = sum(&points(&all, "tokio.worker.busy.time", Some("main")));
    assert!(busy > 0.0 && busy < 60.0, "busy {busy}");
    for p in points(&all, "tokio.worker.utilization", Some("main")) {
        assert!((0.0..=1.0).contains(&p.value), "utilization {}", p.value);
    }
    assert!(sum(&points(&all, "tokio.worker.parks", Some("main"))) >= 1.0);
    assert!(
        sum(&points(&all, "tokio.worker.park_unparks", Some("main")))
            >= sum(&points(&all, "tokio.worker.parks", Some("main")))
    );

    #[cfg(tokio_unstable)]
    {
        for &(name, kind, unit, per_worker) in UNSTABLE {
            check_shape(&all, name, kind, unit, per_worker, "main");
        }
        let polls = sum(&points(&all, "tokio.worker.polls", Some("main")));
        assert!(polls >= SPAWNED as f64, "polls {polls}");
        assert!(one("tokio.runtime.tasks.spawned") >= (SPAWNED + PENDING) as f64);
        assert!(one("tokio.runtime.remote_schedules") >= 1.0);
        assert!(one("tokio.runtime.budget_forced_yields") >= 1.0);
        assert!(one("tokio.blocking.thread.count") >= 1.0);
        assert!(one("tokio.io.fd.registered") >= 2.0);
        assert!(one("tokio.io.fd.deregistered") >= 1.0);
        assert!(one("tokio.io.ready_events") >= 1.0);
        for p in points(&all, "tokio.worker.mean_poll.duration", Some("main")) {
            assert!(p.value < 1.0, "mean poll {}", p.value);
        }
        check_buckets(&all, "tokio.worker.poll.time.bucket", "{poll}", &rt, |m| {
            (0..m.poll_time_histogram_num_buckets())
                .map(|b| m.poll_time_histogram_bucket_range(b).end)
                .collect()
        });
        let inf: f64 = points(&all, "tokio.worker.poll.time.bucket", Some("main"))
            .iter()
            .filter(|p| p.attr("le") == Some("+Inf"))
            .map(|p| p.value)
            .sum();
        assert!(inf >= SPAWNED as f64, "poll histogram total {inf}");
        check_buckets(
            &all,
            "tokio.worker.schedule.latency.bucket",
            "{task}",
            &rt,
            |m| {
                (0..m.schedule_latency_histogram_num_buckets())
                    .map(|b| m.schedule_latency_histogram_bucket_range(b).end)
                    .collect()
            },
        );
    }
    release.send(true).unwrap();
}

/// Buckets: one series per worker and Tokio bucket, `le` = Tokio's real upper
/// bounds in seconds (`+Inf` last), cumulative (nondecreasing in `le`).
#[cfg(tokio_unstable)]
fn check_buckets(
    all: &[Point],
    name: &str,
    unit: &str,
    rt: &tokio::runtime::Runtime,
    ends: impl Fn(&tokio::runtime::RuntimeMetrics) -> Vec<Duration>,
) {
    let ends = ends(&rt.metrics());
    assert!(ends.len() > 1, "{name}: histogram enabled");
    let ps = points(all, name, Some("main"));
    assert_eq!(ps.len(), WORKERS * ends.len(), "{name}");
    for w in 0..WORKERS {
        let mut series: Vec<(f64, f64)> = ps
            .iter()
            .filter(|p| p.attr("tokio.worker.index") == Some(&w.to_string()))
            .map(|p| {
                assert_eq!(p.kind, Kind::Counter, "{name}");
                assert_eq!(p.unit, unit, "{name}");
                let le = p.attr("le").unwrap();
                (
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    },
                    p.value,
                )
            })
            .collect();
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (i, (le, _)) in series.iter().enumerate() {
            if i + 1 == ends.len() {
                assert!(le.is_infinite(), "{name}: last bucket is +Inf");
            } else {
                assert_eq!(*le, ends[i].as_secs_f64(), "{name}: bucket {i} bound");
            }
        }
        assert!(
            series.windows(2).all(|p| p[0].1 <= p[1].1),
            "{name}: cumulative {series:?}"
        );
    }
}

#[test]
fn several_runtimes_are_told_apart_and_unregister_stops_reporting() {
    let a = runtime();
    let b = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (provider, exporter) = provider();
    let meter = provider.meter("test");
    let ra = RuntimeMetricsExporter::register(&meter, a.handle().clone(), "a");
    let rb = RuntimeMetricsExporter::register(&meter, b.handle().clone(), "b");
    b.block_on(async { tokio::task::yield_now().await });

    let all = collect(&provider, &exporter);
    assert_eq!(
        points(&all, "tokio.worker.count", Some("a"))[0].value,
        WORKERS as f64
    );
    assert_eq!(points(&all, "tokio.worker.count", Some("b"))[0].value, 1.0);
    assert_eq!(points(&all, "tokio.worker.busy.time", Some("b")).len(), 1);

    rb.unregister();
    let all = collect(&provider, &exporter);
    assert_eq!(points(&all, "tokio.worker.count", Some("b")).len(), 0);
    assert_eq!(points(&all, "tokio.worker.count", Some("a")).len(), 1);
    assert_eq!(ra.runtime_name(), "a");
}
