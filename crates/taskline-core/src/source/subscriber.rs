//! [`TasklineSubscriber`]: Tokio's `tracing` instrumentation recorded without
//! the `tracing_subscriber` registry, everything else forwarded to yours.
//!
//! # Why a subscriber and not a layer
//!
//! Wakes (who woke whom), resource waits and task names exist only in Tokio's
//! `tracing` instrumentation: a span per task (`runtime.spawn`), entered on
//! every poll, waker events naming the woken task by that span's id, and
//! spans and events per resource operation. A [`Layer`](tracing_subscriber::Layer)
//! sees them only through `tracing_subscriber::registry()`, which allocates,
//! reference-counts and tracks every one of those spans: on spawn-heavy and
//! channel-heavy code that registry costs more than everything taskline
//! records (see [`TasklineLayer`]'s cost notes).
//!
//! `TasklineSubscriber` sits in front of your subscriber stack instead. It
//! owns Tokio's callsites (`runtime.spawn` spans of targets `tokio::task` and
//! `tokio::task::blocking`, waker events of target `tokio::task::waker`,
//! `runtime.resource*` spans and `runtime::resource*` events of Tokio's
//! targets) and forwards every other callsite, span and event, unchanged and
//! in the same order, to the subscriber it wraps. For the spans it owns it
//! assigns the span ids itself and keeps nothing per span:
//!
//! - a task span's id *is* its Tokio task id, packed into an id space the
//!   registry never uses (below), so a waker event's span id gives the woken
//!   task with a subtraction and two masks, no table, no lock;
//! - a resource span's id packs its interned `concrete_type` and whether it
//!   is internal, so a resource wait needs no lookup either;
//! - callsites nobody needs are declined with [`Interest::never`], which
//!   makes Tokio skip building them: the `runtime.resource.async_op*` spans
//!   and resource state updates always, resource spans and poll events
//!   unless [`resource waits`](TasklineSubscriber::with_resource_waits) are
//!   on; the `waker.clone` and `waker.drop` callsites and the ready half of
//!   the resource poll events share their shape with the ones taskline
//!   needs, so they are told apart by their first event, refused in
//!   [`enabled`](tracing::Subscriber::enabled) until then, and declined for
//!   good once `tracing`'s interest cache is rebuilt (at the next task
//!   poll; a handful of rebuilds per process).
//!
//! Your layers see exactly what they saw before for your own spans and
//! events (their contextual parents come from your registry's own span
//! stack, which never contains a Tokio span), and nothing of Tokio's
//! internal instrumentation, which a `fmt` layer or an `EnvFilter` at any
//! level above `TRACE` never showed. Since taskline decides Tokio's callsites
//! itself, it records wakes whatever your filters say about your output.
//!
//! # The id space
//!
//! `tracing_subscriber`'s `Registry` gives each span the id `key + 1` of a
//! `sharded_slab` key (default configuration: 32 pages of `32 << n` slots,
//! so the key's low 38 bits are an address below `32 * (2^32 - 1)`, then 13
//! bits of thread id, then 13 bits of generation, which wraps after 8192
//! reuses of a slot: every high bit is used, so a tag bit would collide).
//! An address never reaches `2^37`, so no registry id `i` has bit 37 set in
//! `i - 1`. taskline's ids are exactly those: `raw + 1` with bit 37 of `raw`
//! set, the other 63 bits carrying a 2-bit class and a 61-bit payload.
//! [`TasklineSubscriber::new`] therefore requires the wrapped subscriber to
//! be backed by a `Registry` (it checks with a downcast, as
//! `tracing-opentelemetry` does) and refuses anything else with
//! [`SubscriberError::NoRegistry`]; the tests check the layout against the
//! registry under heavy slot reuse.
//!
//! # What it records
//!
//! The same events as the layer (see [`crate::source::layer`]): `Spawn`, `TaskName`,
//! `Terminate`, polls and blocking sections where the runtime hooks do not
//! record them (same rule, same code: a poll is recorded once), `Wake` with
//! the waking task, and `ResourceWait` when resource waits are on. With the
//! runtime hooks on the same recorder, the hooks report the spawns and
//! terminations of plain tasks and the subscriber leaves them out.
//! Application spans are recorded as `SpanEnter` / `SpanExit` when
//! [`RecorderConfig::record_spans`](crate::record::config::RecorderConfig::record_spans)
//! is set (their names are read from the registry).
//!
//! # Cost
//!
//! Per task: one field visit at spawn (the site interned through a
//! per-thread cache) and, per poll, two thread-local reads on enter and
//! exit when the hooks record the poll. Per wake: one field visit. Per
//! forwarded callback: one bit test and one thread-local access. Measured
//! figures are in the README's Overhead section.
//!
//! # Limits
//!
//! - Tools that need Tokio's spans themselves (`console-subscriber`) do not
//!   get them through this subscriber; use the plain layer with them.
//! - A waker event reaches the dispatcher that is current on the *waking*
//!   thread; install the subscriber globally ([`TasklineSubscriber::try_init`])
//!   so every thread has it.
//! - Spans are not reference-counted: a task span's `Terminate` is recorded
//!   at its first close (Tokio never clones task spans).
//! - Tokio's instrumentation is at `TRACE`, so the subscriber's level hint is
//!   `TRACE`: `trace!` / `debug!` callsites elsewhere no longer stop at the
//!   static level check but at their callsite's cached interest, which your
//!   filters decide once per callsite (`never` for what they disable).
//! - It keeps the plain layer's internals for the rules it shares (poll
//!   inference, field decoding); that includes the layer's 64 KiB span
//!   table, which the subscriber never fills.

