//! The [`tracing_subscriber::Layer`] that records from Tokio's own
//! instrumentation: [`TasklineLayer`].
//!
//! Tokio (built with `--cfg tokio_unstable` and its `tracing` feature) emits:
//!
//! | Tokio signal | what the layer records |
//! |---|---|
//! | span `runtime.spawn` created (targets `tokio::task`, `tokio::task::blocking`) | `Spawn` (site from `loc.*`, size from `original_size.bytes` or `size.bytes`, [`TaskKind`] from `kind`), plus `TaskName` when `task.name` is not empty |
//! | that span entered / exited (one poll) | `PollStart` / `PollEnd`, or `BlockingStart` / `BlockingEnd` for `kind = "blocking"` |
//! | that span closed (task dropped) | `Terminate` |
//! | event target `tokio::task::waker`, `op` = `waker.wake` / `waker.wake_by_ref` | `Wake` naming the woken task and the task that was being polled |
//! | event target `runtime::resource::poll_op` with `is_ready = false` | `ResourceWait` naming the resource's `concrete_type` (`Mutex`, `Semaphore`, `Sleep`, ...) |
//! | any other span entered / exited, when [`RecorderConfig::record_spans`](crate::record::config::RecorderConfig::record_spans) is set | `SpanEnter` / `SpanExit` |
//!
//! Every event the layer writes carries [`flags::FROM_LAYER`] where the event
//! table allows it, so consumers can tell the two sources apart.
//!
//! # Working with the runtime hooks
//!
//! When the runtime is also instrumented with [`hooks`](crate::source::hooks), the
//! hooks record every poll (cheaper, and with Tokio's schedule latency when
//! `RecorderConfig::track_schedule_latency` is set). The
//! layer then records a poll only when the hooks did not
//! ([`context::in_hooked_poll`] is false, or the hooked poll is of another
//! task, e.g. a `LocalSet` task polled inside a hooked task), so polls are
//! never counted twice. `Spawn` and `Terminate` may come from both sources;
//! consumers treat the second one as extra information / a no-op.
//!
//! # What it does not see
//!
//! - `tokio::task::block_in_place` emits no tracing signal at all. Wrap the
//!   call in [`block_in_place`] to record it.
//! - `tokio::task::yield_now` hands the waker to the scheduler, which wakes
//!   it *after* the poll, when the worker runs out of work. That `Wake` is
//!   therefore recorded with no waking task (`arg = 0`), not as a self-wake.
//!   A future that calls `cx.waker().wake_by_ref()` inside its own poll is
//!   recorded as a self-wake ([`flags::SELF_WAKE`]).
//! - `Notify`, mpsc channels, I/O resources and `Mutex::const_new` have no
//!   public resource span in Tokio, so waiting on them records no
//!   `ResourceWait` (the wake that ends the wait is still recorded). Bounded
//!   mpsc channels and the inside of `Mutex`/`RwLock`/`Semaphore` wait on an
//!   internal semaphore (`is_internal = true`); the layer skips internal
//!   resources, so a `Mutex` wait is recorded once, as `Mutex`.
//! - Tokio wraps every task in `tracing::Instrumented`, which enters the
//!   task span once more to *drop* the future. The layer recognises that
//!   enter after a completed task (it directly follows the task's own exit,
//!   no wake in between, and the span closes right after) and does not count
//!   it as a poll. The drop of a *cancelled* task (aborted, or dropped at
//!   runtime shutdown) is recorded as one short poll, since destructors run
//!   there; a task woken during the very poll that completes it also gets
//!   its drop counted as a poll.
//! - `Runtime::block_on` futures are reported as tasks of kind `block_on`.
//! - Waker events carry the *tracing span id* of the task. The layer resolves
//!   it through the subscriber it is part of, so the task must have been
//!   spawned while that same subscriber was the current one.
//!
//! # Cost
//!
//! The layer never returns [`Interest::never`]: in a `Layered` subscriber
//! without per-layer filters, one layer's `never` disables the callsite for
//! the whole subscriber (tracing-subscriber's `pick_interest` returns the
//! outer `never` before asking the inner layers), so it would silence the
//! `fmt` layer, console-subscriber or OpenTelemetry layer next to it, and
//! Tokio's resource/async-op spans that other tools need. The layer is
//! therefore called for every span and event of the application; for those
//! that are not Tokio's it returns after comparing a span name or an event
//! target (a length check and a short `memcmp`).
//!
//! Per task the layer does: one field visit when the span is created
//! (strings copied to stack buffers; no allocation unless the task is
//! named), one extension insert (tracing-subscriber boxes it) and one slot
//! in the layer's span table (below). Per poll:
//!
//! - inside a hooked poll (the runtime hooks record the poll), the enter
//!   and exit of the task's own span cost a thread-local lookup each: a
//!   per-thread `task id -> span id` cache, filled by the first poll of the
//!   task on that thread, answers "this is the polled task's span" without
//!   a registry lookup (a task's span cannot close while the task is being
//!   polled, and Tokio task ids are never reused, so a cached pair stays
//!   true whenever it matches);
//! - otherwise a registry lookup plus a read of the extension (under
//!   tracing-subscriber's per-span extensions lock), two clock reads and the
//!   recorder's lock-free append.
//!
//! A waker event (the span id of the woken task) is resolved through the
//! layer's span table, a fixed 4096-slot lock-free `span id -> task id`
//! table shared by all threads (seqlock-validated reads, so a slot reused
//! for another span is never misread); only spans that found no free slot
//! at creation go through the registry. `waker.clone` / `waker.drop` events
//! cost a field visit. Spawn sites, resource kinds and span names go through
//! the sources' per-thread interning cache (shared with the runtime hooks),
//! so steady-state interning takes no lock and allocates nothing.
//!
//! The dominant cost is not this layer but `tracing_subscriber::registry()`
//! itself, which allocates and tracks a span per task and per resource
//! operation: on spawn-heavy and channel-heavy code the registry with an
//! *empty* layer already costs more than everything taskline records (the
//! measurements are in the bench crate's README). [`TasklineSubscriber`](crate::source::subscriber::TasklineSubscriber)
//! records the same events without the registry (it sits in front of your
//! stack instead of inside it) and is the recommended source; use this layer
//! where a tool beside it needs Tokio's spans too (`console-subscriber`), or
//! where the stack cannot be wrapped. The README's Overhead section has the
//! measured table.
//!
//! # Filters
//!
//! A *global* filter below `TRACE` (`registry().with(EnvFilter::new("info"))`)
//! disables Tokio's instrumentation for every layer, this one included. The
//! layer says so once on stderr when it joins such a subscriber
//! ([`TasklineLayer::hidden_from_it`]); per-layer filters
//! (`fmt::layer().with_filter(..)`) leave it alone.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::event::{BlockingKind, Event, EventKind, NO_VALUE, TaskKind, WakeOp, flags};
use crate::record::clock;
use crate::record::recorder::Recorder;
use crate::record::registry::Registry;
use crate::source::context::{self, worker};
use crate::source::intern_cache::{intern_site, intern_str};

