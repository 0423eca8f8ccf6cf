//! [`Recorder`]: per-thread rings, the consumer thread, sinks and drop counters.
//!
//! Hot path ([`Recorder::record`]): a thread-local cell caches the ring this
//! thread pushed to last (one load and a compare when one recorder is in
//! use); behind it, a thread-local list maps each recorder's id to this
//! thread's ring (one entry per recorder the thread has recorded into, so
//! several recorders can coexist). The event is stamped with the thread
//! number and pushed into the ring. No lock, allocation or syscall after the
//! thread's first event, which registers the ring (locks once).
//!
//! The consumer thread (`taskline-consumer`) wakes every `drain_interval`, or
//! earlier when a producer's ring crosses half capacity (the push that makes
//! it half full unparks the consumer: one comparison per push, an unpark only
//! at the crossing, never a lock or an allocation), and merges the rings'
//! events older than `reorder_window` into timestamp order, reading them in
//! place (each ring is already in order, so this is a k-way merge, not a
//! sort; events of one thread with equal timestamps keep their order). It
//! delivers them in chunks of 1024 (`CHUNK_EVENTS`) to the internal [`Aggregator`]
//! and then to every [`Sink`], and releases them to their rings. Younger
//! events wait in their ring for the next tick.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::aggregate::{Aggregator, Snapshot};
use crate::event::{Event, EventKind, NO_WORKER};
use crate::record::clock;
use crate::record::config::{ConfigError, EVENT_BYTES, RecorderConfig};
use crate::record::merge::{Cursor, Source, count_before, merge_chunk};
use crate::record::registry::Registry;
use crate::record::ring::{Push, Ring, RingView};
use crate::record::sink::{Sink, SinkId};
use crate::record::stats::RecorderStats;

/// Events merged per delivery to the sinks: 32 KiB, small enough to stay in
/// the first-level cache between the merge and the sinks, and the ring slots
/// behind them go back to the producers after every chunk.
pub(crate) const CHUNK_EVENTS: usize = 1024;

impl RecorderConfig {
    /// Upper bound of the recorder's own memory with this configuration:
    /// thread rings (which also hold the events the consumer keeps back for
    /// the reorder window), the copies the consumer makes of rings under
    /// pressure (at most as large as the rings), its 32 KiB delivery chunk,
    /// per-task state, the registry (assuming names of up to ~100 bytes) and
    /// the histograms.
    pub fn memory_budget_bytes(&self) -> usize {
        let rings = self.ring_bytes();
        // The consumer merges the rings in place into one reused chunk; a
        // ring under pressure has its ready events copied out first (at most
        // a ring's worth each).
        let pending = rings.saturating_add((CHUNK_EVENTS + 1) * EVENT_BYTES);
        // Without aggregation no task state is kept.
        let tasks = if self.aggregate {
            self.max_tracked_tasks
                .saturating_mul(crate::aggregate::TASK_STATE_BYTES_BOUND)
        } else {
            0
        };
        let registry = self
            .max_interned
            .saturating_mul(2 * 256 + crate::aggregate::SITE_BYTES_BOUND);
        rings
            .saturating_add(pending)
            .saturating_add(tasks)
            .saturating_add(registry)
            .saturating_add(crate::aggregate::fixed_bytes_bound())
            .saturating_add(1 << 20)
    }
}

static NEXT_RECORDER_ID: AtomicU64 = AtomicU64::new(1);
/// Sink ids are unique in the process, so one recorder never takes another's.
static NEXT_SINK_ID: AtomicU64 = AtomicU64::new(0);

/// Records runtime events from any thread and hands them to sinks on a
/// background thread. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.inner.id)
            .field("stats", &self.stats())
            .finish()
    }
}

struct SinkSlot {
    id: SinkId,
    sink: Box<dyn Sink>,
    disabled: bool,
}

