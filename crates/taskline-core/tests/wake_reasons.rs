//! Why tasks waited, on a real multi-thread runtime with the runtime hooks
//! and `TasklineSubscriber` (resource waits on, so a timer is told from
//! I/O): each controlled wait ends for its [`WakeReason`], the waker is
//! named where one task wakes another, the runtime's own worker threads
//! are not the application's blocking.
#![cfg_attr(not(tokio_unstable), allow(unused))]

mod layer_support;

use std::io::Write;
use std::time::Duration;

use layer_support::{id_of, with_dispatch};
use taskline_core::{Recorder, RuntimeBuilderExt, SiteStats, TasklineSubscriber, WakeReason};
use tokio::io::AsyncReadExt;
use tracing::Dispatch;

/// Long enough that, even on a loaded machine, each task is polled and
/// waiting before what it waits for happens.
const WAIT: Duration = Duration::from_millis(150);

fn site_at(rec: &Recorder, line: u32) -> SiteStats {
    let snap = rec.snapshot();
    snap.sites
        .into_iter()
        .find(|s| {
            rec.registry()
                .site(s.id)
                .is_some_and(|site| site.line == line && site.file.ends_with("wake_reasons.rs"))
        })
        .unwrap_or_else(|| panic!("no site at line {line}"))
}

/// The reasons `site`'s idle periods ended for, with their counts.
fn reasons(site: &SiteStats) -> Vec<(WakeReason, u64)> {
    site.idle_by_reason.iter().map(|(r, n, _)| (r, n)).collect()
}

