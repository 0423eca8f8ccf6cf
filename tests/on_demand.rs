//! On-demand traces (`Taskline::trace_for`): the file holds exactly the
//! window asked for, with the tasks spawned before it named by their spawn
//! site; the limits answer with their typed errors; the event cap cuts the
//! trace short and says so; a shutdown ends a running trace and writes it;
//! and no sink is attached while no trace runs.
//!
//! Workloads are ordered by awaiting, not by sleeping: what runs "before"
//! finishes before `trace_for` is called, what runs "after" starts once
//! `wait()` returned, so no assertion depends on the machine's speed.

mod common;

use std::time::Duration;

use taskline::on_demand::{CutReason, OnDemandConfig, OnDemandError};
use taskline::trace::{Recording, read_trace};
use taskline::{EventKind, Taskline};

fn taskline(config: OnDemandConfig) -> Taskline {
    Taskline::builder()
        .on_demand(config)
        .start()
        .expect("start")
}

fn runtime(t: &Taskline) -> tokio::runtime::Runtime {
    t.build_runtime(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all(),
        "on-demand-test",
    )
    .expect("runtime")
}

/// No pause between traces, no compression (so the file's bytes can be searched).
fn quick() -> OnDemandConfig {
    OnDemandConfig {
        min_interval: Duration::ZERO,
        compress: false,
        ..OnDemandConfig::default()
    }
}

fn id(handle: &tokio::task::JoinHandle<impl Sized>) -> u64 {
    taskline::task_id_u64(handle.id())
}

/// Whether the (uncompressed) trace interns the event name `text`: an
/// `EventName.name` field (tag 0x12, one-byte length) holding exactly it.
/// Poll slices are named after their task's label, and a label is interned
/// only where a slice uses it.
fn interns_event_name(bytes: &[u8], text: &str) -> bool {
    assert!(text.len() < 128);
    let mut needle = vec![0x12, text.len() as u8];
    needle.extend_from_slice(text.as_bytes());
    bytes.windows(needle.len()).any(|w| w == needle)
}

/// The site `line` of this file in the recording's registry, as the
/// trace's poll names spell it.
fn site_name(rec: &Recording, line: u32) -> String {
    let site = rec
        .registry
        .sites()
        .into_iter()
        .find(|s| s.file.ends_with("on_demand.rs") && s.line == line)
        .unwrap_or_else(|| panic!("no site at line {line}: {:?}", rec.registry.sites()));
    site.to_string()
}

