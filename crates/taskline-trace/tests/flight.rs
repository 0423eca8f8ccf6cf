//! The flight recorder: bounded memory, dump contents, concurrent dumps, and
//! an automatic dump of a poll that blocks its worker, while it blocks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use taskline_core::Recorder;
use taskline_core::RecorderConfig;
use taskline_core::Registry;
use taskline_core::RuntimeBuilderExt;
use taskline_core::Sink;
use taskline_core::{Event, EventKind, TaskKind};
use taskline_trace::flight::{DumpReason, FlightConfig, FlightError, FlightRecorder};
use taskline_trace::read_trace;

const MS: u64 = 1_000_000;

/// A fresh directory under the target dir.
fn temp_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("flight-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Task `i`: spawn, poll (1 µs on worker 0), terminate, starting at `ts`.
fn task_events(i: u64, ts: u64, site: u32) -> [Event; 4] {
    let mut spawn = Event::new(EventKind::Spawn, ts, i);
    spawn.aux = site;
    let mut start = Event::new(EventKind::PollStart, ts + 100, i);
    start.arg = taskline_core::NO_VALUE;
    let end = Event::new(EventKind::PollEnd, ts + 1_100, i);
    let term = Event::new(EventKind::Terminate, ts + 1_200, i);
    [spawn, start, end, term]
}

fn quiet_config(dir: &Path) -> FlightConfig {
    FlightConfig {
        dump_dir: dir.to_path_buf(),
        dump_on_slow_poll: false,
        ..FlightConfig::default()
    }
}

#[test]
fn memory_stays_bounded_over_millions_of_events() {
    let dir = temp_dir("bounded");
    let max_bytes = 100_000; // 3125 events of 32 bytes
    let (mut fr, handle) = FlightRecorder::new(FlightConfig {
        max_bytes,
        max_age: Duration::from_secs(3600),
        ..quiet_config(&dir)
    })
    .expect("config");
    let reg = Registry::new();
    let site = reg.intern_site("bounded.rs", 1, 1, TaskKind::Task);
    let mut batch = Vec::with_capacity(4096);
    let mut total = 0u64;
    for b in 0..500u64 {
        batch.clear();
        for i in 0..1024u64 {
            batch.extend(task_events(b * 1024 + i, (b * 1024 + i) * 2_000, site));
        }
        fr.on_events(&batch, &reg);
        total += batch.len() as u64;
        let s = handle.stats();
        assert!(s.retained_bytes <= max_bytes, "batch {b}: {s:?}");
    }
    assert_eq!(total, 2_048_000);
    let s = handle.stats();
    // Stored compactly: more than twice the events 32-byte records would hold.
    assert!(s.retained_events > 2 * max_bytes / 32, "{s:?}");
    assert_eq!(s.evicted + s.retained_events as u64, total);
    // What is kept is the newest events, in order.
    let kept = handle.retained();
    assert_eq!(kept.last(), batch.last());
    assert!(kept.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
}

#[test]
fn a_dump_holds_the_last_window_and_nothing_older() {
    let dir = temp_dir("window");
    let (mut fr, handle) = FlightRecorder::new(FlightConfig {
        max_age: Duration::from_millis(500),
        ..quiet_config(&dir)
    })
    .expect("config");
    let reg = Registry::new();
    let site = reg.intern_site("window.rs", 7, 3, TaskKind::Task);
    // 3 s of tasks, one every ms.
    let all: Vec<Event> = (0..3000u64)
        .flat_map(|i| task_events(i + 1, i * MS, site))
        .collect();
    for chunk in all.chunks(300) {
        fr.on_events(chunk, &reg);
    }
    let path = dir.join("window.pftrace");
    let info = handle
        .dump_now(&path)
        .wait(Duration::from_secs(10))
        .expect("dump");
    assert_eq!(info.reason, DumpReason::Requested);
    assert_eq!(info.path, path);
    let bytes = std::fs::read(&path).expect("dump file");
    assert_eq!(info.bytes, bytes.len() as u64);
    let rec = read_trace(&bytes).expect("a valid trace");
    let newest = all.last().expect("events").ts_ns;
    let expected: Vec<Event> = all
        .iter()
        .copied()
        .filter(|e| e.ts_ns >= newest - 500 * MS)
        .collect();
    assert_eq!(info.events, expected.len());
    assert_eq!(rec.events.len(), expected.len());
    assert!(rec.events.iter().all(|e| e.ts_ns >= newest - 500 * MS));
    let got: Vec<(u64, u8, u64)> = rec
        .events
        .iter()
        .map(|e| (e.ts_ns, e.kind, e.task))
        .collect();
    let want: Vec<(u64, u8, u64)> = expected.iter().map(|e| (e.ts_ns, e.kind, e.task)).collect();
    assert_eq!(got, want);
    assert_eq!(rec.registry.site(site).map(|s| s.line), Some(7));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("window.pftrace")]);
}