#[cfg(tokio_unstable)]
#[test]
fn each_wait_ends_for_its_reason_and_names_its_waker() {
    let rec = Recorder::with_defaults();
    let d = Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry())
            .expect("registry-backed")
            .with_resource_waits(true),
    );
    let _g = tracing::dispatcher::set_default(&d);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).taskline(&rec);
    let rt = with_dispatch(b, &d);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let lines = rt.block_on(async move {
        // A oneshot sent by another task: sync, named.
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiter_line = line!() + 1;
        let waiter = tokio::spawn(async move { rx.await.expect("sent") });
        let sender_line = line!() + 1;
        let sender = tokio::spawn(async move {
            tokio::time::sleep(WAIT).await;
            tx.send(7).expect("receiver alive");
        });
        // A read on a TcpStream whose bytes a plain thread writes later: io.
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut peer, _) = listener.accept().expect("accept");
        let reader_line = line!() + 1;
        let reader = tokio::spawn(async move {
            let mut stream = stream;
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.expect("read");
            buf
        });
        let writer = std::thread::spawn(move || {
            std::thread::sleep(WAIT);
            peer.write_all(b"ping").expect("write");
            peer
        });
        // A sleep: timer.
        let sleeper_line = line!() + 1;
        let sleeper = tokio::spawn(async { tokio::time::sleep(WAIT).await });
        // The result of a spawn_blocking: blocking.
        let joiner_line = line!() + 1;
        let joiner = tokio::spawn(async {
            tokio::task::spawn_blocking(|| std::thread::sleep(WAIT))
                .await
                .expect("blocking ran")
        });
        let sender_id = id_of(&sender);
        assert_eq!(waiter.await.expect("waiter"), 7);
        sender.await.expect("sender");
        assert_eq!(&reader.await.expect("reader"), b"ping");
        drop(writer.join().expect("writer"));
        sleeper.await.expect("sleeper");
        joiner.await.expect("joiner");
        (
            waiter_line,
            sender_line,
            sender_id,
            reader_line,
            sleeper_line,
            joiner_line,
        )
    });
    drop(rt);
    let (waiter_line, sender_line, sender_id, reader_line, sleeper_line, joiner_line) = lines;

    let waiter = site_at(&rec, waiter_line);
    let sender = site_at(&rec, sender_line);
    assert_eq!(reasons(&waiter), vec![(WakeReason::Sync, 1)], "{waiter:?}");
    assert!(waiter.idle_by_reason.ns(WakeReason::Sync) >= WAIT.as_nanos() as u64 / 2);
    assert_eq!(waiter.woken_by, vec![(sender.name.clone(), 1)]);
    assert_eq!(reasons(&sender), vec![(WakeReason::Timer, 1)], "{sender:?}");
    let reader = site_at(&rec, reader_line);
    assert_eq!(reasons(&reader), vec![(WakeReason::Io, 1)], "{reader:?}");
    let sleeper = site_at(&rec, sleeper_line);
    assert_eq!(
        reasons(&sleeper),
        vec![(WakeReason::Timer, 1)],
        "{sleeper:?}"
    );
    let joiner = site_at(&rec, joiner_line);
    assert_eq!(
        reasons(&joiner),
        vec![(WakeReason::Blocking, 1)],
        "{joiner:?}"
    );

    let snap = rec.snapshot();
    // The one spawn_blocking is the application's blocking; the two
    // worker threads Tokio started on its pool are its own.
    assert_eq!(snap.blocking_sections, 1, "{snap}");
    assert_eq!(snap.runtime_sections, 2, "{snap}");
    assert!(snap.to_string().contains("Tokio's own"), "{snap}");
    let text = snap.to_string();
    assert!(text.contains("why tasks waited"), "{text}");
    // The waiter's last waker is the sender (the task is gone: terminated
    // tasks leave the task list, so check a live one below).
    let _ = sender_id;
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn a_live_task_names_the_task_that_woke_it_last() {
    let rec = Recorder::with_defaults();
    let d = Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry()).expect("registry-backed"),
    );
    let _g = tracing::dispatcher::set_default(&d);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).taskline(&rec);
    let rt = with_dispatch(b, &d);
    let (waiter_id, notifier_id) = rt.block_on(async {
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let (n1, n2) = (notify.clone(), notify.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn(async move {
            let notified = n1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            ready_tx.send(()).expect("test waits");
            notified.await;
            // Stays alive, idle, after the wake.
            std::future::pending::<()>().await
        });
        ready_rx.await.expect("waiter registered");
        tokio::time::sleep(WAIT).await;
        let notifier = tokio::spawn(async move { n2.notify_one() });
        let notifier_id = id_of(&notifier);
        notifier.await.expect("notifier");
        tokio::time::sleep(WAIT).await;
        (id_of(&waiter), notifier_id)
    });
    rec.flush();
    let snap = rec.snapshot();
    let task = snap
        .tasks
        .iter()
        .find(|t| t.id == waiter_id)
        .expect("waiter alive");
    assert_eq!(task.last_wake_reason, Some(WakeReason::Sync), "{task:?}");
    assert_eq!(task.last_waker, Some(notifier_id), "{task:?}");
    assert!(
        task.idle_ns_by_reason[WakeReason::Sync.index()] >= WAIT.as_nanos() as u64 / 2,
        "{task:?}"
    );
    drop(rt);
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn tokios_deferred_yields_are_yields() {
    const N: usize = 20;
    const K: usize = 5;
    let rec = Recorder::with_defaults();
    let d = Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry()).expect("registry-backed"),
    );
    let _g = tracing::dispatcher::set_default(&d);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).taskline(&rec);
    let rt = with_dispatch(b, &d);
    let line = rt.block_on(async {
        let line = line!() + 3;
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..K {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("yielder");
        }
        line
    });
    drop(rt);
    let site = site_at(&rec, line);
    assert_eq!(site.wakes, (N * K) as u64, "{site:?}");
    assert_eq!(
        reasons(&site),
        vec![(WakeReason::Yield, (N * K) as u64)],
        "{site:?}"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn with_the_runtime_hooks_alone_the_reason_is_unknown() {
    let rec = Recorder::with_defaults();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all().taskline(&rec);
    let rt = b.build().expect("runtime");
    let line = rt.block_on(async {
        let line = line!() + 1;
        let sleeper = tokio::spawn(async { tokio::time::sleep(WAIT).await });
        sleeper.await.expect("sleeper");
        line
    });
    drop(rt);
    let site = site_at(&rec, line);
    assert_eq!(reasons(&site), vec![(WakeReason::Unknown, 1)], "{site:?}");
    assert_eq!(site.wakes, 0);
    rec.shutdown();
}
