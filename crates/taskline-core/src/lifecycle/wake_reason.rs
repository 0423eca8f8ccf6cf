//! Why a task waited: the reason each idle period ended, decided once from
//! what the event stream says about the thread that woke the task.
//!
//! A `Wake` event names the woken task and, when the wake happened inside a
//! recorded poll, the waking task. Everything else comes from the waking
//! thread's recent events, which the consumers see in each thread's own
//! order: whether it is polling, parked in the runtime's driver, running a
//! blocking section, or none of those. [`ThreadRoles`] keeps that per
//! thread, and [`ThreadRoles::wake_reason`] is the one rule.
//!
//! The rule of each reason and its limits are documented on [`WakeReason`].

use crate::event::{BlockingKind, DecodedEvent, Event};

/// Why an idle task became runnable, decided by [`ThreadRoles::wake_reason`]
/// from the waking thread's recent events:
///
/// | reason | when | waker named |
/// |---|---|---|
/// | [`Yield`](WakeReason::Yield) | the task woke itself: inside its own poll (`wake_by_ref`, budget), or Tokio's deferred `yield_now` wake (outside any poll, in the first driver turn of the thread its last poll ended on, see below) | the task |
/// | [`Blocking`](WakeReason::Blocking) | from a thread inside an application blocking section (`spawn_blocking`, `block_in_place`), or from a blocking-pool thread after one (Tokio wakes a `spawn_blocking`'s `JoinHandle` once the section ended) | the blocking task, when known |
/// | [`Sync`](WakeReason::Sync) | from inside another task's poll: channels, `Notify`, `Mutex`, `oneshot`, `JoinHandle`... | the waking task |
/// | [`Timer`](WakeReason::Timer) | from a runtime thread outside any poll (the driver), for a task whose last poll waited on a timer resource (`Sleep`: needs resource waits on) | - |
/// | [`Io`](WakeReason::Io) | from a runtime thread outside any poll (the driver), otherwise: I/O readiness | - |
/// | [`Foreign`](WakeReason::Foreign) | from a thread that is not the runtime's (a plain `std::thread`, another runtime's `block_on`) | - |
/// | [`Unknown`](WakeReason::Unknown) | no `Wake` was recorded (runtime hooks only): the idle time ends at the next poll | - |
///
/// Limits (also in the README, "Why tasks waited"):
/// - telling a timer from I/O needs the resource waits of Tokio's `tracing`
///   instrumentation (`Sleep` is a resource); without them a timer wake
///   counts as [`Io`](WakeReason::Io);
/// - Tokio's I/O and time drivers run on a worker thread outside any poll,
///   and so do its deferred `yield_now` wakes: a worker wakes the tasks that
///   yielded on it right after its next driver turn, and never after a
///   `Park` (it parks only with no deferred task). A *turn* is seen as a
///   run of wakes outside any poll on a thread (a `Park` starts a new one);
///   a driver wake of a task in the first turn after its last poll ended on
///   that thread is taken for its deferred yield. An I/O wake that lands in
///   that very turn (the I/O completed before the worker next polled its
///   driver), or after a turn that woke nothing (Tokio's maintenance polls
///   the driver every 61 polls and may find nothing), counts as a yield
///   too;
/// - a thread becomes a runtime thread in [`ThreadRoles`] once it polls a
///   task on a worker, parks, or runs the runtime's own blocking section
///   (Tokio starts its workers on its blocking pool); a wake from a runtime
///   thread seen before any of those counts as [`Foreign`](WakeReason::Foreign).
///
/// ```
/// use taskline_core::WakeReason;
/// assert_eq!(WakeReason::Io.as_str(), "io");
/// assert_eq!(WakeReason::from_name("timer"), Some(WakeReason::Timer));
/// assert_eq!(WakeReason::ALL.len(), WakeReason::COUNT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum WakeReason {
    /// Woken by another task (channels, `Notify`, locks, `oneshot`, ...).
    Sync = 0,
    /// Woken by the runtime's driver: I/O readiness (or a timer whose wait
    /// was not seen, see above).
    Io = 1,
    /// Woken by the runtime's timer, for a task that waited on a `Sleep`.
    Timer = 2,
    /// Woken from an application blocking section (`spawn_blocking`,
    /// `block_in_place`).
    Blocking = 3,
    /// Woken from a thread that is not one of the runtime's.
    Foreign = 4,
    /// Woken by itself (`yield_now`, budget exhaustion, `wake_by_ref`).
    Yield = 5,
    /// No wake recorded (runtime hooks only).
    Unknown = 6,
}