use std::any::TypeId;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event as TracingEvent, Metadata, Subscriber};
use tracing_subscriber::registry::{LookupSpan, Registry, SpanData};

use crate::event::{EventKind, TaskKind};
use crate::record::recorder::Recorder;
use crate::source::context;
use crate::source::intern_cache::intern_str;
use crate::source::layer::{
    BLOCKING_TARGET, Cb, POLL_OP_TARGET, PollOpVisitor, RESOURCE_SPAN, ResourceVisitor, SPAWN_SPAN,
    TaskSpan, TasklineLayer, WAKER_TARGET, WakerVisitor, borrow_thread_local, is_tokio_target,
};

/// Bit 37 of `id - 1`: set in every id taskline assigns, in none the
/// registry assigns (see the module docs).
const REGION: u64 = 1 << 37;
/// Payload bits below [`REGION`].
const LOW_BITS: u32 = 37;
/// Payload bits between [`REGION`] and the class.
const HIGH_BITS: u32 = 24;
/// Where the class starts.
const CLASS_SHIFT: u32 = 62;
/// Largest payload an id carries.
const MAX_PAYLOAD: u64 = (1 << (LOW_BITS + HIGH_BITS)) - 1;

/// What a taskline-assigned span id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A `runtime.spawn` span of a task, `block_on` future or local task;
    /// payload: the Tokio task id.
    Task = 0,
    /// A `runtime.spawn` span of a `spawn_blocking` task; payload: its id.
    Blocking = 1,
    /// A `runtime.resource` span; payload: see [`ResourceId`].
    Resource = 2,
    /// A Tokio span recorded as nothing (no task id, or enabled only
    /// because another dispatcher wanted its callsite).
    Ignored = 3,
}

/// Packs `class` and `payload` into a span id, or `None` if the payload does
/// not fit (a task id above 2^61).
fn encode(class: Class, payload: u64) -> Option<span::Id> {
    if payload > MAX_PAYLOAD {
        return None;
    }
    let low = payload & (REGION - 1);
    let high = payload >> LOW_BITS;
    let raw = low | REGION | (high << (LOW_BITS + 1)) | ((class as u64) << CLASS_SHIFT);
    // `raw` is at most 2^64 - 2: class 3 is only used with payload 0.
    Some(span::Id::from_u64(raw.wrapping_add(1)))
}

/// The class and payload of a taskline-assigned id; `None` for any other id.
#[inline]
fn decode(id: &span::Id) -> Option<(Class, u64)> {
    let raw = id.into_u64().wrapping_sub(1);
    if raw & REGION == 0 {
        return None;
    }
    let low = raw & (REGION - 1);
    let high = (raw >> (LOW_BITS + 1)) & ((1 << HIGH_BITS) - 1);
    let class = match raw >> CLASS_SHIFT {
        0 => Class::Task,
        1 => Class::Blocking,
        2 => Class::Resource,
        _ => Class::Ignored,
    };
    Some((class, low | (high << LOW_BITS)))
}

/// The id of every span recorded as nothing.
fn ignored_id() -> span::Id {
    encode(Class::Ignored, 0).unwrap_or_else(|| span::Id::from_u64(REGION + 1))
}

