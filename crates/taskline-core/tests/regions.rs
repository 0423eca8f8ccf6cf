//! User regions on real runtimes: `tracing` spans recorded by the
//! subscriber and futures wrapped by `Recorder::region`, read back from
//! the recorder's snapshot (`Snapshot::regions`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use taskline_core::{Recorder, RecorderConfig, RegionStats, Snapshot, TasklineSubscriber};
use tracing::Dispatch;

fn recorder() -> Recorder {
    Recorder::new(RecorderConfig {
        record_spans: true,
        ..RecorderConfig::default()
    })
    .expect("recorder")
}

/// taskline's subscriber in front of a bare registry, for `rec`.
fn subscriber(rec: &Recorder) -> Dispatch {
    Dispatch::new(
        TasklineSubscriber::new(rec, tracing_subscriber::registry()).expect("registry-backed"),
    )
}

fn region<'a>(snap: &'a Snapshot, name: &str) -> &'a RegionStats {
    snap.regions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no region {name:?} in {:#?}", snap.regions))
}

/// A future that is pending `pending` times (waking itself), then ready,
/// counting every poll it gets in `polls`.
struct Yields {
    pending: u32,
    polls: Arc<AtomicU64>,
}

impl Future for Yields {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::Relaxed);
        if self.pending == 0 {
            return Poll::Ready(());
        }
        self.pending -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn span_regions_count_the_spans_entered_nested_or_not() {
    let rec = recorder();
    let _g = tracing::dispatcher::set_default(&subscriber(&rec));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..37u64 {
            handles.push(tokio::spawn(async move {
                let a = tracing::info_span!("a", i);
                let _a = a.enter();
                if i % 8 == 0 {
                    // 5 of them (0, 8, 16, 24, 32) nest a "b".
                    let _b = tracing::info_span!("b").entered();
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    let snap = rec.snapshot();
    let (a, b) = (region(&snap, "a"), region(&snap, "b"));
    assert_eq!((a.count, a.polls, a.active, a.dropped), (37, 37, 0, 0));
    assert_eq!((b.count, b.polls, b.active), (5, 5, 0));
    assert_eq!(snap.regions.len(), 2, "{:#?}", snap.regions);
    for r in [a, b] {
        assert_eq!(
            (r.busy_ns, r.wait_ns),
            (r.total_ns, 0),
            "a span is busy while entered"
        );
        assert_eq!(r.duration.count, r.count);
    }
    assert!(a.total_ns >= b.total_ns, "each b is inside an a");
    // All ran in tasks of the one spawn site above; the subscriber knows
    // tasks from Tokio's task spans, which need `--cfg tokio_unstable`.
    assert_eq!(a.sites.len(), 1, "{:?}", a.sites);
    assert_eq!(a.sites[0].count, 37);
    let expected = if cfg!(tokio_unstable) {
        "tests/regions.rs"
    } else {
        "<unknown>"
    };
    assert!(a.sites[0].location.contains(expected), "{:?}", a.sites);
    assert_eq!(b.sites[0].site, a.sites[0].site);
    let text = snap.to_string();
    assert!(text.contains("regions (by total time):"), "{text}");
    rec.shutdown();
}

#[test]
fn a_region_lasts_at_least_the_sleep_inside_it() {
    let rec = recorder();
    let _g = tracing::dispatcher::set_default(&subscriber(&rec));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let nap = Duration::from_millis(15);
    rt.block_on(async {
        {
            let _s = tracing::info_span!("blocking nap").entered();
            std::thread::sleep(nap);
        }
        rec.region("async nap", tokio::time::sleep(nap)).await;
    });
    drop(rt);
    let snap = rec.snapshot();
    let nap_ns = nap.as_nanos() as u64;
    let blocking = region(&snap, "blocking nap");
    assert_eq!(blocking.count, 1);
    assert!(blocking.total_ns >= nap_ns, "{blocking:?}");
    assert!(blocking.duration.max >= nap_ns * 99 / 100, "{blocking:?}");
    let sleeping = region(&snap, "async nap");
    assert_eq!((sleeping.count, sleeping.dropped), (1, 0));
    assert!(sleeping.total_ns >= nap_ns, "{sleeping:?}");
    assert_eq!(sleeping.busy_ns + sleeping.wait_ns, sleeping.total_ns);
    // It slept between its polls: most of it is waiting.
    assert!(sleeping.polls >= 2, "{sleeping:?}");
    assert!(sleeping.wait_ns > sleeping.busy_ns, "{sleeping:?}");
    rec.shutdown();
}

/// The (line, instances) of `name`'s sites, checking they are in this file.
fn site_lines(rec: &Recorder, snap: &Snapshot, name: &str) -> Vec<(u32, u64)> {
    let r = region(snap, name);
    assert_eq!(r.other_sites, 0);
    r.sites
        .iter()
        .map(|s| {
            let site = rec.registry().site(s.site).expect("known site");
            assert!(site.file.ends_with("regions.rs"), "{site}");
            (site.line, s.count)
        })
        .collect()
}

#[test]
fn region_futures_list_the_spawn_sites_of_their_tasks() {
    // The wrapper source (works on stable Tokio) names the spawn sites.
    let rec = recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let work = |rec: &Recorder, n: u64| {
        let rec = rec.clone();
        async move {
            for _ in 0..n {
                rec.region("work", tokio::task::yield_now()).await;
            }
        }
    };
    let (first, second) = rt.block_on(async {
        let first = line!() + 1;
        let a = rec.spawn(work(&rec, 3));
        let second = line!() + 1;
        let b = rec.spawn(work(&rec, 4));
        a.await.expect("task");
        b.await.expect("task");
        (first, second)
    });
    drop(rt);
    let snap = rec.snapshot();
    assert_eq!(region(&snap, "work").count, 7);
    assert_eq!(
        site_lines(&rec, &snap, "work"),
        [(second, 4), (first, 3)],
        "most instances first"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn span_regions_list_the_spawn_sites_of_their_tasks() {
    // The subscriber names the sites from Tokio's task spans.
    let rec = recorder();
    let _g = tracing::dispatcher::set_default(&subscriber(&rec));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let work = |n: u64| async move {
        for _ in 0..n {
            let _w = tracing::info_span!("work").entered();
        }
    };
    let (first, second) = rt.block_on(async {
        let first = line!() + 1;
        let a = tokio::spawn(work(3));
        let second = line!() + 1;
        let b = tokio::spawn(work(4));
        a.await.expect("task");
        b.await.expect("task");
        (first, second)
    });
    drop(rt);
    let snap = rec.snapshot();
    assert_eq!(region(&snap, "work").count, 7);
    assert_eq!(
        site_lines(&rec, &snap, "work"),
        [(second, 4), (first, 3)],
        "most instances first"
    );
    rec.shutdown();
}

#[test]
fn region_futures_count_instances_polls_and_drops() {
    let rec = recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let polls = Arc::new(AtomicU64::new(0));
    let stuck = Arc::new(AtomicU64::new(0));
    const N: u32 = 12;
    rt.block_on(async {
        for i in 0..N {
            let fut = Yields {
                pending: i % 4,
                polls: polls.clone(),
            };
            rec.region("handler", fut).await;
        }
        // Polled (once or twice: the timeout polls it again when its timer
        // fires), then dropped by the timeout.
        let stuck_polls = stuck.clone();
        let stuck = rec.region(
            "handler",
            std::future::poll_fn(move |_| {
                stuck_polls.fetch_add(1, Ordering::Relaxed);
                Poll::<()>::Pending
            }),
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(1), stuck)
                .await
                .is_err()
        );
        // Never polled: no instance.
        drop(rec.region("handler", std::future::ready(())));
        drop(rec.region("never polled", std::future::ready(())));
    });
    drop(rt);
    let snap = rec.snapshot();
    let h = region(&snap, "handler");
    let seen = polls.load(Ordering::Relaxed);
    assert_eq!(seen, (0..N).map(|i| u64::from(i % 4) + 1).sum::<u64>());
    assert_eq!((h.count, h.dropped, h.active), (u64::from(N) + 1, 1, 0));
    let stuck = stuck.load(Ordering::Relaxed);
    assert!(stuck >= 1, "the stuck future was polled");
    assert_eq!(h.polls, seen + stuck, "every poll of the futures");
    assert_eq!(h.busy_ns + h.wait_ns, h.total_ns);
    assert_eq!(h.duration.count, h.count);
    assert_eq!(
        h.sites.len(),
        1,
        "block_on is no task here: one unknown site"
    );
    assert!(snap.regions.iter().all(|r| r.name != "never polled"));
    assert_eq!(snap.spawned, 0, "a region future is no task");
    assert!(
        snap.to_string().contains("(1 dropped before completing)"),
        "{snap}"
    );
    rec.shutdown();
}

#[test]
fn a_region_future_that_panics_ends_its_poll_and_counts_as_dropped() {
    let rec = recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let polls = Arc::new(AtomicU64::new(0));
    let seen = polls.clone();
    let result = rt.block_on(async {
        rec.spawn(rec.region(
            "panicky",
            std::future::poll_fn(move |cx| {
                if seen.fetch_add(1, Ordering::Relaxed) == 1 {
                    panic!("second poll fails");
                }
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }),
        ))
        .await
    });
    assert!(result.expect_err("panicked").is_panic());
    drop(rt);
    let snap = rec.snapshot();
    let p = region(&snap, "panicky");
    assert_eq!((p.count, p.dropped, p.polls, p.active), (1, 1, 2, 0));
    assert_eq!(polls.load(Ordering::Relaxed), 2);
    rec.shutdown();
}

/// Spawns `tasks` tasks through the wrapper source, each one a
/// [`Yields`] of `yields` pending polls, each wrapped in a region future
/// when `region` is set, and returns the snapshot.
fn task_polls(runtime: fn(&Recorder) -> tokio::runtime::Runtime, region: bool) -> Snapshot {
    let rec = recorder();
    let rt = runtime(&rec);
    let polls = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..20 {
            let fut = Yields {
                pending: 3,
                polls: polls.clone(),
            };
            handles.push(if region {
                tokio::spawn(rec.region("wrapped", fut))
            } else {
                tokio::spawn(fut)
            });
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    assert_eq!(polls.load(Ordering::Relaxed), 80);
    let snap = rec.snapshot();
    rec.shutdown();
    snap
}

#[cfg(tokio_unstable)]
#[test]
fn with_the_runtime_hooks_a_region_future_does_not_change_task_polls() {
    use taskline_core::RuntimeBuilderExt;
    let hooked = |rec: &Recorder| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .taskline(rec)
            .build()
            .expect("runtime")
    };
    let plain = task_polls(hooked, false);
    let wrapped = task_polls(hooked, true);
    assert_eq!((plain.spawned, plain.polls), (20, 80));
    assert_eq!((wrapped.spawned, wrapped.polls), (20, 80));
    let busiest = |s: &Snapshot| s.sites.iter().map(|s| s.polls).max();
    assert_eq!(busiest(&plain), Some(80));
    assert_eq!(busiest(&wrapped), Some(80));
    let w = region(&wrapped, "wrapped");
    assert_eq!((w.count, w.polls), (20, 80));
    assert!(plain.regions.is_empty());
    // Each instance ran in a task of the one spawn site.
    assert_eq!(w.sites.iter().map(|s| s.count).sum::<u64>(), 20);
    assert_eq!(w.sites.len(), 1, "{:?}", w.sites);
    assert_ne!(w.sites[0].location, "<unknown>");
}

#[test]
fn without_hooks_a_region_future_records_no_task() {
    let plain = |_: &Recorder| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime")
    };
    let wrapped = task_polls(plain, true);
    assert_eq!((wrapped.spawned, wrapped.polls), (0, 0));
    let w = region(&wrapped, "wrapped");
    assert_eq!((w.count, w.polls, w.dropped), (20, 80, 0));
}

#[test]
fn the_wrapper_source_counts_task_polls_once_with_a_region_inside() {
    let rec = recorder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let polls = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..10 {
            let fut = Yields {
                pending: 2,
                polls: polls.clone(),
            };
            handles.push(rec.spawn(rec.region("inner", fut)));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    let snap = rec.snapshot();
    assert_eq!((snap.spawned, snap.polls), (10, 30));
    let inner = region(&snap, "inner");
    assert_eq!((inner.count, inner.polls), (10, 30));
    assert_eq!(inner.sites.len(), 1);
    assert_eq!(inner.sites[0].count, 10);
    assert!(inner.sites[0].location.contains("regions.rs"));
    rec.shutdown();
}

/// `Recorder::region` is taskline's counterpart of tokio-metrics'
/// `FutureMonitor::instrument` (one request handler inside an existing
/// task): on the same futures, with the monitor inside the region, the
/// region table has the monitor's instance and poll counts, and its times
/// enclose the monitor's (the region's polls contain the monitor's polls,
/// its instance contains the monitor's first poll to completion).
#[test]
fn region_futures_count_like_tokio_metrics_future_monitor() {
    const REQUESTS: u32 = 40;
    const NAP: Duration = Duration::from_micros(300);
    let rec = recorder();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    // Both clocks are monotonic but different sources (taskline's TSC,
    // tokio-metrics' `Instant`): allow a little per instance.
    const SLACK_NS: u64 = 2_000;
    let inner = rec.clone();
    let spawner = rec.clone();
    let metrics = rt.block_on(async move {
        spawner
            .spawn(async move {
                let mut all = Vec::new();
                for i in 0..REQUESTS {
                    let handler = async move {
                        for _ in 0..i % 3 {
                            tokio::task::yield_now().await;
                        }
                        if i % 2 == 0 {
                            tokio::time::sleep(NAP).await;
                        }
                    };
                    let monitored = tokio_metrics::FutureMonitor::new().instrument(handler);
                    let ((), m) = inner.region("request", monitored).await;
                    all.push(m);
                }
                all
            })
            .await
    });
    let metrics = metrics.expect("task");
    drop(rt);
    let snap = rec.snapshot();
    let r = region(&snap, "request");
    let ns = |d: Duration| d.as_nanos() as u64;
    let polls: u64 = metrics.iter().map(|m| m.poll_count).sum();
    let idles: u64 = metrics.iter().map(|m| m.idle_count).sum();
    let poll_ns: u64 = metrics.iter().map(|m| ns(m.total_poll_duration)).sum();
    let total_ns: u64 = metrics.iter().map(|m| ns(m.total_duration)).sum();
    let slack = SLACK_NS * u64::from(REQUESTS);
    assert_eq!((r.count, r.dropped, r.active), (u64::from(REQUESTS), 0, 0));
    assert_eq!(r.polls, polls, "per request, the monitor's polls");
    assert_eq!(r.polls - r.count, idles, "one wait between two polls");
    assert!(r.busy_ns + slack >= poll_ns, "{r:?} vs {poll_ns}");
    assert!(r.total_ns + slack >= total_ns, "{r:?} vs {total_ns}");
    assert_eq!(r.busy_ns + r.wait_ns, r.total_ns);
    let naps = ns(NAP) * u64::from(REQUESTS.div_ceil(2));
    assert!(r.wait_ns >= naps, "the sleeps are waiting time: {r:?}");
    rec.shutdown();
}
