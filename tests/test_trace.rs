//! The per-test trace helper (`taskline::testing`, the `go test -trace`
//! counterpart): the trace is named after the test, readable, holds the
//! test's tasks, and two traced tests running at the same time in one
//! process each get only their own tasks; a failing test leaves its trace.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use taskline::testing::{TRACE_EXTENSION, TraceTest};
use taskline::trace::{Recording, read_trace};
use taskline::{EventKind, task_id_u64};

fn read(path: &Path) -> Recording {
    let rec = read_trace(&std::fs::read(path).expect("the trace file")).expect("a taskline trace");
    assert!(!rec.unfinished, "{} has its end marker", path.display());
    rec
}

/// Lines of this file at which the recording's `Spawn`s happened.
fn spawn_lines(rec: &Recording) -> BTreeSet<u32> {
    rec.events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn))
        .filter_map(|e| rec.registry.site(e.aux))
        .filter(|s| s.file.ends_with("test_trace.rs"))
        .map(|s| s.line)
        .collect()
}

fn tasks_with(rec: &Recording, kind: EventKind) -> BTreeSet<u64> {
    rec.events
        .iter()
        .filter(|e| e.kind() == Some(kind))
        .map(|e| e.task)
        .collect()
}

#[test]
#[cfg_attr(not(tokio_unstable), ignore = "task hooks need --cfg tokio_unstable")]
fn the_trace_is_named_after_the_test_and_holds_its_tasks() {
    let dir = common::temp_dir("test-trace-named");
    let test = TraceTest::for_this_test().dir(&dir);
    let path = test.path();
    assert_eq!(
        path,
        dir.join(format!(
            "the_trace_is_named_after_the_test_and_holds_its_tasks.{TRACE_EXTENSION}"
        ))
    );
    let (ids, line) = test.run(async {
        let line = line!() + 1;
        let handles: Vec<_> = (0..5).map(|i| tokio::spawn(async move { i * 2 })).collect();
        let ids: BTreeSet<u64> = handles.iter().map(|h| task_id_u64(h.id())).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("task");
        }
        assert_eq!(sum, 20);
        (ids, line)
    });
    let rec = read(&path);
    assert_eq!(spawn_lines(&rec), BTreeSet::from([line]));
    assert_eq!(spawned_here(&rec), ids);
    assert!(tasks_with(&rec, EventKind::PollStart).is_superset(&ids));
    assert!(tasks_with(&rec, EventKind::Terminate).is_superset(&ids));
    only_own_tasks(&rec);
}

/// Tasks spawned in this file (not the runtime's own: its workers'
/// launch, the `block_on` body).
fn spawned_here(rec: &Recording) -> BTreeSet<u64> {
    rec.events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn))
        .filter(|e| {
            rec.registry
                .site(e.aux)
                .is_some_and(|s| s.file.ends_with("test_trace.rs"))
        })
        .map(|e| e.task)
        .collect()
}

/// Every task the trace has an event of was spawned in it: by the test's
/// runtime, not another's.
fn only_own_tasks(rec: &Recording) {
    let spawned = tasks_with(rec, EventKind::Spawn);
    let seen: BTreeSet<u64> = rec
        .events
        .iter()
        .map(|e| e.task)
        .filter(|&t| t != 0)
        .collect();
    let strangers: Vec<_> = seen.difference(&spawned).collect();
    assert!(
        strangers.is_empty(),
        "tasks not spawned in this trace: {strangers:?}"
    );
}

/// What a traced body spawned: its tasks' ids and the lines of its spawns.
struct Spawned {
    ids: BTreeSet<u64>,
    receivers: BTreeSet<u64>,
    lines: BTreeSet<u32>,
}