/// The payload of a resource span id: interned `concrete_type` (bits 0..32),
/// `is_internal` (bit 32), a sequence number naming the instance (bits 33..61).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ResourceId {
    kind: u32,
    internal: bool,
}

impl ResourceId {
    fn pack(self, seq: u64) -> u64 {
        u64::from(self.kind) | (u64::from(self.internal) << 32) | ((seq & ((1 << 28) - 1)) << 33)
    }

    fn unpack(payload: u64) -> Self {
        ResourceId {
            kind: payload as u32,
            internal: payload & (1 << 32) != 0,
        }
    }
}

/// What a callsite is, by its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Callsite {
    /// `runtime.spawn` of `tokio::task`.
    Task,
    /// `runtime.spawn` of `tokio::task::blocking`.
    Blocking,
    /// `runtime.resource` of a Tokio target.
    Resource,
    /// `tokio::task::waker` events.
    Waker,
    /// `runtime::resource::poll_op` events.
    PollOp,
    /// Tokio instrumentation taskline does not use (async-op spans, state
    /// updates): declined.
    Unused,
    /// Everything else: the wrapped subscriber's.
    Forwarded,
}

#[inline]
fn classify(meta: &Metadata<'_>) -> Callsite {
    let target = meta.target();
    if meta.is_span() {
        let name = meta.name();
        if name == SPAWN_SPAN {
            if target == BLOCKING_TARGET {
                return Callsite::Blocking;
            }
            if target == "tokio::task" {
                return Callsite::Task;
            }
            return Callsite::Forwarded;
        }
        if name.starts_with(RESOURCE_SPAN) && is_tokio_target(target) {
            return if name.len() == RESOURCE_SPAN.len() {
                Callsite::Resource
            } else if name.as_bytes()[RESOURCE_SPAN.len()] == b'.' {
                Callsite::Unused
            } else {
                Callsite::Forwarded
            };
        }
        Callsite::Forwarded
    } else if target == WAKER_TARGET {
        Callsite::Waker
    } else if target == POLL_OP_TARGET {
        Callsite::PollOp
    } else if target.starts_with("runtime::resource") {
        Callsite::Unused
    } else {
        Callsite::Forwarded
    }
}

/// Most callsites a [`CallsiteSet`] holds.
const CALLSITE_SET_SLOTS: usize = 16;

/// A small append-only set of callsites, by metadata address: the waker and
/// resource-poll callsites learned to carry what taskline needs, or only
/// what it does not (`waker.clone`, `waker.drop`, ready polls). Full, it
/// takes no more (those callsites stay undecided: still correct, a little
/// dearer).
struct CallsiteSet {
    slots: [AtomicPtr<Metadata<'static>>; CALLSITE_SET_SLOTS],
    len: AtomicUsize,
}

impl CallsiteSet {
    fn new() -> Self {
        CallsiteSet {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            len: AtomicUsize::new(0),
        }
    }

    fn contains(&self, meta: &Metadata<'_>) -> bool {
        let p = std::ptr::from_ref(meta).cast::<Metadata<'static>>();
        let n = self.len.load(Ordering::Acquire).min(CALLSITE_SET_SLOTS);
        self.slots[..n]
            .iter()
            .any(|s| std::ptr::eq(s.load(Ordering::Relaxed), p))
    }

