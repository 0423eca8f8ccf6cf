//! The cases every `tracing` source must pass together with the runtime
//! hooks on the same recorder: the hooks record polls, spawns and
//! terminations, the source adds wakes, names, blocking sections and
//! resources, and nothing is counted twice. Included by `tests/layer_hooks.rs`
//! and `tests/subscriber.rs`, which define `source(&Recorder) -> Dispatch`.

use std::sync::Arc;

use super::layer_support::{Collect, count, id_of, of, site_at, spawn_yielders, with_dispatch};
use taskline_core::Recorder;
use taskline_core::RuntimeBuilderExt;
use taskline_core::{BlockingKind, EventKind, flags};
use tracing::Dispatch;

fn hooked_multi_thread(rec: &Recorder, d: &Dispatch) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).taskline(rec);
    with_dispatch(b, d)
}

#[test]
fn hooks_and_layer_count_each_poll_and_wake_once() {
    const N: usize = 20;
    const K: usize = 3;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = hooked_multi_thread(&rec, &d);
    let w = spawn_yielders(&rt, N, K);
    drop(rt);
    let events = col.events(&rec);
    for &id in &w.ids {
        let starts = of(&events, EventKind::PollStart, id);
        assert_eq!(starts.len(), K + 1, "task {id}");
        assert!(
            starts.iter().all(|e| !e.has_flag(flags::FROM_LAYER)),
            "hooked polls come from the hooks only"
        );
        assert_eq!(count(&events, EventKind::PollEnd, id), K + 1);
        let wakes = of(&events, EventKind::Wake, id);
        assert_eq!(wakes.len(), K);
        assert!(
            wakes
                .iter()
                .all(|e| e.has_flag(flags::SELF_WAKE) && e.arg == id)
        );
        // The hooks report the spawn and termination of a plain task; the
        // tracing source leaves them out instead of reporting them twice.
        let spawns = of(&events, EventKind::Spawn, id);
        assert_eq!(spawns.len(), 1, "task {id}: {spawns:?}");
        assert!(!spawns[0].has_flag(flags::FROM_LAYER));
        assert_eq!(count(&events, EventKind::Terminate, id), 1, "task {id}");
    }
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

#[test]
fn with_hooks_a_task_woken_by_another_task_names_it() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = hooked_multi_thread(&rec, &d);
    let (waiter, sender) = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = tokio::spawn(async move {
            let mut rx = rx;
            let mut ready_tx = Some(ready_tx);
            std::future::poll_fn(|cx| {
                let r = std::pin::Pin::new(&mut rx).poll(cx);
                if r.is_pending()
                    && let Some(t) = ready_tx.take()
                {
                    t.send(()).expect("ready");
                }
                r
            })
            .await
            .expect("value")
        });
        ready_rx.await.expect("ready");
        let sender = tokio::spawn(async move { tx.send(1).expect("send") });
        let ids = (id_of(&waiter), id_of(&sender));
        assert_eq!(waiter.await.expect("join"), 1);
        sender.await.expect("join");
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let wakes = of(&events, EventKind::Wake, waiter);
    assert!(
        wakes
            .iter()
            .any(|w| w.arg == sender && !w.has_flag(flags::SELF_WAKE)),
        "waiter {waiter} woken by {sender}: {wakes:?}"
    );
    rec.shutdown();
}

#[test]
fn with_hooks_blocking_and_resources_still_come_from_the_layer() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = super::source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let rt = hooked_multi_thread(&rec, &d);
    let (blocking, waiter) = rt.block_on(async {
        let b = tokio::task::spawn_blocking(|| 1);
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        let s = sem.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let waiter = tokio::spawn(async move {
            let acquire = s.acquire();
            tokio::pin!(acquire);
            let mut ready_tx = Some(ready_tx);
            std::future::poll_fn(|cx| {
                let r = acquire.as_mut().poll(cx);
                if r.is_pending()
                    && let Some(t) = ready_tx.take()
                {
                    t.send(()).expect("ready");
                }
                r
            })
            .await
            .expect("permit")
            .forget();
        });
        ready_rx.await.expect("ready");
        sem.add_permits(1);
        let ids = (id_of(&b), id_of(&waiter));
        assert_eq!(b.await.expect("join"), 1);
        waiter.await.expect("join");
        ids
    });
    drop(rt);
    let events = col.events(&rec);
    let starts = of(&events, EventKind::BlockingStart, blocking);
    assert_eq!(starts.len(), 1);
    assert_eq!(
        starts[0].flags & flags::ENUM_MASK,
        BlockingKind::SpawnBlocking as u8
    );
    assert_eq!(count(&events, EventKind::BlockingEnd, blocking), 1);
    let waits = of(&events, EventKind::ResourceWait, waiter);
    assert!(!waits.is_empty());
    for w in waits {
        assert_eq!(rec.registry().string(w.aux).as_deref(), Some("Semaphore"));
    }
    rec.shutdown();
}

use std::future::Future;
