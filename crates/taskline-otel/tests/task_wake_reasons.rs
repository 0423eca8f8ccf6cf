//! The idle histogram's `reason` attribute: a controlled event stream with
//! one idle period per reason (exact counts and sums), and a real runtime
//! recorded by the runtime hooks and taskline's subscriber, read back
//! through the SDK's in-memory exporter.

mod common;

use std::collections::BTreeMap;

use common::{Point, collect, points, provider};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use taskline_core::{
    BlockingKind, Event, EventKind, NO_VALUE, NO_WORKER, Registry, Sink, TaskKind, WakeReason,
};
use taskline_otel::task::{REASON, SPAWN_SITE, TaskMetricsConfig, TaskMetricsSink};

const IDLE: &str = "tokio.task.idle.duration";

/// An event of `task` on recording thread `thread`; `arg` is the waker
/// for a `Wake`, the worker index for polls and parks.
fn ev(kind: EventKind, ts: u64, task: u64, thread: u16) -> Event {
    let mut e = Event::new(kind, ts, task);
    e.thread = thread;
    // Threads 1 and 2 are workers 0 and 1; the others are off the workers.
    e.aux = if (1..=2).contains(&thread) {
        u32::from(thread) - 1
    } else {
        NO_WORKER
    };
    if kind == EventKind::PollStart {
        e.arg = NO_VALUE;
    }
    e
}

fn wake(ts: u64, task: u64, thread: u16, by: u64) -> Event {
    let mut e = ev(EventKind::Wake, ts, task, thread);
    e.arg = by;
    e
}

/// A poll of `task` on `thread` from `start` to `end`.
fn poll(task: u64, thread: u16, start: u64, end: u64) -> [Event; 2] {
    [
        ev(EventKind::PollStart, start, task, thread),
        ev(EventKind::PollEnd, end, task, thread),
    ]
}

/// Tasks 1..=7, each idle once for a different reason, the idle time of
/// reason `r` being `(r.index() + 1) * 1000` ns. Task 1 at site `a`, the
/// rest at site `b`.
fn one_idle_period_per_reason(registry: &Registry) -> Vec<Event> {
    let a = registry.intern_site("src/timer.rs", 1, 1, TaskKind::Task);
    let b = registry.intern_site("src/rest.rs", 2, 2, TaskKind::Task);
    let sleep = registry.intern("Sleep");
    let idle = |r: WakeReason| (r.index() as u64 + 1) * 1000;
    let mut es = Vec::new();
    for task in 1..=8 {
        let mut s = ev(EventKind::Spawn, 0, task, 1);
        s.aux = if task == 1 { a } else { b };
        es.push(s);
    }
    // Timer: task 1 waits on a Sleep; worker 0 parks; the driver wakes it.
    let t0 = 100_000;
    es.push(ev(EventKind::PollStart, t0, 1, 1));
    let mut w = ev(EventKind::ResourceWait, t0 + 1, 1, 1);
    w.aux = sleep;
    es.push(w);
    es.push(ev(EventKind::PollEnd, t0 + 2, 1, 1));
    es.push(ev(EventKind::Park, t0 + 3, 0, 1));
    es.push(wake(t0 + 2 + idle(WakeReason::Timer), 1, 1, 0));
    es.push(ev(
        EventKind::Unpark,
        t0 + 3 + idle(WakeReason::Timer),
        0,
        1,
    ));
    // Io: task 2, no timer wait, woken on parked worker 1.
    let t1 = 200_000;
    es.extend(poll(2, 2, t1, t1 + 2));
    es.push(ev(EventKind::Park, t1 + 3, 0, 2));
    es.push(wake(t1 + 2 + idle(WakeReason::Io), 2, 2, 0));
    es.push(ev(EventKind::Unpark, t1 + 3 + idle(WakeReason::Io), 0, 2));
    // Sync: task 3 woken from inside task 4's poll (the waker unnamed:
    // the thread's open poll names it).
    let t2 = 300_000;
    es.extend(poll(3, 1, t2, t2 + 2));
    let w = t2 + 2 + idle(WakeReason::Sync);
    es.push(ev(EventKind::PollStart, w - 1, 4, 2));
    es.push(wake(w, 3, 2, 0));
    es.push(ev(EventKind::PollEnd, w + 1, 4, 2));
    // Blocking: task 5 woken from a spawn_blocking section on thread 3.
    let t3 = 400_000;
    es.extend(poll(5, 1, t3, t3 + 2));
    let mut start = ev(EventKind::BlockingStart, t3 + 3, 40, 3);
    start.flags = BlockingKind::SpawnBlocking as u8;
    es.push(start);
    es.push(wake(t3 + 2 + idle(WakeReason::Blocking), 5, 3, 0));
    // Foreign: task 6 woken from thread 9, never seen in the runtime.
    let t4 = 500_000;
    es.extend(poll(6, 2, t4, t4 + 2));
    es.push(wake(t4 + 2 + idle(WakeReason::Foreign), 6, 9, 0));
    // Yield: task 7 woken on its worker after its poll (Tokio's deferred
    // yield_now), before the worker polls or parks again.
    let t5 = 600_000;
    es.extend(poll(7, 1, t5, t5 + 2));
    es.push(wake(t5 + 2 + idle(WakeReason::Yield), 7, 1, 0));
    // Unknown: task 8 polled again without a wake (hooks only).
    let t6 = 700_000;
    es.extend(poll(8, 2, t6, t6 + 2));
    es.extend(poll(8, 2, t6 + 2 + idle(WakeReason::Unknown), t6 + 9_000));
    es
}