    /// Adds `meta`'s callsite. Returns false if it was there already or the
    /// set is full.
    fn insert(&self, meta: &'static Metadata<'static>) -> bool {
        if self.contains(meta) {
            return false;
        }
        let i = self.len.fetch_add(1, Ordering::AcqRel);
        if i >= CALLSITE_SET_SLOTS {
            self.len.store(CALLSITE_SET_SLOTS, Ordering::Release);
            return false;
        }
        self.slots[i].store(std::ptr::from_ref(meta).cast_mut(), Ordering::Release);
        true
    }
}

/// Per-task "woken since its last poll started" marks, for polls the
/// subscriber records itself (see the layer's `Pending`): direct-mapped by
/// task id; a collision loses a mark, which only delays recording a poll
/// to the next callback on its thread.
const WOKEN_SLOTS: usize = 4096;

struct WokenMarks {
    slots: Box<[AtomicU64]>,
}

impl WokenMarks {
    fn new() -> Self {
        WokenMarks {
            slots: (0..WOKEN_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    fn mark(&self, task: u64) {
        let slot = &self.slots[task as usize & (WOKEN_SLOTS - 1)];
        // Read first: a task woken again and again (a join handle's owner,
        // with the hooks recording its polls, which take no mark) then
        // leaves the line shared instead of moving it between cores.
        if slot.load(Ordering::Relaxed) != task {
            slot.store(task, Ordering::Relaxed);
        }
    }

    #[inline]
    fn take(&self, task: u64) -> bool {
        self.slots[task as usize & (WOKEN_SLOTS - 1)]
            .compare_exchange(task, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// A poll the subscriber records itself, open on this thread.
#[derive(Clone, Copy)]
struct OpenPoll {
    span: u64,
    task: u64,
    kind: TaskKind,
    saved: u64,
}

/// Open polls and entered resource spans per thread, at most this deep
/// (deeper ones are not recorded).
const MAX_DEPTH: usize = 16;

struct Local {
    polls: [Option<OpenPoll>; MAX_DEPTH],
    npolls: usize,
    resources: [(u64, ResourceId); MAX_DEPTH],
    nresources: usize,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            polls: [None; MAX_DEPTH],
            npolls: 0,
            resources: [(0, ResourceId { kind: 0, internal: false }); MAX_DEPTH],
            nresources: 0,
        })
    };
}

/// Runs `f` on this thread's [`Local`]; `None` during teardown or reentry.
#[inline]
fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    borrow_thread_local(&LOCAL, f)
}

/// Why a [`TasklineSubscriber`] could not be made or installed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubscriberError {
    /// The wrapped subscriber is not backed by a `tracing_subscriber`
    /// `Registry`, so taskline cannot prove its span ids disjoint from
    /// the registry's (see the module docs).
    NoRegistry,
    /// A global default subscriber is already installed.
    AlreadySet(tracing::subscriber::SetGlobalDefaultError),
}

impl fmt::Display for SubscriberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriberError::NoRegistry => f.write_str(
                "taskline's subscriber wraps a tracing_subscriber::registry() stack \
                 (e.g. registry().with(fmt::layer())); this subscriber has no Registry \
                 underneath, so span ids cannot be kept apart. Use taskline's TasklineLayer \
                 on it instead",
            ),
            SubscriberError::AlreadySet(_) => f.write_str(
                "a global default tracing subscriber is already installed; install \
                 taskline's subscriber instead of it, wrapping the same layers \
                 (Taskline::builder().tracing(registry().with(...)))",
            ),
        }
    }
}

impl std::error::Error for SubscriberError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubscriberError::NoRegistry => None,
            SubscriberError::AlreadySet(e) => Some(e),
        }
    }
}

/// A [`tracing::Subscriber`] that records Tokio's task, waker and resource
/// instrumentation into a [`Recorder`] and forwards everything else to the
/// subscriber it wraps, without the `tracing_subscriber` registry's per-span
/// cost (the design notes are in the crate's `source/subscriber.rs`).
///
/// ```
/// use taskline_core::{Recorder, RuntimeBuilderExt, TasklineSubscriber};
/// use tracing_subscriber::prelude::*;
///
/// let rec = Recorder::with_defaults();
/// let inner = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO));
/// let subscriber = TasklineSubscriber::new(&rec, inner).expect("registry-backed");
/// let _guard = tracing::subscriber::set_default(subscriber); // or .try_init() for the process
/// let rt = tokio::runtime::Builder::new_current_thread().taskline(&rec).build().unwrap();
/// rt.block_on(async { tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap() });
/// drop(rt);
/// let snapshot = rec.snapshot();
/// # #[cfg(tokio_unstable)]
/// assert!(snapshot.wakes >= 1);
/// rec.shutdown();
/// ```
pub struct TasklineSubscriber<S> {
    inner: S,
    engine: TasklineLayer,
    resource_waits: bool,
    woken: WokenMarks,
    /// Waker / resource-poll callsites that carry what taskline records.
    confirmed: CallsiteSet,
    /// Those that carry only what it does not.
    declined: CallsiteSet,
    /// A callsite was learned and `tracing`'s interest cache should be
    /// rebuilt at the next safe point (see [`TasklineSubscriber::learn`]).
    rebuild_pending: AtomicBool,
    resources: AtomicU64,
}

impl<S> fmt::Debug for TasklineSubscriber<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TasklineSubscriber")
            .field("resource_waits", &self.resource_waits)
            .finish_non_exhaustive()
    }
}