/// Waits (bounded) until `task`'s last poll has ended: it is no longer a
/// live task in the recorder's aggregates.
fn wait_until_gone(t: &Taskline, task: u64) {
    for _ in 0..10_000 {
        if !t.snapshot().tasks.iter().any(|s| s.id == task) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("task {task} never ended");
}

fn events_of(rec: &Recording, task: u64) -> Vec<EventKind> {
    rec.events
        .iter()
        .filter(|e| e.task == task)
        .filter_map(|e| e.kind())
        .collect()
}

#[test]
#[cfg_attr(not(tokio_unstable), ignore = "task hooks need --cfg tokio_unstable")]
fn the_trace_holds_only_its_window_and_names_tasks_spawned_before_it() {
    let dir = common::temp_dir("on-demand-window");
    let path = dir.join("window.pftrace");
    let t = taskline(quick());
    let rt = runtime(&t);
    // Before the window: one task runs to completion, one waits for a message.
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let (done_before, old, old_line) = rt.block_on(async {
        let done = tokio::spawn(async { tokio::task::yield_now().await });
        let done_id = id(&done);
        done.await.expect("task");
        let old_line = line!() + 1;
        let old = tokio::spawn(async move { rx.await.unwrap_or(0) });
        tokio::task::yield_now().await;
        (done_id, old, old_line)
    });
    let old_id = id(&old);
    // The finished task's last poll ends on its worker after the join
    // handle is woken: wait until the recorder has its end.
    wait_until_gone(&t, done_before);
    let trace = t
        .trace_for(Duration::from_millis(400), &path)
        .expect("trace starts");
    // Inside: a new task, and the old one woken and polled to its end.
    let (inside, inside_line) = rt.block_on(async {
        let inside_line = line!() + 1;
        let inside = tokio::spawn(async { tokio::task::yield_now().await });
        let inside_id = id(&inside);
        inside.await.expect("task");
        tx.send(7).expect("old task waits");
        assert_eq!(old.await.expect("task"), 7);
        (inside_id, inside_line)
    });
    let info = trace.wait().expect("trace written");
    // After: nothing of this may be in the file.
    let after = rt.block_on(async {
        let after = tokio::spawn(async {});
        let after_id = id(&after);
        after.await.expect("task");
        after_id
    });
    assert_eq!(info.path, path);
    assert_eq!(info.end_ns - info.start_ns, 400_000_000);
    assert!(info.cut_short.is_none(), "{info:?}");
    let bytes = std::fs::read(&path).expect("file");
    assert_eq!(info.bytes, bytes.len() as u64);
    let rec = read_trace(&bytes).expect("a taskline trace");
    assert!(!rec.unfinished, "the file has its end marker");
    assert_eq!(rec.events.len(), info.events);
    assert!(
        rec.events
            .iter()
            .all(|e| (info.start_ns..info.end_ns).contains(&e.ts_ns)),
        "an event outside [{}, {})",
        info.start_ns,
        info.end_ns
    );
    // Before and after are absent, the old task's spawn too.
    assert_eq!(events_of(&rec, done_before), vec![]);
    assert_eq!(events_of(&rec, after), vec![]);
    let old_events = events_of(&rec, old_id);
    assert!(!old_events.contains(&EventKind::Spawn), "{old_events:?}");
    // The old task's last poll, with its termination, is in.
    assert!(old_events.contains(&EventKind::PollStart), "{old_events:?}");
    assert!(old_events.contains(&EventKind::Terminate), "{old_events:?}");
    // The new task is whole: spawned at its site, polled twice, terminated.
    let spawn = rec
        .events
        .iter()
        .find(|e| e.task == inside && e.kind() == Some(EventKind::Spawn))
        .expect("the inside task's spawn");
    let site = rec.registry.site(spawn.aux).expect("a named site");
    assert_eq!(
        (site.file.ends_with("on_demand.rs"), site.line),
        (true, inside_line)
    );
    let inside_events = events_of(&rec, inside);
    let polls = inside_events
        .iter()
        .filter(|k| **k == EventKind::PollStart)
        .count();
    assert_eq!(polls, 2, "{inside_events:?}");
    // Both tasks' polls are named after their spawn sites, the old task's
    // although its spawn is not in the file.
    assert!(interns_event_name(&bytes, &site_name(&rec, inside_line)));
    assert!(interns_event_name(&bytes, &site_name(&rec, old_line)));
    drop(rt);
    t.shutdown().expect("shutdown");
}

#[test]
fn busy_too_soon_too_long_and_zero_are_refused_with_their_errors() {
    let dir = common::temp_dir("on-demand-limits");
    let t = taskline(OnDemandConfig {
        max_duration: Duration::from_secs(2),
        min_interval: Duration::from_secs(600),
        ..OnDemandConfig::default()
    });
    let over = t.trace_for(Duration::from_millis(2_001), dir.join("over.pftrace"));
    match over {
        Err(OnDemandError::TooLong { asked, max }) => {
            assert_eq!(
                (asked, max),
                (Duration::from_millis(2_001), Duration::from_secs(2))
            );
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(matches!(
        t.trace_for(Duration::ZERO, dir.join("zero.pftrace")),
        Err(OnDemandError::ZeroDuration)
    ));
    let first = t
        .trace_for(Duration::from_millis(300), dir.join("first.pftrace"))
        .expect("the first trace starts");
    match t.trace_for(Duration::from_millis(300), dir.join("second.pftrace")) {
        Err(e @ OnDemandError::Busy { remaining }) => {
            assert!(remaining <= Duration::from_millis(300), "{remaining:?}");
            assert_eq!(e.retry_after(), Some(remaining));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // Too long is said also while one runs: asking again will not help.
    assert!(matches!(
        t.trace_for(Duration::from_secs(3), dir.join("over2.pftrace")),
        Err(OnDemandError::TooLong { .. })
    ));
    first.wait().expect("the first trace is written");
    match t.trace_for(Duration::from_millis(300), dir.join("third.pftrace")) {
        Err(OnDemandError::TooSoon { retry_after }) => {
            assert!(
                retry_after > Duration::from_secs(500) && retry_after <= Duration::from_secs(600),
                "{retry_after:?}"
            );
        }
        other => panic!("expected TooSoon, got {other:?}"),
    }
    // Only the first trace wrote a file.
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, vec!["first.pftrace".to_string()]);
    t.shutdown().expect("shutdown");
}

#[test]
fn a_bad_on_demand_config_is_refused_at_start() {
    let err = Taskline::builder()
        .on_demand(OnDemandConfig {
            max_events: 0,
            ..OnDemandConfig::default()
        })
        .start()
        .expect_err("max_events 0");
    assert!(matches!(
        err,
        taskline::SetupError::OnDemand(OnDemandError::Config(_))
    ));
}

#[test]
#[cfg_attr(not(tokio_unstable), ignore = "task hooks need --cfg tokio_unstable")]
fn the_event_cap_cuts_the_trace_short_and_the_file_says_so() {
    let dir = common::temp_dir("on-demand-cap");
    let path = dir.join("cap.pftrace");
    let t = taskline(OnDemandConfig {
        max_events: 100,
        ..quick()
    });
    let rt = runtime(&t);
    let trace = t
        .trace_for(Duration::from_millis(400), &path)
        .expect("trace starts");
    // 200 tasks: a spawn, a poll start and end, a termination each.
    rt.block_on(async {
        let handles: Vec<_> = (0..200).map(|_| tokio::spawn(async {})).collect();
        for h in handles {
            h.await.expect("task");
        }
    });
    let info = trace.wait().expect("trace written");
    let cut = info.cut_short.expect("cut short");
    assert_eq!(cut.reason, CutReason::MaxEvents);
    assert_eq!(info.events, 100);
    // Every spawn, poll and termination of the 200 tasks was counted.
    assert!(cut.events_not_written >= 800 - 100, "{cut:?}");
    assert!((info.start_ns..info.end_ns).contains(&cut.at_ns));
    let rec = read_trace(&std::fs::read(&path).expect("file")).expect("a taskline trace");
    assert!(!rec.unfinished);
    assert_eq!(rec.events.len(), 100);
    // The file holds the first 100 events of the window, all before the cut,
    // and its end marker counts the ones left out as dropped.
    assert!(rec.events.iter().all(|e| e.ts_ns <= cut.at_ns));
    assert_eq!(
        rec.dropped_events,
        cut.events_not_written + info.dropped_by_recorder
    );
    drop(rt);
    t.shutdown().expect("shutdown");
}

#[test]
fn a_shutdown_ends_a_running_trace_and_writes_it() {
    let dir = common::temp_dir("on-demand-shutdown");
    let path = dir.join("long.pftrace");
    let t = taskline(quick());
    let trace = t
        .trace_for(Duration::from_secs(60), &path)
        .expect("trace starts");
    let asked_end = trace.end_ns();
    let begun = std::time::Instant::now();
    t.shutdown().expect("shutdown");
    // Shutdown did not wait for the minute.
    assert!(begun.elapsed() < Duration::from_secs(30));
    assert!(trace.is_finished());
    let info = trace.wait().expect("trace written");
    let cut = info.cut_short.expect("cut short by the shutdown");
    assert_eq!(cut.reason, CutReason::Shutdown);
    assert_eq!(cut.at_ns, info.end_ns);
    assert!(info.end_ns < asked_end);
    let rec = read_trace(&std::fs::read(&path).expect("file")).expect("a taskline trace");
    assert!(!rec.unfinished);
}

#[test]
#[cfg_attr(not(tokio_unstable), ignore = "task hooks need --cfg tokio_unstable")]
fn off_no_sink_is_attached_while_no_trace_runs() {
    let dir = common::temp_dir("on-demand-off");
    let t = taskline(quick());
    let rt = runtime(&t);
    let work = || rt.block_on(async { tokio::spawn(async {}).await.expect("task") });
    work();
    t.recorder().flush();
    assert_eq!(t.recorder().sink_count(), 0);
    let trace = t
        .trace_for(Duration::from_millis(200), dir.join("a.pftrace"))
        .expect("trace starts");
    assert_eq!(t.recorder().sink_count(), 1);
    work();
    trace.wait().expect("written");
    assert_eq!(t.recorder().sink_count(), 0);
    work();
    // A second trace attaches again, and detaches again.
    let trace = t
        .trace_for(Duration::from_millis(100), dir.join("b.pftrace"))
        .expect("trace starts");
    assert_eq!(t.recorder().sink_count(), 1);
    trace.wait().expect("written");
    assert_eq!(t.recorder().sink_count(), 0);
    drop(rt);
    t.shutdown().expect("shutdown");
}