struct Consumer {
    /// Merged events on their way to the sinks (`CHUNK_EVENTS` at most,
    /// plus one), reused by every tick.
    chunk: Vec<Event>,
    /// Per ring (in this tick's order), the ready events copied out of a
    /// ring under pressure: at most `ring_capacity` each, reused.
    staging: Vec<Vec<Event>>,
    aggregator: Aggregator,
    sinks: Vec<SinkSlot>,
    /// Threads whose worker index is already in the registry.
    worker_known: Vec<bool>,
}

struct Inner {
    id: u64,
    config: RecorderConfig,
    registry: Registry,
    /// Rings of live (or not yet reclaimed) threads, plus counters of rings
    /// already reclaimed.
    slots: Mutex<Slots>,
    shut: Arc<AtomicBool>,
    /// Events lost before reaching a ring.
    lost: AtomicU64,
    delivered: AtomicU64,
    sink_panics: AtomicU64,
    /// False when aggregation is configured off or the aggregator panicked
    /// (written by the consumer only; read by `stats`).
    aggregating: AtomicBool,
    /// Set once the runtime hooks instrument a runtime builder for this
    /// recorder (see [`Recorder::hooks_attached`]).
    hooks_attached: AtomicBool,
    /// Whether a `tracing` source (layer or subscriber) records wakes into
    /// this recorder (see [`Recorder::wakes_from_tracing`]).
    wakes_from_tracing: AtomicBool,
    consumer: Mutex<Consumer>,
    /// Set to stop the consumer thread (which is then unparked).
    stop: Arc<AtomicBool>,
    /// The consumer thread, unparked when a ring crosses half capacity.
    /// Unset if the thread could not be spawned.
    consumer_thread: OnceLock<Thread>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Slots {
    rings: Vec<Arc<Ring>>,
    retired_pushed: u64,
    retired_dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread's ring for one recorder (or a denial).
struct Local {
    recorder: u64,
    ring: Option<Arc<Ring>>,
    shut: Arc<AtomicBool>,
}

/// The thread's rings; the destructor marks them finished so the consumer
/// drains and frees them.
struct Locals(RefCell<Vec<Local>>);

impl Drop for Locals {
    fn drop(&mut self) {
        // The rings may be freed once marked finished: forget the cached one.
        set_last(0, std::ptr::null());
        for l in self.0.get_mut().iter() {
            if let Some(r) = &l.ring {
                r.mark_finished();
            }
        }
    }
}

thread_local! {
    static LOCALS: Locals = const { Locals(RefCell::new(Vec::new())) };
    /// The ring this thread pushed to last, as (recorder id, ring): the hot
    /// path's one-load lookup. Recorder ids start at 1, so `(0, null)` never
    /// matches. The pointer borrows from an `Arc<Ring>` in this thread's
    /// `LOCALS`; it is rewritten whenever `LOCALS` loses an entry and cleared
    /// when `LOCALS` is destroyed (see [`Locals::drop`] and
    /// [`Recorder::register_and_record`]), so it never dangles. No destructor,
    /// so it stays readable during thread teardown.
    static LAST: Cell<(u64, *const Ring)> = const { Cell::new((0, std::ptr::null())) };
}

fn set_last(recorder: u64, ring: *const Ring) {
    let _ = LAST.try_with(|c| c.set((recorder, ring)));
}

enum Outcome {
    Done,
    /// Stored, and the ring just became half full.
    Half,
    Lost,
    Register,
}

impl Recorder {
    /// A recorder with `config`, its consumer thread started.
    pub fn new(config: RecorderConfig) -> Result<Recorder, ConfigError> {
        config.validate()?;
        // Calibrate the clock here, not on the first event of a worker.
        clock::init();
        let stop = Arc::new(AtomicBool::new(false));
        let inner = Arc::new(Inner {
            id: NEXT_RECORDER_ID.fetch_add(1, Ordering::Relaxed),
            registry: Registry::with_limit(config.max_interned),
            slots: Mutex::new(Slots::default()),
            shut: Arc::new(AtomicBool::new(false)),
            lost: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            sink_panics: AtomicU64::new(0),
            aggregating: AtomicBool::new(config.aggregate),
            hooks_attached: AtomicBool::new(false),
            wakes_from_tracing: AtomicBool::new(false),
            consumer: Mutex::new(Consumer {
                chunk: Vec::with_capacity(CHUNK_EVENTS + 1),
                staging: Vec::new(),
                aggregator: Aggregator::new(&config),
                sinks: Vec::new(),
                worker_known: Vec::new(),
            }),
            stop: stop.clone(),
            consumer_thread: OnceLock::new(),
            handle: Mutex::new(None),
            config,
        });
        let weak = Arc::downgrade(&inner);
        let interval = inner.config.drain_interval;
        // If the thread cannot be spawned the recorder still works: rings
        // are drained on flush/snapshot/shutdown.
        if let Ok(h) = std::thread::Builder::new()
            .name("taskline-consumer".into())
            .spawn(move || consumer_loop(weak, interval, stop))
        {
            let _ = inner.consumer_thread.set(h.thread().clone());
            *lock(&inner.handle) = Some(h);
        }
        Ok(Recorder { inner })
    }

    /// A recorder with [`RecorderConfig::default`].
    pub fn with_defaults() -> Recorder {
        // The default configuration always validates.
        match Recorder::new(RecorderConfig::default()) {
            Ok(r) => r,
            Err(e) => unreachable!("default config rejected: {e}"),
        }
    }

    /// This recorder's process-unique id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The configuration the recorder runs with.
    pub fn config(&self) -> &RecorderConfig {
        &self.inner.config
    }

    /// Records `event` (HOT PATH): stamps `event.thread` and appends it to
    /// this thread's ring. A full ring, a thread beyond `max_threads` or a
    /// shut-down recorder drop the event and count it. Never blocks, never
    /// panics.
    #[inline]
    pub fn record(&self, event: Event) {
        let inner = &*self.inner;
        if inner.shut.load(Ordering::Relaxed) {
            inner.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (last_id, last_ring) = LAST.try_with(Cell::get).unwrap_or((0, std::ptr::null()));
        if last_id == inner.id && !last_ring.is_null() {
            // SAFETY: LAST points into an `Arc<Ring>` owned by this thread's
            // LOCALS entry for this recorder; entries are only removed (and
            // LAST rewritten or cleared first) in `register_and_record` and
            // `Locals::drop`, neither of which can run during this call.
            let ring = unsafe { &*last_ring };
            let mut e = event;
            e.thread = ring.thread;
            if ring.push(e) == Push::Half {
                inner.wake_consumer();
            }
            return;
        }
        self.record_via_list(event);
    }

    /// The thread's list of rings: another recorder was used last on this
    /// thread, or this is the thread's first event for this recorder.
    #[inline(never)]
    fn record_via_list(&self, event: Event) {
        let inner = &*self.inner;
        let id = inner.id;
        let outcome = LOCALS
            .try_with(|locals| {
                let Ok(list) = locals.0.try_borrow() else {
                    return Outcome::Lost;
                };
                for l in list.iter() {
                    if l.recorder == id {
                        return match &l.ring {
                            Some(r) => {
                                set_last(id, Arc::as_ptr(r));
                                let mut e = event;
                                e.thread = r.thread;
                                match r.push(e) {
                                    Push::Half => Outcome::Half,
                                    Push::Stored | Push::Full => Outcome::Done,
                                }
                            }
                            None => Outcome::Lost,
                        };
                    }
                }
                Outcome::Register
            })
            .unwrap_or(Outcome::Lost);
        match outcome {
            Outcome::Done => {}
            Outcome::Half => inner.wake_consumer(),
            Outcome::Lost => {
                inner.lost.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Register => self.register_and_record(event),
        }
    }

    #[cold]
    fn register_and_record(&self, mut event: Event) {
        let inner = &*self.inner;
        let ring = inner.register_ring();
        let ok = LOCALS
            .try_with(|locals| {
                let Ok(mut list) = locals.0.try_borrow_mut() else {
                    return false;
                };
                // Forget entries of recorders that shut down (LAST may point
                // at one of their rings: repoint it before they are freed).
                set_last(0, std::ptr::null());
                list.retain(|l| !l.shut.load(Ordering::Relaxed));
                list.push(Local {
                    recorder: inner.id,
                    ring: ring.clone(),
                    shut: inner.shut.clone(),
                });
                if let Some(r) = &ring {
                    set_last(inner.id, Arc::as_ptr(r));
                }
                true
            })
            .unwrap_or(false);
        match (&ring, ok) {
            (Some(r), true) => {
                event.thread = r.thread;
                if r.push(event) == Push::Half {
                    inner.wake_consumer();
                }
            }
            (Some(r), false) => {
                r.mark_finished();
                inner.lost.fetch_add(1, Ordering::Relaxed);
            }
            (None, _) => {
                inner.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether the runtime hooks ([`crate::source::hooks::instrument`]) have
    /// instrumented a runtime builder for this recorder. The `tracing`
    /// sources then leave the spawns and terminations of plain tasks to the
    /// hooks instead of reporting each of them a second time.
    ///
    /// ```
    /// use taskline_core::{Recorder, RuntimeBuilderExt};
    /// let rec = Recorder::with_defaults();
    /// assert!(!rec.hooks_attached());
    /// let _rt = tokio::runtime::Builder::new_current_thread().taskline(&rec).build().unwrap();
    /// assert!(rec.hooks_attached());
    /// # rec.shutdown();
    /// ```
    pub fn hooks_attached(&self) -> bool {
        self.inner.hooks_attached.load(Ordering::Relaxed)
    }

    /// Marks that the hooks instrument a runtime for this recorder (only
    /// the unstable task hooks report spawns, so only they set it).
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn set_hooks_attached(&self) {
        self.inner.hooks_attached.store(true, Ordering::Relaxed);
    }

    /// Whether a `tracing` source ([`TasklineLayer`](crate::TasklineLayer) or
    /// [`TasklineSubscriber`](crate::TasklineSubscriber)) was created for
    /// this recorder: it records the wakes of every task from Tokio's own
    /// waker instrumentation, so a wrapped future
    /// ([`Recorder::spawn`]) leaves wakes to it instead of recording each
    /// twice.
    pub fn wakes_from_tracing(&self) -> bool {
        self.inner.wakes_from_tracing.load(Ordering::Relaxed)
    }

    /// Marks that a `tracing` source records wakes for this recorder (Tokio
    /// emits waker events only with `tokio_unstable`).
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn set_wakes_from_tracing(&self) {
        self.inner.wakes_from_tracing.store(true, Ordering::Relaxed);
    }

    /// The recorder's interned strings, sites and threads.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Adds a sink. It sees (at least) every event recorded after this call,
    /// in timestamp order, on the consumer thread, until it is removed with
    /// [`remove_sink`](Self::remove_sink) (most sinks stay for the
    /// recorder's life and ignore the id). Blocks while the consumer is
    /// delivering a batch.
    pub fn add_sink<S: Sink>(&self, sink: S) -> SinkId {
        let id = SinkId(NEXT_SINK_ID.fetch_add(1, Ordering::Relaxed));
        lock(&self.inner.consumer).sinks.push(SinkSlot {
            id,
            sink: Box::new(sink),
            disabled: false,
        });
        id
    }

    /// Removes the sink `add_sink` returned `id` for: it gets no event and
    /// no `on_flush` once this returns (flush first for the events recorded
    /// so far). The sink is dropped on the calling thread, after the
    /// recorder's lock is released. Returns false if no such sink is
    /// attached (removed already, or added to another recorder). A sink
    /// attached only while it is needed costs the recorder nothing the rest
    /// of the time: delivery walks the sinks attached now.
    ///
    /// ```
    /// use taskline_core::{Event, Recorder, Registry, Sink};
    /// struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    /// impl Sink for Count {
    ///     fn on_events(&mut self, events: &[Event], _: &Registry) {
    ///         self.0.fetch_add(events.len(), std::sync::atomic::Ordering::Relaxed);
    ///     }
    /// }
    /// let rec = Recorder::with_defaults();
    /// let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    /// let id = rec.add_sink(Count(seen.clone()));
    /// rec.record(Event::new(taskline_core::EventKind::Wake, taskline_core::now_ns(), 1));
    /// rec.flush();
    /// assert!(rec.remove_sink(id));
    /// rec.record(Event::new(taskline_core::EventKind::Wake, taskline_core::now_ns(), 1));
    /// rec.flush();
    /// assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
    /// assert_eq!((rec.sink_count(), rec.remove_sink(id)), (0, false));
    /// # rec.shutdown();
    /// ```
    pub fn remove_sink(&self, id: SinkId) -> bool {
        let removed = {
            let mut c = lock(&self.inner.consumer);
            c.sinks
                .iter()
                .position(|s| s.id == id)
                .map(|i| c.sinks.remove(i))
        };
        // A sink's drop may join threads of its own: outside the lock.
        removed.is_some()
    }

    /// How many sinks are attached now (disabled ones included; the
    /// internal aggregator is not a sink).
    pub fn sink_count(&self) -> usize {
        lock(&self.inner.consumer).sinks.len()
    }

    /// Drains every ring now and delivers everything pending (ignoring the
    /// reorder window), then calls every sink's `on_flush`. Runs the sinks on
    /// the calling thread; blocks while a sink is busy.
    pub fn flush(&self) {
        self.inner.flush();
    }

    /// Flushes, then returns a copy of the aggregates (with recorder stats).
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        let mut c = lock(&inner.consumer);
        inner.tick(&mut c, true);
        inner.call_on_flush(&mut c);
        let mut s = c.aggregator.snapshot(&inner.registry);
        drop(c);
        s.recorder = Some(self.stats());
        s
    }

    /// Counters: recorded, dropped, delivered, threads, memory budget.
    pub fn stats(&self) -> RecorderStats {
        let inner = &*self.inner;
        let (recorded, ring_dropped, threads) = {
            let s = lock(&inner.slots);
            let mut rec = s.retired_pushed;
            let mut drop = s.retired_dropped;
            for r in &s.rings {
                rec += r.pushed();
                drop += r.dropped();
            }
            (rec, drop, s.rings.len())
        };
        RecorderStats {
            recorded,
            dropped: ring_dropped + inner.lost.load(Ordering::Relaxed),
            delivered: inner.delivered.load(Ordering::Relaxed),
            threads,
            threads_registered: inner.registry.threads().len(),
            sink_panics: inner.sink_panics.load(Ordering::Relaxed),
            memory_budget_bytes: inner.config.memory_budget_bytes(),
            aggregating: inner.aggregating.load(Ordering::Relaxed),
        }
    }

    /// Final flush, then stops the consumer thread. Later `record` calls are
    /// counted as dropped. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// Drains every `interval`, or earlier when unparked (a ring crossed half
/// capacity, or the recorder stops). A spurious wake-up only drains early.
fn consumer_loop(weak: Weak<Inner>, interval: Duration, stop: Arc<AtomicBool>) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::park_timeout(interval);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut c = lock(&inner.consumer);
            inner.tick(&mut c, false);
        }
        // `inner` may be the last handle: it drops here, outside the lock.
        drop(inner);
    }
}

impl Inner {
    /// Wakes the consumer thread now (a ring is half full). `Thread::unpark`
    /// neither blocks nor allocates; an unpark before the consumer parks
    /// makes its next park return at once, so no wake is lost.
    #[cold]
    fn wake_consumer(&self) {
        if let Some(t) = self.consumer_thread.get() {
            t.unpark();
        }
    }

    fn register_ring(&self) -> Option<Arc<Ring>> {
        let mut slots = lock(&self.slots);
        if slots.rings.len() >= self.config.max_threads || self.shut.load(Ordering::Relaxed) {
            return None;
        }
        let tid = self
            .registry
            .register_thread(std::thread::current().name())?;
        let ring = Arc::new(Ring::new(self.config.ring_capacity, tid));
        slots.rings.push(ring.clone());
        Some(ring)
    }

    /// Merges every ring's events older than the reorder window (everything
    /// if `all`) into timestamp order, delivers them chunk by chunk, releases
    /// them to their rings, and reclaims finished rings once they are empty.
    fn tick(&self, c: &mut Consumer, all: bool) {
        let rings: Vec<Arc<Ring>> = lock(&self.slots).rings.clone();
        let cutoff = if all {
            u64::MAX
        } else {
            clock::now_ns().saturating_sub(duration_ns(self.config.reorder_window))
        };
        // Read `finished` before the view: if it was set, the producer pushes
        // nothing more, and a ring whose view is used up is empty for good.
        let finished: Vec<bool> = rings.iter().map(|r| r.is_finished()).collect();
        let views: Vec<RingView<'_>> = rings.iter().map(|r| r.view()).collect();
        // Hold back at most half a ring per thread, so a thread recording
        // faster than the window drains still has room to push.
        let half = self.config.ring_capacity / 2;
        let ready: Vec<usize> = views
            .iter()
            .map(|v| count_before(v, cutoff).max(v.len().saturating_sub(half)))
            .collect();
        // A ring with a quarter of its capacity ready is under pressure: copy
        // its ready events out and free its slots at once, so its thread
        // keeps a whole ring to push into while the sinks work (one memcpy).
        // Other rings are merged where they lie.
        let mut staging = std::mem::take(&mut c.staging);
        staging.resize_with(rings.len(), Vec::new);
        for (i, v) in views.iter().enumerate() {
            staging[i].clear();
            if ready[i] >= self.config.ring_capacity / 4 {
                v.copy_prefix_into(ready[i], &mut staging[i]);
                v.consume(ready[i]);
            }
        }
        let mut cursors: Vec<Cursor<Source<'_>>> = views
            .iter()
            .zip(&ready)
            .zip(&staging)
            .map(|((v, &n), staged)| {
                Cursor::new(if staged.is_empty() {
                    Source::Ring(v.prefix(n))
                } else {
                    Source::Staged(staged)
                })
            })
            .collect();
        let mut chunk = std::mem::take(&mut c.chunk);
        let mut consumed = 0;
        loop {
            chunk.clear();
            let done = merge_chunk(&mut cursors, &mut chunk, CHUNK_EVENTS);
            if !chunk.is_empty() {
                self.deliver(c, &chunk);
            }
            // Give the delivered slots back to the producers now, not at the
            // end of the tick: slow sinks must not shrink the rings.
            let mut taken = 0;
            for cur in &cursors {
                if let Source::Ring(v) = cur.run() {
                    v.consume(cur.pos());
                }
                taken += cur.pos() as u64;
            }
            self.delivered
                .fetch_add(taken - consumed, Ordering::Relaxed);
            consumed = taken;
            if done {
                break;
            }
        }
        c.chunk = chunk;
        drop(cursors);
        c.staging = staging;
        let mut emptied = Vec::new();
        for (i, v) in views.iter().enumerate() {
            // A tick delivers every ready event.
            if finished[i] && ready[i] == v.len() {
                emptied.push(rings[i].clone());
            }
        }
        drop(views);
        if !emptied.is_empty() {
            let mut s = lock(&self.slots);
            s.rings
                .retain(|r| !emptied.iter().any(|f| Arc::ptr_eq(r, f)));
            for f in &emptied {
                s.retired_pushed += f.pushed();
                s.retired_dropped += f.dropped();
            }
        }
    }

    fn deliver(&self, c: &mut Consumer, batch: &[Event]) {
        let reg = &self.registry;
        if self.aggregating.load(Ordering::Relaxed) {
            let agg = &mut c.aggregator;
            if catch_unwind(AssertUnwindSafe(|| agg.on_events(batch, reg))).is_err() {
                self.aggregating.store(false, Ordering::Relaxed);
                self.sink_panics.fetch_add(1, Ordering::Relaxed);
            }
            // The aggregator spots threads acting as workers as it goes.
            for (thread, worker) in c.aggregator.take_new_workers() {
                reg.set_worker(thread, worker);
            }
        }
        if !self.aggregating.load(Ordering::Relaxed) {
            self.note_workers(c, batch);
        }
        for s in c.sinks.iter_mut().filter(|s| !s.disabled) {
            let sink = &mut s.sink;
            if catch_unwind(AssertUnwindSafe(|| sink.on_events(batch, reg))).is_err() {
                s.disabled = true;
                self.sink_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Without the aggregator (configured off, or it panicked): names the
    /// threads that act as workers in the registry by scanning the batch. A
    /// thread already named costs one byte read per event.
    fn note_workers(&self, c: &mut Consumer, batch: &[Event]) {
        for e in batch {
            let t = e.thread as usize;
            if c.worker_known.get(t).copied().unwrap_or(false) {
                continue;
            }
            if matches!(
                e.kind(),
                Some(EventKind::PollStart | EventKind::Park | EventKind::Unpark)
            ) && e.aux != NO_WORKER
            {
                if c.worker_known.len() <= t {
                    c.worker_known.resize(t + 1, false);
                }
                c.worker_known[t] = true;
                self.registry.set_worker(e.thread, e.aux);
            }
        }
    }

    fn call_on_flush(&self, c: &mut Consumer) {
        let reg = &self.registry;
        for s in c.sinks.iter_mut().filter(|s| !s.disabled) {
            let sink = &mut s.sink;
            if catch_unwind(AssertUnwindSafe(|| sink.on_flush(reg))).is_err() {
                s.disabled = true;
                self.sink_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {
        let mut c = lock(&self.consumer);
        self.tick(&mut c, true);
        self.call_on_flush(&mut c);
    }

    fn stop_thread(&self) -> Option<JoinHandle<()>> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.consumer_thread.get() {
            t.unpark();
        }
        lock(&self.handle).take()
    }

    fn shutdown(&self) {
        if self.shut.swap(true, Ordering::SeqCst) {
            return;
        }
        let handle = self.stop_thread();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        self.flush();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle went away without shutdown(): final flush. The
        // consumer thread holds only a Weak and exits on its own.
        if !self.shut.swap(true, Ordering::SeqCst) {
            let _ = self.stop_thread();
            self.flush();
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what it is given; on drop, flushes the recorder it holds
    /// (which would deadlock if it were dropped under the consumer lock).
    struct Keep {
        seen: Arc<Mutex<Vec<u64>>>,
        flushes: Arc<AtomicU64>,
        on_drop: Option<Recorder>,
    }

    impl Sink for Keep {
        fn on_events(&mut self, events: &[Event], _: &Registry) {
            lock(&self.seen).extend(events.iter().map(|e| e.task));
        }
        fn on_flush(&mut self, _: &Registry) {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Drop for Keep {
        fn drop(&mut self) {
            if let Some(r) = self.on_drop.take() {
                r.flush();
            }
        }
    }

    fn keep(on_drop: Option<Recorder>) -> (Keep, Arc<Mutex<Vec<u64>>>, Arc<AtomicU64>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let flushes = Arc::new(AtomicU64::new(0));
        let sink = Keep {
            seen: seen.clone(),
            flushes: flushes.clone(),
            on_drop,
        };
        (sink, seen, flushes)
    }

    fn wake(rec: &Recorder, task: u64) {
        rec.record(Event::new(EventKind::Wake, clock::now_ns(), task));
    }

    #[test]
    fn a_removed_sink_sees_nothing_more_and_the_others_go_on() {
        let rec = Recorder::with_defaults();
        let (a, seen_a, flushes_a) = keep(None);
        let (b, seen_b, _) = keep(None);
        let id_a = rec.add_sink(a);
        let id_b = rec.add_sink(b);
        assert_ne!(id_a, id_b);
        assert_eq!(rec.sink_count(), 2);
        wake(&rec, 1);
        rec.flush();
        assert!(rec.remove_sink(id_a));
        assert_eq!(rec.sink_count(), 1);
        wake(&rec, 2);
        rec.flush();
        assert_eq!(*lock(&seen_a), vec![1]);
        assert_eq!(*lock(&seen_b), vec![1, 2]);
        // One flush while attached; the second came after the removal.
        assert_eq!(flushes_a.load(Ordering::Relaxed), 1);
        // Removing twice, or an id this recorder never gave, does nothing.
        assert!(!rec.remove_sink(id_a));
        let other = Recorder::with_defaults();
        let (c, _, _) = keep(None);
        let id_c = other.add_sink(c);
        assert!(!rec.remove_sink(id_c));
        assert_eq!(other.sink_count(), 1);
        assert!(rec.remove_sink(id_b));
        assert_eq!(rec.sink_count(), 0);
        // Ids are not reused after a removal.
        let (d, _, _) = keep(None);
        let id_d = rec.add_sink(d);
        assert!(id_d != id_a && id_d != id_b);
        rec.shutdown();
        other.shutdown();
    }

    #[test]
    fn a_removed_sink_is_dropped_outside_the_recorder_lock() {
        let rec = Recorder::with_defaults();
        let (sink, seen, _) = keep(Some(rec.clone()));
        let id = rec.add_sink(sink);
        wake(&rec, 7);
        // The sink's drop flushes the recorder: under the lock this would
        // deadlock.
        assert!(rec.remove_sink(id));
        assert_eq!(*lock(&seen), Vec::<u64>::new());
        rec.shutdown();
    }

    #[test]
    fn sinks_come_and_go_while_threads_record() {
        let rec = Recorder::new(RecorderConfig {
            drain_interval: Duration::from_millis(1),
            ..RecorderConfig::default()
        })
        .expect("config");
        let (always, seen_always, _) = keep(None);
        rec.add_sink(always);
        // Fewer events than a ring holds: none is dropped, so every sink's
        // view can be compared with the exact sequence.
        const N: u64 = 40_000;
        let producer = {
            let rec = rec.clone();
            std::thread::spawn(move || {
                for n in 1..=N {
                    wake(&rec, n);
                    if n % 200 == 0 {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            })
        };
        let mut windows = Vec::new();
        for _ in 0..20 {
            let (s, seen, _) = keep(None);
            let id = rec.add_sink(s);
            std::thread::sleep(Duration::from_millis(1));
            assert!(rec.remove_sink(id));
            windows.push(seen);
        }
        producer.join().expect("producer");
        rec.flush();
        let all = lock(&seen_always).clone();
        assert_eq!(all, (1..=N).collect::<Vec<_>>());
        // Each temporary sink saw one contiguous run of what the permanent
        // one saw (whole batches, in order), and the runs do not overlap.
        let mut last_end = 0u64;
        for w in &windows {
            let w = lock(w);
            if let (Some(&first), Some(&last)) = (w.first(), w.last()) {
                assert_eq!(*w, (first..=last).collect::<Vec<_>>());
                assert!(first > last_end);
                last_end = last;
            }
        }
        assert_eq!(rec.sink_count(), 1);
        rec.shutdown();
    }
}