impl WakeReason {
    /// Number of reasons.
    pub const COUNT: usize = 7;

    /// Every reason, in index order.
    pub const ALL: [WakeReason; WakeReason::COUNT] = [
        WakeReason::Sync,
        WakeReason::Io,
        WakeReason::Timer,
        WakeReason::Blocking,
        WakeReason::Foreign,
        WakeReason::Yield,
        WakeReason::Unknown,
    ];

    /// The reason's index in [`ALL`](Self::ALL).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The reason's name in reports, JSON and the OTel `reason` attribute:
    /// `sync`, `io`, `timer`, `blocking`, `foreign`, `yield`, `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WakeReason::Sync => "sync",
            WakeReason::Io => "io",
            WakeReason::Timer => "timer",
            WakeReason::Blocking => "blocking",
            WakeReason::Foreign => "foreign",
            WakeReason::Yield => "yield",
            WakeReason::Unknown => "unknown",
        }
    }

    /// The reason named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for WakeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Idle periods and idle time split by the [`WakeReason`] that ended them.
///
/// ```
/// use taskline_core::{IdleByReason, WakeReason};
/// let mut idle = IdleByReason::default();
/// idle.add(WakeReason::Io, 300);
/// idle.add(WakeReason::Io, 200);
/// idle.add(WakeReason::Sync, 50);
/// assert_eq!(idle.ns(WakeReason::Io), 500);
/// assert_eq!(idle.count(WakeReason::Io), 2);
/// assert_eq!(idle.total_ns(), 550);
/// assert_eq!(idle.largest(), Some(WakeReason::Io));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleByReason {
    ns: [u64; WakeReason::COUNT],
    count: [u64; WakeReason::COUNT],
}

impl IdleByReason {
    /// Adds one idle period of `ns` ended for `reason`.
    #[inline]
    pub fn add(&mut self, reason: WakeReason, ns: u64) {
        let i = reason.index();
        self.ns[i] = self.ns[i].saturating_add(ns);
        self.count[i] = self.count[i].saturating_add(1);
    }

    /// Adds every period of `other`.
    pub fn merge(&mut self, other: &IdleByReason) {
        for i in 0..WakeReason::COUNT {
            self.ns[i] = self.ns[i].saturating_add(other.ns[i]);
            self.count[i] = self.count[i].saturating_add(other.count[i]);
        }
    }

    /// Idle time (ns) ended for `reason`.
    #[inline]
    pub fn ns(&self, reason: WakeReason) -> u64 {
        self.ns[reason.index()]
    }

    /// Idle periods ended for `reason`.
    #[inline]
    pub fn count(&self, reason: WakeReason) -> u64 {
        self.count[reason.index()]
    }

    /// Idle time (ns) over every reason.
    pub fn total_ns(&self) -> u64 {
        self.ns.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Idle periods over every reason.
    pub fn total_count(&self) -> u64 {
        self.count.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// The reason with the most idle time, `None` when there was none.
    pub fn largest(&self) -> Option<WakeReason> {
        WakeReason::ALL
            .into_iter()
            .filter(|r| self.ns(*r) > 0)
            .max_by_key(|r| (self.ns(*r), std::cmp::Reverse(r.index())))
    }

    /// `(reason, periods, ns)` of every reason with at least one period, in
    /// [`WakeReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (WakeReason, u64, u64)> + '_ {
        WakeReason::ALL
            .into_iter()
            .filter(|r| self.count(*r) > 0)
            .map(|r| (r, self.count(r), self.ns(r)))
    }
}

/// Who woke a task, as [`ThreadRoles::wake_reason`] decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeCause {
    /// The reason.
    pub reason: WakeReason,
    /// The waking task, when one is known: the other task for
    /// [`Sync`](WakeReason::Sync), the blocking task for
    /// [`Blocking`](WakeReason::Blocking) (`spawn_blocking` only).
    pub waker: Option<u64>,
}

