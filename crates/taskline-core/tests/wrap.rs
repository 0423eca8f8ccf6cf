//! The wrapper source (`Recorder::spawn`): exact counts on real runtimes,
//! with and without `--cfg tokio_unstable` (every test here runs on both;
//! the last one needs the runtime hooks, so unstable only).

mod layer_support;

use std::collections::HashMap;
use std::time::Duration;

use layer_support::{Collect, count, id_of, of};
use taskline_core::{Event, EventKind, NO_VALUE, Recorder, TaskKind, flags};

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn k_yields_are_k_plus_one_polls_and_k_wakes() {
    const K: usize = 5;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = multi_thread(2);
    let h = rt.block_on(async {
        let h = rec.spawn(async {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
        });
        let id = id_of(&h);
        h.await.unwrap();
        id
    });
    drop(rt);
    let events = col.events(&rec);
    assert_eq!(count(&events, EventKind::PollStart, h), K + 1);
    assert_eq!(count(&events, EventKind::PollEnd, h), K + 1);
    // Tokio defers a yield's wake to after the poll, so it comes from the
    // worker outside any poll (waker 0).
    let wakes = of(&events, EventKind::Wake, h);
    assert_eq!(wakes.len(), K);
    assert!(wakes.iter().all(|w| w.arg == 0), "{wakes:?}");
    assert_eq!(count(&events, EventKind::Spawn, h), 1);
    assert_eq!(count(&events, EventKind::Terminate, h), 1);
    let snapshot = rec.snapshot();
    assert_eq!(snapshot.polls, (K + 1) as u64);
    assert_eq!(snapshot.wakes, K as u64);
    rec.shutdown();
}

#[test]
fn a_wake_inside_the_tasks_own_poll_is_a_self_wake() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let h = rec.spawn(layer_support::SelfWakeYield::new());
        let id = id_of(&h);
        h.await.unwrap();
        id
    });
    drop(rt);
    let wakes = of(&col.events(&rec), EventKind::Wake, id);
    assert_eq!(wakes.len(), 1);
    assert!(
        wakes[0].arg == id && wakes[0].has_flag(flags::SELF_WAKE),
        "{wakes:?}"
    );
    rec.shutdown();
}

#[test]
fn a_task_woken_by_another_names_its_waker() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = multi_thread(2);
    let (waiter, sender) = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiter = rec.spawn(async move { rx.await.unwrap() });
        let waiter_id = id_of(&waiter);
        // Let the waiter park on the channel first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sender = rec.spawn(async move { tx.send(7).unwrap() });
        let sender_id = id_of(&sender);
        sender.await.unwrap();
        assert_eq!(waiter.await.unwrap(), 7);
        (waiter_id, sender_id)
    });
    drop(rt);
    let events = col.events(&rec);
    let wakes = of(&events, EventKind::Wake, waiter);
    assert_eq!(wakes.len(), 1, "{wakes:?}");
    assert_eq!(wakes[0].arg, sender, "the wake names the sending task");
    assert!(!wakes[0].has_flag(flags::SELF_WAKE));
    rec.shutdown();
}