impl<S> TasklineSubscriber<S>
where
    S: Subscriber + Send + Sync + 'static,
{
    /// Wraps `inner` (a `tracing_subscriber::registry()` stack with your
    /// layers), recording Tokio's instrumentation into `recorder`. Resource
    /// waits are off; see [`with_resource_waits`](Self::with_resource_waits).
    ///
    /// Fails with [`SubscriberError::NoRegistry`] if `inner` has no
    /// `Registry` underneath.
    pub fn new(recorder: &Recorder, inner: S) -> Result<Self, SubscriberError> {
        if (&inner as &dyn Subscriber)
            .downcast_ref::<Registry>()
            .is_none()
        {
            return Err(SubscriberError::NoRegistry);
        }
        Ok(TasklineSubscriber {
            inner,
            engine: TasklineLayer::new(recorder),
            resource_waits: false,
            woken: WokenMarks::new(),
            confirmed: CallsiteSet::new(),
            declined: CallsiteSet::new(),
            rebuild_pending: AtomicBool::new(false),
            resources: AtomicU64::new(0),
        })
    }

    /// Also record which resource a task waits on (`Mutex`, `RwLock`,
    /// `Semaphore`, `Sleep`, `oneshot`, ...) as `ResourceWait` events. This
    /// makes Tokio build a span per resource and emit an event per resource
    /// poll; the README's Overhead section gives the measured cost.
    pub fn with_resource_waits(mut self, on: bool) -> Self {
        self.resource_waits = on;
        self
    }

    /// The recorder this subscriber feeds.
    pub fn recorder(&self) -> &Recorder {
        self.engine.recorder()
    }

    /// Installs this subscriber as the process's global default. Fails with
    /// [`SubscriberError::AlreadySet`] (and installs nothing) if there is
    /// one already.
    pub fn try_init(self) -> Result<(), SubscriberError> {
        tracing::subscriber::set_global_default(self).map_err(SubscriberError::AlreadySet)?;
        after_global_install();
        Ok(())
    }

    /// [`try_init`](Self::try_init), printing the error (once, to stderr)
    /// instead of returning it: instrumentation never stops its host.
    pub fn init(self) {
        if let Err(e) = self.try_init() {
            eprintln!("taskline: {e}");
        }
    }
}

/// Call after installing a taskline subscriber (or a stack containing the
/// layer) as the process's global default by hand
/// (`tracing::dispatcher::set_global_default`); [`TasklineSubscriber::try_init`]
/// does it itself.
///
/// `tracing` caches each callsite's interest when the callsite first fires,
/// and while a single dispatcher exists it asks the firing thread's default.
/// A callsite first hit between making the subscriber and installing it (a
/// runtime on another thread: an OTLP exporter's HTTP client, say) is
/// cached as "never" on that thread's no-op default, and Tokio's waker
/// events would never reach taskline. This rebuilds the cache from the
/// installed default.
pub fn after_global_install() {
    tracing::callsite::rebuild_interest_cache();
}

impl<S> TasklineSubscriber<S> {
    /// Learns from an event what its callsite carries: `needed` (a wake, a
    /// pending resource poll) or not (a waker clone or drop, a ready poll).
    /// The four waker callsites (two resource-poll ones) share one shape, so
    /// only their first event tells them apart. They start as
    /// `Interest::sometimes` (asked in [`enabled`](Subscriber::enabled) at
    /// every hit); once learned, `tracing`'s interest cache is rebuilt so
    /// they become `always` or `never` (never built again). The rebuild
    /// cannot run here: inside an event callback `tracing` hides the current
    /// dispatcher, and a rebuild then would disable every callsite. It runs
    /// at the next task-span enter instead ([`rebuild_if_pending`](Self::rebuild_if_pending)).
    #[cold]
    fn learn(&self, meta: &'static Metadata<'static>, needed: bool) {
        let set = if needed {
            &self.confirmed
        } else {
            &self.declined
        };
        if set.insert(meta) {
            self.rebuild_pending.store(true, Ordering::Release);
        }
    }