/// What an application or runtime blocking section is (see
/// [`ThreadRoles::observe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Section {
    #[default]
    None,
    /// The application's: `spawn_blocking` at an application site, or
    /// `block_in_place`.
    App(u64),
    /// The runtime's own, e.g. a worker thread Tokio started on its pool
    /// (the `spawn_blocking` task).
    Runtime(u64),
}

/// One recording thread's role, as [`ThreadRoles`] keeps it per thread; a
/// consumer with per-thread state of its own may keep this in it instead
/// (one lookup per event) and call the same methods. 24 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRole {
    /// Task being polled (0: none).
    polling: u64,
    /// Driver turns seen on this thread (wrapping).
    turn: u16,
    /// A turn is under way: wakes outside a poll since the last poll or park.
    in_turn: bool,
    /// Seen polling on a worker, parking, or in a runtime blocking section.
    runtime: bool,
    section: Section,
    /// The last application `spawn_blocking` task this thread ran (0:
    /// none): a blocking-pool thread, which wakes the task's `JoinHandle`
    /// right after the section ends.
    pool_task: u64,
}

/// Where a task's poll ended: the thread and its driver turn then (see
/// [`ThreadRoles::turn_mark`]), kept in the task's
/// [`TaskLife`](crate::TaskLife). 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct TurnMark {
    thread: u16,
    turn: u16,
}

impl TurnMark {
    /// No poll ended yet.
    pub const NONE: TurnMark = TurnMark {
        thread: u16::MAX,
        turn: 0,
    };
}

/// What [`ThreadRoles::observe`] ended: a blocking section, the
/// application's or the runtime's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEnd {
    /// The runtime's own section (a worker thread Tokio started on its
    /// blocking pool), not the application's blocking.
    pub runtime: bool,
}

/// What each recording thread is doing, from its own events: polling a
/// task, in a driver turn, in a blocking section, a runtime thread or not.
/// Feed every event to [`observe`](Self::observe) in each thread's order
/// (a merged stream is) and ask [`wake_reason`](Self::wake_reason) for a
/// `Wake` after observing it; give every `PollEnd`'s task its
/// [`turn_mark`](Self::turn_mark). Memory: 24 bytes per recording thread
/// (at most 65,536).
///
/// ```
/// use taskline_core::{Event, EventKind, ThreadRoles, WakeReason, NO_VALUE};
/// let mut roles = ThreadRoles::default();
/// let mut park = Event::new(EventKind::Park, 10, 0);
/// park.thread = 1;
/// roles.observe(&park, |_| false);
/// // A wake on a parked worker outside any poll: the driver, I/O.
/// let mut wake = Event::new(EventKind::Wake, 20, 7);
/// wake.thread = 1;
/// roles.observe(&wake, |_| false);
/// assert_eq!(roles.wake_reason(&wake, None).reason, WakeReason::Io);
/// // The same wake from a thread never seen in the runtime: foreign.
/// wake.thread = 2;
/// roles.observe(&wake, |_| false);
/// assert_eq!(roles.wake_reason(&wake, None).reason, WakeReason::Foreign);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ThreadRoles {
    threads: Vec<ThreadRole>,
}

impl ThreadRoles {
    /// Bytes one recording thread's role takes (for memory bounds).
    pub const BYTES_PER_THREAD: usize = std::mem::size_of::<ThreadRole>();

    #[inline]
    fn role_mut(&mut self, thread: u16) -> &mut ThreadRole {
        let t = thread as usize;
        if self.threads.len() <= t {
            self.threads.resize(t + 1, ThreadRole::default());
        }
        &mut self.threads[t]
    }