/// Span name of Tokio's task spans.
pub(crate) const SPAWN_SPAN: &str = "runtime.spawn";
/// Span name of Tokio's resource spans (`Mutex`, `Semaphore`, `Sleep`, ...).
pub(crate) const RESOURCE_SPAN: &str = "runtime.resource";
/// Target of Tokio's waker events.
pub(crate) const WAKER_TARGET: &str = "tokio::task::waker";
/// Target of Tokio's resource poll events.
pub(crate) const POLL_OP_TARGET: &str = "runtime::resource::poll_op";
/// Target of the task spans of `spawn_blocking`.
pub(crate) const BLOCKING_TARGET: &str = "tokio::task::blocking";

/// Bit of [`TaskSpan::saved`] saying "this poll was recorded by the layer".
const OWNED: u64 = 1 << 63;

/// Gives every layer instance its own key space in the per-thread caches
/// (two layers may feed two recorders with different registries).
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// What the layer keeps in the extensions of a Tokio task span
/// (`runtime.spawn`), so enter/exit/close and wakes need no field parsing.
#[derive(Debug)]
pub struct TaskSpan {
    /// The Tokio task id (`task.id`, equal to `JoinHandle::id()`).
    pub task: u64,
    /// The task kind (`kind` field).
    pub kind: TaskKind,
    /// While the layer owns a poll of this task: [`OWNED`] | the thread's
    /// previous current task, restored on exit. 0 otherwise. A task is polled
    /// by one thread at a time, so this needs no more than an atomic.
    pub(crate) saved: AtomicU64,
    /// Set by every wake of the task, cleared when a poll starts: a poll
    /// that follows a wake is certainly a poll (see [`Pending`]). When the
    /// span has a [`SpanTable`] slot, wakes set the slot's flag instead.
    pub(crate) woken: AtomicBool,
    /// The span has a [`SpanTable`] slot (until it closes).
    pub(crate) in_table: bool,
}

impl TaskSpan {
    /// The state of a task span that has not been polled yet.
    pub(crate) fn new(task: u64, kind: TaskKind) -> Self {
        TaskSpan {
            task,
            kind,
            saved: AtomicU64::new(0),
            woken: AtomicBool::new(false),
            in_table: false,
        }
    }
}

/// Whether a `tracing` source reports the `Spawn` and `Terminate` of a task
/// of `kind` named `named`, given that `recorder` may also have runtime
/// hooks: the hooks report every plain task's spawn and termination (more
/// cheaply), so the sources leave those to them. They still report blocking
/// tasks (the hooks see no spawn of those), `block_on` futures and local
/// tasks, and the spawn of a named task, whose `TaskName` follows its
/// `Spawn` while the hooks' `Spawn` comes only later.
pub(crate) fn reports_lifecycle(recorder: &Recorder, kind: TaskKind, named: bool) -> bool {
    named || kind != TaskKind::Task || !recorder.hooks_attached()
}

/// What the layer keeps in the extensions of a Tokio resource span.
#[derive(Debug, Clone, Copy)]
struct ResourceSpan {
    /// Interned `concrete_type` (e.g. `Semaphore`).
    kind: u32,
    /// Tokio's `is_internal` (the semaphore inside a `Mutex`, ...).
    internal: bool,
}

/// What the layer keeps in the extensions of an application span (only when
/// span recording is enabled).
#[derive(Debug, Clone, Copy)]
struct AppSpan {
    /// Interned span name.
    name: u32,
}

/// A [`tracing_subscriber::Layer`] recording Tokio's task, waker and
/// resource instrumentation (and optionally application spans) into a
/// [`Recorder`].
///
/// Requires `--cfg tokio_unstable` and Tokio's `tracing` feature for Tokio to
/// emit anything; without them the layer compiles and records only
/// application spans.
///
/// ```
/// use taskline_core::TasklineLayer;
/// use taskline_core::Recorder;
/// use tracing_subscriber::filter::{LevelFilter, Targets};
/// use tracing_subscriber::prelude::*;
///
/// let rec = Recorder::with_defaults();
/// let subscriber = tracing_subscriber::registry()
///     .with(TasklineLayer::new(&rec))
///     .with(
///         tracing_subscriber::fmt::layer()
///             .with_filter(Targets::new().with_default(LevelFilter::INFO).with_target("tokio", LevelFilter::OFF)),
///     );
/// let _guard = tracing::subscriber::set_default(subscriber);
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// rec.shutdown();
/// ```
#[derive(Debug)]
pub struct TasklineLayer {
    recorder: Recorder,
    record_spans: bool,
    id: u64,
    /// Task span id -> task id, so a wake needs no registry lookup.
    spans: SpanTable,
}

