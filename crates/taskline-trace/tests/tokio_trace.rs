//! A real Tokio workload recorded by the runtime hooks and the tracing layer,
//! written as a Perfetto trace, read back, and checked by the independent
//! Python validator (official Perfetto protos, byte-exact re-serialization).

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use taskline_core::TasklineLayer;
use taskline_core::{Event, EventKind, flags};
use taskline_core::{Recorder, Registry, RuntimeBuilderExt, Sink};
use taskline_trace::{FlowStart, PerfettoWriter, TraceOptions, read_trace};
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        self.0.lock().expect("lock").extend_from_slice(events);
    }
}

/// tracing caches each callsite's interest globally, computed from the
/// dispatchers alive when the callsite is first hit. Two tests in this binary
/// creating runtimes at once, one with a scoped dispatcher and one without,
/// race on that cache and the instrumented test can see Tokio's callsites
/// disabled. (A real program installs one global subscriber and has no such
/// race.) Tests here run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskline-trace-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `scripts/validate-trace.sh` on `file` and returns its JSON line.
fn validate(file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/validate-trace.sh"))
        .arg(file)
        .output()
        .expect("run scripts/validate-trace.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "validator failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The integer after `"key": ` in the validator's JSON (top-level keys are unique).
fn json_u64(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\": ");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

#[test]
fn recorded_workload_round_trips_and_validates() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = Recorder::with_defaults();
    let collected = Collect::default();
    rec.add_sink(collected.clone());
    let dir = temp_dir("workload");
    let path = dir.join("trace.pftrace");
    // Compression is off by default for streaming; this trace turns it on so
    // the official-proto validation also covers packets inside `compressed_packets`.
    let sink = PerfettoWriter::with_options(
        std::fs::File::create(&path).expect("create trace"),
        TraceOptions {
            compress: true,
            ..TraceOptions::default()
        },
    );
    let handle = sink.handle();
    rec.add_sink(sink);

    let dispatch = Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(&rec)));
    let _g = tracing::dispatcher::set_default(&dispatch);
    let d = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&rec)
        .on_thread_start(move || {
            let g = tracing::dispatcher::set_default(&d);
            GUARD.with(|slot| *slot.borrow_mut() = Some(g));
        })
        .on_thread_stop(|| GUARD.with(|slot| drop(slot.borrow_mut().take())))
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Ping-pong pairs: every message is a cross-task wake.
        let mut handles = Vec::new();
        for _ in 0..20 {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
            let (back_tx, mut back_rx) = tokio::sync::mpsc::channel::<u32>(1);
            handles.push(tokio::spawn(async move {
                while let Some(v) = rx.recv().await {
                    if back_tx.send(v + 1).await.is_err() {
                        break;
                    }
                }
            }));
            handles.push(tokio::spawn(async move {
                for i in 0..5 {
                    tx.send(i).await.expect("send");
                    assert_eq!(back_rx.recv().await, Some(i + 1));
                }
            }));
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(1));
        for _ in 0..10 {
            let sem = sem.clone();
            handles.push(tokio::spawn(async move {
                let _p = sem.acquire().await.expect("acquire");
                tokio::task::yield_now().await;
            }));
        }
        handles.push(tokio::spawn(async {
            tokio::task::spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(2)))
                .await
                .expect("blocking");
        }));
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    rec.flush();
    handle.set_dropped_events(rec.stats().dropped);
    handle
        .finish_with_registry(rec.registry())
        .expect("finish trace");

    let all = collected.0.lock().expect("lock").clone();
    // Hooks and layer both report spawns and terminations; the trace keeps the first report.
    let (mut spawned, mut terminated) = (HashSet::new(), HashSet::new());
    let events: Vec<Event> = all
        .iter()
        .filter(|e| match e.kind() {
            Some(EventKind::Spawn) => spawned.insert(e.task),
            Some(EventKind::Terminate) => terminated.insert(e.task),
            _ => true,
        })
        .copied()
        .collect();
    let bytes = std::fs::read(&path).expect("read trace");
    assert_eq!(handle.bytes_written(), bytes.len() as u64);
    let back = read_trace(&bytes).expect("read_trace");
    assert!(!back.unfinished);
    assert_eq!(back.duplicates_skipped, (all.len() - events.len()) as u64);
    assert!(
        back.duplicates_skipped > 0,
        "both sources reported lifecycles"
    );
    assert_eq!(back.events.len(), events.len());
    // Each thread's events come back exactly, in recorded order (across
    // threads the reader returns timestamp order; events delivered late by
    // a flush may sit elsewhere in the delivered stream).
    assert!(
        back.by_thread() == taskline_trace::events_by_thread(&events),
        "the trace holds exactly the recorded events"
    );
    assert_eq!(back.registry.strings(), rec.registry().strings());
    assert_eq!(back.registry.sites(), rec.registry().sites());
    assert_eq!(back.registry.threads(), rec.registry().threads());
    assert_eq!(back.dropped_events, rec.stats().dropped);

    let polls = events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::PollStart))
        .count() as u64;
    let blocking = events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::BlockingStart))
        .count() as u64;
    let cross_wakes = events
        .iter()
        .filter(|e| {
            e.kind() == Some(EventKind::Wake)
                && e.arg != 0
                && e.arg != e.task
                && !e.has_flag(flags::SELF_WAKE)
        })
        .count() as u64;
    assert!(polls > 100, "the workload polled ({polls})");
    assert!(
        cross_wakes >= 100,
        "the ping-pong woke across tasks ({cross_wakes})"
    );
    assert!(blocking >= 1, "spawn_blocking recorded");

    let json = validate(&path);
    assert_eq!(json_u64(&json, "poll_slices"), polls, "{json}");
    assert_eq!(json_u64(&json, "blocking_slices"), blocking, "{json}");
    // One arrow per woken task at a time: the arrows from tasks are at most
    // the cross-task wakes, the driver's at most the wakes from outside a task.
    assert_eq!(json_u64(&json, "flows"), back.flows, "{json}");
    let from_tasks = back
        .flow_arrows
        .iter()
        .filter(|a| a.from == FlowStart::Task);
    let from_tasks = from_tasks.count() as u64;
    assert!(from_tasks > 0 && from_tasks <= cross_wakes, "{json}");
    let untasked_wakes = events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Wake) && e.arg == 0);
    assert!(
        back.flows - from_tasks <= untasked_wakes.count() as u64,
        "{json}"
    );
    for track in ["\"worker 0\"", "\"worker 1\"", "\"blocking ("] {
        assert!(json.contains(track), "thread track {track} in {json}");
    }
    assert!(json_u64(&json, "flows_terminated") > 0, "{json}");
    assert_eq!(
        json_u64(&json, "events"),
        (events.len() + back.counters.len()) as u64,
        "{json}"
    );
    assert_eq!(json_u64(&json, "format_version"), 4, "{json}");
    assert!(json_u64(&json, "compressed_blocks") > 0, "{json}");
    for track in ["\"alive tasks\"", "\"runnable tasks\"", "\"process RSS\""] {
        assert!(json.contains(track), "counter track {track} in {json}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn finish_recorder_flushes_and_closes_a_trace_the_recorder_still_owns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = Recorder::with_defaults();
    let dir = temp_dir("finish");
    let path = dir.join("trace.pftrace");
    let (sink, handle) = PerfettoWriter::create(&path).expect("create trace");
    rec.add_sink(sink);
    let rt = tokio::runtime::Builder::new_current_thread()
        .taskline(&rec)
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..10 {
            tokio::spawn(async { tokio::task::yield_now().await })
                .await
                .expect("task");
        }
    });
    handle.finish_recorder(&rec).expect("finish");
    let written = handle.events_written();
    assert!(written >= 20, "spawns and polls of 10 tasks ({written})");
    // The recorder keeps the sink; later events are ignored, not written.
    rt.block_on(async { tokio::spawn(async {}).await.expect("task") });
    rec.flush();
    assert!(handle.events_ignored() > 0);
    assert!(
        handle.finish_recorder(&rec).is_err(),
        "finishing twice is an error"
    );
    let back = read_trace(&std::fs::read(&path).expect("read")).expect("read_trace");
    assert_eq!(back.events.len() as u64, written);
    assert_eq!(back.dropped_events, rec.stats().dropped);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A workload that holds a known number of tasks alive shows exactly that