    /// Updates the role of `e`'s thread; says when that ended a blocking
    /// section. `runtime_section(task)` says whether the `spawn_blocking`
    /// task `task` is the runtime's own (its spawn site is inside Tokio, see
    /// [`Site::is_runtime_internal`](crate::Site::is_runtime_internal)); it
    /// is asked only for a `BlockingStart`.
    #[inline]
    pub fn observe(
        &mut self,
        e: &Event,
        runtime_section: impl FnOnce(u64) -> bool,
    ) -> Option<SectionEnd> {
        self.observe_decoded(e.thread, &e.decode(), runtime_section)
    }

    /// [`observe`](Self::observe) for an event its consumer decoded
    /// already, recorded by `thread`.
    #[inline]
    pub fn observe_decoded(
        &mut self,
        thread: u16,
        d: &DecodedEvent,
        runtime_section: impl FnOnce(u64) -> bool,
    ) -> Option<SectionEnd> {
        if !ThreadRole::changes_on(d) {
            return None;
        }
        self.role_mut(thread).observe(d, runtime_section)
    }

    /// Where a poll ending now on `thread` ends, for the task's
    /// [`TaskLife::set_last_poll`](crate::TaskLife::set_last_poll).
    #[inline]
    pub fn turn_mark(&self, thread: u16) -> TurnMark {
        self.threads
            .get(thread as usize)
            .copied()
            .unwrap_or_default()
            .turn_mark(thread)
    }

    /// Whether `thread` is inside the runtime's own blocking section (a
    /// worker thread Tokio started on its blocking pool).
    pub fn in_runtime_section(&self, thread: u16) -> bool {
        self.threads
            .get(thread as usize)
            .is_some_and(|r| r.in_runtime_section())
    }

    /// Why the `Wake` event `e` (already [observed](Self::observe)) woke
    /// its task, whose life is `task` when the consumer follows it (its
    /// last poll's timer wait and [`TurnMark`]). Events of other kinds give
    /// [`Unknown`](WakeReason::Unknown).
    #[inline]
    pub fn wake_reason(&self, e: &Event, task_life: Option<&crate::TaskLife>) -> WakeCause {
        self.wake_reason_decoded(e.thread, &e.decode(), task_life)
    }

    /// [`wake_reason`](Self::wake_reason) for an event its consumer
    /// decoded already, recorded by `thread`.
    #[inline]
    pub fn wake_reason_decoded(
        &self,
        thread: u16,
        d: &DecodedEvent,
        task_life: Option<&crate::TaskLife>,
    ) -> WakeCause {
        self.threads
            .get(thread as usize)
            .copied()
            .unwrap_or_default()
            .wake_reason(thread, d, task_life)
    }
}

impl ThreadRole {
    /// Whether a role changes on an event like `d`: a consumer need not
    /// find the thread's role for other events.
    #[inline]
    pub fn changes_on(d: &DecodedEvent) -> bool {
        matches!(
            d,
            DecodedEvent::PollStart { .. }
                | DecodedEvent::PollEnd { .. }
                | DecodedEvent::Wake { .. }
                | DecodedEvent::Park { .. }
                | DecodedEvent::BlockingStart { .. }
                | DecodedEvent::BlockingEnd { .. }
        )
    }

    /// Updates this thread's role with its event `d` (see
    /// [`ThreadRoles::observe`]): dispatches to the transition of that
    /// event's kind, which a consumer that already holds the thread's state
    /// in an arm of its own may call directly.
    #[inline]
    pub fn observe(
        &mut self,
        d: &DecodedEvent,
        runtime_section: impl FnOnce(u64) -> bool,
    ) -> Option<SectionEnd> {
        match *d {
            DecodedEvent::PollStart { task, worker, .. } => {
                self.poll_started(task, worker.is_some())
            }
            DecodedEvent::PollEnd { task, .. } => self.poll_ended(task),
            DecodedEvent::Wake { .. } => self.woken_here(),
            DecodedEvent::Park { .. } => self.parked(),
            DecodedEvent::BlockingStart { task, kind, .. } => {
                self.section_started(task, kind, runtime_section)
            }
            DecodedEvent::BlockingEnd { .. } => return self.section_ended(),
            _ => {}
        }
        None
    }

    /// The task the thread is polling, 0 when none: a consumer that keeps
    /// the role in its per-thread state reads its open poll here rather
    /// than keeping a copy.
    #[inline]
    pub fn polling(&self) -> u64 {
        self.polling
    }