impl TasklineLayer {
    /// A layer feeding `recorder`. Application spans are recorded when the
    /// recorder's configuration has `record_spans` set.
    pub fn new(recorder: &Recorder) -> Self {
        #[cfg(tokio_unstable)]
        recorder.set_wakes_from_tracing();
        TasklineLayer {
            recorder: recorder.clone(),
            record_spans: recorder.config().record_spans,
            id: NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed),
            spans: SpanTable::new(),
        }
    }

    /// Records `event` stamped with the current time.
    #[inline]
    pub(crate) fn emit(&self, kind: EventKind, task: u64, arg: u64, aux: u32, flags: u8) {
        let mut e = Event::new(kind, clock::now_ns(), task);
        e.arg = arg;
        e.aux = aux;
        e.flags = flags;
        self.recorder.record(e);
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.recorder.registry()
    }

    /// The recorder this layer feeds.
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Whether application spans are recorded (`RecorderConfig::record_spans`).
    pub(crate) fn records_spans(&self) -> bool {
        self.record_spans
    }

    /// Records a `Wake` of `woken` by `op`, naming the task this thread is
    /// polling (if any) as the waker.
    pub(crate) fn record_wake(&self, woken: u64, op: WakeOp) {
        let waker = context::current_task();
        let mut f = op as u8;
        if waker == woken {
            f |= flags::SELF_WAKE;
        }
        self.emit(EventKind::Wake, woken, waker, 0, f);
    }

    /// Records that `task` waits on the resource `kind` (interned) whose
    /// span is `resource`.
    pub(crate) fn record_resource_wait(&self, task: u64, resource: u64, kind: u32) {
        self.emit(EventKind::ResourceWait, task, resource, kind, 0);
    }

    /// Records the termination of the task of `t`'s span (the span closed),
    /// unless the hooks report it (see [`reports_lifecycle`]).
    pub(crate) fn record_close(&self, t: &TaskSpan) {
        if reports_lifecycle(&self.recorder, t.kind, false) {
            self.emit(EventKind::Terminate, t.task, 0, 0, flags::FROM_LAYER);
        }
    }

    /// Decodes a `runtime.spawn` span's fields, records its `Spawn` (see
    /// [`reports_lifecycle`]) and `TaskName`, and returns its state.
    pub(crate) fn task_span_created(&self, attrs: &span::Attributes<'_>) -> Option<TaskSpan> {
        let meta = attrs.metadata();
        let mut v = SpawnVisitor::default();
        attrs.record(&mut v);
        let task = v.task_id?;
        let kind = if meta.target() == BLOCKING_TARGET {
            TaskKind::Blocking
        } else {
            v.kind.unwrap_or(TaskKind::Task)
        };
        if reports_lifecycle(&self.recorder, kind, !v.name.is_empty()) {
            // The site only goes into this `Spawn`: with the hooks, a plain
            // task's spawn costs no interning here.
            let file = if v.file.is_empty() {
                "<unknown>"
            } else {
                v.file.as_str()
            };
            let site = intern_site(
                self.recorder.id(),
                self.registry(),
                file,
                v.line,
                v.col,
                kind,
            );
            let size = v.original_size.or(v.size).unwrap_or(0);
            self.emit(
                EventKind::Spawn,
                task,
                size,
                site,
                flags::FROM_LAYER | (kind as u8 & flags::ENUM_MASK),
            );
        }
        if !v.name.is_empty() {
            let id = self.registry().intern(v.name.as_str());
            self.emit(EventKind::TaskName, task, 0, id, flags::FROM_LAYER);
        }
        Some(TaskSpan::new(task, kind))
    }

    /// The enter of `t`'s span (`span`): starts a poll the layer records,
    /// unless the hooks record it; `last_exit` is what [`before`](Self::before)
    /// returned for this callback.
    pub(crate) fn on_task_enter(&self, t: &TaskSpan, span: u64, last_exit: u64) {
        if context::hooked_task() == t.task {
            // The runtime hooks recorded this poll and set the current task.
            return;
        }
        let prev = context::set_current_task(t.task);
        t.saved.store(OWNED | (prev & !OWNED), Ordering::Relaxed);
        let blocking = t.kind == TaskKind::Blocking;
        let ts = clock::now_ns();
        let worker = worker();
        let mut woken = t.woken.swap(false, Ordering::Relaxed);
        if t.in_table {
            woken |= self.spans.take_woken(span, t.task);
        }
        if last_exit == t.task && !woken {
            // Entered right after its own exit on this thread, and nobody
            // woke it: `Instrumented`'s drop (which enters the span once more
            // to drop the future), or (rarely) a re-poll. Decide at the next
            // callback; see `Pending`.
            let held = with_local(|l| {
                if l.layer != self.id {
                    return false;
                }
                l.pending = Pending::Start {
                    task: t.task,
                    blocking,
                    ts,
                    worker,
                };
                true
            });
            if held == Some(true) {
                return;
            }
        }
        self.recorder
            .record(start_event(t.task, blocking, ts, worker));
    }

    /// The exit of `t`'s span: ends the poll [`on_task_enter`](Self::on_task_enter)
    /// started, if it did.
    pub(crate) fn on_task_exit(&self, t: &TaskSpan) {
        let saved = t.saved.swap(0, Ordering::Relaxed);
        if saved & OWNED == 0 {
            return;
        }
        context::set_current_task(saved & !OWNED);
        let ts = clock::now_ns();
        let worker = worker();
        let deferred = with_local(|l| {
            if l.layer != self.id {
                return false;
            }
            l.last_exit = t.task;
            match l.pending {
                Pending::Start {
                    task,
                    blocking,
                    ts: start,
                    worker: w,
                } if task == t.task => {
                    l.pending = Pending::Pair {
                        task,
                        blocking,
                        start,
                        end: ts,
                        worker: w,
                    };
                    true
                }
                _ => false,
            }
        });
        if deferred != Some(true) {
            self.recorder
                .record(end_event(t.task, t.kind == TaskKind::Blocking, ts, worker));
        }
    }

    fn on_waker_event<S>(&self, event: &tracing::Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut v = WakerVisitor::default();
        event.record(&mut v);
        let op = match v.op {
            Some(op) => op,
            None => return,
        };
        let Some(span_id) = v.span_id.filter(|&id| id != 0) else {
            return;
        };
        let woken = match self.spans.wake(span_id) {
            Some(task) => task,
            None => {
                let Some(span) = ctx.span(&span::Id::from_u64(span_id)) else {
                    return;
                };
                match span.extensions().get::<TaskSpan>() {
                    Some(t) => {
                        t.woken.store(true, Ordering::Relaxed);
                        t.task
                    }
                    None => return,
                }
            }
        };
        self.record_wake(woken, op);
    }

    fn on_poll_op_event<S>(&self, event: &tracing::Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut v = PollOpVisitor::default();
        event.record(&mut v);
        if v.is_ready != Some(false) {
            return;
        }
        let task = context::current_task();
        if task == 0 {
            return;
        }
        let Some(current) = ctx.event_span(event) else {
            return;
        };
        // async_op.poll -> async_op -> resource: the resource is at most a few
        // levels up; bound the walk so a deep application stack costs nothing.
        for span in current.scope().take(4) {
            if span.name() != RESOURCE_SPAN {
                continue;
            }
            let res = span.extensions().get::<ResourceSpan>().copied();
            if let Some(r) = res
                && !r.internal
            {
                self.record_resource_wait(task, span.id().into_u64(), r.kind);
            }
            return;
        }
    }
}

