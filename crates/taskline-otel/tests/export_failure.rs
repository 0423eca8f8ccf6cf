//! A dead or silent OTLP endpoint must cost counted failed exports, reported
//! once, and never stall the application.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use taskline_otel::{OtlpConfig, RuntimeMetricsExporter, init_otlp};

const TIMEOUT: Duration = Duration::from_millis(300);
const INTERVAL: Duration = Duration::from_millis(50);
const RUN: Duration = Duration::from_millis(1500);

/// Runs a ticking workload on a runtime exported to `endpoint`; returns the
/// longest gap between two ticks, the number of error reports, and stats.
fn run_against(endpoint: String) -> (Duration, usize, taskline_otel::ExportStats) {
    let reports = Arc::new(AtomicUsize::new(0));
    let r = reports.clone();
    let guard = init_otlp(
        OtlpConfig::new()
            .with_endpoint(endpoint)
            .with_timeout(TIMEOUT)
            .with_interval(INTERVAL)
            .on_export_error(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            }),
    )
    .expect("pipeline builds without contacting the endpoint");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _reg = RuntimeMetricsExporter::register(&guard.meter(), rt.handle().clone(), "main");

    let max_gap = rt.block_on(async {
        let start = Instant::now();
        let mut last = Instant::now();
        let mut max_gap = Duration::ZERO;
        while start.elapsed() < RUN {
            let spin = tokio::spawn(async { std::hint::black_box((0..10_000u64).sum::<u64>()) });
            spin.await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            let now = Instant::now();
            max_gap = max_gap.max(now - last);
            last = now;
        }
        max_gap
    });

    // An explicit flush waits for one export, bounded by the export timeout.
    let t = Instant::now();
    assert!(
        guard.force_flush().is_err(),
        "flush to a dead endpoint reports failure"
    );
    assert!(
        t.elapsed() < TIMEOUT * 4,
        "force_flush took {:?}",
        t.elapsed()
    );
    let stats = guard.export_stats();
    // Shutdown (on drop) is bounded too.
    let t = Instant::now();
    drop(guard);
    assert!(
        t.elapsed() < TIMEOUT * 4 + Duration::from_secs(1),
        "shutdown took {:?}",
        t.elapsed()
    );
    (max_gap, reports.load(Ordering::SeqCst), stats)
}

fn check(max_gap: Duration, reports: usize, stats: &taskline_otel::ExportStats) {
    assert!(
        max_gap < TIMEOUT,
        "workload stalled {max_gap:?} (export timeout {TIMEOUT:?})"
    );
    assert!(stats.failed >= 3, "several exports failed: {stats:?}");
    assert_eq!(stats.succeeded, 0, "{stats:?}");
    assert_eq!(
        reports, 1,
        "the outage is reported once, not per export: {stats:?}"
    );
    assert_eq!(stats.reported, 1, "{stats:?}");
    assert!(stats.last_error.is_some());
}

#[test]
fn closed_port_costs_counted_failures_reported_once() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (gap, reports, stats) = run_against(format!("http://127.0.0.1:{port}/v1/metrics"));
    check(gap, reports, &stats);
}

#[test]
fn silent_listener_costs_counted_failures_reported_once() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    let (gap, reports, stats) = run_against(format!("http://127.0.0.1:{port}/v1/metrics"));
    check(gap, reports, &stats);
}
