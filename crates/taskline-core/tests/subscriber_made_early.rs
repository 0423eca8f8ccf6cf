//! A subscriber made before another runtime first hits Tokio's callsites,
//! then installed as the global default, still records every wake. (Its own
//! test binary: it sets the process's global default.)
//!
//! `tracing` caches a callsite's interest when the callsite first fires.
//! With one dispatcher in existence it asks the *firing thread's* default,
//! so a runtime running in the window between making the subscriber and
//! installing it (an OTLP exporter's HTTP client does) caches "never" for
//! the waker callsites, for good, unless installing rebuilds the cache
//! (`after_global_install`; `TasklineSubscriber::try_init` calls it).
//! `TASKLINE_TEST_SKIP_REBUILD=1` shows the failure without it.

#[cfg(tokio_unstable)]
use taskline_core::{Recorder, RuntimeBuilderExt, TasklineSubscriber};

#[cfg(tokio_unstable)]
#[test]
fn wakes_are_recorded_when_another_runtime_ran_before_the_install() {
    const TASKS: usize = 50;
    let rec = Recorder::with_defaults();
    // Made into a dispatcher early, as a set-up that checks it before
    // starting its outputs does.
    let dispatch = tracing::Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry()).expect("registry-backed"),
    );
    // Another runtime, on another thread, before the install: its tasks hit
    // the task span and waker callsites first.
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let h = tokio::spawn(async move { rx.await.ok() });
            tokio::task::yield_now().await;
            tx.send(()).ok();
            h.await.unwrap();
        });
    })
    .join()
    .unwrap();
    tracing::dispatcher::set_global_default(dispatch).expect("first global default");
    if std::env::var_os("TASKLINE_TEST_SKIP_REBUILD").is_none() {
        taskline_core::after_global_install();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&rec)
        .build()
        .unwrap();
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let waiter = tokio::spawn(async move { rx.await.ok() });
                (waiter, tx)
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        for (waiter, tx) in handles {
            tx.send(()).ok();
            waiter.await.unwrap();
        }
    });
    drop(rt);
    let snapshot = rec.snapshot();
    assert!(
        snapshot.wakes >= TASKS as u64,
        "{} wakes for {TASKS} woken tasks:\n{snapshot}",
        snapshot.wakes
    );
    rec.shutdown();
}