/// (spawn site or "-", reason) -> (idle periods, idle seconds) of the idle histogram.
fn idle_series(all: &[Point]) -> BTreeMap<(String, String), (f64, f64)> {
    points(all, IDLE, None)
        .into_iter()
        .map(|p| {
            let site = p.attr(SPAWN_SITE).unwrap_or("-").to_owned();
            let reason = p.attr(REASON).expect("every idle point has a reason");
            ((site, reason.to_owned()), (p.value, p.sum))
        })
        .collect()
}

#[test]
fn each_idle_period_counts_under_the_reason_of_its_wake() {
    let registry = Registry::new();
    let events = one_idle_period_per_reason(&registry);
    let (provider, exporter) = provider();
    let mut sink = TaskMetricsSink::new(
        &provider.meter("test"),
        TaskMetricsConfig {
            attributes: vec![KeyValue::new("tokio.runtime.name", "main")],
            ..TaskMetricsConfig::default()
        },
    );
    sink.on_events(&events, &registry);
    let all = collect(&provider, &exporter);
    let got = idle_series(&all);
    let want: BTreeMap<_, _> = WakeReason::ALL
        .into_iter()
        .map(|r| {
            let ns = (r.index() as f64 + 1.0) * 1000.0;
            (("-".to_owned(), r.as_str().to_owned()), (1.0, ns * 1e-9))
        })
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, (count, sum)) in &want {
        let (c, s) = got[k];
        assert_eq!(c, *count, "{k:?}");
        assert!((s - sum).abs() < 1e-15, "{k:?}: {s} s, want {sum} s");
    }
    // The configured attributes stay on every reason's series.
    for p in points(&all, IDLE, None) {
        assert_eq!(p.attr("tokio.runtime.name"), Some("main"));
    }
}

#[test]
fn only_the_reasons_seen_get_a_series_per_spawn_site() {
    let registry = Registry::new();
    let events = one_idle_period_per_reason(&registry);
    let (provider, exporter) = provider();
    let mut sink = TaskMetricsSink::new(
        &provider.meter("test"),
        TaskMetricsConfig {
            by_spawn_site: true,
            ..TaskMetricsConfig::default()
        },
    );
    sink.on_events(&events, &registry);
    let got = idle_series(&collect(&provider, &exporter));
    let mut want = vec![("src/timer.rs:1:1".to_owned(), "timer".to_owned())];
    for r in WakeReason::ALL {
        if r != WakeReason::Timer {
            want.push(("src/rest.rs:2:2".to_owned(), r.as_str().to_owned()));
        }
    }
    want.sort();
    assert_eq!(got.into_keys().collect::<Vec<_>>(), want);
}

