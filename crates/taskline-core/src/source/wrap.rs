//! The wrapper source: a spawned future instrumented by taskline itself, so
//! tasks are recorded on stable Tokio (no `--cfg tokio_unstable`, no runtime
//! hooks, no `tracing` machinery).
//!
//! [`Recorder::spawn`] wraps a future in [`Instrumented`] and spawns it with
//! `tokio::spawn`. The wrapper records the same events the runtime hooks
//! do, so every consumer reads it with no special case:
//! - `Spawn` (site from `#[track_caller]`) when the spawn returns the task's
//!   id, or at the first poll if that comes first (whichever side wins a
//!   compare-and-swap records it, with a timestamp taken before the swap, so
//!   the `Spawn` never follows the task's first `PollStart`);
//! - `PollStart` / `PollEnd` around each poll, with the worker index
//!   (`tokio::runtime::worker_index`, stable); the first `PollStart` carries
//!   the delay from the spawn as its schedule latency;
//! - `Wake` through a wrapped waker: the wrapper polls the future with a
//!   waker of its own that records the wake (naming the task this thread is
//!   polling, or 0 from outside any recorded poll) and forwards it to Tokio's;
//! - the termination, folded into the last `PollEnd` like the hooks do, or a
//!   `Terminate` outside any poll when the task is dropped (aborted, or its
//!   runtime shut down) before it completed.
//!
//! With other sources on the same recorder, each thing is recorded once:
//! - a poll another source records (it made this task the thread's current
//!   one: the hooks' before-poll callback, or the enter of Tokio's task span
//!   by a `tracing` source) is not recorded again;
//! - with the hooks, spawns and terminations are theirs; a `tracing` source
//!   also reports the spawn (consumers take a task's first `Spawn`, the
//!   lifecycle rule, and ignore the second);
//! - the spawn site is the caller's for every source: the spawn functions
//!   are `#[track_caller]` down to `tokio::spawn`, so the location Tokio
//!   gives the hooks and puts in its task span is the caller's too;
//! - the name is always the wrapper's to record (the task is spawned with
//!   plain `tokio::spawn`, so neither the hooks nor the task span know it);
//! - wakes are left to a `tracing` source when one records them
//!   ([`Recorder::wakes_from_tracing`]). So hooks + wrapper gives wakes
//!   without any `tracing` cost.
//!
//! When the future completes and a `tracing` source records for the
//! recorder, the wrapper lets go of Tokio's wakers at once: dropped later,
//! inside the task span's drop-enter, their `waker.drop` events would make
//! that source count the drop as a poll.
//!
//! Cost per task: one allocation (the state shared with the waker); per
//! poll: two clock reads and two ring pushes (plus a lock when Tokio hands
//! the task a different waker); per wake: one push and one uncontended lock.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use crate::event::{Event, EventKind, NO_VALUE, TaskKind, WakeOp, flags};
use crate::record::clock;
use crate::record::recorder::Recorder;
use crate::source::context::{self, worker};
use crate::source::intern_cache::{intern_str, site_of_location};
use crate::source::task_id::task_id_u64;

/// `Shared::spawn_state`: nobody recorded the `Spawn` yet.
const SPAWN_PENDING: u8 = 0;
/// `Shared::spawn_state`: the `Spawn` is recorded (or left to the hooks).
const SPAWN_DONE: u8 = 1;

/// What the wrapper and its waker share.
struct Shared {
    recorder: Recorder,
    /// Tokio's id of the task, 0 until known.
    task: AtomicU64,
    spawn_state: AtomicU8,
    /// When the wrapper was created (ns), for the first poll's delay.
    created_ns: u64,
    site: u32,
    /// Interned name, or `u32::MAX` for none.
    name: u32,
    /// The waker Tokio gave the latest poll.
    inner: Mutex<Option<Waker>>,
}