/// A stand-in for Tokio's task-span callsite (same name, target and level),
/// asked of a subscriber to learn whether its filters let Tokio's
/// instrumentation through.
struct TokioProbe;

static TOKIO_PROBE: TokioProbe = TokioProbe;

static TOKIO_PROBE_META: Metadata<'static> = Metadata::new(
    SPAWN_SPAN,
    "tokio::task",
    tracing::Level::TRACE,
    None,
    None,
    None,
    tracing::field::FieldSet::new(&[], tracing_core::identify_callsite!(&TOKIO_PROBE)),
    tracing_core::metadata::Kind::SPAN,
);

impl tracing_core::Callsite for TokioProbe {
    fn set_interest(&self, _interest: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &TOKIO_PROBE_META
    }
}

/// Printed (once per process) when a layer joins a subscriber whose filters
/// keep Tokio's `TRACE` instrumentation away from every layer.
static FILTER_WARNED: AtomicBool = AtomicBool::new(false);

impl TasklineLayer {
    /// What the layer cannot see in the subscriber `dispatch`, and the fix;
    /// `None` when nothing is hidden from it. The layer prints this once at
    /// start-up (when it joins the subscriber).
    ///
    /// Tokio's task spans and waker events are at `TRACE`. A *global*
    /// filter (an `EnvFilter` or level added with `.with(..)` rather than
    /// `.with_filter(..)` on one layer) below `TRACE` disables them for every
    /// layer, so the layer would record no wakes, names or blocking sections.
    ///
    /// ```
    /// use taskline_core::{Recorder, TasklineLayer};
    /// use tracing_subscriber::filter::LevelFilter;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let rec = Recorder::with_defaults();
    /// let global_info = tracing::Dispatch::new(
    ///     tracing_subscriber::registry().with(LevelFilter::INFO).with(TasklineLayer::new(&rec)),
    /// );
    /// assert!(TasklineLayer::hidden_from_it(&global_info).is_some());
    /// let per_layer = tracing::Dispatch::new(
    ///     tracing_subscriber::registry()
    ///         .with(TasklineLayer::new(&rec))
    ///         .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::INFO)),
    /// );
    /// assert!(TasklineLayer::hidden_from_it(&per_layer).is_none());
    /// # rec.shutdown();
    /// ```
    pub fn hidden_from_it(dispatch: &tracing::Dispatch) -> Option<&'static str> {
        if !dispatch.register_callsite(&TOKIO_PROBE_META).is_never() {
            return None;
        }
        Some(
            "taskline: this tracing subscriber's filters disable TRACE, so Tokio's \
             instrumentation never reaches taskline's layer: no wakes, task names or blocking \
             sections are recorded. Put taskline's subscriber in front of the stack instead \
             (Taskline::builder().tracing(registry().with(...))), which records them whatever \
             the filters say, or move the filter onto your output layer \
             (fmt::layer().with_filter(..)).",
        )
    }
}