/// A real runtime, hooks + subscriber with resource waits: a oneshot
/// receiver is woken by its sender's poll (sync), the sender waits on a
/// `sleep` (timer), a TCP reader on readiness (io).
#[cfg(tokio_unstable)]
#[test]
fn a_real_runtime_gives_sync_io_and_timer() {
    use std::time::Duration;

    use taskline_core::{Recorder, RuntimeBuilderExt, TasklineSubscriber};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ROUNDS: usize = 3;
    let recorder = Recorder::with_defaults();
    TasklineSubscriber::new(&recorder, tracing_subscriber::registry())
        .expect("registry")
        .with_resource_waits(true)
        .try_init()
        .expect("the only global subscriber of this test binary");
    let (provider, exporter) = provider();
    recorder.add_sink(TaskMetricsSink::new(
        &provider.meter("test"),
        TaskMetricsConfig {
            by_spawn_site: true,
            ..TaskMetricsConfig::default()
        },
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&recorder)
        .build()
        .expect("runtime");
    // Tokio instruments `block_on`'s future as a task too: its idle
    // periods end without a recorded wake (its waker is the thread's).
    let block_on = line!() + 1;
    let lines = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(l.accept(), tokio::net::TcpStream::connect(addr));
        let (mut server, mut client) = (a.unwrap().0, b.unwrap());
        let mut lines = [0; 4];
        for _ in 0..ROUNDS {
            // The receiver spawns its sender inside its poll, right before
            // waiting: the sender's sleep outlasts the rest of that poll.
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let sender = async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                tx.send(()).unwrap();
            };
            let receiver = async move {
                let (l1, s) = (line!(), tokio::spawn(sender));
                rx.await.unwrap();
                (l1, s)
            };
            let (l0, r) = (line!(), tokio::spawn(receiver));
            let (l1, s) = r.await.unwrap();
            s.await.unwrap();
            // The same for a TCP reader and its writer.
            let writer = async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                client.write_all(b"x").await.unwrap();
                client
            };
            let reader = async move {
                let (l3, w) = (line!(), tokio::spawn(writer));
                let mut buf = [0u8; 1];
                server.read_exact(&mut buf).await.unwrap();
                (server, l3, w)
            };
            let (l2, r) = (line!(), tokio::spawn(reader));
            let (s, l3, w) = r.await.unwrap();
            server = s;
            client = w.await.unwrap();
            lines = [l0, l1, l2, l3];
        }
        lines
    });
    drop(rt);
    recorder.flush();
    let got = idle_series(&collect(&provider, &exporter));
    recorder.shutdown();
    let site = |line: u32| -> String {
        got.keys()
            .map(|(s, _)| s)
            .find(|s| s.contains(&format!("task_wake_reasons.rs:{line}:")))
            .unwrap_or_else(|| panic!("no idle series of line {line}: {got:?}"))
            .clone()
    };
    let mut want = BTreeMap::new();
    for (line, reason) in [
        (lines[0], "sync"),
        (lines[1], "timer"),
        (lines[2], "io"),
        (lines[3], "timer"),
    ] {
        want.insert((site(line), reason.to_owned()), ROUNDS as f64);
    }
    let (ours, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = got
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .partition(|(k, _)| !k.0.contains(&format!(":{block_on}:")));
    let counts: BTreeMap<_, _> = ours.into_iter().map(|(k, (c, _))| (k, c)).collect();
    assert_eq!(counts, want);
    assert_eq!(
        rest.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
        ["unknown"],
        "{rest:?}"
    );
}