impl Shared {
    /// Records `Spawn` (unless the hooks report it) and the name at `ts`
    /// for `task`, unless someone did.
    fn record_spawn_once(&self, task: u64, ts: u64) {
        if self
            .spawn_state
            .compare_exchange(
                SPAWN_PENDING,
                SPAWN_DONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        if !self.recorder.hooks_attached() {
            let mut e = Event::new(EventKind::Spawn, ts, task);
            e.aux = self.site;
            e.flags = TaskKind::Task as u8;
            self.recorder.record(e);
        }
        // Neither the hooks nor Tokio's task span know the name (the task
        // is spawned with plain `tokio::spawn`): it is ours to record.
        if self.name != u32::MAX {
            let mut n = Event::new(EventKind::TaskName, ts, task);
            n.aux = self.name;
            self.recorder.record(n);
        }
    }

    fn record_wake(&self, op: WakeOp) {
        let task = self.task.load(Ordering::Relaxed);
        if task == 0 || self.recorder.wakes_from_tracing() {
            return;
        }
        let waker = context::current_task();
        let mut e = Event::new(EventKind::Wake, clock::now_ns(), task);
        e.arg = waker;
        e.flags = op as u8 | if waker == task { flags::SELF_WAKE } else { 0 };
        self.recorder.record(e);
    }

    /// Wakes the task through Tokio's latest waker, by reference under the
    /// lock (no clone and drop of Tokio's waker per wake; Tokio's wake only
    /// schedules the task, it never polls it or calls back into this).
    fn forward(&self) {
        if let Some(w) = self.inner().as_ref() {
            w.wake_by_ref();
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.record_wake(WakeOp::Wake);
        self.forward();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.record_wake(WakeOp::WakeByRef);
        self.forward();
    }
}

pin_project_lite::pin_project! {
    /// A future recorded by taskline as a task of its own: see
    /// [`Recorder::spawn`]. Built by [`Recorder::spawn`] and
    /// [`Recorder::spawn_named`]; polling it outside a Tokio task records
    /// nothing (it has no task id) and just polls the inner future.
    pub struct Instrumented<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        // The waker handed to the inner future (records, then forwards).
        waker: Option<Waker>,
        // The identity (`Waker::data`, `Waker::vtable`) of Tokio's waker as
        // of the last poll, so an unchanged one (the usual case) costs no
        // lock, and no clone of its own: `shared.inner` holds that waker,
        // so its address cannot be reused while it is seen here.
        seen: (usize, usize),
        polled: bool,
        done: bool,
    }

    impl<F> PinnedDrop for Instrumented<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.done {
                return;
            }
            let task = this.shared.task.load(Ordering::Relaxed);
            if task != 0 && !this.shared.recorder.hooks_attached() {
                // Dropped before completing: aborted, or its runtime shut down.
                this.shared.recorder.record(Event::new(EventKind::Terminate, clock::now_ns(), task));
            }
        }
    }
}

/// What `Waker::will_wake` compares (data and vtable addresses), as plain
/// numbers so the wrapper stays `Send`; `(0, 0)` is no waker.
fn waker_identity(w: &Waker) -> (usize, usize) {
    (w.data() as usize, std::ptr::from_ref(w.vtable()) as usize)
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(id) = tokio::task::try_id() else {
            return this.inner.poll(cx);
        };
        let task = task_id_u64(id);
        let shared = &**this.shared;
        let rec = &shared.recorder;
        // Another source records this poll when it already made this task
        // the thread's current one: the hooks (before-poll callback) or a
        // `tracing` source (the enter of Tokio's task span, which wraps
        // this future). Polls are then not recorded twice.
        let recorded = context::current_task() == task;
        let first = !*this.polled;
        if first {
            *this.polled = true;
            shared.task.store(task, Ordering::Relaxed);
            shared.record_spawn_once(task, clock::now_ns());
        }
        // Read after the swap above: when the spawner recorded the Spawn,
        // its timestamp is older than this.
        let start = clock::now_ns();
        // A poll runs on one thread: one lookup serves both events.
        let worker = worker();
        if !recorded {
            let mut e = Event::new(EventKind::PollStart, start, task);
            e.arg = if first {
                start.saturating_sub(shared.created_ns)
            } else {
                NO_VALUE
            };
            e.aux = worker;
            rec.record(e);
        }
        let identity = waker_identity(cx.waker());
        if *this.seen != identity {
            *shared.inner() = Some(cx.waker().clone());
            *this.seen = identity;
        }
        let waker = this
            .waker
            .get_or_insert_with(|| Waker::from(Arc::clone(this.shared)));
        let previous = context::enter_wrapped_poll(task, shared.site);
        let result = this.inner.poll(&mut Context::from_waker(waker));
        context::set_current_task(previous);
        if result.is_ready() {
            *this.done = true;
            if rec.wakes_from_tracing() {
                // Let go of Tokio's wakers now: dropped later, inside the
                // task span's drop-enter, their `waker.drop` events would
                // make the `tracing` source count that drop as a poll.
                *shared.inner() = None;
                *this.seen = (0, 0);
            }
        }
        if !recorded {
            let mut e = Event::new(EventKind::PollEnd, clock::now_ns(), task);
            e.aux = worker;
            if result.is_ready() && !rec.hooks_attached() {
                e.flags = flags::TERMINATED;
            }
            rec.record(e);
        }
        result
    }
}