impl<S> tracing_subscriber::Layer<S> for TasklineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        if let Some(warning) = Self::hidden_from_it(subscriber)
            && !FILTER_WARNED.swap(true, Ordering::Relaxed)
        {
            eprintln!("{warning}");
        }
    }

    /// Always interested: returning `never` here would disable the callsite
    /// for every layer of the subscriber. Uninteresting callsites are skipped
    /// cheaply in the callbacks instead.
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn enabled(&self, _metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        true
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.before(Cb::Other);
        let meta = attrs.metadata();
        let name = meta.name();
        let data = if name == SPAWN_SPAN && is_tokio_target(meta.target()) {
            match self.task_span_created(attrs) {
                Some(t) => Ext::Task(t),
                None => return,
            }
        } else if name == RESOURCE_SPAN && is_tokio_target(meta.target()) {
            let mut v = ResourceVisitor::default();
            attrs.record(&mut v);
            if v.concrete_type.is_empty() {
                return;
            }
            let kind = intern_str(
                self.recorder.id(),
                self.registry(),
                v.concrete_type.as_str(),
            );
            Ext::Resource(ResourceSpan {
                kind,
                internal: v.internal,
            })
        } else if self.record_spans && !is_tokio_target(meta.target()) {
            Ext::App(AppSpan {
                name: intern_str(self.recorder.id(), self.registry(), name),
            })
        } else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        match data {
            Ext::Task(mut t) => {
                // After the lookup: a slot is freed by `on_close`, which
                // only runs for spans that carry the extension.
                t.in_table = self.spans.insert(id.into_u64(), t.task);
                ext.insert(t)
            }
            Ext::Resource(r) => ext.insert(r),
            Ext::App(a) => ext.insert(a),
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        self.before(Cb::Other);
        let target = event.metadata().target();
        if target == WAKER_TARGET {
            self.on_waker_event(event, &ctx);
        } else if target == POLL_OP_TARGET {
            self.on_poll_op_event(event, &ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if context::in_hooked_poll() {
            let task = context::hooked_task();
            if task != 0 && self.hooked_enter(id.into_u64(), task) {
                return;
            }
        }
        let last_exit = self.before(Cb::Other);
        let Some(span) = ctx.span(id) else {
            return;
        };
        if span.name() == SPAWN_SPAN {
            if let Some(t) = span.extensions().get::<TaskSpan>() {
                if context::hooked_task() == t.task {
                    // The hooks record this poll (see `on_task_enter`).
                    self.remember_hooked(id.into_u64(), t.task);
                    return;
                }
                self.on_task_enter(t, id.into_u64(), last_exit);
            }
        } else if self.record_spans
            && let Some(a) = span.extensions().get::<AppSpan>()
        {
            self.emit(EventKind::SpanEnter, 0, id.into_u64(), a.name, 0);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.hooked_exit(id.into_u64()) {
            return;
        }
        let Some(span) = ctx.span(id) else {
            self.before(Cb::Other);
            return;
        };
        if span.name() == SPAWN_SPAN {
            match span.extensions().get::<TaskSpan>() {
                Some(t) => {
                    self.before(Cb::Exit(t.task));
                    self.on_task_exit(t);
                }
                None => {
                    self.before(Cb::Other);
                }
            }
            return;
        }
        self.before(Cb::Other);
        if self.record_spans
            && let Some(a) = span.extensions().get::<AppSpan>()
        {
            self.emit(EventKind::SpanExit, 0, id.into_u64(), a.name, 0);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            self.before(Cb::Other);
            return;
        };
        if span.name() != SPAWN_SPAN {
            self.before(Cb::Other);
            return;
        }
        match span.extensions().get::<TaskSpan>() {
            Some(t) => {
                self.before(Cb::Close(t.task));
                if t.in_table {
                    self.spans.remove(id.into_u64());
                }
                self.record_close(t);
            }
            None => {
                self.before(Cb::Other);
            }
        }
    }
}

/// What a layer callback is, for resolving a [`Pending`] poll.
#[derive(Clone, Copy)]
pub(crate) enum Cb {
    /// Anything but the two below.
    Other,
    /// Exit of the span of this task.
    Exit(u64),
    /// Close of the span of this task.
    Close(u64),
}

/// A poll whose events wait for the next layer callback on this thread.
///
/// `tracing::Instrumented` (which Tokio wraps every task in) enters the task
/// span once more when it *drops* the future, after the last poll; a naive
/// layer would count one poll too many per task. That extra enter directly
/// follows the task's own exit on the same thread, with no wake of the task
/// in between, and it is always followed at once by its exit and the span's
/// close. So an enter that directly follows the task's own exit on this
/// thread while the task was not woken since its last poll started is held
/// back: if the next callback after its exit is the close of the same span,
/// it was the drop and is discarded; any other callback proves a real poll,
/// which is then recorded with its original timestamps. Every other enter
/// (the first poll, and any poll after a wake) is recorded at once.
///
/// Known imprecision: a task woken *during* the poll that completes it (e.g.
/// it wakes itself, then returns `Ready`) gets its drop counted as one more
/// short poll; a held-back poll that was real waits until the thread's next
/// layer callback (microseconds on a busy runtime) and is lost if the thread
/// exits first. The drop of a task that is cancelled (aborted, or dropped at
/// runtime shutdown) is recorded as a poll: destructors run in the task.
#[derive(Clone, Copy, Debug, Default)]
enum Pending {
    #[default]
    None,
    /// Entered, not yet exited.
    Start {
        task: u64,
        blocking: bool,
        ts: u64,
        worker: u32,
    },
    /// Entered and exited.
    Pair {
        task: u64,
        blocking: bool,
        start: u64,
        end: u64,
        worker: u32,
    },
}

/// Per-thread layer state, owned by one layer at a time (a thread normally
/// sees a single `TasklineLayer`; with several, the first one that needs the
/// state keeps it while a poll is pending, and the others record their
/// ambiguous enters at once).
struct Local {
    /// The layer this state belongs to (0 = none yet).
    layer: u64,
    /// Task whose span exit was the owner's last callback on this thread.
    last_exit: u64,
    /// See [`Pending`].
    pending: Pending,
    /// The task span entered through the hooked fast path on this thread
    /// and not exited yet (at most one; a nested one takes the slow path).
    fast: FastEnter,
    /// Which span is which task's, for the hooked fast path.
    spans: HookedSpans,
}

/// See [`Local::fast`].
#[derive(Clone, Copy)]
struct FastEnter {
    layer: u64,
    task: u64,
    /// Tracing span id; 0 = none.
    span: u64,
}

impl FastEnter {
    const NONE: FastEnter = FastEnter {
        layer: 0,
        task: 0,
        span: 0,
    };
}

/// Slots of [`HookedSpans`] (a power of two).
const HOOKED_SPAN_SLOTS: usize = 1024;

/// Per-thread direct-mapped cache `task id -> span id of its task span`
/// (per layer), filled by the slow path of `on_enter` inside hooked polls.
/// Tokio task ids are sequential, so up to 1024 live tasks never collide.
/// Allocated (24 KiB) on the first insert, so threads that never poll a
/// hooked task pay nothing.
struct HookedSpans {
    slots: Option<Box<[FastEnter]>>,
}

impl HookedSpans {
    #[inline]
    fn slot(task: u64) -> usize {
        task as usize & (HOOKED_SPAN_SLOTS - 1)
    }

    #[inline]
    fn contains(&self, layer: u64, task: u64, span: u64) -> bool {
        self.slots.as_ref().is_some_and(|s| {
            let e = &s[Self::slot(task)];
            e.task == task && e.span == span && e.layer == layer
        })
    }

    fn insert(&mut self, layer: u64, task: u64, span: u64) {
        let slots = self
            .slots
            .get_or_insert_with(|| vec![FastEnter::NONE; HOOKED_SPAN_SLOTS].into_boxed_slice());
        slots[Self::slot(task)] = FastEnter { layer, task, span };
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            layer: 0,
            last_exit: 0,
            pending: Pending::None,
            fast: FastEnter::NONE,
            spans: HookedSpans { slots: None },
        })
    };
}

/// Runs `f` on this thread's [`Local`]; `None` during thread teardown or reentry.
#[inline]
fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    borrow_thread_local(&LOCAL, f)
}

/// Runs `f` on the value of a thread-local `RefCell`; `None` during thread
/// teardown or when it is already borrowed (a reentrant callback), so a
/// `tracing` callback never panics on its own state.
#[inline]
pub(crate) fn borrow_thread_local<T: 'static, R>(
    key: &'static std::thread::LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    key.try_with(|l| l.try_borrow_mut().ok().map(|mut l| f(&mut l)))
        .ok()
        .flatten()
}

