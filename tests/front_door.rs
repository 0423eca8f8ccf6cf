//! The front door: `Taskline::builder()` → guard → `build_runtime`, and what
//! the guard finishes when it goes.
#![cfg(all(feature = "trace", feature = "otel"))]

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant};

use taskline::trace::flight::FlightConfig;
use taskline::{RecorderConfig, SetupError, Taskline};

const TASKS: usize = 200;

fn current_thread() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    b
}

#[test]
fn dropping_the_guard_finishes_the_trace_file() {
    let dir = common::temp_dir("front-door-drop");
    let path = dir.join("dropped.pftrace");
    {
        let taskline = Taskline::builder()
            .trace_file(&path)
            .start()
            .expect("start");
        let rt = taskline
            .build_runtime(&mut current_thread(), "drop-test")
            .expect("runtime");
        rt.block_on(async {
            for i in 0..TASKS {
                tokio::spawn(async move { i }).await.expect("task");
            }
        });
        drop(rt);
        // No shutdown(): the guard's drop finishes the file.
    }
    let bytes = std::fs::read(&path).expect("trace file");
    let rec = taskline::trace::read_trace(&bytes).expect("a readable trace");
    assert!(!rec.unfinished, "the drop wrote the end marker");
    assert_eq!(rec.dropped_events, 0);
    #[cfg(tokio_unstable)]
    {
        assert!(common::count(&rec.events, taskline::EventKind::PollStart) >= TASKS);
        assert!(common::count(&rec.events, taskline::EventKind::Spawn) >= TASKS);
        assert!(common::count(&rec.events, taskline::EventKind::Terminate) >= TASKS);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_recorder_feeds_the_hooks_and_the_subscriber() {
    let taskline = Taskline::builder().start().expect("start");
    // Installed for this thread only: the current-thread runtime polls here.
    let subscriber = taskline
        .subscriber(tracing_subscriber::registry())
        .expect("registry-backed");
    let _default = tracing::subscriber::set_default(subscriber);
    let rt = taskline
        .build_runtime(&mut current_thread(), "one-recorder")
        .expect("runtime");
    rt.block_on(common::hand_over(20));
    drop(rt);
    let snapshot = taskline.snapshot();
    assert!(snapshot.recorder.is_some(), "the recorder's own snapshot");
    #[cfg(tokio_unstable)]
    {
        assert!(snapshot.spawned >= 40, "{snapshot}");
        assert!(snapshot.polls >= 40, "{snapshot}");
        assert!(snapshot.wakes >= 20, "the subscriber's wakes: {snapshot}");
    }
    assert_eq!(taskline.mixing(), None);
    assert!(!taskline.report().contains("WARNING"));
    taskline.shutdown().expect("shutdown");
}

#[test]
fn set_up_errors_are_typed_and_keep_their_cause() {
    let bad = RecorderConfig {
        ring_capacity: 3,
        ..RecorderConfig::default()
    };
    let e = Taskline::builder()
        .recorder_config(bad)
        .start()
        .unwrap_err();
    assert!(matches!(e, SetupError::Config(_)), "{e:?}");
    let cause = e.source().expect("the config error");
    assert!(cause.is::<taskline::ConfigError>(), "{cause:?}");
    assert!(
        !e.to_string().contains(&cause.to_string()),
        "not flattened: {e}"
    );

    let missing = common::temp_dir("front-door-errors").join("no/such/dir/t.pftrace");
    let e = Taskline::builder()
        .trace_file(&missing)
        .start()
        .unwrap_err();
    let SetupError::TraceFile { path, source } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, &missing);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(e.source().expect("cause").is::<std::io::Error>());

    let e = Taskline::builder().dump_on_panic().start().unwrap_err();
    assert!(
        matches!(e, SetupError::DumpOnPanicWithoutFlightRecorder),
        "{e:?}"
    );
    assert!(e.source().is_none());

    let e = Taskline::builder()
        .flight_recorder(FlightConfig {
            max_bytes: 0,
            ..FlightConfig::default()
        })
        .start()
        .unwrap_err();
    assert!(matches!(e, SetupError::Flight(_)), "{e:?}");
    assert!(
        e.source()
            .expect("cause")
            .is::<taskline::trace::flight::FlightError>()
    );

    // A stack without a registry underneath: refused, nothing installed.
    let e = Taskline::builder()
        .tracing(tracing::subscriber::NoSubscriber::default())
        .start()
        .unwrap_err();
    let cause = e.source().expect("the subscriber error");
    assert!(
        matches!(
            cause.downcast_ref::<taskline::SubscriberError>(),
            Some(taskline::SubscriberError::NoRegistry)
        ),
        "{e:?}"
    );
    let global_is_none = std::thread::spawn(|| {
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
    })
    .join()
    .expect("thread");
    assert!(
        global_is_none,
        "a failed start installs no global subscriber"
    );
}

#[test]
fn a_dead_otlp_endpoint_is_counted_and_shutdown_is_bounded() {
    // Port 1 on loopback: nothing listens, every export fails at once.
    let config = taskline::otel::OtlpConfig::new()
        .with_endpoint("http://127.0.0.1:1/v1/metrics")
        .with_interval(Duration::from_millis(100))
        .with_timeout(Duration::from_millis(500))
        .on_export_error(|_| {});
    let bound = Duration::from_secs(2);
    let taskline = Taskline::builder()
        .otlp(config)
        .shutdown_timeout(bound)
        .start()
        .expect("start");
    let rt = taskline
        .build_runtime(&mut current_thread(), "dead-endpoint")
        .expect("runtime");
    let started = Instant::now();
    rt.block_on(async {
        // The application is never held up by the failing exports.
        while taskline.otlp_stats().expect("otlp on").failed == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no export failed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    drop(rt);
    let stats = taskline.otlp_stats().expect("otlp on");
    assert!(stats.failed >= 1 && stats.succeeded == 0, "{stats:?}");
    let started = Instant::now();
    let result = taskline.shutdown();
    let took = started.elapsed();
    assert!(
        took < bound + Duration::from_secs(1),
        "shutdown took {took:?}"
    );
    // The last export fails too: reported, with its cause.
    match result {
        Ok(()) => {}
        Err(e @ (SetupError::Otlp(_) | SetupError::Timeout { .. })) => {
            assert!(matches!(e, SetupError::Timeout { .. }) || e.source().is_some());
        }
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[test]
fn dropping_a_guard_with_a_dead_endpoint_is_bounded_too() {
    let config = taskline::otel::OtlpConfig::new()
        .with_endpoint("http://127.0.0.1:1/v1/metrics")
        .with_timeout(Duration::from_millis(500))
        .on_export_error(|_| {});
    let bound = Duration::from_secs(2);
    let taskline = Taskline::builder()
        .otlp(config)
        .shutdown_timeout(bound)
        .start()
        .expect("start");
    let rt = taskline
        .build_runtime(&mut current_thread(), "dead-endpoint-drop")
        .expect("runtime");
    rt.block_on(async { tokio::spawn(async {}).await.expect("task") });
    drop(rt);
    let started = Instant::now();
    drop(taskline);
    let took = started.elapsed();
    assert!(took < bound + Duration::from_secs(1), "drop took {took:?}");
}

#[test]
fn process_metrics_can_be_turned_off_and_profiles_are_still_counted() {
    let (url, bodies) = common::otlp_endpoint();
    let taskline = Taskline::builder()
        .otlp(
            taskline::otel::OtlpConfig::new()
                .with_endpoint(url)
                .with_interval(Duration::from_secs(3600))
                .with_timeout(Duration::from_secs(2)),
        )
        .process_metrics(false)
        .start()
        .expect("start");
    let profiles = taskline.profiles_collected().expect("on with otlp");
    profiles.add(taskline::otel::ProfileType::Cpu);
    taskline.shutdown().expect("shutdown: the final export");
    let bodies = bodies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        bodies
            .iter()
            .any(|b| common::contains(b, b"taskline.profiles.collected"))
    );
    assert!(
        !bodies.iter().any(|b| common::contains(b, b"process.")),
        "process metrics off"
    );
}