impl Recorder {
    /// Spawns `future` on the current Tokio runtime (like `tokio::spawn`),
    /// recorded by taskline as a task: its spawn site (the caller), polls,
    /// wakes (through a wrapped waker), scheduling delay and completion or
    /// drop. Works on stable Tokio; with the runtime hooks or a `tracing`
    /// source also on, each poll is still counted once and the task keeps
    /// the caller's site (and name).
    ///
    /// Panics like `tokio::spawn` when called outside a runtime.
    ///
    /// ```
    /// use taskline_core::Recorder;
    /// let rec = Recorder::with_defaults();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     rec.spawn(async { tokio::task::yield_now().await }).await.unwrap();
    /// });
    /// let snapshot = rec.snapshot();
    /// assert_eq!((snapshot.spawned, snapshot.polls, snapshot.wakes), (1, 2, 1));
    /// # rec.shutdown();
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with_name(future, None, Location::caller())
    }

    /// [`Recorder::spawn`] with a task name (shown in reports and traces
    /// like a `tokio::task::Builder::name`).
    #[track_caller]
    pub fn spawn_named<F>(&self, name: &str, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with_name(future, Some(name), Location::caller())
    }

    /// [`Recorder::spawn`] into `set` (like `JoinSet::spawn`).
    ///
    /// ```
    /// use taskline_core::Recorder;
    /// let rec = Recorder::with_defaults();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let sum = rt.block_on(async {
    ///     let mut set = tokio::task::JoinSet::new();
    ///     for i in 0..4u64 {
    ///         rec.spawn_in(&mut set, async move { i });
    ///     }
    ///     set.join_all().await.into_iter().sum::<u64>()
    /// });
    /// assert_eq!((sum, rec.snapshot().spawned), (6, 4));
    /// # rec.shutdown();
    /// ```
    #[track_caller]
    pub fn spawn_in<F>(&self, set: &mut JoinSet<F::Output>, future: F) -> AbortHandle
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (wrapped, shared) = self.wrap(future, None, Location::caller());
        let handle = set.spawn(wrapped);
        self.record_spawned(&shared, handle.id());
        handle
    }

    // `#[track_caller]` down to `tokio::spawn`, so the site Tokio reports
    // (to the hooks, in its task span) is the caller's, like ours.
    #[track_caller]
    fn spawn_with_name<F>(
        &self,
        future: F,
        name: Option<&str>,
        site: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (wrapped, shared) = self.wrap(future, name, site);
        let handle = tokio::spawn(wrapped);
        self.record_spawned(&shared, handle.id());
        handle
    }

    /// The wrapper around `future`, and the state it shares with its waker.
    fn wrap<F: Future>(
        &self,
        future: F,
        name: Option<&str>,
        site: &'static Location<'static>,
    ) -> (Instrumented<F>, Arc<Shared>) {
        let shared = Arc::new(Shared {
            recorder: self.clone(),
            task: AtomicU64::new(0),
            spawn_state: AtomicU8::new(SPAWN_PENDING),
            created_ns: clock::now_ns(),
            site: site_of_location(self.id(), self.registry(), site),
            name: name.map_or(u32::MAX, |n| intern_str(self.id(), self.registry(), n)),
            inner: Mutex::new(None),
        });
        let wrapped = Instrumented {
            inner: future,
            shared: Arc::clone(&shared),
            waker: None,
            seen: (0, 0),
            polled: false,
            done: false,
        };
        (wrapped, shared)
    }

    /// The spawner's side of the `Spawn` race (see the module docs).
    fn record_spawned(&self, shared: &Shared, id: tokio::task::Id) {
        if self.hooks_attached() && shared.name == u32::MAX {
            return; // the hooks recorded the Spawn; nothing else to say
        }
        // Taken before the swap: if the first poll loses the race it
        // reads the clock after this, so Spawn precedes its PollStart.
        let ts = clock::now_ns();
        let task = task_id_u64(id);
        shared.task.store(task, Ordering::Relaxed);
        shared.record_spawn_once(task, ts);
    }
}