    /// The thread started polling `task`, on a runtime worker when `on_worker`.
    #[inline]
    pub fn poll_started(&mut self, task: u64, on_worker: bool) {
        self.polling = task;
        self.in_turn = false;
        self.runtime |= on_worker;
    }

    /// The thread's poll of `task` ended.
    #[inline]
    pub fn poll_ended(&mut self, task: u64) {
        if self.polling == task {
            self.polling = 0;
        }
    }

    /// The thread recorded a wake: outside a poll, the first of a run of
    /// them starts a driver turn.
    #[inline]
    pub fn woken_here(&mut self) {
        if self.polling == 0 && !self.in_turn {
            self.turn = self.turn.wrapping_add(1);
            self.in_turn = true;
        }
    }

    /// The thread parked: a runtime worker, in a driver turn of its own
    /// after which no deferred wake comes (see [`WakeReason`]).
    #[inline]
    pub fn parked(&mut self) {
        self.runtime = true;
        self.turn = self.turn.wrapping_add(1);
        self.in_turn = false;
    }

    /// A blocking section started on the thread: `task` (`None` for
    /// `block_in_place`) of `kind`; `runtime_section(task)` says whether a
    /// `spawn_blocking` task is the runtime's own.
    #[inline]
    pub fn section_started(
        &mut self,
        task: Option<u64>,
        kind: Option<BlockingKind>,
        runtime_section: impl FnOnce(u64) -> bool,
    ) {
        let section = match (kind, task) {
            (Some(BlockingKind::SpawnBlocking), Some(t)) if runtime_section(t) => {
                Section::Runtime(t)
            }
            (_, t) => Section::App(t.unwrap_or(0)),
        };
        self.runtime |= matches!(section, Section::Runtime(_));
        self.section = section;
    }

    /// The thread's blocking section ended: which one, if one was open.
    #[inline]
    pub fn section_ended(&mut self) -> Option<SectionEnd> {
        let ended = std::mem::take(&mut self.section);
        if let Section::App(t) = ended
            && t != 0
        {
            self.pool_task = t;
        }
        (ended != Section::None).then_some(SectionEnd {
            runtime: matches!(ended, Section::Runtime(_)),
        })
    }

    /// Where a poll ending now on this thread, `thread`, ends.
    #[inline]
    pub fn turn_mark(&self, thread: u16) -> TurnMark {
        TurnMark {
            thread,
            turn: self.turn,
        }
    }

    /// Whether this thread is inside the runtime's own blocking section.
    pub fn in_runtime_section(&self) -> bool {
        matches!(self.section, Section::Runtime(_))
    }

    /// Why the `Wake` `d`, recorded by this thread `thread` and already
    /// [observed](Self::observe), woke its task (see
    /// [`ThreadRoles::wake_reason`]).
    #[inline]
    pub fn wake_reason(
        &self,
        thread: u16,
        d: &DecodedEvent,
        task_life: Option<&crate::TaskLife>,
    ) -> WakeCause {
        let DecodedEvent::Wake {
            task,
            by,
            self_wake,
            ..
        } = *d
        else {
            return WakeCause {
                reason: WakeReason::Unknown,
                waker: None,
            };
        };
        let role = self;
        let cause = |reason, waker| WakeCause { reason, waker };
        if self_wake {
            return cause(WakeReason::Yield, Some(task));
        }
        let mut by = by;
        match role.section {
            Section::App(t) => {
                return cause(WakeReason::Blocking, by.or((t != 0).then_some(t)));
            }
            // A worker thread runs inside the runtime's own section for
            // its whole life, so a source naming the waker from the
            // thread's entered spans can name that task: it is the driver,
            // not a task.
            Section::Runtime(t) if by == Some(t) => by = None,
            _ => {}
        }
        // Named by the source, else the thread's open poll.
        if let Some(waker) = by.or((role.polling != 0).then_some(role.polling)) {
            let reason = if waker == task {
                WakeReason::Yield
            } else {
                WakeReason::Sync
            };
            return cause(reason, Some(waker));
        }
        if !role.runtime {
            if role.pool_task != 0 {
                return cause(WakeReason::Blocking, Some(role.pool_task));
            }
            return cause(WakeReason::Foreign, None);
        }
        let last = task_life.map_or(TurnMark::NONE, |l| l.last_poll());
        if last.thread == thread && last.turn.wrapping_add(1) == role.turn {
            return cause(WakeReason::Yield, Some(task));
        }
        if task_life.is_some_and(|l| l.waits_on_timer()) {
            cause(WakeReason::Timer, None)
        } else {
            cause(WakeReason::Io, None)
        }
    }
}

