//! Region futures: one future (a request handler, a query, a retry loop)
//! inside an existing task, recorded as one instance of a named region: the
//! counterpart of tokio-metrics' `FutureMonitor::instrument` (and of
//! `TaskMonitor::instrument` on a future that is not a task of its own),
//! recorded into taskline's recorder. Per region name the snapshot's
//! [`RegionTable`](crate::RegionTable) has what `FutureMetrics` has per
//! future, summed: instances, polls, poll time (`busy_ns`), time waiting
//! between polls (`wait_ns`) and first poll to end (`total_ns`, with p99);
//! `tests/regions.rs` checks the counts against a `FutureMonitor` on the
//! same futures.
//!
//! [`Recorder::region`] wraps a future in [`RegionFuture`]. Each poll of it
//! records a `SpanEnter` / `SpanExit` pair (the region's name, a per-process
//! instance id in `arg`, a [`SpanMark`] in the flags): the first poll's
//! enter is marked [`SpanMark::FirstPoll`] (the instance starts), the exit of
//! the poll that returns `Ready` [`SpanMark::Completed`] (it ends), and a
//! future dropped after its first poll and before completing records a
//! zero-length [`SpanMark::Dropped`] pair at the drop (it ends there). The
//! [`RegionTable`](crate::RegionTable) reads them as one instance of the
//! name: count, duration from the first poll to the end, busy time (its
//! polls) and wait time (the rest), and the spawn site of the task it ran in.
//! Trace files keep the marks, so `taskline report` on a trace gives the
//! same table, and the polls show as slices on the thread's span track.
//!
//! Why span events and not task events: the future runs inside a task that
//! is already recorded (by the runtime hooks, the `tracing` sources or
//! [`Recorder::spawn`]); a `Spawn` or `PollStart` of its own would count its
//! polls twice. It needs no `tracing` subscriber, no runtime hooks and no
//! `--cfg tokio_unstable`, and records whether or not
//! [`RecorderConfig::record_spans`](crate::RecorderConfig::record_spans) is set
//! (wrapping the future is the request to record it).
//!
//! Cost: interning the name when wrapping (a per-thread cache hit after the
//! first time); per poll, two clock reads and two ring pushes. A future
//! dropped before its first poll records nothing and is no instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::event::{Event, EventKind, SpanMark};
use crate::record::clock;
use crate::record::recorder::Recorder;
use crate::source::intern_cache::intern_str;

/// Instance ids of region futures, unique in the process (never 0).
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// `RegionFuture::state`: not polled yet.
const NEW: u8 = 0;
/// `RegionFuture::state`: polled, not completed.
const RUNNING: u8 = 1;
/// `RegionFuture::state`: completed (or records nothing).
const DONE: u8 = 2;

/// Where a region future records: its recorder, interned name and instance id.
struct Target {
    recorder: Recorder,
    name: u32,
    id: u64,
}

impl Target {
    fn record(&self, kind: EventKind, ts: u64, mark: SpanMark) {
        let mut e = Event::new(kind, ts, 0);
        e.arg = self.id;
        e.aux = self.name;
        e.flags = mark as u8;
        self.recorder.record(e);
    }
}

/// Records the end of the poll in progress if the inner future panics.
struct PollGuard<'a> {
    target: &'a Target,
    armed: bool,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Unwinding out of the inner poll: the poll ended; the drop
            // that follows ends the instance as dropped.
            self.target
                .record(EventKind::SpanExit, clock::now_ns(), SpanMark::Poll);
        }
    }
}

pin_project_lite::pin_project! {
    /// A future recorded as one instance of a named region: see
    /// [`Recorder::region`]. Output and behaviour are the inner future's.
    pub struct RegionFuture<F> {
        #[pin]
        inner: F,
        target: Option<Target>,
        state: u8,
    }

    impl<F> PinnedDrop for RegionFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.state == RUNNING
                && let Some(t) = this.target.as_ref()
            {
                // Dropped after its first poll, before completing.
                let now = clock::now_ns();
                t.record(EventKind::SpanEnter, now, SpanMark::Dropped);
                t.record(EventKind::SpanExit, now, SpanMark::Dropped);
            }
        }
    }
}

impl<F> RegionFuture<F> {
    /// A wrapper that records nothing and just polls `future` (what
    /// `taskline::region` gives when no recorder runs).
    ///
    /// ```
    /// let fut = taskline_core::RegionFuture::unrecorded(async { 7 });
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(rt.block_on(fut), 7);
    /// ```
    pub fn unrecorded(future: F) -> Self {
        RegionFuture {
            inner: future,
            target: None,
            state: DONE,
        }
    }

    /// This instance's id (the `arg` of its events), `None` when it records nothing.
    pub fn instance_id(&self) -> Option<u64> {
        self.target.as_ref().map(|t| t.id)
    }
}

impl<F: Future> Future for RegionFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(target) = this.target.as_ref() else {
            return this.inner.poll(cx);
        };
        if *this.state == DONE {
            // Polled again after completing: the inner future's business.
            return this.inner.poll(cx);
        }
        let mark = if *this.state == NEW {
            SpanMark::FirstPoll
        } else {
            SpanMark::Poll
        };
        *this.state = RUNNING;
        target.record(EventKind::SpanEnter, clock::now_ns(), mark);
        let mut guard = PollGuard {
            target,
            armed: true,
        };
        let result = this.inner.poll(cx);
        guard.armed = false;
        let end = if result.is_ready() {
            *this.state = DONE;
            SpanMark::Completed
        } else {
            SpanMark::Poll
        };
        target.record(EventKind::SpanExit, clock::now_ns(), end);
        result
    }
}

impl Recorder {
    /// Wraps `future` so that it is recorded as one instance of the region
    /// `name` (see [`RegionTable`](crate::RegionTable)): count, duration
    /// from its first poll to its completion or drop, p99, busy time (its
    /// polls) and wait time (the rest), and the spawn site of the task it
    /// runs in. For a request handler or any future inside an existing
    /// task; the task's own polls are not counted again. Works on stable
    /// Tokio and without a `tracing` subscriber.
    ///
    /// ```
    /// use taskline_core::Recorder;
    /// let rec = Recorder::with_defaults();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     for _ in 0..3 {
    ///         rec.region("handle", async { tokio::task::yield_now().await }).await;
    ///     }
    /// });
    /// let snapshot = rec.snapshot();
    /// let handle = &snapshot.regions[0];
    /// assert_eq!((handle.name.as_str(), handle.count, handle.polls), ("handle", 3, 6));
    /// assert_eq!(handle.busy_ns + handle.wait_ns, handle.total_ns);
    /// # rec.shutdown();
    /// ```
    pub fn region<F: Future>(&self, name: &str, future: F) -> RegionFuture<F> {
        RegionFuture {
            inner: future,
            target: Some(Target {
                recorder: self.clone(),
                name: intern_str(self.id(), self.registry(), name),
                id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            }),
            state: NEW,
        }
    }
}