impl TasklineLayer {
    /// Called first by every layer callback: resolves the pending poll
    /// against this callback and returns the task whose exit was the
    /// previous callback on this thread (0 if none).
    #[inline]
    pub(crate) fn before(&self, cb: Cb) -> u64 {
        with_local(|l| self.before_in(l, cb)).unwrap_or(0)
    }

    /// [`before`](Self::before) on an already borrowed [`Local`].
    #[inline]
    fn before_in(&self, l: &mut Local, cb: Cb) -> u64 {
        if l.layer != self.id {
            if !matches!(l.pending, Pending::None) {
                return 0;
            }
            l.layer = self.id;
            l.last_exit = 0;
        }
        let last = std::mem::take(&mut l.last_exit);
        match (l.pending, cb) {
            (Pending::None, _) => {}
            (Pending::Start { task, .. }, Cb::Exit(t)) if t == task => {}
            (Pending::Pair { task, .. }, Cb::Close(t)) if t == task => {
                // It was `Instrumented`'s drop, not a poll.
                l.pending = Pending::None;
            }
            (p, _) => {
                l.pending = Pending::None;
                self.record_pending(p);
            }
        }
        last
    }

    /// Fast path of `on_enter` inside a hooked poll of `task`: if this
    /// thread's [`HookedSpans`] cache says `span` is `task`'s own span, the
    /// hooks record this poll and the layer has nothing to do but the
    /// [`before`](Self::before) bookkeeping. Returns false (nothing done)
    /// when the slow path must decide.
    ///
    /// Sound because a task's span cannot close (so its id cannot be
    /// reused) while the task is being polled, and Tokio task ids are never
    /// reused: a cached `(task, span)` pair recorded from a real lookup is
    /// still true whenever `task` is the polled task.
    #[inline]
    fn hooked_enter(&self, span: u64, task: u64) -> bool {
        with_local(|l| {
            if l.fast.span != 0 || !l.spans.contains(self.id, task, span) {
                return false;
            }
            self.before_in(l, Cb::Other);
            l.fast = FastEnter {
                layer: self.id,
                task,
                span,
            };
            true
        })
        .unwrap_or(false)
    }

    /// Fast path of `on_exit`: the exit of the span whose enter took
    /// [`hooked_enter`](Self::hooked_enter) (or was found to be a hooked
    /// poll by the slow path). Such an enter did not start a layer-owned
    /// poll, so the exit has nothing to record either.
    #[inline]
    fn hooked_exit(&self, span: u64) -> bool {
        with_local(|l| {
            if l.fast.span != span || l.fast.layer != self.id {
                return false;
            }
            let task = l.fast.task;
            l.fast = FastEnter::NONE;
            self.before_in(l, Cb::Exit(task));
            true
        })
        .unwrap_or(false)
    }

    /// The slow path found that `span` is `task`'s span, entered inside the
    /// hooked poll of `task`: remember it for [`hooked_enter`](Self::hooked_enter)
    /// and let the matching exit take [`hooked_exit`](Self::hooked_exit).
    fn remember_hooked(&self, span: u64, task: u64) {
        with_local(|l| {
            l.spans.insert(self.id, task, span);
            if l.fast.span == 0 {
                l.fast = FastEnter {
                    layer: self.id,
                    task,
                    span,
                };
            }
        });
    }

    /// Records a held-back poll that turned out to be real.
    fn record_pending(&self, p: Pending) {
        match p {
            Pending::None => {}
            Pending::Start {
                task,
                blocking,
                ts,
                worker,
            } => self
                .recorder
                .record(start_event(task, blocking, ts, worker)),
            Pending::Pair {
                task,
                blocking,
                start,
                end,
                worker,
            } => {
                self.recorder
                    .record(start_event(task, blocking, start, worker));
                self.recorder.record(end_event(task, blocking, end, worker));
            }
        }
    }
}

/// `PollStart`, or `BlockingStart` for a `spawn_blocking` task.
fn start_event(task: u64, blocking: bool, ts: u64, worker: u32) -> Event {
    let mut e = if blocking {
        let mut e = Event::new(EventKind::BlockingStart, ts, task);
        e.flags = BlockingKind::SpawnBlocking as u8;
        e
    } else {
        let mut e = Event::new(EventKind::PollStart, ts, task);
        e.arg = NO_VALUE;
        e.flags = flags::FROM_LAYER;
        e
    };
    e.aux = worker;
    e
}

/// `PollEnd`, or `BlockingEnd` for a `spawn_blocking` task.
fn end_event(task: u64, blocking: bool, ts: u64, worker: u32) -> Event {
    let mut e = if blocking {
        let mut e = Event::new(EventKind::BlockingEnd, ts, task);
        e.flags = BlockingKind::SpawnBlocking as u8;
        e
    } else {
        let mut e = Event::new(EventKind::PollEnd, ts, task);
        e.flags = flags::FROM_LAYER;
        e
    };
    e.aux = worker;
    e
}

/// Extension data computed before the span is looked up.
enum Ext {
    Task(TaskSpan),
    Resource(ResourceSpan),
    App(AppSpan),
}

/// `tokio` or `tokio::...` (Tokio's spans and events), or Tokio's
/// `runtime::...` event targets.
#[inline]
pub(crate) fn is_tokio_target(target: &str) -> bool {
    target.starts_with("tokio") && (target.len() == 5 || target.as_bytes()[5] == b':')
        || target.starts_with("runtime::")
}

