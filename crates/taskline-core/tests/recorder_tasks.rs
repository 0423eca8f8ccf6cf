//! Spawn/poll/terminate accounting through real Tokio runtimes, cross-checked
//! with Tokio's own `RuntimeMetrics`.
#![cfg(tokio_unstable)]

use std::time::Duration;

use taskline_core::{Recorder, RecorderConfig, RuntimeBuilderExt, Snapshot};
use tokio::runtime::{Builder, Runtime};

fn recorder() -> Recorder {
    Recorder::new(RecorderConfig {
        drain_interval: Duration::from_millis(5),
        ..RecorderConfig::default()
    })
    .expect("config")
}

/// Spawns `n` tasks that each yield once, waits for all, then returns
/// (tokio's spawned_tasks_count, sum of worker_poll_count) read while the
/// runtime is still alive, and shuts the runtime down.
///
/// Tokio's multi-thread workers publish their poll counts in batches (when
/// they park or run maintenance), and the last batch is lost at shutdown; and
/// `worker_poll_count` does not count polls of tasks taken from a worker's
/// LIFO slot (they run inside the previous task's poll-time measurement),
/// while the poll hooks fire for them. So with the LIFO slot disabled the
/// counts are equal once every worker has parked after the work (we wait,
/// bounded, until Tokio's sum stops trailing); with it, recorder >= Tokio.
fn run_tasks(rec: &Recorder, rt: Runtime, n: usize, exact: bool) -> (u64, u64) {
    let metrics = rt.metrics();
    let before = rec.snapshot().polls;
    rt.block_on(async {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    i
                })
            })
            .collect();
        for h in hs {
            h.await.expect("join");
        }
    });
    let tokio_polls = || -> u64 {
        (0..metrics.num_workers())
            .map(|w| metrics.worker_poll_count(w))
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mine = rec.snapshot().polls - before;
    while exact && tokio_polls() < mine && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let result = (metrics.spawned_tasks_count(), tokio_polls());
    drop(rt);
    result
}

fn check(snap: &Snapshot, n: u64, tokio_spawned: u64, tokio_polls: u64, exact: bool) {
    assert_eq!(snap.spawned, n, "{snap}");
    assert_eq!(snap.terminated, n, "{snap}");
    assert_eq!(snap.alive, 0, "{snap}");
    // Exact relation: Tokio counts every spawned task (block_on's future is
    // not a task, so neither side counts it) and every task poll on a worker
    // (published when the worker parks); the hooks fire once per spawn and
    // once per task poll.
    assert_eq!(snap.spawned, tokio_spawned, "{snap}");
    if exact {
        assert_eq!(snap.polls, tokio_polls, "{snap}");
    } else {
        assert!(snap.polls >= tokio_polls, "{} < {tokio_polls}", snap.polls);
    }
    // Each task yields once: at least two polls each.
    assert!(snap.polls >= 2 * n, "{snap}");
    assert_eq!(snap.recorder.map(|r| r.dropped), Some(0));
}

#[test]
fn n_tasks_multi_thread() {
    let rec = recorder();
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .disable_lifo_slot()
        .taskline(&rec)
        .build()
        .expect("rt");
    let (s, p) = run_tasks(&rec, rt, 500, true);
    let snap = rec.snapshot();
    check(&snap, 500, s, p, true);
    assert!(!snap.workers.is_empty());
    let site_spawned: u64 = snap.sites.iter().map(|s| s.spawned).sum();
    assert_eq!(site_spawned, 500);
}

#[test]
fn n_tasks_current_thread() {
    let rec = recorder();
    let rt = Builder::new_current_thread()
        .taskline(&rec)
        .build()
        .expect("rt");
    let (s, p) = run_tasks(&rec, rt, 300, true);
    check(&rec.snapshot(), 300, s, p, true);
}

#[test]
fn two_runtimes_one_recorder_and_two_recorders() {
    let shared = recorder();
    let other = recorder();
    let rt1 = Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&shared)
        .build()
        .expect("rt1");
    let rt2 = Builder::new_current_thread()
        .taskline(&shared)
        .build()
        .expect("rt2");
    let rt3 = Builder::new_current_thread()
        .taskline(&other)
        .build()
        .expect("rt3");
    let (r1, r3) = (shared.clone(), other.clone());
    // The other recorder's runtime runs concurrently; the shared recorder's
    // two runtimes run one after the other (run_tasks counts this run's
    // polls as a difference).
    let t3 = std::thread::spawn(move || run_tasks(&r3, rt3, 50, true));
    let (s1, p1) = std::thread::spawn(move || run_tasks(&r1, rt1, 200, false))
        .join()
        .expect("rt1 thread");
    let (s2, p2) = run_tasks(&shared, rt2, 100, true);
    let (s3, p3) = t3.join().expect("rt3 thread");
    check(&shared.snapshot(), 300, s1 + s2, p1 + p2, false);
    check(&other.snapshot(), 50, s3, p3, true);
}
