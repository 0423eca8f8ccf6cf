//! `TasklineSubscriber` on real Tokio runtimes: the exact-count cases every
//! source passes (`wake_source/cases.rs` alone, `wake_source/with_hooks.rs`
//! with the runtime hooks), and what only a subscriber in front of the
//! user's stack must guarantee: the user's layers see exactly what they saw
//! before, ids never resolve to the wrong side, bad set-ups are errors.
#![cfg_attr(not(tokio_unstable), allow(unused))]

mod layer_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use layer_support::{Captured, Collect, fmt_layer, of, site_at, spawn_yielders, with_dispatch};
use taskline_core::Recorder;
use taskline_core::RuntimeBuilderExt;
use taskline_core::{EventKind, TaskKind};
use taskline_core::{SubscriberError, TasklineSubscriber};
use tracing::Dispatch;
use tracing::span;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;

/// The source under test: taskline's subscriber in front of a bare
/// registry, resource waits on (the shared cases check them).
fn source(rec: &Recorder) -> Dispatch {
    Dispatch::new(
        TasklineSubscriber::new(rec, tracing_subscriber::registry())
            .expect("registry-backed")
            .with_resource_waits(true),
    )
}

/// The subscriber in front of a registry with a `fmt` layer writing to
/// `out`, filtered by `targets`.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn source_with_fmt(rec: &Recorder, out: Captured, targets: Targets) -> Dispatch {
    Dispatch::new(
        TasklineSubscriber::new(
            rec,
            tracing_subscriber::registry().with(fmt_layer(out, targets)),
        )
        .expect("registry-backed"),
    )
}

#[path = "wake_source/cases.rs"]
mod cases;

#[cfg(tokio_unstable)]
#[path = "wake_source/with_hooks.rs"]
mod with_hooks;

/// Bit 37 of `id - 1`, which marks taskline's ids and no registry id.
const TASKLINE_ID_BIT: u64 = 1 << 37;

/// An application workload with spans and events inside and outside tasks,
/// on a current-thread runtime so its output order is deterministic.
fn application(rt: &tokio::runtime::Runtime, tasks: u64, yields: u64) {
    use tracing::Instrument;
    tracing::info!(tasks, "starting");
    tracing::trace!("never shown at info");
    rt.block_on(async move {
        let mut handles = Vec::new();
        for i in 0..tasks {
            let fut = async move {
                for step in 0..yields {
                    let inner = tracing::info_span!("step", step);
                    let _e = inner.enter();
                    tracing::info!(i, step, "working");
                    tracing::debug!("hidden at info");
                    drop(_e);
                    tokio::task::yield_now().await;
                }
                tracing::warn!(i, "done");
            };
            handles.push(tokio::spawn(
                fut.instrument(tracing::info_span!("request", id = i)),
            ));
        }
        for h in handles {
            h.await.expect("join");
        }
    });
    tracing::info!("finished");
}

#[cfg(tokio_unstable)]
#[test]
fn fmt_output_under_a_global_env_filter_is_byte_identical_and_every_wake_is_recorded() {
    const N: u64 = 12;
    const K: u64 = 4;
    let mut outputs = Vec::new();
    for with_taskline in [false, true] {
        let out = Captured::default();
        let stack = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(fmt_layer(
                out.clone(),
                Targets::new().with_default(tracing::Level::TRACE),
            ));
        let rec = Recorder::with_defaults();
        let d = if with_taskline {
            Dispatch::new(TasklineSubscriber::new(&rec, stack).expect("registry-backed"))
        } else {
            Dispatch::new(stack)
        };
        let _g = tracing::dispatcher::set_default(&d);
        let mut b = tokio::runtime::Builder::new_current_thread();
        if with_taskline {
            b.taskline(&rec);
        }
        let rt = with_dispatch(b, &d);
        application(&rt, N, K);
        drop(rt);
        if with_taskline {
            let snap = rec.snapshot();
            // k yields per task: k wakes and k + 1 polls, whatever EnvFilter says.
            let wakes: u64 = snap.sites.iter().map(|s| s.wakes).sum();
            assert!(wakes >= N * K, "every yield's wake recorded: {wakes}");
            let polls: u64 = snap.sites.iter().map(|s| s.polls).sum();
            assert!(polls >= N * (K + 1), "{polls}");
        }
        rec.shutdown();
        outputs.push(out.text());
    }
    assert!(
        outputs[0].contains("request{id=3}:step{step=2}: subscriber: working i=3 step=2"),
        "{}",
        outputs[0]
    );
    assert!(!outputs[0].contains("hidden at info"));
    assert_eq!(
        outputs[0], outputs[1],
        "the user's fmt output is unchanged by taskline"
    );
}