/// Runs `f` with [`tokio::task::block_in_place`], recording the section as
/// `BlockingStart` / `BlockingEnd` with [`BlockingKind::BlockInPlace`].
///
/// Tokio emits no tracing signal for `block_in_place`, so neither the layer
/// nor the hooks can see it; call this wrapper instead of Tokio's function to
/// make the section visible. `BlockingEnd` is recorded even if `f` panics
/// (the panic then continues). The events carry task 0 (see the event table)
/// and the worker index of the thread when the section began.
///
/// # Panics
///
/// Exactly when [`tokio::task::block_in_place`] panics: when called from a
/// current-thread runtime.
///
/// ```
/// # let rec = taskline_core::Recorder::with_defaults();
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
/// let n = rt.block_on(async {
///     tokio::spawn({
///         let rec = rec.clone();
///         async move { taskline_core::block_in_place(&rec, || 6 * 7) }
///     })
///     .await
///     .unwrap()
/// });
/// assert_eq!(n, 42);
/// # rec.shutdown();
/// ```
pub fn block_in_place<F, R>(recorder: &Recorder, f: F) -> R
where
    F: FnOnce() -> R,
{
    struct End<'a> {
        recorder: &'a Recorder,
        worker: u32,
    }
    impl Drop for End<'_> {
        fn drop(&mut self) {
            let mut e = Event::new(EventKind::BlockingEnd, clock::now_ns(), 0);
            e.aux = self.worker;
            e.flags = BlockingKind::BlockInPlace as u8;
            self.recorder.record(e);
        }
    }
    let worker = worker();
    let mut e = Event::new(EventKind::BlockingStart, clock::now_ns(), 0);
    e.aux = worker;
    e.flags = BlockingKind::BlockInPlace as u8;
    recorder.record(e);
    let _end = End { recorder, worker };
    tokio::task::block_in_place(f)
}

// ---------------------------------------------------------------------------
// Field visitors. Each looks only at the fields it needs and copies strings
// into stack buffers; only a task name or file path longer than the buffer
// goes to the heap.
// ---------------------------------------------------------------------------

/// Fields of a `runtime.spawn` span.
#[derive(Default)]
struct SpawnVisitor {
    task_id: Option<u64>,
    kind: Option<TaskKind>,
    name: SmallStr<64>,
    file: SmallStr<192>,
    line: u32,
    col: u32,
    size: Option<u64>,
    original_size: Option<u64>,
}

impl SpawnVisitor {
    fn set_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "task.id" => self.task_id = Some(value),
            "size.bytes" => self.size = Some(value),
            "original_size.bytes" => self.original_size = Some(value),
            "loc.line" => self.line = u32::try_from(value).unwrap_or(u32::MAX),
            "loc.col" => self.col = u32::try_from(value).unwrap_or(u32::MAX),
            _ => {}
        }
    }
}

impl Visit for SpawnVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_u64(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.set_u64(field, v);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "loc.file" => self.file.set(value),
            "kind" => self.kind = task_kind(value),
            "task.name" => self.name.set(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            // Tokio records both with `%`, i.e. as a Display wrapped in Debug.
            "kind" => {
                let mut buf = SmallStr::<16>::default();
                if fmt::write(&mut buf, format_args!("{value:?}")).is_ok() {
                    self.kind = task_kind(buf.as_str());
                }
            }
            "task.name" => {
                self.name.clear();
                let _ = fmt::write(&mut self.name, format_args!("{value:?}"));
            }
            "loc.file" => {
                self.file.clear();
                let _ = fmt::write(&mut self.file, format_args!("{value:?}"));
            }
            _ => {}
        }
    }
}

/// Tokio's `kind` field value to a [`TaskKind`].
fn task_kind(s: &str) -> Option<TaskKind> {
    match s {
        "task" => Some(TaskKind::Task),
        "local" => Some(TaskKind::Local),
        "block_on" => Some(TaskKind::BlockOn),
        "blocking" => Some(TaskKind::Blocking),
        _ => None,
    }
}

/// Fields of a `tokio::task::waker` event.
#[derive(Default)]
pub(crate) struct WakerVisitor {
    /// `waker.wake` / `waker.wake_by_ref`; `None` for clones and drops.
    pub(crate) op: Option<WakeOp>,
    /// Whether `op` was seen at all (it is `None` for clones and drops).
    pub(crate) has_op: bool,
    /// The woken task's span id.
    pub(crate) span_id: Option<u64>,
}

impl Visit for WakerVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.span_id = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.has_op = true;
            self.op = match value {
                "waker.wake" => Some(WakeOp::Wake),
                "waker.wake_by_ref" => Some(WakeOp::WakeByRef),
                _ => None,
            };
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// Fields of a `runtime::resource::poll_op` event.
#[derive(Default)]
pub(crate) struct PollOpVisitor {
    /// Tokio's `is_ready`: false while the operation waits.
    pub(crate) is_ready: Option<bool>,
}

impl Visit for PollOpVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "is_ready" {
            self.is_ready = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// Fields of a `runtime.resource` span.
#[derive(Default)]
pub(crate) struct ResourceVisitor {
    /// `concrete_type` (`Mutex`, `Sleep`, ...).
    pub(crate) concrete_type: SmallStr<48>,
    /// `is_internal`.
    pub(crate) internal: bool,
}

impl Visit for ResourceVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "is_internal" {
            self.internal = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "concrete_type" {
            self.concrete_type.set(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "concrete_type" {
            self.concrete_type.clear();
            let _ = fmt::write(&mut self.concrete_type, format_args!("{value:?}"));
        }
    }
}

/// A string kept on the stack up to `N` bytes, on the heap beyond.
pub(crate) struct SmallStr<const N: usize> {
    buf: [u8; N],
    len: usize,
    heap: Option<String>,
}

impl<const N: usize> Default for SmallStr<N> {
    fn default() -> Self {
        SmallStr {
            buf: [0; N],
            len: 0,
            heap: None,
        }
    }
}

impl<const N: usize> SmallStr<N> {
    fn clear(&mut self) {
        self.len = 0;
        self.heap = None;
    }

    fn set(&mut self, s: &str) {
        self.clear();
        self.push(s);
    }

