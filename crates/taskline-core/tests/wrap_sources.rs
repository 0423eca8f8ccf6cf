//! `Recorder::spawn_named` with other sources on the same recorder (the
//! runtime hooks, taskline's `tracing` subscriber, or both): the task keeps
//! the caller's spawn site and the given name, and its polls and wakes are
//! each counted once, in the snapshot and in the events.
//!
//! A test binary of its own, its cases one at a time: `tracing`'s callsite
//! interest is process-wide, and a dispatcher made while another test's
//! runtime registers Tokio's waker callsites can miss them (they stay
//! disabled), which would lose the wakes these cases count.
#![cfg(tokio_unstable)]

mod layer_support;

use std::time::Duration;

use layer_support::{Collect, count, id_of, with_dispatch};
use taskline_core::{EventKind, Recorder, RuntimeBuilderExt, TasklineSubscriber};
use tracing::Dispatch;

const K: usize = 3;

/// One case at a time (see the module docs).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(hooks: bool, subscriber: bool) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2);
    if hooks {
        b.taskline(&rec);
    }
    let (rt, _g) = if subscriber {
        let d = Dispatch::new(
            TasklineSubscriber::new(&rec, tracing_subscriber::registry()).expect("registry-backed"),
        );
        let g = tracing::dispatcher::set_default(&d);
        (with_dispatch(b, &d), Some(g))
    } else {
        (b.enable_all().build().unwrap(), None)
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let line = line!() + 3;
    let h = {
        let _in = rt.enter();
        rec.spawn_named("named-handler", async move {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
            rx.await.unwrap();
        })
    };
    let id = id_of(&h);
    // While it waits on the channel, the live task shows its site and name.
    std::thread::sleep(Duration::from_millis(30));
    let snapshot = rec.snapshot();
    let task = snapshot
        .tasks
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("task {id} live in {:?}", snapshot.tasks));
    let site = rec.registry().site(task.site).expect("interned site");
    assert_eq!(
        (site.file.ends_with("tests/wrap_sources.rs"), site.line),
        (true, line),
        "hooks {hooks}, subscriber {subscriber}: the caller's site, got {site:?}"
    );
    assert_eq!(task.name.as_deref(), Some("named-handler"));
    let task_site = task.site;
    tx.send(()).unwrap();
    rt.block_on(h).unwrap();
    drop(rt);
    let events = col.events(&rec);
    assert_eq!(
        count(&events, EventKind::PollStart, id),
        K + 2,
        "polls once each"
    );
    assert_eq!(count(&events, EventKind::PollEnd, id), K + 2);
    assert_eq!(
        count(&events, EventKind::Wake, id),
        K + 1,
        "wakes once each"
    );
    assert_eq!(count(&events, EventKind::TaskName, id), 1);
    // (The subscriber also reports the `block_on` futures as tasks, so
    // the totals are not this task's alone: read its site.)
    let snapshot = rec.snapshot();
    let s = snapshot
        .sites
        .iter()
        .find(|s| s.id == task_site)
        .expect("the task's site");
    assert_eq!(s.name, "named-handler");
    assert_eq!(
        (s.spawned, s.terminated, s.polls, s.wakes),
        (1, 1, (K + 2) as u64, (K + 1) as u64)
    );
    rec.shutdown();
}

#[test]
fn with_the_hooks_a_named_task_keeps_its_site_and_name() {
    check(true, false);
}

#[test]
fn with_the_subscriber_a_named_task_keeps_its_site_and_name() {
    check(false, true);
}

#[test]
fn with_hooks_and_subscriber_a_named_task_keeps_its_site_and_name() {
    check(true, true);
}