/// Checks, for every span the user's stack sees, that its id is the
/// registry's and that the registry knows it; counts what it saw.
#[derive(Clone, Default)]
struct IdAudit {
    created: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    entered: Arc<AtomicU64>,
    high_generation: Arc<AtomicU64>,
    foreign: Arc<AtomicU64>,
}

impl IdAudit {
    fn check<S>(&self, id: &span::Id, ctx: &Context<'_, S>)
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let raw = id.into_u64() - 1;
        if raw & TASKLINE_ID_BIT != 0 || ctx.span(id).is_none_or(|s| !s.name().starts_with("app."))
        {
            self.foreign.fetch_add(1, Ordering::Relaxed);
        }
        if raw >> 63 != 0 {
            // The slot's generation reached its top bit: a tag bit would collide here.
            self.high_generation.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<S> tracing_subscriber::Layer<S> for IdAudit
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(&self, _: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.check(id, &ctx);
    }
    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.entered.fetch_add(1, Ordering::Relaxed);
        self.check(id, &ctx);
    }
    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        self.check(&id, &ctx);
    }
}

#[cfg(tokio_unstable)]
#[test]
fn ids_never_resolve_to_the_wrong_side_under_heavy_slot_reuse() {
    const TASKS: usize = 4000;
    const K: usize = 2;
    const SPANS_PER_THREAD: u64 = 12_000;
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let audit = IdAudit::default();
    let d = Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry().with(audit.clone()))
            .expect("registry-backed"),
    );
    let _g = tracing::dispatcher::set_default(&d);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2);
    let rt = with_dispatch(b, &d);
    // Two threads create and drop application spans as fast as they can,
    // reusing the same registry slots (every 8192 reuses the generation
    // wraps, running through every high bit of the id) ...
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..SPANS_PER_THREAD {
                        let s = tracing::info_span!("app.churn", i);
                        let _e = s.enter();
                    }
                })
            })
        })
        .collect();
    // ... while tasks with application spans of their own yield and wake.
    let w = rt.block_on(async {
        let mut ids = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..TASKS {
            let h = tokio::spawn(async {
                for _ in 0..K {
                    let s = tracing::info_span!("app.task");
                    s.in_scope(|| {});
                    tokio::task::yield_now().await;
                }
            });
            ids.push(layer_support::id_of(&h));
            handles.push(h);
        }
        for h in handles {
            h.await.expect("join");
        }
        ids
    });
    for c in churn {
        c.join().expect("churn thread");
    }
    drop(rt);
    let events = col.events(&rec);
    let spawned = (TASKS * K) as u64 + 2 * SPANS_PER_THREAD;
    assert_eq!(
        audit.foreign.load(Ordering::Relaxed),
        0,
        "a Tokio span reached the user's stack"
    );
    assert_eq!(
        audit.created.load(Ordering::Relaxed),
        spawned,
        "every app span reached it"
    );
    assert_eq!(audit.closed.load(Ordering::Relaxed), spawned);
    assert!(audit.entered.load(Ordering::Relaxed) >= spawned);
    assert!(
        audit.high_generation.load(Ordering::Relaxed) > 0,
        "the test must drive a slot's generation through its top bit"
    );
    // Every task: one spawn, one termination, k wakes; no event names a
    // task that was never spawned (an app span taken for a task).
    let mine: HashSet<u64> = w.iter().copied().collect();
    for &id in &w {
        assert_eq!(of(&events, EventKind::Spawn, id).len(), 1, "task {id}");
        assert_eq!(of(&events, EventKind::Terminate, id).len(), 1, "task {id}");
        assert_eq!(of(&events, EventKind::Wake, id).len(), K, "task {id}");
    }
    // Besides them only the runtime's own: the block_on future and the
    // worker threads (started as blocking tasks).
    let runtime_own: HashSet<u64> = events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn) && !mine.contains(&e.task))
        .map(|e| {
            let kind = TaskKind::from_flags(e.flags);
            assert!(
                matches!(kind, TaskKind::BlockOn | TaskKind::Blocking),
                "a spawn of an unknown task: {e:?}"
            );
            e.task
        })
        .collect();
    for e in &events {
        if matches!(
            e.kind(),
            Some(EventKind::PollStart | EventKind::Wake | EventKind::Terminate)
        ) {
            assert!(
                mine.contains(&e.task) || runtime_own.contains(&e.task),
                "event about an unknown task: {e:?}"
            );
        }
    }
    rec.shutdown();
}