    /// Rebuilds `tracing`'s interest cache if a callsite was learned, from a
    /// point where that is safe: a task span's enter, which `tracing` calls
    /// directly on the span's dispatcher, outside any other callback. With a
    /// single dispatcher registered, `tracing` rebuilds from this thread's
    /// default dispatcher, so it waits until that is a taskline subscriber
    /// (a span may be entered on a thread where another one is the
    /// default).
    #[inline]
    fn rebuild_if_pending(&self)
    where
        S: 'static,
    {
        if !self.rebuild_pending.load(Ordering::Relaxed) {
            return;
        }
        self.rebuild_now();
    }

    #[cold]
    fn rebuild_now(&self)
    where
        S: 'static,
    {
        let ours = tracing::dispatcher::get_default(|d| d.is::<TasklineSubscriber<S>>());
        if ours && self.rebuild_pending.swap(false, Ordering::AcqRel) {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    /// The interest in a learned-or-not waker / resource-poll callsite.
    fn learned_interest(&self, meta: &Metadata<'_>) -> Interest {
        if self.confirmed.contains(meta) {
            Interest::always()
        } else if self.declined.contains(meta) {
            Interest::never()
        } else {
            Interest::sometimes()
        }
    }

    fn interest(&self, kind: Callsite, meta: &'static Metadata<'static>) -> Interest
    where
        S: Subscriber,
    {
        match kind {
            Callsite::Task | Callsite::Blocking => Interest::always(),
            // Four (two) callsites of one shape, told apart by their first
            // event: see `learn`.
            Callsite::Waker => self.learned_interest(meta),
            Callsite::PollOp if self.resource_waits => self.learned_interest(meta),
            Callsite::Resource if self.resource_waits => Interest::always(),
            Callsite::Resource | Callsite::PollOp | Callsite::Unused => Interest::never(),
            Callsite::Forwarded => self.inner.register_callsite(meta),
        }
    }

    fn task_span(&self, attrs: &span::Attributes<'_>, class: Class) -> span::Id {
        self.engine.before(Cb::Other);
        let Some(t) = self.engine.task_span_created(attrs) else {
            return ignored_id();
        };
        let class = if t.kind == TaskKind::Blocking {
            Class::Blocking
        } else {
            class
        };
        encode(class, t.task).unwrap_or_else(ignored_id)
    }

    fn resource_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        let mut v = ResourceVisitor::default();
        attrs.record(&mut v);
        if v.concrete_type.is_empty() {
            return ignored_id();
        }
        let kind = intern_str(
            self.engine.recorder().id(),
            self.engine.registry(),
            v.concrete_type.as_str(),
        );
        let seq = self.resources.fetch_add(1, Ordering::Relaxed);
        let r = ResourceId {
            kind,
            internal: v.internal,
        };
        encode(Class::Resource, r.pack(seq)).unwrap_or_else(ignored_id)
    }

    fn enter_task(&self, span: u64, task: u64, kind: TaskKind)
    where
        S: 'static,
    {
        self.rebuild_if_pending();
        if context::hooked_task() == task {
            // The runtime hooks record this poll.
            self.engine.before(Cb::Other);
            return;
        }
        let last_exit = self.engine.before(Cb::Other);
        let t = TaskSpan::new(task, kind);
        if self.woken.take(task) {
            t.woken.store(true, Ordering::Relaxed);
        }
        self.engine.on_task_enter(&t, span, last_exit);
        let saved = t.saved.load(Ordering::Relaxed);
        if saved == 0 {
            return;
        }
        let pushed = with_local(|l| {
            if l.npolls == MAX_DEPTH {
                return false;
            }
            l.polls[l.npolls] = Some(OpenPoll {
                span,
                task,
                kind,
                saved,
            });
            l.npolls += 1;
            true
        });
        if pushed != Some(true) {
            // No room to remember it: end it at once rather than leave the
            // thread's current task pointing at it.
            self.engine.on_task_exit(&t);
        }
    }

    fn exit_task(&self, span: u64, task: u64) {
        if context::hooked_task() == task {
            // The hooks' poll (an open poll of this task cannot be ours).
            self.engine.before(Cb::Exit(task));
            return;
        }
        let open = with_local(|l| match l.npolls.checked_sub(1) {
            Some(top) if l.polls[top].is_some_and(|p| p.span == span) => {
                l.npolls = top;
                l.polls[top].take()
            }
            _ => None,
        })
        .flatten();
        self.engine.before(Cb::Exit(task));
        if let Some(p) = open {
            let t = TaskSpan::new(p.task, p.kind);
            t.saved.store(p.saved, Ordering::Relaxed);
            self.engine.on_task_exit(&t);
        }
    }

    fn close_task(&self, task: u64, kind: TaskKind) {
        self.engine.before(Cb::Close(task));
        self.engine.record_close(&TaskSpan::new(task, kind));
    }

    fn on_waker_event(&self, event: &TracingEvent<'_>) {
        let mut v = WakerVisitor::default();
        event.record(&mut v);
        let Some(op) = v.op else {
            if v.has_op {
                // `waker.clone` / `waker.drop`: this callsite never carries a wake.
                self.learn(event.metadata(), false);
            }
            return;
        };
        self.learn_once(event.metadata());
        let Some((Class::Task | Class::Blocking, task)) = v
            .span_id
            .and_then(std::num::NonZeroU64::new)
            .and_then(|id| decode(&span::Id::from_non_zero_u64(id)))
        else {
            return; // a span of another subscriber
        };
        self.woken.mark(task);
        self.engine.record_wake(task, op);
    }

    fn on_poll_op_event(&self, event: &TracingEvent<'_>) {
        let mut v = PollOpVisitor::default();
        event.record(&mut v);
        match v.is_ready {
            Some(false) => self.learn_once(event.metadata()),
            Some(true) => {
                // Tokio emits ready and pending polls from separate callsites.
                self.learn(event.metadata(), false);
                return;
            }
            None => return,
        }
        let task = context::current_task();
        if task == 0 {
            return;
        }
        let top = with_local(|l| {
            l.nresources
                .checked_sub(1)
                .and_then(|i| l.resources.get(i).copied())
        })
        .flatten();
        if let Some((span, r)) = top
            && !r.internal
        {
            self.engine.record_resource_wait(task, span, r.kind);
        }
    }

    /// [`learn`](Self::learn) that `meta` carries what taskline needs, unless
    /// it is known already (the common case: one relaxed scan).
    #[inline]
    fn learn_once(&self, meta: &'static Metadata<'static>) {
        if !self.confirmed.contains(meta) {
            self.learn(meta, true);
        }
    }

    fn push_resource(&self, span: u64, r: ResourceId) {
        with_local(|l| {
            if l.nresources < MAX_DEPTH {
                l.resources[l.nresources] = (span, r);
            }
            l.nresources += 1;
        });
    }

    fn pop_resource(&self) {
        with_local(|l| l.nresources = l.nresources.saturating_sub(1));
    }
}

/// Interned name of the application span `id`, when spans are recorded.
fn app_span_name<S: Subscriber>(sub: &TasklineSubscriber<S>, id: &span::Id) -> Option<u32> {
    let registry = (&sub.inner as &dyn Subscriber).downcast_ref::<Registry>()?;
    let data = registry.span_data(id)?;
    let name = data.metadata().name();
    Some(intern_str(
        sub.engine.recorder().id(),
        sub.engine.registry(),
        name,
    ))
}

impl<S> Subscriber for TasklineSubscriber<S>
where
    S: Subscriber + Send + Sync + 'static,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.interest(classify(metadata), metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        match classify(metadata) {
            Callsite::Forwarded => self.inner.enabled(metadata),
            Callsite::Task | Callsite::Blocking => true,
            Callsite::Waker => !self.declined.contains(metadata),
            Callsite::Resource => self.resource_waits,
            Callsite::PollOp => self.resource_waits && !self.declined.contains(metadata),
            Callsite::Unused => false,
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Tokio's instrumentation is at TRACE.
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        match classify(attrs.metadata()) {
            Callsite::Task => self.task_span(attrs, Class::Task),
            Callsite::Blocking => self.task_span(attrs, Class::Blocking),
            Callsite::Resource if self.resource_waits => self.resource_span(attrs),
            Callsite::Forwarded => {
                self.engine.before(Cb::Other);
                let id = self.inner.new_span(attrs);
                debug_assert!(decode(&id).is_none(), "registry id in taskline's space");
                id
            }
            _ => ignored_id(),
        }
    }

    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        if decode(span).is_none() {
            self.inner.record(span, values);
        }
    }

    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        if decode(span).is_none() && decode(follows).is_none() {
            self.inner.record_follows_from(span, follows);
        }
    }

    fn event_enabled(&self, event: &TracingEvent<'_>) -> bool {
        match classify(event.metadata()) {
            Callsite::Forwarded => self.inner.event_enabled(event),
            _ => true,
        }
    }

    fn event(&self, event: &TracingEvent<'_>) {
        match classify(event.metadata()) {
            Callsite::Waker => {
                self.engine.before(Cb::Other);
                self.on_waker_event(event);
            }
            Callsite::PollOp => {
                self.engine.before(Cb::Other);
                if self.resource_waits {
                    self.on_poll_op_event(event);
                }
            }
            Callsite::Forwarded => {
                self.engine.before(Cb::Other);
                self.inner.event(event);
            }
            _ => {}
        }
    }

    fn enter(&self, span: &span::Id) {
        match decode(span) {
            Some((Class::Task, task)) => self.enter_task(span.into_u64(), task, TaskKind::Task),
            Some((Class::Blocking, task)) => {
                self.enter_task(span.into_u64(), task, TaskKind::Blocking);
            }
            Some((Class::Resource, payload)) => {
                self.push_resource(span.into_u64(), ResourceId::unpack(payload));
            }
            Some((Class::Ignored, _)) => {}
            None => {
                self.engine.before(Cb::Other);
                if self.engine.records_spans()
                    && let Some(name) = app_span_name(self, span)
                {
                    self.engine
                        .emit(EventKind::SpanEnter, 0, span.into_u64(), name, 0);
                }
                self.inner.enter(span);
            }
        }
    }

    fn exit(&self, span: &span::Id) {
        match decode(span) {
            Some((Class::Task | Class::Blocking, task)) => self.exit_task(span.into_u64(), task),
            Some((Class::Resource, _)) => self.pop_resource(),
            Some((Class::Ignored, _)) => {}
            None => {
                self.inner.exit(span);
                self.engine.before(Cb::Other);
                if self.engine.records_spans()
                    && let Some(name) = app_span_name(self, span)
                {
                    self.engine
                        .emit(EventKind::SpanExit, 0, span.into_u64(), name, 0);
                }
            }
        }
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        match decode(id) {
            Some(_) => id.clone(),
            None => self.inner.clone_span(id),
        }
    }

    #[allow(deprecated)]
    fn drop_span(&self, id: span::Id) {
        if decode(&id).is_none() {
            self.inner.drop_span(id);
        }
    }

    fn try_close(&self, id: span::Id) -> bool {
        match decode(&id) {
            Some((Class::Task, task)) => {
                self.close_task(task, TaskKind::Task);
                true
            }
            Some((Class::Blocking, task)) => {
                self.close_task(task, TaskKind::Blocking);
                true
            }
            Some(_) => false,
            None => {
                self.engine.before(Cb::Other);
                self.inner.try_close(id)
            }
        }
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded as-is; the inner subscriber upholds the contract.
        unsafe { self.inner.downcast_raw(id) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_stay_in_taskline_space() {
        for class in [Class::Task, Class::Blocking, Class::Resource] {
            for payload in [0, 1, 2, (1 << 37) - 1, 1 << 37, 12_345_678_901, MAX_PAYLOAD] {
                let id = encode(class, payload).expect("fits");
                assert_eq!(decode(&id), Some((class, payload)), "{class:?} {payload}");
                assert_ne!(id.into_u64().wrapping_sub(1) & REGION, 0);
            }
        }
        assert_eq!(encode(Class::Task, MAX_PAYLOAD + 1), None);
        assert_eq!(decode(&ignored_id()), Some((Class::Ignored, 0)));
    }

    #[test]
    fn no_registry_key_has_the_region_bit() {
        // sharded_slab's default configuration (the registry's): 32 pages,
        // the first of 32 slots, each twice the previous.
        let max_address: u64 = 32 * ((1u64 << 32) - 1) - 1;
        assert!(max_address < REGION);
        for id in [1u64, 2, 1 << 20, max_address + 1] {
            assert_eq!(decode(&span::Id::from_u64(id)), None);
        }
        // Thread-id and generation bits above the address never matter.
        let with_high_bits = (max_address | (0x1fff << 38) | (0x1fff << 51)) + 1;
        assert_eq!(decode(&span::Id::from_u64(with_high_bits)), None);
    }

    #[test]
    fn resource_payload_round_trips() {
        let r = ResourceId {
            kind: 77,
            internal: true,
        };
        assert_eq!(ResourceId::unpack(r.pack(5)), r);
        assert_eq!(ResourceId::unpack(r.pack(u64::MAX)), r);
        assert!(r.pack(u64::MAX) <= MAX_PAYLOAD);
    }
}