#[test]
fn concurrent_dumps_are_serialized_and_valid() {
    let dir = temp_dir("concurrent");
    let (mut fr, handle) = FlightRecorder::new(quiet_config(&dir)).expect("config");
    let reg = Registry::new();
    let site = reg.intern_site("concurrent.rs", 1, 1, TaskKind::Task);
    let events: Vec<Event> = (0..2_000u64)
        .flat_map(|i| task_events(i + 1, i * 10_000, site))
        .collect();
    fr.on_events(&events, &reg);
    let shared_path = dir.join("same.pftrace");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let h = handle.clone();
            let own = dir.join(format!("own-{t}.pftrace"));
            let same = shared_path.clone();
            std::thread::spawn(move || {
                let a = h.dump_now(own);
                let b = h.dump_now(same);
                (
                    a.wait(Duration::from_secs(30)),
                    b.wait(Duration::from_secs(30)),
                )
            })
        })
        .collect();
    // Keep feeding while dumps run: the dump must not see a torn ring.
    let more: Vec<Event> = (2_000..2_500u64)
        .flat_map(|i| task_events(i + 1, i * 10_000, site))
        .collect();
    fr.on_events(&more, &reg);
    for t in threads {
        let (a, b) = t.join().expect("thread");
        let a = a.expect("own dump");
        b.expect("shared dump");
        let rec = read_trace(&std::fs::read(&a.path).expect("file")).expect("valid");
        assert_eq!(rec.events.len(), a.events);
        assert!(a.events >= events.len());
    }
    let rec = read_trace(&std::fs::read(&shared_path).expect("file")).expect("valid");
    assert!(rec.events.len() >= events.len());
    assert_eq!(handle.stats().dumps, 12);
    assert!(
        std::fs::read_dir(&dir).expect("dir").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "no temporary file left"
    );
}

#[test]
fn triggers_dump_automatically_and_are_rate_limited() {
    let dir = temp_dir("trigger");
    let (fr, handle) = FlightRecorder::new(FlightConfig {
        min_auto_interval: Duration::from_secs(3600),
        ..quiet_config(&dir)
    })
    .expect("config");
    let mut fr = fr.with_trigger("task 13", |e, _| {
        e.kind() == Some(EventKind::Terminate) && e.task % 13 == 0
    });
    let reg = Registry::new();
    let events: Vec<Event> = (1..100u64)
        .flat_map(|i| task_events(i, i * MS, 0))
        .collect();
    for chunk in events.chunks(40) {
        fr.on_events(chunk, &reg);
    }
    drop(fr); // waits for queued dumps
    let s = handle.stats();
    assert_eq!(s.auto_dumps, 1, "{s:?}");
    assert!(s.suppressed >= 1, "{s:?}");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("-trigger-task_13.pftrace"), "{files:?}");
    assert!(files[0].starts_with("taskline-20"), "{files:?}");
    // After the recorder is gone, requests fail instead of hanging.
    let late = handle
        .dump_now(dir.join("late.pftrace"))
        .wait(Duration::from_secs(5));
    assert!(matches!(late, Err(FlightError::Stopped)), "{late:?}");
}

#[test]
fn a_dump_to_an_unwritable_place_fails_cleanly() {
    let dir = temp_dir("unwritable");
    let (mut fr, handle) = FlightRecorder::new(quiet_config(&dir)).expect("config");
    fr.on_events(&task_events(1, 0, 0), &Registry::new());
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let r = handle
        .dump_now(blocker.join("sub").join("x.pftrace"))
        .wait(Duration::from_secs(5));
    assert!(matches!(r, Err(FlightError::Io(_))), "{r:?}");
    assert_eq!(handle.stats().failed, 1);
}

