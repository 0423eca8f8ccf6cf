//! The exact-count cases every source of Tokio's `tracing` instrumentation
//! must pass on real Tokio runtimes, without the runtime hooks: included by
//! `tests/layer.rs` (the `TasklineLayer` on a registry) and
//! `tests/subscriber.rs` (the `TasklineSubscriber`), each of which defines
//! `source(&Recorder) -> Dispatch` and `source_with_fmt(..)`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use super::layer_support::{
    Captured, Collect, SelfWakeYield, count, current_thread, id_of, multi_thread, of, site_at,
    spawn_yielders,
};
use taskline_core::Recorder;
use taskline_core::RecorderConfig;
use taskline_core::{BlockingKind, Event, EventKind, TaskKind, WakeOp, flags};

fn wakes_of(events: &[Event], task: u64) -> Vec<Event> {
    of(events, EventKind::Wake, task)
}

#[cfg(tokio_unstable)]
#[test]
fn spawn_ids_match_join_handles_and_every_task_terminates() {
    const N: usize = 40;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let mut future_size = 0;
    let mut spawn_line = 0;
    let ids: Vec<u64> = rt.block_on(async {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let fut = async move {
                    let a = [i as u8; 100];
                    tokio::task::yield_now().await;
                    std::hint::black_box(a).len()
                };
                future_size = std::mem::size_of_val(&fut) as u64;
                // Same line: the spawn site is where `spawn` is called.
                let (h, line) = (tokio::spawn(fut), line!());
                spawn_line = line;
                h
            })
            .collect();
        let mut ids = Vec::new();
        for h in handles {
            ids.push(id_of(&h));
            assert_eq!(h.await.expect("join"), 100);
        }
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let mine: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(mine.len(), N);
    for &id in &ids {
        let spawns = of(&events, EventKind::Spawn, id);
        assert_eq!(
            spawns.len(),
            1,
            "task {id}: one Spawn, task.id == JoinHandle::id()"
        );
        let s = spawns[0];
        assert!(s.has_flag(flags::FROM_LAYER));
        assert_eq!(TaskKind::from_flags(s.flags), TaskKind::Task);
        assert_eq!(s.arg, future_size, "future size");
        let site = rec.registry().site(s.aux).expect("site interned");
        assert!(site.file.ends_with("cases.rs"), "site file {}", site.file);
        assert_eq!(site.line, spawn_line, "site line");
        assert_eq!(
            count(&events, EventKind::Terminate, id),
            1,
            "task {id}: one Terminate"
        );
        assert!(count(&events, EventKind::PollStart, id) >= 1);
        assert_eq!(
            count(&events, EventKind::PollStart, id),
            count(&events, EventKind::PollEnd, id)
        );
    }
    // All tasks share one site.
    let sites: HashSet<u32> = ids
        .iter()
        .map(|&id| of(&events, EventKind::Spawn, id)[0].aux)
        .collect();
    assert_eq!(sites.len(), 1);
    // The block_on future is reported too, as kind block_on.
    assert!(events.iter().any(|e| e.kind() == Some(EventKind::Spawn)
        && TaskKind::from_flags(e.flags) == TaskKind::BlockOn));
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn self_waking_yields_are_polls_and_self_wakes() {
    const K: usize = 6;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let id = rt.block_on(async {
        let h = tokio::spawn(async {
            for _ in 0..K {
                SelfWakeYield::new().await;
            }
        });
        let id = id_of(&h);
        h.await.expect("join");
        id
    });
    drop(rt);
    let events = col.events(&rec);
    let starts = of(&events, EventKind::PollStart, id);
    assert_eq!(starts.len(), K + 1);
    assert_eq!(count(&events, EventKind::PollEnd, id), K + 1);
    for s in &starts {
        assert!(s.has_flag(flags::FROM_LAYER));
        assert!(
            s.aux < 2,
            "worker index of a 2-worker runtime, got {}",
            s.aux
        );
    }
    let wakes = wakes_of(&events, id);
    assert_eq!(wakes.len(), K);
    for w in &wakes {
        assert!(w.has_flag(flags::SELF_WAKE), "{w:?}");
        assert_eq!(w.arg, id);
        assert_eq!(w.flags & flags::ENUM_MASK, WakeOp::WakeByRef as u8);
    }
    // Polls strictly alternate start/end.
    let seq: Vec<EventKind> = events
        .iter()
        .filter(|e| e.task == id)
        .filter_map(|e| e.kind())
        .filter(|k| matches!(k, EventKind::PollStart | EventKind::PollEnd))
        .collect();
    for pair in seq.chunks(2) {
        assert_eq!(pair, [EventKind::PollStart, EventKind::PollEnd]);
    }
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn yield_now_is_k_plus_one_polls_and_k_wakes() {
    const K: usize = 4;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = current_thread(&d);
    let id = rt.block_on(async {
        let h = tokio::spawn(async {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
        });
        let id = id_of(&h);
        h.await.expect("join");
        id
    });
    drop(rt);
    let events = col.events(&rec);
    assert_eq!(count(&events, EventKind::PollStart, id), K + 1);
    assert_eq!(count(&events, EventKind::PollEnd, id), K + 1);
    // Tokio defers yield_now's wake to the scheduler, after the poll: the
    // wake is seen, but outside any task (documented in the layer module).
    let wakes = wakes_of(&events, id);
    assert_eq!(wakes.len(), K);
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn a_task_woken_by_another_task_names_it_oneshot() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = current_thread(&d);
    let (waiter, sender) = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiter = tokio::spawn(async move { rx.await.expect("value") });
        // Let the waiter run until it waits on the channel.
        tokio::task::yield_now().await;
        let sender = tokio::spawn(async move { tx.send(7).expect("send") });
        let (w, s) = (id_of(&waiter), id_of(&sender));
        assert_eq!(waiter.await.expect("join"), 7);
        sender.await.expect("join");
        (w, s)
    });
    drop(rt);
    let events = col.events(&rec);
    let wakes = wakes_of(&events, waiter);
    assert!(
        wakes
            .iter()
            .any(|w| w.arg == sender && !w.has_flag(flags::SELF_WAKE)),
        "waiter {waiter} woken by sender {sender}: {wakes:?}"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn a_task_woken_by_another_task_names_it_notify_multi_thread() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let (waiter, notifier) = rt.block_on(async {
        let notify = Arc::new(tokio::sync::Notify::new());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let n = notify.clone();
        let waiter = tokio::spawn(async move {
            let notified = n.notified();
            tokio::pin!(notified);
            let mut ready_tx = Some(ready_tx);
            // Say "ready" only once the waker is registered (poll returned
            // Pending), so the notification must wake this task.
            std::future::poll_fn(|cx| {
                let r = notified.as_mut().poll(cx);
                if r.is_pending()
                    && let Some(tx) = ready_tx.take()
                {
                    tx.send(()).expect("ready");
                }
                r
            })
            .await;
        });
        ready_rx.await.expect("waiter ready");
        let notifier = tokio::spawn(async move { notify.notify_one() });
        let ids = (id_of(&waiter), id_of(&notifier));
        waiter.await.expect("join");
        notifier.await.expect("join");
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let wakes = wakes_of(&events, waiter);
    assert!(
        wakes.iter().any(|w| w.arg == notifier),
        "waiter {waiter} woken by notifier {notifier}: {wakes:?}"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn spawn_blocking_is_a_blocking_section_not_a_poll() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(1, &d);
    let id = rt.block_on(async {
        let h = tokio::task::spawn_blocking(|| 6 * 7);
        let id = id_of(&h);
        assert_eq!(h.await.expect("join"), 42);
        id
    });
    drop(rt);
    let events = col.events(&rec);
    let spawn = of(&events, EventKind::Spawn, id);
    assert_eq!(spawn.len(), 1);
    assert_eq!(TaskKind::from_flags(spawn[0].flags), TaskKind::Blocking);
    let starts = of(&events, EventKind::BlockingStart, id);
    let ends = of(&events, EventKind::BlockingEnd, id);
    assert_eq!((starts.len(), ends.len()), (1, 1));
    assert_eq!(
        starts[0].flags & flags::ENUM_MASK,
        BlockingKind::SpawnBlocking as u8
    );
    assert!(ends[0].ts_ns >= starts[0].ts_ns);
    assert_eq!(count(&events, EventKind::PollStart, id), 0);
    assert_eq!(count(&events, EventKind::Terminate, id), 1);
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn block_in_place_wrapper_records_a_blocking_section() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let r = rec.clone();
    let v = rt.block_on(async move {
        tokio::spawn(async move {
            taskline_core::block_in_place(&r, || {
                std::thread::sleep(std::time::Duration::from_millis(2));
                5
            })
        })
        .await
        .expect("join")
    });
    assert_eq!(v, 5);
    drop(rt);
    let events = col.events(&rec);
    let starts = of(&events, EventKind::BlockingStart, 0);
    let ends = of(&events, EventKind::BlockingEnd, 0);
    assert_eq!((starts.len(), ends.len()), (1, 1));
    assert_eq!(
        starts[0].flags & flags::ENUM_MASK,
        BlockingKind::BlockInPlace as u8
    );
    assert_eq!(
        ends[0].flags & flags::ENUM_MASK,
        BlockingKind::BlockInPlace as u8
    );
    assert!(starts[0].aux < 2, "started on a worker");
    assert!(ends[0].ts_ns - starts[0].ts_ns >= 2_000_000);
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn builder_names_become_task_names() {
    let long = "a-task-name-that-is-longer-than-the-layer-stack-buffer-of-sixty-four-bytes";
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let (named, long_named, unnamed) = rt.block_on(async {
        let a = tokio::task::Builder::new()
            .name("x")
            .spawn(async {})
            .expect("spawn");
        let b = tokio::task::Builder::new()
            .name(long)
            .spawn(async {})
            .expect("spawn");
        let c = tokio::spawn(async {});
        let ids = (id_of(&a), id_of(&b), id_of(&c));
        a.await.expect("join");
        b.await.expect("join");
        c.await.expect("join");
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let name_of = |id: u64| -> Vec<String> {
        of(&events, EventKind::TaskName, id)
            .iter()
            .map(|e| rec.registry().string(e.aux).expect("interned").to_string())
            .collect()
    };
    assert_eq!(name_of(named), ["x"]);
    assert_eq!(name_of(long_named), [long]);
    assert!(name_of(unnamed).is_empty());
    rec.shutdown();
}

/// Resource kinds named by the `ResourceWait` events of `task`.
fn waits(rec: &Recorder, events: &[Event], task: u64) -> Vec<String> {
    of(events, EventKind::ResourceWait, task)
        .iter()
        .map(|e| rec.registry().string(e.aux).expect("interned").to_string())
        .collect()
}

#[cfg(tokio_unstable)]
#[test]
fn waiting_on_a_mutex_semaphore_or_sleep_records_the_resource() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = current_thread(&d);
    let (m, s, z, free) = rt.block_on(async {
        let mutex = Arc::new(tokio::sync::Mutex::new(0u32));
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        let guard = mutex.clone().lock_owned().await;
        let m2 = mutex.clone();
        let m = tokio::spawn(async move { *m2.lock().await += 1 });
        let s2 = sem.clone();
        let s = tokio::spawn(async move { s2.acquire().await.expect("permit").forget() });
        let z = tokio::spawn(tokio::time::sleep(std::time::Duration::from_millis(1)));
        // A task that gets its lock and permit without waiting.
        let free = {
            let mutex = Arc::new(tokio::sync::Mutex::new(()));
            tokio::spawn(async move { drop(mutex.lock().await) })
        };
        tokio::task::yield_now().await;
        drop(guard);
        sem.add_permits(1);
        let ids = (id_of(&m), id_of(&s), id_of(&z), id_of(&free));
        m.await.expect("join");
        s.await.expect("join");
        z.await.expect("join");
        free.await.expect("join");
        assert_eq!(*mutex.lock().await, 1);
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let wm = waits(&rec, &events, m);
    assert!(
        !wm.is_empty() && wm.iter().all(|k| k == "Mutex"),
        "mutex waiter: {wm:?}"
    );
    let ws = waits(&rec, &events, s);
    assert!(
        !ws.is_empty() && ws.iter().all(|k| k == "Semaphore"),
        "semaphore waiter: {ws:?}"
    );
    let wz = waits(&rec, &events, z);
    assert!(
        !wz.is_empty() && wz.iter().all(|k| k == "Sleep"),
        "sleeper: {wz:?}"
    );
    assert!(waits(&rec, &events, free).is_empty());
    for e in of(&events, EventKind::ResourceWait, m) {
        assert_ne!(e.arg, 0, "resource instance id");
    }
    rec.shutdown();
}

#[test]
fn application_spans_are_recorded_only_when_enabled() {
    for record_spans in [false, true] {
        let rec = Recorder::new(RecorderConfig {
            record_spans,
            ..RecorderConfig::default()
        })
        .expect("recorder");
        let col = Collect::attach(&rec);
        let d = super::source(&rec);
        let _g = tracing::dispatcher::set_default(&d);
        let span = tracing::info_span!("app.work");
        for _ in 0..3 {
            span.in_scope(|| {});
        }
        let span_id = span.id().expect("enabled").into_u64();
        drop(span);
        let events = col.events(&rec);
        let enters: Vec<Event> = events
            .iter()
            .filter(|e| e.kind() == Some(EventKind::SpanEnter))
            .copied()
            .collect();
        let exits = events
            .iter()
            .filter(|e| e.kind() == Some(EventKind::SpanExit))
            .count();
        if record_spans {
            assert_eq!((enters.len(), exits), (3, 3));
            for e in &enters {
                assert_eq!(e.arg, span_id);
                assert_eq!(rec.registry().string(e.aux).as_deref(), Some("app.work"));
            }
        } else {
            assert_eq!((enters.len(), exits), (0, 0));
        }
        rec.shutdown();
    }
}

#[cfg(tokio_unstable)]
#[test]
fn tasks_spawned_outside_the_subscriber_are_skipped_without_panicking() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    // Runtime threads without the dispatcher; only block_on's thread has it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let _g = tracing::dispatcher::set_default(&d);
    let id = rt.block_on(async {
        // Spawned from a worker (no subscriber there): no span at all.
        let h = tokio::spawn(async { tokio::spawn(async { SelfWakeYield::new().await }).await })
            .await
            .expect("join");
        h.expect("inner join");
        let h = tokio::spawn(async { SelfWakeYield::new().await });
        let id = id_of(&h);
        h.await.expect("join");
        id
    });
    drop(rt);
    let events = col.events(&rec);
    // Spawned from the subscribed thread: recorded, polled on workers
    // through the span's own dispatcher.
    assert_eq!(count(&events, EventKind::Spawn, id), 1);
    assert_eq!(count(&events, EventKind::PollStart, id), 2);
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn snapshot_counts_every_spawn_poll_wake_and_termination_once() {
    const N: usize = 25;
    const K: usize = 2;
    let rec = Recorder::with_defaults();
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let w = spawn_yielders(&rt, N, K);
    drop(rt);
    assert_eq!(w.ids.len(), N);
    let site = site_at(&rec, w.line);
    assert_eq!(
        (site.spawned, site.terminated, site.alive),
        (N as u64, N as u64, 0)
    );
    assert_eq!(site.polls, (N * (K + 1)) as u64);
    assert_eq!(
        (site.wakes, site.self_wakes),
        ((N * K) as u64, (N * K) as u64)
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn task_names_show_up_in_the_snapshot() {
    let rec = Recorder::with_defaults();
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = current_thread(&d);
    let line = rt.block_on(async {
        let b = tokio::task::Builder::new().name("pixel-worker");
        // Same line: the spawn site is where `spawn` is called.
        let (h, line) = (b.spawn(async {}), line!());
        h.expect("spawn").await.expect("join");
        line
    });
    drop(rt);
    let site = site_at_file(&rec, line, "cases.rs");
    assert_eq!(site.name, "pixel-worker");
    assert_eq!(site.spawned, 1);
    rec.shutdown();
}

/// The snapshot's statistics of the site at `line` of a file ending in `file`.
#[cfg(tokio_unstable)]
fn site_at_file(rec: &Recorder, line: u32, file: &str) -> taskline_core::SiteStats {
    let snap = rec.snapshot();
    snap.sites
        .into_iter()
        .find(|s| {
            rec.registry()
                .site(s.id)
                .is_some_and(|site| site.line == line && site.file.ends_with(file))
        })
        .expect("site in snapshot")
}

#[cfg(tokio_unstable)]
#[test]
fn composes_with_fmt_and_a_targets_filter_without_changing_counts() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    const N: usize = 10;
    const K: usize = 3;
    let mut sites = Vec::new();
    for with_fmt in [false, true] {
        let rec = Recorder::with_defaults();
        let out = Captured::default();
        let d = if with_fmt {
            super::source_with_fmt(
                &rec,
                out.clone(),
                Targets::new().with_target("composed", LevelFilter::INFO),
            )
        } else {
            super::source(&rec)
        };
        let _g = tracing::dispatcher::set_default(&d);
        let rt = multi_thread(2, &d);
        tracing::info!(target: "composed", "workload starts");
        tracing::info!(target: "elsewhere", "filtered out for fmt");
        let w = spawn_yielders(&rt, N, K);
        drop(rt);
        let site = site_at(&rec, w.line);
        sites.push((
            site.spawned,
            site.terminated,
            site.polls,
            site.wakes,
            site.self_wakes,
        ));
        if with_fmt {
            let text = String::from_utf8(out.0.lock().expect("captured").clone()).expect("utf8");
            assert!(
                text.contains("workload starts"),
                "fmt still sees its events: {text}"
            );
            assert!(!text.contains("filtered out"), "{text}");
            assert!(
                !text.contains("runtime.spawn") && !text.contains("waker"),
                "{text}"
            );
        }
        rec.shutdown();
    }
    let expected = (
        N as u64,
        N as u64,
        (N * (K + 1)) as u64,
        (N * K) as u64,
        (N * K) as u64,
    );
    assert_eq!(sites, [expected, expected]);
}

#[cfg(tokio_unstable)]
#[test]
fn an_aborted_task_terminates_once_with_balanced_polls() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = multi_thread(2, &d);
    let id = rt.block_on(async {
        let (_never_tx, never_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let h = tokio::spawn(async move {
            let _ = ready_tx.send(());
            let _ = never_rx.await;
        });
        ready_rx.await.expect("task ran");
        let id = id_of(&h);
        h.abort();
        assert!(h.await.expect_err("aborted").is_cancelled());
        id
    });
    drop(rt);
    let events = col.events(&rec);
    assert_eq!(count(&events, EventKind::Spawn, id), 1);
    assert_eq!(count(&events, EventKind::Terminate, id), 1);
    let starts = count(&events, EventKind::PollStart, id);
    assert!(starts >= 1);
    assert_eq!(starts, count(&events, EventKind::PollEnd, id));
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn local_set_tasks_polled_inside_block_on_are_nested_polls() {
    const K: usize = 3;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = current_thread(&d);
    let local = tokio::task::LocalSet::new();
    let id = local.block_on(&rt, async {
        let h = tokio::task::spawn_local(async {
            for _ in 0..K {
                SelfWakeYield::new().await;
            }
        });
        let id = id_of(&h);
        h.await.expect("join");
        id
    });
    drop(rt);
    let events = col.events(&rec);
    let spawn = of(&events, EventKind::Spawn, id);
    assert_eq!(spawn.len(), 1);
    assert_eq!(TaskKind::from_flags(spawn[0].flags), TaskKind::Local);
    assert_eq!(count(&events, EventKind::PollStart, id), K + 1);
    assert_eq!(count(&events, EventKind::PollEnd, id), K + 1);
    let wakes = wakes_of(&events, id);
    assert_eq!(wakes.len(), K);
    assert!(
        wakes.iter().all(|w| w.has_flag(flags::SELF_WAKE)),
        "{wakes:?}"
    );
    // The local task's polls nest inside the block_on poll: every local
    // poll starts after some block_on poll started and before it ended.
    let block_on = events
        .iter()
        .find(|e| {
            e.kind() == Some(EventKind::Spawn) && TaskKind::from_flags(e.flags) == TaskKind::BlockOn
        })
        .expect("block_on reported")
        .task;
    let outer: Vec<(u64, u64)> = of(&events, EventKind::PollStart, block_on)
        .iter()
        .zip(of(&events, EventKind::PollEnd, block_on).iter())
        .map(|(s, e)| (s.ts_ns, e.ts_ns))
        .collect();
    for s in of(&events, EventKind::PollStart, id) {
        assert!(
            outer.iter().any(|&(a, b)| a <= s.ts_ns && s.ts_ns <= b),
            "local poll at {} inside a block_on poll {outer:?}",
            s.ts_ns
        );
    }
    rec.shutdown();
}