/// Runs a traced test body that hands 20 values to 20 tasks it spawns,
/// meeting the other body at `barrier` first so both run at once.
fn traced_pairs(dir: &Path, name: &str, barrier: Arc<Barrier>) -> Spawned {
    TraceTest::new(name).dir(dir).run(async move {
        // Both bodies are running now.
        let barrier_line = line!() + 1;
        let meet = tokio::task::spawn_blocking(move || barrier.wait());
        let mut ids = BTreeSet::from([task_id_u64(meet.id())]);
        meet.await.expect("barrier");
        let mut receivers = BTreeSet::new();
        let mut handles = Vec::new();
        let line = line!() + 4;
        for i in 0..20u64 {
            let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
            let h = tokio::spawn(async move {
                let _ = ready_tx.send(());
                rx.await.unwrap_or(0)
            });
            receivers.insert(task_id_u64(h.id()));
            handles.push(h);
            // Sent once the receiver runs, so it (nearly always) waits and is woken.
            ready_rx.await.expect("receiver runs");
            tx.send(i).expect("receiver waits");
        }
        for h in handles {
            h.await.expect("task");
        }
        ids.extend(&receivers);
        Spawned {
            ids,
            receivers,
            lines: BTreeSet::from([barrier_line, line]),
        }
    })
}

#[test]
#[cfg_attr(not(tokio_unstable), ignore = "task hooks need --cfg tokio_unstable")]
fn two_traced_tests_at_once_each_get_only_their_own_tasks() {
    let dir = common::temp_dir("test-trace-parallel");
    let barrier = Arc::new(Barrier::new(2));
    let run = |name: &'static str| {
        let (dir, barrier) = (dir.clone(), barrier.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || traced_pairs(&dir, name, barrier))
            .expect("thread")
    };
    let (a, b) = (run("suite::a"), run("suite::b"));
    let a = a.join().expect("test a");
    let b = b.join().expect("test b");
    assert_eq!(a.lines, b.lines);
    assert!(a.ids.is_disjoint(&b.ids));
    for (file, own, other) in [("suite.a", &a, &b), ("suite.b", &b, &a)] {
        let rec = read(&dir.join(format!("{file}.{TRACE_EXTENSION}")));
        assert_eq!(spawn_lines(&rec), own.lines);
        assert_eq!(
            spawned_here(&rec),
            own.ids,
            "{file}: its own tasks, each spawned"
        );
        only_own_tasks(&rec);
        assert!(tasks_with(&rec, EventKind::Terminate).is_superset(&own.ids));
        let seen: BTreeSet<u64> = rec.events.iter().map(|e| e.task).collect();
        assert!(
            seen.is_disjoint(&other.ids),
            "{file} holds events of the other test's tasks"
        );
        // The thread-local subscribers recorded the hand-overs' wakes into
        // the right file (Tokio's waker events need its `tracing` feature).
        let woken = tasks_with(&rec, EventKind::Wake);
        assert!(
            woken.is_disjoint(&other.ids),
            "{file}: a wake of the other test's task"
        );
        assert!(
            !woken.is_disjoint(&own.receivers),
            "{file}: no receiver's wake: {woken:?} vs {:?}",
            own.receivers
        );
    }
    // No global subscriber was installed along the way: a new thread sees none.
    let global_is_none = std::thread::spawn(|| {
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>())
    })
    .join()
    .expect("thread");
    assert!(global_is_none);
}

#[test]
fn a_failing_test_leaves_its_trace_and_still_fails() {
    let dir = common::temp_dir("test-trace-failing");
    let test = TraceTest::new("fails").dir(&dir).current_thread();
    let path = test.path();
    let outcome = std::panic::catch_unwind(|| {
        test.run(async {
            tokio::spawn(async {}).await.expect("task");
            panic!("the test's own failure");
        })
    });
    let payload = outcome.expect_err("the body's panic goes on");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("the test's own failure")
    );
    let rec = read(&path);
    #[cfg(tokio_unstable)]
    assert_eq!(spawned_here(&rec).len(), 1);
    #[cfg(not(tokio_unstable))]
    let _ = rec;
}

#[test]
fn an_unwritable_directory_is_an_error_from_try_run() {
    let dir = common::temp_dir("test-trace-unwritable");
    // A file where the directory should be.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("file");
    let err = TraceTest::new("t")
        .dir(&blocker)
        .try_run(async { 1 })
        .expect_err("cannot create the trace");
    assert!(
        matches!(err, taskline::SetupError::TraceFile { .. }),
        "{err:?}"
    );
}