#[test]
fn n_spawns_give_n_completions_at_the_callers_site_spawn_first() {
    const N: usize = 2000;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = multi_thread(2);
    let line = line!() + 3;
    let ids: Vec<u64> = rt.block_on(async {
        let handles: Vec<_> = (0..N)
            .map(|i| rec.spawn(async move { std::hint::black_box(i) }))
            .collect();
        let ids = handles.iter().map(id_of).collect();
        for h in handles {
            h.await.unwrap();
        }
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let mut first: HashMap<u64, EventKind> = HashMap::new();
    for e in &events {
        if let Some(k) = e.kind() {
            first.entry(e.task).or_insert(k);
        }
    }
    for &id in &ids {
        assert_eq!(
            first.get(&id),
            Some(&EventKind::Spawn),
            "task {id}: Spawn comes first"
        );
        assert_eq!(count(&events, EventKind::Spawn, id), 1);
        assert_eq!(count(&events, EventKind::Terminate, id), 1);
        assert_eq!(count(&events, EventKind::PollStart, id), 1);
    }
    let spawn = of(&events, EventKind::Spawn, ids[0])[0];
    assert_eq!(spawn.flags & flags::ENUM_MASK, TaskKind::Task as u8);
    let site = rec.registry().site(spawn.aux).expect("interned site");
    assert_eq!((site.file.ends_with("wrap.rs"), site.line), (true, line));
    let first_poll = of(&events, EventKind::PollStart, ids[0])[0];
    assert_ne!(
        first_poll.arg, NO_VALUE,
        "the first poll carries its delay from the spawn"
    );
    let snapshot = rec.snapshot();
    assert_eq!(snapshot.spawned, N as u64);
    assert_eq!(snapshot.polls, N as u64);
    rec.shutdown();
}

#[test]
fn an_aborted_task_is_terminated_outside_any_poll() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = multi_thread(2);
    let id = rt.block_on(async {
        let h = rec.spawn(std::future::pending::<()>());
        let id = id_of(&h);
        tokio::time::sleep(Duration::from_millis(20)).await;
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        id
    });
    drop(rt);
    let events: Vec<Event> = col
        .events(&rec)
        .into_iter()
        .filter(|e| e.task == id)
        .collect();
    let kinds: Vec<_> = events.iter().filter_map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Spawn,
            EventKind::PollStart,
            EventKind::PollEnd,
            EventKind::Terminate
        ],
        "spawned, polled once (pending), then dropped outside a poll"
    );
    rec.shutdown();
}

#[test]
fn named_tasks_carry_their_name() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let h = rec.spawn_named("request-handler", async {});
        let id = id_of(&h);
        h.await.unwrap();
        id
    });
    drop(rt);
    let events = col.events(&rec);
    let names = of(&events, EventKind::TaskName, id);
    assert_eq!(names.len(), 1);
    assert_eq!(
        rec.registry().string(names[0].aux).as_deref(),
        Some("request-handler")
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn with_the_hooks_on_polls_are_counted_once_and_wakes_come_from_the_wrapper() {
    use taskline_core::RuntimeBuilderExt;
    const K: usize = 4;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&rec)
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let h = rec.spawn(async {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
        });
        let id = id_of(&h);
        h.await.unwrap();
        id
    });
    drop(rt);
    let events = col.events(&rec);
    assert_eq!(count(&events, EventKind::PollStart, id), K + 1);
    assert_eq!(count(&events, EventKind::PollEnd, id), K + 1);
    assert_eq!(count(&events, EventKind::Spawn, id), 1);
    assert_eq!(count(&events, EventKind::Terminate, id), 1);
    assert_eq!(
        count(&events, EventKind::Wake, id),
        K,
        "hooks alone record no wakes"
    );
    rec.shutdown();
}

/// The same workload under tokio-metrics' `TaskMonitor` and under the
/// wrapper: equal instrumented, first-poll, poll and idle counts.
#[test]
fn counts_equal_tokio_metrics_task_monitor() {
    const TASKS: usize = 200;
    const YIELDS: usize = 7;
    async fn work(i: usize) {
        for _ in 0..(i % YIELDS) {
            tokio::task::yield_now().await;
        }
    }
    let rt = multi_thread(2);
    let monitor = tokio_metrics::TaskMonitor::new();
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|i| tokio::spawn(monitor.instrument(work(i))))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let rec = Recorder::with_defaults();
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS).map(|i| rec.spawn(work(i))).collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    drop(rt);
    let m = monitor.cumulative();
    let s = rec.snapshot();
    assert_eq!(m.instrumented_count, TASKS as u64);
    assert_eq!(s.spawned, m.instrumented_count);
    assert_eq!(s.first_polls, m.first_poll_count);
    assert_eq!(s.polls, m.total_poll_count);
    assert_eq!(s.idle_time.count, m.total_idled_count);
    assert_eq!(s.terminated, TASKS as u64);
    rec.shutdown();
}