    fn push(&mut self, s: &str) {
        if let Some(h) = &mut self.heap {
            h.push_str(s);
            return;
        }
        let end = self.len + s.len();
        if end <= N {
            self.buf[self.len..end].copy_from_slice(s.as_bytes());
            self.len = end;
        } else {
            let mut h = String::with_capacity(end);
            h.push_str(self.as_str());
            h.push_str(s);
            self.heap = Some(h);
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.heap {
            Some(h) => h,
            // SAFETY: only whole `&str`s are ever appended (`push`), so the
            // first `len` bytes are a concatenation of valid UTF-8 strings.
            // Validating them again on every spawn cost ~1% of a task.
            None => unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) },
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.as_ref().map_or(self.len == 0, String::is_empty)
    }
}

impl<const N: usize> fmt::Write for SmallStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Task span table: tracing span id -> Tokio task id, shared by all threads,
// so that a waker event (which names the task by its span id) is resolved
// with a few loads instead of a registry lookup (slab ref count, extensions
// lock, type-map lookup, all on a cache line the polling thread also
// writes). A cache: a span that finds no free slot at creation is resolved
// through the registry as before.
// ---------------------------------------------------------------------------

/// Slots of a [`SpanTable`] (a power of two): 64 KiB per layer.
const SPAN_TABLE_SLOTS: usize = 4096;
/// Slots probed from a span's home slot.
const SPAN_TABLE_PROBE: usize = 4;
/// `span` value of a slot being written.
const SLOT_LOCKED: u64 = u64::MAX;
/// Bit of a slot's `task` set by a wake of the task (the table's
/// [`TaskSpan::woken`]). Tokio task ids come from a counter and stay far
/// below it.
const SLOT_WOKEN: u64 = 1 << 63;

/// One `span -> task` entry. `span` is 0 when free, [`SLOT_LOCKED`] while
/// being written; readers validate `task` like a seqlock (read `span`,
/// `task`, `span` again).
#[derive(Default)]
#[repr(align(16))]
struct SpanSlot {
    span: AtomicU64,
    task: AtomicU64,
}

/// See the section comment.
struct SpanTable {
    slots: Box<[SpanSlot]>,
}

impl fmt::Debug for SpanTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanTable")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl SpanTable {
    fn new() -> Self {
        SpanTable {
            slots: (0..SPAN_TABLE_SLOTS).map(|_| SpanSlot::default()).collect(),
        }
    }

    /// The slots `span` may live in.
    #[inline]
    fn probe(&self, span: u64) -> impl Iterator<Item = &SpanSlot> {
        // Span ids pack a slab index and a generation: mix before masking.
        let home = (span.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize;
        (0..SPAN_TABLE_PROBE).map(move |i| &self.slots[(home + i) & (SPAN_TABLE_SLOTS - 1)])
    }

    /// Records `span -> task` if a slot is free; true if it did.
    fn insert(&self, span: u64, task: u64) -> bool {
        if span == 0 || span == SLOT_LOCKED || task & SLOT_WOKEN != 0 {
            return false;
        }
        for slot in self.probe(span) {
            if slot
                .span
                .compare_exchange(0, SLOT_LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Seqlock write: a reader that sees the new `task` also sees
                // that `span` no longer holds the previous occupant.
                std::sync::atomic::fence(Ordering::Release);
                slot.task.store(task, Ordering::Relaxed);
                slot.span.store(span, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Frees the slot of `span` (the span closed).
    fn remove(&self, span: u64) {
        for slot in self.probe(span) {
            if slot
                .span
                .compare_exchange(span, 0, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// The slot of `span` and its `task` word (with [`SLOT_WOKEN`]), if any.
    #[inline]
    fn find(&self, span: u64) -> Option<(&SpanSlot, u64)> {
        for slot in self.probe(span) {
            if slot.span.load(Ordering::Acquire) != span {
                continue;
            }
            let task = slot.task.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if slot.span.load(Ordering::Relaxed) == span {
                return Some((slot, task));
            }
            return None;
        }
        None
    }

    /// A wake of `span`: marks it woken and returns its task, or `None` if
    /// the span has no slot.
    #[inline]
    fn wake(&self, span: u64) -> Option<u64> {
        let (slot, word) = self.find(span)?;
        if word & SLOT_WOKEN == 0 {
            // Task ids are unique, so if the slot changed hands meanwhile
            // the exchange fails and nobody else is marked.
            let _ = slot.task.compare_exchange(
                word,
                word | SLOT_WOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Some(word & !SLOT_WOKEN)
    }

    /// Clears and returns the woken mark of `span` (which belongs to `task`).
    #[inline]
    fn take_woken(&self, span: u64, task: u64) -> bool {
        match self.find(span) {
            Some((slot, word)) if word == task | SLOT_WOKEN => slot
                .task
                .compare_exchange(word, task, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_table_maps_marks_and_frees() {
        let t = SpanTable::new();
        assert_eq!(t.wake(5), None);
        assert!(t.insert(5, 70));
        assert!(!t.take_woken(5, 70));
        assert_eq!(t.wake(5), Some(70));
        assert_eq!(t.wake(5), Some(70), "a second wake keeps the mark");
        assert!(t.take_woken(5, 70));
        assert!(!t.take_woken(5, 70));
        assert!(!t.take_woken(5, 71), "another task's mark is not taken");
        t.remove(5);
        assert_eq!(t.wake(5), None);
        // Ids that are never stored.
        assert!(!t.insert(0, 1));
        assert!(!t.insert(SLOT_LOCKED, 1));
        assert!(!t.insert(9, SLOT_WOKEN | 1));
    }

    #[test]
    fn span_table_full_probe_falls_back() {
        let t = SpanTable::new();
        // Fill the table; every span either gets a slot and resolves to its
        // task, or gets none and resolves to nothing (the registry path).
        let mut stored = 0;
        for span in 1..=(SPAN_TABLE_SLOTS as u64 * 2) {
            let ok = t.insert(span, span + 1000);
            stored += usize::from(ok);
            assert_eq!(t.wake(span), ok.then_some(span + 1000));
        }
        assert!(stored <= SPAN_TABLE_SLOTS);
        assert!(stored > SPAN_TABLE_SLOTS / 2, "stored {stored}");
        for span in 1..=(SPAN_TABLE_SLOTS as u64 * 2) {
            t.remove(span);
            assert_eq!(t.wake(span), None);
        }
    }

    #[test]
    fn hooked_spans_cache() {
        let mut c = HookedSpans { slots: None };
        assert!(!c.contains(1, 7, 3));
        c.insert(1, 7, 3);
        assert!(c.contains(1, 7, 3));
        assert!(!c.contains(2, 7, 3), "other layer");
        assert!(!c.contains(1, 7, 4), "other span");
        c.insert(1, 7 + HOOKED_SPAN_SLOTS as u64, 9);
        assert!(!c.contains(1, 7, 3), "evicted by a colliding task");
    }
}