/// number (plus the runtime's own three) in the `alive tasks` counter track, with both sources (hooks and
/// layer) reporting every spawn: a missed deduplication would show twice as many.
#[test]
fn alive_tasks_counter_shows_the_live_tasks() {
    const LIVE: usize = 137;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = Recorder::with_defaults();
    let dir = temp_dir("alive");
    let path = dir.join("trace.pftrace");
    let (sink, handle) = PerfettoWriter::create(&path).expect("create trace");
    rec.add_sink(sink);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(&rec)));
    let _g = tracing::dispatcher::set_default(&dispatch);
    let d = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&rec)
        .on_thread_start(move || {
            let g = tracing::dispatcher::set_default(&d);
            GUARD.with(|slot| *slot.borrow_mut() = Some(g));
        })
        .on_thread_stop(|| GUARD.with(|slot| drop(slot.borrow_mut().take())))
        .build()
        .expect("runtime");
    rt.block_on(async {
        let release = Arc::new(tokio::sync::Notify::new());
        let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(LIVE);
        let mut handles = Vec::new();
        for _ in 0..LIVE {
            let release = release.clone();
            let started = started_tx.clone();
            handles.push(tokio::spawn(async move {
                let notified = release.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                started.send(()).await.expect("started");
                notified.await;
            }));
        }
        for _ in 0..LIVE {
            started_rx.recv().await.expect("a task started");
        }
        // Let the writer's sample interval (1 ms of event time) pass with
        // exactly LIVE tasks alive, then end them all.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        release.notify_waiters();
        for h in handles {
            h.await.expect("task");
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        tokio::spawn(async {}).await.expect("task");
    });
    drop(rt);
    handle.finish_recorder(&rec).expect("finish");
    let back = read_trace(&std::fs::read(&path).expect("read")).expect("read_trace");
    let alive: Vec<i64> = back
        .counters
        .iter()
        .filter(|c| c.track == "alive tasks")
        .map(|c| c.value)
        .collect();
    // Besides ours, the two workers (Tokio runs them as blocking-pool tasks)
    // and the `block_on` future are alive throughout.
    let expected = (LIVE + 2 + 1) as i64;
    assert!(
        alive.contains(&expected),
        "a sample shows the {LIVE} live tasks (+3): {alive:?}"
    );
    assert_eq!(
        alive.iter().max().copied(),
        Some(expected),
        "never more than the live tasks: {alive:?}"
    );
    assert!(
        alive
            .iter()
            .skip_while(|&&v| v != expected)
            .any(|&v| v <= 3),
        "the count falls back once the tasks end: {alive:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
