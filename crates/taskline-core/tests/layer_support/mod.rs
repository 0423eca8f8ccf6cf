//! Shared helpers of the `layer*` integration tests: a sink that keeps every
//! event, runtimes whose every thread uses a given tracing dispatcher, and
//! small queries over the collected events.
//!
//! Tokio creates task spans and emits waker events through the *thread's*
//! current dispatcher, and runs tasks on worker and blocking-pool threads
//! where a `set_default` made on the test thread is not active. Instead of
//! one global subscriber per test binary, each runtime here installs the
//! test's dispatcher on its own threads (`on_thread_start`), so tests in one
//! binary run in parallel, each with its own subscriber and recorder.

#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use taskline_core::Recorder;
use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{Event, EventKind};
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// A sink keeping every event it is given.
#[derive(Clone, Default)]
pub struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        self.0
            .lock()
            .expect("collect lock")
            .extend_from_slice(events);
    }
}

impl Collect {
    /// Adds a collector to `rec`.
    pub fn attach(rec: &Recorder) -> Self {
        let c = Collect::default();
        rec.add_sink(c.clone());
        c
    }

    /// Flushes `rec` and returns everything collected so far.
    pub fn events(&self, rec: &Recorder) -> Vec<Event> {
        rec.flush();
        self.0.lock().expect("collect lock").clone()
    }
}

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// Builds `builder` so that every runtime thread (workers and blocking pool)
/// uses `dispatch` as its default subscriber.
pub fn with_dispatch(
    mut builder: tokio::runtime::Builder,
    dispatch: &Dispatch,
) -> tokio::runtime::Runtime {
    let d = dispatch.clone();
    builder
        .enable_all()
        .on_thread_start(move || {
            let g = tracing::dispatcher::set_default(&d);
            GUARD.with(|slot| *slot.borrow_mut() = Some(g));
        })
        .on_thread_stop(|| {
            GUARD.with(|slot| drop(slot.borrow_mut().take()));
        })
        .build()
        .expect("runtime")
}

/// A multi-thread runtime with `workers` workers using `dispatch`.
pub fn multi_thread(workers: usize, dispatch: &Dispatch) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers);
    with_dispatch(b, dispatch)
}

/// A current-thread runtime using `dispatch` (on its blocking threads; the
/// caller must also `set_default` on the thread calling `block_on`).
pub fn current_thread(dispatch: &Dispatch) -> tokio::runtime::Runtime {
    with_dispatch(tokio::runtime::Builder::new_current_thread(), dispatch)
}

/// Events of `kind` about `task`.
pub fn of(events: &[Event], kind: EventKind, task: u64) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.kind() == Some(kind) && e.task == task)
        .copied()
        .collect()
}

/// Number of events of `kind` about `task`.
pub fn count(events: &[Event], kind: EventKind, task: u64) -> usize {
    of(events, kind, task).len()
}

/// A future that wakes itself inside its own poll once, then completes: a
/// yield whose wake Tokio sees *during* the task's poll (unlike
/// `tokio::task::yield_now`, which defers the wake to the scheduler).
pub struct SelfWakeYield(bool);

impl SelfWakeYield {
    /// A fresh yield point.
    pub fn new() -> Self {
        SelfWakeYield(false)
    }
}

impl Future for SelfWakeYield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The numeric Tokio id of a join handle's task.
pub fn id_of<T>(h: &tokio::task::JoinHandle<T>) -> u64 {
    taskline_core::task_id_u64(h.id())
}

/// Where [`spawn_yielders`] spawned its tasks, and their ids.
pub struct Workload {
    /// Tokio ids of the spawned tasks.
    pub ids: Vec<u64>,
    /// Line of the `tokio::spawn` call (the spawn site).
    pub line: u32,
}

/// Spawns `n` tasks from one site on `rt`, each yielding `k` times with a
/// [`SelfWakeYield`], and waits for all of them.
pub fn spawn_yielders(rt: &tokio::runtime::Runtime, n: usize, k: usize) -> Workload {
    let (ids, line) = rt.block_on(async move {
        let mut line = 0;
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let fut = async move {
                    for _ in 0..k {
                        SelfWakeYield::new().await;
                    }
                };
                // Same line: the spawn site is where `spawn` is called.
                let (h, l) = (tokio::spawn(fut), line!());
                line = l;
                h
            })
            .collect();
        let ids: Vec<u64> = handles.iter().map(id_of).collect();
        for h in handles {
            h.await.expect("join");
        }
        (ids, line)
    });
    Workload { ids, line }
}

/// The snapshot's statistics of the site at `line` of this file.
pub fn site_at(rec: &Recorder, line: u32) -> taskline_core::SiteStats {
    let snap = rec.snapshot();
    let found = snap.sites.into_iter().find(|s| {
        rec.registry()
            .site(s.id)
            .is_some_and(|site| site.line == line && site.file.ends_with("mod.rs"))
    });
    found.expect("site in snapshot")
}

/// A `fmt` layer's output, shared with the test.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("captured").clone()).expect("utf8")
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("captured").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `fmt` layer without timestamps or colours writing to `out`, filtered
/// by `targets` (so two runs of one program give the same bytes).
pub fn fmt_layer<S>(out: Captured, targets: Targets) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .without_time()
        .with_filter(targets)
}
