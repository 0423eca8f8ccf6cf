//! Hooks + taskline's global subscriber + trace file + OTLP to a local
//! endpoint, set up through the front door, end to end. One test: the
//! global subscriber can be installed once per process.
#![cfg(all(feature = "trace", feature = "otel"))]

mod common;

use std::time::{Duration, Instant};

use taskline::Taskline;

#[test]
fn hooks_subscriber_trace_and_otlp_through_the_front_door() {
    let dir = common::temp_dir("end-to-end");
    let path = dir.join("e2e.pftrace");
    let (url, bodies) = common::otlp_endpoint();
    let taskline = Taskline::builder()
        .tracing(tracing_subscriber::registry())
        .trace_file(&path)
        .otlp(
            taskline::otel::OtlpConfig::new()
                .with_endpoint(url)
                .with_interval(Duration::from_millis(200))
                .with_timeout(Duration::from_secs(2))
                .with_service_name("taskline-e2e"),
        )
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .expect("start");
    let rt = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all(),
            "e2e",
        )
        .expect("runtime");
    rt.block_on(common::hand_over(50));
    // Let at least one periodic export carry the runtime's metrics.
    let started = Instant::now();
    while !bodies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|b| common::contains(b, b"tokio.worker.count"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no export with runtime metrics"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(rt);
    // A profiler counts what it delivered; the counter rides the same export.
    let profiles = taskline.profiles_collected().expect("on with otlp");
    profiles.add(taskline::otel::ProfileType::Heap);
    let snapshot = taskline.snapshot();
    let trace = taskline.trace_file().cloned().expect("trace on");
    assert_eq!(taskline.mixing(), None, "one recorder, one world");
    let started = Instant::now();
    taskline.shutdown().expect("shutdown");
    assert!(started.elapsed() < Duration::from_secs(6));
    let stats_bodies = bodies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        stats_bodies
            .iter()
            .any(|b| common::contains(b, b"taskline-e2e")),
        "the resource's service name"
    );
    let exported = |name: &[u8]| stats_bodies.iter().any(|b| common::contains(b, name));
    assert!(
        exported(b"taskline.profiles.collected"),
        "profiles counter exported"
    );
    // Process metrics are on by default with the OTLP export (Linux /proc).
    if taskline::otel::ProcessMetricsExporter::SUPPORTED {
        for name in [
            &b"process.cpu.time"[..],
            b"process.memory.usage",
            b"process.memory.virtual",
            b"process.thread.count",
            b"process.open_file_descriptor.count",
        ] {
            assert!(exported(name), "{} exported", String::from_utf8_lossy(name));
        }
    }

    let rec = taskline::trace::read_trace(&std::fs::read(&path).expect("trace file"))
        .expect("a readable trace");
    assert!(!rec.unfinished);
    assert!(trace.events_written() as usize >= rec.events.len());
    #[cfg(tokio_unstable)]
    {
        // 100 tasks: polls from the hooks, wakes from the subscriber, in
        // one recorder and so in one trace.
        assert!(snapshot.spawned >= 100, "{snapshot}");
        assert!(snapshot.wakes >= 50, "{snapshot}");
        assert!(common::count(&rec.events, taskline::EventKind::Spawn) >= 100);
        assert!(common::count(&rec.events, taskline::EventKind::PollStart) >= 100);
        assert!(common::count(&rec.events, taskline::EventKind::Wake) >= 50);
        // The task metrics reached the endpoint too (the final export).
        assert!(
            stats_bodies
                .iter()
                .any(|b| common::contains(b, b"tokio.task.poll.duration")),
            "task metrics exported"
        );
    }
    #[cfg(not(tokio_unstable))]
    let _ = snapshot;
    let _ = std::fs::remove_dir_all(&dir);
}