#[test]
fn a_blocking_poll_is_dumped_while_it_still_blocks() {
    let dir = temp_dir("stuck");
    let recorder = Recorder::new(RecorderConfig {
        drain_interval: Duration::from_millis(2),
        reorder_window: Duration::from_millis(1),
        slow_poll_threshold: Duration::from_millis(50),
        ..RecorderConfig::default()
    })
    .expect("recorder");
    let (fr, handle) = FlightRecorder::for_recorder(
        FlightConfig {
            dump_dir: dir.clone(),
            watchdog_interval: Duration::from_millis(2),
            ..FlightConfig::default()
        },
        recorder.config(),
    )
    .expect("config");
    recorder.add_sink(fr);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .enable_all()
        .build()
        .expect("runtime");
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let blocker = rt.spawn(async move {
        // Blocks its worker: exactly what the watchdog is for.
        std::thread::sleep(Duration::from_millis(1500));
        done2.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let mut dumped_while_blocking = None;
    while started.elapsed() < Duration::from_secs(10) {
        let found = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with("stuck-poll.pftrace")
            });
        if let Some(f) = found {
            dumped_while_blocking = Some((f.path(), done.load(Ordering::SeqCst)));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (path, was_done) = dumped_while_blocking.expect("a stuck-poll dump appears");
    assert!(
        !was_done,
        "the dump was written while the poll was still blocking"
    );
    rt.block_on(blocker).expect("task");
    let rec = read_trace(&std::fs::read(&path).expect("file")).expect("valid trace");
    // The dump holds the blocking poll's start and not its end.
    let id = rec
        .events
        .iter()
        .rev()
        .find(|e| e.kind() == Some(EventKind::PollStart))
        .map(|e| e.task)
        .expect("a PollStart");
    assert!(
        !rec.events
            .iter()
            .any(|e| e.kind() == Some(EventKind::PollEnd) && e.task == id),
        "the stuck poll has not ended in the dump"
    );
    // Its PollEnd later is no second auto-dump (same poll, and rate-limited).
    recorder.flush();
    drop(rt);
    recorder.shutdown();
    let s = handle.stats();
    assert_eq!(s.auto_dumps, 1, "{s:?}");
}

#[test]
fn a_slow_poll_end_dumps_once_per_interval() {
    let dir = temp_dir("slow-end");
    let (mut fr, handle) = FlightRecorder::for_recorder(
        FlightConfig {
            dump_dir: dir.clone(),
            min_auto_interval: Duration::from_secs(3600),
            ..FlightConfig::default()
        },
        &RecorderConfig {
            slow_poll_threshold: Duration::from_millis(10),
            ..RecorderConfig::default()
        },
    )
    .expect("config");
    let reg = Registry::new();
    let mut start = Event::new(EventKind::PollStart, 0, 1);
    start.aux = 0;
    // Start and end in one batch: only the PollEnd path can see this poll.
    let fast_end = Event::new(EventKind::PollEnd, 9 * MS, 1);
    fr.on_events(&[start, fast_end], &reg);
    let mut start2 = start;
    start2.ts_ns = 10 * MS;
    let slow_end = Event::new(EventKind::PollEnd, 30 * MS, 1);
    let mut start3 = start;
    start3.ts_ns = 31 * MS;
    let slow_end3 = Event::new(EventKind::PollEnd, 60 * MS, 1);
    fr.on_events(&[start2, slow_end], &reg);
    fr.on_events(&[start3, slow_end3], &reg);
    drop(fr);
    let s = handle.stats();
    assert_eq!((s.auto_dumps, s.suppressed), (1, 1), "rate-limited: {s:?}");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with("-slow-poll.pftrace"), "{files:?}");
    let rec = read_trace(&std::fs::read(dir.join(&files[0])).expect("file")).expect("valid");
    // Written after the first slow poll arrived; the second may or may not be in.
    assert!(rec.events.len() >= 4, "{}", rec.events.len());
    assert_eq!(rec.events[..4], [start, fast_end, start2, slow_end]);
}