/// Whether a resource kind (a Tokio resource span's `concrete_type`, as
/// `ResourceWait` names it) is a timer: `Sleep` (which `interval` and
/// `timeout` use too). The one definition the consumers use to feed
/// [`TaskLife::resource_wait`](crate::TaskLife::resource_wait).
///
/// ```
/// assert!(taskline_core::is_timer_resource("Sleep"));
/// assert!(!taskline_core::is_timer_resource("Semaphore"));
/// ```
pub fn is_timer_resource(kind: &str) -> bool {
    kind == "Sleep"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskLife;
    use crate::event::{EventKind, NO_VALUE, NO_WORKER, flags};

    fn ev(kind: EventKind, thread: u16, task: u64) -> Event {
        let mut e = Event::new(kind, 0, task);
        e.thread = thread;
        if kind == EventKind::PollStart {
            e.arg = NO_VALUE;
            e.aux = 0;
        }
        e
    }

    fn wake(thread: u16, task: u64, by: u64) -> Event {
        let mut e = ev(EventKind::Wake, thread, task);
        e.arg = by;
        e
    }

    /// Observes `e`, then asks for its reason, as consumers do.
    fn cause(roles: &mut ThreadRoles, e: &Event, life: Option<&TaskLife>) -> WakeCause {
        roles.observe(e, |_| false);
        roles.wake_reason(e, life)
    }

    fn reason(roles: &mut ThreadRoles, e: &Event) -> WakeReason {
        cause(roles, e, None).reason
    }

    /// A task whose poll ran on `thread` from 0 to 1, as the consumers
    /// keep it: `poll_end` plus the thread's turn mark.
    fn polled_on(roles: &mut ThreadRoles, thread: u16, task: u64) -> TaskLife {
        let mut life = TaskLife::spawned(0);
        roles.observe(&ev(EventKind::PollStart, thread, task), |_| false);
        life.poll_start(0, None);
        roles.observe(&ev(EventKind::PollEnd, thread, task), |_| false);
        life.poll_end(1);
        life.set_last_poll(roles.turn_mark(thread));
        life
    }

    #[test]
    fn a_wake_inside_another_tasks_poll_is_sync_and_names_it() {
        let mut r = ThreadRoles::default();
        r.observe(&ev(EventKind::PollStart, 0, 5), |_| false);
        let c = cause(&mut r, &wake(0, 9, 5), None);
        assert_eq!(
            c,
            WakeCause {
                reason: WakeReason::Sync,
                waker: Some(5)
            }
        );
        // The source did not name the waker, the thread's open poll does.
        assert_eq!(cause(&mut r, &wake(0, 9, 0), None).waker, Some(5));
        // Its own open poll: a yield.
        assert_eq!(reason(&mut r, &wake(0, 5, 0)), WakeReason::Yield);
    }

    #[test]
    fn a_wake_by_itself_is_a_yield() {
        let mut r = ThreadRoles::default();
        let mut e = wake(0, 9, 9);
        assert_eq!(reason(&mut r, &e), WakeReason::Yield);
        e.arg = 0;
        e.flags |= flags::SELF_WAKE;
        assert_eq!(reason(&mut r, &e), WakeReason::Yield);
    }

    #[test]
    fn tokios_deferred_yields_come_in_the_first_turn_after_the_poll() {
        let mut r = ThreadRoles::default();
        // Tasks 9 and 8 yield on worker 1, task 7 waits for I/O.
        let nine = polled_on(&mut r, 1, 9);
        let eight = polled_on(&mut r, 1, 8);
        let seven = polled_on(&mut r, 1, 7);
        // The worker's next driver turn: the deferred wakes are yields.
        assert_eq!(
            cause(&mut r, &wake(1, 9, 0), Some(&nine)).reason,
            WakeReason::Yield
        );
        assert_eq!(
            cause(&mut r, &wake(1, 8, 0), Some(&eight)).reason,
            WakeReason::Yield
        );
        // A task not followed, or polled on another thread: the driver's.
        assert_eq!(cause(&mut r, &wake(1, 6, 0), None).reason, WakeReason::Io);
        let other = polled_on(&mut r, 2, 5);
        r.observe(&ev(EventKind::PollStart, 1, 4), |_| false);
        r.observe(&ev(EventKind::PollEnd, 1, 4), |_| false);
        assert_eq!(
            cause(&mut r, &wake(1, 5, 0), Some(&other)).reason,
            WakeReason::Io
        );
        // Task 7's I/O completes in a later turn: io.
        assert_eq!(
            cause(&mut r, &wake(1, 7, 0), Some(&seven)).reason,
            WakeReason::Io
        );
        // After a park, never a yield: the worker parks only with no
        // deferred task.
        let three = polled_on(&mut r, 1, 3);
        r.observe(&ev(EventKind::Park, 1, 0), |_| false);
        assert_eq!(
            cause(&mut r, &wake(1, 3, 0), Some(&three)).reason,
            WakeReason::Io
        );
    }

    #[test]
    fn a_driver_wake_after_a_timer_wait_is_the_timers() {
        let mut r = ThreadRoles::default();
        let mut life = polled_on(&mut r, 1, 9);
        life.resource_wait(true);
        r.observe(&ev(EventKind::Park, 1, 0), |_| false);
        assert_eq!(
            cause(&mut r, &wake(1, 9, 0), Some(&life)).reason,
            WakeReason::Timer
        );
        r.observe(&ev(EventKind::Unpark, 1, 0), |_| false);
        life.resource_wait(false);
        assert_eq!(
            cause(&mut r, &wake(1, 9, 0), Some(&life)).reason,
            WakeReason::Io
        );
    }

    #[test]
    fn blocking_sections_of_the_app_and_of_the_runtime() {
        let mut r = ThreadRoles::default();
        let mut start = ev(EventKind::BlockingStart, 3, 40);
        start.flags = BlockingKind::SpawnBlocking as u8;
        start.aux = NO_WORKER;
        r.observe(&start, |_| false);
        assert_eq!(
            cause(&mut r, &wake(3, 9, 0), None),
            WakeCause {
                reason: WakeReason::Blocking,
                waker: Some(40)
            }
        );
        let end = r.observe(&ev(EventKind::BlockingEnd, 3, 40), |_| false);
        assert_eq!(end, Some(SectionEnd { runtime: false }));
        assert_eq!(
            r.observe(&ev(EventKind::BlockingEnd, 3, 40), |_| false),
            None
        );
        // Tokio wakes the JoinHandle right after the section: still blocking.
        assert_eq!(
            cause(&mut r, &wake(3, 9, 0), None),
            WakeCause {
                reason: WakeReason::Blocking,
                waker: Some(40)
            }
        );
        assert_eq!(reason(&mut r, &wake(8, 9, 0)), WakeReason::Foreign);
        // Tokio's worker thread runs inside the runtime's own section: its
        // wakes outside polls are the driver's, not blocking.
        let mut worker = ev(EventKind::BlockingStart, 4, 41);
        worker.flags = BlockingKind::SpawnBlocking as u8;
        r.observe(&worker, |t| t == 41);
        assert!(r.in_runtime_section(4));
        assert_eq!(reason(&mut r, &wake(4, 9, 0)), WakeReason::Io);
        // Even when the source names that section's task as the waker
        // (Tokio's worker span is entered around the whole worker).
        assert_eq!(
            cause(&mut r, &wake(4, 9, 41), None),
            WakeCause {
                reason: WakeReason::Io,
                waker: None
            }
        );
        let mut sleeper = TaskLife::spawned(0);
        sleeper.resource_wait(true);
        assert_eq!(
            cause(&mut r, &wake(4, 9, 41), Some(&sleeper)).reason,
            WakeReason::Timer
        );
        let end = r.observe(&ev(EventKind::BlockingEnd, 4, 41), |_| false);
        assert_eq!(end, Some(SectionEnd { runtime: true }));
        // block_in_place is the application's.
        let mut bip = ev(EventKind::BlockingStart, 5, 0);
        bip.flags = BlockingKind::BlockInPlace as u8;
        r.observe(&bip, |_| true);
        assert_eq!(
            cause(&mut r, &wake(5, 9, 0), None),
            WakeCause {
                reason: WakeReason::Blocking,
                waker: None
            }
        );
    }

    #[test]
    fn a_blocking_tasks_join_wake_after_its_section_is_blocking() {
        // Tokio ends the section (the task span's exit), terminates the
        // task, then wakes its JoinHandle, on the pool thread, outside any
        // section or poll.
        let mut r = ThreadRoles::default();
        let section = |r: &mut ThreadRoles, task| {
            let mut start = ev(EventKind::BlockingStart, 3, task);
            start.flags = BlockingKind::SpawnBlocking as u8;
            r.observe(&start, |_| false);
            let mut end = ev(EventKind::BlockingEnd, 3, task);
            end.flags = BlockingKind::SpawnBlocking as u8;
            r.observe(&end, |_| false);
        };
        section(&mut r, 40);
        r.observe(&ev(EventKind::Terminate, 3, 40), |_| false);
        let join = WakeCause {
            reason: WakeReason::Blocking,
            waker: Some(40),
        };
        assert_eq!(cause(&mut r, &wake(3, 9, 0), None), join);
        // Until the thread starts another section: then that one's.
        section(&mut r, 41);
        assert_eq!(cause(&mut r, &wake(3, 9, 0), None).waker, Some(41));
        // A runtime section forgets it.
        let mut worker = ev(EventKind::BlockingStart, 3, 50);
        worker.flags = BlockingKind::SpawnBlocking as u8;
        r.observe(&worker, |_| true);
        r.observe(&ev(EventKind::BlockingEnd, 3, 50), |_| true);
        assert_eq!(reason(&mut r, &wake(3, 9, 0)), WakeReason::Io);
        // So does a poll on a worker: its wakes outside polls are the driver's.
        let mut r = ThreadRoles::default();
        section(&mut r, 40);
        r.observe(&ev(EventKind::PollStart, 3, 7), |_| false);
        r.observe(&ev(EventKind::PollEnd, 3, 7), |_| false);
        assert_eq!(reason(&mut r, &wake(3, 9, 0)), WakeReason::Io);
    }

    #[test]
    fn a_thread_outside_the_runtime_is_foreign() {
        let mut r = ThreadRoles::default();
        assert_eq!(reason(&mut r, &wake(7, 9, 0)), WakeReason::Foreign);
        assert_eq!(
            r.wake_reason(&ev(EventKind::PollEnd, 7, 9), None).reason,
            WakeReason::Unknown
        );
    }

    #[test]
    fn idle_by_reason_sums_and_names_the_largest() {
        let mut a = IdleByReason::default();
        assert_eq!(a.largest(), None);
        a.add(WakeReason::Timer, 5);
        let mut b = IdleByReason::default();
        b.add(WakeReason::Timer, 5);
        b.add(WakeReason::Sync, 10);
        a.merge(&b);
        assert_eq!(
            (a.ns(WakeReason::Timer), a.count(WakeReason::Timer)),
            (10, 2)
        );
        assert_eq!(a.total_count(), 3);
        // A tie goes to the reason listed first.
        assert_eq!(a.largest(), Some(WakeReason::Sync));
        let v: Vec<_> = a.iter().collect();
        assert_eq!(
            v,
            vec![(WakeReason::Sync, 1, 10), (WakeReason::Timer, 2, 10)]
        );
        for r in WakeReason::ALL {
            assert_eq!(WakeReason::from_name(r.as_str()), Some(r));
        }
    }
}