#[test]
fn a_subscriber_without_a_registry_is_refused_with_a_clear_error() {
    let rec = Recorder::with_defaults();
    let err = TasklineSubscriber::new(&rec, tracing::subscriber::NoSubscriber::default())
        .expect_err("no registry underneath");
    assert!(matches!(err, SubscriberError::NoRegistry));
    let text = err.to_string();
    assert!(
        text.contains("registry()") && text.contains("TasklineLayer"),
        "{text}"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn resource_waits_are_off_by_default_and_wakes_still_recorded() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = Dispatch::new(
        TasklineSubscriber::new(&rec, tracing_subscriber::registry()).expect("registry-backed"),
    );
    let _g = tracing::dispatcher::set_default(&d);
    let rt = layer_support::multi_thread(2, &d);
    let waiter = rt.block_on(async {
        let m = Arc::new(tokio::sync::Mutex::new(0));
        let guard = m.clone().lock_owned().await;
        let m2 = m.clone();
        let h = tokio::spawn(async move { *m2.lock().await += 1 });
        let id = layer_support::id_of(&h);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(guard);
        h.await.expect("join");
        id
    });
    drop(rt);
    let events = col.events(&rec);
    assert!(
        events
            .iter()
            .all(|e| e.kind() != Some(EventKind::ResourceWait)),
        "no resource waits unless asked for"
    );
    assert!(
        !of(&events, EventKind::Wake, waiter).is_empty(),
        "the waiter's wake"
    );
    rec.shutdown();
}

#[cfg(tokio_unstable)]
#[test]
fn with_hooks_and_yields_the_snapshot_counts_each_poll_and_wake_once() {
    const N: usize = 30;
    const K: usize = 3;
    let rec = Recorder::with_defaults();
    let d = source(&rec);
    let _g = tracing::dispatcher::set_default(&d);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).taskline(&rec);
    let rt = with_dispatch(b, &d);
    let w = spawn_yielders(&rt, N, K);
    drop(rt);
    let site = site_at(&rec, w.line);
    assert_eq!(
        (site.spawned, site.terminated, site.alive),
        (N as u64, N as u64, 0)
    );
    assert_eq!(site.polls, (N * (K + 1)) as u64);
    assert_eq!(site.wakes, (N * K) as u64);
    rec.shutdown();
}

#[test]
fn resource_spans_nested_past_the_tracked_depth_never_panic() {
    let rec = Recorder::with_defaults();
    let col = Collect::attach(&rec);
    let d = source(&rec);
    tracing::dispatcher::with_default(&d, || {
        // Spans shaped like Tokio's (same name, a Tokio target, the same fields).
        let spans: Vec<tracing::Span> = (0..40)
            .map(|_| {
                tracing::trace_span!(
                    target: "tokio::sync::mutex",
                    "runtime.resource",
                    concrete_type = "Mutex",
                    is_internal = false
                )
            })
            .collect();
        let previous = taskline_core::set_current_task(77);
        let entered: Vec<_> = spans.iter().map(|s| s.enter()).collect();
        tracing::trace!(target: "runtime::resource::poll_op", op_name = "poll", is_ready = false);
        drop(entered);
        let _inner = spans[0].enter();
        tracing::trace!(target: "runtime::resource::poll_op", op_name = "poll", is_ready = false);
        taskline_core::set_current_task(previous);
    });
    let waits = of(&col.events(&rec), EventKind::ResourceWait, 77);
    // Past the tracked depth nothing is named; at depth 1 the Mutex is.
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(
        rec.registry().string(waits[0].aux).as_deref(),
        Some("Mutex")
    );
    rec.shutdown();
}
